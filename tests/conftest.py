"""Fixtures shared by the suite: generated data and tiny models trained once per test run."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import pytest
from synthetic import make_image_folder, train_tiny_models

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("XRAY_WARMUP", "0")  # no background model loading: AppTest runs stay deterministic

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
SUBSET = SHARED / "data" / "covid19-radiography-subset"
MOBILENET_WEIGHTS = SHARED / "weights" / "mobilenet_1_0_224_imagenet_notop.weights.h5"


@pytest.fixture(scope="session")
def image_folder(tmp_path_factory) -> Path:
    """Three classes of 24 generated 48x48 PNGs in the Kaggle layout, with a manifest."""
    return make_image_folder(tmp_path_factory.mktemp("data"))


@pytest.fixture(scope="session")
def models_dir(tmp_path_factory, image_folder) -> Path:
    """A saved_models folder with tiny models of two backbones, trained by the pipeline."""
    return train_tiny_models(tmp_path_factory.mktemp("saved_models"), image_folder,
                             tmp_path_factory.mktemp("checkpoints"))


def needs(path: Path) -> pytest.MarkDecorator:
    return pytest.mark.skipif(not path.exists(), reason=f"{path} is not here")


def run_cli(args: list[str], caplog) -> tuple[int, str]:
    """Exit code and logged errors of ``python -m pipeline ARGS``, run in this process."""
    from pipeline.__main__ import main

    caplog.clear()
    with caplog.at_level(logging.ERROR, logger="pipeline"):
        code = main(args)
    return code, caplog.text

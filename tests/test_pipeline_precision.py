"""Mixed precision: which policy training uses, and a saved model that always computes in float32."""

from __future__ import annotations

import csv
import json
import logging
from pathlib import Path

import keras
import numpy as np
import pytest

from pipeline import precision
from pipeline.backbones import get_backbone
from pipeline.data import scan_dataset
from pipeline.evaluate import predict_samples
from pipeline.model import as_float32, build_model, load_trained_model


@pytest.fixture
def restore_policy():
    previous = keras.mixed_precision.global_policy()
    yield
    keras.mixed_precision.set_dtype_policy(previous)


def small_cnn() -> keras.Model:
    return build_model(get_backbone("SmallCNN"), 3, weights=None, image_size=32)


@pytest.mark.parametrize(("flags", "expected"), [
    ("fpu avx2 avx512f avx512_bf16 avx512_vnni", True),
    ("fpu avx2 amx_bf16 amx_tile", True),
    ("fpu avx2 avx512f avx512_vnni", False),
])
def test_bfloat16_support_is_read_from_the_cpu_flags(tmp_path, flags, expected):
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text(f"processor\t: 0\nflags\t\t: {flags}\n")
    assert precision.cpu_has_bfloat16(str(cpuinfo)) is expected


def test_no_cpuinfo_means_no_bfloat16(tmp_path):
    assert precision.cpu_has_bfloat16(str(tmp_path / "missing")) is False


@pytest.mark.parametrize(("gpu", "bf16", "expected"), [
    (True, False, "mixed_float16"),
    (False, True, "mixed_bfloat16"),
    (False, False, "float32"),
])
def test_compute_policy_follows_the_hardware(monkeypatch, caplog, gpu, bf16, expected):
    monkeypatch.setattr(precision.tf.config, "list_physical_devices", lambda kind=None: ["gpu"] if gpu else [])
    monkeypatch.setattr(precision, "cpu_has_bfloat16", lambda: bf16)
    with caplog.at_level(logging.WARNING, logger="pipeline"):
        assert precision.compute_policy(True) == expected
        assert precision.compute_policy(False) == "float32"
    assert ("training in float32" in caplog.text) is (expected == "float32")


def test_a_float32_model_is_returned_as_it_is():
    model = small_cnn()
    assert as_float32(model) is model


def test_a_mixed_precision_model_becomes_float32_with_the_same_weights(restore_policy):
    keras.mixed_precision.set_dtype_policy("mixed_bfloat16")
    mixed = small_cnn()
    keras.mixed_precision.set_dtype_policy("float32")
    assert {layer.dtype_policy.name for layer in mixed.layers} >= {"mixed_bfloat16"}

    exported = as_float32(mixed)
    assert {layer.dtype_policy.name for layer in exported.layers} == {"float32"}
    for a, b in zip(mixed.get_weights(), exported.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)
    reference = small_cnn()
    reference.set_weights(mixed.get_weights())
    images = np.random.default_rng(0).uniform(0, 255, (4, 32, 32, 3)).astype("float32")
    np.testing.assert_allclose(exported.predict(images, verbose=0), reference.predict(images, verbose=0), atol=1e-6)


@pytest.mark.slow
def test_training_in_bfloat16_saves_a_float32_model_and_restores_the_policy(
        tmp_path, image_folder, monkeypatch, restore_policy):
    from pipeline.__main__ import main

    monkeypatch.setattr(precision, "cpu_has_bfloat16", lambda: True)
    monkeypatch.setattr(precision.tf.config, "list_physical_devices", lambda kind=None: [])
    code = main(["train", "--backbone", "SmallCNN", "--data-dir", str(image_folder), "--weights", "none",
                 "--image-size", "32", "--epochs", "1", "--fine-tune-epochs", "0", "--mixed-precision",
                 "--out", str(tmp_path / "out"), "--checkpoint-dir", str(tmp_path / "ck")])
    assert code == 0
    assert keras.mixed_precision.global_policy().name == "float32"
    folder = tmp_path / "out" / "SmallCNN"
    config = json.loads((folder / "config.json").read_text())
    assert config["compute_dtype_policy"] == "mixed_bfloat16"
    assert "computing in `mixed_bfloat16`" in (folder / "README.md").read_text()

    model, classes = load_trained_model(folder)
    assert {layer.dtype_policy.name for layer in model.layers} == {"float32"}
    # The stored test predictions are those of the saved float32 model, not of the bfloat16 one.
    rows = {row["path"]: row for row in csv.DictReader((folder / "predictions.csv").open())}
    dataset = scan_dataset(image_folder, classes=classes)
    samples = [s for s in dataset.samples if Path(s.path).relative_to(dataset.root).as_posix() in rows]
    stored = [[float(rows[Path(s.path).relative_to(dataset.root).as_posix()][f"p_{c}"]) for c in classes]
              for s in samples]
    assert len(samples) == len(rows) > 0
    np.testing.assert_allclose(predict_samples(model, samples, 16), stored, atol=2e-6)

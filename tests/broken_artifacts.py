"""Broken saved-model folders beside good ones, and what the CLI and the dashboard say about each.

Every case is a copy of a good tiny model with one file removed or spoiled. ``check`` runs
``python -m pipeline evaluate`` (its ``main``, in this process) on each broken folder and opens
the compare and explain pages (AppTest) on a models folder holding all of them.
"""

from __future__ import annotations

import json
import logging
import re
import shutil
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from drivers import PAGE_TIMEOUT_S, PAGES, models_dir_env, open_page, texts

from pipeline.__main__ import main as pipeline_main
from pipeline.config import CONFIG_FILE, METRICS_FILE, MODEL_FILE
from pipeline.metrics import compute_metrics

GOOD = ("MobileNet", "SmallCNN")
TEMPLATE = "SmallCNN"  # every broken folder starts as a copy of this model


def _truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 3])


def _zip_without_config(path: Path) -> None:
    path.unlink()
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("metadata.json", json.dumps({"keras_version": "3"}))


def _two_classes(folder: Path) -> None:
    """config.json and metrics.json of a two-class model beside the three-output model.keras."""
    classes = ["COVID", "Normal"]
    config = json.loads((folder / CONFIG_FILE).read_text())
    (folder / CONFIG_FILE).write_text(json.dumps({**config, "classes": classes}))
    rng = np.random.default_rng(0)
    labels = np.arange(20) % 2
    probabilities = rng.dirichlet((1, 1), 20)
    metrics = compute_metrics(labels, probabilities, classes, bootstrap_samples=50)
    (folder / METRICS_FILE).write_text(json.dumps(metrics))


@dataclass(frozen=True)
class BrokenCase:
    folder: str
    file: str  # the file at fault: every message must name it
    what: str
    spoil: Callable[[Path], None]  # given the copied folder
    compared: bool  # whether its metrics can still be compared
    explained: bool  # whether it can still explain images


CASES = (
    BrokenCase("broken-no-model", MODEL_FILE, "model.keras deleted", lambda f: (f / MODEL_FILE).unlink(),
               compared=True, explained=False),
    BrokenCase("broken-truncated-model", MODEL_FILE, "model.keras cut to a third",
               lambda f: _truncate(f / MODEL_FILE), compared=True, explained=False),
    BrokenCase("broken-text-model", MODEL_FILE, "model.keras is a text file",
               lambda f: (f / MODEL_FILE).write_text("not a model\n"), compared=True, explained=False),
    BrokenCase("broken-zip-without-config", MODEL_FILE, "model.keras is a zip without config.json",
               lambda f: _zip_without_config(f / MODEL_FILE), compared=True, explained=False),
    BrokenCase("broken-no-metrics", METRICS_FILE, "metrics.json deleted", lambda f: (f / METRICS_FILE).unlink(),
               compared=False, explained=True),
    BrokenCase("broken-empty-metrics", METRICS_FILE, "metrics.json empty",
               lambda f: (f / METRICS_FILE).write_text(""), compared=False, explained=True),
    BrokenCase("broken-metrics-keys", METRICS_FILE, "metrics.json without its required keys",
               lambda f: (f / METRICS_FILE).write_text('{"accuracy": 0.9}'), compared=False, explained=True),
    BrokenCase("broken-no-config", CONFIG_FILE, "config.json deleted", lambda f: (f / CONFIG_FILE).unlink(),
               compared=False, explained=False),
    BrokenCase("broken-classes-vs-outputs", CONFIG_FILE,
               "config.json and metrics.json name 2 classes, model.keras has 3 outputs", _two_classes,
               compared=True, explained=False),
)


@dataclass(frozen=True)
class CaseResult:
    case: BrokenCase
    folder: Path
    exit_code: int  # of `python -m pipeline evaluate --model <folder> --data-dir <images>`
    cli_message: str
    app_warning: str | None  # the dashboard warning that repeats the CLI's message, if any

    def named(self, message: str | None) -> bool:
        return message is not None and str(self.folder) in message and self.case.file in message


@dataclass(frozen=True)
class AppView:
    warnings: list[str]  # both pages, the disclaimer excluded
    exceptions: list[str]
    errors: list[str]
    compared: list[str]  # models in the comparison table
    explained: list[str]  # models with maps in the explain page's "All models" view


@dataclass(frozen=True)
class ArtifactsCheck:
    cases: list[CaseResult]
    good_exit_codes: dict[str, int]
    view: AppView


def headline(message: str) -> str:
    """A message without the details in parentheses that the failing library added."""
    return message.split(" (", 1)[0]


def build_models_root(models_dir: Path, root: Path) -> dict[str, Path]:
    """``root`` with copies of the good models and one spoiled copy per case; case folder name -> path."""
    for name in GOOD:
        shutil.copytree(models_dir / name, root / name)
    folders = {}
    for case in CASES:
        folder = root / case.folder
        shutil.copytree(models_dir / TEMPLATE, folder)
        case.spoil(folder)
        folders[case.folder] = folder
    return folders


class _Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


def evaluate_cli(folder: Path, data_dir: Path) -> tuple[int, str]:
    """Exit code and error lines of ``python -m pipeline evaluate`` on ``folder`` (its ``main``, in this process)."""
    collect, logger = _Collect(), logging.getLogger("pipeline")
    logger.addHandler(collect)
    try:
        code = pipeline_main(["evaluate", "--model", str(folder), "--data-dir", str(data_dir)])
    finally:
        logger.removeHandler(collect)
    return code, "\n".join(collect.messages)


def view_app(root: Path) -> AppView:
    """The compare page, then the explain page in its "All models" view, on the models under ``root``."""
    with models_dir_env(root):
        compare = open_page(PAGES[0])
        explain = open_page(PAGES[1])
        explain.segmented_control(key="explain-mode").set_value("All models").run(timeout=PAGE_TIMEOUT_S)
    apps = (compare, explain)
    warnings = [str(w.value) for app in apps for w in app.warning[1:]]  # the first one is the disclaimer
    compared = list(compare.dataframe[0].value["model"]) if compare.dataframe else []
    return AppView(warnings, [str(e.value) for app in apps for e in app.exception],
                   [str(e.value) for app in apps for e in app.error], compared,
                   re.findall(r"^\*\*(.+?)\*\*", texts(explain.markdown), flags=re.MULTILINE))


def check(models_dir: Path, data_dir: Path, root: Path) -> ArtifactsCheck:
    """Spoil copies of the models of ``models_dir`` under ``root``; what the CLI and the pages say of each."""
    folders = build_models_root(models_dir, root)
    view = view_app(root)
    results = []
    for case in CASES:
        code, message = evaluate_cli(folders[case.folder], data_dir)
        warning = next((w for w in view.warnings if message and headline(message) in w), None)
        results.append(CaseResult(case, folders[case.folder], code, message, warning))
    good = {name: evaluate_cli(root / name, data_dir)[0] for name in GOOD}
    return ArtifactsCheck(results, good, view)

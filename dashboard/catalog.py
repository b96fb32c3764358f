"""Find the saved models and read their JSON files, without TensorFlow.

A broken folder becomes a problem message naming the folder and file; the other folders are
still listed.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass, field
from pathlib import Path

from pipeline.artifacts import check_model_file, list_model_dirs, read_config, read_metrics
from pipeline.config import DEFAULT_EXPLAIN_MODEL, DEFAULT_OUT
from pipeline.errors import ArtifactError

MODELS_DIR_VAR = "XRAY_MODELS_DIR"
REPO_ROOT = Path(__file__).resolve().parents[1]
TRAIN_HINT = (
    "Train one with `python -m pipeline train --backbone MobileNet --data-dir <folder with "
    "COVID/, Normal/, Viral Pneumonia/ ...>` (or `--all` for every backbone); the models land in "
    f"`{DEFAULT_OUT}/`, or set `{MODELS_DIR_VAR}` to another folder."
)


@dataclass(frozen=True)
class ModelEntry:
    name: str
    folder: Path
    config: dict
    metrics: dict | None
    can_explain: bool  # model.keras is present and a complete Keras archive
    stamp: str  # changes whenever a file of the folder changes: part of every cache key

    @property
    def classes(self) -> list[str]:
        return list(self.config["classes"])

    @property
    def input_size(self) -> int:
        return int(self.config["input_size"])


@dataclass(frozen=True)
class Catalog:
    root: Path
    entries: list[ModelEntry] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    @property
    def explainable(self) -> list[ModelEntry]:
        """The models that can explain images: ``DEFAULT_EXPLAIN_MODEL`` first, the others in folder order."""
        entries = [entry for entry in self.entries if entry.can_explain]
        return sorted(entries, key=lambda entry: entry.name != DEFAULT_EXPLAIN_MODEL)  # stable: the rest by name

    @property
    def evaluated(self) -> list[ModelEntry]:
        return [entry for entry in self.entries if entry.metrics is not None]

    def entry(self, name: str) -> ModelEntry:
        return next(entry for entry in self.entries if entry.name == name)


def models_root() -> Path:
    """``$XRAY_MODELS_DIR`` when set, else ``saved_models/`` at the repository root."""
    value = os.environ.get(MODELS_DIR_VAR)
    return Path(value).expanduser() if value else REPO_ROOT / DEFAULT_OUT


def folder_stamp(folder: Path) -> str:
    """Name, modification time and size of every visible file of the folder, as one string: a change to
    any of them (predictions.csv and the model card included) refreshes every cache keyed by it."""
    stamps = []
    for path in sorted(folder.glob("[!.]*")):
        try:
            info = path.stat()
        except OSError:  # removed while listing
            continue
        if stat.S_ISREG(info.st_mode):
            stamps.append(f"{path.name}:{info.st_mtime_ns}:{info.st_size}")
    return "/".join(stamps)


def root_stamp(root: Path) -> tuple[tuple[str, str], ...]:
    return tuple((folder.name, folder_stamp(folder)) for folder in list_model_dirs(root))


def model_file_problem(folder: Path) -> str | None:
    """Why ``folder/model.keras`` cannot be loaded, found without loading it; None if it looks fine."""
    try:
        check_model_file(folder)
    except ArtifactError as exc:
        return str(exc)
    return None


def scan(root: Path) -> Catalog:
    """Every model folder under ``root``; problems are collected, never raised."""
    entries, problems = [], []
    for folder in list_model_dirs(root):
        try:
            config = read_config(folder)
        except ArtifactError as exc:
            problems.append(f"{exc}; this folder is skipped")
            continue
        try:
            metrics = read_metrics(folder)
        except ArtifactError as exc:
            problems.append(f"{exc}; this model has no test metrics to compare")
            metrics = None
        model_problem = model_file_problem(folder)
        if model_problem:
            problems.append(f"{model_problem}; this model cannot explain images")
        entries.append(ModelEntry(folder.name, folder, config, metrics, model_problem is None,
                                  folder_stamp(folder)))
    return Catalog(root, entries, problems)

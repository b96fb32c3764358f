"""Read and write saved model folders without importing TensorFlow.

A model folder is written in a hidden staging folder beside its final place and renamed into
place only when complete, so a reader never sees a half-written model.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import zipfile
from collections.abc import Iterator
from pathlib import Path

from .backbones import get_backbone
from .config import CONFIG_FILE, LUNG_TASK, METRICS_FILE, MODEL_FILE, TASK_KEY
from .errors import ArtifactError, ConfigError

log = logging.getLogger(__name__)

REQUIRED_CONFIG_KEYS = ("backbone", "classes", "input_size")
REQUIRED_METRICS_KEYS = ("class_names", "n_images", "accuracy", "macro_f1", "per_class", "confusion_matrix")
STAGING_PREFIX = ".staging-"
KERAS_ARCHIVE_MEMBERS = ("config.json", "model.weights.h5")  # what every .keras zip holds


def _json_text(data: dict) -> str:
    return json.dumps(data, indent=2, sort_keys=False) + "\n"


def write_json(path: Path, data: dict) -> None:
    """Write a file of a folder no reader sees yet (a staging folder); else use ``replace_json``."""
    path.write_text(_json_text(data), encoding="utf-8")


def read_json(folder: Path, name: str, required: tuple[str, ...] = ()) -> dict:
    """Read ``folder/name``; every problem becomes an ArtifactError naming folder and file."""
    path = Path(folder) / name
    if not path.is_file():
        raise ArtifactError(f"{folder}: {name} is missing")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ArtifactError(f"{folder}: {name} is not valid JSON ({exc})") from exc
    if not isinstance(data, dict):
        raise ArtifactError(f"{folder}: {name} must hold a JSON object")
    missing = [key for key in required if key not in data]
    if missing:
        raise ArtifactError(f"{folder}: {name} lacks the keys {', '.join(missing)}")
    return data


def update_json(folder: Path, name: str, key: str, value) -> dict:
    """Set ``key`` in ``folder/name`` and replace the file in one rename; returns the new object."""
    data = read_json(folder, name)
    data[key] = value
    replace_json(folder, name, data)
    return data


def replace_text(folder: str | Path, name: str, text: str) -> None:
    """Write ``folder/name`` in one rename, so a reader never sees half a file."""
    staging = Path(folder) / f".{name}.tmp"
    try:
        staging.write_text(text, encoding="utf-8")
        os.replace(staging, Path(folder) / name)
    except BaseException:
        staging.unlink(missing_ok=True)
        raise


def replace_json(folder: str | Path, name: str, data: dict) -> None:
    replace_text(folder, name, _json_text(data))


def is_segmenter(folder: str | Path) -> bool:
    """True for the lung segmenter's folder (config.json ``task``), which classifier readers skip."""
    try:
        return read_json(Path(folder), CONFIG_FILE).get(TASK_KEY) == LUNG_TASK
    except ArtifactError:
        return False


def read_config(folder: str | Path) -> dict:
    if is_segmenter(folder):
        raise ArtifactError(f"{folder} holds the lung segmenter ({CONFIG_FILE} task {LUNG_TASK!r}), not a "
                            "classifier; use it with 'python -m pipeline lungs'")
    config = read_json(Path(folder), CONFIG_FILE, REQUIRED_CONFIG_KEYS)
    if not isinstance(config["classes"], list) or not config["classes"]:
        raise ArtifactError(f"{folder}: {CONFIG_FILE} 'classes' must be a non-empty list")
    return config


def gradcam_layer(config: dict, folder: str | Path) -> str:
    """The Grad-CAM layer named in config.json, else the registry's layer for the backbone."""
    if config.get("gradcam_layer"):
        return str(config["gradcam_layer"])
    try:
        return get_backbone(str(config.get("backbone"))).gradcam_layer
    except ConfigError as exc:
        raise ArtifactError(f"{folder}: {CONFIG_FILE} names no Grad-CAM layer ({exc})") from exc


def read_metrics(folder: str | Path) -> dict:
    metrics = read_json(Path(folder), METRICS_FILE, REQUIRED_METRICS_KEYS)
    if len(metrics["confusion_matrix"]) != len(metrics["class_names"]):
        raise ArtifactError(f"{folder}: {METRICS_FILE} confusion matrix does not match its class names")
    return metrics


def check_model_file(folder: str | Path) -> None:
    """ArtifactError naming ``folder/model.keras`` if it is missing or not a whole Keras archive.

    Checked without loading it, so that a broken file gets a clear message rather than Keras's.
    """
    path = Path(folder) / MODEL_FILE
    if not path.is_file():
        raise ArtifactError(f"{folder}: {MODEL_FILE} is missing")
    try:
        with zipfile.ZipFile(path) as archive:
            members = set(archive.namelist())
    except (zipfile.BadZipFile, OSError) as exc:
        raise ArtifactError(f"{folder}: {MODEL_FILE} cannot be loaded (damaged or truncated: {exc})") from exc
    missing = [name for name in KERAS_ARCHIVE_MEMBERS if name not in members]
    if missing:
        raise ArtifactError(f"{folder}: {MODEL_FILE} cannot be loaded (not a Keras archive: it lacks "
                            f"{', '.join(missing)})")


def check_model_dir(folder: str | Path) -> tuple[dict, dict]:
    """Config and metrics of a model folder, checked against each other; ArtifactError if broken."""
    config, metrics = read_config(folder), read_metrics(folder)
    if metrics["class_names"] != config["classes"]:
        raise ArtifactError(f"{folder}: {METRICS_FILE} classes {metrics['class_names']} differ from "
                            f"{CONFIG_FILE} classes {config['classes']}")
    check_model_file(folder)
    return config, metrics


def list_model_dirs(root: str | Path) -> list[Path]:
    """Classifier folders under ``root``: visible sub-folders holding a model or a config file, the
    lung segmenter's left out."""
    root = Path(root)
    if not root.is_dir():
        return []
    return sorted(
        p for p in root.iterdir()
        if p.is_dir() and not p.name.startswith(".")
        and ((p / MODEL_FILE).exists() or (p / CONFIG_FILE).exists()) and not is_segmenter(p)
    )


@contextlib.contextmanager
def atomic_model_dir(out_root: str | Path, name: str) -> Iterator[Path]:
    """Yield an empty staging folder; on success it replaces ``out_root/name`` by renames."""
    out_root = Path(out_root)
    out_root.mkdir(parents=True, exist_ok=True)
    staging = out_root / f"{STAGING_PREFIX}{name}-{os.getpid()}"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir()
    try:
        yield staging
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    target, old = out_root / name, out_root / f".old-{name}-{os.getpid()}"
    if target.exists():
        os.replace(target, old)
    os.replace(staging, target)
    shutil.rmtree(old, ignore_errors=True)
    log.info("saved %s", target)




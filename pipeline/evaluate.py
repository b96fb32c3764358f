"""Evaluate a model on labelled images: predictions, metrics, inference time."""

from __future__ import annotations

import csv
import logging
import time
from pathlib import Path

import keras
import numpy as np

from . import artifacts, data, metrics
from .config import PREDICTIONS_FILE
from .inputs import make_dataset

log = logging.getLogger(__name__)

TIMING_REPEATS = 10


def predict_samples(model: keras.Model, samples: list[data.Sample], batch_size: int) -> np.ndarray:
    size = int(model.input_shape[1])
    ds = make_dataset([s.path for s in samples], [s.label for s in samples], size, batch_size)
    return np.asarray(model.predict(ds.map(lambda x, y: x), verbose=0), dtype=np.float64)


def inference_ms(model: keras.Model, repeats: int = TIMING_REPEATS) -> float:
    """Median time of one single-image forward pass, after a warm-up call."""
    size = int(model.input_shape[1])
    image = np.full((1, size, size, 3), 128.0, dtype=np.float32)
    model(image, training=False)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        model(image, training=False)
        times.append(time.perf_counter() - start)
    return float(np.median(times) * 1000)


def evaluate_samples(
    model: keras.Model, classes: list[str], samples: list[data.Sample], root: Path, batch_size: int = 32,
    time_inference: bool = True,
) -> tuple[dict, list[dict]]:
    """Metrics (with per-source and per-chain figures when the samples know their source or chain)
    and prediction rows (with a ``chain`` column where the manifest names chains)."""
    probs = predict_samples(model, samples, batch_size)
    labels = np.array([s.label for s in samples])
    sources = [s.source for s in samples]
    named_chains = any(s.chain for s in samples)
    result = metrics.score_predictions(labels, probs, classes,
                                       [s or "unknown" for s in sources] if any(sources) else None,
                                       [dict(s.subgroups) for s in samples],
                                       [s.processing_chain or "unknown" for s in samples] if named_chains else None)
    if time_inference:
        result["inference_ms_per_image"] = inference_ms(model)
    rows = []
    for sample, p in zip(samples, probs):
        row = {"path": Path(sample.path).relative_to(root).as_posix(), "label": classes[sample.label],
               "predicted": classes[int(p.argmax())], "source": sample.source or "",
               **({"chain": sample.processing_chain or ""} if named_chains else {}), **dict(sample.subgroups)}
        row.update({f"p_{name}": round(float(v), 6) for name, v in zip(classes, p)})
        rows.append(row)
    log.info("accuracy %.4f, macro-F1 %.4f on %d images", result["accuracy"], result["macro_f1"], len(samples))
    return result, rows


def write_predictions(folder: Path, rows: list[dict], name: str = PREDICTIONS_FILE) -> None:
    """Write prediction rows as ``folder/name`` (predictions.csv: test split; val_predictions.csv: validation)."""
    with (folder / name).open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(dict.fromkeys(k for row in rows for k in row)), restval="")
        writer.writeheader()
        writer.writerows(rows)


def evaluate_folder(model_dir: str | Path, data_dir: str | Path, batch_size: int = 32) -> dict:
    """Evaluate a saved model on every labelled image of any folder in the accepted layouts."""
    from .model import load_trained_model

    artifacts.check_model_dir(model_dir)
    model, classes = load_trained_model(model_dir)
    dataset = data.scan_dataset(data_dir, classes=classes)
    result, _ = evaluate_samples(model, classes, dataset.samples, dataset.root, batch_size)
    result["model"] = str(model_dir)
    result["data_dir"] = str(data_dir)
    result["skipped_files"] = len(dataset.skipped)
    return result

"""Score labelled X-rays from an archive with several models, in memory: the evaluate page's computation.

Every image goes through the project's one file-to-input path (``decode_image``, then ``model_gray``)
and the figures come from ``pipeline.metrics.score_predictions``, as for ``python -m pipeline evaluate``.
Images are ordered as that command orders them (class, then path), so even the bootstrap intervals agree.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from pipeline.archive import LabelledImage
from pipeline.images import ImageInputError, decode_image, model_gray
from pipeline.metrics import score_predictions

BATCH_SIZE = 32
Predict = Callable[[np.ndarray], np.ndarray]  # (n, size, size, 3) float32 RGB 0-255 -> (n, classes)
Progress = Callable[[float, str], None]


@dataclass(frozen=True)
class Scorer:
    """What scoring needs of one model: its prediction function, classes and input size."""

    name: str
    predict: Predict
    classes: list[str]
    input_size: int


@dataclass
class Decoded:
    """The archive's images that decode, as grayscale model inputs per input size, and the ones that do not."""

    images: list[LabelledImage]
    inputs: dict[int, np.ndarray]  # input size -> (n, size, size) uint8
    failed: list[str] = field(default_factory=list)  # "name: reason"


@dataclass
class ModelScore:
    metrics: dict
    rows: list[dict]  # one per image: path, label, predicted, p_<class>
    left_out: dict[str, int]  # classes the model does not know -> images left out


def decode_all(images: Sequence[LabelledImage], sizes: Sequence[int]) -> Decoded:
    """Decode each image once and keep only its model inputs (a few kB each, not the full image)."""
    kept, inputs, failed = [], {size: [] for size in sizes}, []
    for image in images:
        try:
            gray = decode_image(image.data, image.name)
        except ImageInputError as exc:
            failed.append(f"{image.name}: {exc.problem}")
            continue
        kept.append(image)
        for size in sizes:
            inputs[size].append(model_gray(gray, size))
    arrays = {size: np.stack(values) if values else np.zeros((0, size, size), np.uint8)
              for size, values in inputs.items()}
    return Decoded(kept, arrays, failed)


def _predict(scorer: Scorer, gray: np.ndarray, done: Callable[[int], None]) -> np.ndarray:
    outputs = []
    for start in range(0, len(gray), BATCH_SIZE):
        batch = np.repeat(gray[start:start + BATCH_SIZE, ..., None], 3, axis=-1).astype(np.float32)
        outputs.append(np.asarray(scorer.predict(batch), dtype=np.float64))
        done(len(batch))
    return np.concatenate(outputs) if outputs else np.zeros((0, len(scorer.classes)))


def score_model(scorer: Scorer, decoded: Decoded, done: Callable[[int], None] = lambda n: None) -> ModelScore:
    """Metrics and per-image rows of one model on the images of the classes it knows."""
    known = [i for i, image in enumerate(decoded.images) if image.label in scorer.classes]
    known.sort(key=lambda i: (scorer.classes.index(decoded.images[i].label), decoded.images[i].name))
    left_out = Counter(image.label for image in decoded.images if image.label not in scorer.classes)
    if not known:
        return ModelScore({}, [], dict(left_out))
    labels = np.array([scorer.classes.index(decoded.images[i].label) for i in known])
    probs = _predict(scorer, decoded.inputs[scorer.input_size][known], done)
    result = score_predictions(labels, probs, scorer.classes)
    rows = [{"model": scorer.name, "path": decoded.images[i].name, "label": decoded.images[i].label,
             "predicted": scorer.classes[int(p.argmax())],
             **{f"p_{name}": round(float(v), 6) for name, v in zip(scorer.classes, p)}}
            for i, p in zip(known, probs)]
    return ModelScore(result, rows, dict(left_out))


def score_all(scorers: Sequence[Scorer], decoded: Decoded, progress: Progress = lambda f, t: None
              ) -> dict[str, ModelScore]:
    """Every model on the decoded images, reporting the share of (model, image) predictions done."""
    total = max(sum(sum(image.label in s.classes for image in decoded.images) for s in scorers), 1)
    done = 0

    def advance(name: str) -> Callable[[int], None]:
        def step(count: int) -> None:
            nonlocal done
            done += count
            progress(min(done / total, 1.0), f"Scoring with {name}: {done} of {total} predictions")
        return step

    return {s.name: score_model(s, decoded, advance(s.name)) for s in scorers}


def models_table(scores: dict[str, ModelScore]) -> pd.DataFrame:
    """One row per model: images, accuracy and macro-F1 with bootstrap 95% intervals, recall per class."""
    rows = []
    for name, score in scores.items():
        m = score.metrics
        if not m:
            continue
        ci = m["ci95"]
        row = {"model": name, "n_images": m["n_images"], "accuracy": m["accuracy"],
               "accuracy CI low": ci["accuracy"][0], "accuracy CI high": ci["accuracy"][1],
               "macro_f1": m["macro_f1"], "macro_f1 CI low": ci["macro_f1"][0], "macro_f1 CI high": ci["macro_f1"][1]}
        for index, cls in enumerate(m["class_names"]):
            if m["per_class"][cls]["support"]:
                row[f"recall {cls}"] = m["per_class"][cls]["recall"]
                row[f"recall {cls} CI low"], row[f"recall {cls} CI high"] = ci["recall"][index]
        rows.append(row)
    return pd.DataFrame(rows)


def images_table(scores: dict[str, ModelScore]) -> pd.DataFrame:
    """One row per image and model with the model's outputs."""
    return pd.DataFrame([row for score in scores.values() for row in score.rows])


def misclassified(scores: dict[str, ModelScore]) -> pd.DataFrame:
    """The (model, image) pairs whose prediction is wrong."""
    table = images_table(scores)
    if table.empty:
        return table
    return table[table["label"] != table["predicted"]].reset_index(drop=True)

"""Distillation: a trained model's softened outputs as part of the training targets.

A backbone trained from random weights on a few thousand X-rays (VGG16, which has no
BatchNormalization, most of all) converges slowly on hard labels. The outputs of a trained model,
the teacher, say how alike the classes look on each image. The targets become
``(1 - weight) * one_hot + weight * softened``, where ``softened`` is the teacher's probabilities at
temperature T (Hinton et al., 2015, "Distilling the knowledge in a neural network"). The teacher
scores the training images once, through the same file-to-input path as every model; validation
keeps the true labels, so the kept epoch is chosen on the plain loss.
"""

from __future__ import annotations

import gc
import logging
from pathlib import Path

import numpy as np

from . import data
from .errors import ConfigError

log = logging.getLogger(__name__)


def soften(probabilities: np.ndarray, temperature: float) -> np.ndarray:
    """Probabilities at temperature T: softmax(log(p) / T); T > 1 spreads them, T = 1 keeps them."""
    if temperature <= 0:
        raise ConfigError(f"the distillation temperature must be above 0, got {temperature}")
    logits = np.log(np.clip(probabilities, 1e-12, 1.0)) / temperature
    logits -= logits.max(axis=1, keepdims=True)
    exp = np.exp(logits)
    return exp / exp.sum(axis=1, keepdims=True)


def one_hot(labels: np.ndarray, classes: int) -> np.ndarray:
    return np.eye(classes, dtype=np.float32)[np.asarray(labels, dtype=int)]


def soft_targets(labels: np.ndarray, teacher: np.ndarray, temperature: float, weight: float) -> np.ndarray:
    """(n, classes) float32 targets: the true class's one-hot mixed with the softened teacher outputs."""
    if not 0.0 <= weight <= 1.0:
        raise ConfigError(f"the distillation weight must be from 0 to 1, got {weight}")
    hard = one_hot(labels, teacher.shape[1])
    return ((1.0 - weight) * hard + weight * soften(teacher, temperature)).astype(np.float32)


def teacher_probabilities(folder: str | Path, classes: list[str], samples: list[data.Sample],
                          batch_size: int) -> np.ndarray:
    """The teacher's outputs on ``samples``, columns in the order of ``classes``."""
    from .evaluate import predict_samples
    from .model import load_trained_model

    model, teacher_classes = load_trained_model(folder)
    missing = [c for c in classes if c not in teacher_classes]
    if missing:
        raise ConfigError(f"teacher {folder} has no output for {missing}: it knows {teacher_classes}, "
                          f"the data has {classes}")
    log.info("teacher %s scores %d training images", folder, len(samples))
    probs = predict_samples(model, samples, batch_size)
    del model
    gc.collect()
    columns = probs[:, [teacher_classes.index(c) for c in classes]]
    return columns / columns.sum(axis=1, keepdims=True)  # a class the data lacks takes no share

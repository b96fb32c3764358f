"""Paired comparison of models tested on the same images: McNemar's test on correct/incorrect and
paired bootstrap intervals of the differences in macro-F1 and in one class's recall.

numpy only: the comparison page uses it on its first visit, without TensorFlow, scikit-learn or scipy.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from .config import BOOTSTRAP_SAMPLES, MCNEMAR_EXACT_BELOW, SIGNIFICANCE


@dataclass(frozen=True)
class McNemar:
    only_first: int  # images the first model gets right and the second wrong
    only_second: int
    p_value: float
    method: str  # "exact binomial" or "chi-square, continuity-corrected"


def mcnemar(first_correct: np.ndarray, second_correct: np.ndarray,
            exact_below: int = MCNEMAR_EXACT_BELOW) -> McNemar:
    """McNemar's test of two models on the same images: do they err on different images more than chance?"""
    first, second = np.asarray(first_correct, dtype=bool), np.asarray(second_correct, dtype=bool)
    b, c = int(np.sum(first & ~second)), int(np.sum(~first & second))
    if b + c == 0:
        return McNemar(b, c, 1.0, "exact binomial")
    if b + c < exact_below:
        tail = sum(math.comb(b + c, i) for i in range(min(b, c) + 1)) / 2 ** (b + c)
        return McNemar(b, c, min(1.0, 2 * tail), "exact binomial")
    statistic = (abs(b - c) - 1) ** 2 / (b + c)
    return McNemar(b, c, math.erfc(math.sqrt(statistic / 2)), "chi-square, continuity-corrected")  # 1 dof


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm-Bonferroni adjusted p-values: the family of pairs keeps a 5% error rate."""
    p = np.asarray(p_values, dtype=float)
    order = np.argsort(p)
    adjusted = np.maximum.accumulate((len(p) - np.arange(len(p))) * p[order])
    result = np.empty_like(p)
    result[order] = np.minimum(adjusted, 1.0)
    return result.tolist()


def _counts(y_true: np.ndarray, y_pred: np.ndarray, k: int, idx: np.ndarray) -> np.ndarray:
    """Confusion matrices (rows = true class) of every resample ``idx`` (samples, n) at once: (samples, k, k)."""
    codes = (y_true * k + y_pred)[idx] + (np.arange(len(idx)) * k * k)[:, None]
    return np.bincount(codes.ravel(), minlength=len(idx) * k * k).reshape(len(idx), k, k)


def _figures(counts: np.ndarray, labels: np.ndarray, positive: int) -> np.ndarray:
    """Macro-F1 over ``labels`` and the recall of ``positive`` per confusion matrix: (samples, 2).

    As ``pipeline.metrics``: a class never predicted has precision 0, a class without images recall 0."""
    tp = np.diagonal(counts, axis1=1, axis2=2).astype(float)
    support, called = counts.sum(axis=2), counts.sum(axis=1)
    recall = np.divide(tp, support, out=np.zeros_like(tp), where=support > 0)
    precision = np.divide(tp, called, out=np.zeros_like(tp), where=called > 0)
    total = precision + recall
    f1 = np.divide(2 * precision * recall, total, out=np.zeros_like(tp), where=total > 0)
    return np.stack([f1[:, labels].mean(axis=1), recall[:, positive]], axis=1)


@dataclass(frozen=True)
class Difference:
    """First model minus second, with the paired bootstrap 95% interval."""

    value: float
    low: float
    high: float

    @property
    def real(self) -> bool:
        """The interval excludes zero."""
        return self.low > 0 or self.high < 0


def paired_bootstrap(y_true: np.ndarray, first: np.ndarray, second: np.ndarray, k: int, positive: int,
                     samples: int = BOOTSTRAP_SAMPLES, seed: int = 0) -> tuple[Difference, Difference]:
    """Differences in macro-F1 and in the recall of class ``positive``, resampling images (both models at once).

    Each model's macro-F1 averages the classes of the labels and its predictions, as in ``pipeline.metrics``."""
    y_true, first, second = (np.asarray(a, dtype=int) for a in (y_true, first, second))
    everything = np.arange(len(y_true))[None, :]
    resamples = np.random.default_rng(seed).integers(0, len(y_true), (samples, len(y_true)))

    def figures(predicted: np.ndarray, idx: np.ndarray) -> np.ndarray:
        return _figures(_counts(y_true, predicted, k, idx), np.unique(np.r_[y_true, predicted]), positive)

    observed, draws = (figures(first, idx) - figures(second, idx) for idx in (everything, resamples))
    low, high = np.percentile(draws, [2.5, 97.5], axis=0)
    return (Difference(float(observed[0, 0]), float(low[0]), float(high[0])),
            Difference(float(observed[0, 1]), float(low[1]), float(high[1])))


@dataclass(frozen=True)
class PairResult:
    first: str
    second: str
    n_images: int
    macro_f1: Difference
    recall: Difference  # of the positive class
    test: McNemar
    p_adjusted: float  # Holm over every pair compared

    @property
    def differs(self) -> bool:
        return self.macro_f1.real or self.recall.real or self.p_adjusted < SIGNIFICANCE


def compare_groups(groups: Sequence[tuple[np.ndarray, dict[str, np.ndarray]]], k: int, positive: int,
                   samples: int = BOOTSTRAP_SAMPLES) -> list[PairResult]:
    """Every pair of models within each group, a group being (``y_true``, predictions of its models on those
    images); never a pair across groups. Holm's adjustment covers every pair compared, all groups together."""
    pairs = [(y_true, predictions, a, b) for y_true, predictions in groups
             for i, a in enumerate(predictions) for b in list(predictions)[i + 1:]]
    tests = [mcnemar(predictions[a] == y_true, predictions[b] == y_true) for y_true, predictions, a, b in pairs]
    adjusted = holm([t.p_value for t in tests]) if tests else []
    results = []
    for (y_true, predictions, a, b), test, p in zip(pairs, tests, adjusted):
        f1, recall = paired_bootstrap(y_true, predictions[a], predictions[b], k, positive, samples)
        results.append(PairResult(a, b, len(y_true), f1, recall, test, p))
    return results

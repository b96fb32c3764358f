"""An operating point of one class against the rest: a threshold on that class's output, its 2x2 table,
sensitivity, specificity, PPV and NPV with Wilson 95% intervals, and the presets chosen on validation data.

numpy only: the comparison page uses it without TensorFlow.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .config import OPERATING_SENSITIVITY, WILSON_Z


def wilson_interval(successes: int, trials: int, z: float = WILSON_Z) -> tuple[float, float]:
    """Wilson score interval of a proportion; (nan, nan) with no trials.

    Unlike the normal approximation it stays inside 0-1 and is sound at 0 or ``trials`` successes.
    """
    if trials == 0:
        return float("nan"), float("nan")
    p = successes / trials
    centre = (p + z * z / (2 * trials)) / (1 + z * z / trials)
    half = z / (1 + z * z / trials) * np.sqrt(p * (1 - p) / trials + z * z / (4 * trials * trials))
    return float(max(centre - half, 0.0)), float(min(centre + half, 1.0))


@dataclass(frozen=True)
class Rate:
    """A proportion ``successes / trials`` with its Wilson 95% interval (nan where ``trials`` is 0)."""

    successes: int
    trials: int

    @property
    def value(self) -> float:
        return self.successes / self.trials if self.trials else float("nan")

    @property
    def interval(self) -> tuple[float, float]:
        return wilson_interval(self.successes, self.trials)


@dataclass(frozen=True)
class OperatingPoint:
    """The positive class called where its output is at least ``threshold``."""

    threshold: float
    tp: int
    fp: int
    fn: int
    tn: int

    @property
    def sensitivity(self) -> Rate:
        return Rate(self.tp, self.tp + self.fn)

    @property
    def specificity(self) -> Rate:
        return Rate(self.tn, self.tn + self.fp)

    @property
    def ppv(self) -> Rate:
        return Rate(self.tp, self.tp + self.fp)

    @property
    def npv(self) -> Rate:
        return Rate(self.tn, self.tn + self.fn)

    @property
    def roc_point(self) -> tuple[float, float]:
        """(false positive rate, true positive rate): where the point sits on the ROC curve."""
        return 1.0 - self.specificity.value, self.sensitivity.value

    def table(self) -> np.ndarray:
        """2x2 counts: rows true positive / negative, columns called positive / negative."""
        return np.array([[self.tp, self.fn], [self.fp, self.tn]])


def one_vs_rest(labels: np.ndarray, scores: np.ndarray, threshold: float) -> OperatingPoint:
    """Counts of the 2x2 table where ``labels`` (bool: truly positive) meet ``scores >= threshold``."""
    truth, called = np.asarray(labels, dtype=bool), np.asarray(scores, dtype=float) >= threshold
    return OperatingPoint(float(threshold), int(np.sum(truth & called)), int(np.sum(~truth & called)),
                          int(np.sum(truth & ~called)), int(np.sum(~truth & ~called)))


def _candidates(scores: np.ndarray) -> np.ndarray:
    """Every distinct score, highest first: each is a threshold that changes the table."""
    return np.unique(np.asarray(scores, dtype=float))[::-1]


def _check(labels: np.ndarray) -> np.ndarray:
    truth = np.asarray(labels, dtype=bool)
    if truth.all() or not truth.any():
        raise ValueError(f"a threshold needs positive and negative examples; got {int(truth.sum())} positive "
                         f"of {truth.size}")
    return truth


def threshold_for_sensitivity(labels: np.ndarray, scores: np.ndarray,
                              target: float = OPERATING_SENSITIVITY) -> float:
    """The highest threshold whose sensitivity reaches ``target`` (so the best specificity that allows)."""
    truth = _check(labels)
    scores = np.asarray(scores, dtype=float)
    positives = np.sort(scores[truth])[::-1]
    needed = int(np.ceil(target * truth.sum() - 1e-9))  # positives that must be called positive
    return float(positives[max(needed, 1) - 1])


def youden_threshold(labels: np.ndarray, scores: np.ndarray) -> float:
    """The threshold with the highest sensitivity + specificity - 1 (the highest such threshold on ties)."""
    truth = _check(labels)
    scores = np.asarray(scores, dtype=float)
    thresholds = _candidates(scores)
    called = scores[None, :] >= thresholds[:, None]
    youden = (called & truth).sum(axis=1) / truth.sum() - (called & ~truth).sum(axis=1) / (~truth).sum()
    return float(thresholds[int(np.argmax(youden))])


def presets(labels: np.ndarray, scores: np.ndarray) -> dict[str, float]:
    """The preset thresholds, to be chosen on validation predictions (never on the test split)."""
    return {f"sensitivity >= {OPERATING_SENSITIVITY:.0%}": threshold_for_sensitivity(labels, scores),
            "Youden (max sensitivity + specificity)": youden_threshold(labels, scores)}

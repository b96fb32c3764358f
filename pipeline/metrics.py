"""Classification metrics from labels and probabilities: numpy and scikit-learn only."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .config import BOOTSTRAP_SAMPLES, CALIBRATION_BINS, CHAIN_COLUMN, MIN_SUBGROUP_SUPPORT, VALIDATION_KEYS


def confusion(y_true: np.ndarray, y_pred: np.ndarray, k: int) -> np.ndarray:
    """k x k counts, rows = true class, columns = predicted class."""
    from sklearn.metrics import confusion_matrix

    return confusion_matrix(y_true, y_pred, labels=np.arange(k))


def recall_and_f1(y_true: np.ndarray, y_pred: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Recall and F1 of each class 0..k-1, 0 where a class is never true (recall) or never true nor predicted (F1).
    A macro-F1 is the mean of F1 over the classes it counts, as scikit-learn's ``f1_score(average="macro")``."""
    from sklearn.metrics import precision_recall_fscore_support

    _, recall, f1, _ = precision_recall_fscore_support(y_true, y_pred, labels=np.arange(k), zero_division=0)
    return recall, f1


def specificity(y_true: np.ndarray, y_pred: np.ndarray, k: int) -> np.ndarray:
    """TN / (TN + FP) per class, one-vs-rest."""
    from sklearn.metrics import multilabel_confusion_matrix

    per_class = multilabel_confusion_matrix(y_true, y_pred, labels=np.arange(k))
    tn, fp = per_class[:, 0, 0], per_class[:, 0, 1]
    return np.divide(tn, tn + fp, out=np.zeros(k), where=(tn + fp) > 0)


def calibration(y_true: np.ndarray, probs: np.ndarray, bins: int = CALIBRATION_BINS) -> tuple[float, list[dict]]:
    """Expected calibration error of the top-class confidence, and the reliability bins."""
    confidence = probs.max(axis=1)
    correct = probs.argmax(axis=1) == y_true
    edges = np.linspace(0.0, 1.0, bins + 1)
    index = np.clip(np.digitize(confidence, edges[1:-1], right=True), 0, bins - 1)
    ece, table = 0.0, []
    for b in range(bins):
        mask = index == b
        n = int(mask.sum())
        row = {"lower": float(edges[b]), "upper": float(edges[b + 1]), "count": n,
               "confidence": None, "accuracy": None}
        if n:
            row["confidence"], row["accuracy"] = float(confidence[mask].mean()), float(correct[mask].mean())
            ece += n / len(y_true) * abs(row["accuracy"] - row["confidence"])
        table.append(row)
    return float(ece), table


def bootstrap_intervals(
    y_true: np.ndarray, y_pred: np.ndarray, k: int, samples: int = BOOTSTRAP_SAMPLES, seed: int = 0
) -> dict:
    """95% percentile bootstrap intervals of accuracy, macro-F1 and per-class recall."""
    rng = np.random.default_rng(seed)
    labels = np.unique(np.concatenate([y_true, y_pred]))
    n = len(y_true)
    idx = np.stack([rng.integers(0, n, n) for _ in range(samples)])
    # Resample s gets the classes s*k..s*k+k-1, so that one scikit-learn call scores every resample.
    offset = (np.arange(samples) * k)[:, None]
    recall, f1 = recall_and_f1((y_true[idx] + offset).ravel(), (y_pred[idx] + offset).ravel(), samples * k)
    recall, f1 = recall.reshape(samples, k), f1.reshape(samples, k)
    acc = np.mean(y_true[idx] == y_pred[idx], axis=1)

    def interval(values: np.ndarray) -> list[float]:
        return [float(v) for v in np.percentile(values, [2.5, 97.5], axis=0)]

    return {"accuracy": interval(acc), "macro_f1": interval(f1[:, labels].mean(axis=1)),
            "recall": [interval(recall[:, c]) for c in range(k)]}


def _auc(y_true: np.ndarray, scores: np.ndarray) -> float | None:
    """One-vs-rest ROC AUC, or None where the class or its complement is absent."""
    if y_true.min() == y_true.max():
        return None
    from sklearn.metrics import roc_auc_score

    return float(roc_auc_score(y_true, scores))


def compute_metrics(
    y_true: Sequence[int],
    probs: np.ndarray,
    class_names: Sequence[str],
    sources: Sequence[str] | None = None,
    bootstrap_samples: int = BOOTSTRAP_SAMPLES,
    seed: int = 0,
) -> dict:
    """Every figure a model card and the comparison page show, as a JSON-ready dict."""
    # Imported here: the comparison page reads this module's helpers on its first visit, without scikit-learn.
    from sklearn.metrics import precision_recall_fscore_support

    y_true = np.asarray(y_true, dtype=int)
    probs = np.asarray(probs, dtype=float)
    k = len(class_names)
    if probs.shape != (len(y_true), k):
        raise ValueError(f"probabilities have shape {probs.shape}, expected ({len(y_true)}, {k})")
    y_pred = probs.argmax(axis=1)
    cm = confusion(y_true, y_pred, k)
    labels = np.unique(np.concatenate([y_true, y_pred]))
    precision, recall, f1, support = precision_recall_fscore_support(
        y_true, y_pred, labels=range(k), zero_division=0
    )
    spec = specificity(y_true, y_pred, k)
    aucs = [_auc(y_true == c, probs[:, c]) for c in range(k)]
    per_class = {
        name: {"precision": float(precision[c]), "recall": float(recall[c]), "f1": float(f1[c]),
               "specificity": float(spec[c]), "roc_auc": aucs[c], "support": int(support[c])}
        for c, name in enumerate(class_names)
    }
    weights = support[labels] / max(support[labels].sum(), 1)
    ece, reliability = calibration(y_true, probs)
    valid_aucs = [a for a in aucs if a is not None]
    result = {
        "class_names": list(class_names),
        "n_images": int(len(y_true)),
        "accuracy": float(np.mean(y_true == y_pred)),
        "macro_f1": float(f1[labels].mean()),
        "weighted_f1": float(np.sum(f1[labels] * weights)),
        "macro_precision": float(precision[labels].mean()),
        "macro_recall": float(recall[labels].mean()),
        "macro_specificity": float(spec[labels].mean()),
        "roc_auc_macro": float(np.mean(valid_aucs)) if valid_aucs else None,
        "per_class": per_class,
        "confusion_matrix": cm.tolist(),
        "ece": ece,
        "reliability": reliability,
        "ci95": bootstrap_intervals(y_true, y_pred, k, bootstrap_samples, seed),
    }
    if sources is not None:
        result["per_source"] = per_group_metrics(y_true, y_pred, np.asarray(sources), class_names)
    return result


def per_group_metrics(
    y_true: np.ndarray, y_pred: np.ndarray, groups: np.ndarray, class_names: Sequence[str]
) -> dict:
    """Accuracy, macro-F1 and recall per class within each group (for example, data source).

    Macro-F1 averages the classes the group holds: a class it lacks has no F1 there (a wrong
    prediction into it still lowers the recall, and so the F1, of the true class)."""
    k = len(class_names)
    out = {}
    for group in sorted(set(groups.tolist())):
        mask = groups == group
        t, p = y_true[mask], y_pred[mask]
        cm = confusion(t, p, k)
        recall, f1 = recall_and_f1(t, p, k)
        out[str(group)] = {
            "n_images": int(mask.sum()),
            "accuracy": float(np.mean(t == p)),
            "macro_f1": float(f1[np.unique(t)].mean()),
            "recall": {class_names[c]: float(recall[c]) for c in range(k) if cm[c].sum() > 0},
            "support": {class_names[c]: int(cm[c].sum()) for c in range(k) if cm[c].sum() > 0},
        }
    return out


def score_predictions(
    y_true: Sequence[int],
    probs: np.ndarray,
    class_names: Sequence[str],
    sources: Sequence[str] | None = None,
    subgroups: Sequence[dict[str, str]] | None = None,
    chains: Sequence[str] | None = None,
) -> dict:
    """Metrics with figures per source, per processing chain and per subgroup, and the worst subgroup recall.

    ``chains`` are processing chains the data names apart from its sources (a manifest ``chain``
    column); without them each source is its own chain, and ``per_chain`` repeats ``per_source``.
    ``chains_from`` says which."""
    y_true, probs = np.asarray(y_true, dtype=int), np.asarray(probs, dtype=float)
    result = compute_metrics(y_true, probs, class_names, sources)
    y_pred = probs.argmax(axis=1)
    if chains is not None:
        result["per_chain"] = per_group_metrics(y_true, y_pred, np.asarray(chains), class_names)
        result["chains_from"] = CHAIN_COLUMN
    elif "per_source" in result:
        result["per_chain"], result["chains_from"] = result["per_source"], "source"
    columns = sorted({column for groups in subgroups or [] for column in groups})
    if columns:
        result["per_subgroup"] = {
            f"{column}={value}": figures for column in columns
            for value, figures in per_group_metrics(
                y_true, y_pred, np.array([g.get(column, "unknown") for g in subgroups]), class_names).items()}
    groups = {**result.get("per_source", {}), **(result["per_chain"] if chains is not None else {}),
              **result.get("per_subgroup", {})}
    result["worst_subgroup_recall"] = worst_recall(groups) if groups else None
    return result


def worst_recall(groups: dict, min_support: int = MIN_SUBGROUP_SUPPORT) -> dict | None:
    """The lowest recall of a class within one group (of at least ``min_support`` images of it)."""
    candidates = [{"group": group, "class": name, "recall": recall, "support": values["support"][name]}
                  for group, values in groups.items() for name, recall in values["recall"].items()
                  if values["support"][name] >= min_support]
    return min(candidates, key=lambda c: c["recall"]) if candidates else None


def validation_summary(result: dict) -> dict:
    """What metrics.json keeps of the validation split's metrics: the figures recipes and
    operating points are chosen on, so that the test split is scored once."""
    return {key: result[key] for key in VALIDATION_KEYS if key in result}

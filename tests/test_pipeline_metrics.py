"""Metrics against small cases checked by hand."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline import metrics

CLASSES = ["A", "B", "C"]
# true:      A A A B B C
# predicted: A A B B C C
Y_TRUE = np.array([0, 0, 0, 1, 1, 2])
PROBS = np.array([[0.9, 0.05, 0.05], [0.6, 0.3, 0.1], [0.2, 0.7, 0.1],
                  [0.1, 0.8, 0.1], [0.1, 0.3, 0.6], [0.05, 0.05, 0.9]])


@pytest.fixture(scope="module")
def result():
    return metrics.compute_metrics(Y_TRUE, PROBS, CLASSES, sources=["x", "x", "y", "y", "y", "y"],
                                   bootstrap_samples=200)


def test_confusion_and_accuracy(result):
    assert result["confusion_matrix"] == [[2, 1, 0], [0, 1, 1], [0, 0, 1]]
    assert result["accuracy"] == pytest.approx(4 / 6)


def test_per_class_by_hand(result):
    a, b, c = (result["per_class"][k] for k in CLASSES)
    assert (a["precision"], a["recall"], a["specificity"]) == pytest.approx((1.0, 2 / 3, 1.0))
    assert (b["precision"], b["recall"], b["specificity"]) == pytest.approx((0.5, 0.5, 3 / 4))
    assert (c["precision"], c["recall"], c["specificity"]) == pytest.approx((0.5, 1.0, 4 / 5))
    f1 = [2 * 1 * (2 / 3) / (1 + 2 / 3), 0.5, 2 * 0.5 / 1.5]
    assert result["macro_f1"] == pytest.approx(np.mean(f1))
    assert result["weighted_f1"] == pytest.approx(np.dot(f1, [3, 2, 1]) / 6)
    assert a["support"] == 3 and a["roc_auc"] == pytest.approx(1.0)


def test_calibration_by_hand():
    probs = np.array([[0.9, 0.1], [0.9, 0.1], [0.6, 0.4], [0.6, 0.4]])
    ece, bins = metrics.calibration(np.array([0, 1, 0, 0]), probs, bins=10)
    # bin (0.8, 0.9]: confidence 0.9, accuracy 0.5; bin (0.5, 0.6]: confidence 0.6, accuracy 1.0
    assert ece == pytest.approx(0.5 * 0.4 + 0.5 * 0.4)
    assert sum(b["count"] for b in bins) == 4


def test_bootstrap_interval_holds_the_estimate_and_is_seeded(result):
    low, high = result["ci95"]["macro_f1"]
    assert low <= result["macro_f1"] <= high
    again = metrics.bootstrap_intervals(Y_TRUE, PROBS.argmax(1), 3, samples=200, seed=0)
    assert again == result["ci95"]


def _labels_and_predictions(n: int = 80) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(1)
    y_true, y_pred = rng.integers(0, 3, n), rng.integers(0, 3, n)
    return y_true, np.where(y_pred == 2, 1, y_pred)  # class C is never predicted


def test_the_bootstrap_scores_every_resample_as_scikit_learn_does():
    from sklearn.metrics import f1_score, recall_score

    y_true, y_pred = _labels_and_predictions()
    rng, labels = np.random.default_rng(3), np.unique(np.r_[y_true, y_pred])
    resamples = [rng.integers(0, len(y_true), len(y_true)) for _ in range(40)]
    f1 = [f1_score(y_true[i], y_pred[i], labels=labels, average="macro", zero_division=0) for i in resamples]
    recall = [recall_score(y_true[i], y_pred[i], labels=range(3), average=None, zero_division=0) for i in resamples]
    accuracy = [np.mean(y_true[i] == y_pred[i]) for i in resamples]
    out = metrics.bootstrap_intervals(y_true, y_pred, 3, samples=40, seed=3)
    assert out["macro_f1"] == np.percentile(f1, [2.5, 97.5]).tolist()
    assert out["recall"] == np.percentile(recall, [2.5, 97.5], axis=0).T.tolist()
    assert out["accuracy"] == np.percentile(accuracy, [2.5, 97.5]).tolist()


def test_group_figures_and_specificity_are_scikit_learns():
    from sklearn.metrics import f1_score, multilabel_confusion_matrix

    y_true, y_pred = _labels_and_predictions()
    groups = np.where(np.arange(len(y_true)) % 3 == 0, "a", "b")
    for name, figures in metrics.per_group_metrics(y_true, y_pred, groups, CLASSES).items():
        t, p = y_true[groups == name], y_pred[groups == name]
        assert figures["macro_f1"] == f1_score(t, p, labels=np.unique(t), average="macro", zero_division=0)
    (tn, fp), _ = multilabel_confusion_matrix(y_true, y_pred).transpose(1, 2, 0)
    assert metrics.specificity(y_true, y_pred, 3).tolist() == (tn / (tn + fp)).tolist()


def test_perfect_predictions_have_point_intervals():
    y = np.array([0, 1, 2] * 5)
    out = metrics.compute_metrics(y, np.eye(3)[y], CLASSES, bootstrap_samples=50)
    assert out["ci95"]["accuracy"] == [1.0, 1.0] and out["ece"] == pytest.approx(0.0)


def test_per_source(result):
    assert result["per_source"]["x"] == {"n_images": 2, "accuracy": 1.0, "macro_f1": 1.0,
                                         "recall": {"A": 1.0}, "support": {"A": 2}}
    assert result["per_source"]["y"]["n_images"] == 4


def test_absent_class_has_no_auc():
    out = metrics.compute_metrics(np.array([0, 0, 1]), np.array([[0.8, 0.1, 0.1]] * 3), CLASSES, bootstrap_samples=10)
    assert out["per_class"]["C"]["roc_auc"] is None and out["per_class"]["C"]["support"] == 0


def test_shape_mismatch_is_refused():
    with pytest.raises(ValueError, match="expected"):
        metrics.compute_metrics(Y_TRUE, PROBS[:, :2], CLASSES)


def test_worst_recall_ignores_small_groups():
    groups = {"a": {"recall": {"A": 0.9, "B": 0.2}, "support": {"A": 50, "B": 3}},
              "b": {"recall": {"A": 0.5}, "support": {"A": 20}}}
    assert metrics.worst_recall(groups, min_support=10) == {"group": "b", "class": "A", "recall": 0.5, "support": 20}
    assert metrics.worst_recall(groups, min_support=100) is None


def test_group_macro_f1_averages_the_classes_the_group_holds():
    # one source holds only A; one A image is predicted B: F1 of A is 2/3, B has no F1 there
    groups = metrics.per_group_metrics(np.array([0, 0]), np.array([0, 1]), np.array(["s", "s"]), CLASSES)
    assert groups["s"]["macro_f1"] == pytest.approx(2 / 3) and groups["s"]["recall"] == {"A": 0.5}


def test_score_predictions_adds_subgroups_and_the_worst_recall():
    subgroups = [{"flag": "0"}] * 3 + [{"flag": "1"}] * 2 + [{}]
    out = metrics.score_predictions(Y_TRUE, PROBS, CLASSES, subgroups=subgroups)
    assert set(out["per_subgroup"]) == {"flag=0", "flag=1", "flag=unknown"}
    assert out["per_subgroup"]["flag=1"]["recall"] == {"B": 0.5}
    assert out["worst_subgroup_recall"] is None, "no group has the minimum support"

"""Operating points (one class against the rest), Wilson intervals, McNemar's test and paired bootstrap."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import binomtest
from sklearn.metrics import f1_score, recall_score

from pipeline.operating import one_vs_rest, presets, threshold_for_sensitivity, wilson_interval, youden_threshold
from pipeline.paired import compare_groups, holm, mcnemar, paired_bootstrap


def test_wilson_interval_matches_the_textbook_values():
    # Newcombe (1998), table I: 81/263 -> 0.2553-0.3662.
    low, high = wilson_interval(81, 263)
    assert low == pytest.approx(0.2553, abs=5e-4) and high == pytest.approx(0.3662, abs=5e-4)
    assert wilson_interval(0, 10)[0] == 0.0 and 0.25 < wilson_interval(0, 10)[1] < 0.35
    assert wilson_interval(10, 10)[1] == pytest.approx(1.0)
    assert np.isnan(wilson_interval(0, 0)).all()


@pytest.fixture
def scored():
    rng = np.random.default_rng(3)
    truth = np.r_[np.ones(60, bool), np.zeros(140, bool)]
    scores = np.clip(np.where(truth, rng.normal(0.7, 0.2, 200), rng.normal(0.3, 0.2, 200)), 0, 1)
    return truth, scores


def test_operating_point_counts_and_rates(scored):
    truth, scores = scored
    point = one_vs_rest(truth, scores, 0.5)
    assert point.tp + point.fn == 60 and point.fp + point.tn == 140
    assert point.tp == int(np.sum(scores[truth] >= 0.5)) and point.fp == int(np.sum(scores[~truth] >= 0.5))
    assert point.sensitivity.value == pytest.approx(point.tp / 60)
    assert point.ppv.value == pytest.approx(point.tp / (point.tp + point.fp))
    assert point.roc_point == pytest.approx((point.fp / 140, point.tp / 60))
    assert point.table().tolist() == [[point.tp, point.fn], [point.fp, point.tn]]
    low, high = point.npv.interval
    assert low < point.npv.value < high


def test_sensitivity_preset_is_the_highest_threshold_that_reaches_the_target(scored):
    truth, scores = scored
    threshold = threshold_for_sensitivity(truth, scores, 0.95)
    assert one_vs_rest(truth, scores, threshold).sensitivity.value >= 0.95
    higher = np.min(scores[scores > threshold])
    assert one_vs_rest(truth, scores, higher).sensitivity.value < 0.95


def test_youden_preset_maximises_sensitivity_plus_specificity(scored):
    truth, scores = scored
    best = youden_threshold(truth, scores)

    def youden(t: float) -> float:
        point = one_vs_rest(truth, scores, t)
        return point.sensitivity.value + point.specificity.value - 1

    assert youden(best) == pytest.approx(max(youden(t) for t in np.unique(scores)))
    assert set(presets(truth, scores).values()) == {threshold_for_sensitivity(truth, scores), best}


def test_presets_need_both_classes():
    with pytest.raises(ValueError, match="positive and negative"):
        youden_threshold(np.ones(5, bool), np.linspace(0, 1, 5))


def test_mcnemar_exact_and_chi_square():
    first = np.r_[np.ones(10, bool), np.zeros(2, bool), np.ones(50, bool)]
    second = np.r_[np.zeros(10, bool), np.ones(2, bool), np.ones(50, bool)]
    exact = mcnemar(first, second)
    assert (exact.only_first, exact.only_second, exact.method) == (10, 2, "exact binomial")
    assert exact.p_value == pytest.approx(binomtest(10, 12, 0.5).pvalue)
    large = mcnemar(np.r_[np.ones(40, bool), np.zeros(20, bool)], np.r_[np.zeros(40, bool), np.ones(20, bool)])
    assert large.method.startswith("chi-square")
    assert large.p_value == pytest.approx(0.0141, abs=5e-4)  # (|40-20|-1)^2/60 = 6.02, 1 dof
    assert mcnemar(first, first).p_value == 1.0


def test_holm_adjusts_in_order():
    assert holm([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.06, 0.06])
    assert holm([0.2, 0.9]) == pytest.approx([0.4, 0.9])


def test_paired_bootstrap_of_identical_models_is_zero_and_finds_a_real_gap():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, 300)
    good = np.where(rng.random(300) < 0.9, y, (y + 1) % 3)
    poor = np.where(rng.random(300) < 0.6, y, (y + 1) % 3)
    f1, recall = paired_bootstrap(y, good, good, 3, 0, samples=200)
    assert (f1.value, f1.low, f1.high, recall.real) == (0.0, 0.0, 0.0, False)
    f1, recall = paired_bootstrap(y, good, poor, 3, 0, samples=200)
    assert f1.value == pytest.approx(f1_score(y, good, average="macro") - f1_score(y, poor, average="macro"))
    assert recall.value == pytest.approx(recall_score(y == 0, good == 0) - recall_score(y == 0, poor == 0))
    assert f1.real and f1.low > 0.1 and f1.low < f1.value < f1.high


def models_on(y: np.ndarray, rng, shares: dict[str, float]) -> dict[str, np.ndarray]:
    return {name: np.where(rng.random(len(y)) < share, y, (y + 1) % 3) for name, share in shares.items()}


def test_compare_groups_names_every_pair_once():
    rng = np.random.default_rng(1)
    y = rng.integers(0, 3, 200)
    results = compare_groups([(y, models_on(y, rng, {"A": 0.95, "B": 0.93, "C": 0.5}))], 3, 0, samples=200)
    assert [(r.first, r.second) for r in results] == [("A", "B"), ("A", "C"), ("B", "C")]
    verdict = {(r.first, r.second): r.differs for r in results}
    assert verdict[("A", "C")] and verdict[("B", "C")] and not verdict[("A", "B")]


def test_compare_groups_pairs_within_each_group_and_adjusts_over_all_pairs():
    rng = np.random.default_rng(2)
    y1, y2 = rng.integers(0, 3, 200), rng.integers(0, 3, 150)
    first = models_on(y1, rng, {"A": 0.9, "B": 0.88})  # the least significant pair: it raises the others' Holm factors
    second = models_on(y2, rng, {"C": 0.9, "D": 0.7, "E": 0.5})
    results = compare_groups([(y1, first), (y2, second)], 3, 0, samples=200)
    assert [(r.first, r.second, r.n_images) for r in results] == [
        ("A", "B", 200), ("C", "D", 150), ("C", "E", 150), ("D", "E", 150)]
    assert [r.p_adjusted for r in results] == pytest.approx(holm([r.test.p_value for r in results]))
    alone = compare_groups([(y2, second)], 3, 0, samples=200)
    assert [r.p_adjusted for r in alone] == pytest.approx(holm([r.test.p_value for r in alone]))
    assert [r.p_adjusted for r in results[1:]] != pytest.approx([r.p_adjusted for r in alone])  # a larger family

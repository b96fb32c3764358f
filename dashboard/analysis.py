"""The analyst's figures of the comparison page: headline, paired comparison and operating point.

pandas in, tables and sentences out, no Streamlit and no TensorFlow: the page only draws them.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from pipeline.config import MIN_SUBGROUP_SUPPORT, OPERATING_CLASS, SIGNIFICANCE
from pipeline.metrics import worst_recall
from pipeline.operating import OperatingPoint, Rate, wilson_interval
from pipeline.paired import Difference, PairResult, compare_groups

from .catalog import ModelEntry

MACRO_F1 = "macro-F1"
WORST = "worst recall in one chain"
NOT_PAIRED = ("{names}: tested on images no other model was tested on, so a paired test cannot compare them "
              "with the others; compare their intervals instead.")
SEPARATE_SPLITS = ("The models were tested on {count} different sets of images ({groups}): pairs are compared within "
                   "each set, never across; compare intervals across them.")


def points(value: float) -> str:
    """A difference of two fractions in percentage points, signed."""
    return f"{value * 100:+.1f}"


def worst_chain(metrics: dict) -> dict | None:
    """The lowest recall of a class within one acquisition chain (``per_chain``; ``per_source`` where absent)."""
    groups = metrics.get("per_chain") or metrics.get("per_source") or {}
    return worst_recall(groups, MIN_SUBGROUP_SUPPORT) if groups else None


def headline(entries: list[ModelEntry]) -> pd.DataFrame:
    """Per model, macro-F1 with its bootstrap interval beside the worst per-chain recall with its Wilson interval."""
    rows = []
    for entry in entries:
        metrics = entry.metrics or {}
        low, high = ((metrics.get("ci95") or {}).get("macro_f1") or [np.nan, np.nan])
        rows.append({"model": entry.name, "group": MACRO_F1, "value": metrics.get("macro_f1"), "low": low,
                     "high": high, "note": "test split"})
        worst = worst_chain(metrics)
        if worst:
            hits = round(worst["recall"] * worst["support"])
            low, high = wilson_interval(hits, worst["support"])
            rows.append({"model": entry.name, "group": WORST, "value": worst["recall"], "low": low, "high": high,
                         "note": f"{worst['class']} in {worst['group']}, n={worst['support']}"})
    return pd.DataFrame(rows, columns=["model", "group", "value", "low", "high", "note"])


def shared_splits(frames: dict[str, pd.DataFrame]) -> list[list[str]]:
    """Groups of models whose test predictions hold exactly the same image paths, largest group first."""
    groups: dict[frozenset, list[str]] = {}
    for name, frame in frames.items():
        groups.setdefault(frozenset(frame["path"].astype(str)), []).append(name)
    return sorted(groups.values(), key=len, reverse=True)


def _indices(values: pd.Series, classes: list[str]) -> np.ndarray:
    return values.astype(str).map({name: i for i, name in enumerate(classes)}).to_numpy(dtype=int)


def leaders(entries: list[ModelEntry]) -> list[ModelEntry]:
    """The models with a test macro-F1, best first."""
    return sorted((e for e in entries if (e.metrics or {}).get("macro_f1") is not None),
                  key=lambda e: e.metrics["macro_f1"], reverse=True)


def paired_results(frames: dict[str, pd.DataFrame], classes: list[str],
                   positive: str = OPERATING_CLASS) -> tuple[list[PairResult], list[str]]:
    """Paired comparisons within each group of models tested on the same images, and notes on what cannot be paired."""
    groups = shared_splits(frames)
    paired = [names for names in groups if len(names) >= 2]
    if not paired:
        return [], ["No two models were tested on the same images, so none can be compared pair by pair."]
    data = []
    for names in paired:
        y_true = _indices(frames[names[0]].sort_values("path")["label"], classes)
        predicted = {name: _indices(frames[name].sort_values("path")["predicted"], classes) for name in names}
        data.append((y_true, predicted))
    alone = [names[0] for names in groups if len(names) == 1]
    notes = [SEPARATE_SPLITS.format(count=len(paired), groups="; ".join(", ".join(names) for names in paired))
             ] if len(paired) > 1 else []
    notes += [NOT_PAIRED.format(names=", ".join(alone))] if alone else []
    return compare_groups(data, len(classes), classes.index(positive)), notes


def pair_table(results: list[PairResult], positive: str = OPERATING_CLASS) -> pd.DataFrame:
    """One row per pair: the differences (first minus second, in points) with intervals, and McNemar's test."""
    return pd.DataFrame([{
        "pair": f"{r.first} - {r.second}",
        "macro-F1 difference (points)": f"{points(r.macro_f1.value)} ({points(r.macro_f1.low)} to "
                                        f"{points(r.macro_f1.high)})",
        f"{positive} recall difference (points)": f"{points(r.recall.value)} ({points(r.recall.low)} to "
                                                  f"{points(r.recall.high)})",
        "right only by first / second": f"{r.test.only_first} / {r.test.only_second}",
        "McNemar p": f"{r.test.p_value:.2g} ({r.test.method})",
        "p, Holm-adjusted": f"{r.p_adjusted:.2g}",
        "real difference": "yes" if r.differs else "no",
    } for r in results])


def _difference_words(first: str, second: str, label: str, diff: Difference) -> str:
    """"A has the higher X (d points, 95% CI lo to hi): real", the interval turned to the leader's side."""
    verdict = "real" if diff.real else "not a real difference"
    if diff.value == 0:
        return f"both have the same {label} (95% CI of the difference {points(diff.low)} to {points(diff.high)}): " \
               + verdict
    leader, sign = (first, 1) if diff.value > 0 else (second, -1)
    low, high = sorted((sign * diff.low, sign * diff.high))
    return (f"{leader} has the higher {label} ({abs(diff.value) * 100:.1f} points, 95% CI {points(low)} to "
            f"{points(high)}): {verdict}")


def pair_sentence(result: PairResult, positive: str = OPERATING_CLASS) -> str:
    """In words: which of the pair's differences are real, and which are not."""
    parts = [_difference_words(result.first, result.second, label, diff)
             for label, diff in (("macro-F1", result.macro_f1), (f"{positive} recall", result.recall))]
    mcnemar = (f"McNemar's test: {result.test.only_first} images right only by {result.first}, "
               f"{result.test.only_second} only by {result.second}, p = {result.p_adjusted:.2g} after Holm "
               f"({'they err on different images' if result.p_adjusted < SIGNIFICANCE else 'no real difference'})")
    verdict = "differ" if result.differs else "do not differ"
    return f"**{result.first} and {result.second} {verdict}.** " + "; ".join(parts) + f". {mcnemar}."


def lead_sentence(entries: list[ModelEntry], results: list[PairResult]) -> str:
    """Which model leads on macro-F1, and whether the paired test finds the lead over the runner-up real."""
    ranked = leaders(entries)
    if not ranked:
        return "No model has a test macro-F1 yet."
    top = ranked[0]
    text = f"{top.name} leads on test macro-F1 ({top.metrics['macro_f1']:.1%})"
    if len(ranked) == 1:
        return text + "."
    runner = ranked[1]
    text += f", ahead of {runner.name} ({runner.metrics['macro_f1']:.1%})"
    pair = next((r for r in results if {r.first, r.second} == {top.name, runner.name}), None)
    if pair is None:
        return text + "; the two were tested on different images, so a paired test cannot say whether the lead is real."
    diff = pair.macro_f1
    sign = 1 if pair.first == top.name else -1
    low, high = sorted((sign * diff.low, sign * diff.high))
    verdict = "the lead is real" if diff.real else "the lead is not real"
    return (f"{text}; {verdict}: the paired 95% interval of the difference is {points(low)} to {points(high)} "
            f"points{' and excludes zero' if diff.real else ' and includes zero'}.")


def class_scores(frame: pd.DataFrame, positive: str = OPERATING_CLASS) -> tuple[np.ndarray, np.ndarray] | None:
    """(truly positive, output of the positive class) from a predictions table; None without that output."""
    column = f"p_{positive}"
    if frame is None or column not in frame or "label" not in frame:
        return None
    return (frame["label"].astype(str) == positive).to_numpy(), frame[column].to_numpy(dtype=float)


def interval_text(rate: Rate) -> str:
    """The Wilson interval and the counts behind a rate."""
    if not rate.trials:
        return "no images"
    low, high = rate.interval
    return f"95% CI {low:.1%}-{high:.1%}, {rate.successes}/{rate.trials}"


def _rate(rate: Rate) -> str:
    return f"{rate.value:.1%} ({interval_text(rate)})" if rate.trials else "- (no images)"


def operating_figures(point: OperatingPoint) -> dict[str, str]:
    """Sensitivity, specificity, PPV and NPV with Wilson intervals and counts, as text."""
    return {"sensitivity": _rate(point.sensitivity), "specificity": _rate(point.specificity),
            "PPV": _rate(point.ppv), "NPV": _rate(point.npv)}


def operating_sentence(model: str, point: OperatingPoint, positive: str = OPERATING_CLASS) -> str:
    figures = operating_figures(point)
    return (f"At threshold {point.threshold:.3f} on its {positive} output, {model} calls {point.tp + point.fp} "
            f"of {point.tp + point.fp + point.fn + point.tn} test images {positive}: "
            + "; ".join(f"{name} {value}" for name, value in figures.items()) + ".")


def two_by_two(point: OperatingPoint, positive: str = OPERATING_CLASS) -> pd.DataFrame:
    return pd.DataFrame(point.table(), index=[f"true {positive}", "true other"],
                        columns=[f"called {positive}", "called other"])

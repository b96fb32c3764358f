"""Tables and curves that compare saved models: JSON and CSV in, pandas and numpy out.

No TensorFlow here: the comparison page must open without loading it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from pipeline import shortcuts
from pipeline.config import AUDIT_TARGET_DATA, MIN_SUBGROUP_SUPPORT, TARGETS

from .catalog import ModelEntry

MB = 1024 * 1024
METRIC_LABELS = {"accuracy": "accuracy", "macro_f1": "macro-F1"}


def _ci(metrics: dict, key: str) -> tuple[float, float]:
    interval = (metrics.get("ci95") or {}).get(key) or [np.nan, np.nan]
    return float(interval[0]), float(interval[1])


def _training_data(config: dict) -> str:
    data = config.get("data") or {}
    train = sum((data.get("counts") or {}).get("train", {}).values())
    return f"{data.get('name', '?')} ({data.get('origin', 'unknown origin')}; {train} training images)"


def class_union(entries: list[ModelEntry]) -> list[str]:
    """Every class of any model, in first-seen order."""
    return list(dict.fromkeys(name for entry in entries for name in entry.classes))


def comparison_table(entries: list[ModelEntry]) -> pd.DataFrame:
    """One row per evaluated model; numbers stay numbers so that the CSV is easy to reuse."""
    classes = class_union(entries)
    rows = []
    for entry in entries:
        metrics, config = entry.metrics or {}, entry.config
        per_class = metrics.get("per_class", {})
        row = {
            "model": entry.name,
            "backbone": config.get("backbone"),
            "test images": metrics.get("n_images"),
            "accuracy": metrics.get("accuracy"),
            "accuracy CI low": _ci(metrics, "accuracy")[0],
            "accuracy CI high": _ci(metrics, "accuracy")[1],
            "macro-F1": metrics.get("macro_f1"),
            "macro-F1 CI low": _ci(metrics, "macro_f1")[0],
            "macro-F1 CI high": _ci(metrics, "macro_f1")[1],
            "ROC AUC (macro)": metrics.get("roc_auc_macro"),
            "ECE": metrics.get("ece"),
        }
        for name in classes:
            row[f"recall {name}"] = per_class.get(name, {}).get("recall")
            row[f"specificity {name}"] = per_class.get(name, {}).get("specificity")
        row.update({
            "parameters": config.get("parameters"),
            "file size (MB)": (config.get("model_bytes") or np.nan) / MB,
            "inference (ms/image)": metrics.get("inference_ms_per_image"),
            "input size (px)": config.get("input_size"),
            "weights": config.get("weights"),
            "training data": _training_data(config),
            "hardware": (config.get("hardware") or {}).get("description"),
        })
        rows.append(row)
    table = pd.DataFrame(rows)
    return table.drop(columns="backbone") if (table["backbone"] == table["model"]).all() else table


def gaps_as_dash(table: pd.DataFrame, formats: dict[str, str]) -> pd.DataFrame:
    """The table without empty cells: empty columns dropped, and in a column with some empty cells every
    value written out with its format (``formats``, e.g. "{:.1%}"; "{}" by default) and "-" in the gaps."""
    table = table.dropna(axis="columns", how="all").copy()
    for column in table.columns[table.isna().any()]:
        spec = formats.get(column, "{}")
        table[column] = [spec.format(v) if pd.notna(v) else "-" for v in table[column]]
    return table


def _recall_interval(metrics: dict, index: int) -> tuple[float, float]:
    intervals = (metrics.get("ci95") or {}).get("recall") or []
    return tuple(intervals[index]) if index < len(intervals) else (np.nan, np.nan)


def per_class_table(entries: list[ModelEntry]) -> pd.DataFrame:
    """One row per model and class, with the bootstrap interval of the recall."""
    rows = []
    for entry in entries:
        metrics = entry.metrics or {}
        for index, name in enumerate(metrics.get("class_names", [])):
            values = metrics.get("per_class", {}).get(name, {})
            low, high = _recall_interval(metrics, index)
            rows.append({
                "model": entry.name, "class": name, "precision": values.get("precision"),
                "recall": values.get("recall"), "recall CI low": low, "recall CI high": high,
                "specificity": values.get("specificity"), "F1": values.get("f1"),
                "ROC AUC": values.get("roc_auc"), "support": values.get("support"),
            })
    return pd.DataFrame(rows)


def metric_intervals(entries: list[ModelEntry], metric: str) -> pd.DataFrame:
    """Columns model, group, value, low, high for a bar chart with error bars.

    ``metric`` is "accuracy", "macro_f1" or "recall" (one bar per class).
    """
    return named_intervals({entry.name: entry.metrics or {} for entry in entries}, metric)


def named_intervals(named: dict[str, dict], metric: str) -> pd.DataFrame:
    """``metric_intervals`` of metrics dicts by model name; recall skips the classes without images."""
    rows = []
    for model, metrics in named.items():
        if metric == "recall":
            for index, name in enumerate(metrics.get("class_names", [])):
                if not metrics["per_class"][name].get("support", 1):
                    continue
                low, high = _recall_interval(metrics, index)
                rows.append({"model": model, "group": name,
                             "value": metrics["per_class"][name]["recall"], "low": low, "high": high})
        else:
            low, high = _ci(metrics, metric)
            rows.append({"model": model, "group": METRIC_LABELS.get(metric, metric), "value": metrics.get(metric),
                         "low": low, "high": high})
    return pd.DataFrame(rows, columns=["model", "group", "value", "low", "high"])


def per_group_table(entries: list[ModelEntry], key: str = "per_source", column: str = "source") -> pd.DataFrame:
    """Test metrics per group (``per_source``, ``per_chain`` or ``per_subgroup`` of metrics.json), else empty.
    Metrics written before ``per_chain`` existed give their sources as chains."""
    rows = []
    for entry in entries:
        metrics = entry.metrics or {}
        groups = shortcuts.per_chain(metrics) if key == "per_chain" else metrics.get(key) or {}
        for group, values in groups.items():
            row = {"model": entry.name, column: group, "test images": values.get("n_images"),
                   "accuracy": values.get("accuracy"), "macro-F1": values.get("macro_f1")}
            row.update({f"recall {name}": value for name, value in (values.get("recall") or {}).items()})
            rows.append(row)
    return pd.DataFrame(rows)


def shortcut_table(entries: list[ModelEntry]) -> pd.DataFrame:
    """One row per model: the recall of each target class inside each processing chain (test split) and
    on the lung-boxes audit X-rays by their own labels; the classes are those of the targets."""
    chain_classes = [name for metric, name, _ in TARGETS if metric == "chain_recall"]
    audit_classes = [name for metric, name, _ in TARGETS if metric == "audit_recall"]
    rows = []
    for entry in entries:
        metrics = entry.metrics or {}
        row = {"model": entry.name}
        for name in chain_classes:
            recalls = shortcuts.chain_recalls(metrics, name)
            row.update({f"{name} recall, chain {chain}": recall for chain, (recall, _) in recalls.items()})
            lowest = shortcuts.lowest_chain_recall(metrics, name)
            row[f"{name} recall, lowest chain of {MIN_SUBGROUP_SUPPORT}+ images"] = lowest[1] if lowest else np.nan
        for name in audit_classes:
            found = shortcuts.audit_recall(metrics, name)
            row[f"{name} recall, {AUDIT_TARGET_DATA} X-rays"] = found[0] if found else np.nan  # numbers stay numbers
            row[f"{AUDIT_TARGET_DATA} {name} X-rays"] = found[1] if found else np.nan
        rows.append(row)
    return pd.DataFrame(rows)


def worst_subgroups(entries: list[ModelEntry]) -> list[str]:
    """Each model's lowest recall of a class within one source or subgroup, as a sentence."""
    return [f"{e.name}: {w['class']} recall {w['recall']:.1%} in {w['group']} ({w['support']} images)"
            for e in entries if (w := (e.metrics or {}).get("worst_subgroup_recall"))]


def source_confounds(entries: list[ModelEntry]) -> list[str]:
    """Plain notes where one data source holds all test images of a class and no other class."""
    notes = set()
    for entry in entries:
        per_source = (entry.metrics or {}).get("per_source") or {}
        for source, values in per_source.items():
            support = values.get("support") or {}
            if len(support) != 1:
                continue
            (name,) = support
            elsewhere = sum((other.get("support") or {}).get(name, 0) for s, other in per_source.items() if s != source)
            if elsewhere == 0:
                notes.add(f"Every {name} test image comes from the source '{source}', which holds no other class: "
                          f"a model can learn to recognise that source instead of {name}.")
    return sorted(notes)


def attention_table(entries: list[ModelEntry]) -> pd.DataFrame:
    """Lung-attention audit and faithfulness figures per model and map method (else empty)."""
    rows = []
    for entry in entries:
        metrics = entry.metrics or {}
        audit, faith = metrics.get("lung_attention") or {}, metrics.get("faithfulness") or {}
        methods = list(audit.get("methods") or []) + [m for m in (faith.get("methods") or {})
                                                     if m not in (audit.get("methods") or [])]
        overall = audit.get("overall") or {}
        for method in methods:
            scores, areas = overall.get(method) or {}, (faith.get("methods") or {}).get(method) or {}
            audited = bool(scores)  # the random order has faithfulness figures only
            rows.append({"model": entry.name, "method": method,
                         "lung reference": audit.get("reference") if audited else None,
                         "audited images": overall.get("n_images") if audited else None,
                         "energy inside the lungs": scores.get("energy_inside"),
                         "uniform map (baseline)": overall.get("baseline_share") if audited else None,
                         "peak inside the lungs": scores.get("pointing_hit_rate"),
                         "deletion AUC (lower is better)": areas.get("deletion"),
                         "insertion AUC (higher is better)": areas.get("insertion")})
    return pd.DataFrame(rows)


def confusion(metrics: dict, normalise: bool) -> np.ndarray:
    """The confusion matrix (rows = true class), optionally as fractions of each row."""
    matrix = np.asarray(metrics["confusion_matrix"], dtype=np.float64)
    if not normalise:
        return matrix
    totals = matrix.sum(axis=1, keepdims=True)
    return np.divide(matrix, totals, out=np.zeros_like(matrix), where=totals > 0)


@dataclass(frozen=True)
class Curve:
    model: str
    x: np.ndarray
    y: np.ndarray
    area: float  # ROC AUC or average precision


def _class_scores(predictions: pd.DataFrame, name: str) -> tuple[np.ndarray, np.ndarray] | None:
    column = f"p_{name}"
    if column not in predictions or "label" not in predictions:
        return None
    truth = (predictions["label"].astype(str) == name).to_numpy()
    if truth.all() or not truth.any():
        return None  # a curve needs positives and negatives
    return truth, predictions[column].to_numpy(dtype=np.float64)


def class_curves(predictions: dict[str, pd.DataFrame], name: str) -> tuple[list[Curve], list[Curve]]:
    """ROC and precision-recall curves of class ``name`` (one vs rest) for each model."""
    # Imported here: scikit-learn takes about a second to import and the table comes first.
    from sklearn.metrics import average_precision_score, precision_recall_curve, roc_auc_score, roc_curve

    roc, pr = [], []
    for model, frame in predictions.items():
        scores = _class_scores(frame, name)
        if scores is None:
            continue
        truth, score = scores
        fpr, tpr, _ = roc_curve(truth, score)
        roc.append(Curve(model, fpr, tpr, float(roc_auc_score(truth, score))))
        precision, recall, _ = precision_recall_curve(truth, score)
        pr.append(Curve(model, recall, precision, float(average_precision_score(truth, score))))
    return roc, pr


def reliability(metrics: dict) -> pd.DataFrame:
    """The non-empty calibration bins: mean confidence, accuracy and count."""
    bins = pd.DataFrame(metrics.get("reliability") or [],
                        columns=["lower", "upper", "count", "confidence", "accuracy"])
    return bins[bins["count"].fillna(0) > 0].reset_index(drop=True)


def training_datasets(entries: list[ModelEntry]) -> list[tuple[dict, list[str]]]:
    """The distinct training data sets (config.json ``data``) and the models trained on each."""
    groups: dict[str, tuple[dict, list[str]]] = {}
    for entry in entries:
        data = entry.config.get("data") or {}
        key = repr((data.get("name"), data.get("path"), data.get("counts")))
        groups.setdefault(key, (data, []))[1].append(entry.name)
    return list(groups.values())


def counts_table(counts: dict[str, dict[str, int]]) -> pd.DataFrame:
    """Images per class (rows) and split (columns), with totals."""
    table = pd.DataFrame(counts).fillna(0).astype(int)
    table["total"] = table.sum(axis=1)
    table.loc["total"] = table.sum(axis=0)
    return table

"""Comparison-page helpers for the lung-attention audit and the per-source note."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from dashboard.catalog import ModelEntry
from dashboard.compare import attention_table, source_confounds


def entry(name: str, metrics: dict) -> ModelEntry:
    return ModelEntry(name, Path(name), {"classes": ["COVID", "Normal", "Viral Pneumonia"]}, metrics, False, "0")


AUDITED = {
    "lung_attention": {"reference": "boxes", "methods": ["Grad-CAM", "Grad-CAM++"],
                       "overall": {"n_images": 195, "baseline_share": 0.6,
                                   "Grad-CAM": {"energy_inside": 0.59, "pointing_hit_rate": 0.39},
                                   "Grad-CAM++": {"energy_inside": 0.62, "pointing_hit_rate": 0.51}}},
    "faithfulness": {"methods": {"Grad-CAM": {"deletion": 0.8, "insertion": 0.95},
                                 "Grad-CAM++": {"deletion": 0.87, "insertion": 0.89},
                                 "random order": {"deletion": 0.88, "insertion": 0.88}}},
}


def test_attention_table_has_a_row_per_model_and_method():
    table = attention_table([entry("A", AUDITED), entry("B", {})])
    assert list(table["method"]) == ["Grad-CAM", "Grad-CAM++", "random order"]
    row = table.iloc[0]
    assert row["energy inside the lungs"] == pytest.approx(0.59) and row["uniform map (baseline)"] == 0.6
    assert table.iloc[2]["deletion AUC (lower is better)"] == 0.88
    assert pd.isna(table.iloc[2]["energy inside the lungs"]) and pd.isna(table.iloc[2]["uniform map (baseline)"])


def test_no_audit_gives_an_empty_table():
    assert attention_table([entry("A", {"accuracy": 1})]).empty


def test_a_source_holding_a_whole_class_alone_is_named():
    per_source = {"kermany": {"support": {"Viral Pneumonia": 201}},
                  "radiography": {"support": {"COVID": 255, "Normal": 255}}}
    notes = source_confounds([entry("A", {"per_source": per_source})])
    assert notes == ["Every Viral Pneumonia test image comes from the source 'kermany', which holds no other "
                     "class: a model can learn to recognise that source instead of Viral Pneumonia."]


def test_mixed_sources_give_no_note():
    per_source = {"x": {"support": {"COVID": 5}}, "y": {"support": {"COVID": 5, "Normal": 5}}}
    assert source_confounds([entry("A", {"per_source": per_source})]) == []


def test_subgroup_table_uses_the_subgroup_figures():
    from dashboard.compare import per_group_table

    metrics = {"per_subgroup": {"kermany_pediatric=1": {"n_images": 30, "accuracy": 0.5, "macro_f1": 0.4,
                                                        "recall": {"Normal": 0.5}}}}
    table = per_group_table([entry("A", metrics)], "per_subgroup", "subgroup")
    assert list(table["subgroup"]) == ["kermany_pediatric=1"] and table.iloc[0]["recall Normal"] == 0.5


def test_worst_subgroup_sentence():
    from dashboard.compare import worst_subgroups

    worst = {"group": "kermany_pediatric=0", "class": "Normal", "recall": 0.9, "support": 1470}
    assert worst_subgroups([entry("A", {"worst_subgroup_recall": worst}), entry("B", {})]) == [
        "A: Normal recall 90.0% in kermany_pediatric=0 (1470 images)"]

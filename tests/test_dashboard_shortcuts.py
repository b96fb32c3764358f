"""The comparison page's shortcut checks: recall inside each processing chain and on the lung-boxes
audit X-rays, read from each model's metrics.json."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pandas as pd
import pytest
from drivers import MODELS_DIR_VAR, open_page, texts

from dashboard import compare
from dashboard.catalog import ModelEntry
from pipeline.config import DISCLAIMER

SECTION = "Per source and subgroup"


def entry(name: str, metrics: dict) -> ModelEntry:
    return ModelEntry(name, Path(name), {"classes": ["COVID", "Normal"]}, metrics, False, "0")


def chain(recall: dict[str, float], support: dict[str, int]) -> dict:
    return {"n_images": sum(support.values()), "accuracy": 0.9, "macro_f1": 0.9, "recall": recall, "support": support}


def audit(data: str, recall: float, n: int) -> dict:
    return {"data_dir": data, "recall_by_label": {"COVID": {"n_images": n, "recall": recall}}}


def test_shortcut_table_has_normal_recall_per_chain_and_the_lung_boxes_covid_recall():
    new = {"per_chain": {"kermany": chain({"Normal": 0.62}, {"Normal": 190}),
                         "kaggle": chain({"COVID": 0.9, "Normal": 0.96}, {"COVID": 255, "Normal": 250})},
           "chains_from": "source", "lung_attention": audit("lung-boxes", 0.89, 101)}
    old = {"per_source": {"kaggle": chain({"COVID": 0.9, "Normal": 0.95}, {"COVID": 255, "Normal": 255})},
           "lung_attention": audit("lung-masks", 1.0, 9)}
    table = compare.shortcut_table([entry("new", new), entry("old", old)]).set_index("model")
    assert table.loc["new", "Normal recall, chain kermany"] == 0.62
    assert pd.isna(table.loc["old", "Normal recall, chain kermany"])
    assert table.loc["old", "Normal recall, chain kaggle"] == 0.95, "metrics without per_chain: the source is the chain"
    assert table.loc["new", "Normal recall, lowest chain of 10+ images"] == 0.62
    assert table.loc["new", "COVID recall, lung-boxes X-rays"] == 0.89
    assert table.loc["new", "lung-boxes COVID X-rays"] == 101
    assert pd.isna(table.loc["old", "COVID recall, lung-boxes X-rays"]), "an audit on other X-rays is not lung-boxes"
    chains = compare.per_group_table([entry("new", new), entry("old", old)], "per_chain", "chain")
    assert list(zip(chains["model"], chains["chain"])) == [("new", "kermany"), ("new", "kaggle"), ("old", "kaggle")]


def shown(value) -> float | None:
    """A figure as the page shows it: a number, or text ("89.1%"; "-" where it is missing)."""
    if isinstance(value, str):
        return None if value == "-" else float(value.rstrip("%")) / (100 if value.endswith("%") else 1)
    return float(value)


@pytest.fixture
def audited_models(models_dir, tmp_path) -> Path:
    """The tiny models, MobileNet with a lung-boxes audit's recall by label."""
    models = tmp_path / "models"
    shutil.copytree(models_dir, models)
    path = models / "MobileNet" / "metrics.json"
    metrics = json.loads(path.read_text())
    scores = {"energy_inside": 0.6, "pointing_hit_rate": 0.5}
    metrics["lung_attention"] = {
        **audit("lung-boxes", 0.891, 101), "reference": "boxes", "methods": ["Grad-CAM"],
        "overall": {"n_images": 101, "baseline_share": 0.6, "Grad-CAM": scores}, "per_predicted_class": {}}
    path.write_text(json.dumps(metrics))
    return models


def test_the_compare_page_shows_normal_recall_inside_each_chain(monkeypatch, audited_models):
    monkeypatch.setenv(MODELS_DIR_VAR, str(audited_models))
    app = open_page()
    app.session_state["compare-section"] = SECTION
    app.run()
    assert not app.exception and app.warning[0].value == DISCLAIMER
    assert "Shortcut checks" in texts(app.subheader)
    table = next(d.value for d in app.dataframe if "Normal recall, chain source-0" in d.value.columns)
    table = table.set_index("model")
    for name in ("MobileNet", "SmallCNN"):
        stored = json.loads((audited_models / name / "metrics.json").read_text())["per_chain"]
        for chain_name in ("source-0", "source-1"):
            expected = stored[chain_name]["recall"]["Normal"]
            assert shown(table.loc[name, f"Normal recall, chain {chain_name}"]) == pytest.approx(expected, abs=5e-4)
    assert shown(table.loc["MobileNet", "COVID recall, lung-boxes X-rays"]) == pytest.approx(0.891)
    assert shown(table.loc["MobileNet", "lung-boxes COVID X-rays"]) == 101
    assert shown(table.loc["SmallCNN", "COVID recall, lung-boxes X-rays"]) is None, "not audited"

"""The comparison page's analyst figures: headline, operating point, paired comparison; the threshold on the
explain page. Helpers directly, pages through AppTest, on model folders whose predictions are known exactly."""

from __future__ import annotations

from xml.etree import ElementTree

import numpy as np
import pandas as pd
import pytest
from analyst_fixtures import outputs, paired_models
from drivers import MODELS_DIR_VAR, PAGES, texts
from drivers import open_page as open_app_page

from dashboard import analysis, catalog, compare, forest, thresholds
from pipeline.operating import one_vs_rest, presets

TIMEOUT = 120


@pytest.fixture(scope="module")
def paired_dir(models_dir, tmp_path_factory):
    return paired_models(models_dir, tmp_path_factory.mktemp("paired"))


@pytest.fixture(scope="module")
def entries(paired_dir):
    return catalog.scan(paired_dir).entries


def frames(entries) -> dict[str, pd.DataFrame]:
    return {e.name: pd.read_csv(e.folder / "predictions.csv") for e in entries}


def test_paired_results_name_the_pairs_that_differ(entries):
    results, notes = analysis.paired_results(frames(entries), list(compare.class_union(entries)))
    assert notes == []
    verdict = {(r.first, r.second): r.differs for r in results}
    assert verdict == {("Perfect", "Twin"): False, ("Perfect", "Worse"): True, ("Twin", "Worse"): True}
    worse = next(r for r in results if r.second == "Worse")
    assert (worse.macro_f1.value, worse.test.only_first, worse.test.only_second) == (1.0, 60, 0)
    sentence = analysis.pair_sentence(worse)
    assert sentence.startswith("**Perfect and Worse differ.** Perfect has the higher macro-F1 (100.0 points")
    assert analysis.pair_table(results)["real difference"].tolist() == ["no", "yes", "yes"]


def test_models_tested_on_other_images_are_not_paired(entries):
    found = frames(entries)
    found["Worse"] = found["Worse"].assign(path=found["Worse"]["path"] + "-elsewhere")
    results, notes = analysis.paired_results(found, list(compare.class_union(entries)))
    assert [(r.first, r.second) for r in results] == [("Perfect", "Twin")]
    assert notes == [analysis.NOT_PAIRED.format(names="Worse")]
    only = {"Perfect": found["Perfect"], "Worse": found["Worse"]}
    assert analysis.paired_results(only, list(compare.class_union(entries)))[0] == []
    split = {**found, "Worse-twin": found["Worse"]}  # two sets of images with two models each
    results, notes = analysis.paired_results(split, list(compare.class_union(entries)))
    assert [(r.first, r.second) for r in results] == [("Perfect", "Twin"), ("Worse", "Worse-twin")]
    assert notes == [analysis.SEPARATE_SPLITS.format(count=2, groups="Perfect, Twin; Worse, Worse-twin")]
    lead = analysis.lead_sentence([e for e in entries if e.name != "Twin"], [])
    assert "tested on different images, so a paired test cannot say" in lead


def test_headline_and_lead_sentence(entries):
    frame = analysis.headline(entries)
    perfect = frame[frame["model"] == "Perfect"].set_index("group")
    assert perfect.loc[analysis.MACRO_F1, "value"] == 1.0
    assert perfect.loc[analysis.WORST, "value"] == 1.0 and perfect.loc[analysis.WORST, "low"] < 1.0  # Wilson
    results, _ = analysis.paired_results(frames(entries), list(compare.class_union(entries)))
    lead = analysis.lead_sentence([e for e in entries if e.name != "Twin"], results)
    assert lead.startswith("Perfect leads on test macro-F1 (100.0%), ahead of Worse (0.0%); the lead is real")


def test_the_headline_forest_draws_each_figure_to_scale(entries):
    frame = analysis.headline(entries)
    svg = ElementTree.fromstring(forest.forest_svg(frame, "Macro-F1 & worst recall <test>"))
    tag = "{http://www.w3.org/2000/svg}"
    bars = [float(rect.get("width")) for rect in svg.iter(f"{tag}rect") if rect.get("height") != "10"]
    assert bars == pytest.approx([forest.PLOT * value for value in frame["value"]], abs=0.1)
    lines = [line for line in svg.iter(f"{tag}line") if line.get("stroke-width")]  # the intervals
    assert [float(line.get("x2")) - float(line.get("x1")) for line in lines] == pytest.approx(
        [forest.PLOT * (high - low) for low, high in zip(frame["low"], frame["high"], strict=True)], abs=0.2)
    words = " ".join(text.text for text in svg.iter(f"{tag}text"))
    assert "Macro-F1 & worst recall <test>" in words and f"{frame['value'].iloc[0]:.1%}" in words
    assert all(note in words for note in frame["note"]) and all(model in words for model in frame["model"])


def test_the_headline_forest_says_when_a_figure_or_interval_is_missing():
    frame = pd.DataFrame([{"model": "Old", "group": "macro-F1", "value": 0.9, "low": np.nan, "high": np.nan,
                           "note": "test split"},
                          {"model": "Bare", "group": "macro-F1", "value": None, "low": np.nan, "high": np.nan,
                           "note": "test split"}])
    svg = forest.forest_svg(frame, "t")
    assert "nan" not in svg and "90.0%, test split" in svg and "not in its metrics.json" in svg
    ElementTree.fromstring(svg)


def test_worst_chain_prefers_per_chain():
    group = {"recall": {"COVID": 0.5}, "support": {"COVID": 20}}
    assert analysis.worst_chain({"per_source": {"a": group}})["group"] == "a"
    assert analysis.worst_chain({"per_source": {"a": group}, "per_chain": {"b": group}})["group"] == "b"
    assert analysis.worst_chain({}) is None


def test_gaps_become_dashes_and_empty_columns_go():
    table = pd.DataFrame({"model": ["A", "B"], "recall": [0.5, np.nan], "empty": [None, None], "n": [3, 4]})
    shown = compare.gaps_as_dash(table, {"recall": "{:.1%}"})
    assert shown.to_dict("list") == {"model": ["A", "B"], "recall": ["50.0%", "-"], "n": [3, 4]}


def test_threshold_sentence():
    assert "50.0%, is at or above the threshold 0.420 (Youden" in thresholds.sentence("M", 0.5, 0.42, "Youden")
    assert "is below the threshold 0.500" in thresholds.sentence("M", 0.2, 0.5, thresholds.DEFAULT_HOW)


def test_outputs_are_ranked_highest_first_with_their_class():
    ranked = thresholds.ranked(np.array([0.2, 0.7, 0.1]), ["COVID", "Normal", "Viral Pneumonia"])
    assert ranked == [("Normal", pytest.approx(0.7)), ("COVID", pytest.approx(0.2)),
                      ("Viral Pneumonia", pytest.approx(0.1))]


def open_section(monkeypatch, folder, section):
    monkeypatch.setenv(MODELS_DIR_VAR, str(folder))
    app = open_app_page(PAGES[0])
    app.session_state["compare-section"] = section
    app.run(timeout=TIMEOUT)
    assert not app.exception, [e.value for e in app.exception]
    return app


def test_operating_point_tab(monkeypatch, paired_dir):
    app = open_section(monkeypatch, paired_dir, "Operating point")
    assert app.selectbox(key="operating-model").value == "Perfect"
    assert app.radio(key="operating-choice-Perfect").options[0] == "Manual"
    paths, labels, probs = outputs(0)
    expected = one_vs_rest(labels == 0, probs[:, 0], 0.5)
    assert [m.value for m in app.metric] == [f"{expected.sensitivity.value:.1%}", "100.0%", "100.0%",
                                             f"{expected.npv.value:.1%}"]
    assert app.table[0].value.to_numpy().tolist() == expected.table().tolist()
    assert "At threshold 0.500 on its COVID output, Perfect calls" in texts(app.markdown)
    app.slider(key="operating-threshold-Perfect").set_value(0.9).run(timeout=TIMEOUT)
    moved = one_vs_rest(labels == 0, probs[:, 0], 0.9)
    assert app.table[0].value.to_numpy().tolist() == moved.table().tolist() != expected.table().tolist()
    assert app.session_state[thresholds.KEY]["Perfect"] == (0.9, "set by hand")


def test_presets_come_from_validation_predictions(monkeypatch, paired_dir):
    app = open_section(monkeypatch, paired_dir, "Operating point")
    choice = app.radio(key="operating-choice-Perfect")
    assert choice.options[1].startswith("sensitivity >= 95%")
    choice.set_value(choice.options[1]).run(timeout=TIMEOUT)
    _, labels, probs = outputs(0, offset=0.3)
    threshold = next(iter(presets(labels == 0, probs[:, 0]).values()))
    assert f"chosen on 60 validation images: threshold {threshold:.3f}" in texts(app.caption)
    assert app.session_state[thresholds.KEY]["Perfect"][0] == pytest.approx(threshold)
    app.selectbox(key="operating-model").set_value("Worse").run(timeout=TIMEOUT)
    assert app.radio(key="operating-choice-Worse").options == ["Manual"]
    assert "needs" not in texts(app.info) and "has no validation predictions" in texts(app.info)


def test_paired_tab(monkeypatch, paired_dir):
    app = open_section(monkeypatch, paired_dir, "Paired comparison")
    shown = texts(app.markdown)
    assert "**2 of 3 pairs differ: Perfect and Worse; Twin and Worse.**" in shown
    assert "**Perfect and Twin do not differ.**" in shown
    assert app.dataframe[-1].value["pair"].tolist() == ["Perfect - Twin", "Perfect - Worse", "Twin - Worse"]


def test_explain_page_shows_the_chosen_threshold(monkeypatch, paired_dir):
    monkeypatch.setenv(MODELS_DIR_VAR, str(paired_dir))
    app = open_app_page(PAGES[1])
    app.session_state[thresholds.KEY] = {"Perfect": (0.999, "set by hand")}
    app.run(timeout=TIMEOUT)
    assert not app.exception, [e.value for e in app.exception]
    assert "Perfect's COVID output for this image" in texts(app.caption)
    assert "is below the threshold 0.999 (set by hand;" in texts(app.caption)

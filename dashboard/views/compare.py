"""Compare models: test metrics of every saved model, from JSON and CSV only (no TensorFlow).

The summary table comes first; the rest sits in tabs of which only the open one runs. The first
tab is a table too, so a first visit draws no chart: a plotly chart on the first visit cost up to
a second and a half before the table showed (its figure, and plotly.js in the browser).
"""

from __future__ import annotations

import pandas as pd
import streamlit as st

from dashboard import analysis, compare, forest, layout, loaders, operating
from dashboard.catalog import ModelEntry
from pipeline.paired import PairResult

# Column formats: (Streamlit's, Python's for a column written out as text because it has gaps).
PERCENT, THREE, ONE, COUNT = ("percent", "{:.1%}"), ("%.3f", "{:.3f}"), ("%.1f", "{:.1f}"), ("localized", "{:,.0f}")
COUNTS = {c: COUNT for c in ("test images", "support", "audited images", "parameters", "input size (px)")}
COLUMNS_PER_ROW = 2
SECTION_KEY = "compare-section"
METRIC_CHOICES = {"Accuracy": "accuracy", "Macro-F1": "macro_f1", "Recall per class": "recall"}


def ratios(table: pd.DataFrame, prefixes: tuple[str, ...]) -> dict[str, tuple[str, str]]:
    return {c: PERCENT for c in table.columns if c.startswith(prefixes)}


def show_table(table: pd.DataFrame, formats: dict[str, tuple[str, str]]) -> None:
    """A table without empty cells ("-" where a figure is missing), numbers formatted per column."""
    formats = {**COUNTS, **formats}
    shown = compare.gaps_as_dash(table, {column: spec for column, (_, spec) in formats.items()})
    config = {column: st.column_config.NumberColumn(format=style) for column, (style, _) in formats.items()
              if column in shown and pd.api.types.is_numeric_dtype(shown[column])}
    st.dataframe(shown, hide_index=True, column_config=config)


@st.cache_data(show_spinner="Comparing the models pair by pair...", max_entries=8)
def paired(models: tuple[tuple[str, str, str], ...], classes: tuple[str, ...]) -> tuple[list[PairResult], list[str]]:
    """Paired comparisons of the models (name, folder, stamp) whose test predictions can be read."""
    frames = {name: frame for name, folder, stamp in models
              if (frame := loaders.predictions(folder, stamp)) is not None}
    return analysis.paired_results(frames, list(classes))


def paired_of(entries: list[ModelEntry]) -> tuple[list[PairResult], list[str]]:
    return paired(tuple((e.name, str(e.folder), e.stamp) for e in entries), tuple(compare.class_union(entries)))


def headline(entries: list[ModelEntry]) -> None:
    frame = analysis.headline(entries)
    st.image(forest.forest_svg(frame, "Test macro-F1 beside each model's worst recall of a class within one "
                                      "acquisition chain"),
             caption="Lines: 95% intervals (bootstrap for macro-F1, Wilson for recall).")
    st.markdown(analysis.lead_sentence(entries, paired_of(analysis.leaders(entries)[:2])[0]))


def summary(entries: list[ModelEntry]) -> None:
    table = compare.comparison_table(entries)
    show_table(table, {**ratios(table, ("accuracy", "macro-F1", "recall", "specificity")),
                       "ROC AUC (macro)": THREE, "ECE": THREE, "file size (MB)": ONE, "inference (ms/image)": ONE})
    st.caption("ECE: expected calibration error, lower is better. \"-\": no figure.")
    st.download_button("Download the table (CSV)", table.to_csv(index=False).encode("utf-8"),
                       file_name="model_comparison.csv", mime="text/csv", icon=":material/download:")


def per_class(entries: list[ModelEntry]) -> None:
    table = compare.per_class_table(entries)
    show_table(table, {**ratios(table, ("precision", "recall", "specificity", "F1")), "ROC AUC": THREE})


def interval_chart(entries: list[ModelEntry]) -> None:
    from dashboard import charts  # only when a chart tab is open
    label = st.segmented_control("Metric", list(METRIC_CHOICES), default="Accuracy", key="compare-metric")
    metric = METRIC_CHOICES[label or "Accuracy"]
    st.plotly_chart(charts.interval_bars(compare.metric_intervals(entries, metric),
                                         f"{label or 'Accuracy'} on the test set, with 95% bootstrap intervals"))


def confusion_matrices(entries: list[ModelEntry]) -> None:
    from dashboard import charts  # only when a chart tab is open
    normalised = st.toggle("Row-normalised (share of each true class)", key="compare-normalised")
    for start in range(0, len(entries), COLUMNS_PER_ROW):
        columns = st.columns(COLUMNS_PER_ROW)
        for column, entry in zip(columns, entries[start:start + COLUMNS_PER_ROW]):
            matrix = compare.confusion(entry.metrics, normalised)
            column.plotly_chart(charts.confusion_heatmap(matrix, entry.metrics["class_names"], entry.name,
                                                         normalised), key=f"cm-{entry.name}")


def curves(entries: list[ModelEntry]) -> None:
    from dashboard import charts  # only when a chart tab is open
    frames = {e.name: f for e in entries if (f := loaders.predictions(str(e.folder), e.stamp)) is not None}
    if not frames:
        st.info("No predictions.csv found, so no curves can be drawn.")
        return
    st.caption("One class against the rest, from each model's test predictions (predictions.csv).")
    classes = compare.class_union(entries)
    for tab, name in zip(st.tabs(classes), classes):
        roc, pr = compare.class_curves(frames, name)
        if not roc:
            tab.info(f"The test predictions hold no positive and negative examples of {name}.")
            continue
        left, right = tab.columns(2)
        left.plotly_chart(charts.curve_figure(roc, "roc", f"ROC, {name} vs rest"), key=f"roc-{name}")
        right.plotly_chart(charts.curve_figure(pr, "pr", f"Precision-recall, {name} vs rest"), key=f"pr-{name}")


def calibration(entries: list[ModelEntry]) -> None:
    from dashboard import charts  # only when a chart tab is open
    bins = {e.name: compare.reliability(e.metrics) for e in entries}
    st.plotly_chart(charts.reliability_figure({k: v for k, v in bins.items() if not v.empty}))


def shortcut_checks(entries: list[ModelEntry]) -> None:
    st.subheader("Shortcut checks")
    st.caption("Recall inside each processing chain on the test split, and on the lung-boxes X-rays of the "
               "lung-attention audit by their own labels (none used in training). A chain is the manifest's "
               "`chain` column, else the data source. A model that reads the chain (export, resizing, "
               "compression) instead of the lungs recalls a class well in one chain and poorly in another.")
    table = compare.shortcut_table(entries)
    show_table(table, {c: PERCENT for c in table.columns if "recall" in c})
    if any((e.metrics or {}).get("chains_from") == "chain" for e in entries):
        chains = compare.per_group_table(entries, "per_chain", "chain")
        st.subheader("Per processing chain")
        show_table(chains, ratios(chains, ("accuracy", "macro-F1", "recall")))


def sources_and_subgroups(entries: list[ModelEntry]) -> None:
    from dashboard import charts  # only when a chart tab is open
    shortcut_checks(entries)
    st.subheader("Per data source")
    sources = compare.per_group_table(entries)
    if sources.empty:
        st.info("The metrics name no data sources (the data folder had no manifest with a source column).")
        return
    st.caption("A model that scores very differently per source may have learnt the source "
               "(hospital, scanner, age group) rather than the finding. Macro-F1 here averages the "
               "classes each source holds.")
    for note in compare.source_confounds(entries):
        st.warning(note, icon=":material/warning:")
    st.plotly_chart(charts.source_bars(sources))
    show_table(sources, ratios(sources, ("accuracy", "macro-F1", "recall")))
    subgroups = compare.per_group_table(entries, "per_subgroup", "subgroup")
    if not subgroups.empty:
        st.subheader("Per subgroup")
        st.caption("Subgroups from the manifest (for example kermany_pediatric=1: pediatric images of the "
                   "Kermany set). A class recalled well overall but poorly in one subgroup points to a shortcut.")
        worst = compare.worst_subgroups(entries)
        if worst:
            st.caption("Worst subgroup figure per model: " + "; ".join(worst))
        show_table(subgroups, ratios(subgroups, ("accuracy", "macro-F1", "recall")))


def model_attention(entries: list[ModelEntry]) -> None:
    table = compare.attention_table(entries)
    if table.empty:
        st.info("No model has been audited yet: `python -m pipeline audit --model saved_models/<name> "
                "--data-dir <X-rays with lung masks or boxes>` scores its maps against the lungs.")
        return
    st.caption("Share of each map's energy inside the lungs and how often its peak falls inside, beside the "
               "share a uniform map gets; and the class probability as pixels are deleted or inserted in the "
               "order the map ranks them, against a random order. Model attention, not disease location.")
    show_table(table, {**ratios(table, ("energy", "uniform", "peak")),
                       **{column: THREE for column in table.columns if "AUC" in column}})


SECTIONS = {
    "Per class": per_class,
    "Confidence intervals": interval_chart,
    "Confusion matrices": confusion_matrices,
    "ROC and precision-recall": curves,
    "Calibration": calibration,
    "Per source and subgroup": sources_and_subgroups,
    "Model attention": model_attention,
    "Operating point": operating.operating_point,
    "Paired comparison": lambda entries: operating.paired_comparison(entries, paired_of(entries)),
}


def main() -> None:
    opened = layout.open_page("Compare models", lambda c: c.evaluated, "with test metrics")
    if opened is None:
        return
    catalog, entries = opened
    st.caption(f"{len(entries)} model(s) from the folder `{catalog.root.name}`. All figures are on each model's "
               "own held-out test split; models trained on different data are not directly comparable.")
    headline(entries)
    summary(entries)
    tabs = st.tabs(list(SECTIONS), key=SECTION_KEY, on_change="rerun")
    for tab, draw in zip(tabs, SECTIONS.values()):
        if tab.open:
            with tab:
                draw(entries)


main()

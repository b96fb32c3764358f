"""Compare models: test metrics of every saved model, from JSON and CSV only (no TensorFlow).

The summary table comes first; the rest sits in tabs of which only the open one runs. The first
tab is a table too, so a first visit draws no chart: a plotly chart on the first visit cost up to
a second and a half before the table showed (its figure, and plotly.js in the browser).
"""

from __future__ import annotations

import streamlit as st

from dashboard import compare, layout, loaders
from dashboard.catalog import ModelEntry

PERCENT = st.column_config.NumberColumn(format="percent")
COLUMNS_PER_ROW = 2
SECTION_KEY = "compare-section"
METRIC_CHOICES = {"Accuracy": "accuracy", "Macro-F1": "macro_f1", "Recall per class": "recall"}


def summary(entries: list[ModelEntry]) -> None:
    table = compare.comparison_table(entries)
    ratio_columns = [c for c in table.columns if c.startswith(("accuracy", "macro-F1", "recall", "specificity"))]
    config = {column: PERCENT for column in ratio_columns}
    config.update({
        "ROC AUC (macro)": st.column_config.NumberColumn(format="%.3f"),
        "ECE": st.column_config.NumberColumn(format="%.3f", help="expected calibration error; lower is better"),
        "parameters": st.column_config.NumberColumn(format="localized"),
        "file size (MB)": st.column_config.NumberColumn(format="%.1f"),
        "inference (ms/image)": st.column_config.NumberColumn(format="%.1f"),
    })
    st.dataframe(table, hide_index=True, column_config=config)
    st.download_button("Download the table (CSV)", table.to_csv(index=False).encode("utf-8"),
                       file_name="model_comparison.csv", mime="text/csv", icon=":material/download:")


def per_class(entries: list[ModelEntry]) -> None:
    st.dataframe(compare.per_class_table(entries), hide_index=True, column_config={
        c: PERCENT for c in ("precision", "recall", "recall CI low", "recall CI high", "specificity", "F1")})


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


def sources_and_subgroups(entries: list[ModelEntry]) -> None:
    from dashboard import charts  # only when a chart tab is open
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
    ratio = [c for c in sources.columns if c.startswith(("accuracy", "macro-F1", "recall"))]
    st.dataframe(sources, hide_index=True, column_config={c: PERCENT for c in ratio})
    subgroups = compare.per_group_table(entries, "per_subgroup", "subgroup")
    if not subgroups.empty:
        st.subheader("Per subgroup")
        st.caption("Subgroups from the manifest (for example kermany_pediatric=1: pediatric images of the "
                   "Kermany set). A class recalled well overall but poorly in one subgroup points to a shortcut.")
        worst = compare.worst_subgroups(entries)
        if worst:
            st.caption("Worst subgroup figure per model: " + "; ".join(worst))
        ratio = [c for c in subgroups.columns if c.startswith(("accuracy", "macro-F1", "recall"))]
        st.dataframe(subgroups, hide_index=True, column_config={c: PERCENT for c in ratio})


def model_attention(entries: list[ModelEntry]) -> None:
    table = compare.attention_table(entries)
    if table.empty:
        st.info("No model has been audited yet: `python -m pipeline audit --model saved_models/<name> "
                "--data-dir <X-rays with lung masks or boxes>` scores its maps against the lungs.")
        return
    st.caption("Share of each map's energy inside the lungs and how often its peak falls inside, beside the "
               "share a uniform map gets; and the class probability as pixels are deleted or inserted in the "
               "order the map ranks them, against a random order. Model attention, not disease location.")
    ratio = [c for c in table.columns if c.startswith(("energy", "uniform", "peak"))]
    config = {c: PERCENT for c in ratio}
    config.update({c: st.column_config.NumberColumn(format="%.3f") for c in table.columns if "AUC" in c})
    st.dataframe(table, hide_index=True, column_config=config)


SECTIONS = {
    "Per class": per_class,
    "Confidence intervals": interval_chart,
    "Confusion matrices": confusion_matrices,
    "ROC and precision-recall": curves,
    "Calibration": calibration,
    "Per source and subgroup": sources_and_subgroups,
    "Model attention": model_attention,
}


def main() -> None:
    opened = layout.open_page("Compare models", lambda c: c.evaluated, "with test metrics")
    if opened is None:
        return
    catalog, entries = opened
    st.caption(f"{len(entries)} model(s) from `{catalog.root}`. All figures are on each model's own "
               "held-out test split; models trained on different data are not directly comparable.")
    summary(entries)
    tabs = st.tabs(list(SECTIONS), key=SECTION_KEY, on_change="rerun")
    for tab, draw in zip(tabs, SECTIONS.values()):
        if tab.open:
            with tab:
                draw(entries)


main()

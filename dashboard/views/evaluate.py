"""Evaluate your own X-rays: a zip of labelled images scored by every model (or the ones picked), in memory.

The archive is checked before anything is read (``pipeline.archive``); images are decoded once by the
project's one file-to-input path and scored by ``dashboard.scoring``, which gives the same figures as
``python -m pipeline evaluate`` on the same folder. Nothing is written to disk.
"""

from __future__ import annotations

import hashlib
import logging

import numpy as np
import streamlit as st

from dashboard import charts, compare, layout, loaders, overlay, scoring
from dashboard.catalog import ModelEntry
from pipeline import images
from pipeline.archive import LIMITS, ArchiveError, read_labelled_zip
from pipeline.config import ARCHIVE_MAX_UPLOAD_MB, EVALUATE_SECONDS_PER_100_IMAGES
from pipeline.errors import ArtifactError

log = logging.getLogger(__name__)

DECODED_KEY = "evaluate-decoded"  # (archive digest, Decoded)
SCORES_KEY = "evaluate-scores"  # (archive digest, {(model, stamp): ModelScore})
PERCENT = ("accuracy", "macro_f1", "recall")
TIME = ("Scoring 100 X-rays with the five shipped models took about "
        f"{EVALUATE_SECONDS_PER_100_IMAGES / 60:.0f} minutes on "
        "2 CPU cores (bench/evaluate_upload.py), most of it VGG16, DenseNet121 and ResNet50; SmallCNN and MobileNet "
        "together take about 6 seconds. A busy or smaller server takes longer. Pick fewer models for a quicker answer.")
COLUMNS_PER_ROW = 2
OPACITY, COLORMAP = 0.45, "Jet"


def archive_upload() -> tuple[str, bytes] | None:
    upload = st.file_uploader("A zip of labelled chest X-rays", type=["zip"], key="evaluate-upload",
                              max_upload_size=ARCHIVE_MAX_UPLOAD_MB, help=LIMITS)
    if upload is None:
        st.info(f"Upload a zip to score every model on your own images. {LIMITS} Classes a model does not know "
                "are reported and left out. The images stay in memory and are never written to disk.",
                icon=":material/folder_zip:")
        st.caption(TIME)
        return None
    data = upload.getvalue()
    return hashlib.sha256(data).hexdigest(), data


def decoded_images(digest: str, data: bytes, sizes: list[int]) -> scoring.Decoded | None:
    """The archive's images decoded once per upload (None after an error message)."""
    kept = st.session_state.get(DECODED_KEY)
    if kept is not None and kept[0] == digest and set(sizes) <= set(kept[1].inputs):
        return kept[1]
    try:
        archive = read_labelled_zip(data)
    except ArchiveError as exc:
        st.error(str(exc), icon=":material/folder_off:")
        return None
    with st.spinner(f"Decoding {len(archive.images)} images..."):
        decoded = scoring.decode_all(archive.images, sorted(set(sizes)))
    decoded.failed += [f"{name}: no label (no class folder and not in a CSV)" for name in archive.unlabelled]
    st.session_state[DECODED_KEY] = (digest, decoded)
    return decoded


def scorer(entry: ModelEntry) -> scoring.Scorer | None:
    try:
        model = loaders.explainer(str(entry.folder), entry.stamp)
    except ArtifactError as exc:
        st.warning(str(exc), icon=":material/folder_off:")
        return None
    return scoring.Scorer(entry.name, lambda batch: model.model.predict_on_batch([batch]), model.classes,
                          model.input_size)


def scores_for(digest: str, entries: list[ModelEntry], decoded: scoring.Decoded) -> dict[str, scoring.ModelScore]:
    """Each chosen model's scores, computed once per upload and model (with a progress bar)."""
    kept = st.session_state.get(SCORES_KEY)
    cache = kept[1] if kept is not None and kept[0] == digest else {}
    missing = [e for e in entries if (e.name, e.stamp) not in cache]
    if missing:
        st.caption(TIME)
        bar = st.progress(0.0, text="Loading the models...")
        scorers = [s for e in missing if (s := scorer(e)) is not None]
        found = scoring.score_all(scorers, decoded, lambda share, text: bar.progress(share, text=text))
        cache.update({(e.name, e.stamp): found[e.name] for e in missing if e.name in found})
        bar.empty()
        st.session_state[SCORES_KEY] = (digest, cache)
    return {e.name: cache[(e.name, e.stamp)] for e in entries if (e.name, e.stamp) in cache}


def notes(decoded: scoring.Decoded, scores: dict[str, scoring.ModelScore]) -> None:
    left_out: dict[str, list[str]] = {}
    for name, score in scores.items():
        for label, count in score.left_out.items():
            left_out.setdefault(f"{label} ({count} images)", []).append(name)
    for label, models in left_out.items():
        st.warning(f"{label} is not a class of {', '.join(models)}: left out of their figures.",
                   icon=":material/label_off:")
    if decoded.failed:
        with st.expander(f"{len(decoded.failed)} file{'s' if len(decoded.failed) > 1 else ''} left out"):
            st.text("\n".join(decoded.failed))


def figures(scores: dict[str, scoring.ModelScore]) -> None:
    table = scoring.models_table(scores)
    if table.empty:
        st.info("No image could be scored: none both decodes and belongs to a class of the chosen models.")
        return
    st.subheader("Metrics, with 95% bootstrap intervals")
    st.dataframe(table, hide_index=True, column_config={
        c: st.column_config.NumberColumn(format="percent") for c in table.columns if c.startswith(PERCENT)})
    left, right = st.columns(2)
    left.download_button("Download the figures per model (CSV)", table.to_csv(index=False).encode("utf-8"),
                         file_name="evaluation_models.csv", mime="text/csv", icon=":material/download:")
    right.download_button("Download the outputs per image and model (CSV)",
                          scoring.images_table(scores).to_csv(index=False).encode("utf-8"),
                          file_name="evaluation_images.csv", mime="text/csv", icon=":material/download:")
    named = {name: score.metrics for name, score in scores.items() if score.metrics}
    st.plotly_chart(charts.interval_bars(compare.named_intervals(named, "recall"),
                                         "Recall per class on your images, with 95% bootstrap intervals"))
    st.subheader("Confusion matrices")
    names = list(named)
    for start in range(0, len(names), COLUMNS_PER_ROW):
        for column, name in zip(st.columns(COLUMNS_PER_ROW), names[start:start + COLUMNS_PER_ROW]):
            column.plotly_chart(charts.confusion_heatmap(np.asarray(named[name]["confusion_matrix"], float),
                                                         named[name]["class_names"], name, False), key=f"ev-cm-{name}")


def map_panels(entry: ModelEntry, gray: np.ndarray, *labels: str) -> list[tuple[str, np.ndarray]]:
    """The image, then Grad-CAM and Grad-CAM++ of each of ``labels``, as (title, RGB) panels."""
    classes = loaders.explainer(str(entry.folder), entry.stamp).classes
    view, digest = images.resize_gray(gray, overlay.DISPLAY_SIZE), images.image_digest(gray)
    panels = [("Original", overlay.gray_rgb(view))]
    for label in labels:
        maps = loaders.attention_maps(str(entry.folder), entry.stamp, digest, classes.index(label), gray)
        panels += [(f"{title} ({label})", overlay.overlay(view, cam, OPACITY, COLORMAP))
                   for title, cam in zip(overlay.MAP_TITLES, maps)]
    return panels


def misclassified(entries: list[ModelEntry], decoded: scoring.Decoded, scores: dict[str, scoring.ModelScore]) -> None:
    wrong = scoring.misclassified(scores)
    st.subheader(f"Misclassified images ({len(wrong)})")
    if wrong.empty:
        st.caption("Every model got every image right.")
        return
    st.dataframe(wrong, hide_index=True)
    options = [f"{row.model}: {row.path}" for row in wrong.itertuples()]
    choice = st.selectbox("Open the maps of", options, index=None, key="evaluate-open",
                          placeholder="a misclassified image")
    if choice is None:
        return
    row = wrong.iloc[options.index(choice)]
    entry = next(e for e in entries if e.name == row["model"])
    image = next(i for i in decoded.images if i.name == row["path"])
    try:
        panels = map_panels(entry, loaders.decode(image.data, image.name), row["predicted"], row["label"])
    except Exception:  # keep the session alive; the details go to the server log only
        log.exception("attention maps failed for %s", entry.folder)
        st.error(f"The attention maps of {entry.name} could not be computed; the server log has the details.")
        return
    for column, (title, rgb) in zip(st.columns(len(panels)), panels):
        column.image(rgb, caption=title, width="stretch")
    st.caption(f"{entry.name} called this {row['label']} image {row['predicted']}: model attention for the "
               "predicted and for the true class, not the location of any finding.")


def main() -> None:
    opened = layout.open_page("Evaluate your X-rays", lambda c: c.explainable, "with a loadable model.keras")
    if opened is None:
        return
    _, entries = opened
    picked = st.multiselect("Models", [e.name for e in entries], default=[e.name for e in entries],
                            key="evaluate-models")
    chosen = [e for e in entries if e.name in picked]
    upload = archive_upload()
    if upload is None or not chosen:
        return
    digest, data = upload
    decoded = decoded_images(digest, data, [e.input_size for e in chosen])
    if decoded is None:
        return
    scores = scores_for(digest, chosen, decoded)
    notes(decoded, scores)
    figures(scores)
    misclassified(chosen, decoded, scores)


main()

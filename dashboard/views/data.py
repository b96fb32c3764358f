"""Data and augmentation: what each model was trained on, example images, the augmentation live."""

from __future__ import annotations

import streamlit as st

from dashboard import charts, compare, layout, loaders
from dashboard.catalog import ModelEntry
from dashboard.samples import class_images, shipped_samples
from pipeline import images

PER_CLASS = 4
AUGMENTED = 8
DRAW_KEY, SAMPLE_DRAW_KEY = "augment-draw", "data-sample-draw"


def training_data(entries: list[ModelEntry]) -> list[dict]:
    """Counts per class and split for each distinct training set; returns those data sets."""
    datasets = compare.training_datasets(entries)
    for data, models in datasets:
        st.subheader(f"{data.get('name', 'unnamed data')} (used by {', '.join(models)})")
        notes = [f"origin: {data.get('origin', 'unknown')}", f"path when trained: `{data.get('path', '?')}`",
                 f"unreadable files skipped: {data.get('skipped_files', 0)}"]
        if data.get("missing_classes"):
            notes.append(f"classes missing from this data: {', '.join(data['missing_classes'])}")
        st.caption("; ".join(notes))
        counts = data.get("counts") or {}
        if not counts:
            st.info("config.json holds no image counts for this data.")
            continue
        left, right = st.columns([3, 2])
        left.plotly_chart(charts.split_counts(counts, "Images per class and split"), key=f"counts-{models[0]}")
        right.dataframe(compare.counts_table(counts))
    return [data for data, _ in datasets]


def example_images(datasets: list[dict]) -> dict[str, str]:
    """A grid of images per class; returns {label: path} of every image shown."""
    st.subheader("Example images per class")
    paths = [data.get("path") for data in datasets if data.get("path")]
    chosen = st.selectbox("Data folder", paths, key="data-folder") if len(paths) > 1 else next(iter(paths), None)
    if st.button("Show other images", icon=":material/shuffle:"):
        st.session_state[SAMPLE_DRAW_KEY] = st.session_state.get(SAMPLE_DRAW_KEY, 0) + 1
    per_class = {name: [(p.name, str(p), None) for p in files] for name, files in
                 class_images(chosen, PER_CLASS, st.session_state.get(SAMPLE_DRAW_KEY, 0)).items()}
    if not per_class:
        st.caption("The training data folder is not on this machine; these are the X-rays shipped with the dashboard.")
        for sample in shipped_samples():
            per_class.setdefault(sample.label or sample.finding, []).append(
                (sample.title, str(sample.path), sample.credit))
    shown: dict[str, str] = {}
    for name, items in per_class.items():
        st.markdown(f"**{name}**")
        for column, (title, path, credit) in zip(st.columns(PER_CLASS), items):
            try:
                column.image(loaders.decode_file(path), caption=title, width="stretch")
            except images.ImageInputError as exc:
                column.caption(f"{title}: {exc}")
                continue
            if credit:
                column.caption(credit)
            shown[f"{name}: {title}"] = path
    return shown


def augmentation_preview(entries: list[ModelEntry], shown: dict[str, str]) -> None:
    st.subheader("Training augmentation, live")
    st.caption("The same Keras layers training applies to each batch, drawn at the model's input size: "
               "rotation, shift and zoom (`affine`); `robust` adds a wider zoom, down- and up-sampling, blur, "
               "JPEG re-compression and gamma; a horizontal flip only for models trained with `--flip`.")
    if not shown:
        st.info("No image to augment.")
        return
    left, right, button = st.columns([2, 1, 1], vertical_alignment="bottom")
    label = left.selectbox("Image", list(shown), key="augment-image")
    name = right.selectbox("Model (its input size and augmentation)", [e.name for e in entries], key="augment-model")
    if button.button("New draw", icon=":material/casino:"):
        st.session_state[DRAW_KEY] = st.session_state.get(DRAW_KEY, 0) + 1
    config = next(e for e in entries if e.name == name).config
    gray = loaders.decode_file(shown[label])
    kind = config.get("augmentation", "affine")
    st.caption(f"{name}: augmentation `{kind}`{', with flips' if config.get('flip') else ''}.")
    draws = loaders.augmentations(images.image_digest(gray), int(config["input_size"]), AUGMENTED,
                                  st.session_state.get(DRAW_KEY, 0), bool(config.get("flip", False)), kind, gray)
    columns = st.columns(AUGMENTED // 2)
    for index, picture in enumerate(draws):
        columns[index % len(columns)].image(picture, caption=f"draw {index + 1}", width="stretch")


def main() -> None:
    opened = layout.open_page("Data and augmentation", lambda c: c.entries, "with a readable config.json")
    if opened is None:
        return
    _, entries = opened
    shown = example_images(training_data(entries))
    augmentation_preview(entries, shown)


main()

"""Explain an X-ray: a model's outputs and its Grad-CAM / Grad-CAM++ attention maps."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import numpy as np
import streamlit as st

from dashboard import charts, images, layout, loaders, overlay
from dashboard.catalog import ModelEntry
from dashboard.samples import shipped_samples
from pipeline.errors import ArtifactError

if TYPE_CHECKING:
    from dashboard.explain import Explainer

log = logging.getLogger(__name__)

ONE, ALL = "One model", "All models"
ABOUT_MAPS = (
    "Grad-CAM and Grad-CAM++ show which parts of the image weighed most for the chosen class at the "
    "model's last convolutional block: **model attention**, not the location of any disease. Each map "
    "is scaled to 0-1 and both use the same colour scale. Maps on bright borders, text or devices "
    "suggest the model relies on shortcuts."
)


class Picked:
    """The image to explain: its working copy, a cache key, a square view for display and a label."""

    def __init__(self, gray: np.ndarray, label: str) -> None:
        self.gray, self.label = gray, label
        self.digest = images.image_digest(gray)
        self.view = images.resize_gray(gray, overlay.DISPLAY_SIZE)


def pick_image() -> Picked | None:
    samples = {sample.title: sample for sample in shipped_samples()}
    left, right = st.columns(2)
    upload = left.file_uploader("Upload a chest X-ray (PNG, JPEG or DICOM)", type=list(images.UPLOAD_TYPES),
                                help=images.ACCEPTED, key="explain-upload")
    title = right.selectbox("...or pick a sample", list(samples), disabled=upload is not None,
                            key="explain-sample")
    if upload is not None:
        try:
            return Picked(loaders.decode(upload.getvalue(), upload.name), "your upload")
        except images.ImageInputError as exc:
            st.error(str(exc), icon=":material/broken_image:")
            return None
    if title is None:
        st.info("Upload an image to explain it.")
        return None
    sample = samples[title]
    right.caption(sample.credit)
    return Picked(loaders.decode_file(str(sample.path)), f"sample: {sample.title}")


def load(entry: ModelEntry) -> Explainer | None:
    """The cached explainer, or None after a warning naming the folder and the problem."""
    try:
        return loaders.explainer(str(entry.folder), entry.stamp)
    except ArtifactError as exc:
        st.warning(str(exc), icon=":material/folder_off:")
    except Exception:  # a model file that passes the checks yet fails in Keras or tf-keras-vis
        log.exception("cannot load %s", entry.folder)
        st.warning(f"{entry.folder}: the model cannot be loaded; the server log has the details.",
                   icon=":material/folder_off:")
    return None


def maps_for(entry: ModelEntry, image: Picked, class_index: int) -> tuple[np.ndarray, np.ndarray] | None:
    try:
        return loaders.attention_maps(str(entry.folder), entry.stamp, image.digest, class_index, image.gray)
    except Exception:  # keep the session alive; the details go to the server log only
        log.exception("attention maps failed for %s", entry.folder)
        st.error(f"The attention maps of {entry.name} could not be computed; the server log has the details.")
        return None


def show_panels(panels: list[tuple[str, np.ndarray]], maps: tuple[np.ndarray, np.ndarray], layer: str) -> None:
    for column, (title, rgb) in zip(st.columns(len(panels)), panels):
        column.image(rgb, caption=title, width="stretch")
    for title, cam in zip(overlay.MAP_TITLES, maps):
        if overlay.is_flat(cam):
            st.caption(f"{title} is empty for this class: no positive gradient reaches layer `{layer}`.")


def colour_scale(colormap: str) -> None:
    st.image(overlay.colorbar(colormap, 768), width="stretch",
             caption="Colour scale shared by both maps: low (left) to high (right) relative model attention")


def one_model(entry: ModelEntry, image: Picked, opacity: float, colormap: str) -> None:
    model = load(entry)
    if model is None:
        return
    probabilities = loaders.probabilities(str(entry.folder), entry.stamp, image.digest, image.gray)
    predicted = int(np.argmax(probabilities))
    left, right = st.columns([2, 1])
    left.plotly_chart(charts.probability_bars(probabilities, model.classes, f"{entry.name}: model outputs"))
    class_name = right.selectbox("Explain the class", model.classes, index=predicted,
                                 key=f"explain-class-{entry.name}-{image.digest[:16]}",
                                 help="The predicted class is chosen first; pick another to compare.")
    right.caption(f"Model input: {model.input_size} x {model.input_size} px, the whole image squashed to a square. "
                  f"Grad-CAM layer: `{model.layer}`.")
    maps = maps_for(entry, image, model.classes.index(class_name))
    if maps is None:
        return
    panels = overlay.attention_panels(image.view, maps, opacity, colormap)
    show_panels(panels, maps, model.layer)
    colour_scale(colormap)
    caption = f"{entry.name}, class {class_name}, {image.label}. Research use only; not for diagnosis."
    st.download_button("Download the overlays (PNG)", overlay.panel_png(panels, colormap, caption),
                       file_name=f"attention-{entry.name}-{class_name}.png".replace(" ", "_"), mime="image/png",
                       icon=":material/download:")


def all_models(entries: list[ModelEntry], image: Picked, opacity: float, colormap: str) -> None:
    st.caption("Each model explains its own predicted class.")
    for entry in entries:
        model = load(entry)
        if model is None:
            continue
        probabilities = loaders.probabilities(str(entry.folder), entry.stamp, image.digest, image.gray)
        predicted = int(np.argmax(probabilities))
        maps = maps_for(entry, image, predicted)
        if maps is None:
            continue
        columns = st.columns(4)
        ranked = np.argsort(probabilities)[::-1]
        columns[0].markdown(f"**{entry.name}**  \n" + "  \n".join(
            f"{model.classes[i]}: {probabilities[i]:.1%}" for i in ranked))
        for column, (title, rgb) in zip(columns[1:], overlay.attention_panels(image.view, maps, opacity, colormap)):
            column.image(rgb, caption=f"{title} ({model.classes[predicted]})" if title in overlay.MAP_TITLES
                         else title, width="stretch")
    colour_scale(colormap)


def main() -> None:
    opened = layout.open_page("Explain an X-ray", lambda c: c.explainable, "with a loadable model.keras")
    if opened is None:
        return
    catalog, entries = opened
    image = pick_image()
    if image is None:
        return
    names = [entry.name for entry in entries]
    mode_column, model_column, opacity_column, colormap_column = st.columns([1.2, 1, 1, 1])
    mode = mode_column.segmented_control("View", [ONE, ALL], default=ONE, key="explain-mode") or ONE
    name = model_column.selectbox("Model", names, key="explain-model", disabled=mode == ALL)
    opacity = opacity_column.slider("Overlay opacity", 0.0, 1.0, 0.45, 0.05, key="explain-opacity")
    colormap = colormap_column.selectbox("Colour map", list(overlay.COLORMAPS), key="explain-colormap")
    st.markdown(ABOUT_MAPS)
    st.caption(f"Explaining {image.label}.")
    if mode == ONE:
        one_model(catalog.entry(name), image, opacity, colormap)
    else:
        all_models(entries, image, opacity, colormap)


main()

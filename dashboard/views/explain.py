"""Explain an X-ray: a model's outputs and its Grad-CAM / Grad-CAM++ attention maps (Score-CAM and
Layer-CAM on request), with the lung boxes of a sample that has them."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property, partial
from typing import TYPE_CHECKING

import numpy as np
import streamlit as st

from dashboard import giveway, layout, loaders, lungs, overlay, thresholds, warmup
from dashboard.catalog import Catalog, ModelEntry, folder_stamp
from dashboard.samples import LungBoxes, shipped_samples
from pipeline import images
from pipeline.artifacts import gradcam_layer
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
MORE = "More methods: Score-CAM and Layer-CAM"
ABOUT_MORE = (
    "Score-CAM masks the image with each of the layer's {passes} most varied channels and weighs each by the "
    "class probability the masked image keeps: about {passes} extra forward passes per image and class. "
    "Layer-CAM weighs each position of the layer by its own positive gradient. Same layer, same colour scale."
)
ABOUT_LUNGS = (
    "White outlines: coarse lung boxes drawn by radiologists, one loose rectangle per lung (not a lung mask: "
    "they also take in ribs, soft tissue, part of the heart and diaphragm). Boxes: {source}."
)


@dataclass(frozen=True)
class Drawing:
    """How to draw the maps, as chosen on the page."""

    opacity: float
    colormap: str
    more: bool  # Score-CAM and Layer-CAM too (one-model view only)
    lungs: LungBoxes | None  # boxes to outline on every panel, None: none
    predicted: lungs.PredictedLungs | None = None  # the lung segmenter's mask to outline, None: none


class Picked:
    """The image to explain: its working copy, a cache key, a square view for display and a label."""

    def __init__(self, gray: np.ndarray, label: str, lungs: LungBoxes | None = None) -> None:
        self.gray, self.label, self.lungs = gray, label, lungs
        self.digest = images.image_digest(gray)
        self.view = images.resize_gray(gray, overlay.DISPLAY_SIZE)

    @cached_property
    def row_view(self) -> np.ndarray:
        """The square view at the all-models rows' smaller size, made once per image."""
        return images.resize_gray(self.gray, overlay.ROW_DISPLAY_SIZE)


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
    return Picked(loaders.decode_file(str(sample.path)), f"sample: {sample.title}", sample.lungs)


def load(entry: ModelEntry) -> Explainer | None:
    """The cached explainer, or None after a warning naming the folder and the problem."""
    warmup.wait_on_page(str(entry.folder), entry.name)  # a progress bar while the background warm-up loads it
    try:
        return loaders.explainer(str(entry.folder), entry.stamp)
    except ArtifactError as exc:
        st.warning(str(exc), icon=":material/folder_off:")
    except Exception:  # a model file that passes the checks yet fails in Keras or tf-keras-vis
        log.exception("cannot load %s", entry.folder)
        st.warning(f"{entry.folder}: the model cannot be loaded; the server log has the details.",
                   icon=":material/folder_off:")
    return None


def maps_for(entry: ModelEntry, image: Picked, class_index: int, more: bool = False) -> tuple[np.ndarray, ...] | None:
    """Grad-CAM and Grad-CAM++, then Score-CAM and Layer-CAM when ``more``; None after an error message."""
    key = (str(entry.folder), entry.stamp, image.digest, class_index, image.gray)
    try:
        return loaders.attention_maps(*key) + (loaders.extra_attention_maps(*key) if more else ())
    except Exception:  # keep the session alive; the details go to the server log only
        log.exception("attention maps failed for %s", entry.folder)
        st.error(f"The attention maps of {entry.name} could not be computed; the server log has the details.")
        return None


def draw(view: np.ndarray, titles: Sequence[str], maps: Sequence[np.ndarray],
         drawing: Drawing) -> list[tuple[str, np.ndarray]]:
    """The (title, RGB) panels at the size of the square ``view``: the image and one overlay per map, with the
    lung boxes and the predicted lungs if chosen."""
    panels = overlay.attention_panels(view, maps, drawing.opacity, drawing.colormap, titles)
    if drawing.lungs is not None:
        panels = overlay.outline_panels(panels, drawing.lungs.boxes, drawing.lungs.size)
    if drawing.predicted is not None:
        panels = lungs.outline_panels(panels, drawing.predicted.mask)
    return panels


def predicted_lungs(catalog: Catalog, image: Picked, column) -> lungs.PredictedLungs | None:
    """The toggle for the segmenter's outlines and, when on, its mask of the image (computed once
    per image, whatever the model or the drawing options); None with a plain note where there is none."""
    folder = lungs.segmenter_folder(catalog.root)
    problem = lungs.segmenter_problem(folder)
    on = column.toggle("Outline the predicted lungs", value=problem is None, disabled=problem is not None,
                       key="explain-predicted-lungs",
                       help="The lungs as the project's lung segmenter predicts them, with each map's share inside.")
    if problem is not None:
        column.caption(problem)
        return None
    if not on:
        return None
    stamp = folder_stamp(folder)
    if loaders.known(str(folder), stamp, image.digest) is None:
        warmup.wait_on_page(str(folder), "the lung segmenter")
    try:
        return lungs.PredictedLungs(loaders.lung_mask(str(folder), stamp, image.digest, image.gray))
    except Exception:  # a segmenter that passes the checks yet fails in Keras: the page goes on without it
        log.exception("lung segmentation failed with %s", folder)
        column.caption(f"The lung segmenter in `{folder}` failed on this image (the server log has the details); "
                       "the maps are shown without lung outlines.")
        return None


def lung_caption(lungs: LungBoxes, titles: Sequence[str], maps: Sequence[np.ndarray]) -> str:
    return (f"Share of each map's energy inside the lung boxes for this image: {lungs.shares_text(titles, maps)}; "
            f"a uniform map would put {lungs.uniform_share(maps[0].shape[0]):.0%} there. "
            f"{ABOUT_LUNGS.format(source=lungs.source)}")


def show_panels(panels: list[tuple[str, np.ndarray]], titles: Sequence[str], maps: Sequence[np.ndarray],
                layer: str) -> None:
    for column, (title, rgb) in zip(st.columns(len(panels)), panels):
        column.image(rgb, caption=title, width="stretch")
    for title, cam in zip(titles, maps):
        if overlay.is_flat(cam):
            st.caption(f"{title} is empty for this class: no positive evidence reaches layer `{layer}`.")


def colour_scale(colormap: str) -> None:
    st.image(overlay.colorbar(colormap, 768), width="stretch",
             caption="Colour scale shared by all maps: low (left) to high (right) relative model attention")


def ready(entry: ModelEntry, image: Picked) -> bool:
    """Whether the model's outputs and maps of the image can be shown: computed ahead of time, or the model
    loaded (after a progress bar while the warm-up loads it; False after a warning where it cannot load)."""
    return loaders.known(str(entry.folder), entry.stamp, image.digest) is not None or load(entry) is not None


def one_model(entry: ModelEntry, image: Picked, drawing: Drawing) -> None:
    if not ready(entry, image):
        return
    model = load(entry) if drawing.more else None  # Score-CAM and Layer-CAM are never computed ahead of time
    if drawing.more and model is None:
        return
    try:
        classes, layer = entry.classes, gradcam_layer(entry.config, entry.folder)
    except ArtifactError as exc:
        st.warning(str(exc), icon=":material/folder_off:")
        return
    probabilities = loaders.probabilities(str(entry.folder), entry.stamp, image.digest, image.gray)
    predicted = int(np.argmax(probabilities))
    left, right = st.columns([2, 1])
    with left:
        thresholds.show_outputs(f"{entry.name}: model outputs", probabilities, classes)
        thresholds.show(entry.name, probabilities, classes)
    class_name = right.selectbox("Explain the class", classes, index=predicted,
                                 key=f"explain-class-{entry.name}-{image.digest[:16]}",
                                 help="The predicted class is chosen first; pick another to compare.")
    right.caption(f"Model input: {entry.input_size} x {entry.input_size} px, the whole image squashed to a square. "
                  f"Grad-CAM layer: `{layer}`.")
    maps = maps_for(entry, image, classes.index(class_name), drawing.more)
    if maps is None:
        return
    titles = overlay.MAP_TITLES + (model.EXTRA_METHODS if model is not None else ())
    panels = draw(image.view, titles, maps, drawing)
    show_panels(panels, titles, maps, layer)
    if model is not None:
        st.caption(ABOUT_MORE.format(passes=model.SCORE_CAM_PASSES))
    if drawing.lungs is not None:
        st.caption(lung_caption(drawing.lungs, titles, maps))
    if drawing.predicted is not None:
        st.caption(f"{drawing.predicted.caption(titles, maps)} {lungs.ABOUT_PREDICTED}")
    colour_scale(drawing.colormap)
    boxes = "; white outlines: coarse lung boxes" if drawing.lungs is not None else ""
    boxes += "; magenta outlines: predicted lungs" if drawing.predicted is not None else ""
    caption = f"{entry.name}, class {class_name}, {image.label}{boxes}. Research use only; not for diagnosis."
    st.download_button("Download the overlays (PNG)", partial(overlay.panel_png, panels, drawing.colormap, caption),
                       file_name=f"attention-{entry.name}-{class_name}.png".replace(" ", "_"), mime="image/png",
                       icon=":material/download:", on_click="ignore")  # the PNG is drawn when clicked


def all_models(entries: list[ModelEntry], image: Picked, drawing: Drawing) -> None:
    st.caption("Each model explains its own predicted class."
               + (" Score-CAM and Layer-CAM are shown in the one-model view only." if drawing.more else ""))
    if drawing.lungs is not None:
        st.caption(ABOUT_LUNGS.format(source=drawing.lungs.source))
    if drawing.predicted is not None:
        st.caption(lungs.ABOUT_PREDICTED)
    for entry in entries:
        if not ready(entry, image):
            continue
        probabilities = loaders.probabilities(str(entry.folder), entry.stamp, image.digest, image.gray)
        predicted = int(np.argmax(probabilities))
        maps = maps_for(entry, image, predicted)
        if maps is None:
            continue
        columns = st.columns(4)
        columns[0].markdown(f"**{entry.name}**  \n" + "  \n".join(
            f"{name}: {output:.1%}" for name, output in thresholds.ranked(probabilities, entry.classes)))
        if drawing.lungs is not None:
            columns[0].caption(f"Energy inside the lung boxes: {drawing.lungs.shares_text(overlay.MAP_TITLES, maps)}")
        if drawing.predicted is not None:
            columns[0].caption(f"Energy inside the predicted lungs: "
                               f"{drawing.predicted.shares_text(overlay.MAP_TITLES, maps)} (a uniform map: "
                               f"{drawing.predicted.uniform_share(maps[0].shape[0]):.0%})")
        for column, (title, rgb) in zip(columns[1:], draw(image.row_view, overlay.MAP_TITLES, maps, drawing)):
            column.image(rgb, caption=f"{title} ({entry.classes[predicted]})" if title in overlay.MAP_TITLES
                         else title, width=overlay.ROW_DISPLAY_SIZE)
    colour_scale(drawing.colormap)


def main() -> None:
    opened = layout.open_page("Explain an X-ray", lambda c: c.explainable, "with a loadable model.keras")
    if opened is None:
        return
    catalog, entries = opened
    image = pick_image()
    if image is not None:
        explain(catalog, entries, image)


@st.fragment
def explain(catalog: Catalog, entries: list[ModelEntry], image: Picked) -> None:
    """The options and what they show: changing one reruns this part only, not the upload and its decoding."""
    with giveway.pages.page():  # a rerun of this part alone does not pass through the entry point
        show_options(catalog, entries, image)


def show_options(catalog: Catalog, entries: list[ModelEntry], image: Picked) -> None:
    names = [entry.name for entry in entries]
    mode_column, model_column, opacity_column, colormap_column = st.columns([1.2, 1, 1, 1])
    mode = mode_column.segmented_control("View", [ONE, ALL], default=ONE, key="explain-mode") or ONE
    name = model_column.selectbox("Model", names, key="explain-model", disabled=mode == ALL)
    opacity = opacity_column.slider("Overlay opacity", 0.0, 1.0, 0.45, 0.05, key="explain-opacity")
    colormap = colormap_column.selectbox("Colour map", list(overlay.COLORMAPS), key="explain-colormap")
    more_column, lungs_column, predicted_column = st.columns(3)
    more = more_column.toggle(MORE, value=False, key="explain-more",
                              help="Two more attention maps in the one-model view; computed only when this is on.")
    outline = image.lungs is not None and lungs_column.checkbox(
        "Draw the lung boxes", value=True, key="explain-lungs",
        help="Coarse boxes around the lungs of this sample, drawn by radiologists: not a lung mask.")
    predicted = predicted_lungs(catalog, image, predicted_column)
    drawing = Drawing(opacity, colormap, more, image.lungs if outline else None, predicted)
    st.markdown(ABOUT_MAPS)
    st.caption(f"Explaining {image.label}.")
    if mode == ONE:
        one_model(catalog.entry(name), image, drawing)
    else:
        all_models(entries, image, drawing)


main()

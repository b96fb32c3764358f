"""Every cached loader of the dashboard, in one place.

``st.cache_resource`` holds shared objects (loaded models with their visualizers);
``st.cache_data`` holds values (artifacts, decoded images, predictions, maps). Cache keys
include a stamp of the model folder's files, so a retrained model is picked up. Modules that
import TensorFlow are imported inside the functions that need them, so that the comparison
page never loads TensorFlow.
"""

from __future__ import annotations

import gc
import logging
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

import numpy as np
import pandas as pd
import streamlit as st

from pipeline import images
from pipeline.config import CARD_FILE, PREDICTIONS_FILE
from pipeline.upsample import unit_map

from . import catalog, giveway, precomputed

if TYPE_CHECKING:
    from .explain import Explainer

log = logging.getLogger(__name__)
T = TypeVar("T")


@st.cache_data(show_spinner=False, max_entries=8)
def _scan(root: str, stamp: tuple[tuple[str, str], ...]) -> catalog.Catalog:
    return catalog.scan(Path(root))


def load_catalog() -> catalog.Catalog:
    """The models under the models folder, re-read whenever one of their files changes."""
    root = catalog.models_root()
    return _scan(str(root), catalog.root_stamp(root))


@st.cache_data(show_spinner=False, max_entries=32)
def predictions(folder: str, stamp: str, name: str = PREDICTIONS_FILE) -> pd.DataFrame | None:
    """The test-set predictions of a model (``name``: val_predictions.csv for the validation split's),
    or None when the file is missing or unreadable."""
    path = Path(folder) / name
    if not path.is_file():
        return None
    try:
        return pd.read_csv(path)
    except (OSError, ValueError) as exc:
        log.warning("cannot read %s: %s", path, exc)
        return None


@st.cache_data(show_spinner=False, max_entries=32)
def model_card(folder: str, stamp: str) -> str | None:
    try:
        return (Path(folder) / CARD_FILE).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        log.warning("cannot read the model card of %s: %s", folder, exc)
        return None


@st.cache_data(show_spinner=False, max_entries=16, ttl=3600)
def decode(data: bytes, name: str) -> np.ndarray:
    """Decoded upload (kept in memory only); raises ``images.ImageInputError``."""
    return images.decode_image(data, name)


@st.cache_data(show_spinner=False, max_entries=64)
def decode_file(path: str) -> np.ndarray:
    """A shipped or training image from disk, decoded like an upload (errors name no server folder)."""
    return images.decode_image(Path(path).read_bytes(), Path(path).name)


def lasting(resource: T) -> T:
    """``resource``, with every object alive now moved out of the garbage collector's sight.

    Streamlit collects garbage after every script run; with TensorFlow and a few models loaded, a full
    collection walked about half a million objects (0.6 s on two busy cores, during which the next run
    waits). Models live as long as the server, so they are frozen once loaded (``gc.freeze``); only a model
    replaced by a retrained one stays in memory uncollected. What is garbage already is collected first,
    once per load, so that none of it is kept.
    """
    gc.collect()
    gc.freeze()
    return resource


@st.cache_resource(show_spinner="Loading the model...", max_entries=5)
def explainer(folder: str, stamp: str) -> Explainer:
    """The loaded model and its visualizers, built once and shared; raises ``ArtifactError``."""
    from .explain import Explainer

    with giveway.pages.released():  # a page that loads a model lets the background warm-up go on meanwhile
        return lasting(Explainer(folder))


@st.cache_data(show_spinner=False, max_entries=16)
def _precomputed(folder: str, stamp: str) -> precomputed.Results:
    return precomputed.read(Path(folder))


def known(folder: str, stamp: str, digest: str) -> dict[str, np.ndarray] | None:
    """What the folder's model (or segmenter) computed ahead of time for the image with ``digest``
    (``dashboard.precomputed``), or None: then it is computed live, with the model loaded."""
    return _precomputed(folder, stamp).get(digest)


@st.cache_data(show_spinner=False, max_entries=128)
def probabilities(folder: str, stamp: str, digest: str, _gray: np.ndarray) -> np.ndarray:
    """Class probabilities of the image with SHA-256 ``digest`` (``_gray``, not hashed)."""
    if (stored := known(folder, stamp, digest)) is not None:
        return stored[precomputed.PROBABILITIES]
    model = explainer(folder, stamp)
    return model.probabilities(images.model_input(_gray, model.input_size))


@st.cache_data(show_spinner="Computing Grad-CAM and Grad-CAM++...", max_entries=128)
def attention_maps(folder: str, stamp: str, digest: str, class_index: int,
                   _gray: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Grad-CAM and Grad-CAM++ maps, cached by model, image digest and class."""
    if (stored := known(folder, stamp, digest)) is not None:
        size = int(stored[precomputed.SIZE])
        return tuple(unit_map(grid, size) for grid in stored[precomputed.GRIDS][class_index])
    model = explainer(folder, stamp)
    return model.maps(images.model_input(_gray, model.input_size), class_index)


@st.cache_data(show_spinner="Computing Score-CAM and Layer-CAM...", max_entries=64)
def extra_attention_maps(folder: str, stamp: str, digest: str, class_index: int,
                         _gray: np.ndarray) -> tuple[np.ndarray, ...]:
    """Score-CAM and Layer-CAM maps, cached like ``attention_maps``; the explainer builds their
    visualizers on the first call, so a session that never asks for them never pays for them."""
    model = explainer(folder, stamp)
    return model.extra_maps(images.model_input(_gray, model.input_size), class_index)


@st.cache_data(show_spinner="Drawing augmentations...", max_entries=16)
def augmentations(digest: str, size: int, count: int, seed: int, flip: bool, kind: str,
                  _gray: np.ndarray) -> np.ndarray:
    from .augment_preview import augmented_versions

    return augmented_versions(_gray, size, count, seed, flip, kind)


@st.cache_resource(show_spinner="Loading the lung segmenter...", max_entries=2)
def segmenter(folder: str, stamp: str):
    """The lung segmenter and its config, loaded once and traced (``lungs.warm_up``); raises ``ArtifactError``."""
    from pipeline.lungs import load_segmenter

    from .lungs import warm_up

    with giveway.pages.released():
        model, config = load_segmenter(folder)
        warm_up(model, int(config["input_size"]))
        return lasting((model, config))


@st.cache_data(show_spinner="Outlining the lungs...", max_entries=128)
def lung_mask(folder: str, stamp: str, digest: str, _gray: np.ndarray) -> np.ndarray:
    """The segmenter's lung mask of the image with SHA-256 ``digest``: one forward pass per image,
    shared by every model, view and redraw."""
    from .lungs import predict_mask

    if (stored := known(folder, stamp, digest)) is not None:
        return stored[precomputed.MASK]
    model, config = segmenter(folder, stamp)
    return predict_mask(model, _gray, int(config["input_size"]))

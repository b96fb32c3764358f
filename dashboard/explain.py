"""Prediction and attention maps (Grad-CAM family) of one saved model: numpy in, numpy out.

Imports TensorFlow: only the pages that explain images import this module, lazily.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path

import numpy as np

from pipeline.artifacts import gradcam_layer, read_config
from pipeline.attention import SCORE_CAM_MAX_N, AttentionModel
from pipeline.errors import ArtifactError, ConfigError
from pipeline.model import load_trained_model

log = logging.getLogger(__name__)


class Explainer:
    """A loaded model with its Grad-CAM and Grad-CAM++ maps, safe to share between sessions.

    The maps come from ``pipeline.attention`` (tf-keras-vis on compiled graphs, traced once
    here at load time so that no user waits for tracing). Score-CAM and Layer-CAM, which few
    users ask for, get their own visualizers, built and traced on their first call only.
    """

    EXTRA_METHODS = ("Score-CAM", "Layer-CAM")
    SCORE_CAM_PASSES = SCORE_CAM_MAX_N  # forward passes per Score-CAM map

    def __init__(self, folder: str | Path) -> None:
        self.model, self.classes = load_trained_model(folder)
        config = read_config(folder)
        self.input_size = int(config["input_size"])
        self.layer = gradcam_layer(config, folder)
        try:
            self.attention = AttentionModel(self.model, self.layer)
        except ConfigError as exc:
            raise ArtifactError(f"{folder}: the Grad-CAM layer {self.layer!r} is not in the model") from exc
        self.attention.warm_up()
        self._extra: AttentionModel | None = None
        self._extra_lock = threading.Lock()
        log.info("loaded %s (%d classes, %d px)", folder, len(self.classes), self.input_size)

    def probabilities(self, image: np.ndarray) -> np.ndarray:
        """Softmax outputs, shape (classes,), for one (size, size, 3) RGB 0-255 image."""
        return self.attention.probabilities(image)

    def maps(self, image: np.ndarray, class_index: int) -> tuple[np.ndarray, np.ndarray]:
        """Grad-CAM and Grad-CAM++ of class ``class_index``: two (size, size) float32 maps in 0-1."""
        self._check_class(class_index)
        maps = self.attention.maps(image, class_index)
        return maps["Grad-CAM"], maps["Grad-CAM++"]

    def grids(self, image: np.ndarray, class_index: int) -> tuple[np.ndarray, np.ndarray]:
        """Grad-CAM and Grad-CAM++ of class ``class_index`` on the layer's grid, before ``unit_map`` upsamples
        them to the maps that ``maps`` returns."""
        self._check_class(class_index)
        grids = self.attention.grids(image, class_index)
        return grids["Grad-CAM"], grids["Grad-CAM++"]

    def extra_maps(self, image: np.ndarray, class_index: int) -> tuple[np.ndarray, ...]:
        """Score-CAM and Layer-CAM (``EXTRA_METHODS``) of class ``class_index``: (size, size) float32 maps in 0-1."""
        self._check_class(class_index)
        maps = self._extra_attention().maps(image, class_index)
        return tuple(maps[method] for method in self.EXTRA_METHODS)

    def _extra_attention(self) -> AttentionModel:
        """The extra visualizers, built once by the first session that asks; the others wait for it."""
        with self._extra_lock:
            if self._extra is None:
                self._extra = AttentionModel(self.model, self.layer, methods=self.EXTRA_METHODS)
            return self._extra

    def _check_class(self, class_index: int) -> None:
        if not 0 <= class_index < len(self.classes):
            raise ValueError(f"class index {class_index} out of range 0-{len(self.classes) - 1}")

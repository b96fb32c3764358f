"""Prediction and Grad-CAM / Grad-CAM++ maps of one saved model: numpy in, numpy out.

Imports TensorFlow: only the pages that explain images import this module, lazily.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path

import numpy as np
from tf_keras_vis.gradcam import Gradcam
from tf_keras_vis.gradcam_plus_plus import GradcamPlusPlus
from tf_keras_vis.utils.model_modifiers import ReplaceToLinear
from tf_keras_vis.utils.scores import CategoricalScore

from pipeline.artifacts import read_config
from pipeline.backbones import get_backbone
from pipeline.errors import ArtifactError, ConfigError
from pipeline.model import load_trained_model, predict_probabilities

log = logging.getLogger(__name__)


class Explainer:
    """A loaded model with its Grad-CAM and Grad-CAM++ visualizers, safe to share between sessions.

    The visualizers work on one clone of the model whose softmax is replaced by a linear output
    (tf-keras-vis ``ReplaceToLinear``); the original model keeps its softmax for prediction.
    Keras models are not thread-safe, so every call holds the explainer's lock.
    """

    def __init__(self, folder: str | Path) -> None:
        self.model, self.classes = load_trained_model(folder)
        config = read_config(folder)
        self.input_size = int(config["input_size"])
        self.layer = _gradcam_layer(config, folder)
        try:
            self.model.get_layer(self.layer)
        except ValueError as exc:
            raise ArtifactError(f"{folder}: the Grad-CAM layer {self.layer!r} is not in the model") from exc
        # The named layer itself: by default tf-keras-vis would step back from an activation layer
        # to the convolution before it, i.e. to values before batch normalisation and ReLU.
        self.options = {"penultimate_layer": self.layer, "seek_penultimate_conv_layer": False}
        self._gradcam = Gradcam(self.model, model_modifier=ReplaceToLinear(), clone=True)
        self._gradcam_plus_plus = GradcamPlusPlus(self._gradcam.model, clone=False)
        self._lock = threading.Lock()
        log.info("loaded %s (%d classes, %d px)", folder, len(self.classes), self.input_size)

    def _batch(self, image: np.ndarray) -> np.ndarray:
        expected = (self.input_size, self.input_size, 3)
        if image.shape != expected:
            raise ValueError(f"model input must have shape {expected}, got {image.shape}")
        return np.asarray(image, dtype=np.float32)[None]

    def probabilities(self, image: np.ndarray) -> np.ndarray:
        """Softmax outputs, shape (classes,), for one (size, size, 3) RGB 0-255 image."""
        batch = self._batch(image)
        with self._lock:
            return predict_probabilities(self.model, batch)[0]

    def maps(self, image: np.ndarray, class_index: int) -> tuple[np.ndarray, np.ndarray]:
        """Grad-CAM and Grad-CAM++ of class ``class_index``: two (size, size) float32 maps in 0-1."""
        if not 0 <= class_index < len(self.classes):
            raise ValueError(f"class index {class_index} out of range 0-{len(self.classes) - 1}")
        batch, score = self._batch(image), CategoricalScore([class_index])
        with self._lock:
            cam = self._gradcam(score, batch, **self.options)
            cam_plus_plus = self._gradcam_plus_plus(score, batch, **self.options)
        return _clean(cam[0]), _clean(cam_plus_plus[0])


def _gradcam_layer(config: dict, folder: str | Path) -> str:
    """The layer named in config.json, else the registry's layer for the backbone."""
    if config.get("gradcam_layer"):
        return str(config["gradcam_layer"])
    try:
        return get_backbone(str(config.get("backbone"))).gradcam_layer
    except ConfigError as exc:
        raise ArtifactError(f"{folder}: config.json names no Grad-CAM layer ({exc})") from exc


def _clean(cam: np.ndarray) -> np.ndarray:
    """float32 in 0-1; a map without any positive evidence (NaN or all zero) becomes zeros."""
    return np.clip(np.nan_to_num(np.asarray(cam, dtype=np.float32), nan=0.0), 0.0, 1.0)

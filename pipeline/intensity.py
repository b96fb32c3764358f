"""Intensity normalisation inside the model: per-image histogram equalisation as a Keras layer.

Each processing chain leaves its own contrast and brightness (window, gamma, export); equalising
every image's histogram maps them all onto one spread of gray levels, so what remains to tell
classes apart is the image's content rather than how it was exported. The layer is part of the
saved model, so training, ``evaluate``, the audit and the app apply it identically.
"""

from __future__ import annotations

import keras
from keras import ops

from .config import INTENSITIES
from .errors import ConfigError

LEVELS = 256
LAYER_NAME = "equalize"


@keras.saving.register_keras_serializable(package="xray")
class HistogramEqualization(keras.layers.Layer):
    """RGB 0-255 images -> each image's gray levels mapped through its own cumulative histogram.

    The classic mapping ``(cdf(v) - cdf_min) / (N - cdf_min) * 255``: the darkest level present
    becomes 0, the brightest 255, and every level in between takes its rank among the image's
    pixels. The three channels are averaged first (X-rays are gray) and the result is copied back
    to three channels. It has no weights and passes no gradient to its input (it rounds to levels).
    """

    def call(self, images):
        levels = ops.cast(ops.clip(ops.round(ops.mean(images, axis=-1)), 0, LEVELS - 1), "int32")
        shape = ops.shape(levels)
        flat = ops.reshape(levels, (shape[0], -1))
        pixels = ops.cast(ops.shape(flat)[1], "float32")
        cdf = ops.cast(ops.cumsum(ops.bincount(flat, minlength=LEVELS), axis=-1), "float32")
        darkest = ops.min(ops.where(cdf > 0, cdf, pixels), axis=-1, keepdims=True)  # cdf at the darkest level
        mapping = (cdf - darkest) / ops.maximum(pixels - darkest, 1.0) * (LEVELS - 1)
        equalized = ops.reshape(ops.take_along_axis(mapping, flat, axis=-1), shape)
        return ops.repeat(ops.cast(equalized, self.compute_dtype)[..., None], 3, axis=-1)

    def compute_output_shape(self, input_shape):
        return input_shape


def normalise_intensity(image, kind: str):
    """``image`` (a Keras tensor, RGB 0-255) after the intensity normalisation ``kind``."""
    if kind not in INTENSITIES:
        raise ConfigError(f"unknown intensity normalisation {kind!r}; valid: {', '.join(INTENSITIES)}")
    if kind == "none":
        return image
    return HistogramEqualization(name=LAYER_NAME, dtype="float32")(image)

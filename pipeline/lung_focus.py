"""Lung-focused input: frozen layers at the start of a classifier that dim what lies outside the lungs.

input (RGB 0-255) -> the lung segmenter's U-Net (frozen, at its work size) -> lung probability
-> the lung mask (probability above LUNG_THRESHOLD, by a steep hard sigmoid) -> grown by a margin
(max pooling) -> soft edge (average pooling) -> resized to the input -> weight = outside + (1 - outside)
* lungs -> input * weight. The mask, margin and edge are computed at the U-Net's work size (96 px),
each square window as a row then a column window (exact for max and for a mean over valid pixels):
a square window at 224 px cost more than the whole backbone.
The geometry is unchanged, so the maps, the audit and the overlays read the image as before. Because
the layers are part of the saved model, training, ``evaluate``, the audit and the app give the model
the same input from the one file-to-input path, and no caller can forget the step.

Call such a model with ``training=False`` (or ``predict``), as every path here does: in Keras 3.15 a
``Resizing`` layer makes a plain ``model(x)`` run the layers after it in training mode.
"""

from __future__ import annotations

import keras

from .config import LUNG_FOCUS_MARGIN, LUNG_FOCUS_OUTSIDE, LUNG_THRESHOLD
from .errors import ConfigError
from .lungs import load_segmenter, lung_logits, unet_filters, unet_graph

PREFIX = "lung_focus"
UNET_LAYER = "unet"
STEEPNESS = 60.0  # hard_sigmoid(60 * (p - 0.5)) is 0 for p <= 0.45 and 1 for p >= 0.55: nearly a threshold


def is_focus_layer(layer: keras.layers.Layer) -> bool:
    return layer.name.startswith(PREFIX)


def margin_pixels(size: int, margin: float = LUNG_FOCUS_MARGIN) -> int:
    """The margin around the lungs in pixels at ``size``; at least one."""
    return max(1, round(margin * size))


def focus_on_lungs(image, unet: keras.Model, size: int, margin: float = LUNG_FOCUS_MARGIN,
                   outside: float = LUNG_FOCUS_OUTSIDE):
    """``image`` (a Keras tensor, RGB 0-255, ``size`` square) with what lies outside the lungs dimmed
    to ``outside`` of its value. The segmenter's layers are laid out flat, named with PREFIX, shaped
    like ``unet`` (the trained segmenter's U-Net): ``copy_focus_weights`` fills them once the model is built."""
    if not 0 <= outside < 1:
        raise ConfigError(f"lung focus: outside must be in [0, 1), got {outside}")
    prefix, work = f"{PREFIX}_", int(unet.input_shape[1])
    logits = lung_logits(image, work, lambda x: unet_graph(x, unet_filters(unet), prefix=prefix), prefix)
    lungs = keras.layers.Activation("sigmoid", dtype="float32", name=f"{PREFIX}_lungs")(logits)
    steep = keras.layers.Rescaling(STEEPNESS, offset=-STEEPNESS * LUNG_THRESHOLD, name=f"{PREFIX}_logit")
    lungs = keras.layers.Activation("hard_sigmoid", name=f"{PREFIX}_mask")(steep(lungs))  # 0 below 0.45, 1 above 0.55
    window = 2 * margin_pixels(work, margin) + 1
    grown = _separable(keras.layers.MaxPooling2D, window, f"{PREFIX}_margin")(lungs)
    soft = _separable(keras.layers.AveragePooling2D, window, f"{PREFIX}_edge")(grown)
    soft = keras.layers.Resizing(size, size, name=f"{PREFIX}_input_size")(soft)
    weight = keras.layers.Rescaling(1 - outside, offset=outside, name=f"{PREFIX}_weight")(soft)
    return keras.layers.Multiply(name=PREFIX)([image, weight])


def _separable(pooling, window: int, name: str):
    """A ``window`` x ``window`` pooling at stride 1 as a row window then a column window."""
    rows = pooling((1, window), strides=1, padding="same", name=f"{name}_rows")
    columns = pooling((window, 1), strides=1, padding="same", name=name)
    return lambda x: columns(rows(x))


def copy_focus_weights(model: keras.Model, unet: keras.Model) -> None:
    """Fill the lung-focus layers of ``model`` with the trained U-Net's weights and freeze them."""
    for layer in unet.layers:
        if layer.weights:
            model.get_layer(f"{PREFIX}_{layer.name}").set_weights(layer.get_weights())
    for layer in model.layers:
        if is_focus_layer(layer):
            layer.trainable = False


def load_unet(folder: str) -> keras.Model:
    """The U-Net of the saved lung segmenter in ``folder`` (ArtifactError when there is none)."""
    model, _ = load_segmenter(folder)
    return model.get_layer(UNET_LAYER)

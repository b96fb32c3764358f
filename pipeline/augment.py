"""Training augmentation as Keras layers: the training input and the dashboard preview share it."""

from __future__ import annotations

import keras

from .config import ROTATION_DEGREES, SHIFT_FRACTION, ZOOM_FRACTION


def build_augmentation(flip: bool = False, seed: int | None = None) -> keras.Sequential:
    """Rotation, shift and zoom as in the original recipe; horizontal flip only when asked.

    Flip is off by default: a chest X-ray is not left-right symmetric (the heart sits on the
    patient's left), so a flipped image is not a plausible X-ray.
    """
    layers = [
        keras.layers.RandomRotation(ROTATION_DEGREES / 360.0, fill_mode="nearest", seed=seed),
        keras.layers.RandomTranslation(SHIFT_FRACTION, SHIFT_FRACTION, fill_mode="nearest", seed=seed),
        keras.layers.RandomZoom(ZOOM_FRACTION, ZOOM_FRACTION, fill_mode="nearest", seed=seed),
    ]
    if flip:
        layers.append(keras.layers.RandomFlip("horizontal", seed=seed))
    return keras.Sequential(layers, name="augmentation")

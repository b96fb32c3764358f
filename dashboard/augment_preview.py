"""Preview of the training augmentation: the same Keras layers training uses, on one image.

Imports TensorFlow: only the data page imports this module, lazily.
"""

from __future__ import annotations

import numpy as np

from pipeline.augment import build_augmentation
from pipeline.images import model_input


def augmented_versions(gray: np.ndarray, size: int, count: int, seed: int, flip: bool = False,
                       kind: str = "affine") -> np.ndarray:
    """``count`` random augmentations of ``gray`` at ``size`` px: (count, size, size) uint8.

    The image goes through the model-input path first (squashed to size, 0-255), as in
    training; the same ``seed`` gives the same draws. ``kind`` is the model's augmentation
    (``config.json``), "affine" for models trained before it was recorded.
    """
    batch = np.repeat(model_input(gray, size)[None, ..., :1], count, axis=0)  # one channel, as in training
    augmented = build_augmentation(flip=flip, seed=seed, kind=kind)(batch, training=True)
    return np.clip(np.round(np.asarray(augmented, dtype=np.float32)[..., 0]), 0, 255).astype(np.uint8)

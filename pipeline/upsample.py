"""Attention-map geometry: a CAM grid resized to an image so that each cell lands on its pixels.

A convolutional layer's cell (i, j) of an n x n grid covers pixels ``i * s`` to ``(i + 1) * s - 1``
of an image ``n * s`` pixels wide, so its value belongs at the centre of that block. Bilinear
resampling with half-pixel centres (what PIL and ``tf.image.resize`` do) puts it there.
``scipy.ndimage.zoom``, which tf-keras-vis uses to expand its maps, aligns the centres of the corner
cells with the corner pixels instead: a 7 x 7 map at 224 px moves by up to 16 px toward the borders.
Every map this project computes, audits and draws goes through ``upsample_map``, at every size.
"""

from __future__ import annotations

import numpy as np
from PIL import Image


def upsample_map(cam: np.ndarray, size: int) -> np.ndarray:
    """A (rows, cols) float map resized bilinearly to (size, size) float32, with pixel centres aligned."""
    image = Image.fromarray(np.asarray(cam, dtype=np.float32), "F")
    return np.array(image.resize((size, size), Image.Resampling.BILINEAR), dtype=np.float32)


def unit_map(grid: np.ndarray, size: int) -> np.ndarray:
    """A CAM grid as a (size, size) float32 map in 0-1; a grid without positive evidence (NaN or
    all zero) becomes zeros."""
    grid = np.nan_to_num(np.asarray(grid, dtype=np.float32), nan=0.0)
    return np.clip(upsample_map(grid, size), 0.0, 1.0)

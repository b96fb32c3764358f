"""Map geometry: a CAM cell lands on the pixels it covers, in the maps and in the overlays."""

from __future__ import annotations

import numpy as np
import pytest

from dashboard import overlay
from pipeline.upsample import upsample_map


def hot_cell(row: int, col: int, grid: int = 7) -> np.ndarray:
    cam = np.zeros((grid, grid), dtype=np.float32)
    cam[row, col] = 1.0
    return cam


def peak_centre(image: np.ndarray) -> tuple[float, float]:
    """The mean pixel-centre coordinates (y, x) of the pixels at the maximum."""
    rows, cols = np.nonzero(image == image.max())
    return float(np.mean(rows + 0.5)), float(np.mean(cols + 0.5))


@pytest.mark.parametrize("row, col", [(2, 5), (1, 1), (5, 3), (3, 3)])
def test_a_hot_cell_peaks_at_its_centre(row, col):
    cam = upsample_map(hot_cell(row, col), 224)
    assert cam.shape == (224, 224) and cam.dtype == np.float32
    assert peak_centre(cam) == ((row + 0.5) * 32, (col + 0.5) * 32)
    assert cam[row * 32:(row + 1) * 32, col * 32:(col + 1) * 32].sum() > 0.5 * cam.sum()  # most energy on its pixels


def test_a_border_cell_is_flat_from_the_border_to_its_centre():
    cam = upsample_map(hot_cell(0, 6), 224)  # beyond the outer cell centres the grid's edge value holds
    rows, cols = np.nonzero(cam == cam.max())
    assert (rows.min(), rows.max(), cols.min(), cols.max()) == (0, 15, 208, 223)
    assert cam[:32, 192:].sum() > 0.5 * cam.sum()


def test_cell_2_5_peaks_on_the_four_pixels_round_its_centre():
    cam = upsample_map(hot_cell(2, 5), 224)
    assert {tuple(p) for p in np.argwhere(cam == cam.max())} == {(79, 175), (79, 176), (80, 175), (80, 176)}


def test_an_interior_cell_spreads_symmetrically_round_its_centre():
    cam = upsample_map(hot_cell(2, 5), 224)
    ys, xs = np.mgrid[0:224, 0:224] + 0.5
    assert (ys * cam).sum() / cam.sum() == pytest.approx(80.0) and (xs * cam).sum() / cam.sum() == pytest.approx(176.0)


def test_it_is_tf_image_resize_bilinear_with_half_pixel_centres():
    import tensorflow as tf

    grid = np.random.default_rng(0).random((7, 7)).astype(np.float32)
    expected = tf.image.resize(grid[None, ..., None], (224, 224), method="bilinear")[0, ..., 0].numpy()
    np.testing.assert_allclose(upsample_map(grid, 224), expected, atol=1e-6)


def test_values_stay_in_the_grid_range_and_same_size_is_identity():
    grid = np.random.default_rng(1).random((14, 14)).astype(np.float32)
    cam = upsample_map(grid, 224)
    assert grid.min() <= cam.min() and cam.max() <= grid.max()
    np.testing.assert_array_equal(upsample_map(grid, 14), grid)


def test_the_overlay_draws_the_cell_on_its_pixels_at_the_display_size():
    size = overlay.DISPLAY_SIZE
    model_size_map = upsample_map(hot_cell(2, 5), 224)
    drawn = overlay.overlay(np.zeros((size, size), np.uint8), model_size_map, 1.0, "Hot")
    scale = size / 7
    assert peak_centre(drawn.astype(float).sum(axis=-1)) == pytest.approx((2.5 * scale, 5.5 * scale), abs=1.0)

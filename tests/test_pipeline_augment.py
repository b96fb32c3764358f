"""The fused augmentation: exact where the answer is known, random where it should be."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.augment import ProcessingNoise, RandomAffine, build_augmentation
from pipeline.errors import ConfigError
from pipeline.inputs import make_dataset

IMAGES = np.random.default_rng(0).uniform(0, 255, (32, 24, 24, 1)).astype("float32")


def test_zero_ranges_leave_images_unchanged():
    out = RandomAffine(degrees=0, shift=0, zoom=0, seed=1)(IMAGES)
    np.testing.assert_array_equal(np.asarray(out), IMAGES)


def test_flip_mirrors_about_half_of_the_images_exactly():
    out = np.asarray(RandomAffine(degrees=0, shift=0, zoom=0, flip=True, seed=2)(IMAGES))
    mirrored = [np.allclose(o, i[:, ::-1], atol=1e-3) for o, i in zip(out, IMAGES)]
    unchanged = [np.allclose(o, i, atol=1e-3) for o, i in zip(out, IMAGES)]
    assert all(m or u for m, u in zip(mirrored, unchanged)) and 4 <= sum(mirrored) <= 28


def test_without_shift_the_centre_stays_and_scales_stay_in_range():
    layer = RandomAffine(degrees=10, shift=0, zoom=0.1, seed=3)
    t = np.asarray(layer.transforms(256, 101, 101))
    centre = 50.0
    np.testing.assert_allclose(t[:, 0] * centre + t[:, 1] * centre + t[:, 2], centre, atol=1e-3)
    np.testing.assert_allclose(t[:, 3] * centre + t[:, 4] * centre + t[:, 5], centre, atol=1e-3)
    scale_x = np.hypot(t[:, 0], t[:, 3])
    assert scale_x.min() >= 0.9 - 1e-6 and scale_x.max() <= 1.1 + 1e-6
    angle = np.degrees(np.arctan2(t[:, 3], t[:, 0]))
    assert np.abs(angle).max() <= 10 + 1e-4 and np.abs(angle).max() > 5


def test_shift_moves_the_centre_within_the_range():
    t = np.asarray(RandomAffine(degrees=0, shift=0.1, zoom=0, seed=4).transforms(256, 100, 200))
    assert np.abs(t[:, 2]).max() <= 0.1 * 200 + 1e-4 and np.abs(t[:, 5]).max() <= 0.1 * 100 + 1e-4


def test_values_stay_within_the_input_range():
    out = np.asarray(build_augmentation(seed=5)(IMAGES))
    assert out.min() >= IMAGES.min() - 1e-3 and out.max() <= IMAGES.max() + 1e-3


def test_seeded_layers_repeat_and_calls_differ():
    a, b = build_augmentation(seed=6), build_augmentation(seed=6)
    np.testing.assert_array_equal(np.asarray(a(IMAGES)), np.asarray(b(IMAGES)))
    assert not np.allclose(np.asarray(a(IMAGES)), np.asarray(a(IMAGES)))
    np.testing.assert_array_equal(np.asarray(a(IMAGES, training=False)), IMAGES)


@pytest.mark.slow
def test_the_training_input_augments_every_epoch_and_gives_rgb(image_folder):
    paths = sorted(str(p) for p in image_folder.glob("*/images/*.png"))[:16]
    ds = make_dataset(paths, [0] * 16, 32, 8, shuffle=False, augmentation=build_augmentation(seed=0))
    first, second = (np.concatenate([x.numpy() for x, _ in ds]) for _ in range(2))
    assert first.shape == (16, 32, 32, 3) and first.dtype == np.float32
    np.testing.assert_array_equal(first[..., 0], first[..., 2])
    assert not np.allclose(first, second)


def test_the_training_input_keeps_each_weight_with_its_image_through_shuffle_and_augmentation(image_folder):
    paths = sorted(str(p) for p in image_folder.glob("*/images/*.png"))[:12]
    labels, weights = list(range(12)), [0.25 * i for i in range(12)]
    ds = make_dataset(paths, labels, 32, 5, shuffle=True, augmentation=build_augmentation(seed=0), weights=weights)
    batches = list(ds)
    assert all(len(batch) == 3 for batch in batches)
    y, w = (np.concatenate([batch[i].numpy() for batch in batches]) for i in (1, 2))
    assert sorted(y) == labels and not np.array_equal(y, labels), "shuffled, nothing lost"
    np.testing.assert_allclose(w, 0.25 * y)


def test_robust_augmentation_stays_in_range_repeats_and_changes_the_images():
    a, b = build_augmentation(seed=7, kind="robust"), build_augmentation(seed=7, kind="robust")
    out = np.asarray(a(IMAGES))
    np.testing.assert_array_equal(out, np.asarray(b(IMAGES)))
    assert out.shape == IMAGES.shape and out.min() >= 0.0 and out.max() <= 255.0 + 1e-3
    assert not np.allclose(out, IMAGES, atol=1.0)
    np.testing.assert_array_equal(np.asarray(a(IMAGES, training=False)), IMAGES)


def test_processing_noise_parts_keep_a_smooth_image_close():
    smooth = np.tile(np.linspace(20, 230, 24, dtype="float32")[None, :, None], (24, 1, 1))[None].repeat(4, 0)
    noise = ProcessingNoise(seed=8)
    for changed in (noise._blur(smooth), noise._jpeg(smooth, 4), noise._resample(smooth, (24, 24))):
        changed = np.asarray(changed)
        assert changed.shape == smooth.shape
        assert np.abs(changed - smooth)[:, 4:-4, 4:-4].mean() < 6.0


def test_unknown_augmentation_lists_the_valid_ones():
    with pytest.raises(ConfigError, match="unknown augmentation 'heavy'; valid: affine, robust"):
        build_augmentation(kind="heavy")


@pytest.mark.parametrize("kind", ["affine", "robust"])
@pytest.mark.parametrize("policy", ["mixed_bfloat16", "mixed_float16"])
def test_augmentation_stays_float32_under_mixed_precision(kind, policy):
    import keras

    previous = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_dtype_policy(policy)
    try:
        layer = build_augmentation(seed=0, kind=kind)
    finally:
        keras.mixed_precision.set_dtype_policy(previous)
    images = np.full((2, 32, 32, 1), 100.0, dtype=np.float32)
    assert layer(images, training=True).dtype == "float32"

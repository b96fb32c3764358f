"""The tf.data input: decode, grayscale, resize, cache, shuffle, augment on batches, prefetch."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

AUTOTUNE = tf.data.AUTOTUNE


def load_image(path: tf.Tensor, size: int) -> tf.Tensor:
    """One file -> (size, size, 1) uint8 grayscale. PNG and JPEG, 8 or 16 bit."""
    image = tf.io.decode_image(tf.io.read_file(path), channels=1, dtype=tf.uint8, expand_animations=False)
    image = tf.image.resize(image, (size, size), antialias=True)
    return tf.cast(tf.clip_by_value(tf.round(image), 0, 255), tf.uint8)


def to_model_input(images: tf.Tensor) -> tf.Tensor:
    """Grayscale batch (uint8 or float) -> RGB float32 0-255, what every saved model takes."""
    return tf.image.grayscale_to_rgb(tf.cast(images, tf.float32))


def model_input_from_file(path: str | Path, size: int) -> np.ndarray:
    """One file as the model sees it in training: (size, size, 3) RGB float32 0-255."""
    return to_model_input(load_image(tf.constant(str(path)), size)[None])[0].numpy()


def make_dataset(
    paths: Sequence[str],
    labels: Sequence[int],
    size: int,
    batch_size: int,
    shuffle: bool = False,
    augmentation: keras.Layer | None = None,
    seed: int = 0,
) -> tf.data.Dataset:
    """Batches of (RGB float32 0-255 images, integer labels).

    Decoded images are cached as small grayscale uint8 (a full 21k-image dataset fits in
    about 1 GB); augmentation runs on whole one-channel batches after the cache, so it changes
    every epoch, and the channel is copied to RGB last.
    """
    ds = tf.data.Dataset.from_tensor_slices((list(paths), list(labels)))
    ds = ds.map(lambda p, y: (load_image(p, size), y), num_parallel_calls=AUTOTUNE).cache()
    if shuffle:
        ds = ds.shuffle(len(paths), seed=seed, reshuffle_each_iteration=True)
    ds = ds.batch(batch_size)
    if augmentation is not None:  # on the one-channel batch: a third of the work on RGB
        ds = ds.map(lambda x, y: (augmentation(tf.cast(x, tf.float32), training=True), y), num_parallel_calls=AUTOTUNE)
    ds = ds.map(lambda x, y: (to_model_input(x), y), num_parallel_calls=AUTOTUNE)
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    return ds.with_options(options).prefetch(AUTOTUNE)

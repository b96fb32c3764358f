"""The tf.data input: decode, grayscale, resize, cache, shuffle, augment on batches, prefetch."""

from __future__ import annotations

import os
from collections.abc import Sequence

import keras
import numpy as np
import tensorflow as tf

from .images import file_to_model_gray

AUTOTUNE = tf.data.AUTOTUNE


def load_image(path: tf.Tensor, size: int) -> tf.Tensor:
    """One file -> (size, size, 1) uint8 grayscale, by ``pipeline.images.file_to_model_gray``: the
    decoding and resizing of ``file_to_model_input``, which evaluation, the audit and the app use."""
    image = tf.numpy_function(lambda p: file_to_model_gray(os.fsdecode(p), size)[..., None], [path], tf.uint8,
                              stateful=False)
    return tf.ensure_shape(image, (size, size, 1))


def to_model_input(images: tf.Tensor) -> tf.Tensor:
    """Grayscale batch (uint8 or float) -> RGB float32 0-255, what every saved model takes."""
    return tf.image.grayscale_to_rgb(tf.cast(images, tf.float32))


def make_dataset(
    paths: Sequence[str],
    labels: Sequence[int],
    size: int,
    batch_size: int,
    shuffle: bool = False,
    augmentation: keras.Layer | None = None,
    seed: int = 0,
    weights: Sequence[float] | None = None,
) -> tf.data.Dataset:
    """Batches of (RGB float32 0-255 images, integer labels), with each image's weight in the loss
    as a third element where ``weights`` are given.

    Decoded images are cached as small grayscale uint8 (a full 21k-image dataset fits in
    about 1 GB); augmentation runs on whole one-channel batches after the cache, so it changes
    every epoch, and the channel is copied to RGB last.
    """
    columns = (list(paths), list(labels)) + (() if weights is None else (np.asarray(weights, "float32"),))
    ds = tf.data.Dataset.from_tensor_slices(columns)
    ds = ds.map(lambda p, *rest: (load_image(p, size), *rest), num_parallel_calls=AUTOTUNE).cache()
    if shuffle:
        ds = ds.shuffle(len(paths), seed=seed, reshuffle_each_iteration=True)
    ds = ds.batch(batch_size)
    if augmentation is not None:  # on the one-channel batch: a third of the work on RGB
        ds = ds.map(lambda x, *rest: (augmentation(tf.cast(x, tf.float32), training=True), *rest),
                    num_parallel_calls=AUTOTUNE)
    ds = ds.map(lambda x, *rest: (to_model_input(x), *rest), num_parallel_calls=AUTOTUNE)
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    return ds.with_options(options).prefetch(AUTOTUNE)

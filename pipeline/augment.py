"""Training augmentation as one Keras layer: the training input and the dashboard preview share it."""

from __future__ import annotations

import math

import keras
import tensorflow as tf

from .config import ROTATION_DEGREES, SHIFT_FRACTION, ZOOM_FRACTION


class RandomAffine(keras.layers.Layer):
    """Rotation, shift, zoom (and optionally a horizontal flip) drawn per image, applied at once.

    The same ranges as the original recipe's ImageDataGenerator (rotation in degrees, shift as
    a fraction of the side, zoom factor 1 +- ``zoom`` per axis, nearest fill), composed into one
    affine transform, so each image is resampled once instead of once per augmentation.
    """

    def __init__(self, degrees: float = ROTATION_DEGREES, shift: float = SHIFT_FRACTION,
                 zoom: float = ZOOM_FRACTION, flip: bool = False, seed: int | None = None, **kwargs):
        super().__init__(**kwargs)
        self.degrees, self.shift, self.zoom, self.flip, self.seed = degrees, shift, zoom, flip, seed
        self.generator = (tf.random.Generator.from_seed(seed) if seed is not None
                          else tf.random.Generator.from_non_deterministic_state())

    def transforms(self, n: tf.Tensor, height: tf.Tensor, width: tf.Tensor) -> tf.Tensor:
        """(n, 8) rows [a0, a1, a2, b0, b1, b2, 0, 0]: output pixel (x, y) reads input pixel
        (a0 x + a1 y + a2, b0 x + b1 y + b2), as ``ImageProjectiveTransformV3`` expects."""
        def uniform(low, high):
            return self.generator.uniform((n,), low, high)

        angle = uniform(-self.degrees, self.degrees) * (math.pi / 180.0)
        zoom_x, zoom_y = uniform(1.0 - self.zoom, 1.0 + self.zoom), uniform(1.0 - self.zoom, 1.0 + self.zoom)
        if self.flip:
            zoom_x *= tf.where(uniform(0.0, 1.0) < 0.5, -1.0, 1.0)
        width, height = tf.cast(width, tf.float32), tf.cast(height, tf.float32)
        shift_x, shift_y = uniform(-self.shift, self.shift) * width, uniform(-self.shift, self.shift) * height
        cos, sin = tf.cos(angle), tf.sin(angle)
        a0, a1, b0, b1 = zoom_x * cos, -zoom_y * sin, zoom_x * sin, zoom_y * cos
        center_x, center_y = (width - 1.0) / 2.0, (height - 1.0) / 2.0
        a2 = center_x - a0 * center_x - a1 * center_y - shift_x
        b2 = center_y - b0 * center_x - b1 * center_y - shift_y
        zeros = tf.zeros_like(a0)
        return tf.stack([a0, a1, a2, b0, b1, b2, zeros, zeros], axis=1)

    def call(self, images, training=True):
        if not training:
            return images
        images = tf.convert_to_tensor(images, tf.float32)
        shape = tf.shape(images)
        return tf.raw_ops.ImageProjectiveTransformV3(
            images=images, transforms=self.transforms(shape[0], shape[1], shape[2]), output_shape=shape[1:3],
            fill_value=0.0, interpolation="BILINEAR", fill_mode="NEAREST")

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "degrees": self.degrees, "shift": self.shift, "zoom": self.zoom,
                "flip": self.flip, "seed": self.seed}


def build_augmentation(flip: bool = False, seed: int | None = None) -> RandomAffine:
    """The training augmentation; horizontal flip only when asked.

    Flip is off by default: a chest X-ray is not left-right symmetric (the heart sits on the
    patient's left), so a flipped image is not a plausible X-ray.
    """
    return RandomAffine(flip=flip, seed=seed, name="augmentation")

"""Training augmentation as one Keras layer: the training input and the dashboard preview share it."""

from __future__ import annotations

import math

import keras
import tensorflow as tf

from .config import (
    AUGMENTATIONS,
    BLUR_SIGMA_MAX,
    GAMMA_RANGE,
    JPEG_QUALITY_RANGE,
    RESAMPLE_SCALE_RANGE,
    ROBUST_ZOOM_FRACTION,
    ROTATION_DEGREES,
    SHIFT_FRACTION,
    ZOOM_FRACTION,
)
from .errors import ConfigError


class SeededLayer(keras.layers.Layer):
    """A preprocessing layer with its own random generator: reproducible given ``seed``.

    It runs in the input pipeline, in float32 whatever dtype policy the model trains under.
    """

    def __init__(self, seed: int | None = None, **kwargs):
        kwargs.setdefault("dtype", "float32")
        super().__init__(**kwargs)
        self.seed = seed
        self.generator = (tf.random.Generator.from_seed(seed) if seed is not None
                          else tf.random.Generator.from_non_deterministic_state())

    def uniform(self, shape, low, high) -> tf.Tensor:
        return self.generator.uniform(shape, low, high)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "seed": self.seed}


class RandomAffine(SeededLayer):
    """Rotation, shift, zoom (and optionally a horizontal flip) drawn per image, applied at once.

    The same ranges as the original recipe's ImageDataGenerator (rotation in degrees, shift as
    a fraction of the side, zoom factor 1 +- ``zoom`` per axis, nearest fill), composed into one
    affine transform, so each image is resampled once instead of once per augmentation.
    """

    def __init__(self, degrees: float = ROTATION_DEGREES, shift: float = SHIFT_FRACTION,
                 zoom: float = ZOOM_FRACTION, flip: bool = False, seed: int | None = None, **kwargs):
        super().__init__(seed=seed, **kwargs)
        self.degrees, self.shift, self.zoom, self.flip = degrees, shift, zoom, flip

    def transforms(self, n: tf.Tensor, height: tf.Tensor, width: tf.Tensor) -> tf.Tensor:
        """(n, 8) rows [a0, a1, a2, b0, b1, b2, 0, 0]: output pixel (x, y) reads input pixel
        (a0 x + a1 y + a2, b0 x + b1 y + b2), as ``ImageProjectiveTransformV3`` expects."""
        def uniform(low, high):
            return self.uniform((n,), low, high)

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

    def get_config(self):
        return {**super().get_config(), "degrees": self.degrees, "shift": self.shift, "zoom": self.zoom,
                "flip": self.flip}


class ProcessingNoise(SeededLayer):
    """Wash out the traces an image's processing chain leaves, so a source cannot be told by them.

    Sources differ in resize filter, compression and exposure; a model can learn those instead of
    the lungs. Each image gets, with probability one half each: a down- and up-sampling (scale drawn
    per batch), a Gaussian blur (sigma drawn per batch), a JPEG re-compression (quality per image);
    and always a random gamma. Input and output: (n, h, w, 1) float batches in 0-255.
    """

    def call(self, images, training=True):
        if not training:
            return images
        images = tf.convert_to_tensor(images, tf.float32)
        n, size = tf.shape(images)[0], tf.shape(images)[1:3]
        images = self._some(images, self._resample(images, size))
        images = self._some(images, self._blur(images))
        images = self._some(images, self._jpeg(images, n))
        gamma = self.uniform((n, 1, 1, 1), *GAMMA_RANGE)
        return 255.0 * tf.pow(tf.clip_by_value(images, 0.0, 255.0) / 255.0, gamma)

    def _some(self, images: tf.Tensor, changed: tf.Tensor) -> tf.Tensor:
        """``changed`` for a random half of the images, ``images`` for the rest."""
        chosen = self.uniform((tf.shape(images)[0], 1, 1, 1), 0.0, 1.0) < 0.5
        return tf.where(chosen, changed, images)

    def _resample(self, images: tf.Tensor, size: tf.Tensor) -> tf.Tensor:
        scale = self.uniform((), *RESAMPLE_SCALE_RANGE)
        small = tf.cast(tf.round(tf.cast(size, tf.float32) * scale), tf.int32)
        return tf.image.resize(tf.image.resize(images, small, method="area"), size, method="bilinear")

    def _blur(self, images: tf.Tensor) -> tf.Tensor:
        sigma = self.uniform((), 0.3, BLUR_SIGMA_MAX)
        taps = tf.range(-3.0, 4.0)
        kernel = tf.exp(-0.5 * tf.square(taps / sigma))
        kernel /= tf.reduce_sum(kernel)
        images = tf.nn.conv2d(images, tf.reshape(kernel, (7, 1, 1, 1)), 1, "SAME")
        return tf.nn.conv2d(images, tf.reshape(kernel, (1, 7, 1, 1)), 1, "SAME")

    def _jpeg(self, images: tf.Tensor, n: tf.Tensor) -> tf.Tensor:
        quality = tf.cast(self.uniform((n,), *JPEG_QUALITY_RANGE), tf.int32)
        pixels = tf.cast(tf.clip_by_value(tf.round(images), 0.0, 255.0), tf.uint8)

        def recompress(args):
            image, q = args
            return tf.image.adjust_jpeg_quality(image, q)

        out = tf.map_fn(recompress, (pixels, quality), fn_output_signature=tf.TensorSpec(None, tf.uint8))
        return tf.cast(tf.reshape(out, tf.shape(images)), tf.float32)


def build_augmentation(flip: bool = False, seed: int | None = None, kind: str = "affine") -> keras.Layer:
    """The training augmentation: ``"affine"`` (the original recipe's ranges) or ``"robust"``
    (wider zoom, which also crops borders and burned-in text, then :class:`ProcessingNoise`).

    Flip is off by default: a chest X-ray is not left-right symmetric (the heart sits on the
    patient's left), so a flipped image is not a plausible X-ray.
    """
    if kind not in AUGMENTATIONS:
        raise ConfigError(f"unknown augmentation {kind!r}; valid: {', '.join(AUGMENTATIONS)}")
    if kind == "affine":
        return RandomAffine(flip=flip, seed=seed, name="augmentation")
    noise_seed = None if seed is None else seed + 1
    return keras.Sequential([RandomAffine(zoom=ROBUST_ZOOM_FRACTION, flip=flip, seed=seed),
                             ProcessingNoise(seed=noise_seed)], name="augmentation")

"""A small convolutional network trained from scratch: the baseline that shows what transfer buys.

Same signature as a ``keras.applications`` constructor, so the registry treats it alike.
"""

from __future__ import annotations

import keras

from .errors import ConfigError

FILTERS = (32, 64, 128, 256)


def SmallCNN(include_top: bool = False, weights: str | None = None, input_tensor=None, input_shape=None):  # noqa: N802
    """Four blocks of 3x3 convolution, batch normalisation, ReLU and max pooling.

    The first convolution has stride 2: at 224 px that keeps training to about a quarter of the
    work (the last block still sees a 14 x 14 grid, MobileNet's Grad-CAM resolution is 7 x 7).
    """
    if include_top or weights is not None:
        raise ConfigError(
            f"SmallCNN has no top and no pretrained weights (got weights={weights!r}); use --weights none")
    inputs = keras.Input(input_shape) if input_tensor is None else input_tensor
    x = inputs
    for block, filters in enumerate(FILTERS, start=1):
        x = keras.layers.Conv2D(filters, 3, strides=2 if block == 1 else 1, padding="same", use_bias=False,
                                name=f"block{block}_conv")(x)
        x = keras.layers.BatchNormalization(name=f"block{block}_bn")(x)
        x = keras.layers.Activation("relu", name=f"block{block}_relu")(x)
        if block < len(FILTERS):
            x = keras.layers.MaxPooling2D(name=f"block{block}_pool")(x)
    return keras.Model(keras.utils.get_source_inputs(inputs), x, name="small_cnn")

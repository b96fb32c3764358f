"""The backbone registry: one frozen entry per backbone, data only (no TensorFlow import).

Adding a backbone is one entry in ``BACKBONES``. Each entry names its constructor (an
attribute of ``keras.applications``, or ``module:function`` with the same signature), its
preprocessing mode, input size, the layer Grad-CAM reads and the first layer that phase 2 (fine-tuning) unfreezes.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .errors import ConfigError

# keras.applications.imagenet_utils constants.
_IMAGENET_MEAN_RGB = np.array([0.485, 0.456, 0.406], dtype=np.float64)
_IMAGENET_STD_RGB = np.array([0.229, 0.224, 0.225], dtype=np.float64)
_CAFFE_MEAN_BGR = np.array([103.939, 116.779, 123.68], dtype=np.float64)


@dataclass(frozen=True)
class Backbone:
    name: str
    application: str  # attribute of keras.applications, or "module:function"
    preprocessing: str  # "tf", "torch" or "caffe", as in keras.applications.imagenet_utils
    input_size: int
    gradcam_layer: str
    fine_tune_from: str  # phase 2 unfreezes this layer and every layer after it
    pretrained: bool = True  # False: no weights exist, it always trains from scratch


BACKBONES: dict[str, Backbone] = {
    b.name: b
    for b in (
        Backbone("DenseNet121", "DenseNet121", "torch", 224, "relu", "conv5_block1_0_bn"),
        Backbone("ResNet50", "ResNet50", "caffe", 224, "conv5_block3_out", "conv5_block1_1_conv"),
        Backbone("MobileNet", "MobileNet", "tf", 224, "conv_pw_13_relu", "conv_dw_12"),
        Backbone("VGG16", "VGG16", "caffe", 224, "block5_conv3", "block5_conv1"),
        Backbone("SmallCNN", "pipeline.small_cnn:SmallCNN", "tf", 224, "block4_relu", "block1_conv",
                 pretrained=False),
    )
}


def get_backbone(name: str) -> Backbone:
    """Look a backbone up by name (case-insensitive)."""
    for key, spec in BACKBONES.items():
        if key.lower() == name.lower():
            return spec
    raise ConfigError(f"unknown backbone {name!r}; valid backbones: {', '.join(BACKBONES)}")


def preprocessing_affine(mode: str) -> tuple[np.ndarray, np.ndarray]:
    """Kernel (3x3) and bias (3,) so that ``rgb @ kernel + bias`` equals ``preprocess_input``.

    Every ``keras.applications`` preprocessing mode is a per-pixel affine map of the RGB
    values 0-255 (a scale, a shift, and for "caffe" an RGB->BGR swap), so one frozen Dense
    layer carries it inside the saved model, where no caller can forget or repeat it.
    """
    if mode == "tf":
        return np.eye(3) / 127.5, -np.ones(3)
    if mode == "torch":
        return np.diag(1.0 / (255.0 * _IMAGENET_STD_RGB)), -_IMAGENET_MEAN_RGB / _IMAGENET_STD_RGB
    if mode == "caffe":
        return np.eye(3)[:, ::-1].copy(), -_CAFFE_MEAN_BGR
    raise ConfigError(f"unknown preprocessing mode {mode!r}; valid modes: tf, torch, caffe")

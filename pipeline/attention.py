"""Model attention maps (Grad-CAM family, computed by tf-keras-vis) at compiled-graph speed.

tf-keras-vis rebuilds a functional model around the CAM layer and runs it eagerly on every
call, several times slower than the network itself. Here the network is split at the CAM
layer, once, into two compiled ``tf.function`` parts: the network below the layer and the
small head above it (softmax replaced by a linear output, as tf-keras-vis recommends).
Gradient methods (Grad-CAM, Grad-CAM++, Layer-CAM) need the class score's gradient with
respect to the layer's output only, so tf-keras-vis gets a proxy whose input *is* that output:
the layer's activations, computed once per image by the part below (shared with the
prediction), go through an identity layer named as the CAM layer and the compiled head. No
backward pass runs through the network, and each method's call costs a few milliseconds.
Score-CAM masks the input image itself, so it gets the whole network as a proxy of the two
compiled parts. tf-keras-vis still does all the map arithmetic, so the maps equal its plain
output.

tf-keras-vis returns the map at the CAM layer's own grid (``expand_cam=False``); ``unit_map``
resizes it to the input with pixel centres aligned, where tf-keras-vis's own expansion
(``scipy.ndimage.zoom``) would shift it toward the borders (see ``pipeline.upsample``).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

import keras
import numpy as np
import tensorflow as tf
from tf_keras_vis.gradcam import Gradcam
from tf_keras_vis.gradcam_plus_plus import GradcamPlusPlus
from tf_keras_vis.layercam import Layercam
from tf_keras_vis.scorecam import Scorecam
from tf_keras_vis.utils.model_modifiers import ReplaceToLinear
from tf_keras_vis.utils.scores import CategoricalScore

from .errors import ConfigError
from .upsample import unit_map


@dataclass(frozen=True)
class CamMethod:
    """A tf-keras-vis visualizer class, the keyword arguments of its call, and whether it needs the
    input image (it runs the network) or only the CAM layer's activations (gradient methods)."""

    visualizer: type
    arguments: dict = field(default_factory=dict)
    needs_image: bool = False


SCORE_CAM_MAX_N = 16  # Faster Score-CAM: only the 16 most active channels, 16 forward passes

CAM_METHODS: dict[str, CamMethod] = {
    "Grad-CAM": CamMethod(Gradcam),
    "Grad-CAM++": CamMethod(GradcamPlusPlus),
    "Score-CAM": CamMethod(Scorecam, {"max_N": SCORE_CAM_MAX_N, "batch_size": SCORE_CAM_MAX_N}, needs_image=True),
    "Layer-CAM": CamMethod(Layercam),
}
DEFAULT_METHODS = ("Grad-CAM", "Grad-CAM++")


class CompiledPart(keras.layers.Layer):
    """Runs a part of a Keras model as one compiled graph (inference mode) inside an eager caller."""

    def __init__(self, part: keras.Model, **kwargs):
        super().__init__(**kwargs)
        self.part = part
        self.run = tf.function(lambda x: part(x, training=False), reduce_retracing=True)

    def call(self, x):
        return self.run(x)

    def compute_output_spec(self, x):
        return self.part.compute_output_spec(x)


class CamModel(keras.Model):
    """A proxy model tf-keras-vis runs. Its one input is a list, as tf-keras-vis passes inputs,
    and ``predict`` (which Score-CAM calls per request) prints no progress bar into the server log."""

    def predict(self, x, **kwargs):
        return super().predict(x, **{"verbose": 0, **kwargs})


@dataclass(frozen=True)
class SplitModel:
    """A classifier split at its CAM layer into two compiled parts, and the proxies tf-keras-vis runs."""

    below: CompiledPart  # image -> the CAM layer's activations; shares the model's weights
    above: CompiledPart  # activations -> logits: a copy of the head with a linear output
    from_activations: CamModel  # activations -> [identity named as the layer] -> above: gradient methods
    from_image: CamModel  # image -> below -> [identity named as the layer] -> above: Score-CAM


def split_at(model: keras.Model, layer: str) -> SplitModel:
    """The model split at ``layer``. ``model`` itself is not changed and its weights are not duplicated:
    the head above the layer (a dense layer or two) is copied so that its softmax can be made linear."""
    try:
        cut = model.get_layer(layer).output
    except ValueError as exc:
        raise ConfigError(f"layer {layer!r} is not in model {model.name}") from exc
    head = keras.Model(cut, model.outputs)
    above = keras.models.clone_model(head)
    above.set_weights(head.get_weights())
    ReplaceToLinear()(above)
    below = CompiledPart(keras.Model(model.inputs, cut, name="below_cam_layer"), name="below")
    above = CompiledPart(above, name="above")
    activations = keras.Input(cut.shape[1:], name="activations")
    from_activations = CamModel([activations], above(keras.layers.Identity(name=layer)(activations)),
                                name=f"{model.name}_head")
    image = keras.Input(model.input_shape[1:], name="image")
    from_image = CamModel([image], above(keras.layers.Identity(name=layer)(below(image))), name=f"{model.name}_cam")
    return SplitModel(below, above, from_activations, from_image)


class AttentionModel:
    """A classifier with its attention-map visualizers, built once and shared between callers.

    Every call holds a lock: Keras models and tf-keras-vis visualizers are not thread-safe.
    """

    def __init__(self, model: keras.Model, layer: str, methods: tuple[str, ...] = DEFAULT_METHODS):
        unknown = [m for m in methods if m not in CAM_METHODS]
        if unknown:
            raise ConfigError(f"unknown attention methods {unknown}; valid methods: {', '.join(CAM_METHODS)}")
        self.model, self.layer, self.methods = model, layer, methods
        self.input_size = int(model.input_shape[1])
        self.split = split_at(model, layer)
        self.visualizers = {m: CAM_METHODS[m].visualizer(self._proxy(m), clone=False) for m in methods}
        self._predict = tf.function(lambda x: model(x, training=False), reduce_retracing=True)
        self._lock = threading.Lock()
        self._last: tuple[np.ndarray, tf.Tensor] | None = None  # the last image and its activations at the layer

    def _proxy(self, method: str) -> CamModel:
        return self.split.from_image if CAM_METHODS[method].needs_image else self.split.from_activations

    def warm_up(self) -> None:
        """Trace every compiled graph now, so that no user waits for it."""
        blank = np.zeros((self.input_size, self.input_size, 3), dtype=np.float32)
        self.probabilities(blank)
        self.maps(blank, 0)

    def _checked(self, image: np.ndarray) -> np.ndarray:
        expected = (self.input_size, self.input_size, 3)
        if image.shape != expected:
            raise ValueError(f"model input must have shape {expected}, got {image.shape}")
        return np.asarray(image, dtype=np.float32)

    def _activations(self, image: np.ndarray) -> tf.Tensor:
        """The CAM layer's output for ``image``: kept from the last call on the same image (the page explains
        the image it has just predicted), else computed and kept. Call with the lock held."""
        last = self._last
        if last is None or not np.array_equal(last[0], image):
            last = self._last = (image.copy(), self.split.below.run(tf.constant(image[None])))
        return last[1]

    def probabilities(self, image: np.ndarray) -> np.ndarray:
        """Softmax outputs, shape (classes,), for one (size, size, 3) RGB 0-255 image: the softmax of the
        linear head on the activations at the CAM layer, which ``maps`` of the same image then reuses."""
        image = self._checked(image)
        with self._lock:
            logits = self.split.above.run(self._activations(image))
            return np.asarray(tf.nn.softmax(logits)[0], dtype=np.float64)

    def batch_probabilities(self, images: np.ndarray) -> np.ndarray:
        """Softmax outputs, shape (n, classes), for n images of shape (size, size, 3)."""
        with self._lock:
            return np.asarray(self._predict(tf.constant(images, dtype=tf.float32)), dtype=np.float64)

    def maps(self, image: np.ndarray, class_index: int) -> dict[str, np.ndarray]:
        """Each method's (size, size) map of class ``class_index``, float32 in 0-1: its grid (``grids``)
        upsampled by ``unit_map``."""
        return {name: unit_map(grid, self.input_size) for name, grid in self.grids(image, class_index).items()}

    def grids(self, image: np.ndarray, class_index: int) -> dict[str, np.ndarray]:
        """Each method's map of class ``class_index`` on the CAM layer's grid: tf-keras-vis's normalised map,
        not yet upsampled."""
        classes = int(self.model.output_shape[-1])
        if not 0 <= class_index < classes:
            raise ValueError(f"class index {class_index} out of range 0-{classes - 1}")
        image, score = self._checked(image), CategoricalScore([class_index])
        with self._lock:
            activations = self._activations(image)
            grids = {name: visualizer(score, tf.constant(image[None]) if CAM_METHODS[name].needs_image else activations,
                                      penultimate_layer=self.layer, seek_penultimate_conv_layer=False,
                                      expand_cam=False, **CAM_METHODS[name].arguments)
                     for name, visualizer in self.visualizers.items()}
        return {name: np.asarray(grid[0], dtype=np.float32) for name, grid in grids.items()}

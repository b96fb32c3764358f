"""Model attention maps (Grad-CAM family, computed by tf-keras-vis) at compiled-graph speed.

tf-keras-vis rebuilds a functional model around the CAM layer and runs it eagerly on every
call, several times slower than the network itself. Here it gets a three-layer proxy, built
once: the network up to the CAM layer and the rest of it each run as one compiled
``tf.function``. tf-keras-vis still does all the map arithmetic, so the maps equal its plain
output. Grad-CAM methods need the gradient of the class score with respect to the CAM layer
only, so the part below that layer runs its plain inference graph, with no backward pass.

tf-keras-vis returns the map at the CAM layer's own grid (``expand_cam=False``); ``upsample_map``
resizes it to the input with pixel centres aligned, where tf-keras-vis's own expansion
(``scipy.ndimage.zoom``) would shift it toward the borders (see ``pipeline.upsample``).
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
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
    """A tf-keras-vis visualizer class and the keyword arguments of its call."""

    visualizer: type
    arguments: dict = field(default_factory=dict)


SCORE_CAM_MAX_N = 16  # Faster Score-CAM: only the 16 most active channels, 16 forward passes

CAM_METHODS: dict[str, CamMethod] = {
    "Grad-CAM": CamMethod(Gradcam),
    "Grad-CAM++": CamMethod(GradcamPlusPlus),
    "Score-CAM": CamMethod(Scorecam, {"max_N": SCORE_CAM_MAX_N, "batch_size": SCORE_CAM_MAX_N}),
    "Layer-CAM": CamMethod(Layercam),
}
DEFAULT_METHODS = ("Grad-CAM", "Grad-CAM++")


class CompiledPart(keras.layers.Layer):
    """Runs a part of a Keras model as one compiled graph inside an eager caller.

    With ``input_gradient=False`` its input gets a zero gradient, so a gradient tape outside
    records one op instead of every layer, and the part runs its plain inference graph.
    """

    def __init__(self, part: keras.Model, input_gradient: bool = True, **kwargs):
        super().__init__(**kwargs)
        self.part, self.input_gradient = part, input_gradient
        self.run = tf.function(lambda x: part(x, training=False), reduce_retracing=True)
        self._known: tuple[tf.Tensor, tf.Tensor] | None = None

    @contextlib.contextmanager
    def reusing(self, x: tf.Tensor, output: tf.Tensor | None = None) -> Iterator[None]:
        """Within this block, a call on ``x`` (the same values) returns ``output``, or the output computed
        once here: the methods of one ``AttentionModel.maps`` call share the forward pass below the layer."""
        self._known = (x, self.run(x) if output is None else output)
        try:
            yield
        finally:
            self._known = None

    def _output(self, x: tf.Tensor) -> tf.Tensor:
        known = self._known
        return known[1] if known is not None and same_values(x, known[0]) else self.run(x)

    def call(self, x):
        if self.input_gradient:
            return self.run(x)

        @tf.custom_gradient
        def without_input_gradient(x):
            def gradient(dy, variables=None):
                return tf.zeros_like(x), [None] * len(variables or [])

            return self._output(x), gradient

        return without_input_gradient(x)

    def compute_output_spec(self, x):
        return self.part.compute_output_spec(x)


def same_values(x: tf.Tensor, y: tf.Tensor) -> bool:
    return x is y or (x.shape == y.shape and bool(tf.reduce_all(x == y)))


class CamModel(keras.Model):
    """The proxy model tf-keras-vis runs. Its one input is a list, as tf-keras-vis passes inputs,
    and ``predict`` (which Score-CAM calls per request) prints no progress bar into the server log."""

    def predict(self, x, **kwargs):
        return super().predict(x, **{"verbose": 0, **kwargs})


def compiled_cam_model(model: keras.Model, layer: str) -> keras.Model:
    """input -> [network up to ``layer``] -> ``layer`` (identity) -> [the rest, linear output].

    The part below ``layer`` shares the model's weights. The part above it (the small head) is
    a copy whose softmax is replaced by a linear activation, as tf-keras-vis recommends
    (``ReplaceToLinear``): ``model`` itself is not changed and its weights are not duplicated.
    """
    try:
        cut = model.get_layer(layer).output
    except ValueError as exc:
        raise ConfigError(f"layer {layer!r} is not in model {model.name}") from exc
    below = keras.Model(model.inputs, cut, name="below_cam_layer")
    head = keras.Model(cut, model.outputs)
    above = keras.models.clone_model(head)
    above.set_weights(head.get_weights())
    ReplaceToLinear()(above)
    image = keras.Input(model.input_shape[1:], name="image")
    x = CompiledPart(below, input_gradient=False, name="below")(image)
    x = keras.layers.Identity(name=layer)(x)
    return CamModel([image], CompiledPart(above, name="above")(x), name=f"{model.name}_cam")


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
        self.cam_model = compiled_cam_model(model, layer)
        self.visualizers = {m: CAM_METHODS[m].visualizer(self.cam_model, clone=False) for m in methods}
        self._predict = tf.function(lambda x: model(x, training=False), reduce_retracing=True)
        self._lock = threading.Lock()
        self._features: tuple[tf.Tensor, tf.Tensor] | None = None  # the last image's output below the CAM layer

    def warm_up(self) -> None:
        """Trace every compiled graph now, so that no user waits for it."""
        blank = np.zeros((self.input_size, self.input_size, 3), dtype=np.float32)
        self.probabilities(blank)
        self.maps(blank, 0)

    def _batch(self, image: np.ndarray) -> tf.Tensor:
        expected = (self.input_size, self.input_size, 3)
        if image.shape != expected:
            raise ValueError(f"model input must have shape {expected}, got {image.shape}")
        return tf.constant(np.asarray(image, dtype=np.float32)[None])

    def probabilities(self, image: np.ndarray) -> np.ndarray:
        """Softmax outputs, shape (classes,), for one (size, size, 3) RGB 0-255 image.

        They are the softmax of the proxy's linear head on the network's output up to the CAM layer,
        which is kept: a ``maps`` call on the same image that follows (the predicted class is explained
        first) reuses it instead of running the network again.
        """
        batch = self._batch(image)
        with self._lock:
            features = self.cam_model.get_layer("below").run(batch)
            self._features = (batch, features)
            logits = self.cam_model.get_layer("above").run(features)
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
        batch, score = self._batch(image), CategoricalScore([class_index])
        with self._lock, self.cam_model.get_layer("below").reusing(batch, self._known_features(batch)):
            grids = {name: visualizer(score, batch, penultimate_layer=self.layer, seek_penultimate_conv_layer=False,
                                      expand_cam=False, **CAM_METHODS[name].arguments)
                     for name, visualizer in self.visualizers.items()}
        return {name: np.asarray(grid[0], dtype=np.float32) for name, grid in grids.items()}


    def _known_features(self, batch: tf.Tensor) -> tf.Tensor | None:
        """The output below the CAM layer for ``batch`` if the last ``probabilities`` call computed it."""
        known = self._features
        return known[1] if known is not None and same_values(batch, known[0]) else None


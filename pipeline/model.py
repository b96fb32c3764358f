"""Build, load and freeze the classifier: one flat functional graph per backbone.

input (RGB 0-255) -> frozen ``preprocess`` layer (the backbone's own preprocess_input)
-> backbone layers (built with ``input_tensor=``, so the graph stays flat for tf-keras-vis)
-> head (global pooling, Dense, BatchNormalization, Dropout, softmax).
"""

from __future__ import annotations

import importlib
import logging
from pathlib import Path

import keras

from . import artifacts
from .backbones import Backbone, preprocessing_affine
from .config import CONFIG_FILE, DEFAULT_INTENSITY, MODEL_FILE
from .errors import ArtifactError, ConfigError
from .intensity import normalise_intensity
from .lung_focus import copy_focus_weights, focus_on_lungs, is_focus_layer

log = logging.getLogger(__name__)

PREPROCESS_LAYER = "preprocess"
HEAD_PREFIX = "head_"
HEAD_UNITS = 256
HEAD_DROPOUT = 0.5


def build_model(
    spec: Backbone, num_classes: int, weights: str | None = "imagenet", image_size: int | None = None,
    lung_unet: keras.Model | None = None, intensity: str = DEFAULT_INTENSITY,
) -> keras.Model:
    """Return the flat classifier for ``spec`` with the backbone's weights from ``weights``.

    ``weights`` is "imagenet", None (random initialisation) or the path of a weights file for
    the backbone without its top (``include_top=False``). ``lung_unet``: the lung segmenter's U-Net;
    given, the model dims what lies outside the lungs before anything else (``pipeline.lung_focus``).
    ``intensity``: a normalisation of each image's gray levels that comes next (``pipeline.intensity``).
    """
    size = image_size or spec.input_size
    application = resolve_application(spec)
    inputs = keras.Input((size, size, 3), name="image")
    x = inputs
    if lung_unet is not None:
        x = focus_on_lungs(x, lung_unet, size)
    x = normalise_intensity(x, intensity)
    preprocess = keras.layers.Dense(3, trainable=False, dtype="float32", name=PREPROCESS_LAYER)
    x = preprocess(x)
    preprocess.set_weights([w.astype("float32") for w in preprocessing_affine(spec.preprocessing)])
    backbone = application(include_top=False, weights=None, input_tensor=x)
    x = keras.layers.GlobalAveragePooling2D(name=HEAD_PREFIX + "pool")(backbone.output)
    x = keras.layers.Dense(HEAD_UNITS, activation="relu", name=HEAD_PREFIX + "dense")(x)
    x = keras.layers.BatchNormalization(name=HEAD_PREFIX + "bn")(x)
    x = keras.layers.Dropout(HEAD_DROPOUT, name=HEAD_PREFIX + "dropout")(x)
    outputs = keras.layers.Dense(
        num_classes, activation="softmax", dtype="float32", name=HEAD_PREFIX + "predictions"
    )(x)
    model = keras.Model(inputs, outputs, name=spec.name)
    if lung_unet is not None:
        copy_focus_weights(model, lung_unet)
    if weights is not None:
        _copy_backbone_weights(model, application, spec, weights, size)
    return model


def resolve_application(spec: Backbone):
    """The backbone constructor: ``keras.applications.<name>`` or ``module:function``."""
    if ":" in spec.application:
        module, function = spec.application.split(":")
        return getattr(importlib.import_module(module), function)
    return getattr(keras.applications, spec.application)


def _copy_backbone_weights(
    model: keras.Model, application, spec: Backbone, weights: str, size: int
) -> None:
    """Load ``weights`` into a stand-alone backbone and copy them, layer by layer, by name.

    Loading straight into the flat graph would count the preprocess layer as a backbone layer.
    """
    if weights != "imagenet" and not Path(weights).is_file():
        raise ConfigError(f"weights file {weights!r} not found; use 'imagenet', 'none' or a file path")
    try:
        reference = application(include_top=False, weights=weights, input_shape=(size, size, 3))
    except (ValueError, OSError, KeyError) as exc:
        raise ConfigError(
            f"weights {weights!r} do not match backbone {spec.name} (include_top=False): {exc}"
        ) from exc
    for layer in reference.layers:
        if layer.weights:
            model.get_layer(layer.name).set_weights(layer.get_weights())
    log.info("%s: loaded backbone weights from %s", spec.name, weights)


def _is_head(layer: keras.layers.Layer) -> bool:
    return layer.name.startswith(HEAD_PREFIX)


def set_trainable(model: keras.Model, spec: Backbone, phase: str, from_scratch: bool = False) -> None:
    """Freeze the model for a training phase: "head" or "fine_tune".

    Pretrained backbones keep BatchNormalization frozen, which in Keras 3 also runs it in
    inference mode. A backbone trained from scratch trains every layer, BatchNormalization
    included, in both phases (phase 2 then only lowers the learning rate).
    """
    if phase not in ("head", "fine_tune"):
        raise ConfigError(f"unknown phase {phase!r}; valid phases: head, fine_tune")
    names = [layer.name for layer in model.layers]
    start = names.index(spec.fine_tune_from) if phase == "fine_tune" else len(names)
    for index, layer in enumerate(model.layers):
        if layer.name == PREPROCESS_LAYER or is_focus_layer(layer):
            layer.trainable = False
        elif _is_head(layer) or from_scratch:
            layer.trainable = True
        elif isinstance(layer, keras.layers.BatchNormalization):
            layer.trainable = False
        else:
            layer.trainable = index >= start


def export_model(model: keras.Model) -> keras.Model:
    """The same layers in a model that was never compiled, so no optimizer state is saved."""
    return keras.Model(model.inputs, model.outputs, name=model.name)


def as_float32(model: keras.Model) -> keras.Model:
    """``model`` computing in float32, with the same weights.

    A model trained in mixed precision keeps float32 weights but float16 or bfloat16 layers,
    which run slowly or not at all on the CPUs that serve the dashboard and give coarser maps.
    """
    if all(layer.dtype_policy.name == "float32" for layer in model.layers):
        return model
    config = model.get_config()
    _float32_layers(config["layers"])
    clone = keras.Model.from_config(config)
    clone.set_weights(model.get_weights())
    mixed = sorted({layer.dtype_policy.name for layer in model.layers} - {"float32"})
    log.info("%s: computed in %s while training; saved computing in float32", model.name, ", ".join(mixed))
    return clone


def _float32_layers(layers: list[dict]) -> None:
    for layer in layers:
        if "layers" in layer["config"]:  # a nested model, e.g. the lung-focus segmenter
            _float32_layers(layer["config"]["layers"])
        else:
            layer["config"]["dtype"] = "float32"


def load_trained_model(folder: str | Path) -> tuple[keras.Model, list[str]]:
    """Load ``folder/model.keras`` safely and check it against the class names beside it."""
    folder = Path(folder)
    classes = artifacts.read_config(folder)["classes"]
    path = folder / MODEL_FILE
    artifacts.check_model_file(folder)
    try:
        model = keras.saving.load_model(path, compile=False, safe_mode=True)
    except Exception as exc:  # Keras raises many types for a broken zip or config
        raise ArtifactError(f"{folder}: {MODEL_FILE} cannot be loaded ({type(exc).__name__}: {exc})") from exc
    outputs = int(model.output_shape[-1])
    if outputs != len(classes):
        raise ArtifactError(
            f"{folder}: {CONFIG_FILE} lists {len(classes)} classes but {MODEL_FILE} has {outputs} outputs"
        )
    return model, classes


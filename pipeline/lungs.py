"""A small lung segmenter: a Keras U-Net that outlines the lung fields of a chest X-ray.

input (224, 224, 3) float 0-255, as the classifiers take it -> frozen ``gray`` layer (channel mean)
-> resize to LUNG_WORK_SIZE -> per-image standardization -> U-Net -> logits resized back to 224
-> sigmoid: the probability that a pixel is lung (the fields including the region behind the heart).
"""

from __future__ import annotations

import functools
import logging
import time
from dataclasses import dataclass
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf
from PIL import Image

from . import artifacts
from .augment import RandomAffine
from .config import (
    CONFIG_FILE,
    DEFAULT_CHECKPOINT_DIR,
    DEFAULT_SEED,
    DEFAULT_SPLIT,
    GAMMA_RANGE,
    HISTORY_FILE,
    LUNG_BATCH_SIZE,
    LUNG_BN_MOMENTUM,
    LUNG_EPOCHS,
    LUNG_FILTERS,
    LUNG_INPUT_SIZE,
    LUNG_LEARNING_RATE,
    LUNG_TASK,
    LUNG_THRESHOLD,
    LUNG_WORK_SIZE,
    LUNGS_DIR_NAME,
    MODEL_FILE,
    TASK_KEY,
)
from .errors import ArtifactError, DataError
from .images import ImageInputError, file_to_model_gray, file_to_model_input
from .lung_data import MaskPair, convention_weights, find_xrays, read_lung_masks, split_pairs, write_split

log = logging.getLogger(__name__)

ZOOM = 0.15  # the augmentation's zoom range: the lungs fill more or less of the frame


def _block(x, filters: int, name: str, momentum: float):
    for i in (1, 2):
        x = keras.layers.Conv2D(filters, 3, padding="same", use_bias=False, name=f"{name}_conv{i}")(x)
        x = keras.layers.BatchNormalization(momentum=momentum, name=f"{name}_bn{i}")(x)
        x = keras.layers.Activation("relu", name=f"{name}_relu{i}")(x)
    return x


def unet_graph(x, filters: tuple[int, ...] = LUNG_FILTERS, momentum: float = LUNG_BN_MOMENTUM, prefix: str = ""):
    """Gray 0-255 at the work size -> lung logits: per-image standardization, then a U-Net of
    ``len(filters)`` levels, the last one the bottleneck. Every layer's name starts with ``prefix``."""
    x = keras.layers.LayerNormalization(axis=(1, 2, 3), name=f"{prefix}standardize")(x)
    skips = []
    for level, width in enumerate(filters[:-1]):
        skips.append(_block(x, width, f"{prefix}down{level}", momentum))
        x = keras.layers.MaxPooling2D(name=f"{prefix}pool{level}")(skips[-1])
    x = _block(x, filters[-1], f"{prefix}bottleneck", momentum)
    for level in reversed(range(len(skips))):
        x = keras.layers.Conv2DTranspose(filters[level], 2, strides=2, name=f"{prefix}up{level}")(x)
        x = keras.layers.Concatenate(name=f"{prefix}skip{level}")([x, skips[level]])
        x = _block(x, filters[level], f"{prefix}decode{level}", momentum)
    return keras.layers.Conv2D(1, 1, name=f"{prefix}logits")(x)


def unet_filters(unet: keras.Model) -> tuple[int, ...]:
    """The widths of a built U-Net's levels, the bottleneck last."""
    levels = [layer for layer in unet.layers if layer.name.endswith("_conv1") and not layer.name.startswith("decode")]
    return tuple(layer.filters for layer in levels)


def build_unet(work_size: int = LUNG_WORK_SIZE, filters: tuple[int, ...] = LUNG_FILTERS,
               momentum: float = LUNG_BN_MOMENTUM) -> keras.Model:
    """(work_size, work_size, 1) gray 0-255 -> lung logits (``unet_graph``). It trains on its own, at the
    work size. ``momentum``: of the BatchNormalization statistics (lower for runs of a few dozen steps)."""
    inputs = keras.Input((work_size, work_size, 1), name="gray_image")
    return keras.Model(inputs, unet_graph(inputs, filters, momentum), name="unet")


def training_model(unet: keras.Model) -> keras.Model:
    """The U-Net with a sigmoid: what trains, on X-rays and masks already at the work size."""
    return keras.Model(unet.inputs, keras.layers.Activation("sigmoid", name="lungs")(unet.outputs[0]))


def lung_logits(image, work_size: int, unet_call, prefix: str = ""):
    """The classifiers' input (RGB float 0-255) -> gray -> the U-Net's size -> ``unet_call``: lung
    logits at the work size."""
    gray = keras.layers.Dense(1, use_bias=False, trainable=False, name=f"{prefix}gray")
    x = gray(image)
    gray.set_weights([np.full((3, 1), 1 / 3, np.float32)])
    x = keras.layers.Resizing(work_size, work_size, antialias=True, name=f"{prefix}work_size")(x)
    return unet_call(x)


def lung_probability(image, work_size: int, input_size: int, unet_call, prefix: str = ""):
    """``lung_logits`` resized back to the input -> sigmoid: each pixel's probability of being lung."""
    logits = lung_logits(image, work_size, unet_call, prefix)
    x = keras.layers.Resizing(input_size, input_size, name=f"{prefix}input_size")(logits)
    return keras.layers.Activation("sigmoid", dtype="float32", name=f"{prefix}lungs")(x)


def build_segmenter(unet: keras.Model, input_size: int = LUNG_INPUT_SIZE) -> keras.Model:
    """The saved model (``lung_probability`` around the trained U-Net); it shares the U-Net's weights."""
    inputs = keras.Input((input_size, input_size, 3), name="image")
    return keras.Model(inputs, lung_probability(inputs, int(unet.input_shape[1]), input_size, unet), name="LungUNet")


def to_work_size(images: np.ndarray, work_size: int) -> np.ndarray:
    """(n, h, w, c) -> (n, work_size, work_size, c) float32 by the saved model's own resize."""
    return tf.image.resize(images.astype(np.float32), (work_size, work_size), antialias=True).numpy()


def _split_target(y_true, y_pred):
    """``y_true`` carries the mask and the per-pixel loss weight as two channels."""
    return y_true[..., :1], y_true[..., 1:], tf.clip_by_value(y_pred, 1e-6, 1 - 1e-6)


def dice_bce_loss(y_true, y_pred):
    """Weighted binary cross-entropy plus soft Dice loss, per image."""
    mask, weight, p = _split_target(y_true, y_pred)
    bce = -(mask * tf.math.log(p) + (1 - mask) * tf.math.log(1 - p))
    bce = tf.reduce_sum(weight * bce, axis=(1, 2, 3)) / (tf.reduce_sum(weight, axis=(1, 2, 3)) + 1.0)
    overlap = tf.reduce_sum(weight * mask * p, axis=(1, 2, 3))
    total = tf.reduce_sum(weight * (mask + p), axis=(1, 2, 3))
    return bce + 1.0 - (2.0 * overlap + 1.0) / (total + 1.0)


def dice_metric(y_true, y_pred):
    """Dice of the thresholded mask on the weighted pixels."""
    mask, weight, p = _split_target(y_true, y_pred)
    hard = tf.cast(p > LUNG_THRESHOLD, tf.float32)
    overlap = tf.reduce_sum(weight * mask * hard, axis=(1, 2, 3))
    return (2.0 * overlap + 1.0) / (tf.reduce_sum(weight * (mask + hard), axis=(1, 2, 3)) + 1.0)


def load_arrays(pairs: list[MaskPair], size: int = LUNG_INPUT_SIZE, work_size: int = LUNG_WORK_SIZE) -> np.ndarray:
    """(n, work_size, work_size, 3) float32 0-255: the gray X-ray as the saved model sees it at its
    work size, the mask and the loss weight (resized like it: soft at the borders)."""
    stack = np.empty((len(pairs), size, size, 3), np.uint8)
    for i, pair in enumerate(pairs):
        mask = file_to_model_gray(pair.mask, size) > 127
        stack[i, ..., 0] = file_to_model_gray(pair.image, size)
        stack[i, ..., 1] = mask * 255
        stack[i, ..., 2] = convention_weights(mask, pair.source) * 255
    return to_work_size(stack, work_size)


def _gamma(images: tf.Tensor) -> tf.Tensor:
    """A random gamma per image: exposure differs from one X-ray source to the next."""
    gamma = tf.random.uniform((tf.shape(images)[0], 1, 1, 1), *GAMMA_RANGE)
    return 255.0 * tf.pow(tf.clip_by_value(images, 0.0, 255.0) / 255.0, gamma)


def make_dataset(stack: np.ndarray, batch_size: int, seed: int | None = None) -> tf.data.Dataset:
    """Batches of (model input, mask and weight); ``seed`` shuffles and augments (training)."""
    ds = tf.data.Dataset.from_tensor_slices(stack)
    if seed is not None:
        ds = ds.shuffle(len(stack), seed=seed, reshuffle_each_iteration=True)
    ds = ds.batch(batch_size)
    if seed is not None:
        affine = RandomAffine(zoom=ZOOM, seed=seed)

        def augment(batch):  # one transform moves the X-ray, its mask and its weights together
            batch = affine(batch, training=True)
            return tf.concat([_gamma(batch[..., :1]), batch[..., 1:]], axis=-1)

        ds = ds.map(augment)
    shape = (None, *stack.shape[1:])  # the affine transform loses the static shape
    ds = ds.map(lambda s: (s[..., :1], s[..., 1:] / 255.0)).map(
        lambda x, y: (tf.ensure_shape(x, shape[:-1] + (1,)), tf.ensure_shape(y, shape[:-1] + (2,))))
    return ds.prefetch(tf.data.AUTOTUNE)


@dataclass(frozen=True)
class LungTrainOptions:
    data_dir: str
    out: str
    epochs: int = LUNG_EPOCHS
    batch_size: int = LUNG_BATCH_SIZE
    learning_rate: float = LUNG_LEARNING_RATE
    seed: int = DEFAULT_SEED
    checkpoint_dir: str = DEFAULT_CHECKPOINT_DIR
    input_size: int = LUNG_INPUT_SIZE
    work_size: int = LUNG_WORK_SIZE
    filters: tuple[int, ...] = LUNG_FILTERS
    bn_momentum: float = LUNG_BN_MOMENTUM
    boxes_dir: str | None = None  # lung-boxes: never trained on, for the card's box comparison
    limit: int | None = None  # at most this many pairs per split (quick runs and tests)


def train_segmenter(options: LungTrainOptions) -> Path:
    """Train, save ``out/lungs`` (model, config, split, history), then evaluate it and write its card.

    Resumable: a run killed mid-way restarts from its last finished epoch in ``checkpoint_dir``.
    """
    splits = split_pairs(read_lung_masks(options.data_dir), options.seed, DEFAULT_SPLIT)
    if options.limit:
        splits = {name: pairs[:options.limit] for name, pairs in splits.items()}
    log.info("lung masks: %s", ", ".join(f"{k} {len(v)}" for k, v in splits.items()))
    size = options.input_size
    train_ds = make_dataset(load_arrays(splits["train"], size, options.work_size), options.batch_size, options.seed)
    val_ds = make_dataset(load_arrays(splits["val"], size, options.work_size), options.batch_size)
    work = Path(options.checkpoint_dir) / LUNGS_DIR_NAME
    work.mkdir(parents=True, exist_ok=True)
    keras.utils.set_random_seed(options.seed)
    unet = build_unet(options.work_size, options.filters, options.bn_momentum)
    model = training_model(unet)
    model.compile(keras.optimizers.Adam(options.learning_rate), loss=dice_bce_loss, metrics=[dice_metric])
    best = work / "best.weights.h5"
    callbacks = [
        keras.callbacks.BackupAndRestore(str(work / "backup")),
        keras.callbacks.ModelCheckpoint(str(best), save_best_only=True, save_weights_only=True),
        keras.callbacks.ReduceLROnPlateau(factor=0.3, patience=3, min_lr=1e-5),
        keras.callbacks.CSVLogger(str(work / HISTORY_FILE), append=True),
    ]
    started = time.monotonic()
    model.fit(train_ds, validation_data=val_ds, epochs=options.epochs, callbacks=callbacks, verbose=2)
    minutes = (time.monotonic() - started) / 60
    if best.is_file():
        model.load_weights(best)
    config = {
        TASK_KEY: LUNG_TASK, "input_size": size, "work_size": options.work_size,
        "filters": list(options.filters), "threshold": LUNG_THRESHOLD, "epochs": options.epochs,
        "batch_size": options.batch_size, "learning_rate": options.learning_rate, "seed": options.seed,
        "data_dir": str(options.data_dir), "n_train": len(splits["train"]), "n_val": len(splits["val"]),
        "n_test": len(splits["test"]), "training_minutes_this_run": round(minutes, 1),
        "parameters": unet.count_params(),
    }
    with artifacts.atomic_model_dir(options.out, LUNGS_DIR_NAME) as staging:
        build_segmenter(unet, size).save(staging / MODEL_FILE)
        artifacts.write_json(staging / CONFIG_FILE, config)
        write_split(staging, splits)
        (staging / HISTORY_FILE).write_bytes((work / HISTORY_FILE).read_bytes())
    folder = Path(options.out) / LUNGS_DIR_NAME
    from .lungs_eval import evaluate_segmenter  # after saving: a failed evaluation can be rerun alone

    evaluate_segmenter(folder, options.data_dir, options.boxes_dir)
    return folder


def load_segmenter(folder: str | Path) -> tuple[keras.Model, dict]:
    """The saved segmenter and its config; ArtifactError for a folder that holds none."""
    config = artifacts.read_json(Path(folder), CONFIG_FILE, (TASK_KEY, "input_size"))
    if config[TASK_KEY] != LUNG_TASK:
        raise ArtifactError(f"{folder}: {CONFIG_FILE} task is {config[TASK_KEY]!r}, not {LUNG_TASK!r}")
    artifacts.check_model_file(folder)
    try:
        model = keras.saving.load_model(Path(folder) / MODEL_FILE, compile=False, safe_mode=True)
    except Exception as exc:  # Keras raises many types for a broken archive
        raise ArtifactError(f"{folder}: {MODEL_FILE} cannot be loaded ({type(exc).__name__}: {exc})") from exc
    return model, config


@functools.lru_cache(maxsize=4)
def _forward(model: keras.Model):
    """The model's inference as one compiled graph: about 20 ms an image where an eager call takes 300."""
    return tf.function(lambda x: model(x, training=False), reduce_retracing=True)


def predict_masks(model: keras.Model, inputs: np.ndarray, batch_size: int = 32) -> np.ndarray:
    """(n, size, size) bool lung masks of a batch of model inputs (RGB float 0-255)."""
    forward = _forward(model)
    batches = [forward(tf.constant(inputs[i:i + batch_size], tf.float32)) for i in range(0, len(inputs), batch_size)]
    return np.concatenate([np.asarray(b)[..., 0] for b in batches]) > LUNG_THRESHOLD


def write_masks(model_dir: str | Path, data_dir: str | Path, out: str | Path) -> int:
    """A 0/255 PNG lung mask (the model input size) per X-ray under ``data_dir``, at the same relative
    path under ``out`` with ``.png``; unreadable files are skipped with a warning. Returns the count."""
    data_dir, out = Path(data_dir), Path(out)
    files = find_xrays(data_dir)
    if out.resolve().is_relative_to(data_dir.resolve()):
        raise DataError(f"--out {str(out)!r} is inside --data-dir {str(data_dir)!r}: the masks would be read "
                        "as X-rays next time; choose a folder outside it")
    model, config = load_segmenter(model_dir)
    written = 0
    for path in files:
        try:
            image = file_to_model_input(path, int(config["input_size"]))
        except ImageInputError as exc:
            log.warning("skipped: %s", exc.problem if str(path) in exc.problem else f"{path}: {exc.problem}")
            continue
        target = out / path.relative_to(data_dir).with_suffix(".png")
        target.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(predict_masks(model, image[None])[0].astype(np.uint8) * 255).save(target)
        written += 1
    if not written:
        raise DataError(f"none of the {len(files)} files in {str(data_dir)!r} is a readable X-ray")
    return written


def file_masker(folder: str | Path):
    """``mask(path, size)``: the (size, size) bool lung mask of an X-ray file, from the segmenter in
    ``folder`` (loaded once), squashed to ``size`` as the model input is."""
    from .audit import resize_region

    model, config = load_segmenter(folder)

    def mask(path: str | Path, size: int) -> np.ndarray:
        lungs = predict_masks(model, file_to_model_input(path, int(config["input_size"]))[None])[0]
        return lungs if lungs.shape[0] == size else resize_region(lungs, size)
    return mask

"""Two-phase, resumable, distributable training of one backbone, ending in a saved model folder."""

from __future__ import annotations

import csv
import json
import logging
import os
import platform
import shlex
import shutil
import sys
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from functools import partial
from pathlib import Path

import keras
import numpy as np
import sklearn
import tensorflow as tf

from . import artifacts, card, data, distill, evaluate, metrics, schedule
from .augment import build_augmentation
from .backbones import Backbone, get_backbone
from .checkpoints import BestWeights, EpochBackup, TrainingClock
from .config import (
    CANONICAL_CLASSES,
    CONFIG_FILE,
    DEFAULT_AUGMENTATION,
    DEFAULT_BALANCE,
    DEFAULT_BATCH_SIZE,
    DEFAULT_CHECKPOINT_DIR,
    DEFAULT_DISTILL_TEMPERATURE,
    DEFAULT_DISTILL_WEIGHT,
    DEFAULT_FINE_TUNE_LEARNING_RATE,
    DEFAULT_INTENSITY,
    DEFAULT_LABEL_SMOOTHING,
    DEFAULT_LEARNING_RATE,
    DEFAULT_OUT,
    DEFAULT_SEED,
    DEFAULT_SPLIT,
    DEFAULT_WARMUP_EPOCHS,
    HISTORY_FILE,
    LUNG_FOCUS_MARGIN,
    LUNG_FOCUS_OUTSIDE,
    METRICS_FILE,
    MODEL_FILE,
    RANDOM_WEIGHTS,
    RECIPES,
    VAL_PREDICTIONS_FILE,
)
from .distribute import (
    distribution_strategy,
    is_multi_worker,
    prepare_multi_worker,
    worker_id,
)
from .errors import DataError
from .inputs import make_dataset
from .lung_focus import load_unet
from .model import as_float32, build_model, export_model, set_trainable
from .precision import compute_policy
from .targets import read_epochs

log = logging.getLogger(__name__)

PHASES = ("head", "fine_tune")


@dataclass
class TrainOptions:
    backbone: str
    data_dir: str
    weights: str | None = "imagenet"
    epochs: int | None = None  # None here and below: the value of the run's recipe (recipe_kind)
    fine_tune_epochs: int | None = None
    batch_size: int = DEFAULT_BATCH_SIZE
    learning_rate: float = DEFAULT_LEARNING_RATE
    fine_tune_learning_rate: float = DEFAULT_FINE_TUNE_LEARNING_RATE
    patience: int | None = None
    image_size: int | None = None
    seed: int = DEFAULT_SEED
    split: tuple[float, float, float] = DEFAULT_SPLIT
    limit_per_class: int | None = None
    flip: bool = False
    augmentation: str = DEFAULT_AUGMENTATION
    label_smoothing: float = DEFAULT_LABEL_SMOOTHING
    lung_focus: str | None = None  # a lung segmenter folder: dim what lies outside the lungs (pipeline.lung_focus)
    intensity: str = DEFAULT_INTENSITY  # intensity normalisation inside the model (pipeline.intensity)
    balance: str = DEFAULT_BALANCE  # how images are weighed (data.sample_weights)
    schedule: str | None = None  # the learning rate within a phase (pipeline.schedule)
    warmup_epochs: int = DEFAULT_WARMUP_EPOCHS  # of the "cosine" schedule
    teacher: str | None = None  # a trained model folder whose softened outputs join the targets (pipeline.distill)
    distill_temperature: float = DEFAULT_DISTILL_TEMPERATURE
    distill_weight: float = DEFAULT_DISTILL_WEIGHT
    mixed_precision: bool = False
    out: str = DEFAULT_OUT
    checkpoint_dir: str = DEFAULT_CHECKPOINT_DIR
    data_origin: str = "local folder"

    def __post_init__(self) -> None:
        spec = get_backbone(self.backbone)
        if self.weights is not None and not spec.pretrained:
            log.info("%s has no pretrained weights: training from scratch", spec.name)
            self.weights = None
        recipe = RECIPES[recipe_kind(spec, self.weights)]
        for name, value in recipe.items():
            if getattr(self, name) is None:
                setattr(self, name, value)


def recipe_kind(spec: Backbone, weights: str | None) -> str:
    """The key of ``RECIPES`` for a run of ``spec`` starting from ``weights``: "from_scratch" where it starts
    from random weights (no weights given, or a backbone that has none), else "pretrained"."""
    return "from_scratch" if weights is None or not spec.pretrained else "pretrained"


def hardware() -> dict:
    gpus = [tf.config.experimental.get_device_details(g).get("device_name", g.name)
            for g in tf.config.list_physical_devices("GPU")]
    cpu = f"{os.cpu_count()} CPU cores ({platform.machine()})"
    return {"cpus": os.cpu_count(), "gpus": gpus, "description": ", ".join(gpus) if gpus else cpu}


def versions() -> dict:
    return {"python": platform.python_version(), "tensorflow": tf.__version__, "keras": keras.__version__,
            "numpy": np.__version__, "scikit-learn": sklearn.__version__}


def loss_function(label_smoothing: float, soft_targets: bool = False):
    """Cross-entropy on integer labels, or on (n, classes) targets where ``soft_targets`` (distillation),
    with label smoothing when asked (per-sample, so class weights still apply; Keras' sparse loss has
    no smoothing option)."""
    if soft_targets:
        return "categorical_crossentropy" if not label_smoothing else partial(
            keras.losses.categorical_crossentropy, label_smoothing=label_smoothing)
    if not label_smoothing:
        return "sparse_categorical_crossentropy"

    def smoothed_sparse_categorical_crossentropy(y_true, y_pred):
        labels = keras.ops.cast(keras.ops.reshape(y_true, (-1,)), "int32")
        one_hot = keras.ops.one_hot(labels, keras.ops.shape(y_pred)[-1], dtype=y_pred.dtype)
        return keras.losses.categorical_crossentropy(one_hot, y_pred, label_smoothing=label_smoothing)

    return smoothed_sparse_categorical_crossentropy


def _fit_phase(model, phase, epochs_before, epochs, lr, train_ds, val_ds, opts, work, extra) -> int:
    """Run one phase; return the epochs it ran. EpochBackup makes it resumable."""
    marker = work / f"{phase}.done.json"
    if marker.exists():
        done = json.loads(marker.read_text())
        model.load_weights(work / f"{phase}.weights.h5")
        log.info("phase %s already done (%d epochs): resuming after it", phase, done["epochs"])
        return done["epochs"]
    if epochs == 0:
        return 0
    rate = schedule.learning_rate(opts.schedule, lr, epochs, int(train_ds.cardinality()), opts.warmup_epochs)
    model.compile(optimizer=keras.optimizers.Adam(rate), loss=loss_function(opts.label_smoothing, bool(opts.teacher)),
                  metrics=["accuracy"], jit_compile=bool(tf.config.list_physical_devices("GPU")))
    strategy = tf.distribute.get_strategy()
    if is_multi_worker(strategy):
        prepare_multi_worker(model, next(iter(train_ds)))
    backup = EpochBackup(work, phase)
    start = backup.restore(model, epochs_before)
    callbacks = [
        backup,
        keras.callbacks.EarlyStopping(patience=opts.patience, restore_best_weights=True),
        *schedule.callbacks(opts.schedule, opts.patience),
        keras.callbacks.CSVLogger(str(work / f"history-{phase}.csv"), append=True),
        *extra,
    ]
    history = model.fit(train_ds, validation_data=val_ds, initial_epoch=start,
                        epochs=epochs_before + epochs, callbacks=callbacks, shuffle=False,
                        verbose=1 if sys.stdout.isatty() else 2)
    run = len(read_epochs(work / f"history-{phase}.csv")) or len(history.epoch)
    model.save_weights(work / f"{phase}.weights.h5")
    artifacts.replace_json(work, marker.name, {"epochs": run})
    return run


def _write_history(work: Path, target: Path) -> None:
    rows = [dict(r, phase=p) for p in PHASES for r in read_epochs(work / f"history-{p}.csv")]
    if not rows:
        return
    fields = ["epoch", "phase"] + sorted({k for r in rows for k in r} - {"epoch", "phase"})
    with target.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=fields, restval="")
        writer.writeheader()
        writer.writerows(rows)


def _targets(opts: TrainOptions, classes: list[str], samples: list[data.Sample], hard: bool = False) -> np.ndarray:
    """Integer labels; with a teacher, (n, classes) targets: softened teacher outputs mixed in for
    training, the true labels one-hot for validation (its loss picks the kept epoch)."""
    labels = np.array([s.label for s in samples])
    if not opts.teacher:
        return labels
    if hard:
        return distill.one_hot(labels, len(classes))
    teacher = distill.teacher_probabilities(opts.teacher, classes, samples, opts.batch_size)
    return distill.soft_targets(labels, teacher, opts.distill_temperature, opts.distill_weight)


def train(opts: TrainOptions) -> Path:
    """Train ``opts.backbone`` and write ``opts.out/<backbone>/``; return that folder.

    The dtype policy is global in Keras, so it is set for this run and restored after it.
    """
    previous = keras.mixed_precision.global_policy()
    policy = compute_policy(opts.mixed_precision)
    keras.mixed_precision.set_dtype_policy(policy)
    try:
        return _train(opts, policy)
    finally:
        keras.mixed_precision.set_dtype_policy(previous)


def _train(opts: TrainOptions, policy: str) -> Path:
    spec = get_backbone(opts.backbone)
    strategy = distribution_strategy()  # first: MultiWorkerMirroredStrategy must precede other ops
    keras.utils.set_random_seed(opts.seed)
    size = opts.image_size or spec.input_size
    dataset = data.scan_dataset(opts.data_dir)
    if opts.limit_per_class:
        dataset = data.limit_per_class(dataset, opts.limit_per_class, opts.seed)
    if len(dataset.classes) < 2:
        raise DataError(f"need at least two classes to train, found {dataset.classes} in {dataset.root}")
    splits = data.split_indices(dataset.labels, [s.group for s in dataset.samples], opts.split, opts.seed,
                                [s.patient for s in dataset.samples])
    parts = {name: [dataset.samples[i] for i in idx] for name, idx in splits.items()}
    train_s, val_s, test_s = parts["train"], parts["val"], parts["test"]
    batch = opts.batch_size * strategy.num_replicas_in_sync
    train_y, val_y = _targets(opts, dataset.classes, train_s), _targets(opts, dataset.classes, val_s, hard=True)
    train_ds = make_dataset([s.path for s in train_s], train_y, size, batch, shuffle=True,
                            augmentation=build_augmentation(opts.flip, opts.seed, opts.augmentation), seed=opts.seed,
                            weights=data.sample_weights(train_s, opts.balance))
    val_ds = make_dataset([s.path for s in val_s], val_y, size, batch)
    chief, worker = worker_id()
    work = Path(opts.checkpoint_dir) / spec.name / worker
    work.mkdir(parents=True, exist_ok=True)
    from_scratch = opts.weights is None
    clock, best = TrainingClock(work), BestWeights(work)
    lung_unet = load_unet(opts.lung_focus) if opts.lung_focus else None
    with strategy.scope():
        model = build_model(spec, len(dataset.classes), opts.weights, size, lung_unet, opts.intensity)
        set_trainable(model, spec, "head", from_scratch)
        head_epochs = _fit_phase(model, "head", 0, opts.epochs, opts.learning_rate,
                                 train_ds, val_ds, opts, work, [clock, best])
        set_trainable(model, spec, "fine_tune", from_scratch)
        tune_epochs = _fit_phase(model, "fine_tune", head_epochs, opts.fine_tune_epochs,
                                 opts.fine_tune_learning_rate, train_ds, val_ds, opts, work, [clock, best])
        kept = best.saved()
        if kept:  # the lowest validation loss of the whole run, which may be in the head phase
            model.load_weights(work / kept.pop("weights"))
        model = as_float32(model)  # evaluated and saved as the dashboard will run it
    seconds = clock.total()
    # Every worker takes part in prediction (it is a collective under several workers).
    # The validation split's figures choose recipes and operating points; the test split is scored once.
    validation, val_rows = evaluate.evaluate_samples(model, dataset.classes, val_s, dataset.root, opts.batch_size,
                                                     time_inference=False)
    results, rows = evaluate.evaluate_samples(model, dataset.classes, test_s, dataset.root, opts.batch_size)
    results["validation"] = metrics.validation_summary(validation)
    if not chief:
        log.info("worker %s done; the chief writes the model", worker)
        return Path(opts.out) / spec.name
    config = {
        "backbone": spec.name, "classes": dataset.classes, "input_size": size,
        "preprocessing": spec.preprocessing, "gradcam_layer": spec.gradcam_layer,
        "weights": opts.weights or RANDOM_WEIGHTS,
        "data": {"name": dataset.root.name, "path": str(dataset.root), "origin": opts.data_origin,
                 "counts": {name: dataset.counts(idx) for name, idx in splits.items()},
                 "missing_classes": [c for c in CANONICAL_CLASSES if c not in dataset.classes],
                 "skipped_files": len(dataset.skipped), **dataset.composition()},
        "split": list(opts.split), "split_keys": data.split_keys(dataset.samples), "seed": opts.seed,
        "batch_size": opts.batch_size,
        "epochs_requested": {"head": opts.epochs, "fine_tune": opts.fine_tune_epochs},
        "epochs_run": {"head": head_epochs, "fine_tune": tune_epochs},
        "kept_epoch": kept,
        "learning_rates": {"head": opts.learning_rate, "fine_tune": opts.fine_tune_learning_rate},
        "flip": opts.flip, "augmentation": opts.augmentation, "label_smoothing": opts.label_smoothing,
        "lung_focus": {"segmenter": opts.lung_focus, "margin": LUNG_FOCUS_MARGIN, "outside": LUNG_FOCUS_OUTSIDE}
        if opts.lung_focus else None,
        "intensity": opts.intensity, "balance": opts.balance,
        "schedule": {"kind": opts.schedule, "warmup_epochs": opts.warmup_epochs if opts.schedule == "cosine" else 0},
        "distillation": {"teacher": opts.teacher, "teacher_backbone": artifacts.read_config(opts.teacher)["backbone"],
                         "temperature": opts.distill_temperature, "weight": opts.distill_weight}
        if opts.teacher else None,
        "mixed_precision": opts.mixed_precision, "compute_dtype_policy": policy,
        "replicas": strategy.num_replicas_in_sync, "training_seconds": round(seconds, 1),
        "hardware": hardware(), "versions": versions(),
        "parameters": int(model.count_params()),
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": "python -m pipeline " + shlex.join(sys.argv[1:]) if sys.argv[1:] else "",
        "options": asdict(opts),
    }
    with artifacts.atomic_model_dir(opts.out, spec.name) as folder:
        export_model(model).save(folder / MODEL_FILE)
        config["model_bytes"] = (folder / MODEL_FILE).stat().st_size
        artifacts.write_json(folder / CONFIG_FILE, config)
        artifacts.write_json(folder / METRICS_FILE, results)
        evaluate.write_predictions(folder, rows)
        evaluate.write_predictions(folder, val_rows, VAL_PREDICTIONS_FILE)
        _write_history(work, folder / HISTORY_FILE)
        card.write_card(folder, config, results)
    shutil.rmtree(work.parent, ignore_errors=True)
    return Path(opts.out) / spec.name


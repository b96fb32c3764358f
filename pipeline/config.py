"""Constants shared by the whole project, kept in one place."""

from __future__ import annotations

# Classes of the COVID-19 Radiography Database, in the canonical order every model uses.
CANONICAL_CLASSES: tuple[str, ...] = ("COVID", "Lung_Opacity", "Normal", "Viral Pneumonia")

# kagglehub handle, pinned to a version so that a cached copy is reused offline.
KAGGLE_DATASET = "tawsifurrahman/covid19-radiography-database"
KAGGLE_VERSION = 5
KAGGLE_CREDENTIAL_VARS = ("KAGGLE_API_TOKEN", "KAGGLE_USERNAME", "KAGGLE_KEY")

DICOM_SUFFIXES: tuple[str, ...] = (".dcm", ".dicom")
IMAGE_EXTENSIONS: tuple[str, ...] = (".png", ".jpg", ".jpeg", *DICOM_SUFFIXES)
# Limits of an image file (pipeline/images.py), the same for training data and uploads.
MIN_SIDE = 32
MAX_ASPECT = 4.0
MAX_PIXELS = 40_000_000  # about 6300 x 6300; the largest chest X-ray detectors are near 4300 x 4300
# Rows x Columns x NumberOfFrames x SamplesPerPixel x bytes per sample of a DICOM file, checked before
# anything is decoded. Only frame 0 is ever decoded; a larger multi-frame file is no chest radiograph.
MAX_DICOM_BYTES = 1_000_000_000
WORKING_SIDE = 1024  # decoded images are kept at most this large: enough for every model and view
MANIFEST_NAME = "manifest.csv"
# Manifest columns whose values split the test images into subgroups worth checking apart
# (kermany_pediatric: 1 for images of the pediatric Kermany set, a possible shortcut).
SUBGROUP_COLUMNS: tuple[str, ...] = ("kermany_pediatric",)
MIN_SUBGROUP_SUPPORT = 10  # the worst-subgroup figure ignores smaller groups
# Optional manifest columns. A split keeps each patient (like each near-duplicate `group`) in one
# split. A processing chain (how an image was exported, resized and compressed) is the `chain`
# column where the manifest has one, else the image's `source`: figures per chain show whether a
# model reads the chain instead of the lungs.
PATIENT_COLUMN = "patient"
CHAIN_COLUMN = "chain"
# What metrics.json keeps of the validation split ("validation"): the figures that choose recipes
# and operating points. The test split is scored once per model, never to choose anything.
VALIDATION_KEYS: tuple[str, ...] = ("n_images", "accuracy", "macro_f1", "per_class", "ci95", "per_source",
                                    "per_chain", "chains_from", "per_subgroup", "worst_subgroup_recall")

DEFAULT_SPLIT: tuple[float, float, float] = (0.70, 0.15, 0.15)
DEFAULT_SEED = 42
DEFAULT_BATCH_SIZE = 32
DEFAULT_LEARNING_RATE = 1e-3
DEFAULT_FINE_TUNE_LEARNING_RATE = 1e-4  # every run in docs/EXPERIMENTS.md used it
# The default budget and learning-rate schedule of a training run, by how it starts; `train --epochs`,
# `--fine-tune-epochs`, `--schedule` and `--patience` override each value. "pretrained" (ImageNet
# weights): a head phase, then fine-tuning, each rate cut on plateaus (the MobileNet experiments in
# docs/EXPERIMENTS.md). "from_scratch" (random weights: the small CNN always, any backbone with
# `--weights none`): one phase, warmed up over the first epoch, then decayed on a cosine; it beat the
# plateau recipe on the same budget in the scratch-* experiments of docs/EXPERIMENTS.md.
RECIPES: dict[str, dict[str, int | str]] = {
    "pretrained": {"epochs": 10, "fine_tune_epochs": 10, "schedule": "plateau", "patience": 4},
    "from_scratch": {"epochs": 8, "fine_tune_epochs": 0, "schedule": "cosine", "patience": 8},
}
# The recipe that won the experiments in docs/EXPERIMENTS.md: the original augmentation, no
# label smoothing ("robust" augmentation and smoothing both lowered macro-F1 and Normal recall).
DEFAULT_AUGMENTATION = "affine"
DEFAULT_LABEL_SMOOTHING = 0.0
DEFAULT_OUT = "saved_models"
# The model the explain page opens with and the app's warm-up loads first: a pretrained keras.applications
# backbone validated on data version 2 and quick to load (3 s against DenseNet121's 15 s on 2 cores,
# bench/README.md), which a server woken from sleep needs. Any other folder name falls back to the first.
DEFAULT_EXPLAIN_MODEL = "MobileNet"
DEFAULT_CHECKPOINT_DIR = ".checkpoints"

# Augmentation of the original recipe (ImageDataGenerator rotation/shift/zoom ranges).
ROTATION_DEGREES = 10.0
SHIFT_FRACTION = 0.1
ZOOM_FRACTION = 0.1
# "robust" adds to it: a wider zoom (crops borders and burned-in text) and processing noise
# (down- and up-sampling, blur, JPEG re-compression, gamma) that hides each source's traces.
AUGMENTATIONS: tuple[str, ...] = ("affine", "robust")
ROBUST_ZOOM_FRACTION = 0.2
RESAMPLE_SCALE_RANGE = (0.4, 1.0)
BLUR_SIGMA_MAX = 1.5
JPEG_QUALITY_RANGE = (30, 95)
GAMMA_RANGE = (0.7, 1.4)
# Intensity normalisation inside the model (pipeline/intensity.py): "equalize" maps each image through
# its own cumulative histogram, after the lung focus where both are used (the segmenter reads raw input).
INTENSITIES: tuple[str, ...] = ("none", "equalize")
DEFAULT_INTENSITY = "none"
# How training weighs its images: "class" gives every class the same total weight; "chain" also
# splits each class's weight equally among the processing chains it comes through, so no chain
# speaks for a class by its share of the images.
BALANCES: tuple[str, ...] = ("class", "chain")
DEFAULT_BALANCE = "class"
# Learning rate within a phase (pipeline/schedule.py): cut on plateaus, or warm-up then cosine decay.
SCHEDULES: tuple[str, ...] = ("plateau", "cosine")
DEFAULT_WARMUP_EPOCHS = 1
# Distillation (train --teacher): the teacher's probabilities softened at this temperature, mixed
# into the one-hot targets with this weight (Hinton et al., 2015).
DEFAULT_DISTILL_TEMPERATURE = 2.0
DEFAULT_DISTILL_WEIGHT = 0.5

# TensorFlow turns its oneDNN kernels on by default only on some x86 CPUs; on the others (AVX2-only
# AMD EPYC among them) training runs faster with them (bench/onednn.py). The training
# commands turn them on unless the variable is already set; evaluation and the app keep TensorFlow's
# default, so their outputs match each other to the last bit.
ONEDNN_VARIABLE = "TF_ENABLE_ONEDNN_OPTS"
ONEDNN_COMMANDS = ("train", "train-lungs")

RANDOM_WEIGHTS = "none (random initialisation)"  # config.json "weights" of a model trained from scratch

# Targets of every model: (metric, class or None for the whole, minimum per backbone, "*" for every
# other backbone). On the test split: "macro_f1", and "chain_recall", the class's recall inside each
# processing chain holding at least MIN_SUBGROUP_SUPPORT test images of it (a model that reads the
# chain fails it in one chain). "audit_recall": the class's recall on the AUDIT_TARGET_DATA X-rays of
# the lung-attention audit, by their own labels (none used in training). Each card says which it meets.
TARGETS: tuple[tuple[str, str | None, dict[str, float]], ...] = (
    ("macro_f1", None, {"MobileNet": 0.94, "*": 0.90}),
    ("chain_recall", "Normal", {"*": 0.90}),
    ("audit_recall", "COVID", {"*": 0.90}),
)
AUDIT_TARGET_DATA = "lung-boxes"

# Evaluation.
BOOTSTRAP_SAMPLES = 1000
CALIBRATION_BINS = 10

# Files of a saved model folder.
MODEL_FILE = "model.keras"
METRICS_FILE = "metrics.json"
PREDICTIONS_FILE = "predictions.csv"  # the test split's predictions
VAL_PREDICTIONS_FILE = "val_predictions.csv"  # the validation split's, with the same columns
HISTORY_FILE = "history.csv"
CONFIG_FILE = "config.json"
CARD_FILE = "README.md"
ARTIFACT_FILES = (MODEL_FILE, METRICS_FILE, PREDICTIONS_FILE, VAL_PREDICTIONS_FILE, HISTORY_FILE, CONFIG_FILE,
                  CARD_FILE)
# The dashboard's shipped samples explained by the folder's model, written after training by
# `python -m dashboard.precomputed` (dashboard/precomputed.py); optional.
SAMPLES_FILE = "samples.npz"

# Lung segmenter (pipeline/lungs.py): a small U-Net saved beside the classifiers under
# saved_models/lungs/, marked by config.json "task" so that classifier readers skip it.
TASK_KEY = "task"
LUNG_TASK = "lung-segmentation"
LUNGS_DIR_NAME = "lungs"
LUNG_SOURCES: tuple[str, ...] = ("crd_vp", "v7covid")  # file-name prefixes of the lung-masks set
LUNG_INPUT_SIZE = 224  # the classifiers' input: the saved segmenter takes it
LUNG_WORK_SIZE = 96  # the U-Net runs at this size inside the model, then upsamples its logits
LUNG_FILTERS: tuple[int, ...] = (8, 16, 32, 64)
LUNG_EPOCHS = 8
LUNG_BATCH_SIZE = 16
LUNG_LEARNING_RATE = 3e-3
LUNG_BN_MOMENTUM = 0.99  # Keras's default
LUNG_THRESHOLD = 0.5
LUNG_FOCUS_MARGIN = 0.05  # lung focus: what stays bright grows beyond the lungs by this share of the side
LUNG_FOCUS_OUTSIDE = 0.1  # lung focus: what lies outside keeps this share of its value
LUNG_MIN_PART_SHARE = 0.1  # a connected part of a mask smaller than this share of the largest is no lung
SPLIT_FILE = "split.csv"

# Operating point of one class against the rest, and paired comparisons of models on one test split.
OPERATING_CLASS = "COVID"
OPERATING_SENSITIVITY = 0.95  # the preset threshold reaches at least this sensitivity on validation data
DEFAULT_THRESHOLD = 0.5  # the manual threshold where no validation predictions exist
WILSON_Z = 1.959964  # 95% two-sided
SIGNIFICANCE = 0.05
MCNEMAR_EXACT_BELOW = 25  # discordant pairs below which McNemar's test is the exact binomial one

# Labelled archives evaluated in the dashboard (a zip of class folders or of images and a CSV).
ARCHIVE_MAX_UPLOAD_MB = 200  # the compressed zip
ARCHIVE_MAX_BYTES = 256 * 1024 * 1024  # uncompressed, summed over the central directory (kept in memory)
ARCHIVE_MAX_FILES = 2000  # entries of any kind
ARCHIVE_MAX_IMAGES = 1000
ARCHIVE_MAX_RATIO = 100  # uncompressed / compressed size of one entry; real images compress far less
# What scoring 100 X-rays with the five shipped models took on 2 CPU cores shared with one training job,
# models already loaded: bench/evaluate_upload.py, bench/README.md. The page states it.
EVALUATE_SECONDS_PER_100_IMAGES = 127

DISCLAIMER = (
    "Research and teaching use only. Not a medical device: not for diagnosis, "
    "triage or any clinical decision."
)

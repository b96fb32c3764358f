"""The command line's arguments: ``parser()`` and the argparse types that check each value."""

from __future__ import annotations

import argparse

from . import config
from .backbones import BACKBONES


def _count(minimum: int):
    """An argparse type: a whole number of at least ``minimum``."""
    def parse(value: str) -> int:
        number = int(value) if value.lstrip("-").isdigit() else None
        if number is None or number < minimum:
            raise argparse.ArgumentTypeError(f"{value!r} is not a whole number >= {minimum}")
        return number
    return parse


def _in_range(value: str, top_included: bool) -> float:
    try:
        number = float(value)
    except ValueError:
        number = -1.0
    if not (0.0 <= number <= 1.0 if top_included else 0.0 <= number < 1.0):
        raise argparse.ArgumentTypeError(f"{value!r} is not a number from 0 to {'1' if top_included else 'below 1'}")
    return number


def _fraction(value: str) -> float:
    """An argparse type: a number in [0, 1)."""
    return _in_range(value, top_included=False)


def _unit(value: str) -> float:
    """An argparse type: a number in [0, 1]."""
    return _in_range(value, top_included=True)


def _positive(value: str) -> float:
    """An argparse type: a number above 0."""
    try:
        number = float(value)
    except ValueError:
        number = 0.0
    if not number > 0.0:
        raise argparse.ArgumentTypeError(f"{value!r} is not a number above 0")
    return number


def _weights(value: str) -> str | None:
    return None if value.lower() == "none" else value


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(prog="python -m pipeline", description=config.DISCLAIMER)
    root.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    commands = root.add_subparsers(dest="command", required=True)

    download = commands.add_parser("download", help="fetch the dataset with kagglehub and print its path")
    download.add_argument("--version", type=int, default=config.KAGGLE_VERSION)

    train = commands.add_parser("train", help="train, evaluate and save one or more backbones")
    which = train.add_mutually_exclusive_group(required=True)
    which.add_argument("--backbone", action="append", metavar="NAME", help=f"one of {', '.join(BACKBONES)}")
    which.add_argument("--all", action="store_true", help="every backbone in the registry")
    train.add_argument("--data-dir", help="labelled class folders (default: download with kagglehub)")
    train.add_argument("--weights", type=_weights, default="imagenet",
                       help="'imagenet' (default), 'none', or a weights file of the backbone without top")
    pretrained, scratch = config.RECIPES["pretrained"], config.RECIPES["from_scratch"]

    def recipe(key: str) -> str:
        return f"(default: {pretrained[key]} from pretrained weights, {scratch[key]} from random weights)"

    train.add_argument("--epochs", type=_count(0), help=f"phase 1: the head only, or every layer from random weights "
                       f"{recipe('epochs')}")
    train.add_argument("--fine-tune-epochs", type=_count(0),
                       help=f"phase 2: top of the backbone unfrozen {recipe('fine_tune_epochs')}")
    train.add_argument("--batch-size", type=_count(1), default=config.DEFAULT_BATCH_SIZE, help="per replica")
    train.add_argument("--learning-rate", type=float, default=config.DEFAULT_LEARNING_RATE)
    train.add_argument("--fine-tune-learning-rate", type=float, default=config.DEFAULT_FINE_TUNE_LEARNING_RATE)
    train.add_argument("--patience", type=_count(0), help=f"early stopping patience {recipe('patience')}")
    train.add_argument("--schedule", choices=config.SCHEDULES,
                       help="plateau: cut the learning rate when validation loss stalls; cosine: warm up linearly, "
                            f"then decay to zero by each phase's last epoch {recipe('schedule')}")
    train.add_argument("--warmup-epochs", type=_count(0), default=config.DEFAULT_WARMUP_EPOCHS,
                       help="of the cosine schedule, in each phase")
    train.add_argument("--image-size", type=_count(32), help="override the backbone's input size (for quick runs)")
    train.add_argument("--split", type=float, nargs=3, default=config.DEFAULT_SPLIT, metavar=("TRAIN", "VAL", "TEST"))
    train.add_argument("--limit-per-class", type=_count(1), metavar="N",
                       help="use at most N images per class, drawn with the seed (quick runs)")
    train.add_argument("--seed", type=int, default=config.DEFAULT_SEED)
    train.add_argument("--flip", action="store_true",
                       help="add horizontal flips (off by default: chest X-rays are not left-right symmetric)")
    train.add_argument("--augmentation", choices=config.AUGMENTATIONS, default=config.DEFAULT_AUGMENTATION,
                       help="affine: rotation, shift, zoom; robust: also wider zoom, down/up-sampling, blur, "
                            "JPEG re-compression and gamma, which hide each source's processing traces")
    train.add_argument("--label-smoothing", type=_fraction, default=config.DEFAULT_LABEL_SMOOTHING, metavar="S",
                       help="0 (off) to below 1, e.g. 0.1")
    train.add_argument("--lung-focus", metavar="DIR",
                       help="a lung segmenter folder (e.g. saved_models/lungs): the model starts with it, frozen, and "
                            "dims what lies outside the lungs")
    train.add_argument("--intensity", choices=config.INTENSITIES, default=config.DEFAULT_INTENSITY,
                       help="equalize: the model equalises each image's histogram first, so every processing "
                            "chain's contrast and brightness look alike")
    train.add_argument("--balance", choices=config.BALANCES, default=config.DEFAULT_BALANCE,
                       help="class: every class weighs the same; chain: and each class's weight is shared equally "
                            "by the processing chains it comes through")
    train.add_argument("--teacher", metavar="DIR", help="a trained model folder (e.g. saved_models/MobileNet) whose "
                       "softened outputs on the training images join the targets (distillation)")
    train.add_argument("--distill-temperature", type=_positive, metavar="T",
                       help=f"softens the teacher's outputs (default {config.DEFAULT_DISTILL_TEMPERATURE})")
    train.add_argument("--distill-weight", type=_unit, metavar="W",
                       help=f"the teacher's share of the targets, 0 to 1 (default {config.DEFAULT_DISTILL_WEIGHT})")
    train.add_argument("--mixed-precision", action="store_true",
                       help="float16 compute on GPUs, bfloat16 on CPUs with AVX512-BF16 or AMX "
                            "(the saved model computes in float32)")
    train.add_argument("--out", default=config.DEFAULT_OUT)
    train.add_argument("--checkpoint-dir", default=config.DEFAULT_CHECKPOINT_DIR,
                       help="where interrupted runs are resumed from")

    evaluate = commands.add_parser("evaluate", help="evaluate a saved model on a labelled folder")
    evaluate.add_argument("--model", required=True, help="a saved model folder, e.g. saved_models/MobileNet")
    evaluate.add_argument("--data-dir", required=True)
    evaluate.add_argument("--batch-size", type=_count(1), default=config.DEFAULT_BATCH_SIZE)
    evaluate.add_argument("--json", action="store_true", help="print one JSON object")
    audit = commands.add_parser("audit", help="lung-attention audit of a saved model's Grad-CAM maps")
    audit.add_argument("--model", required=True, help="a saved model folder, e.g. saved_models/MobileNet")
    audit.add_argument("--data-dir", required=True,
                       help="X-rays with boxes.csv (a box per lung) or <Class>/masks/ beside <Class>/images/")
    audit.add_argument("--faithfulness-images", type=_count(0), default=24, metavar="N",
                       help="deletion and insertion curves on the first N images (0: skip)")
    audit.add_argument("--lungs", metavar="DIR", help="the lung segmenter (default: lungs/ beside the model): its "
                       "masks where the folder has neither boxes nor masks, and a second figure where it has")
    audit.add_argument("--json", action="store_true", help="print one JSON object")
    rescore = commands.add_parser("rescore", help="recompute a saved model's test metrics and card from its "
                                  "predictions.csv (after a change in a metric's definition; no model run)")
    rescore.add_argument("--model", required=True, action="append", metavar="DIR",
                         help="a saved model folder, e.g. saved_models/MobileNet (repeatable)")
    lungs = commands.add_parser("lungs", help="lung masks of every X-ray in a folder (0/255 PNG, model input size)")
    lungs.add_argument("--data-dir", required=True, help="a folder of X-rays (searched recursively)")
    lungs.add_argument("--out", required=True, help="masks go here, under each X-ray's relative path, as .png")
    lungs.add_argument("--model", default=f"{config.DEFAULT_OUT}/{config.LUNGS_DIR_NAME}", help="the segmenter folder")
    train_lungs = commands.add_parser("train-lungs", help="train, evaluate and save the lung segmenter")
    train_lungs.add_argument("--data-dir", required=True, help="the lung-masks folder (images/, masks/, manifest.csv)")
    train_lungs.add_argument("--out", default=config.DEFAULT_OUT, help=f"saved under OUT/{config.LUNGS_DIR_NAME}")
    train_lungs.add_argument("--epochs", type=_count(1), default=config.LUNG_EPOCHS)
    train_lungs.add_argument("--batch-size", type=_count(1), default=config.LUNG_BATCH_SIZE)
    train_lungs.add_argument("--seed", type=int, default=config.DEFAULT_SEED)
    train_lungs.add_argument("--checkpoint-dir", default=config.DEFAULT_CHECKPOINT_DIR,
                             help="where an interrupted run is resumed from")
    train_lungs.add_argument("--boxes-dir", help="a folder with boxes.csv, never trained on (e.g. lung-boxes): "
                             "the card compares each predicted lung's box with its box")
    lungs_eval = commands.add_parser("lungs-eval", help="the segmenter's test figures and card, written into "
                                     "its metrics.json and README.md")
    lungs_eval.add_argument("--model", default=f"{config.DEFAULT_OUT}/{config.LUNGS_DIR_NAME}")
    lungs_eval.add_argument("--data-dir", required=True, help="the lung-masks folder it was trained on")
    lungs_eval.add_argument("--boxes-dir", help="a folder with boxes.csv (e.g. lung-boxes): box IoU per lung")
    report = commands.add_parser("report", help="markdown tables from saved models' metrics")
    source = report.add_mutually_exclusive_group(required=True)
    source.add_argument("--models", metavar="DIR", help="model folders, e.g. saved_models: the comparison table")
    source.add_argument("--experiments", metavar="DIR", help="experiment runs, e.g. docs/experiments")
    target = report.add_mutually_exclusive_group()
    target.add_argument("--readme", metavar="FILE", help="replace the table between the model markers of FILE")
    target.add_argument("--out", metavar="FILE", help="write the document to FILE (default: print it)")
    return root

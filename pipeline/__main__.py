"""Command line: ``python -m pipeline {download,train,evaluate,audit,report} ...``."""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from pathlib import Path

from . import config
from .backbones import BACKBONES
from .errors import ConfigError, PipelineError

log = logging.getLogger("pipeline")


def _count(minimum: int):
    """An argparse type: a whole number of at least ``minimum``."""
    def parse(value: str) -> int:
        number = int(value) if value.lstrip("-").isdigit() else None
        if number is None or number < minimum:
            raise argparse.ArgumentTypeError(f"{value!r} is not a whole number >= {minimum}")
        return number
    return parse


def _fraction(value: str) -> float:
    """An argparse type: a number in [0, 1)."""
    try:
        number = float(value)
    except ValueError:
        number = -1.0
    if not 0.0 <= number < 1.0:
        raise argparse.ArgumentTypeError(f"{value!r} is not a number from 0 to below 1")
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
    train.add_argument("--epochs", type=_count(0), default=config.DEFAULT_EPOCHS, help="phase 1: head only")
    train.add_argument("--fine-tune-epochs", type=_count(0), default=config.DEFAULT_FINE_TUNE_EPOCHS,
                       help="phase 2: top of the backbone unfrozen")
    train.add_argument("--batch-size", type=_count(1), default=config.DEFAULT_BATCH_SIZE, help="per replica")
    train.add_argument("--learning-rate", type=float, default=config.DEFAULT_LEARNING_RATE)
    train.add_argument("--fine-tune-learning-rate", type=float, default=config.DEFAULT_FINE_TUNE_LEARNING_RATE)
    train.add_argument("--patience", type=_count(0), default=config.DEFAULT_PATIENCE, help="early stopping patience")
    train.add_argument("--schedule", choices=config.SCHEDULES, default=config.DEFAULT_SCHEDULE,
                       help="plateau: cut the learning rate when validation loss stalls; cosine: warm up linearly, "
                            "then decay to zero by each phase's last epoch (for backbones trained from scratch)")
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


def run_download(args: argparse.Namespace) -> None:
    from .download import download_dataset

    print(download_dataset(args.version))


def run_train(args: argparse.Namespace) -> None:
    from .backbones import get_backbone

    names = list(BACKBONES) if args.all else [get_backbone(n).name for n in args.backbone]
    data_dir, origin = args.data_dir, "local folder"
    if data_dir is None:
        from .download import dataset_handle, download_dataset

        data_dir, origin = str(download_dataset()), f"kagglehub {dataset_handle()}"
    from .train import TrainOptions, train

    for name in names:
        options = TrainOptions(
            backbone=name, data_dir=data_dir, weights=args.weights, epochs=args.epochs,
            fine_tune_epochs=args.fine_tune_epochs, batch_size=args.batch_size,
            learning_rate=args.learning_rate, fine_tune_learning_rate=args.fine_tune_learning_rate,
            patience=args.patience, image_size=args.image_size, seed=args.seed, split=tuple(args.split),
            limit_per_class=args.limit_per_class,
            flip=args.flip, augmentation=args.augmentation, label_smoothing=args.label_smoothing,
            lung_focus=args.lung_focus, intensity=args.intensity, balance=args.balance,
            schedule=args.schedule, warmup_epochs=args.warmup_epochs,
            mixed_precision=args.mixed_precision, out=args.out,
            checkpoint_dir=args.checkpoint_dir, data_origin=origin,
        )
        log.info("done: %s", train(options))


def run_evaluate(args: argparse.Namespace) -> None:
    from .evaluate import evaluate_folder

    result = evaluate_folder(args.model, args.data_dir, args.batch_size)
    if args.json:
        print(json.dumps(result))
        return
    print(f"{args.model} on {args.data_dir}: {result['n_images']} images, "
          f"accuracy {result['accuracy']:.4f}, macro-F1 {result['macro_f1']:.4f}")
    for name, m in result["per_class"].items():
        print(f"  {name:16s} recall {m['recall']:.4f}  precision {m['precision']:.4f}  support {m['support']}")
    # A chain is the manifest's chain column, else the source: then the chains are the sources.
    kinds = ["per_chain"] + (["per_source"] if result.get("chains_from") == config.CHAIN_COLUMN else [])
    for kind in (k for k in kinds if result.get(k)):
        print("recall per class in each " + ("processing chain (from the manifest's "
              f"{result['chains_from']} column)" if kind == "per_chain" else "source") + ":")
        for group, m in result[kind].items():
            print(f"  {group}: " + ", ".join(f"{c} {r:.4f} (n={m['support'][c]})" for c, r in m["recall"].items()))


def run_audit(args: argparse.Namespace) -> None:
    from .audit import audit_model_dir

    result = audit_model_dir(args.model, args.data_dir, args.faithfulness_images, args.lungs)
    if args.json:
        print(json.dumps(result))
        return
    overall = result["overall"]
    print(f"{args.model}: {overall['n_images']} images with lung {result['reference']}; "
          f"a uniform map puts {overall['baseline_share']:.1%} of its energy inside")
    for method in result["methods"]:
        m = overall[method]
        energy = "n/a" if m["energy_inside"] is None else f"{m['energy_inside']:.1%}"
        hits = "n/a" if m["pointing_hit_rate"] is None else f"{m['pointing_hit_rate']:.1%}"
        print(f"  {method:10s} energy inside the lungs {energy}, peak inside {hits}")
    if "predicted_lungs_baseline_share" in overall:
        print(f"inside the lung segmenter's masks (a uniform map: {overall['predicted_lungs_baseline_share']:.1%}): "
              + ", ".join(f"{m} {overall[m]['energy_inside_predicted_lungs']:.1%}" for m in result["methods"]
                          if overall[m]["energy_inside_predicted_lungs"] is not None))
    if result.get("faithfulness"):
        print(f"faithfulness on {result['faithfulness']['n_images']} images (deletion: lower is better, "
              "insertion: higher is better)")
        for method, areas in result["faithfulness"]["methods"].items():
            print(f"  {method:12s} deletion {areas['deletion']:.3f}, insertion {areas['insertion']:.3f}")


def run_rescore(args: argparse.Namespace) -> None:
    from .rescore import rescore_model_dir

    for folder in args.model:
        result = rescore_model_dir(folder)
        print(f"{folder}: {result['n_images']} test images, accuracy {result['accuracy']:.4f}, "
              f"macro-F1 {result['macro_f1']:.4f}; metrics.json and the card rewritten")


def run_lungs(args: argparse.Namespace) -> None:
    from .lungs import write_masks

    count = write_masks(args.model, args.data_dir, args.out)
    log.info("wrote %d lung masks under %s", count, args.out)


def run_train_lungs(args: argparse.Namespace) -> None:
    from .lungs import LungTrainOptions, train_segmenter

    options = LungTrainOptions(data_dir=args.data_dir, out=args.out, epochs=args.epochs,
                               batch_size=args.batch_size, seed=args.seed, checkpoint_dir=args.checkpoint_dir,
                               boxes_dir=args.boxes_dir)
    log.info("done: %s", train_segmenter(options))


def run_lungs_eval(args: argparse.Namespace) -> None:
    from .lungs_eval import evaluate_segmenter

    print(json.dumps(evaluate_segmenter(args.model, args.data_dir, args.boxes_dir), indent=2))


def run_report(args: argparse.Namespace) -> None:
    from . import report

    text = (report.comparison_table(args.models) if args.models
            else report.experiments_document(args.experiments))
    if args.readme:
        path = Path(args.readme)
        if not path.is_file():
            raise ConfigError(f"{path}: no such file")
        path.write_text(report.replace_between_markers(path.read_text(encoding="utf-8"), text), encoding="utf-8")
        log.info("updated the model table in %s", path)
    elif args.out:
        Path(args.out).write_text(text if text.endswith("\n") else text + "\n", encoding="utf-8")
        log.info("wrote %s", args.out)
    else:
        print(text)


COMMANDS = {"download": run_download, "train": run_train, "evaluate": run_evaluate, "audit": run_audit,
            "rescore": run_rescore, "report": run_report, "lungs": run_lungs, "train-lungs": run_train_lungs,
            "lungs-eval": run_lungs_eval}


def prefer_onednn(command: str) -> None:
    """Turn TensorFlow's oneDNN kernels on for the training commands, unless the user set the variable.
    It is read when TensorFlow loads; where it is loaded already, setting it would only reach child
    processes (a server started by the caller, say), so it is left alone."""
    if command in config.ONEDNN_COMMANDS and "tensorflow" not in sys.modules:
        os.environ.setdefault(config.ONEDNN_VARIABLE, "1")


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    prefer_onednn(args.command)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    try:
        COMMANDS[args.command](args)
    except PipelineError as exc:
        log.error("%s", exc)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())

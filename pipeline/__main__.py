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
from .cli import parser
from .errors import ConfigError, PipelineError

log = logging.getLogger("pipeline")


def run_download(args: argparse.Namespace) -> None:
    from .download import download_dataset

    print(download_dataset(args.version))


def run_train(args: argparse.Namespace) -> None:
    from .backbones import get_backbone

    names = list(BACKBONES) if args.all else [get_backbone(n).name for n in args.backbone]
    distill_options = {"--distill-temperature": args.distill_temperature, "--distill-weight": args.distill_weight}
    given = [flag for flag, value in distill_options.items() if value is not None]
    if given and not args.teacher:
        raise ConfigError(f"{' and '.join(given)} only apply with --teacher DIR (distillation)")
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
            teacher=args.teacher,
            distill_temperature=args.distill_temperature or config.DEFAULT_DISTILL_TEMPERATURE,
            distill_weight=config.DEFAULT_DISTILL_WEIGHT if args.distill_weight is None else args.distill_weight,
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

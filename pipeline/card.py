"""The model card (README.md of a model folder), rendered from its config, metrics and history."""

from __future__ import annotations

from pathlib import Path

from . import artifacts
from .config import AUDIT_TARGET_DATA, CARD_FILE, DISCLAIMER
from .report import pct as _pct
from .report import table as _table
from .shortcuts import audit_recall, chain_recalls, chains_from, per_chain, single_chain_classes
from .targets import check_targets, how_training_ended, read_history, validation_accuracy

REFERENCE_KINDS = {"masks": "exact", "masks predicted by the lung segmenter": "a model's"}  # else coarse
SPLIT_KEY_NAMES = {"group": "near-duplicate groups", "patient": "patients"}


def _ci(interval: list[float] | None) -> str:
    return "" if not interval else f" (95% CI {_pct(interval[0])}-{_pct(interval[1])})"


def _lung_attention_section(audit: dict) -> list[str]:
    overall = audit["overall"]
    rows = [[m, _pct(overall[m]["energy_inside"]), _pct(overall[m]["pointing_hit_rate"]),
             _pct(overall["baseline_share"])] for m in audit["methods"]]
    return [
        "## Model attention on the lungs",
        f"Maps of the predicted class on {overall['n_images']} X-rays of `{audit['data_dir']}` with lung "
        f"{audit['reference']} ({REFERENCE_KINDS.get(audit['reference'], 'coarse')} reference; "
        "`python -m pipeline audit`).",
        _table(["method", "energy inside the lungs", "peak inside the lungs", "uniform map (baseline)"], rows),
        *([f"Inside the lungs the lung segmenter predicts on the same X-rays (a uniform map: "
           f"{_pct(overall['predicted_lungs_baseline_share'])}): " + ", ".join(
               f"{m} {_pct(overall[m]['energy_inside_predicted_lungs'])}" for m in audit["methods"]) + "."]
          if "predicted_lungs_baseline_share" in overall else []),
        *(f"- The {m['n_images']} audit X-rays labelled {c} in `{audit['data_dir']}`: recall {_pct(m['recall'])} "
          "(these images may come from sources the model never saw)."
          for c, m in audit.get("recall_by_label", {}).items()),
    ]


def _counts(per_class: dict[str, int]) -> str:
    return ", ".join(f"{c} {n}" for c, n in per_class.items() if n)


def _shortcut_risks(classes: list[str], subgroups: dict[str, dict[str, int]]) -> list[str]:
    """A limit line for each flagged subgroup whose share differs between classes."""
    lines = []
    for group, per_class in subgroups.items():
        if group.endswith("=0"):
            continue
        column = group.rsplit("=", 1)[0]
        totals = {c: sum(v.get(c, 0) for g, v in subgroups.items() if g.rsplit("=", 1)[0] == column) for c in classes}
        shares = {c: per_class.get(c, 0) / totals[c] for c in classes if totals[c]}
        if shares and max(shares.values()) - min(shares.values()) > 0.1:
            lines.append(f"- Shortcut risk: `{group}` images are " + ", ".join(
                f"{_pct(s)} of {c}" for c, s in shares.items()) + "; a model can learn this trait "
                "(e.g. a child's chest, one hospital's scanner) instead of the disease. See the per-subgroup recall.")
    return lines


def _epochs(config: dict) -> str:
    run, batch = config.get("epochs_run", {}), config.get("batch_size")
    if str(config.get("weights", "")).startswith("none") and not run.get("fine_tune"):
        return f"- Epochs run: {run.get('head')} in one phase, every layer training (from scratch); batch size {batch}."
    if str(config.get("weights", "")).startswith("none"):
        return (f"- Epochs run: {run.get('head')} then {run.get('fine_tune')} at the lower learning rate, every "
                f"layer training in both (from scratch); batch size {batch}.")
    return (f"- Epochs run: head {run.get('head')} (backbone frozen), fine-tune {run.get('fine_tune')} (top of the "
            f"backbone unfrozen); batch size {batch}.")


def _recipe(config: dict) -> str:
    options, rates = config.get("options", {}), config.get("learning_rates", {})
    then = f" (head) then {rates.get('fine_tune')} (fine-tune)" if config.get("epochs_run", {}).get("fine_tune") else ""
    kept = config.get("kept_epoch")
    weights = (f"the weights of the lowest validation loss of the run (epoch {kept['epoch']}) are kept" if kept
               else "restores the best validation-loss weights")
    return (f"- Recipe: Adam, learning rate {rates.get('head')}{then}, {_schedule(config)}; early stopping "
            f"(patience {options.get('patience')}){'; ' if kept else ' '}{weights}; {_balance(config)}; "
            f"augmentation `{config.get('augmentation', 'affine')}`"
            f"{' with horizontal flips' if config.get('flip') else ''}; label smoothing "
            f"{config.get('label_smoothing', 0)}{_focus(config.get('lung_focus'))}{_intensity(config)}"
            f"{_distillation(config.get('distillation'))}.")


def _distillation(distillation: dict | None) -> str:
    if not distillation:
        return ""
    return (f"; distilled from {distillation['teacher_backbone']} (`{distillation['teacher']}`): targets are "
            f"{1 - distillation['weight']:g} x the true class + {distillation['weight']:g} x the teacher's outputs "
            f"at temperature {distillation['temperature']:g} (validation keeps the true labels)")


def _schedule(config: dict) -> str:
    kind = config.get("schedule") or {"kind": "plateau"}
    if kind["kind"] == "cosine":
        return f"warmed up over {kind['warmup_epochs']} epoch(s) then decayed to zero (cosine) in each phase"
    return "reduced on plateau"


def _balance(config: dict) -> str:
    if config.get("balance") == "chain":
        return "images weighed so that every class, and within it every processing chain, counts the same"
    return "class weights"


def _intensity(config: dict) -> str:
    if config.get("intensity", "none") == "none":
        return ""
    return "; the model equalises each image's histogram before the backbone"


def _focus(focus: dict | None) -> str:
    if not focus:
        return ""
    return (f"; lung focus: the model starts with the frozen lung segmenter and keeps {focus['outside']:.0%} of what "
            f"lies more than {focus['margin']:.0%} of the side outside the lungs")


def _precision(config: dict) -> str:
    policy = config.get("compute_dtype_policy", "float32")
    return "" if policy == "float32" else f", computing in `{policy}` (the saved model computes in float32)"


def _split_lines(config: dict) -> list[str]:
    keys = config.get("split_keys", ["group"])  # folders written before patients were read kept groups
    kept = " and ".join(SPLIT_KEY_NAMES.get(k, k) for k in keys) or "no groups (the data named none)"
    lines = [f"- Split {config.get('split', '')}, seed {config.get('seed')}; {kept} kept inside one split."]
    if "group" in keys:
        lines.append("- Copies of one X-ray (near-duplicates, and one picture exported through two processing "
                     "chains) share a group, so they stay in one split; every figure counts each copy as one image.")
    return lines


def _group_table(groups: dict, column: str) -> str:
    rows = [[g, str(m["n_images"]), _pct(m["accuracy"]), _pct(m["macro_f1"]),
             ", ".join(f"{c} {_pct(r)}" for c, r in m["recall"].items())] for g, m in groups.items()]
    return _table([column, "images", "accuracy", "macro-F1 (classes present)", "recall per class"], rows)


def _validation_section(metrics: dict) -> list[str]:
    validation = metrics.get("validation")
    if not validation:
        return ["## Validation metrics", "- Not recorded: this model was trained before training scored its "
                "validation split, so nothing about it can be chosen on validation figures."]
    recalls = ", ".join(f"{c} {_pct(m['recall'])}" for c, m in validation["per_class"].items())
    lines = ["## Validation metrics",
             "The figures that choose recipes and operating points (`val_predictions.csv`); the test split "
             "below is scored once and chooses nothing.",
             f"- Accuracy {_pct(validation['accuracy'])}, macro-F1 {_pct(validation['macro_f1'])}"
             f"{_ci(validation.get('ci95', {}).get('macro_f1'))} on {validation['n_images']} images; recall {recalls}."]
    if per_chain(validation):
        lines += ["### Per processing chain (validation split)", _group_table(per_chain(validation), "chain")]
    return lines


def _shortcut_section(metrics: dict) -> list[str]:
    classes, lines = list(metrics["per_class"]), ["### Shortcut checks"]
    chains = per_chain(metrics)
    if chains:
        origin = ("the manifest's `chain` column" if chains_from(metrics) == "chain"
                  else "the image's data source: the manifest has no `chain` column")
        recalls = {c: chain_recalls(metrics, c) for c in classes}
        rows = [[chain] + [f"{_pct(recalls[c][chain][0])} (n={recalls[c][chain][1]})" if chain in recalls[c] else "-"
                           for c in classes] for chain in chains]
        lines += [f"Recall of each class inside each processing chain (a chain is {origin}). A model that reads "
                  "the chain instead of the lungs recalls a class well in one chain and poorly in another.",
                  _table(["chain", *classes], rows),
                  *(f"- Every {name} test image comes through `{chain}`: the test split cannot show whether the "
                    f"model tells {name} from that chain." for name, chain in single_chain_classes(metrics).items())]
    audited = {c: found for c in classes if (found := audit_recall(metrics, c, data=None))}
    data = (metrics.get("lung_attention") or {}).get("data_dir")
    lines += [f"- {c} recall on the `{data}` X-rays of the lung-attention audit, by their own labels: "
              f"{_pct(recall)} (n={n})." for c, (recall, n) in audited.items()]
    if not metrics.get("lung_attention"):
        lines.append(f"- Not audited: `python -m pipeline audit` on the `{AUDIT_TARGET_DATA}` X-rays adds the "
                     "recall on X-rays from outside the training split.")
    return lines


def _reached(result) -> str:
    if result.reached is None:
        return f"not measured ({result.missing})"
    return _pct(result.reached) + _ci(result.interval) + (f" (n={result.support})" if result.support else "")


def _targets_section(config: dict, metrics: dict, history: list[dict]) -> list[str]:
    rows = [[f"{r.name} >= {_pct(r.minimum)}", _reached(r), "yes" if r.met else "**no**"]
            for r in check_targets(config, metrics)]
    ended = how_training_ended(config, history)
    accuracy = ", ".join(_pct(value) for value in validation_accuracy(history))
    return ["## Targets", f"The project's targets for {config['backbone']}, on the test split and on the "
            f"`{AUDIT_TARGET_DATA}` X-rays of the lung-attention audit:",
            _table(["target", "reached", "met"], rows), *([f"- How training ended: {ended}"] if ended else []),
            *([f"- Validation accuracy by epoch: {accuracy}."] if accuracy else [])]


def write_card(folder: str | Path, config: dict, metrics: dict) -> None:
    """Render the card of a model folder from ``config``, ``metrics`` and its history.csv."""
    artifacts.replace_text(folder, CARD_FILE, render_model_card(config, metrics, read_history(folder)))


def render_model_card(config: dict, metrics: dict, history: list[dict] | None = None) -> str:
    classes = config["classes"]
    data = config.get("data", {})
    counts = data.get("counts", {})
    ci = metrics.get("ci95", {})
    recall_ci = dict(zip(classes, ci.get("recall", [None] * len(classes))))
    per_class = [
        [c, _pct(m["precision"]), _pct(m["recall"]) + _ci(recall_ci.get(c)), _pct(m["specificity"]),
         _pct(m["f1"]), "n/a" if m["roc_auc"] is None else f"{m['roc_auc']:.3f}", str(m["support"])]
        for c, m in metrics["per_class"].items()
    ]
    split_rows = [[s] + [str(counts.get(s, {}).get(c, 0)) for c in classes] for s in ("train", "val", "test")]
    sections = [
        f"# {config['backbone']} chest X-ray classifier",
        f"> {DISCLAIMER}",
        "## Data",
        f"- Data: `{data.get('name', 'unknown')}` ({data.get('origin', 'local folder')}).",
        f"- Classes: {', '.join(classes)}."
        + (f" Missing from this data: {', '.join(data['missing_classes'])} (the data folder has no images of it), "
           "so this model cannot predict it." if data.get("missing_classes") else ""),
        *(f"- Source `{name}`: {_counts(per_class)} images." for name, per_class in data.get("sources", {}).items()),
        f"- Unreadable files skipped: {data.get('skipped_files', 0)}.",
        *_split_lines(config),
        _table(["split", *classes], split_rows),
        "## Training",
        f"- Backbone weights at start: `{config.get('weights')}`; input {config['input_size']} px, "
        f"preprocessing `{config.get('preprocessing')}` built into the model.",
        _epochs(config),
        _recipe(config),
        f"- Hardware: {config.get('hardware', {}).get('description', 'unknown')}; "
        f"training time {config.get('training_seconds', 0) / 60:.1f} min{_precision(config)}.",
        *_validation_section(metrics),
        "## Test metrics",
        f"- Accuracy {_pct(metrics['accuracy'])}{_ci(ci.get('accuracy'))}, "
        f"macro-F1 {_pct(metrics['macro_f1'])}{_ci(ci.get('macro_f1'))}, "
        f"ROC AUC (macro) {metrics.get('roc_auc_macro') or 0:.3f}, "
        f"calibration error (ECE) {metrics.get('ece', 0):.3f}, on {metrics['n_images']} images.",
        _table(["class", "precision", "recall", "specificity", "F1", "ROC AUC", "support"], per_class),
    ]
    worst = metrics.get("worst_subgroup_recall")
    if worst:
        sections.append(f"- Worst subgroup: recall of {worst['class']} is {_pct(worst['recall'])} on the "
                        f"{worst['support']} test images of `{worst['group']}` (overall recall of {worst['class']}: "
                        f"{_pct(metrics['per_class'][worst['class']]['recall'])}).")
    group_tables = (("per_subgroup", "Per subgroup", "subgroup"), ("per_source", "Per data source", "source"))
    if chains_from(metrics) == "chain":
        group_tables += (("per_chain", "Per processing chain", "chain"),)
    for key, title, column in group_tables:
        if metrics.get(key):
            sections += [f"### {title}", _group_table(metrics[key], column)]
    sections += _shortcut_section(metrics)
    sections += _targets_section(config, metrics, history or [])
    if metrics.get("lung_attention"):
        sections += _lung_attention_section(metrics["lung_attention"])
    if metrics.get("faithfulness"):
        faith = metrics["faithfulness"]
        rows = [[m, f"{a['deletion']:.3f}", f"{a['insertion']:.3f}"] for m, a in faith["methods"].items()]
        sections += [f"Faithfulness on {faith['n_images']} X-rays of `{faith['data_dir']}`: area under the class "
                     "probability as pixels are deleted (lower is better) or inserted (higher is better) in the "
                     "order the map ranks them, against a random order.",
                     _table(["order", "deletion", "insertion"], rows)]
    sections += [
        "## Limits",
        "- Research use only; not validated on any clinical population.",
        *_shortcut_risks(classes, data.get("subgroups", {})),
        "- A model can learn the source of an image (hospital, scanner, age group, processing) "
        "instead of the disease; check the per-source figures and the model attention maps.",
        "## Reproduce",
        f"```\n{config.get('command', '')}\n```",
    ]
    return "\n\n".join(sections) + "\n"

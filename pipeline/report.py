"""Markdown tables generated from saved runs' config.json and metrics.json: no TensorFlow needed.

- the README's model comparison (``python -m pipeline report --models saved_models --readme README.md``)
- docs/EXPERIMENTS.md (``python -m pipeline report --experiments docs/experiments --out docs/EXPERIMENTS.md``)
"""

from __future__ import annotations

import re
from collections import defaultdict
from pathlib import Path

from . import artifacts
from .config import CONFIG_FILE, METRICS_FILE
from .errors import ArtifactError

README_START, README_END = "<!-- models:start -->", "<!-- models:end -->"
EXPERIMENTS_INTRO = "README.md"  # hand-written introduction inside the experiments folder


def pct(value: float | None) -> str:
    return "n/a" if value is None else f"{100 * value:.1f}%"


def table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return "\n".join(lines + ["| " + " | ".join(r) + " |" for r in rows])


def read_run(folder: Path) -> tuple[dict, dict]:
    return artifacts.read_config(folder), artifacts.read_metrics(folder)


def find_runs(root: str | Path) -> list[Path]:
    """Folders under ``root`` (at any depth) holding both a config.json and a metrics.json."""
    root = Path(root)
    if not root.is_dir():
        raise ArtifactError(f"{root}: not a folder")
    runs = sorted(p.parent for p in root.rglob(CONFIG_FILE)
                  if (p.parent / METRICS_FILE).is_file() and not artifacts.is_segmenter(p.parent))
    if not runs:
        raise ArtifactError(f"{root}: no folder with both {CONFIG_FILE} and {METRICS_FILE}")
    return runs


def macro_f1_cell(metrics: dict) -> str:
    interval = metrics.get("ci95", {}).get("macro_f1")
    return pct(metrics["macro_f1"]) + (f" ({pct(interval[0])}-{pct(interval[1])})" if interval else "")


def recall(metrics: dict, name: str) -> float | None:
    return metrics["per_class"].get(name, {}).get("recall")


def worst_cell(metrics: dict) -> str:
    worst = metrics.get("worst_subgroup_recall")
    return "n/a" if not worst else f"{pct(worst['recall'])} ({worst['class']}, {worst['group']}, n={worst['support']})"


def attention_cell(metrics: dict, method: str = "Grad-CAM") -> str:
    audit = metrics.get("lung_attention")
    if not audit or method not in audit["overall"]:
        return "not audited"
    overall = audit["overall"]
    return f"{pct(overall[method]['energy_inside'])} (uniform {pct(overall['baseline_share'])})"


def predicted_lungs_cell(metrics: dict, method: str = "Grad-CAM") -> str:
    overall = (metrics.get("lung_attention") or {}).get("overall", {})
    inside = overall.get(method, {}).get("energy_inside_predicted_lungs")
    if inside is None:
        return "n/a"
    return f"{pct(inside)} (uniform {pct(overall.get('predicted_lungs_baseline_share'))})"


def audit_recall_cell(metrics: dict) -> str:
    """Recall on the audit X-rays by their own labels, e.g. "COVID 81.2% (n=101)"."""
    recalls = (metrics.get("lung_attention") or {}).get("recall_by_label") or {}
    return ", ".join(f"{c} {pct(m['recall'])} (n={m['n_images']})" for c, m in recalls.items()) or "n/a"


def shared_class_subgroups(metrics_list: list[dict], key: str = "per_subgroup") -> list[tuple[str, str]]:
    """(subgroup, class) pairs for classes present in more than one subgroup (or chain, with ``key``
    "per_chain"): the comparisons that show whether a model tells the class from the subgroup (e.g.
    pediatric vs adult Normal, or Normal through two processing chains)."""
    groups: dict[str, set[str]] = defaultdict(set)
    for metrics in metrics_list:
        for group, values in metrics.get(key, {}).items():
            for name, support in values["support"].items():
                if support:
                    groups[name].add(group)
    return sorted((g, c) for c, gs in groups.items() if len(gs) > 1 for g in gs)


def subgroup_recall(metrics: dict, group: str, name: str, key: str = "per_subgroup") -> float | None:
    return metrics.get(key, {}).get(group, {}).get("recall", {}).get(name)


def comparison_table(root: str | Path) -> str:
    """One row per model folder: start weights, training, test metrics and lung attention."""
    rows = []
    for folder in find_runs(root):
        config, metrics = read_run(folder)
        epochs = config.get("epochs_run", {})
        covid = recall(metrics, "COVID")
        rows.append([
            f"[{config['backbone']}]({Path(root).name}/{folder.relative_to(root).as_posix()}/README.md)",
            config.get("weights", "?").split("/")[-1], f"{config['input_size']} px",
            f"{epochs.get('head', 0)} + {epochs.get('fine_tune', 0)}",
            f"{config.get('training_seconds', 0) / 60:.0f} min, {config.get('hardware', {}).get('description', '?')}",
            pct(metrics["accuracy"]), macro_f1_cell(metrics), pct(covid), worst_cell(metrics),
            attention_cell(metrics), audit_recall_cell(metrics), f"{config.get('model_bytes', 0) / 1e6:.1f} MB",
        ])
    header = ["model", "weights at start", "input", "epochs (head + fine-tune)", "training",
              "test accuracy", "test macro-F1 (95% CI)", "COVID recall", "worst subgroup recall",
              "Grad-CAM energy inside lung boxes", "recall on the audit X-rays", "file"]
    return table(header, rows)


def recipe_of(config: dict) -> str:
    options = config.get("options", {})
    return (f"{config['backbone']}, augmentation {options.get('augmentation', 'affine')}, label smoothing "
            f"{options.get('label_smoothing', 0)}, head LR {options.get('learning_rate')}"
            f"{', lung focus' if options.get('lung_focus') else ''}"
            f"{', histogram equalisation' if options.get('intensity', 'none') != 'none' else ''}"
            f"{', chain x class balance' if options.get('balance') == 'chain' else ''}"
            f"{', warm-up + cosine' if options.get('schedule') == 'cosine' else ''}")


def experiments_tables(root: str | Path) -> str:
    """Recipes compared on the validation split only (each run's metrics.json "validation"): per-run
    rows, then the mean over seeds per recipe. The test split chooses nothing, so no test figure
    appears; runs without validation figures are named and left out."""
    runs = [(folder, *read_run(folder)) for folder in find_runs(root)]
    scored = [(folder, config, metrics["validation"]) for folder, config, metrics in runs if metrics.get("validation")]
    unscored = [folder.relative_to(root).as_posix() for folder, _, metrics in runs if not metrics.get("validation")]
    note = (f"{len(unscored)} of {len(runs)} runs have no validation figures (trained before `train` scored the "
            f"validation split), so they are left out rather than compared on test figures: {', '.join(unscored)}. "
            "Rerun them with docs/experiments.sh.\n\n" if unscored else "")
    if not scored:
        return note
    figures = [m for _, _, m in scored]
    pairs = [(g, c, "per_chain") for g, c in shared_class_subgroups(figures, "per_chain")]
    pairs += [(g, c, "per_subgroup") for g, c in shared_class_subgroups(figures)]
    pair_names = [f"val {c} recall, {'chain ' if key == 'per_chain' else ''}{g}" for g, c, key in pairs]
    rows, by_recipe = [], defaultdict(list)
    for folder, config, metrics in scored:
        by_recipe[recipe_of(config)].append(metrics)
        epochs = config.get("epochs_run", {})
        rows.append([
            folder.relative_to(root).as_posix(), recipe_of(config), str(config.get("seed")),
            f"{epochs.get('head', 0)} + {epochs.get('fine_tune', 0)}", f"{config.get('training_seconds', 0) / 60:.0f}",
            macro_f1_cell(metrics), pct(recall(metrics, "COVID")),
            *(pct(subgroup_recall(metrics, g, c, key)) for g, c, key in pairs), worst_cell(metrics),
        ])
    per_run = table(["run", "recipe", "seed", "epochs", "minutes", "val macro-F1 (95% CI)", "val COVID recall",
                     *pair_names, "val worst subgroup recall"], rows)
    summary = []
    for recipe, items in by_recipe.items():
        def mean(values: list[float | None]) -> str:
            known = [v for v in values if v is not None]
            return pct(sum(known) / len(known)) if known else "n/a"
        worst = [(m.get("worst_subgroup_recall") or {}).get("recall") for m in items]
        summary.append([recipe, str(len(items)), mean([m["macro_f1"] for m in items]),
                        *(mean([subgroup_recall(m, g, c, key) for m in items]) for g, c, key in pairs), mean(worst)])
    means = table(["recipe", "seeds", "mean val macro-F1", *(f"mean {n}" for n in pair_names),
                   "mean val worst subgroup recall"], summary)
    attention = table(["run", "recipe", "Grad-CAM energy inside lung boxes", "inside the segmenter's lungs",
                       "recall on the audit X-rays"],
                      [[folder.relative_to(root).as_posix(), recipe_of(config), attention_cell(metrics),
                        predicted_lungs_cell(metrics), audit_recall_cell(metrics)]
                       for folder, config, metrics in runs if metrics.get("validation")])
    source = ("Every figure below is on each run's validation split (`val` in a column name); a chain is the "
              "manifest's `chain` column, else the source. The test split is scored once per shipped model and "
              "chooses nothing.\n\n")
    return (f"{note}{source}## Mean over seeds (validation split)\n\n{means}\n\n"
            f"## Every run (validation split)\n\n{per_run}\n\n"
            "## Lung attention and external recall (the lung-boxes audit; reported, chooses nothing)\n\n"
            f"{attention}\n")


def experiments_document(root: str | Path) -> str:
    intro = Path(root) / EXPERIMENTS_INTRO
    head = intro.read_text(encoding="utf-8").strip() + "\n\n" if intro.is_file() else "# Experiments\n\n"
    note = ("<!-- Generated by `python -m pipeline report --experiments docs/experiments --out "
            "docs/EXPERIMENTS.md` from the runs' config.json and metrics.json; do not edit by hand. -->\n\n")
    return note + head + experiments_tables(root)


def replace_between_markers(text: str, block: str) -> str:
    """``text`` with the part between README_START and README_END replaced by ``block``."""
    pattern = re.compile(re.escape(README_START) + ".*?" + re.escape(README_END), re.S)
    if not pattern.search(text):
        raise ArtifactError(f"markers {README_START} ... {README_END} not found")
    return pattern.sub(lambda _: f"{README_START}\n{block}\n{README_END}", text)

"""Find the labelled X-rays, check them, and split them: no TensorFlow needed.

Accepted layouts under the data folder (or up to three levels below it, as kagglehub unpacks):
``<Class>/images/*.png`` (the Kaggle layout; ``masks/`` is ignored) or ``<Class>/*.png``; PNG, JPEG
or DICOM files, checked by the decoder every model input goes through (``pipeline.images``).
"""

from __future__ import annotations

import csv
import logging
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .config import (
    BALANCES,
    CANONICAL_CLASSES,
    CHAIN_COLUMN,
    DEFAULT_BALANCE,
    DEFAULT_SPLIT,
    IMAGE_EXTENSIONS,
    MANIFEST_NAME,
    PATIENT_COLUMN,
    SUBGROUP_COLUMNS,
)
from .errors import DataError
from .images import ImageInputError, read_image

log = logging.getLogger(__name__)

SPLITS = ("train", "val", "test")
HOW_TO_GET_DATA = (
    "pass --data-dir with class folders (COVID/, Normal/, ...) or run 'python -m pipeline download'"
)


@dataclass(frozen=True)
class Sample:
    path: str
    label: int
    source: str | None = None
    group: str | None = None
    subgroups: tuple[tuple[str, str], ...] = ()  # (manifest column, value) for SUBGROUP_COLUMNS
    patient: str | None = None
    chain: str | None = None  # the manifest's processing chain; None where it has no chain column

    @property
    def processing_chain(self) -> str | None:
        """The processing chain: the manifest's ``chain`` where given, else the source."""
        return self.chain or self.source


@dataclass
class Dataset:
    root: Path
    classes: list[str]
    samples: list[Sample]
    skipped: list[str] = field(default_factory=list)

    @property
    def labels(self) -> np.ndarray:
        return np.array([s.label for s in self.samples], dtype=int)

    def counts(self, indices: np.ndarray | None = None) -> dict[str, int]:
        labels = self.labels if indices is None else self.labels[indices]
        return {name: int((labels == c).sum()) for c, name in enumerate(self.classes)}

    def composition(self) -> dict[str, dict[str, dict[str, int]]]:
        """Images per class for each source and each subgroup ("column=value"), from the manifest."""
        result: dict[str, dict[str, dict[str, int]]] = {"sources": {}, "subgroups": {}}
        for sample in self.samples:
            name = self.classes[sample.label]
            keys = [("sources", sample.source)] if sample.source else []
            keys += [("subgroups", f"{column}={value}") for column, value in sample.subgroups]
            for kind, key in keys:
                per_class = result[kind].setdefault(key, dict.fromkeys(self.classes, 0))
                per_class[name] += 1
        return result


def canonical_class(folder_name: str) -> str | None:
    """The canonical class a folder name stands for ("viral_pneumonia" -> "Viral Pneumonia")."""
    key = folder_name.lower().replace("_", " ").replace("-", " ").strip()
    for name in CANONICAL_CLASSES:
        if name.lower().replace("_", " ") == key:
            return name
    return None


def _class_folders(folder: Path) -> dict[str, Path]:
    return {c: p for p in folder.iterdir() if p.is_dir() and (c := canonical_class(p.name))}


def find_class_root(data_dir: str | Path) -> Path:
    """The folder that holds the class folders: ``data_dir`` or one up to three levels below."""
    data_dir = Path(data_dir)
    if not data_dir.is_dir():
        raise DataError(f"data folder {str(data_dir)!r} does not exist; {HOW_TO_GET_DATA}")
    candidates = [data_dir, *(p for depth in ("*/", "*/*/", "*/*/*/") for p in sorted(data_dir.glob(depth)))]
    for folder in candidates:
        if folder.is_dir() and not folder.name.startswith(".") and _class_folders(folder):
            return folder
    raise DataError(
        f"no class folders found in {str(data_dir)!r}; expected some of "
        f"{', '.join(CANONICAL_CLASSES)}; {HOW_TO_GET_DATA}"
    )


def _image_files(class_dir: Path) -> list[Path]:
    folder = class_dir / "images" if (class_dir / "images").is_dir() else class_dir
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS)


def _is_readable(path: Path) -> bool:
    try:
        read_image(path)
        return True
    except ImageInputError as exc:
        log.debug("%s", exc.problem)
        return False


def _read_manifest(class_root: Path) -> dict[Path, dict]:
    for folder in (class_root, class_root.parent):
        path = folder / MANIFEST_NAME
        if path.is_file():
            with path.open(newline="", encoding="utf-8") as handle:
                rows = list(csv.DictReader(handle))
            log.info("using %s (%d rows) for groups, patients, sources and chains", path, len(rows))
            return {(folder / row["path"]).resolve(): row for row in rows if row.get("path")}
    return {}


def scan_dataset(data_dir: str | Path, classes: list[str] | None = None, check_images: bool = True) -> Dataset:
    """Every readable image with its class index, source and near-duplicate group.

    ``classes`` fixes the class list (a model's, when evaluating); by default it is the
    canonical classes whose folders exist. Unreadable files are skipped and counted.
    """
    root = find_class_root(data_dir)
    folders = _class_folders(root)
    unknown = sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")
                     and p.name not in {f.name for f in folders.values()})
    if unknown:
        raise DataError(f"folders {unknown} in {str(root)!r} are not classes; valid class folders: "
                        f"{', '.join(CANONICAL_CLASSES)}")
    if classes is None:
        classes = [c for c in CANONICAL_CLASSES if c in folders]
        missing = [c for c in CANONICAL_CLASSES if c not in folders]
        if missing:
            log.warning("no folder for %s in %s: training on %d classes", ", ".join(missing), root, len(classes))
    extra = [c for c in folders if c not in classes]
    if extra:
        raise DataError(f"class folders {extra} in {str(root)!r} are not classes of this model ({', '.join(classes)})")
    manifest = _read_manifest(root)
    files: list[tuple[Path, int]] = []
    for label, name in enumerate(classes):
        if name not in folders:
            continue
        found = _image_files(folders[name])
        if not found:
            raise DataError(f"class folder {str(folders[name])!r} has no images ({', '.join(IMAGE_EXTENSIONS)})")
        files += [(p, label) for p in found]
    readable = [True] * len(files)
    if check_images:
        with ThreadPoolExecutor() as pool:
            readable = list(pool.map(_is_readable, [p for p, _ in files]))
    samples, skipped = [], []
    for (path, label), ok in zip(files, readable):
        if not ok:
            skipped.append(str(path))
            continue
        row = manifest.get(path.resolve(), {})
        subgroups = tuple((c, row[c]) for c in SUBGROUP_COLUMNS if row.get(c) not in (None, ""))
        samples.append(Sample(str(path), label, row.get("source") or None, row.get("group") or None, subgroups,
                              row.get(PATIENT_COLUMN) or None, row.get(CHAIN_COLUMN) or None))
    if skipped:
        log.warning("skipped %d unreadable image files, for example %s", len(skipped), skipped[0])
    if not samples:
        raise DataError(f"no readable images in {str(root)!r}; {HOW_TO_GET_DATA}")
    dataset = Dataset(root, list(classes), samples, skipped)
    log.info("found %d images in %s: %s", len(samples), root, dataset.counts())
    return dataset


def limit_per_class(dataset: Dataset, limit: int, seed: int = 0) -> Dataset:
    """At most ``limit`` images per class, drawn with a fixed seed (for quick runs)."""
    rng = np.random.default_rng(seed)
    labels = dataset.labels
    keep = np.concatenate([rng.permutation(np.flatnonzero(labels == c))[:limit] for c in range(len(dataset.classes))])
    samples = [dataset.samples[i] for i in np.sort(keep)]
    log.info("using at most %d images per class: %d images", limit, len(samples))
    return Dataset(dataset.root, dataset.classes, samples, dataset.skipped)


def linked_components(n: int, *columns: list[str | None] | None) -> np.ndarray:
    """Component index of each of ``n`` samples, where samples sharing a non-empty value in any of
    ``columns`` (e.g. group, patient) are linked (union-find); a sample with no value stays alone."""
    parent = list(range(n))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for values in columns:
        first: dict[str, int] = {}
        for i, value in enumerate(values or []):
            if value:
                parent[root(i)] = root(first.setdefault(value, i))
    return np.unique([root(i) for i in range(n)], return_inverse=True)[1]


def split_keys(samples: list[Sample]) -> list[str]:
    """The manifest columns a split keeps together for ``samples``: those that name at least one sample."""
    values = {"group": [s.group for s in samples], PATIENT_COLUMN: [s.patient for s in samples]}
    return [column for column, named in values.items() if any(named)]


def split_indices(
    labels: np.ndarray,
    groups: list[str | None] | None = None,
    fractions: tuple[float, float, float] = DEFAULT_SPLIT,
    seed: int = 0,
    patients: list[str | None] | None = None,
) -> dict[str, np.ndarray]:
    """Stratified, seeded split that keeps every group and every patient in one split.

    Samples that share a group (near-duplicates) or a patient are joined into one unit, also
    across groups (a patient whose X-rays fall in two groups joins them). Units are placed one by
    one, largest first, each into the split that most lacks images of its classes relative to its
    target share.
    """
    if len(fractions) != 3 or min(fractions) < 0 or not np.isclose(sum(fractions), 1.0):
        raise DataError(f"split fractions {fractions} must be three non-negative numbers summing to 1")
    labels = np.asarray(labels, dtype=int)
    n, k = len(labels), int(labels.max()) + 1
    unit_of = linked_components(n, groups, patients)
    units = int(unit_of.max()) + 1
    counts = np.zeros((units, k))
    np.add.at(counts, (unit_of, labels), 1)
    rng = np.random.default_rng(seed)
    order = rng.permutation(units)
    order = order[np.argsort(-counts[order].sum(axis=1), kind="stable")]
    targets = np.asarray(fractions)[:, None] * counts.sum(axis=0)[None, :]
    filled = np.zeros_like(targets)
    assignment = np.empty(units, dtype=int)
    for unit in order:
        deficit = ((targets - filled) / np.maximum(targets, 1.0) * counts[unit]).sum(axis=1)
        deficit[np.asarray(fractions) == 0] = -np.inf
        split = int(np.argmax(deficit))
        assignment[unit] = split
        filled[split] += counts[unit]
    per_sample = assignment[unit_of]
    return {name: np.flatnonzero(per_sample == s) for s, name in enumerate(SPLITS)}


def sample_weights(samples: list[Sample], balance: str = DEFAULT_BALANCE) -> np.ndarray:
    """Each image's weight in the training loss; the weights average 1.

    "class": every class present carries the same total weight (scikit-learn's "balanced" class
    weights, n / (k * count)). "chain": each class's share is also split equally among the processing
    chains it comes through, so that within a class no chain outweighs another by its image count.
    """
    if balance not in BALANCES:
        raise DataError(f"unknown balance {balance!r}; valid: {', '.join(BALANCES)}")
    labels = [s.label for s in samples]
    cells = [(s.label, s.processing_chain if balance == "chain" else None) for s in samples]
    per_cell = Counter(cells)
    per_class = Counter(label for label, _ in per_cell)  # chains per class
    weights = np.array([1.0 / (per_class[label] * per_cell[cell]) for label, cell in zip(labels, cells)])
    return weights * len(samples) / len(per_class)

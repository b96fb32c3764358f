"""Scoring an uploaded zip on the evaluate page: N labelled X-rays x every saved model, through the page's
own functions (``pipeline.archive.read_labelled_zip``, ``dashboard.scoring.decode_all`` and ``score_all``).

Real X-rays are drawn from ``--data`` (the same number per class, seeded) and zipped in memory as a user would
upload them. Reported: reading the archive, decoding, loading each model as the page does (``Explainer``,
tracing included; once per server), and scoring per model, with the total a user waits for once the models
are loaded. Run it on the machine the figures are for (2 CPU cores here) and quiet.

    nice -n 10 python bench/evaluate_upload.py [--models saved_models] [--images 200]
"""

from __future__ import annotations

import argparse
import io
import sys
import time
import zipfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402

from dashboard import scoring  # noqa: E402
from dashboard.explain import Explainer  # noqa: E402
from pipeline import artifacts  # noqa: E402
from pipeline.archive import read_labelled_zip  # noqa: E402
from pipeline.data import scan_dataset  # noqa: E402

SUBSET = Path(__file__).resolve().parents[2] / "shared" / "data" / "covid19-radiography-subset"


def upload(data_dir: Path, count: int, seed: int = 0) -> bytes:
    """A stored zip of ``count`` X-rays of ``data_dir``, the same number per class, in the Kaggle layout."""
    dataset = scan_dataset(data_dir, check_images=False)
    rng = np.random.default_rng(seed)
    per_class = count // len(dataset.classes)
    chosen = [s for c in range(len(dataset.classes))
              for s in rng.permutation([s for s in dataset.samples if s.label == c])[:per_class]]
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as archive:
        for sample in chosen:
            archive.write(sample.path, Path(sample.path).relative_to(dataset.root).as_posix())
    return buffer.getvalue()


def timed(fn):
    start = time.perf_counter()
    result = fn()
    return result, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", type=Path, default=Path("saved_models"))
    parser.add_argument("--data", type=Path, default=SUBSET)
    parser.add_argument("--images", type=int, default=200)
    args = parser.parse_args()
    data = upload(args.data, args.images)
    archive, read_s = timed(lambda: read_labelled_zip(data))
    folders = artifacts.list_model_dirs(args.models)
    explainers, load_s = {}, {}
    for folder in folders:
        explainers[folder.name], load_s[folder.name] = timed(lambda f=folder: Explainer(f))
    sizes = sorted({e.input_size for e in explainers.values()})
    decoded, decode_s = timed(lambda: scoring.decode_all(archive.images, sizes))
    print(f"{len(archive.images)} images ({len(data) / 2**20:.1f} MB zip): read {read_s:.2f} s, "
          f"decoded {decode_s:.2f} s, {len(decoded.failed)} left out")
    print("| model | load (once per server) | scoring | images/s |")
    print("|---|---|---|---|")
    total = 0.0
    for name, model in explainers.items():
        scorer = scoring.Scorer(name, lambda b, m=model: m.model.predict_on_batch([b]), model.classes,
                                model.input_size)
        _, seconds = timed(lambda s=scorer: scoring.score_all([s], decoded))  # the images include training ones
        total += seconds
        print(f"| {name} | {load_s[name]:.1f} s | {seconds:.1f} s | {len(decoded.images) / seconds:.0f} |")
    waited = read_s + decode_s + total
    print(f"total with the models loaded: {waited:.1f} s for {len(decoded.images)} images x {len(explainers)} "
          f"models ({waited / len(decoded.images) * 100:.0f} s per 100 images)")


if __name__ == "__main__":
    main()

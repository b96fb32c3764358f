"""The shipped samples explained ahead of time: the explain page's first maps without TensorFlow.

On a server that has just started, the explain page would wait for TensorFlow's import and the model's
load (about 10 s on two cores, ``bench/browser.py``) before it could show the sample it opens with, and
Streamlit Community Cloud puts idle apps to sleep, so in a demo that wait is the first thing the audience
sees. ``python -m dashboard.precomputed`` writes into each model folder (``SAMPLES_FILE``) the outputs and
the Grad-CAM and Grad-CAM++ grids of every shipped sample for every class, and into the lung segmenter's
folder its masks. Each file holds the SHA-256 of the model file it came from, and each result the digest
of the decoded image: the page uses a result only for that model file and those pixels, and computes
everything else live (uploads, retrained models, Score-CAM and Layer-CAM). Stored grids are upsampled by
the same ``unit_map`` as live ones, so both paths draw the same maps.

    python -m dashboard.precomputed [--models saved_models]
"""

from __future__ import annotations

import argparse
import hashlib
import logging
import os
import zipfile
from pathlib import Path

import numpy as np

from pipeline import images
from pipeline.config import MODEL_FILE, SAMPLES_FILE
from pipeline.errors import ArtifactError

log = logging.getLogger(__name__)

FORMAT = 1  # raise it when what a result holds changes: files of another format are ignored
MODEL_DIGEST, VERSION = "model_sha256", "format"
PROBABILITIES, GRIDS, SIZE, MASK = "probabilities", "grids", "size", "mask"
Results = dict[str, dict[str, np.ndarray]]  # image digest -> what is stored for that image


def file_digest(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def write(folder: Path, results: Results) -> Path:
    """``results`` into ``folder/SAMPLES_FILE``, stamped with the digest of the folder's model file."""
    arrays = {f"{digest}:{name}": value for digest, stored in results.items() for name, value in stored.items()}
    arrays[MODEL_DIGEST] = np.array(file_digest(folder / MODEL_FILE))
    arrays[VERSION] = np.array(FORMAT)
    staging = folder / f".{SAMPLES_FILE}.tmp"  # one rename, so that a reader never sees half a file
    try:
        with staging.open("wb") as handle:
            np.savez_compressed(handle, **arrays)
        os.replace(staging, folder / SAMPLES_FILE)
    except BaseException:
        staging.unlink(missing_ok=True)
        raise
    return folder / SAMPLES_FILE


def read(folder: Path) -> Results:
    """What ``folder/SAMPLES_FILE`` holds, if it was made from the folder's current model file in this
    format; empty otherwise (missing, stale or unreadable: the page then computes live)."""
    path = folder / SAMPLES_FILE
    if not path.is_file():
        return {}
    try:
        with np.load(path, allow_pickle=False) as stored:
            if int(stored[VERSION]) != FORMAT or str(stored[MODEL_DIGEST]) != file_digest(folder / MODEL_FILE):
                log.info("%s was made from another model file or format; the samples are computed live", path)
                return {}
            results: Results = {}
            for key in stored.files:
                if ":" in key:
                    digest, name = key.split(":", 1)
                    results.setdefault(digest, {})[name] = stored[key]
            return results
    except (OSError, ValueError, KeyError, zipfile.BadZipFile) as exc:
        log.warning("cannot read %s (%s); the samples are computed live", path, exc)
        return {}


def explain(explainer, grays: list[np.ndarray]) -> Results:
    """Outputs, and Grad-CAM and Grad-CAM++ grids of every class, per image (``explainer``: a
    ``dashboard.explain.Explainer``)."""
    results = {}
    for gray in grays:
        image = images.model_input(gray, explainer.input_size)
        grids = [np.stack(explainer.grids(image, index)) for index in range(len(explainer.classes))]
        results[images.image_digest(gray)] = {PROBABILITIES: explainer.probabilities(image),
                                               GRIDS: np.stack(grids), SIZE: np.array(explainer.input_size)}
    return results


def segment(model, size: int, grays: list[np.ndarray]) -> Results:
    """The segmenter's lung mask per image."""
    from .lungs import predict_mask

    return {images.image_digest(gray): {MASK: predict_mask(model, gray, size)} for gray in grays}


def precompute(root: Path) -> list[Path]:
    """The files for every model under ``root`` that can explain images, and for its lung segmenter."""
    from pipeline.lungs import load_segmenter

    from .catalog import scan
    from .explain import Explainer
    from .lungs import segmenter_folder, segmenter_problem
    from .samples import shipped_samples

    grays = [images.decode_image(sample.path.read_bytes(), sample.path.name) for sample in shipped_samples()]
    written = [write(entry.folder, explain(Explainer(entry.folder), grays)) for entry in scan(root).explainable]
    folder = segmenter_folder(root)
    if segmenter_problem(folder) is None:
        model, config = load_segmenter(folder)
        written.append(write(folder, segment(model, int(config["input_size"]), grays)))
    return written


def main(argv: list[str] | None = None) -> int:
    from .catalog import models_root

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", type=Path, default=None, help="the models folder (default: the dashboard's)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    root = args.models or models_root()
    try:
        written = precompute(root)
    except (ArtifactError, OSError) as exc:
        log.error("%s", exc)
        return 1
    if not written:
        log.error("no model that can explain images in %s: nothing written", root)
        return 1
    for path in written:
        log.info("wrote %s", path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

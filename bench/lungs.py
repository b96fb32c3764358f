"""Lung segmenter speed: one image's mask, and the explain page with and without the lung outlines.

1. Segmentation of one image, warm, as the CLI, the audit and the page call it
   (``pipeline.lungs.predict_masks`` on one model input): median of ``--repeats``.
2. What the explain page computes for a new image with one model (``--model``), with the outlines
   and without, in turn: probabilities, Grad-CAM and Grad-CAM++, the overlay panels and the PNG of
   the download button; with outlines also the lung mask, its outline on each panel and the shares.
3. The same page through Streamlit's AppTest, outlines on and off in turn, each run with empty data
   caches (as for a new image) and the models loaded (as on a server that has served once).
   Reported for 2 and 3: medians and the ratio with / without (target <= 1.2x).

    python bench/lungs.py [--models saved_models] [--model SmallCNN] [--repeats 20] [--page-repeats 5]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "tests")]

import numpy as np  # noqa: E402
from drivers import APP, MODELS_DIR_VAR, PAGES  # noqa: E402
from streamlit.testing.v1 import AppTest  # noqa: E402

from pipeline.config import LUNGS_DIR_NAME  # noqa: E402
from pipeline.images import file_to_model_input  # noqa: E402
from pipeline.lungs import load_segmenter, predict_masks  # noqa: E402

SAMPLE = REPO / "dashboard" / "samples"
PAGE_TIMEOUT_S = 900  # a page run on two cores shared with other jobs


def segmentation_ms(folder: Path, repeats: int) -> tuple[float, float]:
    """(first call, warm median) in milliseconds for one image."""
    model, config = load_segmenter(folder)
    image = file_to_model_input(next(SAMPLE.rglob("*.jpg")), int(config["input_size"]))[None]
    start = time.perf_counter()
    predict_masks(model, image)
    first = time.perf_counter() - start
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        predict_masks(model, image)
        times.append(time.perf_counter() - start)
    return first * 1000, statistics.median(times) * 1000


def compute_seconds(models: Path, name: str, repeats: int) -> tuple[float, float]:
    """Median seconds of the page's computation for a new image, with the outlines and without."""
    from dashboard import lungs, overlay
    from dashboard.explain import Explainer
    from pipeline import images

    explainer, (segmenter, config) = Explainer(models / name), load_segmenter(models / LUNGS_DIR_NAME)
    data = next(SAMPLE.rglob("*.jpg")).read_bytes()

    def page(outlines: bool) -> None:
        gray = images.decode_image(data, "x.jpg")
        image = images.model_input(gray, explainer.input_size)
        maps = explainer.maps(image, int(np.argmax(explainer.probabilities(image))))
        panels = overlay.attention_panels(images.resize_gray(gray, overlay.DISPLAY_SIZE), maps, 0.45, "Jet",
                                          overlay.MAP_TITLES)
        if outlines:
            predicted = lungs.PredictedLungs(lungs.predict_mask(segmenter, gray, int(config["input_size"])))
            panels = lungs.outline_panels(panels, predicted.mask)
            predicted.caption(overlay.MAP_TITLES, maps)
        overlay.panel_png(panels, "Jet", "caption")

    return interleaved(page, repeats)


def interleaved(run, repeats: int) -> tuple[float, float]:
    """Median seconds of ``run(True)`` and ``run(False)``, called in turn (after one warm-up each)."""
    run(True), run(False)
    times: dict[bool, list[float]] = {True: [], False: []}
    for _ in range(repeats):
        for on in (True, False):
            start = time.perf_counter()
            run(on)
            times[on].append(time.perf_counter() - start)
    return statistics.median(times[True]), statistics.median(times[False])


def page_seconds(models: Path, name: str, repeats: int) -> tuple[float, float]:
    """Median seconds of the explain page (AppTest) with the outlines on, then off, on a models folder
    that holds the classifier ``name`` and the segmenter only (links to ``models``)."""
    import tempfile

    import streamlit as st

    root = Path(tempfile.mkdtemp())
    for folder in (name, LUNGS_DIR_NAME):
        (root / folder).symlink_to((models / folder).resolve(), target_is_directory=True)
    os.environ[MODELS_DIR_VAR] = str(root)
    app = AppTest.from_file(str(APP), default_timeout=PAGE_TIMEOUT_S)
    app.run()
    app.switch_page(PAGES[1])
    app.run()  # loads both models once
    def run(on: bool) -> None:
        app.toggle(key="explain-predicted-lungs").set_value(on)
        st.cache_data.clear()
        app.run(timeout=PAGE_TIMEOUT_S)
        assert not app.exception, [e.value for e in app.exception]

    return interleaved(run, repeats)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", type=Path, default=REPO / "saved_models")
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--page-repeats", type=int, default=5)
    parser.add_argument("--model", default="SmallCNN", help="the classifier of the page (SmallCNN: the fastest, "
                        "so the outlines weigh most)")
    args = parser.parse_args()
    first, warm = segmentation_ms(args.models / LUNGS_DIR_NAME, args.repeats)
    print(f"segmentation of one image: first call {first:.0f} ms, warm {warm:.1f} ms (median of {args.repeats}; "
          "target <= 50 ms)")
    for what, measure, repeats in (("page computation", compute_seconds, args.repeats),
                                   ("page through AppTest", page_seconds, args.page_repeats)):
        with_outlines, without = measure(args.models, args.model, repeats)
        print(f"{what}, {args.model}, new image: with outlines {with_outlines * 1000:.0f} ms, without "
              f"{without * 1000:.0f} ms: {with_outlines / without:.2f}x (median of {repeats}; target <= 1.2x)")
    print(f"cores: {len(os.sched_getaffinity(0))}, load average {np.round(os.getloadavg(), 1).tolist()}")


if __name__ == "__main__":
    main()

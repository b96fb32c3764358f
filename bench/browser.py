"""The explain page as a user in a browser feels it, against a bare upload page, in one run.

Headless Chromium (as the browser tests) against servers started here:
- floor: ``bench/floor_app.py?upload``, a page that only decodes an upload and shows it three times;
- one model: the explain page in the one-model view (its default model), an X-ray uploaded -> maps shown;
- all models: the same in the all-models view;
- cold: a fresh server; the comparison page opened, read for ``--dwell`` seconds, then the explain page
  opened from the sidebar -> its first maps (the sample it explains by itself), timed from the click;
  then a first upload -> its maps, which need the model loaded (the sample's may come precomputed).
The three warm pages are timed in turn within each repeat; each upload is a new image (a shipped sample
with a few pixels changed), so no cache answers it. "Shown": every image of the page but the colour scale
replaced, all loaded in the browser, none stale (the script run is over), and on the explain page its caption
naming the upload (not the sample it shows when no file is given). Prints medians, the app server's
peak memory, the load average, and last the ratios against the targets.

    python bench/browser.py [--models saved_models] [--repeats 5] [--cold-repeats 2] [--dwell 10]
"""

from __future__ import annotations

import argparse
import io
import itertools
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "tests")]

from drivers import CHROMIUM, CHROMIUM_ARGS, NO_STALE_ELEMENTS, RENDER_TIMEOUT_MS, UPLOAD_INPUT, serve  # noqa: E402
from playwright.sync_api import Page, sync_playwright  # noqa: E402

from dashboard.samples import SAMPLES_DIR  # noqa: E402

FLOOR_APP = REPO / "bench" / "floor_app.py"
TABLE = '[data-testid="stDataFrame"]'
UPLOAD_CAPTION = "Explaining your upload."
VIEWPORT = {"width": 1400, "height": 1800}
IMAGES = "() => [...document.querySelectorAll('[data-testid=\"stImage\"] img')].map(i => i.src)"
# Every image but one (the colour scale) is new, all loaded, none stale; at least one image on the floor page;
# the caption (where one is given) shown.
SHOWN = """({before, caption}) => {
  const images = [...document.querySelectorAll('[data-testid="stImage"] img')];
  const fresh = images.filter(i => !before.includes(i.src)).length;
  const captions = [...document.querySelectorAll('[data-testid="stCaptionContainer"]')].map(c => c.innerText.trim());
  return (caption === null || captions.includes(caption))
    && images.length >= before.length && fresh >= Math.max(before.length - 1, 1)
    && images.every(i => i.complete && i.naturalWidth > 0)
    && document.querySelectorAll('[data-stale="true"]').length === 0;
}"""
MAPS_SHOWN = """() => {
  const panels = [...document.querySelectorAll('[data-testid="stImage"]')];
  const map = panels.find(p => p.innerText.trim().startsWith('Grad-CAM++'));
  return map !== undefined && map.querySelector('img').complete && map.querySelector('img').naturalWidth > 0
    && document.querySelectorAll('[data-stale="true"]').length === 0;
}"""


def uploads() -> Iterator[tuple[str, bytes]]:
    """Endless new PNGs: the shipped samples in turn, each with a few pixels set from a counter."""
    grays = [np.asarray(Image.open(path).convert("L")) for path in sorted(SAMPLES_DIR.glob("*.jpg"))]
    for index in itertools.count():
        gray = grays[index % len(grays)].copy()
        gray[0, :8] = np.frombuffer(index.to_bytes(8, "little"), dtype=np.uint8)
        buffer = io.BytesIO()
        Image.fromarray(gray).save(buffer, format="PNG")
        yield f"xray-{index}.png", buffer.getvalue()


def settled_images(page: Page) -> list[str]:
    """The addresses of the page's images, once it has settled."""
    page.wait_for_function(NO_STALE_ELEMENTS)
    return page.evaluate(IMAGES)


def time_upload(page: Page, name: str, data: bytes, caption: str | None = UPLOAD_CAPTION) -> float:
    """Seconds from handing the file to the uploader to the page showing what it shows for it."""
    before = settled_images(page)
    start = time.perf_counter()
    page.locator(UPLOAD_INPUT).set_input_files(files=[{"name": name, "mimeType": "image/png", "buffer": data}])
    page.wait_for_function(SHOWN, arg={"before": before, "caption": caption})
    return time.perf_counter() - start


def open_page(browser, url: str, ready: str) -> Page:
    page = browser.new_context(viewport=VIEWPORT).new_page()
    page.set_default_timeout(RENDER_TIMEOUT_MS)
    page.goto(url, timeout=RENDER_TIMEOUT_MS)
    page.locator(UPLOAD_INPUT).wait_for(state="attached")
    if ready:
        page.wait_for_function(ready)
    return page


def peak_rss_mb(pid: int) -> float:
    line = next(line for line in Path(f"/proc/{pid}/status").read_text().splitlines() if line.startswith("VmHWM:"))
    return int(line.split()[1]) / 1024


def warm(browser, models: Path, logs: Path, repeats: int, images) -> dict[str, list[float] | float | str]:
    """Uploads timed in turn on the floor page and the explain page's two views, servers warmed first."""
    with serve(models, logs / "floor.log", FLOOR_APP) as floor, serve(models, logs / "app.log") as app:
        pages = {"floor": open_page(browser, f"{floor.base}/?upload", ""),
                 "one model": open_page(browser, f"{app.base}/explain", MAPS_SHOWN),
                 "all models": open_page(browser, f"{app.base}/explain", MAPS_SHOWN)}
        pages["all models"].get_by_text("All models", exact=True).click()
        pages["all models"].wait_for_function(MAPS_SHOWN)
        captions = {"floor": None, "one model": UPLOAD_CAPTION, "all models": UPLOAD_CAPTION}
        for view, page in pages.items():  # untimed: loads every model and the browser's code for each element
            time_upload(page, *next(images), captions[view])
        times = {view: [] for view in pages}
        for repeat in range(repeats):
            for view, page in pages.items():
                times[view].append(time_upload(page, *next(images), captions[view]))
            print(f"repeat {repeat + 1}: " + ", ".join(f"{view} {times[view][-1]:.2f} s" for view in times))
        model = pages["one model"].get_by_role("combobox", name="Model", exact=True).input_value()
        return {**times, "model": model, "memory": peak_rss_mb(app.process.pid)}


def cold(browser, models: Path, logs: Path, dwell: float, images) -> tuple[float, float]:
    """Seconds from clicking the explain page in the sidebar of a fresh server's comparison page to its maps,
    then from handing it a first upload to that upload's maps (which need the model in memory)."""
    with serve(models, logs / "cold.log") as app:
        page = browser.new_context(viewport=VIEWPORT).new_page()
        page.set_default_timeout(RENDER_TIMEOUT_MS)
        page.goto(app.base, timeout=RENDER_TIMEOUT_MS)
        page.locator(TABLE).first.wait_for(state="visible")
        time.sleep(dwell)
        start = time.perf_counter()
        page.locator('[data-testid="stSidebarNavLink"]', has_text="Explain an X-ray").click()
        page.wait_for_function(MAPS_SHOWN)
        seconds = time.perf_counter() - start
        upload = time_upload(page, *next(images))
        page.context.close()
    for line in app.log.read_text().splitlines():  # where the time went: the warm-up's steps, as the server logs them
        if "warm-up:" in line:
            print(f"  {line.split('warm-up: ')[1]}")
    return seconds, upload


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", type=Path, default=REPO / "saved_models")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--cold-repeats", type=int, default=2)
    parser.add_argument("--dwell", type=float, default=10.0, help="seconds spent on the comparison page")
    args = parser.parse_args()
    print(f"load average at the start: {' '.join(f'{load:.1f}' for load in os.getloadavg())}")
    images = uploads()
    with sync_playwright() as playwright, tempfile.TemporaryDirectory() as logs:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        first, first_uploads = [], []
        for repeat in range(args.cold_repeats):
            maps, upload = cold(browser, args.models, Path(logs), args.dwell, images)
            first.append(maps)
            first_uploads.append(upload)
            print(f"cold {repeat + 1}: first maps {maps:.2f} s after the click ({args.dwell:g} s on the "
                  f"comparison page), then a first upload {upload:.2f} s")
        measured = warm(browser, args.models, Path(logs), args.repeats, images)
        browser.close()
    floor, one, every = (statistics.median(measured[view]) for view in ("floor", "one model", "all models"))
    cold_first = statistics.median(first) if first else float("nan")
    cold_upload = statistics.median(first_uploads) if first_uploads else float("nan")
    print(f"load average at the end: {' '.join(f'{load:.1f}' for load in os.getloadavg())}")
    print(f"floor (decode an upload, show it three times): {floor:.2f} s")
    print(f"upload -> maps, one model ({measured['model']}): {one:.2f} s")
    print(f"upload -> maps, all models: {every:.2f} s")
    print(f"first maps after a start, through the comparison page: {cold_first:.2f} s")
    print(f"then a first upload -> maps: {cold_upload:.2f} s ({cold_upload / one:.2f}x a warm upload)")
    print(f"peak memory of the app server with every model and its maps: {measured['memory']:.0f} MB "
          "(target <= 1,300 MB)")
    print(f"ratio one model / floor: {one / floor:.2f}x (target <= 2x)")
    print(f"ratio first maps after a start / one model: {cold_first / one:.2f}x (target <= 2x)")
    print(f"ratio all models / one model: {every / one:.2f}x (target <= 2.5x)")


if __name__ == "__main__":
    main()

"""Users of the served dashboard: one alone, then five at once; its memory; the traces uploads leave.

``serve_users`` starts ``streamlit run`` on 127.0.0.1 with the given models, drives one
headless Chromium with one context per user, and checks each page against the outputs
computed in this process for the same image and model. Before the first upload and after the
last one it lists every file under the system temp folder and the repository, and searches the
new or changed ones, and the server log, for each upload's name and bytes.
"""

from __future__ import annotations

import asyncio
import io
import os
import stat
import tempfile
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from drivers import (
    CHROMIUM,
    CHROMIUM_ARGS,
    REPO,
    Shown,
    explain_in_browser,
    is_healthy,
    rss_bytes,
    serve,
)
from PIL import Image
from synthetic import class_image
from upload_corpus import encode

from dashboard.overlay import DISPLAY_SIZE
from dashboard.samples import shipped_samples
from pipeline.images import decode_image, model_input, resize_gray

if TYPE_CHECKING:
    from dashboard.explain import Explainer

MODELS = ("MobileNet", "SmallCNN")
RSS_RATIO_LIMIT = 1.2
SAME_IMAGE_DISTANCE = 4.0  # the panel is re-encoded for the browser: a few levels of difference at most
NEEDLE_BYTES = 256  # a slice this long from the middle of an upload identifies it
CHUNK = 1 << 22


@dataclass(frozen=True)
class UserUpload:
    name: str
    data: bytes
    model: str

    def needles(self) -> dict[str, bytes]:
        """What would betray this upload: its name, a slice of its bytes, a row of its decoded pixels."""
        middle = max(0, len(self.data) // 2 - NEEDLE_BYTES // 2)
        gray = decode_image(self.data, self.name)
        return {f"name of {self.name}": self.name.encode(),
                f"bytes of {self.name}": self.data[middle:middle + NEEDLE_BYTES],
                f"pixels of {self.name}": gray[len(gray) // 2].tobytes()}


@dataclass(frozen=True)
class UserResult:
    upload: UserUpload
    expected: dict[str, str]  # class -> percentage, computed in this process
    expected_class: str
    shown: Shown
    nearest: str  # the upload whose image the "Original" panel is closest to
    distance: float  # mean absolute difference (0-255) between that panel and this user's image

    @property
    def correct(self) -> bool:
        shown = self.shown
        return (shown.title == f"{self.upload.model}: model outputs" and shown.outputs == self.expected
                and shown.explained_class == self.expected_class and self.nearest == self.upload.name
                and self.distance <= SAME_IMAGE_DISTANCE and shown.images >= 4
                and not shown.errors and not shown.exceptions)


@dataclass(frozen=True)
class Traces:
    roots: list[Path]
    files_before: int
    new_or_changed: list[str]
    holding_upload: list[str]  # "path: what", for new or changed files holding an upload's name or bytes
    in_server_log: list[str]  # what of the uploads the server log holds


@dataclass(frozen=True)
class ServedRun:
    first: UserResult  # the user alone
    together: list[UserResult]  # the users at once
    rss_one: int  # bytes, server with its children, after the first user
    rss_all: int  # after the users at once
    alive: bool  # the server still runs and answers its health check
    traces: Traces

    @property
    def rss_ratio(self) -> float:
        return self.rss_all / self.rss_one


def user_uploads(token: str) -> tuple[UserUpload, list[UserUpload]]:
    """A random-noise PNG for the user alone; the shipped samples and a generated X-ray for the others.

    ``token`` makes every name unique, so that finding one on disk or in a log means this run put it there.
    """
    noise = np.random.default_rng().integers(0, 256, (256, 256), dtype=np.uint8)
    alone = UserUpload(f"privacy-probe-{token}.png", encode(Image.fromarray(noise, "L")), MODELS[0])
    generated = encode(Image.fromarray(class_image(1, 256, np.random.default_rng(5)), "L"))
    files = [(sample.path.suffix, sample.path.read_bytes()) for sample in shipped_samples()] + [(".png", generated)]
    together = [UserUpload(f"user-{i + 1}-{token}{suffix}", data, MODELS[i % len(MODELS)])
                for i, (suffix, data) in enumerate(files)]
    return alone, together


def snapshot(roots: list[Path]) -> dict[str, tuple[int, int]]:
    """Path -> (size, modification time in ns) of every regular file under ``roots``."""
    files = {}
    for root in roots:
        for folder, _, names in os.walk(root):
            for name in names:
                path = os.path.join(folder, name)
                try:
                    info = os.lstat(path)
                except OSError:  # removed while listing
                    continue
                if stat.S_ISREG(info.st_mode):
                    files[path] = (info.st_size, info.st_mtime_ns)
    return files


def found_in(path: str, needles: dict[str, bytes]) -> list[str]:
    """Which needles the file holds, read in chunks that overlap by the longest needle."""
    overlap = max(len(needle) for needle in needles.values())
    found, tail = set(), b""
    try:
        with open(path, "rb") as handle:
            while chunk := handle.read(CHUNK):
                window = tail + chunk
                found |= {what for what, needle in needles.items() if needle in window}
                tail = window[-overlap:]
    except OSError:  # removed or unreadable since the listing
        return []
    return sorted(found)


def _traces(roots: list[Path], before: dict[str, tuple[int, int]], after: dict[str, tuple[int, int]],
            log: Path, needles: dict[str, bytes]) -> Traces:
    changed = [path for path, stamp in after.items() if before.get(path) != stamp]
    holding = [f"{path}: {what}" for path in changed for what in found_in(path, needles)]
    return Traces(roots, len(before), sorted(changed), holding, found_in(str(log), needles))


def _view(upload: UserUpload) -> np.ndarray:
    return resize_gray(decode_image(upload.data, upload.name), DISPLAY_SIZE).astype(np.float64)


def _check(explainers: dict[str, Explainer], uploads: list[UserUpload], upload: UserUpload,
           shown: Shown) -> UserResult:
    """Compare one page with the outputs of its model for its image, computed here, and with every image."""
    explainer = explainers[upload.model]
    gray = decode_image(upload.data, upload.name)
    probabilities = explainer.probabilities(model_input(gray, explainer.input_size))
    expected = {name: f"{value:.1%}" for name, value in zip(explainer.classes, probabilities)}
    top = explainer.classes[int(np.argmax(probabilities))]
    try:
        panel = np.asarray(Image.open(io.BytesIO(shown.original)).convert("L"), dtype=np.float64)
    except OSError:  # no panel came back
        return UserResult(upload, expected, top, shown, "", np.inf)
    distances = {other.name: float(np.abs(panel - _view(other)).mean()) if panel.shape == (DISPLAY_SIZE,) * 2
                 else np.inf for other in uploads}
    nearest = min(distances, key=distances.get)
    return UserResult(upload, expected, top, shown, nearest, distances[upload.name])


def _failed(exc: BaseException) -> Shown:
    return Shown("", {}, "", b"", 0, [f"{type(exc).__name__}: {exc}"], 0)


async def _drive(base: str, pid: int, alone: UserUpload,
                 together: list[UserUpload]) -> tuple[Shown, list[Shown], int, int]:
    """The user alone, then the others at once; the server's memory after each step."""
    from playwright.async_api import async_playwright

    async with async_playwright() as driver:
        browser = await driver.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, timeout=60_000)
        try:
            first = await explain_in_browser(browser, base, alone.name, alone.data, alone.model)
            rss_one = rss_bytes(pid)
            shown = await asyncio.gather(*(explain_in_browser(browser, base, u.name, u.data, u.model)
                                           for u in together), return_exceptions=True)
            rss_all = rss_bytes(pid)
        finally:
            await browser.close()
    return first, [s if isinstance(s, Shown) else _failed(s) for s in shown], rss_one, rss_all


def serve_users(models_dir: Path, workdir: Path) -> ServedRun:
    """One user, then five at once, on the dashboard served with the models under ``models_dir``."""
    from dashboard.explain import Explainer

    explainers = {name: Explainer(models_dir / name) for name in MODELS}
    alone, together = user_uploads(uuid.uuid4().hex[:12])
    needles = {what: needle for upload in (alone, *together) for what, needle in upload.needles().items()}
    roots = [Path(tempfile.gettempdir()), REPO]
    workdir.mkdir(parents=True, exist_ok=True)
    with serve(models_dir, workdir / "server.log") as server:
        before = snapshot(roots)
        first, shown, rss_one, rss_all = asyncio.run(_drive(server.base, server.process.pid, alone, together))
        alive = server.process.poll() is None and is_healthy(server.base)
        after = snapshot(roots)
    uploads = [alone, *together]
    results = [_check(explainers, uploads, upload, page) for upload, page in zip(uploads, (first, *shown))]
    return ServedRun(results[0], results[1:], rss_one, rss_all, alive,
                     _traces(roots, before, after, server.log, needles))

"""Ways to drive the dashboard: Streamlit's AppTest, the app served on 127.0.0.1, headless Chromium."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urljoin

from streamlit.testing.v1 import AppTest

if TYPE_CHECKING:
    from playwright.async_api import Browser

REPO = Path(__file__).resolve().parents[1]
APP = REPO / "dashboard" / "streamlit_app.py"
PAGES = ("views/compare.py", "views/explain.py", "views/data.py", "views/cards.py", "views/evaluate.py")
MODELS_DIR_VAR = "XRAY_MODELS_DIR"
PAGE_TIMEOUT_S = 120  # the first run of a page that loads TensorFlow and a model
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]
START_TIMEOUT_S = 60
STOP_TIMEOUT_S = 15
RENDER_TIMEOUT_MS = 90_000
UPLOAD_INPUT = '[data-testid="stFileUploaderDropzoneInput"]'
NO_STALE_ELEMENTS = "document.querySelectorAll('[data-stale=\"true\"]').length === 0"
IMAGES_LOADED = (
    "(n) => { const images = [...document.querySelectorAll('[data-testid=\"stImage\"] img')];"
    " return images.length >= n && images.every(i => i.complete && i.naturalWidth > 0); }"
)


def open_page(page: str = PAGES[0]) -> AppTest:
    """The app through AppTest, switched to ``page`` (one of ``PAGES``) and run."""
    app = AppTest.from_file(str(APP), default_timeout=30)
    app.run()
    if page != PAGES[0]:
        app.switch_page(page)
        app.run(timeout=PAGE_TIMEOUT_S)
    return app


def texts(elements) -> str:
    return "\n".join(str(element.value) for element in elements)


@contextlib.contextmanager
def models_dir_env(folder: Path) -> Iterator[None]:
    """``XRAY_MODELS_DIR`` set to ``folder`` inside the block, restored after it."""
    before = os.environ.get(MODELS_DIR_VAR)
    os.environ[MODELS_DIR_VAR] = str(folder)
    try:
        yield
    finally:
        if before is None:
            os.environ.pop(MODELS_DIR_VAR, None)
        else:
            os.environ[MODELS_DIR_VAR] = before


class ServerError(RuntimeError):
    """The dashboard did not start."""


@dataclass(frozen=True)
class Server:
    base: str  # http://127.0.0.1:<port>
    process: subprocess.Popen
    log: Path  # stdout and stderr of the server


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def is_healthy(base: str) -> bool:
    try:
        with urllib.request.urlopen(f"{base}/_stcore/health", timeout=2) as reply:
            return reply.read().strip() == b"ok"
    except OSError:
        return False


def wait_until_healthy(server: subprocess.Popen, base: str) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise ServerError(f"streamlit exited with code {server.returncode}")
        if is_healthy(base):
            return
        time.sleep(0.5)
    raise ServerError(f"streamlit did not answer within {START_TIMEOUT_S} s")


@contextlib.contextmanager
def serve(models_dir: Path, log: Path, script: Path = APP) -> Iterator[Server]:
    """``streamlit run`` the dashboard (or another ``script``) on a free port of 127.0.0.1; stopped on exit,
    whatever happens."""
    port = free_port()
    env = {**os.environ, MODELS_DIR_VAR: str(models_dir)}
    command = [sys.executable, "-m", "streamlit", "run", str(script), "--server.port", str(port),
               "--server.address", "127.0.0.1", "--server.headless", "true", "--browser.gatherUsageStats", "false"]
    with log.open("w") as handle:
        process = subprocess.Popen(command, cwd=REPO, env=env, stdout=handle, stderr=subprocess.STDOUT)
        try:
            base = f"http://127.0.0.1:{port}"
            wait_until_healthy(process, base)
            yield Server(base, process, log)
        finally:
            process.terminate()
            try:
                process.wait(timeout=STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=STOP_TIMEOUT_S)


def _children(pid: int) -> list[int]:
    found = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        with contextlib.suppress(OSError):
            found += [int(child) for child in (task / "children").read_text().split()]
    return found


def rss_bytes(pid: int) -> int:
    """Resident memory of a process and all its descendants, from ``/proc/<pid>/status`` VmRSS."""
    total = 0
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            total = int(line.split()[1]) * 1024
    return total + sum(rss_bytes(child) for child in _children(pid))


@dataclass(frozen=True)
class Shown:
    """What one browser page of the explain view shows after an upload."""

    title: str  # of the outputs chart: "<model>: model outputs"
    outputs: dict[str, str]  # class -> the percentage on its bar
    explained_class: str  # "Explain the class": the predicted class unless changed
    original: bytes  # the file of the image shown in the "Original" panel
    images: int
    errors: list[str]
    exceptions: int


async def explain_in_browser(browser: Browser, base: str, name: str, data: bytes, model: str) -> Shown:
    """A new browser context (a new user) opens the explain page, uploads ``data`` and picks ``model``.

    The upload goes from memory, never from a file.
    """
    context = await browser.new_context(viewport={"width": 1400, "height": 1800})
    try:
        page = await context.new_page()
        page.set_default_timeout(RENDER_TIMEOUT_MS)
        await page.goto(f"{base}/explain", timeout=RENDER_TIMEOUT_MS)
        uploader = page.locator(UPLOAD_INPUT)
        await uploader.wait_for(state="attached")
        await uploader.set_input_files(files=[{"name": name, "mimeType": "application/octet-stream", "buffer": data}])
        await page.get_by_text("Explaining your upload.").wait_for()
        await page.wait_for_function(NO_STALE_ELEMENTS)
        chosen = page.get_by_role("combobox", name="Model", exact=True)
        if await chosen.input_value() != model:
            await chosen.click()
            await page.get_by_role("option", name=model, exact=True).click()
        await page.get_by_text(f"{model}: model outputs", exact=True).wait_for()
        await page.wait_for_function(NO_STALE_ELEMENTS)
        await page.wait_for_function(IMAGES_LOADED, arg=4)
        bars = [text.split(": ") for text in await page.get_by_test_id("stProgress").all_inner_texts()]
        original = page.get_by_test_id("stImage").filter(has_text="Original").locator("img")
        source = await original.get_attribute("src")
        return Shown(
            title=await page.get_by_text(f"{model}: model outputs", exact=True).inner_text(),
            outputs={name.strip(): value.strip() for name, value in bars},
            explained_class=await page.get_by_role("combobox", name="Explain the class", exact=True).input_value(),
            original=await (await context.request.get(urljoin(f"{base}/", source))).body(),
            images=await page.locator('[data-testid="stImage"] img').count(),
            errors=await page.locator('[data-testid="stAlertContentError"]').all_inner_texts(),
            exceptions=await page.locator('[data-testid="stException"]').count(),
        )
    finally:
        await context.close()

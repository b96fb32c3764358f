"""The dashboard served for real and driven by headless Chromium: upload an X-ray, see both maps."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
APP = REPO / "dashboard" / "streamlit_app.py"
CHROMIUM = Path("/usr/bin/chromium")
SAMPLE = REPO / "dashboard" / "samples" / "covid19-ieee8023-bb0e626a.jpg"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]
START_TIMEOUT_S = 60
RENDER_TIMEOUT_MS = 90_000

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not CHROMIUM.exists(), reason=f"{CHROMIUM} is not installed"),
]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_until_healthy(server: subprocess.Popen, base: str) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if server.poll() is not None:
            pytest.fail(f"streamlit exited with code {server.returncode}")
        try:
            with urllib.request.urlopen(f"{base}/_stcore/health", timeout=2) as reply:
                if reply.read().strip() == b"ok":
                    return
        except OSError:
            time.sleep(0.5)
    pytest.fail(f"streamlit did not answer within {START_TIMEOUT_S} s")


@pytest.fixture
def served_app(models_dir, tmp_path):
    port = free_port()
    env = {**os.environ, "XRAY_MODELS_DIR": str(models_dir)}
    command = [sys.executable, "-m", "streamlit", "run", str(APP), "--server.port", str(port),
               "--server.address", "127.0.0.1", "--server.headless", "true", "--browser.gatherUsageStats", "false"]
    with (tmp_path / "server.log").open("w") as log:
        server = subprocess.Popen(command, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT)
        try:
            base = f"http://127.0.0.1:{port}"
            wait_until_healthy(server, base)
            yield base
        finally:
            server.terminate()
            try:
                server.wait(timeout=15)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait(timeout=15)


def test_upload_an_x_ray_and_see_both_maps(served_app, tmp_path):
    playwright = pytest.importorskip("playwright.sync_api")
    with playwright.sync_playwright() as driver:
        browser = driver.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, timeout=60_000)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1800})
            page.set_default_timeout(RENDER_TIMEOUT_MS)
            page.goto(f"{served_app}/explain", timeout=RENDER_TIMEOUT_MS)
            uploader = page.locator('[data-testid="stFileUploaderDropzoneInput"]')
            uploader.wait_for(state="attached")
            uploader.set_input_files(str(SAMPLE))
            page.get_by_text("Explaining your upload.").wait_for()
            page.wait_for_function("document.querySelectorAll('[data-stale=\"true\"]').length === 0")
            page.get_by_text("Grad-CAM++", exact=True).wait_for()
            page.wait_for_function(
                "(() => { const images = [...document.querySelectorAll('[data-testid=\"stImage\"] img')];"
                " return images.length >= 4 && images.every(i => i.complete && i.naturalWidth > 0); })()")
            page.screenshot(path=str(tmp_path / "explain.png"), full_page=True)
            text = page.locator("body").inner_text()
            assert page.get_by_text("Grad-CAM", exact=True).count() == 1
            assert page.locator('[data-testid="stException"]').count() == 0
            assert "Traceback" not in text and "Exception" not in text
            assert page.locator('[data-testid="stAlertContentError"]').count() == 0
        finally:
            browser.close()
    assert (tmp_path / "explain.png").stat().st_size > 10_000

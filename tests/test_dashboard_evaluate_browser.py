"""Evaluate your X-rays in a real browser (one served app for the module): a zip of labelled images gives the
figures of `python -m pipeline evaluate` in the downloaded CSV; each bad archive gets its message."""

from __future__ import annotations

import contextlib
import io
import json

import numpy as np
import pandas as pd
import pytest
from archives import bad_archives, folder_zip
from drivers import CHROMIUM, CHROMIUM_ARGS, NO_STALE_ELEMENTS, RENDER_TIMEOUT_MS, UPLOAD_INPUT, serve
from PIL import Image

from pipeline.__main__ import main as run_pipeline

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not CHROMIUM.exists(), reason=f"{CHROMIUM} is not installed"),
]
ERROR = '[data-testid="stAlertContentError"]'
SCORING_TIMEOUT_MS = 300_000  # the first upload loads TensorFlow and both models in the server


@pytest.fixture(scope="module")
def page(models_dir, tmp_path_factory):
    """One served app on the tiny models, one browser page on the evaluate page."""
    playwright = pytest.importorskip("playwright.sync_api")
    with serve(models_dir, tmp_path_factory.mktemp("log") / "server.log") as server, \
            playwright.sync_playwright() as driver:
        browser = driver.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, timeout=60_000)
        try:
            tab = browser.new_page(viewport={"width": 1400, "height": 1800}, accept_downloads=True)
            tab.set_default_timeout(RENDER_TIMEOUT_MS)
            tab.goto(f"{server.base}/evaluate", timeout=RENDER_TIMEOUT_MS)
            tab.locator(UPLOAD_INPUT).wait_for(state="attached")
            yield tab
        finally:
            browser.close()


def send(page, name: str, data: bytes) -> None:
    page.locator(UPLOAD_INPUT).set_input_files(files=[{"name": name, "mimeType": "application/zip", "buffer": data}])


def evaluate_cli(model: str, folder) -> dict:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert run_pipeline(["evaluate", "--model", model, "--data-dir", str(folder), "--json"]) == 0
    return json.loads(out.getvalue())


def test_a_zip_gives_the_figures_of_the_cli_and_downloads_them(page, models_dir, image_folder):
    send(page, "xrays.zip", folder_zip(image_folder, "mine/"))
    button = page.get_by_role("button", name="Download the figures per model (CSV)")
    button.wait_for(timeout=SCORING_TIMEOUT_MS)
    page.wait_for_function(NO_STALE_ELEMENTS)
    with page.expect_download() as download:
        button.click()
    table = pd.read_csv(download.value.path()).set_index("model")
    for name in ("MobileNet", "SmallCNN"):
        cli = evaluate_cli(str(models_dir / name), image_folder)
        assert table.loc[name, "n_images"] == cli["n_images"] == 72
        assert table.loc[name, "accuracy"] == pytest.approx(cli["accuracy"], abs=1e-12)
        assert table.loc[name, "macro_f1"] == pytest.approx(cli["macro_f1"], abs=1e-12)
        assert table.loc[name, "recall COVID"] == pytest.approx(cli["per_class"]["COVID"]["recall"], abs=1e-12)
    with page.expect_download() as download:
        page.get_by_role("button", name="Download the outputs per image and model (CSV)").click()
    rows = pd.read_csv(download.value.path())
    assert len(rows) == 144 and {"model", "path", "label", "predicted", "p_COVID"} <= set(rows.columns)
    assert page.locator(ERROR).count() == 0


def test_each_bad_archive_gets_its_message(page):
    buffer = io.BytesIO()
    Image.fromarray(np.full((48, 48), 90, np.uint8)).save(buffer, format="PNG")
    archives = bad_archives(buffer.getvalue())
    assert len({words for _, words in archives.values()}) == len(archives), "the previous message would match"
    for kind, (data, words) in archives.items():
        send(page, f"{kind.replace(' ', '-')}.zip", data)
        page.locator(ERROR).filter(has_text=words).wait_for()
        page.wait_for_function(NO_STALE_ELEMENTS)
        assert page.locator(ERROR).count() == 1, kind
        assert page.get_by_role("button", name="Download the figures per model (CSV)").count() == 0, kind

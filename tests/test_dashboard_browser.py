"""The dashboard served for real and driven by headless Chromium: compare models, upload an X-ray, see both maps."""

from __future__ import annotations

import time
from contextlib import contextmanager

import pytest
from drivers import (
    CHROMIUM,
    CHROMIUM_ARGS,
    IMAGES_LOADED,
    NO_STALE_ELEMENTS,
    RENDER_TIMEOUT_MS,
    REPO,
    UPLOAD_INPUT,
    serve,
)

SAMPLE = REPO / "dashboard" / "samples" / "covid19-ieee8023-bb0e626a.jpg"
TABLE = '[data-testid="stDataFrame"]'
CHART = '[data-testid="stPlotlyChart"]'
PREFETCH_WAIT_S = 30  # the browser imports them once idle, and the first page's own modules come first

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not CHROMIUM.exists(), reason=f"{CHROMIUM} is not installed"),
]


@pytest.fixture
def served_app(models_dir, tmp_path):
    with serve(models_dir, tmp_path / "server.log") as server:
        yield server.base


@contextmanager
def browser_page():
    playwright = pytest.importorskip("playwright.sync_api")
    with playwright.sync_playwright() as driver:
        browser = driver.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, timeout=60_000)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1800})
            page.set_default_timeout(RENDER_TIMEOUT_MS)
            yield page
        finally:
            browser.close()


def assert_no_error_shown(page) -> None:
    text = page.locator("body").inner_text()
    assert page.locator('[data-testid="stException"]').count() == 0
    assert "Traceback" not in text and "Exception" not in text
    assert page.locator('[data-testid="stAlertContentError"]').count() == 0


def test_upload_an_x_ray_and_see_both_maps(served_app, tmp_path):
    with browser_page() as page:
        page.goto(f"{served_app}/explain", timeout=RENDER_TIMEOUT_MS)
        uploader = page.locator(UPLOAD_INPUT)
        uploader.wait_for(state="attached")
        uploader.set_input_files(str(SAMPLE))
        page.get_by_text("Explaining your upload.").wait_for()
        page.wait_for_function(NO_STALE_ELEMENTS)
        page.get_by_text("Grad-CAM++", exact=True).wait_for()
        page.wait_for_function(IMAGES_LOADED, arg=4)
        page.screenshot(path=str(tmp_path / "explain.png"), full_page=True)
        assert page.get_by_text("Grad-CAM", exact=True).count() == 1
        assert_no_error_shown(page)
    assert (tmp_path / "explain.png").stat().st_size > 10_000


def test_compare_page_draws_a_tab_when_it_is_opened(served_app):
    with browser_page() as page:
        page.goto(served_app, timeout=RENDER_TIMEOUT_MS)
        page.locator(TABLE).first.wait_for(state="visible")
        page.get_by_test_id("stImage").first.wait_for(state="visible")  # the headline, an SVG image
        page.wait_for_function(NO_STALE_ELEMENTS)
        assert page.locator(CHART).count() == 0  # only the open tab (a table) is drawn
        page.get_by_role("tab", name="Confusion matrices").click()
        page.locator(CHART).nth(1).wait_for(state="visible")
        page.wait_for_function(NO_STALE_ELEMENTS)
        assert page.locator(CHART).count() == 2  # one per model
        assert_no_error_shown(page)


def test_the_comparison_page_fetches_the_explain_page_modules_once_idle(served_app):
    from dashboard import prefetch

    wanted = {f"{served_app}/static/js/{address.rsplit('/', 1)[-1]}" for address in prefetch.addresses()}
    fetched = set()
    with browser_page() as page:
        page.on("request", lambda request: fetched.add(request.url))
        page.goto(served_app, timeout=RENDER_TIMEOUT_MS)
        page.locator(TABLE).first.wait_for(state="visible")
        page.wait_for_function(NO_STALE_ELEMENTS)
        deadline = time.monotonic() + PREFETCH_WAIT_S
        while not wanted <= fetched and time.monotonic() < deadline:
            page.wait_for_timeout(250)
        assert sorted(wanted - fetched) == []  # each from Streamlit's static folder, under the server's address
        assert page.locator(UPLOAD_INPUT).count() == 0  # still the comparison page: no uploader drawn
        assert_no_error_shown(page)

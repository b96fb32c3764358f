"""The comparison page's operating point and paired comparison in a real browser (one served app for the module)."""

from __future__ import annotations

import time

import pytest
from analyst_fixtures import outputs, paired_models
from drivers import CHROMIUM, CHROMIUM_ARGS, NO_STALE_ELEMENTS, RENDER_TIMEOUT_MS, serve

from pipeline.operating import one_vs_rest

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not CHROMIUM.exists(), reason=f"{CHROMIUM} is not installed"),
]

MARKER = """() => {
  for (const plot of document.querySelectorAll('.js-plotly-plot'))
    for (const trace of plot.data || []) if (trace.name === 'operating point') return [trace.x[0], trace.y[0]];
  return null;
}"""


@pytest.fixture(scope="module")
def page(models_dir, tmp_path_factory):
    """One served app on models with known predictions, one browser page."""
    playwright = pytest.importorskip("playwright.sync_api")
    folder = paired_models(models_dir, tmp_path_factory.mktemp("paired-browser"))
    with serve(folder, tmp_path_factory.mktemp("log") / "server.log") as server, \
            playwright.sync_playwright() as driver:
        browser = driver.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, timeout=60_000)
        try:
            tab = browser.new_page(viewport={"width": 1400, "height": 1800})
            tab.set_default_timeout(RENDER_TIMEOUT_MS)
            tab.goto(server.base, timeout=RENDER_TIMEOUT_MS)
            tab.get_by_text("leads on test macro-F1").wait_for()
            yield tab
        finally:
            browser.close()


def two_by_two(page) -> list[list[int]]:
    cells = page.locator('[data-testid="stTable"] tbody tr').all_inner_texts()
    return [[int(v) for v in row.split("\t")[1:]] for row in cells]


def table_once_drawn(page, expected: list[list[int]]) -> list[list[int]]:
    """The 2x2 table once it shows ``expected`` or RENDER_TIMEOUT_MS has passed: the table is written
    after the sentence the test waits for, so it may still be missing or show the previous threshold."""
    deadline = time.monotonic() + RENDER_TIMEOUT_MS / 1000
    while (shown := two_by_two(page)) != expected and time.monotonic() < deadline:
        page.wait_for_timeout(100)
    return shown


def test_the_operating_point_moves_the_table_and_the_roc_marker(page):
    page.get_by_role("tab", name="Operating point").click()
    page.get_by_text("At threshold 0.500 on its COVID output, Perfect calls").wait_for()
    page.wait_for_function(NO_STALE_ELEMENTS)
    page.wait_for_function(f"({MARKER})() !== null")
    _, labels, probs = outputs(0)
    before = one_vs_rest(labels == 0, probs[:, 0], 0.5)
    assert table_once_drawn(page, before.table().tolist()) == before.table().tolist()
    assert page.evaluate(MARKER) == pytest.approx(list(before.roc_point))
    page.get_by_role("slider").focus()
    page.keyboard.press("End")  # threshold 1.0: nothing is called COVID
    page.get_by_text("At threshold 1.000 on its COVID output").wait_for()
    page.wait_for_function(NO_STALE_ELEMENTS)
    after = one_vs_rest(labels == 0, probs[:, 0], 1.0)
    assert table_once_drawn(page, after.table().tolist()) == after.table().tolist() != before.table().tolist()
    page.wait_for_function(f"JSON.stringify(({MARKER})()) === '[0,0]'")
    assert page.get_by_test_id("stMetricValue").first.inner_text() == "0.0%"  # sensitivity, written out


def test_the_paired_comparison_names_the_pairs_that_differ(page):
    page.get_by_role("tab", name="Paired comparison").click()
    page.get_by_text("2 of 3 pairs differ: Perfect and Worse; Twin and Worse.").wait_for()
    page.get_by_text("Perfect and Twin do not differ.").wait_for()  # written after the line above
    assert page.locator('[data-testid="stException"]').count() == 0

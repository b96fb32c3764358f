"""Cold start: from opening the app in headless Chromium to the comparison table being visible.

Each repeat starts a fresh ``streamlit run`` server (the first visit pays every import the
page needs), opens a new browser context and times until the first table is visible. The floor
is the same time for a one-table Streamlit page (``bench/floor_app.py``) served the same way in
the same run. Also checks that the app's server process has not loaded TensorFlow by then.

    python bench/cold_start.py --models saved_models [--repeats 3]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "tests")]

from drivers import (  # noqa: E402
    CHROMIUM,
    CHROMIUM_ARGS,
    MODELS_DIR_VAR,
    free_port,
    wait_until_healthy,
)
from playwright.sync_api import sync_playwright  # noqa: E402

from pipeline import artifacts  # noqa: E402

TABLE = '[data-testid="stDataFrame"]'


def loaded_tensorflow(pid: int) -> bool:
    """Whether the process has mapped TensorFlow's shared library (it imported tensorflow)."""
    return "libtensorflow" in Path(f"/proc/{pid}/maps").read_text()


def time_to_table(browser, script: Path, models: Path) -> tuple[float, bool]:
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", str(script), "--server.port", str(port), "--server.address",
         "127.0.0.1", "--server.headless", "true", "--browser.gatherUsageStats", "false"],
        cwd=REPO, env={**os.environ, MODELS_DIR_VAR: str(models)}, stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL)
    try:
        base = f"http://127.0.0.1:{port}"
        wait_until_healthy(server, base)
        context = browser.new_context()
        page = context.new_page()
        start = time.perf_counter()
        page.goto(base)
        page.locator(TABLE).first.wait_for(state="visible", timeout=120_000)
        seconds = time.perf_counter() - start
        tensorflow = loaded_tensorflow(server.pid)
        context.close()
        return seconds, tensorflow
    finally:
        server.terminate()
        server.wait(timeout=30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default=str(REPO / "saved_models"))
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    if not artifacts.list_model_dirs(args.models):
        sys.exit(f"no models in {args.models}: train one first (python -m pipeline train ...) or pass --models")
    app, floor, tensorflow_seen = [], [], False
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        for repeat in range(args.repeats):
            seconds, _ = time_to_table(browser, REPO / "bench" / "floor_app.py", Path(args.models))
            floor.append(seconds)
            seconds, tensorflow = time_to_table(browser, REPO / "dashboard" / "streamlit_app.py", Path(args.models))
            app.append(seconds)
            tensorflow_seen |= tensorflow
            print(f"repeat {repeat + 1}: floor {floor[-1]:.2f} s, app {app[-1]:.2f} s, TensorFlow loaded: {tensorflow}")
        browser.close()
    print(f"one-table page (floor): {statistics.median(floor):.2f} s")
    print(f"comparison page: {statistics.median(app):.2f} s; server loaded TensorFlow: {tensorflow_seen}")
    print(f"ratio comparison page / floor: {statistics.median(app) / statistics.median(floor):.2f}x (target <= 1.3x)")


if __name__ == "__main__":
    main()

"""Load and warm the explain page's models in the background, from the server's first page on.

A cold server otherwise pays TensorFlow's import, each model's load and its tracing on the first
visit of the explain page. ``start`` runs those steps once per process in a daemon thread, through
the same cached loaders the page calls (``dashboard.loaders``): Streamlit's compute lock per cache
key makes a request that arrives meanwhile wait for the load in progress instead of loading the
model a second time. The default model goes first, then the lung segmenter and the maps of the
sample the page opens with, then the other models. The thread gives way to pages (``dashboard.giveway``):
while a page is answered it waits, unless the page waits for it. It keeps the server's priority: a lower
one (a higher niceness) passed on to TensorFlow's compute threads, which the first model load starts, and
every page's model calls then ran at it.
"""

from __future__ import annotations

import gc
import logging
import os
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import streamlit as st

from pipeline import images

from . import giveway, loaders, lungs
from .catalog import Catalog, ModelEntry, folder_stamp
from .samples import shipped_samples

log = logging.getLogger(__name__)

WARMUP_VAR = "XRAY_WARMUP"  # "0" turns the warm-up off (the tests do, so that AppTest runs stay deterministic)
THREAD_NAME = "model-warmup"
TENSORFLOW, SAMPLE = "tensorflow", "sample"
POLL_S = 0.25  # how often a waiting page redraws the progress
# Seconds between the first page's script run and the warm-up's start. Importing TensorFlow holds Python's
# lock for seconds at a time, and the first page's messages and the browser's requests for its scripts
# (plotly.js) wait for it: started at once, the comparison page took 2.8x the one-table page on two busy
# cores (bench/cold_start.py) instead of 1.0x.
START_DELAY_S = 5.0
WAITING, LOADING, READY, FAILED = "waiting", "loading", "ready", "failed"


@dataclass(frozen=True)
class Step:
    key: str  # what a page waits for: TENSORFLOW, a model's folder, the segmenter's folder, SAMPLE
    label: str  # in words, for the progress message
    run: Callable[[], object]


class Warmup:
    """Steps run in turn in one daemon thread; their states can be read (and awaited) from any thread."""

    def __init__(self, steps: Sequence[Step], delay: float = 0.0) -> None:
        self.steps, self.delay = list(steps), delay
        self._states = {step.key: WAITING for step in self.steps}
        self._done = {step.key: threading.Event() for step in self.steps}
        self._thread = threading.Thread(target=self._run, name=THREAD_NAME, daemon=True)

    def start(self) -> Warmup:
        self._thread.start()
        return self

    def state(self, key: str) -> str | None:
        """WAITING, LOADING, READY or FAILED; None for a key that is not warmed up."""
        return self._states.get(key)

    def wait(self, key: str, timeout: float) -> bool:
        """True once the step ``key`` is over (ready or failed), False while it still runs after ``timeout`` s."""
        return self._done[key].wait(timeout)

    def busy_with(self, key: str) -> bool:
        """Whether a page that needs ``key`` should wait for this thread: the step runs now, or TensorFlow,
        which every step needs, is still being imported."""
        state = self._states.get(key)
        return state == LOADING or (state == WAITING and self._states.get(TENSORFLOW) == LOADING)

    def progress(self) -> tuple[int, int]:
        """Steps over and steps in all."""
        return sum(event.is_set() for event in self._done.values()), len(self.steps)

    def _run(self) -> None:
        time.sleep(self.delay)
        giveway.pages.attach()
        try:
            self._run_steps()
        finally:
            giveway.pages.detach()

    def _run_steps(self) -> None:
        for step in self.steps:
            self._states[step.key] = LOADING
            start = time.perf_counter()
            try:
                step.run()
            except Exception:  # the page loads it again and shows the problem where it is needed
                log.exception("warm-up: %s failed", step.label)
                self._states[step.key] = FAILED
            else:
                log.info("warm-up: %s ready in %.1f s", step.label, time.perf_counter() - start)
                self._states[step.key] = READY
            self._done[step.key].set()


def keep_keras_session() -> None:
    """Stop Streamlit from clearing Keras' session after every script run; once per process.

    Streamlit does so (``_clean_problem_modules`` in its script runner) for apps that build a model on
    each run; this one builds each model once and shares it. Clearing the session empties TensorFlow's
    kernel cache, so the first prediction and maps after every rerun instantiated the compiled graphs
    again (DenseNet121 in one process on 2 busy cores: 3.8 s instead of 0.15 s for the outputs, 2.8 s
    instead of 0.2 s for the maps), after a full garbage collection (0.7 s). The app draws no
    matplotlib figure, the other thing that function cleans.
    """
    from streamlit.runtime.scriptrunner import script_runner

    if not hasattr(script_runner, "_clean_problem_modules"):
        log.warning("Streamlit no longer clears Keras' session the known way; nothing to turn off")
        return
    script_runner._clean_problem_modules = _keep_state


def _keep_state() -> None:
    """Streamlit's cleaning after a script run, in this app: nothing to clean."""


def enabled() -> bool:
    return os.environ.get(WARMUP_VAR, "1") != "0"


def import_tensorflow() -> None:
    """TensorFlow, Keras and tf-keras-vis, their objects then moved out of the garbage collector's sight.

    Streamlit collects garbage after every script run. Until the first model load froze them
    (``loaders.lasting``), each of those collections walked the 385,000 objects the import leaves (0.19 s in
    one idle process) holding Python's lock, so a page opened in that window reached the browser late.
    Freezing alone takes no time; a collection right after the import finds about 40 objects, left here.
    """
    from . import explain  # noqa: F401

    gc.freeze()


def first_maps(entry: ModelEntry, segmenter: Path | None) -> None:
    """What the explain page computes first, into its caches: the default model's outputs and maps of the
    first shipped sample, and the sample's lung mask."""
    gray = loaders.decode_file(str(shipped_samples()[0].path))
    digest = images.image_digest(gray)
    probabilities = loaders.probabilities(str(entry.folder), entry.stamp, digest, gray)
    loaders.attention_maps(str(entry.folder), entry.stamp, digest, int(np.argmax(probabilities)), gray)
    if segmenter is not None:
        loaders.lung_mask(str(segmenter), folder_stamp(segmenter), digest, gray)


def model_step(entry: ModelEntry) -> Step:
    return Step(str(entry.folder), entry.name, lambda: loaders.explainer(str(entry.folder), entry.stamp))


def plan(catalog: Catalog) -> list[Step]:
    """TensorFlow, the default model, the lung segmenter, the first sample's maps, then the other models."""
    entries = catalog.explainable
    if not entries:
        return []
    folder = lungs.segmenter_folder(catalog.root)
    segmenter = folder if lungs.segmenter_problem(folder) is None else None
    steps = [Step(TENSORFLOW, "TensorFlow", import_tensorflow), model_step(entries[0])]
    if segmenter is not None:
        steps.append(Step(str(segmenter), "the lung segmenter",
                          lambda: loaders.segmenter(str(segmenter), folder_stamp(segmenter))))
    steps.append(Step(SAMPLE, "the first sample's maps", lambda: first_maps(entries[0], segmenter)))
    return steps + [model_step(entry) for entry in entries[1:]]


class _WarmupThreadFilter(logging.Filter):
    """Drops Streamlit's "missing ScriptRunContext" warnings of the warm-up thread, which has no page to draw on."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.threadName != THREAD_NAME


_lock = threading.Lock()
_running: Warmup | None = None


def start(catalog: Callable[[], Catalog]) -> Warmup | None:
    """The process's warm-up, started by the first call (later calls return it); None when turned off."""
    global _running
    if not enabled():
        return None
    with _lock:
        if _running is None:
            logging.getLogger("streamlit.runtime.scriptrunner_utils.script_run_context").addFilter(
                _WarmupThreadFilter())
            _running = Warmup(plan(catalog()), START_DELAY_S).start()
    return _running


def running() -> Warmup | None:
    return _running


def wait_for(key: str, label: str, show: Callable[[float, str], object]) -> None:
    """While the warm-up is busy with what ``key`` needs, ``show(fraction, message)`` its progress every
    ``POLL_S``; returns at once where there is nothing to wait for."""
    warm = running()
    with giveway.pages.released():
        while warm is not None and warm.busy_with(key):
            done, total = warm.progress()
            now = next((step.label for step in warm.steps if warm.state(step.key) == LOADING), label)
            show(done / total, f"Loading the models in the background: {now} now, {done} of {total} steps done; "
                               f"{label} is needed here.")
            warm.wait(key, POLL_S)


def wait_on_page(key: str, label: str) -> None:
    """A progress bar on the page while the warm-up is busy with what ``key`` needs; gone once it is over."""
    warm = running()
    if warm is None or not warm.busy_with(key):
        return
    bar = st.empty()
    wait_for(key, label, lambda fraction, text: bar.progress(fraction, text=text))
    bar.empty()

"""A background thread that gives way to pages: paused while one runs, never for good."""

from __future__ import annotations

import threading
import time
from unittest.mock import patch

import pytest
import streamlit as st

import dashboard.explain
import dashboard.lungs
import pipeline.lungs
from dashboard import giveway, loaders, warmup

pytestmark = pytest.mark.skipif(not giveway.Gate.supported(), reason="no _PyEval_SetProfile in this interpreter")

WAIT_S = 10


def step() -> int:
    return 1


class Worker:
    """A background thread that runs Python calls and counts them, attached to ``gate``."""

    def __init__(self, gate: giveway.Gate) -> None:
        self.gate, self.count, self.stop = gate, 0, threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> Worker:
        self.thread.start()
        until(lambda: self.count > 1000)
        return self

    def __exit__(self, *_) -> None:
        self.stop.set()
        self.thread.join(WAIT_S)

    def _run(self) -> None:
        self.gate.attach()
        try:
            while not self.stop.is_set():
                self.count += step()
        finally:
            self.gate.detach()

    def progress_while_busy(self, seconds: float) -> int:
        """Calls the worker made while this thread ran Python for ``seconds``, as a page does."""
        before = self.count
        busy(seconds)
        return self.count - before


def busy(seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        step()


def until(condition, timeout: float = WAIT_S) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def test_the_thread_stops_while_a_page_runs_and_goes_on_after_it():
    gate = giveway.Gate(grace=0.1, longest=WAIT_S)
    with Worker(gate) as worker:
        assert worker.progress_while_busy(0.2) > 0  # no page: it shares the interpreter
        with gate.page():
            busy(0.05)  # its next call pauses it
            assert worker.progress_while_busy(0.3) == 0
            with gate.page():  # a nested page counts once
                pass
            assert worker.progress_while_busy(0.2) == 0
        until(lambda: worker.progress_while_busy(0.05) > 0, timeout=2)
    assert gate.pauses >= 1


def test_a_page_that_waits_for_the_thread_lets_it_go_on():
    gate = giveway.Gate(grace=0.1, longest=WAIT_S)
    with Worker(gate) as worker, gate.page():
        busy(0.05)
        assert worker.progress_while_busy(0.2) == 0
        with gate.released():
            until(lambda: worker.progress_while_busy(0.05) > 0, timeout=2)
        busy(0.05)  # back in the page: paused again
        assert worker.progress_while_busy(0.2) == 0


def test_a_page_blocked_on_a_lock_the_paused_thread_holds_frees_it_long_before_the_longest_pause():
    gate, lock = giveway.Gate(grace=0.1, stall=0.1, longest=5.0), threading.Lock()
    holding, go = threading.Event(), threading.Event()

    def hold() -> None:  # holds the lock over a stretch of Python calls, paused in the middle of it
        gate.attach()
        with lock:
            holding.set()
            while not go.is_set():
                step()
            for _ in range(1000):
                step()
        gate.detach()

    worker = threading.Thread(target=hold, daemon=True)
    worker.start()
    assert holding.wait(WAIT_S)
    with gate.page():
        go.set()
        busy(0.05)
        start = time.monotonic()
        assert lock.acquire(timeout=WAIT_S)
        waited = time.monotonic() - start
        lock.release()
    worker.join(WAIT_S)
    assert waited < 1.5, f"the page waited {waited:.2f} s for the lock"


def test_no_pause_outlasts_the_longest():
    gate = giveway.Gate(grace=0.1, longest=0.4)
    with Worker(gate) as worker, gate.page():
        busy(0.05)
        assert worker.progress_while_busy(0.2) == 0
        until(lambda: worker.progress_while_busy(0.05) > 0, timeout=2)  # the page still runs


def test_pages_do_nothing_without_a_thread_or_after_it_ended():
    gate = giveway.Gate(grace=0.1)
    with gate.page(), gate.released():  # nothing attached yet
        pass
    with Worker(gate):
        pass
    with gate.page():  # detached: its state is not touched
        busy(0.05)
    assert gate.pauses == 0


def test_released_outside_a_page_holds_nothing_back():
    gate = giveway.Gate(grace=0.1, longest=WAIT_S)
    with gate.released():
        with Worker(gate) as worker:
            assert worker.progress_while_busy(0.2) > 0


@pytest.fixture
def gate(monkeypatch) -> giveway.Gate:
    """The process's gate replaced by one that never lets a still page go (its stall would hide the releases)."""
    replaced = giveway.Gate(grace=0.1, stall=WAIT_S, longest=WAIT_S)
    monkeypatch.setattr(giveway, "pages", replaced)
    return replaced


def test_the_warm_up_gives_way_to_a_page_that_then_waits_for_it(gate):
    calls, done = [], threading.Event()

    def load() -> None:  # a model load: Python calls, many of them
        while not done.is_set():
            calls.append(step())

    warm = warmup.Warmup([warmup.Step("model", "a model", load)]).start()
    try:
        until(lambda: len(calls) > 1000)
        with gate.page():
            busy(0.05)
            before = len(calls)
            busy(0.3)
            assert len(calls) == before  # paused while the page runs
            threading.Timer(0.3, done.set).start()  # the load ends once it has run a while
            start = time.monotonic()
            with patch.object(warmup, "_running", warm):
                warmup.wait_for("model", "a model", lambda *_: None)  # returns once the load goes on and ends
            assert time.monotonic() - start < 3 and warm.state("model") == warmup.READY
    finally:
        done.set()


def test_a_page_that_loads_a_model_itself_lets_the_warm_up_go_on(gate, monkeypatch):
    class SlowExplainer:  # loading: Python work in the page's thread
        def __init__(self, folder: str) -> None:
            self.during = worker.progress_while_busy(0.3)

    monkeypatch.setattr(dashboard.explain, "Explainer", SlowExplainer)
    st.cache_resource.clear()
    with Worker(gate) as worker, gate.page():
        busy(0.05)
        assert worker.progress_while_busy(0.2) == 0
        assert loaders.explainer("folder", "stamp").during > 0
        busy(0.05)  # the load is over: paused again
        assert worker.progress_while_busy(0.2) == 0
    st.cache_resource.clear()


def test_a_page_that_loads_the_lung_segmenter_itself_lets_the_warm_up_go_on(gate, monkeypatch):
    during = []
    monkeypatch.setattr(pipeline.lungs, "load_segmenter", lambda folder: ("model", {"input_size": 64}))
    monkeypatch.setattr(dashboard.lungs, "warm_up", lambda model, size: during.append(worker.progress_while_busy(0.3)))
    st.cache_resource.clear()
    with Worker(gate) as worker, gate.page():
        busy(0.05)
        assert worker.progress_while_busy(0.2) == 0
        loaders.segmenter("folder", "stamp")
        assert during[0] > 0
    st.cache_resource.clear()


def test_on_an_interpreter_without_the_function_nothing_pauses(monkeypatch):
    monkeypatch.setattr(giveway, "_set_profile", None)
    gate = giveway.Gate(grace=0.1, longest=WAIT_S)
    assert not gate.supported()
    with Worker(gate) as worker, gate.page():
        busy(0.05)
        assert worker.progress_while_busy(0.2) > 0

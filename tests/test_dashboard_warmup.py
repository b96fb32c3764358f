"""The background warm-up of the explain page's models: load once, off the request path, with progress."""

from __future__ import annotations

import gc
import os
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import SimpleNamespace

import pytest
import streamlit as st
from drivers import PAGES, models_dir_env, open_page

import dashboard.explain
from dashboard import loaders, warmup
from dashboard.catalog import scan
from dashboard.explain import Explainer

WAIT_S = 10


@pytest.fixture
def no_warmup_yet(monkeypatch):
    """A process with no warm-up started, the switch on; restored after the test."""
    monkeypatch.setattr(warmup, "_running", None)
    monkeypatch.setattr(warmup, "START_DELAY_S", 0.0)
    monkeypatch.setenv(warmup.WARMUP_VAR, "1")


def blocked_step(key: str, release: threading.Event, ran_in: list[str] | None = None,
                 label: str = "a model") -> warmup.Step:
    def run() -> None:
        if ran_in is not None:
            ran_in.append(threading.current_thread().name)
        assert release.wait(WAIT_S)

    return warmup.Step(key, label, run)


def until(condition, timeout: float = WAIT_S) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def test_a_request_during_the_warm_up_waits_for_its_load(monkeypatch):
    built = []

    class SlowExplainer:  # stands for the real one: loading and tracing take a while
        def __init__(self, folder: str) -> None:
            built.append(folder)
            time.sleep(0.5)

    monkeypatch.setattr(dashboard.explain, "Explainer", SlowExplainer)
    st.cache_resource.clear()
    step = warmup.model_step(SimpleNamespace(folder=Path("folder"), stamp="stamp", name="M"))
    warm = warmup.Warmup([step]).start()
    with ThreadPoolExecutor(2) as requests:  # two users open the explain page meanwhile
        answers = list(requests.map(lambda _: loaders.explainer("folder", "stamp"), range(2)))
    assert warm.wait(step.key, WAIT_S) and warm.state(step.key) == warmup.READY
    assert built == ["folder"] and answers[0] is answers[1]
    st.cache_resource.clear()


def test_start_runs_once_per_process_in_a_thread_of_its_own(monkeypatch, no_warmup_yet):
    release, ran_in, plans = threading.Event(), [], []
    monkeypatch.setattr(warmup, "plan", lambda catalog: plans.append(catalog) or [blocked_step("m", release, ran_in)])
    with ThreadPoolExecutor(2) as pages:  # two first requests at once
        started = list(pages.map(lambda _: warmup.start(lambda: "catalog"), range(2)))
    assert started[0] is started[1] and plans == ["catalog"]
    assert started[0].state("m") in (warmup.WAITING, warmup.LOADING)  # start() did not wait for the step
    release.set()
    assert started[0].wait("m", WAIT_S) and ran_in == [warmup.THREAD_NAME]


def test_the_switch_turns_it_off(monkeypatch, no_warmup_yet):
    monkeypatch.setenv(warmup.WARMUP_VAR, "0")
    monkeypatch.setattr(warmup, "plan", lambda catalog: pytest.fail("planned while off"))
    assert warmup.start(lambda: "catalog") is None and warmup.running() is None


@pytest.mark.skipif(sys.platform != "linux", reason="per-thread niceness is read on Linux only")
def test_the_warm_up_runs_at_the_server_s_niceness_which_the_compute_threads_it_starts_inherit():
    def niceness() -> int:
        return os.getpriority(os.PRIO_PROCESS, threading.get_native_id())

    seen: dict[str, int] = {}

    def server() -> None:  # a server started niced (``nice -n 2 streamlit run ...``): its threads inherit it
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), niceness() + 2)
        seen["server"] = niceness()

        def step() -> None:  # a pool started by a step, as TensorFlow's compute threads are on its first op
            pool = threading.Thread(target=lambda: seen.setdefault("pool", niceness()))
            pool.start()
            pool.join(WAIT_S)

        assert warmup.Warmup([warmup.Step("a", "model A", step)]).start().wait("a", WAIT_S)

    thread = threading.Thread(target=server)
    thread.start()
    thread.join(WAIT_S)
    assert seen["pool"] == seen["server"]


def test_a_failed_step_is_logged_and_the_next_runs(caplog):
    def broken() -> None:
        raise OSError("model.keras unreadable")

    warm = warmup.Warmup([warmup.Step("a", "model A", broken), warmup.Step("b", "model B", lambda: None)]).start()
    assert warm.wait("b", WAIT_S)
    assert (warm.state("a"), warm.state("b")) == (warmup.FAILED, warmup.READY)
    assert "warm-up: model A failed" in caplog.text


def test_a_page_waits_with_progress_only_while_the_warm_up_is_busy_with_what_it_needs(monkeypatch):
    imported, loaded = threading.Event(), threading.Event()
    warm = warmup.Warmup([blocked_step(warmup.TENSORFLOW, imported, label="TensorFlow"),
                          blocked_step("MobileNet", loaded, label="MobileNet"),
                          warmup.Step("SmallCNN", "SmallCNN", lambda: None)])
    monkeypatch.setattr(warmup, "_running", warm.start())
    until(lambda: warm.state(warmup.TENSORFLOW) == warmup.LOADING)
    shown = []
    page = threading.Thread(target=warmup.wait_for, args=("MobileNet", "MobileNet", lambda *a: shown.append(a)))
    page.start()
    until(lambda: shown)
    assert page.is_alive() and shown[0] == (
        0.0, "Loading the models in the background: TensorFlow now, 0 of 3 steps done; MobileNet is needed here.")
    imported.set()
    until(lambda: "MobileNet now, 1 of 3 steps done" in shown[-1][1])
    assert page.is_alive()
    others = []
    warmup.wait_for("SmallCNN", "SmallCNN", lambda *a: others.append(a))  # behind MobileNet: the page loads it
    warmup.wait_for("elsewhere", "a model the warm-up does not load", lambda *a: others.append(a))
    assert others == []
    loaded.set()
    page.join(WAIT_S)
    assert not page.is_alive() and warm.state("MobileNet") == warmup.READY


def test_the_plan_loads_the_default_model_first(models_dir):
    keys = [step.key for step in warmup.plan(scan(models_dir))]
    assert keys == [warmup.TENSORFLOW, str(models_dir / "MobileNet"), warmup.SAMPLE, str(models_dir / "SmallCNN")]


def test_the_page_waits_for_the_model_the_warm_up_is_loading(monkeypatch, models_dir):
    st.cache_resource.clear()
    entry, release, built_in = scan(models_dir).explainable[0], threading.Event(), []
    original = Explainer.__init__
    monkeypatch.setattr(Explainer, "__init__",
                        lambda self, folder: built_in.append(threading.current_thread().name) or original(self, folder))

    def load() -> None:  # a slow load: it starts only when released
        assert release.wait(WAIT_S)
        loaders.explainer(str(entry.folder), entry.stamp)

    monkeypatch.setattr(warmup, "_running", warmup.Warmup([warmup.Step(str(entry.folder), entry.name, load)]).start())
    threading.Timer(1.0, release.set).start()
    with models_dir_env(models_dir):
        app = open_page(PAGES[1])
    assert not app.exception and "Grad-CAM++" in [image.captions[0] for image in app.image]
    assert built_in == [warmup.THREAD_NAME]  # the page waited for the warm-up's load instead of loading it again


def test_after_the_warm_up_the_page_computes_nothing_for_its_first_maps(monkeypatch, models_dir):
    st.cache_resource.clear()
    st.cache_data.clear()
    for step in warmup.plan(scan(models_dir)):
        step.run()
    calls = []
    for method in ("probabilities", "maps"):
        original = getattr(Explainer, method)
        monkeypatch.setattr(Explainer, method, lambda self, *a, m=method, f=original: calls.append(m) or f(self, *a))
    with models_dir_env(models_dir):
        app = open_page(PAGES[1])
    assert not app.exception and [image.captions[0] for image in app.image][:3] == ["Original", "Grad-CAM",
                                                                                    "Grad-CAM++"]
    assert calls == []


def test_streamlit_no_longer_clears_the_keras_session_after_a_run(monkeypatch):
    import keras
    from streamlit.runtime.scriptrunner import script_runner

    cleared = []
    monkeypatch.setattr(keras.backend, "clear_session", lambda *args, **kwargs: cleared.append(True))
    monkeypatch.setattr(script_runner, "_clean_problem_modules", lambda: keras.backend.clear_session())  # Streamlit's
    warmup.keep_keras_session()
    script_runner._clean_problem_modules()  # what Streamlit calls after each script run
    assert cleared == []


def test_a_loaded_model_is_kept_out_of_the_garbage_collectors_walks(monkeypatch):
    monkeypatch.setattr(dashboard.explain, "Explainer", lambda folder: SimpleNamespace(folder=folder))
    st.cache_resource.clear()
    gc.unfreeze()
    loaders.explainer("folder", "stamp")
    assert gc.get_freeze_count() > 0  # Streamlit's collection after each run no longer walks the models
    st.cache_resource.clear()


def test_tensorflow_s_objects_are_kept_out_of_the_garbage_collectors_walks_once_imported():
    gc.unfreeze()
    warmup.import_tensorflow()
    assert gc.get_freeze_count() > 100_000  # Streamlit's collection after each run no longer walks TensorFlow

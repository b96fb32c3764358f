"""Background work that gives way to pages: its thread paused at its next Python call while a page is answered.

The warm-up (``dashboard.warmup``) loads models with Python most of the time, and Python runs one thread at a
time: a page answered meanwhile (its script, then the server's messages and images) shared the interpreter with
it. A lower niceness cannot help with a lock, and a hook that checks for pages at every call of the
warm-up slowed it by half. So a page's start sets a profile function on the background thread alone (CPython's
``_PyEval_SetProfile``, which takes the thread to set it on); at its next Python call the thread removes it and
waits until no page has run for ``GRACE_S``. While no page runs, nothing watches the thread.

A paused thread may hold a lock that a page needs (a module it is importing, a cache entry it is computing, a
log handler): a page that uses no CPU for ``STALL_S`` lets the thread go on, and no pause lasts longer than
``LONGEST_PAUSE_S``. A page that waits for the background work, or loads a model itself, does so inside
``Gate.released``. On an interpreter without that function nothing is paused.
"""

from __future__ import annotations

import ctypes
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

GRACE_S = 0.5  # after a page's script run: the browser then fetches its images from the server
STALL_S = 0.15  # a page that uses no CPU this long is taken to wait for the paused thread
STALL_CPU_S = 0.002  # "no CPU": less than this
LONGEST_PAUSE_S = 2.0

_PROFILE = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.py_object, ctypes.c_void_p, ctypes.c_int, ctypes.c_void_p)
_api = getattr(ctypes, "pythonapi", None)  # CPython's own C API (3.11-3.13 export the function); None elsewhere
_set_profile = getattr(_api, "_PyEval_SetProfile", None)
if _set_profile is not None:
    _set_profile.argtypes = [ctypes.c_void_p, _PROFILE, ctypes.py_object]
    _set_profile.restype = ctypes.c_int
    _thread_state = _api.PyThreadState_Get
    _thread_state.restype = ctypes.c_void_p


def _cpu_time(thread: int) -> float | None:
    """CPU seconds the thread with ``threading`` ident ``thread`` has used; None where this cannot be read."""
    try:
        return time.clock_gettime(time.pthread_getcpuclockid(thread))
    except (AttributeError, OSError):  # no per-thread CPU clocks here, or the thread has ended
        return None


class Gate:
    """Pages in (``page``), the one background thread that gives way to them (``attach``/``detach``)."""

    def __init__(self, grace: float = GRACE_S, stall: float = STALL_S, longest: float = LONGEST_PAUSE_S) -> None:
        self.grace, self.stall, self.longest = grace, stall, longest
        self.pauses = 0  # how many times the background thread has waited
        self._condition = threading.Condition()
        self._pages: dict[int, int] = {}  # page threads -> how deep in ``page`` each is
        self._last_page = float("-inf")
        self._state: int | None = None  # the attached thread's state, while it runs
        self._hook = _PROFILE(self._on_call)  # kept here: C holds no reference to it

    @staticmethod
    def supported() -> bool:
        return _set_profile is not None

    def attach(self) -> None:
        """Called by the background thread itself: pages now pause it."""
        if _set_profile is None:
            return
        with self._condition:
            self._state = _thread_state()
            if self._pages:
                self._pause_attached()

    def detach(self) -> None:
        """Called by the background thread before it ends: its state must not be touched afterwards."""
        with self._condition:
            self._state = None
        sys.setprofile(None)

    @contextmanager
    def page(self) -> Iterator[None]:
        """A page's script run (nested calls count once): the background thread waits from its next call
        until ``grace`` after the end."""
        thread = threading.get_ident()
        with self._condition:
            self._pages[thread] = self._pages.get(thread, 0) + 1
            self._pause_attached()
        try:
            yield
        finally:
            with self._condition:
                self._pages[thread] -= 1
                if not self._pages[thread]:
                    del self._pages[thread]
                    self._last_page = time.monotonic()
                    self._condition.notify_all()

    @contextmanager
    def released(self) -> Iterator[None]:
        """Inside ``page``: the background thread runs meanwhile (the page waits for its work, or does long
        work of the same kind itself, where holding it back gains nothing). Elsewhere: nothing."""
        thread = threading.get_ident()
        with self._condition:
            depth = self._pages.pop(thread, 0)
            self._condition.notify_all()
        try:
            yield
        finally:
            if depth:
                with self._condition:
                    self._pages[thread] = depth
                    self._pause_attached()

    def _pause_attached(self) -> None:
        if self._state is not None and _set_profile is not None:  # the condition's lock is held
            _set_profile(self._state, self._hook, None)

    def _quiet_in(self) -> float:
        """Seconds until the pages leave the background thread free to run again."""
        return self.longest if self._pages else self._last_page + self.grace - time.monotonic()

    def _stalled(self, seen: dict[int, tuple[float, float]]) -> bool:
        """Whether a page's thread has used no CPU for ``stall`` s: it waits, most likely for a lock the paused
        thread holds (``seen``: each page thread's CPU time when last found to advance, and when)."""
        now = time.monotonic()
        for thread in self._pages:
            used = _cpu_time(thread)
            before = seen.get(thread)
            if used is None or before is None or used > before[0] + STALL_CPU_S:
                seen[thread] = (used or 0.0, now)
            elif now - before[1] >= self.stall:
                return True
        return False

    def _on_call(self, _obj: object, _frame: int, _what: int, _arg: int) -> int:
        """The profile function, in the background thread: wait while pages run, then run on unwatched."""
        sys.setprofile(None)
        deadline, seen = time.monotonic() + self.longest, {}
        with self._condition:
            if self._state is None or self._quiet_in() <= 0:
                return 0
            self.pauses += 1
            while ((quiet := self._quiet_in()) > 0 and (left := deadline - time.monotonic()) > 0
                   and not self._stalled(seen)):
                self._condition.wait(min(quiet, left, self.stall / 3))
        return 0


pages = Gate()

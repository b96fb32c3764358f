"""Keep the server's memory flat as users are added.

glibc serves blocks of 128 KiB and more with ``mmap`` and gives them back to the system when
freed, but each time such a block is freed it raises that threshold (up to 32 MiB). From then on
large blocks (images, overlays, tensors) come from per-thread heaps, which keep the memory once
freed. Streamlit runs every session's script in a thread of its own, so a few users at once left
the server 15-30% larger for good. Pinning the thresholds turns that adaptation off. At 4 MiB,
blocks that large always go back to the system, and a forward pass (whose tensors are mostly
smaller) runs as fast as before; at glibc's 128 KiB, DenseNet121 ran 20-30% slower.
"""

from __future__ import annotations

import ctypes
import functools
import logging
import platform

log = logging.getLogger(__name__)

M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3  # mallopt parameters, from glibc's malloc.h
THRESHOLD = 4 * 1024 * 1024


@functools.cache
def fix_malloc_thresholds(threshold: int = THRESHOLD) -> bool:
    """Pin glibc's mmap and trim thresholds at ``threshold`` bytes, once per process; False off glibc."""
    if platform.libc_ver()[0] != "glibc":
        log.info("malloc thresholds left as they are: the C library is not glibc")
        return False
    mallopt = ctypes.CDLL("libc.so.6").mallopt
    mallopt.argtypes, mallopt.restype = (ctypes.c_int, ctypes.c_int), ctypes.c_int
    return all(mallopt(parameter, threshold) == 1 for parameter in (M_MMAP_THRESHOLD, M_TRIM_THRESHOLD))

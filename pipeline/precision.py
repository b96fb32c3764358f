"""Mixed precision: which Keras dtype policy training computes in, from the hardware it runs on."""

from __future__ import annotations

import logging
from pathlib import Path

import tensorflow as tf

log = logging.getLogger(__name__)

BFLOAT16_CPU_FLAGS = ("avx512_bf16", "amx_bf16")


def cpu_has_bfloat16(cpuinfo: str = "/proc/cpuinfo") -> bool:
    """Whether the CPU computes bfloat16 natively (AVX512-BF16 or AMX); elsewhere oneDNN emulates it,
    slower than float32."""
    try:
        flags = Path(cpuinfo).read_text().split()
    except OSError:
        return False
    return any(flag in flags for flag in BFLOAT16_CPU_FLAGS)


def compute_policy(mixed_precision: bool) -> str:
    """The Keras dtype policy for training: float16 on GPUs, bfloat16 on CPUs that have it, else float32."""
    if not mixed_precision:
        return "float32"
    if tf.config.list_physical_devices("GPU"):
        return "mixed_float16"
    if cpu_has_bfloat16():
        log.info("--mixed-precision: computing in bfloat16 on this CPU")
        return "mixed_bfloat16"
    log.warning("--mixed-precision needs a GPU or a CPU with %s; training in float32", " or ".join(BFLOAT16_CPU_FLAGS))
    return "float32"

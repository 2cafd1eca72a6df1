"""Device classes: which code path a render runs on, since it changes pixels slightly.

Cycles picks a CPU kernel by instruction set (SSE4.1 and AVX2 renders differ at
≈ 83 dB PSNR), so honest workers are grouped by class and checkers compare
within a class exactly, across classes with a tolerance.
"""

from __future__ import annotations

import platform
from pathlib import Path

# Best first: the kernels Cycles 3.x builds for x86-64.
_X86_LEVELS = (("avx2", "avx2"), ("avx", "avx"), ("sse4_1", "sse41"), ("sse2", "sse2"))


def cpu_device_class(cpuinfo: Path = Path("/proc/cpuinfo")) -> str:
    machine = platform.machine().lower() or "unknown"
    if machine not in ("x86_64", "amd64"):
        return f"cpu-{machine}"
    try:
        text = cpuinfo.read_text()
    except OSError:
        return "cpu-x86_64"
    flags: set[str] = set()
    for line in text.splitlines():
        if line.startswith("flags"):
            flags = set(line.split(":", 1)[1].split())
            break
    for flag, label in _X86_LEVELS:
        if flag in flags:
            return f"cpu-x86_64-{label}"
    return "cpu-x86_64"


def cuda_device_class(major: int, minor: int) -> str:
    return f"cuda-sm{major}{minor}"

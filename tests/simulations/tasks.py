"""Module-level functions the executor tests send to worker processes (picklable by
reference: workers import this module)."""

from __future__ import annotations

import os


def double_or_fail(x: int) -> int:
    if x == 2:
        raise RuntimeError(f"run {x} blew up")
    return 2 * x


def die(x: int) -> int:
    if x == 1:
        os._exit(3)  # the worker process dies: no exception to catch
    return x

"""Consoles for the CLI: tables and copy-paste commands that survive a pipe.

rich wraps at 80 columns when stdout is not a terminal, which splits a
command someone means to copy from ``pictor devnet up | tee log``. When not
on a terminal (and ``COLUMNS`` does not say otherwise) we print wide and never
soft-wrap lines.
"""

from __future__ import annotations

import os
import sys

from rich.console import Console

PIPE_WIDTH = 250


def out_console(stderr: bool = False) -> Console:
    stream = sys.stderr if stderr else sys.stdout
    width = None
    if not stream.isatty() and not os.environ.get("COLUMNS"):
        width = PIPE_WIDTH
    return Console(stderr=stderr, width=width, soft_wrap=True)


def err_console() -> Console:
    return out_console(stderr=True)

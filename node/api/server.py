"""Serve the API with hypercorn's trio worker inside the node's own trio run."""

from __future__ import annotations

import logging
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import trio

if TYPE_CHECKING:
    # py-libp2p pulls in trio-typing, whose trio-stubs shadow trio's own types
    # and lack trio.TaskStatus; its TaskStatus is the same protocol.
    from trio_typing import TaskStatus
from fastapi import FastAPI
from hypercorn.config import Config
from hypercorn.trio import serve

from node.keyfile import write_secret_file


async def serve_api(
    app: FastAPI,
    port: int,
    stop: trio.Event,
    addr_file: Path | None = None,
    *,
    task_status: TaskStatus[str] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Listen on 127.0.0.1:``port`` (0 = any free port) until ``stop`` is set.

    Reports the base URL once listening and, if asked, writes it to
    ``addr_file`` so the CLI can find a node started on an ephemeral port.
    """
    config = Config()
    config.bind = [f"127.0.0.1:{port}"]
    config.accesslog = None
    config.errorlog = logging.getLogger("node.api")
    config.graceful_timeout = 2.0
    async with trio.open_nursery() as nursery:
        binds = await nursery.start(
            partial(serve, cast(Any, app), config, shutdown_trigger=stop.wait)
        )
        url = str(binds[0])
        if addr_file is not None:
            write_secret_file(addr_file, url + "\n")  # atomic; 0600 is harmless here
        task_status.started(url)

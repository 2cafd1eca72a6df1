"""Starting sandboxed children from one long-lived thread, so they die with the node only.

bubblewrap's ``--die-with-parent`` is ``PR_SET_PDEATHSIG``, which fires when
the *thread* that forked the child exits, not only the process. trio's
``open_process`` forks in a worker thread from its cache, and a cached thread
left idle for 10 s exits: every sandboxed render longer than that was
SIGKILLed mid-frame (measured on main: a sandboxed ``sleep 25`` ended with
-9 after 10.0 s; the benchmark's third reference frame never finished). So
every child is forked by one daemon thread that lives as long as the node's
process (:class:`Spawner`); a node killed with SIGKILL still takes its renders
along. The child is then driven from trio: its output through an ``FdStream``,
its exit through a pidfd (:class:`Child`).
"""

from __future__ import annotations

import os
import queue
import subprocess
import threading
from collections.abc import Sequence
from concurrent.futures import Future
from typing import Any

import trio


class Child:
    """A started child: ``pid``, its stdout as a trio stream, ``await wait()``."""

    def __init__(self, popen: subprocess.Popen[bytes]) -> None:
        self._popen = popen
        self.pid = popen.pid
        assert popen.stdout is not None
        self.stdout = trio.lowlevel.FdStream(os.dup(popen.stdout.fileno()))
        popen.stdout.close()

    @property
    def returncode(self) -> int | None:
        return self._popen.returncode

    def poll(self) -> int | None:
        """The exit status if the child has ended (reaps it), else None; never blocks."""
        return self._popen.poll()

    async def wait(self) -> int:
        """Wait for the child's exit without a thread (a pidfd turns readable), reap it."""
        if self._popen.poll() is None:
            pidfd = os.pidfd_open(self.pid)
            try:
                await trio.lowlevel.wait_readable(pidfd)
            finally:
                os.close(pidfd)
        return self._popen.wait()

    async def aclose(self) -> None:
        await self.stdout.aclose()


class Spawner:
    """Forks children from one daemon thread, started on first use (see the module doc)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._requests: queue.SimpleQueue[tuple[Sequence[str], dict[str, Any], Future[Any]]]
        self._requests = queue.SimpleQueue()

    def popen(self, argv: Sequence[str], options: dict[str, Any]) -> subprocess.Popen[bytes]:
        """``subprocess.Popen(argv, **options)`` forked by the spawner thread (blocks)."""
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._serve, name="pictor-spawner",
                                                daemon=True)  # fmt: skip
                self._thread.start()
        done: Future[subprocess.Popen[bytes]] = Future()
        self._requests.put((argv, options, done))
        return done.result()

    def _serve(self) -> None:
        while True:
            argv, options, done = self._requests.get()
            try:
                done.set_result(subprocess.Popen(argv, **options))
            except BaseException as exc:  # handed to the caller, the thread goes on
                done.set_exception(exc)


SPAWNER = Spawner()


async def open_child(argv: Sequence[str], **options: Any) -> Child:
    """Start ``argv`` from the spawner thread; raises ``OSError`` as ``Popen`` does."""
    popen = await trio.to_thread.run_sync(SPAWNER.popen, list(argv), options)
    return Child(popen)

"""Warm Blender processes: one per job's scene, rendering commands as they come.

Theory of operation. Starting Blender, loading the scene and syncing it cost a
second or more per process (measured: 1.2 s of a 1.6 s check was start-up), so a
worker that started one process per frame and a checker one per check paid it
again and again. A :class:`WarmProcess` is one sandboxed Blender
(:func:`node.render.sandbox.start_sandboxed`: the same filesystem view, rlimits,
scrubbed environment and ``--die-with-parent`` as a one-shot render) running
``blender_serve.py`` with the scene loaded; the node sends it render commands
over a socketpair (4-byte length + JSON both ways, see that script) and reads
its stdout for progress lines, only while a command runs.

:class:`WarmPool` bounds them: at most ``max_processes`` (a new scene evicts the
least recently used idle one; when all are busy the caller renders one-shot),
one command at a time per process, and a process is closed

- when idle for ``idle_s`` (checked on every use; and the script itself exits
  after ``idle_s`` + a margin without a command, so a forgotten one goes away);
- when its caller is done with the scene (:meth:`WarmPool.release`: a job over
  or cancelled);
- when a command fails, times out (``limits.wall_s`` per command, as a one-shot
  render) or is cancelled: its state is unknown, the next command starts afresh;
- when it has used half its CPU rlimit (``limits.cpu_s`` holds for the whole
  process, not per frame).

A reused process that died while idle is replaced and the command retried once
in a fresh one; a fresh one that fails raises ``RenderError``.
"""

from __future__ import annotations

import collections
import json
import shutil
import socket
import struct
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import trio

from node.render.base import RenderError
from node.render.blender import JOB_SCRIPT, BlenderConfig, blender_argv
from node.render.sandbox import (
    LineSplitter,
    SandboxError,
    SandboxInfo,
    end_child,
    start_sandboxed,
    take_file,
)
from node.render.spawn import Child

SERVE_SCRIPT = Path(__file__).with_name("blender_serve.py")
MAX_REPLY_BYTES = 256 * 1024
_TAIL_LINES = 60
_SELF_EXIT_MARGIN_S = 30.0
GRACE_S = 5.0  # an idle process closed gets this long to exit by itself


class ProcessDied(RenderError):
    """The warm process ended without answering a command."""


@dataclass(frozen=True)
class WarmConfig:
    max_processes: int = 2  # warm Blender processes at once (each holds a loaded scene)
    idle_s: float = 300.0  # closed after this long without a command


@dataclass(frozen=True)
class Rendered:
    name: str
    path: Path  # taken out of the sandbox into the caller's folder
    render_s: float


class WarmProcess:
    """One sandboxed Blender with ``scene`` loaded, serving render commands."""

    def __init__(self, config: BlenderConfig, sandbox: SandboxInfo, idle_s: float) -> None:
        self.config = config
        self.sandbox = sandbox
        self.idle_s = idle_s
        self.lock = trio.Lock()
        self.last_used = trio.current_time()
        self.commands = 0
        self.cpu_s = 0.0
        self.tail: collections.deque[str] = collections.deque(maxlen=_TAIL_LINES)
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        self._child: Child | None = None
        self._sock: trio.SocketStream | None = None
        self._splitter = LineSplitter(self.tail, None)
        self._closed = False
        self.opened = False  # start() ran (the pool starts it under its lock)

    @property
    def workdir(self) -> Path:
        assert self._tmp is not None
        return Path(self._tmp.name)

    @property
    def pid(self) -> int | None:
        """The sandbox's process id (its process group), while started."""
        return self._child.pid if self._child is not None else None

    @property
    def alive(self) -> bool:
        return not self._closed and self._child is not None and self._child.poll() is None

    async def start(self, scene: Path, scripts: Mapping[str, Path]) -> None:
        """Copy the scene and our scripts into a fresh work directory, start Blender."""
        self._tmp = tempfile.TemporaryDirectory(dir=self.config.work_root, prefix="pictor-warm-")
        workdir = self.workdir
        shutil.copyfile(scene, workdir / "scene.blend")  # the child may not touch our copy
        for name, source in {"pictor_job.py": JOB_SCRIPT, **scripts}.items():
            shutil.copyfile(source, workdir / name)
        ours, theirs = socket.socketpair()
        try:
            # The script leaves by itself a little after the pool would have closed it.
            idle_s = self.idle_s + min(_SELF_EXIT_MARGIN_S, self.idle_s)
            serve = {"fd": theirs.fileno(), "idle_s": idle_s}
            (workdir / "serve.json").write_text(json.dumps(serve))
            argv = blender_argv(self.config.executable, workdir, self.config.threads,
                                "pictor_serve.py", "serve.json")  # fmt: skip
            self._child = await start_sandboxed(argv, workdir, self.config.limits, self.sandbox,
                                                pass_fds=[theirs.fileno()])  # fmt: skip
        except BaseException:
            ours.close()
            self._cleanup_dir()
            raise
        finally:
            theirs.close()
        if self._closed:  # released while Blender was starting: nobody will close it later
            ours.close()
            await end_child(self._child)
            self._cleanup_dir()
            raise RenderError("blender process closed while starting: its job is over")
        self._sock = trio.SocketStream(trio.socket.from_stdlib_socket(ours))
        self.opened = True

    async def render(
        self,
        job: dict[str, Any],
        items: Sequence[dict[str, Any]],
        out_dir: Path,
        on_line: Callable[[str], None] | None = None,
    ) -> list[Rendered]:
        """Render ``items`` (see blender_serve.py) and take their files into ``out_dir``.

        Raises ``RenderError``; after any failure, timeout or cancellation the
        process is closed (the pool starts another).
        """
        assert self._sock is not None and self._child is not None
        self.commands += 1
        folder = f"out-{self.commands}"
        ok = False
        try:
            with trio.move_on_after(self.config.limits.wall_s) as scope:
                reply = await self._exchange(
                    {"op": "render", "job": job, "dir": folder, "items": list(items)}, on_line
                )
            if scope.cancelled_caught:
                raise RenderError(
                    f"blender timed out after {self.config.limits.wall_s:.0f} s", self.tail_text()
                )
            if not reply.get("ok"):
                raise RenderError(f"blender: {str(reply.get('error'))[:300]}", self.tail_text())
            self.cpu_s = float(reply.get("cpu_s", 0.0))
            rendered = self._take(reply, items, folder, out_dir)
            ok = True
            return rendered
        finally:
            self.last_used = trio.current_time()
            if not ok:
                await self.close()

    async def _exchange(
        self, command: dict[str, Any], on_line: Callable[[str], None] | None
    ) -> dict[str, Any]:
        assert self._sock is not None and self._child is not None
        body = json.dumps(command).encode()
        self._splitter.on_line = on_line
        reply: dict[str, Any] | None = None
        refused: RenderError | None = None
        async with trio.open_nursery() as nursery:  # raise nothing in here: no group
            nursery.start_soon(self._pump)
            try:
                await self._sock.send_all(struct.pack(">I", len(body)) + body)
                reply = await self._receive()
            except (OSError, trio.BrokenResourceError, trio.ClosedResourceError):
                reply = None
            except RenderError as exc:  # an oversized or unreadable reply
                refused = exc
            nursery.cancel_scope.cancel()
        self._splitter.on_line = None
        if refused is not None:
            raise refused
        if reply is None:
            released = self._closed  # closed under us: the job ended, do not start another
            await self.close()  # reaps it: the exit status goes into the message
            if released:
                raise RenderError("blender process closed: its job is over")
            code = self._child.returncode
            raise ProcessDied(f"blender exited {code} before answering", self.tail_text())
        return reply

    async def _receive(self) -> dict[str, Any] | None:
        head = await self._recv_exact(4)
        if head is None:
            return None
        (size,) = struct.unpack(">I", head)
        if size > MAX_REPLY_BYTES:
            raise RenderError(f"blender's reply of {size} bytes is over the limit")
        body = await self._recv_exact(size)
        if body is None:
            return None
        try:
            reply = json.loads(body)
        except ValueError:
            raise RenderError("blender's reply is not JSON") from None
        if not isinstance(reply, dict):
            raise RenderError("blender's reply is not an object")
        return reply

    async def _recv_exact(self, n: int) -> bytes | None:
        assert self._sock is not None
        data = b""
        while len(data) < n:
            chunk = await self._sock.receive_some(n - len(data))
            if not chunk:
                return None
            data += chunk
        return data

    async def _pump(self) -> None:
        assert self._child is not None
        while chunk := await self._child.stdout.receive_some(65536):
            self._splitter.feed(chunk)
        # stdout closed: Blender is gone; the socket read ends with EOF as well.

    def _take(
        self, reply: dict[str, Any], items: Sequence[dict[str, Any]], folder: str, out_dir: Path
    ) -> list[Rendered]:
        """The reported files, in the order asked; only names we asked for are taken."""
        done = reply.get("items")
        names = [item["name"] for item in items]
        if not isinstance(done, list) or [d.get("name") for d in done] != names:
            raise RenderError("blender's reply does not list the items asked", self.tail_text())
        out_dir.mkdir(parents=True, exist_ok=True)
        rendered = []
        try:  # the child owns its work dir: never follow what it left there
            for name, info in zip(names, done, strict=True):
                path = take_file(self.workdir, f"{folder}/{name}", out_dir / name)
                rendered.append(Rendered(name, path, float(info.get("render_s", 0.0))))
        except SandboxError as exc:
            raise RenderError(f"rendered file not taken: {exc}", self.tail_text()) from None
        finally:
            shutil.rmtree(self.workdir / folder, ignore_errors=True)  # symlink-safe on Linux
        return rendered

    def tail_text(self) -> str:
        return "\n".join(self.tail)

    async def close(self, grace_s: float = 0.0) -> None:
        """End the process, reap it, remove its work directory (idempotent).

        With ``grace_s`` (an idle process) closing the channel lets the script quit
        and Blender exit by itself first, so its CPU time is accounted to the node
        like a one-shot render's; then, or at once, the whole group is killed."""
        if self._closed:
            return
        self._closed = True
        if self._sock is not None:
            with trio.CancelScope(shield=True):
                await self._sock.aclose()  # EOF: the script's loop ends
        if self._child is not None:
            if grace_s > 0:
                with trio.CancelScope(shield=True) as scope:
                    scope.deadline = trio.current_time() + grace_s
                    await self._child.wait()
            await end_child(self._child)
        self._cleanup_dir()

    def _cleanup_dir(self) -> None:
        if self._tmp is not None:
            self._tmp.cleanup()


@dataclass
class WarmPool:
    """At most ``warm.max_processes`` warm processes, keyed by (kind, scene file)."""

    config: BlenderConfig
    sandbox: SandboxInfo
    warm: WarmConfig = field(default_factory=WarmConfig)
    scripts: Mapping[str, Path] = field(default_factory=dict)  # extra files for the script
    process_factory: Callable[[BlenderConfig, SandboxInfo, float], WarmProcess] = WarmProcess
    started: int = 0  # processes started, for tests and metrics
    _processes: dict[tuple[str, Path], WarmProcess] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.scripts = {"pictor_serve.py": SERVE_SCRIPT, **self.scripts}

    @property
    def processes(self) -> int:
        return len(self._processes)

    def process_of(self, kind: str, scene: Path) -> WarmProcess | None:
        """The warm process kept for ``scene`` (tests and metrics)."""
        return self._processes.get((kind, scene.resolve()))

    async def render(
        self,
        kind: str,
        scene: Path,
        job: dict[str, Any],
        items: Sequence[dict[str, Any]],
        out_dir: Path,
        on_line: Callable[[str], None] | None = None,
    ) -> list[Rendered] | None:
        """Render in the scene's warm process; None when every slot is busy (render
        one-shot instead). Raises ``RenderError``."""
        key = (kind, scene.resolve())
        for attempt in range(2):
            await self._sweep()
            process = self._processes.get(key)
            reused = process is not None
            if process is None:
                process = await self._open(key, scene)
                if process is None:
                    return None
            async with process.lock:  # held from the start: no command before it runs
                if not process.opened:
                    await self._start(key, process, scene)
                elif not process.alive:  # died, or closed while we waited for it
                    self._forget(key, process)
                    continue
                try:
                    rendered = await process.render(job, items, out_dir, on_line)
                except ProcessDied:
                    self._forget(key, process)
                    if reused and attempt == 0:  # it may have died while idle: once more afresh
                        continue
                    raise
                except BaseException:  # a failure, a timeout or our caller's cancellation
                    self._forget(key, process)  # closed by render(): state unknown
                    raise
                if process.cpu_s > self.config.limits.cpu_s / 2:
                    await self._close(key, GRACE_S)
                return rendered
        raise RenderError("blender process could not be kept running")

    async def release(self, kind: str, scene: Path) -> None:
        """The caller is done with ``scene`` (job over or cancelled): close its process."""
        await self._close((kind, scene.resolve()), self._grace((kind, scene.resolve())))

    async def aclose(self) -> None:
        for key in list(self._processes):
            await self._close(key, self._grace(key))

    def _grace(self, key: tuple[str, Path]) -> float:
        """Let an idle process exit by itself; a busy one is killed mid-command."""
        process = self._processes.get(key)
        return GRACE_S if process is not None and not process.lock.locked() else 0.0

    async def _open(self, key: tuple[str, Path], scene: Path) -> WarmProcess | None:
        """A new process registered under ``key`` (started by its first command)."""
        if len(self._processes) >= self.warm.max_processes:
            idle = [(p.last_used, k) for k, p in self._processes.items() if not p.lock.locked()]
            if not idle:
                return None
            await self._close(min(idle)[1], GRACE_S)
            if key in self._processes:  # another task opened it meanwhile
                return self._processes[key]
        process = self.process_factory(self.config, self.sandbox, self.warm.idle_s)
        self._processes[key] = process  # counted at once: the bound holds
        return process

    async def _start(self, key: tuple[str, Path], process: WarmProcess, scene: Path) -> None:
        try:
            await process.start(scene, self.scripts)
        except BaseException:
            self._forget(key, process)
            await process.close()
            raise
        self.started += 1

    async def _sweep(self) -> None:
        now = trio.current_time()
        for key, process in list(self._processes.items()):
            if process.lock.locked() or not process.opened:
                continue
            if not process.alive or now - process.last_used > self.warm.idle_s:
                await self._close(key, GRACE_S)

    async def _close(self, key: tuple[str, Path], grace_s: float = 0.0) -> None:
        process = self._processes.pop(key, None)
        if process is not None:
            await process.close(grace_s)

    def _forget(self, key: tuple[str, Path], process: WarmProcess) -> None:
        if self._processes.get(key) is process:
            del self._processes[key]

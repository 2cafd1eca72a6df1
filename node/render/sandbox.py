"""Running an untrusted scene's renderer in a child process we can contain and kill.

An untrusted scene is never parsed inside the node's own process. Its renderer
runs as a child with:

- a scrubbed environment: only ``PATH``, ``LANG`` and ``HOME`` = its own work
  directory, so no ``PICTOR_*`` setting, token or key path leaks to it;
- its own working directory (the caller's temporary job directory);
- rlimits set in the child before ``exec``: CPU seconds, address space (off
  for GPU renders: CUDA reserves far more virtual memory than it uses), the
  largest file it may write, and a core-dump size of 0;
- no network where the OS lets us: ``unshare -n`` (root) or ``unshare -rn``
  (unprivileged user namespace), detected once by :func:`probe_sandbox`;
  otherwise :class:`SandboxInfo` says ``network not isolated`` and the
  capability report carries that line;
- when the node runs as root (common in containers): another user. The child
  runs as ``nobody`` via ``setpriv`` (no groups, no new privileges), its work
  directory handed to that user, so a scene language that writes files (POV-Ray's
  ``#fopen``, whose own I/O restrictions we found not to hold) cannot touch the
  node's data; otherwise ``setpriv --no-new-privs`` only;
- a filesystem of its own where bubblewrap runs (Debian ``bubblewrap``): the
  system's programs and libraries read-only, a fresh ``/tmp``, ``/proc`` and
  ``/dev``, and its work directory — nothing else. A scene that names
  ``/etc/passwd``, ``~/.ssh`` or the node's data as a texture or a cache finds
  no such file, and nothing outside the work directory is writable. bubblewrap
  also gives the render its own PID namespace and ``--die-with-parent``: a
  node killed with SIGKILL takes its renders with it (PR_SET_PDEATHSIG set on
  the renderer itself would be cleared by the switch to ``nobody``). That
  signal follows the *thread* that forked bubblewrap, so every child is forked
  by one thread living as long as the node (:mod:`node.render.spawn`). Where
  bubblewrap is missing or refused, :func:`probe_sandbox` falls back to the
  rest of this list and the capability report says ``filesystem not isolated``;
- a wall-clock timeout, and its own session (process group), so a timeout or a
  trio cancellation kills the renderer *and* everything it spawned with one
  ``killpg``.

Output lines are handed to a callback as they come (progress, per-frame
results); only a bounded tail is kept for error messages.
"""

from __future__ import annotations

import collections
import os
import resource
import shutil
import signal
import subprocess
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import trio

from node.render.spawn import Child, open_child
from node.render.take import SandboxError as SandboxError  # re-exported
from node.render.take import produced_names as produced_names  # re-exported
from node.render.take import take_file as take_file  # re-exported

_TAIL_LINES = 60
_MAX_LINE_BYTES = 64 * 1024


@dataclass(frozen=True)
class SandboxLimits:
    wall_s: float = 3600.0
    cpu_s: int = 4 * 3600
    address_space_bytes: int | None = 32 << 30  # None: unlimited (GPU drivers need it)
    file_size_bytes: int = 2 << 30


@dataclass(frozen=True)
class SandboxInfo:
    """What this machine's sandbox can do, for the capability report."""

    network_prefix: tuple[str, ...]  # e.g. ("unshare", "-n", "--"); () when not isolated
    rlimits: bool
    user_prefix: tuple[str, ...] = ()  # ("setpriv", "--reuid=65534", ..., "--") or ()
    run_as: tuple[int, int] | None = None  # (uid, gid) the child runs as, when dropped
    bwrap: str | None = None  # bubblewrap, when it works here: own filesystem, PID and net

    @property
    def network_isolated(self) -> bool:
        return bool(self.network_prefix) or self.bwrap is not None

    @property
    def filesystem_isolated(self) -> bool:
        return self.bwrap is not None

    def describe(self) -> str:
        if self.bwrap is not None:
            net = "network isolated (bubblewrap)"
        elif self.network_prefix:
            net = "network isolated (" + " ".join(self.network_prefix[:-1]) + ")"
        else:
            net = "network not isolated"
        fs = ("filesystem: work dir + read-only system (bubblewrap), dies with the node"
              if self.bwrap else "filesystem not isolated (install bubblewrap)")  # fmt: skip
        user = f"runs as uid {self.run_as[0]}" if self.run_as else "runs as the node's user"
        limits = f"rlimits {'on' if self.rlimits else 'off'}"
        return f"{net}; {fs}; {user}; {limits}; scrubbed env; own process group"

    def prefix(self, workdir: Path, program: str) -> list[str]:
        """The argv before ``program`` that contains it in this sandbox."""
        if self.bwrap is None:
            return [*self.network_prefix, *self.user_prefix]
        return [*filesystem_args(self.bwrap, workdir, program), *self.user_prefix]


@dataclass(frozen=True)
class SandboxResult:
    returncode: int
    wall_s: float
    tail: str


_NOBODY = (65534, 65534)


def _works(argv: list[str]) -> bool:
    try:
        done = subprocess.run(argv, capture_output=True, timeout=10, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return done.returncode == 0


def _user_prefix() -> tuple[tuple[str, ...], tuple[int, int] | None]:
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        return (), None
    true = shutil.which("true") or "/bin/true"
    if os.geteuid() == 0:
        uid, gid = _NOBODY
        drop = (
            setpriv,
            f"--reuid={uid}",
            f"--regid={gid}",
            "--clear-groups",
            "--no-new-privs",
            "--",
        )
        if _works([*drop, true]):
            return drop, _NOBODY
    plain = (setpriv, "--no-new-privs", "--")
    return (plain, None) if _works([*plain, true]) else ((), None)


# What a renderer may read: programs, libraries, fonts and the loader's cache. Not
# /etc as a whole (passwd, keys, configs), not /home, /root, /srv, /var or /work.
SYSTEM_READ_ONLY = (
    "/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32",
    "/etc/ld.so.cache", "/etc/ld.so.conf", "/etc/ld.so.conf.d", "/etc/alternatives",
    "/etc/fonts", "/etc/localtime", "/etc/OpenCL", "/etc/vulkan", "/etc/glvnd", "/sys",
)  # fmt: skip


def filesystem_args(bwrap: str, workdir: Path, program: str) -> list[str]:
    """bubblewrap's view for one render: read-only system, fresh /tmp, the work dir."""
    # Folders bubblewrap makes for mount points are root-only (0700): a renderer that
    # runs as nobody could not reach /etc/ld.so.cache or /etc/alternatives through them.
    args = [bwrap, "--perms", "0755", "--dir", "/etc"]
    for path in SYSTEM_READ_ONLY:
        if os.path.islink(path):
            args += ["--symlink", os.readlink(path), path]
        elif os.path.exists(path):
            args += ["--ro-bind", path, path]
    args += ["--proc", "/proc", "--dev", "/dev", "--tmpfs", "/tmp"]
    for device in sorted(Path("/dev").glob("nvidia*")) + sorted(Path("/dev/dri").glob("*")):
        args += ["--dev-bind", str(device), str(device)]
    # After the fresh /tmp, or it would hide a renderer or a virtualenv that lives there.
    for home in program_homes(program):  # a renderer installed elsewhere (/opt, a venv)
        args += [*_parents(home), "--ro-bind", str(home), str(home)]
    work = workdir.resolve()
    args += [*_parents(work), "--bind", str(work), str(work), "--chdir", str(work)]
    return [*args, "--unshare-pid", "--unshare-net", "--unshare-ipc", "--unshare-uts",
            "--die-with-parent", "--"]  # fmt: skip


def _parents(path: Path) -> list[str]:
    """Create ``path``'s parents in the sandbox traversable by nobody (0711, as outside)."""
    out: list[str] = []
    for parent in reversed(path.parents):
        if str(parent) not in ("/", "/tmp"):
            out += ["--perms", "0711", "--dir", str(parent)]
    return out


def program_homes(program: str) -> list[Path]:
    """Where ``program`` lives outside the system paths: its install tree (the parent
    of ``bin/``, or its own folder) and, for a virtualenv's python, the virtualenv.

    Never ``/``, a home directory or a folder above one: a renderer in ``~/bin``
    gets ``~/bin``, not the home with its ``.pictor`` and ``.ssh``. Raises
    ``SandboxError`` for a program that cannot be found (a relative name would
    otherwise resolve against the node's working directory).
    """
    located = shutil.which(program)
    if located is None:
        raise SandboxError(f"cannot start {program}: not found (give its absolute path)")
    found = Path(located).absolute()
    resolved = found.resolve()
    tree = resolved.parent.parent if resolved.parent.name == "bin" else resolved.parent
    if not _bindable(tree):
        tree = resolved.parent  # ~/bin/blender: ~/bin only
    homes = [tree]
    if (found.parent.parent / "pyvenv.cfg").exists():
        homes.append(found.parent.parent.resolve())
    return [h for h in dict.fromkeys(homes) if _bindable(h) and not _is_system(h)]


def _is_system(path: Path) -> bool:
    return any(path == Path(p) or Path(p) in path.parents for p in SYSTEM_READ_ONLY)


def _bindable(path: Path) -> bool:
    """Not the root, nor a home directory or anything above one."""
    homes = {Path.home().resolve(), Path("/root")} | set(Path("/home").glob("*"))
    return path != Path("/") and not any(h == path or path in h.parents for h in homes)


def _probe_bwrap() -> str | None:
    bwrap = shutil.which("bwrap")
    true = shutil.which("true") or "/bin/true"
    if bwrap is None:
        return None
    with tempfile.TemporaryDirectory(prefix="pictor-probe-") as tmp:
        return bwrap if _works([*filesystem_args(bwrap, Path(tmp), true), true]) else None


def probe_sandbox() -> SandboxInfo:
    """Find out once what this machine allows: bubblewrap (own filesystem, PID and
    network namespaces), else a new network namespace (in most containers only for
    root; unprivileged user namespaces are often disabled), and dropping to another
    user."""
    user_prefix, run_as = _user_prefix()
    bwrap = _probe_bwrap()
    if bwrap is not None:
        return SandboxInfo((), True, user_prefix, run_as, bwrap)
    unshare = shutil.which("unshare")
    true = shutil.which("true") or "/bin/true"
    for flags in [("-n",), ("-r", "-n")] if unshare else []:
        if _works([str(unshare), *flags, "--", true]):
            return SandboxInfo((str(unshare), *flags, "--"), True, user_prefix, run_as)
    return SandboxInfo((), True, user_prefix, run_as)


def _hand_over(workdir: Path, run_as: tuple[int, int]) -> None:
    """Give the work directory tree to the user the child runs as."""
    uid, gid = run_as
    for parent in workdir.resolve().parents:
        if not parent.stat().st_mode & 0o001:
            raise SandboxError(f"{parent} is not traversable by uid {uid}: use another work root")
    os.chown(workdir, uid, gid)
    for root, dirs, files in os.walk(workdir):
        for name in dirs + files:
            os.chown(os.path.join(root, name), uid, gid, follow_symlinks=False)


def scrubbed_env(workdir: Path, extra: dict[str, str] | None = None) -> dict[str, str]:
    env = {
        "PATH": os.environ.get("PATH", "/usr/local/bin:/usr/bin:/bin"),
        "HOME": str(workdir),
        "LANG": "C.UTF-8",
        "TMPDIR": str(workdir),
    }
    env.update(extra or {})
    return env


def _limit_child(limits: SandboxLimits) -> Callable[[], None]:
    def apply() -> None:  # runs in the forked child before exec: keep it to syscalls
        resource.setrlimit(resource.RLIMIT_CPU, (limits.cpu_s, limits.cpu_s))
        resource.setrlimit(resource.RLIMIT_FSIZE, (limits.file_size_bytes,) * 2)
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
        if limits.address_space_bytes is not None:
            resource.setrlimit(resource.RLIMIT_AS, (limits.address_space_bytes,) * 2)

    return apply


def _kill_group(process: Child) -> None:
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass  # already gone


async def run_sandboxed(
    argv: Sequence[str],
    workdir: Path,
    limits: SandboxLimits,
    info: SandboxInfo,
    on_line: Callable[[str], None] | None = None,
    env_extra: dict[str, str] | None = None,
) -> SandboxResult:
    """Run ``argv`` contained; return its exit status. Raises ``SandboxError`` on timeout.

    Cancelling the calling task kills the whole process group before returning.
    """
    tail: collections.deque[str] = collections.deque(maxlen=_TAIL_LINES)
    start = trio.current_time()
    process = await start_sandboxed(argv, workdir, limits, info, env_extra)
    try:
        with trio.move_on_after(limits.wall_s) as scope:
            await pump_lines(process.stdout, tail, on_line)
            returncode = await process.wait()
    finally:
        # Normal exit, timeout or cancellation: nothing of the group may outlive us.
        await end_child(process)
    wall_s = trio.current_time() - start
    if scope.cancelled_caught:
        raise SandboxError(f"{Path(argv[0]).name} timed out after {limits.wall_s:.0f} s")
    return SandboxResult(returncode, wall_s, "\n".join(tail))


async def start_sandboxed(
    argv: Sequence[str],
    workdir: Path,
    limits: SandboxLimits,
    info: SandboxInfo,
    env_extra: dict[str, str] | None = None,
    pass_fds: Sequence[int] = (),
) -> Child:
    """Start ``argv`` contained (see the module doc), its output on ``Child.stdout``.

    The caller must end it with :func:`end_child`, also when cancelled. ``pass_fds``
    are inherited by the renderer (a command channel of a long-lived render).
    """
    if info.run_as is not None:
        _hand_over(workdir, info.run_as)
    try:
        return await open_child(
            [*info.prefix(workdir, argv[0]), *argv],
            cwd=workdir,
            env=scrubbed_env(workdir, env_extra),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=_limit_child(limits) if info.rlimits else None,
            pass_fds=tuple(pass_fds),
        )
    except OSError as exc:
        raise SandboxError(f"cannot start {argv[0]}: {exc}") from exc


async def end_child(process: Child) -> None:
    """Kill the child's whole process group and reap it (shielded: also when cancelled)."""
    _kill_group(process)
    with trio.CancelScope(shield=True):
        await process.wait()
        await process.aclose()


class LineSplitter:
    """Bytes in, lines out, a partial line kept across calls; over-long lines are cut."""

    def __init__(self, tail: collections.deque[str], on_line: Callable[[str], None] | None) -> None:
        self.tail = tail
        self.on_line = on_line
        self._pending = b""

    def feed(self, chunk: bytes) -> None:
        self._pending += chunk
        *lines, self._pending = self._pending.split(b"\n")
        if len(self._pending) > _MAX_LINE_BYTES:  # a renderer spewing without newlines
            lines.append(self._pending)
            self._pending = b""
        for raw in lines:
            self._emit(raw.decode("utf-8", "replace").rstrip("\r"))

    def flush(self) -> None:
        if self._pending:
            self._emit(self._pending.decode("utf-8", "replace"))
            self._pending = b""

    def _emit(self, line: str) -> None:
        self.tail.append(line)
        if self.on_line is not None:
            self.on_line(line)


async def pump_lines(
    stream: trio.abc.ReceiveStream,
    tail: collections.deque[str],
    on_line: Callable[[str], None] | None,
) -> None:
    splitter = LineSplitter(tail, on_line)
    while chunk := await stream.receive_some(65536):
        splitter.feed(chunk)
    splitter.flush()

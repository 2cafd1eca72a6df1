"""Fixtures for real renders: small generated scenes, built once per session by Blender."""

from __future__ import annotations

import os
import select
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from node.render.sandbox import SandboxInfo, probe_sandbox
from protocol.messages import RenderSettings

REPO = Path(__file__).resolve().parents[2]
REFERENCE_SCRIPT = REPO / "node" / "render" / "reference_scene.py"

needs_blender = pytest.mark.skipif(shutil.which("blender") is None, reason="blender not installed")
needs_povray = pytest.mark.skipif(shutil.which("povray") is None, reason="povray not installed")

# Small on purpose: the whole render suite must stay under a few minutes on 2 cores.
SMALL = RenderSettings("CYCLES", 64, 48, 8, 7, "PNG_RGBA8")


def blender_expr(scene: Path | None, expr: str, *flags: str) -> subprocess.CompletedProcess[str]:
    argv = ["blender", "-b", *flags, "--factory-startup"]
    argv += [str(scene)] if scene else []
    argv += ["--python-exit-code", "1", "--python-expr", expr]
    return subprocess.run(argv, capture_output=True, text=True, timeout=120, check=False)


def live_group_members(pgid: int) -> list[int]:
    """Processes of group ``pgid`` that are still running (zombies awaiting a reaper,
    e.g. orphaned grandchildren in a container without an init, do not count)."""
    alive = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        state, _ppid, group = stat[stat.rindex(")") + 2 :].split()[:3]
        if int(group) == pgid and state not in ("Z", "X"):
            alive.append(int(entry.name))
    return alive


def group_gone(pgid: int, within_s: float = 5.0) -> bool:
    """SIGKILL is delivered asynchronously: wait on each member's pidfd until the group is gone."""
    deadline = time.monotonic() + within_s
    while alive := live_group_members(pgid):
        remaining_s = deadline - time.monotonic()
        if remaining_s <= 0:
            return False
        fds = []
        for pid in alive:
            try:
                fds.append(os.pidfd_open(pid))
            except ProcessLookupError:
                continue
        try:
            if fds:  # readable once that process has exited
                select.select(fds, [], [], remaining_s)
        finally:
            for fd in fds:
                os.close(fd)
    return True


@pytest.fixture
def work_root() -> Iterator[Path]:
    """A directory the sandbox user can traverse (pytest's tmp_path is private to root,
    and a sandbox running as root hands renders to ``nobody``)."""
    with tempfile.TemporaryDirectory(prefix="pictor-test-") as tmp:
        os.chmod(tmp, 0o711)
        yield Path(tmp)


@pytest.fixture(scope="session")
def sandbox_info() -> SandboxInfo:
    return probe_sandbox()


@pytest.fixture(scope="session")
def small_scene(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The reference scene, 3 frames (a sphere moves, so frames differ)."""
    if shutil.which("blender") is None:
        pytest.skip("blender not installed")
    out = tmp_path_factory.mktemp("scenes") / "small.blend"
    done = subprocess.run(
        ["blender", "-b", "-Y", "--factory-startup", "--python-exit-code", "1",
         "--python", str(REFERENCE_SCRIPT), "--", str(out), "3"],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0 and out.exists(), done.stdout[-2000:]
    return out

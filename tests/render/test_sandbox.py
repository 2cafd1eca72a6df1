"""The sandbox: scrubbed environment, rlimits, network namespace, timeout, group kill."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import trio

from node.render.sandbox import (
    SandboxError,
    SandboxInfo,
    SandboxLimits,
    probe_sandbox,
    run_sandboxed,
)
from tests.render.conftest import group_gone

# ``work_root`` (conftest): a directory the sandbox user can reach.

LIMITS = SandboxLimits(wall_s=30, cpu_s=60, address_space_bytes=4 << 30, file_size_bytes=1 << 20)


async def _python(
    code: str, workdir: Path, info: SandboxInfo, limits: SandboxLimits = LIMITS
) -> list[str]:
    lines: list[str] = []
    result = await run_sandboxed([sys.executable, "-c", code], workdir, limits, info, lines.append)
    assert result.returncode == 0, result.tail
    return lines


async def test_environment_is_scrubbed(work_root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PICTOR_API_TOKEN", "secret")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "secret")
    lines = await _python(
        "import os, json; print(json.dumps(dict(os.environ))); print(os.getcwd())",
        work_root,
        probe_sandbox(),
    )
    env = json.loads(lines[0])
    # PWD: bubblewrap sets it to the work directory it changes into.
    assert set(env) <= {"PATH", "HOME", "LANG", "TMPDIR", "LC_CTYPE", "PWD"}
    assert env["HOME"] == str(work_root) and lines[1] == str(work_root)


async def test_rlimits_are_applied(work_root: Path) -> None:
    code = (
        "import resource as r; print(r.getrlimit(r.RLIMIT_FSIZE)[0], r.getrlimit(r.RLIMIT_CPU)[0],"
        " r.getrlimit(r.RLIMIT_AS)[0], r.getrlimit(r.RLIMIT_CORE)[0])"
    )
    lines = await _python(code, work_root, probe_sandbox())
    assert lines[0].split() == [str(1 << 20), "60", str(4 << 30), "0"]
    # Writing past the file size limit fails in the child (SIGXFSZ kills it).
    big = "open('big', 'wb').write(b'x' * (2 << 20))"
    result = await run_sandboxed([sys.executable, "-c", big], work_root, LIMITS, probe_sandbox())
    assert result.returncode != 0
    assert (work_root / "big").stat().st_size <= 1 << 20


async def test_network_namespace_when_permitted(work_root: Path) -> None:
    info = probe_sandbox()
    if not info.network_isolated:
        assert "network not isolated" in info.describe()
        pytest.skip("this OS does not permit a new network namespace")
    code = "import socket; print(sorted(n for _, n in socket.if_nameindex()))"
    lines = await _python(code, work_root, info)
    assert lines[0] == "['lo']"  # a fresh namespace: loopback only, and it is down
    assert sorted(n for _, n in socket.if_nameindex()) != ["lo"]  # the host has more


async def test_without_isolation_the_report_says_so(work_root: Path) -> None:
    info = SandboxInfo(network_prefix=(), rlimits=True)
    assert info.describe().startswith("network not isolated")
    await _python("print('ok')", work_root, info)


async def test_wall_timeout_kills_the_group(work_root: Path) -> None:
    limits = SandboxLimits(wall_s=1.0, cpu_s=60, address_space_bytes=None)
    lines: list[str] = []
    # A child that forks a grandchild in the same group, then both sleep.
    script = "sleep 60 & echo $$; wait"
    with pytest.raises(SandboxError, match="timed out"):
        await run_sandboxed(["sh", "-c", script], work_root, limits, probe_sandbox(), lines.append)
    assert group_gone(int(lines[0]))


async def test_cancel_kills_the_group(work_root: Path) -> None:
    lines: list[str] = []
    got_pid = trio.Event()

    def on_line(line: str) -> None:
        lines.append(line)
        got_pid.set()

    async with trio.open_nursery() as nursery:
        nursery.start_soon(
            run_sandboxed, ["sh", "-c", "sleep 60 & echo $$; wait"], work_root, LIMITS,
            probe_sandbox(), on_line,
        )  # fmt: skip
        await got_pid.wait()
        nursery.cancel_scope.cancel()
    assert group_gone(int(lines[0]))


async def test_missing_executable_is_a_sandbox_error(work_root: Path) -> None:
    info = SandboxInfo(network_prefix=(), rlimits=True)
    with pytest.raises(SandboxError):
        await run_sandboxed(["/nonexistent/renderer"], work_root, LIMITS, info)


async def test_runs_as_nobody_when_root(work_root: Path, tmp_path: Path) -> None:
    info = probe_sandbox()
    if os.geteuid() != 0:
        assert info.run_as is None
        pytest.skip("only root drops to another user")
    assert info.run_as == (65534, 65534)
    lines = await _python("import os; print(os.getuid(), os.getgroups())", work_root, info)
    assert lines[0] == "65534 []"
    # The node's private directories are out of reach, and we say so up front.
    with pytest.raises(SandboxError, match="not traversable"):
        await run_sandboxed(["true"], tmp_path, LIMITS, info)


@pytest.mark.parametrize(
    "plant",
    [
        "os.symlink(SECRET, 'out/frame_0001.png')",  # the frame is a link to a host file
        "os.rmdir('out'); os.symlink(os.path.dirname(SECRET), 'out')",  # out/ is a link
        "os.mkfifo('out/frame_0001.png')",  # would block a reader forever
    ],
)
async def test_what_a_render_leaves_is_taken_without_following_links(
    work_root: Path, tmp_path: Path, plant: str
) -> None:
    """A render owns its work dir; the node once is_file()'d and moved what it named there,
    as root, following links: a planted ``out -> ~/.pictor`` carried node.key off as a
    frame (found by review). Taking a file now refuses links and non-regular files."""
    from node.render.sandbox import produced_names, take_file

    secret = tmp_path / "node.key"
    secret.write_bytes(b"host secret")
    (work_root / "out").mkdir()
    code = f"import os; SECRET = {str(secret)!r}; {plant}"
    done = subprocess.run([sys.executable, "-c", code], cwd=work_root, check=False)
    assert done.returncode == 0
    dest = tmp_path / "taken" / "frame_0001.png"
    with pytest.raises(SandboxError):
        take_file(work_root, "out/frame_0001.png", dest)
    assert not dest.exists()
    assert secret.read_bytes() == b"host secret"  # still there, untouched
    if (work_root / "out").is_dir() and not (work_root / "out").is_symlink():
        assert produced_names(work_root, "out") == []  # a link or fifo is not a product


def test_a_plain_product_is_copied(work_root: Path, tmp_path: Path) -> None:
    from node.render.sandbox import produced_names, take_file

    (work_root / "out").mkdir()
    (work_root / "out" / "tile_0.png").write_bytes(b"pixels")
    assert produced_names(work_root, "out") == ["tile_0.png"]
    taken = take_file(work_root, "out/tile_0.png", tmp_path / "t" / "tile_0.png")
    assert taken.read_bytes() == b"pixels"
    with pytest.raises(SandboxError):
        take_file(work_root, "../etc/passwd", tmp_path / "x")


def test_a_planted_out_link_cannot_carry_a_host_file_off_as_a_frame(
    work_root: Path, tmp_path: Path
) -> None:
    """The attack through the Blender backend's own collection step."""
    from node.render.base import FrameOutput, RenderError
    from node.render.blender import LineParser, collect_frames

    keys = tmp_path / "data"
    keys.mkdir()
    (keys / "node.key").write_bytes(b"host secret")
    (work_root / "out").symlink_to(keys)  # what a compromised renderer can leave behind
    parser = LineParser(None)
    parser.outputs.append(FrameOutput(1, Path("/anything/node.key"), 0.1))
    with pytest.raises(RenderError, match="not taken"):
        collect_frames(0, "", parser, [1], work_root, tmp_path / "frames")
    assert (keys / "node.key").read_bytes() == b"host secret"
    assert not (tmp_path / "frames" / "node.key").exists()


def test_a_renderer_outside_the_system_never_exposes_a_home(tmp_path: Path) -> None:
    """Review finding: a renderer in ~/bin bound the whole home (~/.pictor, ~/.ssh) into
    the sandbox, and a name ``which`` could not find bound the working directory."""
    from node.render.sandbox import program_homes

    home_bin = Path.home() / "bin"
    created = not home_bin.exists()
    home_bin.mkdir(exist_ok=True)
    program = home_bin / f"pictor-test-renderer-{os.getpid()}"
    try:
        program.write_text("#!/bin/sh\n")
        program.chmod(0o755)
        assert program_homes(str(program)) == [home_bin.resolve()]
    finally:
        program.unlink()
        if created:
            home_bin.rmdir()
    with pytest.raises(SandboxError, match="not found"):
        program_homes("pictor-no-such-renderer")
    assert program_homes("sh") == []  # system programs need nothing extra

"""The render sandbox's filesystem (issue 15): a hostile scene sees only its work dir.

Measured on main before bubblewrap: an image texture at an absolute path put a
world-readable file's pixels into a verified, paid frame; a scene wrote files
outside its work dir; a SIGKILLed worker left its Blender rendering.
"""

from __future__ import annotations

import os
import select
import signal
import subprocess
import sys
import tempfile
import textwrap
import uuid
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import trio
from PIL import Image

from node.render.blender import BlenderBackend, BlenderConfig
from node.render.sandbox import SandboxInfo, SandboxLimits, probe_sandbox, run_sandboxed
from tests.render.conftest import SMALL, blender_expr, needs_blender

needs_bwrap = pytest.mark.skipif(
    not probe_sandbox().filesystem_isolated, reason="bubblewrap missing or refused here"
)
pytestmark = needs_bwrap
SYSTEM_PYTHON = "/usr/bin/python3"


@pytest.fixture
def secret() -> Iterator[Path]:
    """A world-readable file outside any work dir (as /etc/passwd or a shared home is)."""
    with tempfile.TemporaryDirectory(prefix="pictor-secret-") as tmp:
        os.chmod(tmp, 0o755)  # /tmp itself is world-traversable: nobody could read it
        path = Path(tmp) / "secret.png"
        Image.new("RGBA", (8, 8), (255, 0, 0, 255)).save(path)
        os.chmod(path, 0o644)
        yield path


async def run_python(code: str, work_root: Path) -> list[str]:
    lines: list[str] = []
    result = await run_sandboxed([SYSTEM_PYTHON, "-c", code], work_root, SandboxLimits(wall_s=60),
                                 probe_sandbox(), lines.append)  # fmt: skip
    assert result.returncode == 0, result.tail
    return lines


async def test_files_outside_the_work_dir_are_invisible(secret: Path, work_root: Path) -> None:
    outside = [str(secret), "/etc/passwd", "/root", str(Path.cwd() / "pyproject.toml")]
    code = f"import os; print([os.path.exists(p) for p in {outside!r}])"
    assert (await run_python(code, work_root))[-1] == str([False] * len(outside))
    assert secret.exists() and Path("/etc/passwd").exists()  # they are there, outside


async def test_writes_outside_the_work_dir_do_not_reach_the_host(
    tmp_path: Path, work_root: Path
) -> None:
    marker = tmp_path / "MARK_escape"
    code = textwrap.dedent(f"""
        import os
        for path in ({str(marker)!r}, "/usr/MARK_escape", "/tmp/MARK_escape"):
            try:
                os.makedirs(os.path.dirname(path), exist_ok=True)
                open(path, "w").write("ran")
                print("wrote", path)
            except OSError as exc:
                print("refused", path, type(exc).__name__)
        open("inside.txt", "w").write("ok")
    """)
    lines = await run_python(code, work_root)
    assert any("refused /usr/MARK_escape" in line for line in lines)
    assert not marker.exists() and not Path("/usr/MARK_escape").exists()
    assert not Path("/tmp/MARK_escape").exists()  # the sandbox's /tmp is its own
    assert (work_root / "inside.txt").read_text() == "ok"


def test_renders_die_with_their_node(work_root: Path) -> None:
    """SIGKILL of the process that started a render kills the render too."""
    token = f"pictor-orphan-{uuid.uuid4().hex}"
    node = textwrap.dedent(f"""
        import trio
        from pathlib import Path
        from node.render.sandbox import SandboxLimits, probe_sandbox, run_sandboxed
        async def main():
            code = "import sys, time; print('sleeping', flush=True); time.sleep(600)"
            await run_sandboxed([{SYSTEM_PYTHON!r}, "-c", code, {token!r}], Path({str(work_root)!r}),
                                SandboxLimits(), probe_sandbox(), lambda line: print(line, flush=True))
        trio.run(main)
    """)
    with subprocess.Popen([sys.executable, "-c", node], stdout=subprocess.PIPE, text=True) as proc:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "sleeping"  # the render runs
        (render,) = _pids_with(token, argv0=SYSTEM_PYTHON)
        pidfd = os.pidfd_open(render)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        poller = select.poll()
        poller.register(pidfd, select.POLLIN)
        assert poller.poll(10_000), "the render outlived its node"
        os.close(pidfd)
    assert _pids_with(token) == []


def _pids_with(token: str, argv0: str | None = None) -> list[int]:
    """Processes with ``token`` in their command line (bubblewrap's, the render's)."""
    found = []
    for entry in Path("/proc").iterdir():
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0") if entry.name.isdigit() else []
        except OSError:
            continue
        if token.encode() in argv and (argv0 is None or argv[0] == argv0.encode()):
            found.append(int(entry.name))
    return found


_TEXTURE = """
import bpy
image = bpy.data.images.load({secret!r})
material = bpy.data.materials.new("leak")
material.use_nodes = True
nodes = material.node_tree.nodes
tex = nodes.new("ShaderNodeTexImage")
tex.image = image
emit = nodes.new("ShaderNodeEmission")
material.node_tree.links.new(tex.outputs["Color"], emit.inputs["Color"])
out = nodes["Material Output"]
material.node_tree.links.new(emit.outputs["Emission"], out.inputs["Surface"])
for obj in bpy.data.objects:
    if obj.type == "MESH":
        obj.data.materials.clear()
        obj.data.materials.append(material)
bpy.ops.wm.save_as_mainfile(filepath={out!r})
"""


@needs_blender
@pytest.mark.slow
async def test_an_absolute_texture_path_cannot_put_a_host_file_into_a_frame(
    small_scene: Path, sandbox_info: SandboxInfo, secret: Path, tmp_path: Path, work_root: Path
) -> None:
    hostile = tmp_path / "leak.blend"
    done = blender_expr(small_scene, _TEXTURE.format(secret=str(secret), out=str(hostile)), "-Y")
    assert done.returncode == 0 and hostile.exists(), done.stdout[-2000:]
    # Control: without the sandbox's filesystem the secret's red fills the objects.
    assert _red_share(await _render(hostile, _without_filesystem(sandbox_info), work_root)) > 0.05
    frame = await _render(hostile, sandbox_info, work_root)
    assert _red_share(frame) < 0.001  # Blender drew its missing-texture colour instead


def _without_filesystem(info: SandboxInfo) -> SandboxInfo:
    return SandboxInfo((), info.rlimits, info.user_prefix, info.run_as, None)


async def _render(scene: Path, info: SandboxInfo, work_root: Path) -> np.ndarray:
    backend = BlenderBackend(BlenderConfig(work_root=work_root), info)
    with trio.fail_after(300):
        (output,) = await backend.render_frames(scene, SMALL, [1], work_root / "out")
    with Image.open(output.path) as image:
        return np.asarray(image.convert("RGB"), dtype=np.int32)


def _red_share(pixels: np.ndarray) -> float:
    red = (pixels[..., 0] > 200) & (pixels[..., 1] < 40) & (pixels[..., 2] < 40)
    return float(red.mean())

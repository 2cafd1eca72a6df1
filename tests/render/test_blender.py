"""Real Blender renders through our backend: frames, tiles, progress, cancel, failures."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import trio
from PIL import Image

from node.render.base import Region, RenderError
from node.render.blender import BlenderBackend, BlenderConfig, blender_border
from node.render.sandbox import SandboxInfo
from tests.render.conftest import SMALL, group_gone, needs_blender

pytestmark = needs_blender


def pixels(path: Path) -> np.ndarray:
    with Image.open(path) as image:
        return np.asarray(image.convert("RGBA"))


def test_border_conversion_flips_y() -> None:
    # Top-left 32x24 of a 64x48 frame is Blender's upper-left: y from 0.5 to 1.
    assert blender_border(Region(0, 0, 32, 24), 64, 48) == (0.0, 0.5, 0.5, 1.0)
    with pytest.raises(ValueError):
        blender_border(Region(0, 0, 65, 10), 64, 48)


@pytest.mark.slow
async def test_frames_in_one_process_and_tile_equals_region(
    small_scene: Path, sandbox_info: SandboxInfo, tmp_path: Path
) -> None:
    backend = BlenderBackend(BlenderConfig(), sandbox_info)
    seen: list[tuple[int, float]] = []
    frames = await backend.render_frames(
        small_scene, SMALL, [1, 3], tmp_path / "full", lambda f, x: seen.append((f, x))
    )
    assert [f.frame for f in frames] == [1, 3]
    full_1, full_3 = pixels(frames[0].path), pixels(frames[1].path)
    assert full_1.shape == (48, 64, 4)
    assert not np.array_equal(full_1, full_3)  # the sphere moved
    assert (1, 1.0) in seen and (3, 1.0) in seen
    assert any(0 < x < 1 for _, x in seen)  # Blender's "Sample a/b" lines parsed

    # Another process, one thread instead of all: the tile must match exactly.
    one_thread = BlenderBackend(BlenderConfig(threads=1), sandbox_info)
    region = Region(10, 5, 42, 29)
    tile = await one_thread.render_region(small_scene, SMALL, 3, region, tmp_path / "tile")
    tile_px = pixels(tile.path)
    assert tile_px.shape == (24, 32, 4)
    assert np.array_equal(tile_px, full_3[5:29, 10:42])


async def test_identify_reports_build_and_device(sandbox_info: SandboxInfo) -> None:
    identity = await BlenderBackend(BlenderConfig(), sandbox_info).identify()
    assert identity.build.startswith("blender-3.")
    assert identity.device_class.startswith("cpu-")


async def test_broken_scene_is_a_render_error(sandbox_info: SandboxInfo, tmp_path: Path) -> None:
    bad = tmp_path / "bad.blend"
    bad.write_bytes(b"BLENDER-v304 but not really a blend file" * 10)
    with pytest.raises(RenderError) as caught:
        await BlenderBackend(BlenderConfig(), sandbox_info).render_frames(
            bad, SMALL, [1], tmp_path / "out"
        )
    assert "frames not rendered: [1]" in str(caught.value)
    assert not (tmp_path / "out").exists()


async def test_refuses_unknown_engine_before_starting(
    small_scene: Path, sandbox_info: SandboxInfo, tmp_path: Path
) -> None:
    settings = SMALL.__class__("LUXCORE", 64, 48, 8, 7, "PNG_RGBA8")
    with pytest.raises(RenderError):
        await BlenderBackend(BlenderConfig(), sandbox_info).render_frames(
            small_scene, settings, [1], tmp_path
        )


@pytest.mark.slow
async def test_cancel_kills_the_process_group(
    small_scene: Path, sandbox_info: SandboxInfo, tmp_path: Path, work_root: Path
) -> None:
    long = SMALL.__class__("CYCLES", 64, 48, 1_000_000, 7, "PNG_RGBA8")
    backend = BlenderBackend(BlenderConfig(work_root=work_root), sandbox_info)
    started = trio.Event()

    def progress(_frame: int, _fraction: float) -> None:
        started.set()

    async with trio.open_nursery() as nursery:

        async def render() -> None:
            await backend.render_frames(small_scene, long, [1], tmp_path / "out", progress)

        nursery.start_soon(render)
        await started.wait()  # Blender is sampling
        pgids = _blender_pgids()
        assert pgids
        nursery.cancel_scope.cancel()
    for pgid in pgids:
        assert group_gone(pgid)
    assert list(work_root.iterdir()) == []  # work directory removed too


def _blender_pgids() -> set[int]:
    """Process groups of blender processes descending from this test process (directly,
    or through bubblewrap and setpriv)."""
    parent_of, names, group_of = {}, {}, {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        pid = int(entry.name)
        names[pid] = stat[stat.index("(") + 1 : stat.rindex(")")]
        fields = stat[stat.rindex(")") + 2 :].split()
        parent_of[pid], group_of[pid] = int(fields[1]), int(fields[2])

    def descends(pid: int) -> bool:
        while pid > 1:
            pid = parent_of.get(pid, 0)
            if pid == os.getpid():
                return True
        return False

    return {group_of[p] for p, name in names.items() if name == "blender" and descends(p)}


async def test_gpu_device_without_gpu_is_refused(sandbox_info: SandboxInfo) -> None:
    from node.render.gpu import probe_gpus

    if probe_gpus().available:
        pytest.skip("this machine has an NVIDIA GPU")
    with pytest.raises(RenderError, match="no GPU"):
        await BlenderBackend(BlenderConfig(device="OPTIX"), sandbox_info).identify()

"""Real-Blender fixtures: a generated scene, honest renders and a tamper set.

Small on purpose (64x48, 8 samples): with 32 px tiles the frame has 4 cells,
so the default k (8) checks every cell and each cheat is caught with
probability 1 by the stated formula — no flaky expectations. Skipped where no
``blender`` is installed.
"""

from __future__ import annotations

import io
import json
import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import trio
from PIL import Image

from node.render.base import RendererIdentity
from node.render.blender import BlenderBackend, BlenderConfig
from node.render.device import cpu_device_class
from node.verify.blender_tiles import BlenderTileRenderer, TileRenders
from node.verify.images import Pixels, load_image, save_png
from protocol.messages import RenderSettings
from protocol.verification import Tile

REPO = Path(__file__).resolve().parents[2]
REFERENCE_SCENE = REPO / "node" / "render" / "reference_scene.py"
SETTINGS = RenderSettings("CYCLES", 64, 48, 8, 7, "PNG_RGBA8")
BUILD = "blender-3.4.1"

needs_blender = pytest.mark.skipif(shutil.which("blender") is None, reason="blender not installed")


@dataclass(frozen=True)
class World:
    root: Path
    scene: Path
    job_json: Path
    honest: dict[int, Path]  # frame -> honest render
    tampered: dict[str, Path]  # name -> tampered image claiming to be frame 1


async def _render(
    scene: Path, settings: RenderSettings, frames: list[int], out: Path
) -> list[Path]:
    outputs = await BlenderBackend(BlenderConfig()).render_frames(scene, settings, frames, out)
    return [o.path for o in outputs]


def _variant(settings: RenderSettings, **change: object) -> RenderSettings:
    return RenderSettings(**{**settings.__dict__, **change})  # type: ignore[arg-type]


def _tamper_set(root: Path, honest: Pixels, renders: dict[str, Pixels]) -> dict[str, Path]:
    rng = np.random.default_rng(5)
    h, w = honest.shape[:2]
    out: dict[str, Pixels] = {
        "other_seed": renders["other_seed"],
        "fewer_samples": renders["fewer_samples"],
        "other_frame": renders["other_frame"],
    }
    shifted = np.roll(honest, 1, axis=1)
    shifted[:, 0] = honest[:, 0]
    out["shift_1px"] = shifted
    blanked = honest.copy()
    blanked[10:30, 20:44, :3] = 0
    out["blanked_region"] = blanked
    noised = honest.copy().astype(np.int16)
    noised[8:40, 8:40, :3] += rng.integers(-3, 4, size=(32, 32, 3)).astype(np.int16)
    out["noised_region"] = np.clip(noised, 0, 255).astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(honest[:, :, :3]).save(buf, format="JPEG", quality=95)
    jpeg = np.asarray(Image.open(io.BytesIO(buf.getvalue())).convert("RGBA"))
    out["recompressed_jpeg"] = jpeg
    requant = honest.copy()
    requant[:, :, :3] &= 0xFC
    out["requantised_6bit"] = requant
    small = Image.fromarray(renders["half_res"])
    out["upscaled_half_res"] = np.asarray(small.resize((w, h), Image.Resampling.BILINEAR))
    partial = honest.copy()
    partial[h // 2 :] = renders["fewer_samples"][h // 2 :]
    out["partial_render"] = partial
    paths = {}
    for name, pixels in out.items():
        paths[name] = root / f"tamper_{name}.png"
        save_png(paths[name], pixels)
    return paths


@pytest.fixture(scope="session")
def world(tmp_path_factory: pytest.TempPathFactory) -> World:
    if shutil.which("blender") is None:
        pytest.skip("blender not installed")
    root = tmp_path_factory.mktemp("verify")
    scene = root / "scene.blend"
    subprocess.run(
        [
            "blender",
            "-b",
            "-Y",
            "--factory-startup",
            "--python",
            str(REFERENCE_SCENE),
            "--",
            str(scene),
            "4",
        ],
        check=True,
        capture_output=True,
        timeout=120,
    )

    async def render_all() -> dict[str, list[Path]]:
        return {
            "honest": await _render(scene, SETTINGS, [1, 2], root / "honest"),
            "other_seed": await _render(scene, _variant(SETTINGS, seed=8), [1], root / "seed"),
            "fewer_samples": await _render(scene, _variant(SETTINGS, samples=2), [1], root / "few"),
            "half_res": await _render(
                scene, _variant(SETTINGS, resolution_x=32, resolution_y=24), [1], root / "half"
            ),
        }

    paths = trio.run(render_all)
    honest = {1: paths["honest"][0], 2: paths["honest"][1]}
    renders = {name: load_image(p[0]) for name, p in paths.items() if name != "honest"}
    renders["other_frame"] = load_image(honest[2])
    job = root / "job.json"
    job.write_text(
        json.dumps(
            {
                "renderer_build": BUILD,
                "worker_device_class": cpu_device_class(),
                "settings": SETTINGS.__dict__,
            }
        )
    )
    tampered = _tamper_set(root, load_image(honest[1]), renders)
    return World(root, scene, job, honest, tampered)


class CachingRenderer:
    """Real Blender re-renders, memoised per (scene, settings, frame, tiles): the
    tamper matrix re-uses one render of the cells instead of one per image."""

    def __init__(self) -> None:
        self.inner = BlenderTileRenderer()
        self.cache: dict[tuple[object, ...], list[bytes]] = {}
        self.renders = 0

    async def identify(self) -> RendererIdentity:
        return await self.inner.identify()

    async def render_tiles(
        self,
        scene: Path,
        settings: RenderSettings,
        frame: int,
        tiles: Sequence[Tile],
        out_dir: Path,
    ) -> TileRenders:
        key = (scene, settings, frame, tuple(tiles))
        if key not in self.cache:
            self.renders += 1
            done = await self.inner.render_tiles(scene, settings, frame, tiles, out_dir)
            self.cache[key] = [p.read_bytes() for p in done.paths]
        out_dir.mkdir(parents=True, exist_ok=True)
        paths = []
        for i, data in enumerate(self.cache[key]):
            paths.append(out_dir / f"tile_{i:03d}.png")
            paths[-1].write_bytes(data)
        return TileRenders(tuple(paths), 0.0, 0.0)


@pytest.fixture(scope="session")
def caching_renderer() -> CachingRenderer:
    return CachingRenderer()

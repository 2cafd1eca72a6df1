"""The checker against real Blender renders: honest accepted, every tamper rejected."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import numpy as np
import pytest
import trio

from node.render.base import RendererIdentity
from node.render.blender import JOB_SCRIPT, job_document
from node.verify.blender_tiles import BlenderTileRenderer
from node.verify.checker import BuildMismatch, check_frame, verify_result
from node.verify.images import load_image
from protocol.envelope import decode_envelope, encode_envelope
from protocol.identity import NodeKey
from protocol.messages import Verdict, VerifyRequest
from protocol.verification import DEFAULT_POLICY, Tile, audit_verdict, select_tiles, tile_grid
from tests.verify.conftest import BUILD, SETTINGS, CachingRenderer, World

pytestmark = pytest.mark.slow
TAMPERS = (
    "other_seed", "fewer_samples", "other_frame", "shift_1px", "blanked_region",
    "noised_region", "recompressed_jpeg", "requantised_6bit", "upscaled_half_res",
    "partial_render",
)  # fmt: skip
K = 24  # the default for a fresh worker at normal assurance; >= the 12 cells of 64x48


def _digest(path: Path) -> bytes:
    return hashlib.sha256(path.read_bytes()).digest()


async def _worker(renderer: CachingRenderer, same: bool) -> RendererIdentity:
    me = await renderer.identify()
    return me if same else RendererIdentity(me.build, "cpu-x86_64-sse41")


async def test_tiles_are_bit_identical_to_the_full_frame(world: World, tmp_path: Path) -> None:
    full = load_image(world.honest[1])
    # grid cells at edges and inside, and off-grid rectangles of odd sizes
    tiles = (*tile_grid(64, 48, 16)[::3], Tile(5, 7, 13, 9), Tile(0, 51, 13, 1), Tile(47, 0, 64, 1))
    done = await BlenderTileRenderer().render_tiles(world.scene, SETTINGS, 1, tiles, tmp_path)
    assert len(done.paths) == len(tiles)
    for tile, path in zip(tiles, done.paths, strict=True):
        tile_px = load_image(path)
        crop = full[tile.y : tile.y + tile.height, tile.x : tile.x + tile.width]
        assert tile_px.shape == crop.shape
        assert np.array_equal(tile_px, crop), tile


@pytest.mark.parametrize("same", [True, False], ids=["exact", "tolerance"])
@pytest.mark.parametrize("frame", [1, 2])
async def test_honest_frames_are_accepted(
    world: World, caching_renderer: CachingRenderer, frame: int, same: bool
) -> None:
    outcome = await check_frame(
        caching_renderer, world.scene, SETTINGS, frame, load_image(world.honest[frame]),
        result_digest=_digest(world.honest[frame]), k=K,
        worker=await _worker(caching_renderer, same), job_build=BUILD,
    )  # fmt: skip
    assert outcome.accepted and outcome.same_build is same
    assert len(outcome.checks) == 12
    assert all(c.evidence.max_abs_diff == 0 for c in outcome.checks)


@pytest.mark.parametrize("same", [True, False], ids=["exact", "tolerance"])
@pytest.mark.parametrize("name", TAMPERS)
async def test_tampered_frames_are_rejected(
    world: World, caching_renderer: CachingRenderer, name: str, same: bool
) -> None:
    path = world.tampered[name]
    outcome = await check_frame(
        caching_renderer, world.scene, SETTINGS, 1, load_image(path),
        result_digest=_digest(path), k=K,
        worker=await _worker(caching_renderer, same), job_build=BUILD,
    )  # fmt: skip
    assert not outcome.accepted
    worst = min(c.evidence.psnr_millidb for c in outcome.checks)
    assert worst < DEFAULT_POLICY.comparison.min_psnr_millidb  # caught by either rule


def _request(image: Path) -> VerifyRequest:
    return VerifyRequest(
        job_id=b"\x01" * 32, task_id=b"\x02" * 32, frame=1, worker=b"\x03" * 32,
        result_digest=_digest(image), frame_cid="bafkframe", scene_cid="bafkscene", fee_wei=1,
        tiles=K, tile_secret=hashlib.sha256(b"the requester's draw").digest(),
    )  # fmt: skip


@pytest.mark.parametrize("image_name", ["honest", "other_seed", "garbage"])
async def test_verify_result_gives_a_signed_auditable_verdict(
    world: World, caching_renderer: CachingRenderer, tmp_path: Path, image_name: str
) -> None:
    if image_name == "honest":
        image = world.honest[1]
    elif image_name == "garbage":
        image = tmp_path / "garbage.png"
        image.write_bytes(b"\x89PNG not really")
    else:
        image = world.tampered[image_name]
    request = _request(image)
    verdict = await verify_result(
        caching_renderer, request, scene=world.scene, frame_image=image, settings=SETTINGS,
        job_build=BUILD, worker=await caching_renderer.identify(),
    )  # fmt: skip
    assert verdict.passed is (image_name == "honest")
    key = NodeKey(b"\x11" * 32)
    envelope = decode_envelope(encode_envelope(key, verdict, nonce=7, now_ms=1))
    assert envelope.sender == key.node_id and isinstance(envelope.message, Verdict)
    signed = envelope.message
    assert signed.secret == request.tile_secret  # the requester's draw, not the checker's
    assert audit_verdict(signed, request.result_digest, 64, 48, same_build=True)
    again = select_tiles(request.result_digest, signed.secret, 64, 48, len(signed.tiles), 16)
    assert [(t.x, t.y) for t in again] == [(t.x, t.y) for t in signed.tiles]


async def test_a_checker_on_another_build_refuses_to_judge(
    world: World, caching_renderer: CachingRenderer
) -> None:
    with pytest.raises(BuildMismatch, match=r"blender-9\.9\.9"):
        await check_frame(
            caching_renderer, world.scene, SETTINGS, 1, load_image(world.honest[1]),
            result_digest=b"\x00" * 32, k=K, job_build="blender-9.9.9",
        )  # fmt: skip


def test_the_whole_tamper_set_is_built(world: World) -> None:
    assert set(world.tampered) == set(TAMPERS)


async def test_an_honest_frame_from_another_cpu_path_passes_the_tolerance(
    world: World, caching_renderer: CachingRenderer, tmp_path: Path
) -> None:
    """Cycles on its SSE4.1 kernel (``CYCLES_CPU_NO_AVX2``) vs this AVX2 checker."""
    doc = job_document(SETTINGS, [1], tmp_path, "CPU", None)
    (tmp_path / "job.json").write_text(json.dumps(doc))
    argv = ["blender", "-b", "-Y", "--factory-startup", str(world.scene), "--python-exit-code",
            "1", "--python", str(JOB_SCRIPT), "--", str(tmp_path / "job.json")]  # fmt: skip
    env = {**os.environ, "CYCLES_CPU_NO_AVX2": "1"}
    await trio.run_process(argv, env=env, capture_stdout=True, capture_stderr=True)
    image = tmp_path / "frame_000001.png"
    me = await caching_renderer.identify()
    outcome = await check_frame(
        caching_renderer, world.scene, SETTINGS, 1, load_image(image),
        result_digest=_digest(image), k=K, worker=RendererIdentity(me.build, "cpu-x86_64-sse41"),
    )  # fmt: skip
    assert outcome.accepted and not outcome.same_build
    assert all(c.evidence.max_abs_diff <= 2 for c in outcome.checks)

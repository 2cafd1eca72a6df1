"""One check: pick tiles from the tile secret, re-render them, judge the worker's image.

:func:`check_frame` is what ``pictor verify`` runs; :func:`verify_result` is the
entry point for a node's checker role: give it the ``VerifyRequest``, the
fetched scene and frame, and the worker's declared build and device class;
it returns the ``Verdict`` to sign with ``protocol.encode_envelope``.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from node.render.base import RendererIdentity, RenderError
from node.verify.blender_tiles import TileRenders
from node.verify.images import ImageError, Pixels, load_image
from protocol.messages import RenderSettings, TileEvidence, Verdict, VerifyRequest
from protocol.verification import (
    DEFAULT_POLICY,
    Tile,
    TileCheck,
    VerificationPolicy,
    build_verdict,
    compare_tile,
    select_tiles,
)


class TileRenderer(Protocol):
    async def identify(self) -> RendererIdentity: ...

    async def render_tiles(
        self,
        scene: Path,
        settings: RenderSettings,
        frame: int,
        tiles: Sequence[Tile],
        out_dir: Path,
    ) -> TileRenders: ...


class BuildMismatch(Exception):
    """The job pins a renderer build this checker does not run: it must not judge."""


@dataclass(frozen=True)
class CheckOutcome:
    accepted: bool
    checks: tuple[TileCheck, ...]
    same_build: bool
    checker: RendererIdentity
    worker: RendererIdentity | None
    secret: bytes
    result_digest: bytes
    render: TileRenders


def new_secret() -> bytes:
    """A fresh tile secret, for a check no requester drew one for (``pictor verify``,
    a re-check for a claimed worker). A requester's check uses ``request.tile_secret``."""
    return os.urandom(32)


def check_dimensions(image: Pixels, settings: RenderSettings) -> None:
    height, width = image.shape[:2]
    if (width, height) != (settings.resolution_x, settings.resolution_y):
        raise ImageError(
            f"image is {width}x{height} but the job pins "
            f"{settings.resolution_x}x{settings.resolution_y}: wrong frame or wrong settings"
        )


async def check_frame(
    renderer: TileRenderer,
    scene: Path,
    settings: RenderSettings,
    frame: int,
    image: Pixels,
    *,
    result_digest: bytes,
    k: int,
    worker: RendererIdentity | None = None,
    job_build: str | None = None,
    secret: bytes | None = None,
    policy: VerificationPolicy = DEFAULT_POLICY,
    required: Sequence[Tile] = (),
) -> CheckOutcome:
    """Re-render ``k`` tiles chosen from (result_digest, secret) and compare, and
    the ``required`` ones too (cells a fraud claim's verdicts named: a re-check
    for a claimed worker must cover them).

    ``worker`` is the worker's declared build and device class: identical to
    ours means exact comparison; unknown or different means the PSNR tolerance.
    Raises ``ImageError`` (unusable image), ``BuildMismatch``, ``RenderError``.
    """
    check_dimensions(image, settings)
    checker = await renderer.identify()
    if job_build is not None and job_build != checker.build:
        raise BuildMismatch(
            f"the job pins {job_build} but this checker runs {checker.build}; "
            f"install {job_build} (different builds render differently)"
        )
    secret = secret if secret is not None else new_secret()
    tiles = select_tiles(
        result_digest, secret, settings.resolution_x, settings.resolution_y, k,
        policy.sampling.tile_px,
    )  # fmt: skip
    tiles = tuple(sorted(set(tiles) | set(required)))
    same_build = worker == checker
    with tempfile.TemporaryDirectory(prefix="pictor-verify-") as tmp:
        render = await renderer.render_tiles(scene, settings, frame, tiles, Path(tmp))
        try:
            references = [load_image(path) for path in render.paths]
        except ImageError as exc:  # our own re-render, not the worker's image
            raise RenderError(f"unreadable re-rendered tile: {exc}") from None
    checks = []
    for tile, reference in zip(tiles, references, strict=True):
        candidate = image[tile.y : tile.y + tile.height, tile.x : tile.x + tile.width]
        if reference.shape != candidate.shape or reference.dtype != candidate.dtype:
            raise ImageError(
                f"image format {candidate.dtype}x{candidate.shape[2:]} differs from the "
                f"re-render's {reference.dtype}x{reference.shape[2:]} (tile {tile}); "
                "pass the PNG in the job's output format"
            )
        checks.append(compare_tile(reference, candidate, same_build, policy.comparison, tile))
    accepted = bool(checks) and all(c.passed for c in checks)
    return CheckOutcome(
        accepted, tuple(checks), same_build, checker, worker, secret, result_digest, render
    )


async def verify_result(
    renderer: TileRenderer,
    request: VerifyRequest,
    *,
    scene: Path,
    frame_image: Path,
    settings: RenderSettings,
    job_build: str,
    worker: RendererIdentity,
    policy: VerificationPolicy = DEFAULT_POLICY,
    required: Sequence[Tile] = (),
) -> Verdict:
    """The checker role's call: a Verdict for ``request`` (sign it, then send it),
    re-rendering the ``request.tiles`` cells the requester's check plan asked for,
    chosen by the request's ``tile_secret`` (the requester refuses any other draw),
    and the ``required`` ones (see :func:`check_frame`).

    An image that cannot be read, has the wrong size or format is the worker's
    fault: the verdict rejects it with one zero-PSNR tile as evidence. A build
    this checker does not run or a failed re-render raises: no verdict.
    """
    secret, k = request.tile_secret, request.tiles
    try:
        image = load_image(frame_image)
        outcome = await check_frame(
            renderer, scene, settings, request.frame, image,
            result_digest=request.result_digest, k=k, worker=worker,
            job_build=job_build, secret=secret, policy=policy, required=required,
        )  # fmt: skip
    except ImageError:
        return await _unusable_image_verdict(renderer, request, secret, settings, k, policy)
    return build_verdict(
        request,
        checks=outcome.checks,
        checker_build=outcome.checker.build,
        checker_device_class=outcome.checker.device_class,
    )


async def _unusable_image_verdict(
    renderer: TileRenderer,
    request: VerifyRequest,
    secret: bytes,
    settings: RenderSettings,
    k: int,
    policy: VerificationPolicy,
) -> Verdict:
    """Reject with the tiles the secret selects, each marked as worst possible."""
    checker = await renderer.identify()
    tiles = select_tiles(
        request.result_digest, secret, settings.resolution_x, settings.resolution_y, max(1, k),
        policy.sampling.tile_px,
    )  # fmt: skip
    checks = [
        TileCheck(TileEvidence(t.x, t.y, t.width, t.height, 0, 65_535), passed=False)
        for t in tiles  # nothing re-rendered: the zero digest commits to no pixels
    ]
    return build_verdict(
        request,
        checks=checks,
        checker_build=checker.build,
        checker_device_class=checker.device_class,
    )

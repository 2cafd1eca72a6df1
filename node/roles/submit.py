"""Turn a client's request into an escrowed, announced job.

Order matters: preflight the scene (refuse what workers refuse: unpacked
files, caches outside the scene, no camera, absurd settings), price it in
render units (:mod:`protocol.cost`, the same number ``pictor scene check``
prints), pin the verification-safe settings (the render script pins denoise, adaptive
sampling, dither and the seed from the job's settings on every worker and
checker alike), publish the scene in the content store, escrow the budget on
chain under the job id, and only then start the machine (which announces).
A chain that does not answer delays the deposit and the announce; nothing is
announced that is not paid for.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from pathlib import Path

import trio

from node.render.base import RenderError
from node.render.preflight import job_ru, refusals, scene_settings
from node.roles.deposit import DepositRefused, escrow_once
from node.roles.requester_job import RequesterJob
from node.roles.service import Roles
from protocol.market.quote import DEFAULT_CHECKER_FEE_BPS, budget_wei
from protocol.messages import Assurance, Escrow, JobSpec, RenderSettings, job_id_of
from protocol.verification import checks_per_frame

logger = logging.getLogger(__name__)


class SubmitError(ValueError):
    """The request or the scene is refused; the message says why."""


@dataclass(frozen=True)
class SubmitRequest:
    scene: Path
    frames: tuple[int, ...]
    max_price_wei_per_frame: int
    deadline_s: float
    out_dir: Path
    assurance: str = "normal"
    resolution: tuple[int, int] | None = None
    samples: int | None = None


async def preflight(
    roles: Roles, scene: Path, resolution: tuple[int, int] | None = None, samples: int | None = None
) -> tuple[RenderSettings, int]:
    """The job's pinned settings (the scene's, with the request's overrides) and its render
    units per frame (:func:`node.render.preflight.job_ru`); refuses what workers refuse."""
    try:
        facts = await roles.ctx.render.inspect(scene)
    except RenderError as exc:
        raise SubmitError(f"scene inspection failed: {exc}") from None
    settings = scene_settings(facts)
    if resolution:
        settings = replace(settings, resolution_x=resolution[0], resolution_y=resolution[1])
    if samples:
        settings = replace(settings, samples=samples)
    # With overrides, the job's size decides, not the size the scene was saved with.
    errors = refusals(facts, settings if (resolution or samples) else None)
    if errors:
        raise SubmitError("scene refused: " + "; ".join(errors))
    return settings, job_ru(facts, settings)


async def submit(roles: Roles, request: SubmitRequest) -> RequesterJob:
    if not request.frames:
        raise SubmitError("no frames to render")
    if not request.scene.is_file():
        raise SubmitError(f"scene {request.scene} not found")
    try:
        assurance = Assurance(request.assurance)
    except ValueError:
        raise SubmitError(f"assurance {request.assurance!r}: one of normal, high, none") from None
    settings, ru = await preflight(roles, request.scene, request.resolution, request.samples)
    ctx = roles.ctx
    cid = await trio.to_thread.run_sync(ctx.content.put_file, request.scene)
    ctx.content.pin(cid)
    now_ms = ctx.clock.now_ms()
    link = ctx.chain
    escrow = Escrow(link.chain_id, link.contract, bytes(32)) if link else None
    spec = JobSpec(
        requester=ctx.me, requester_address=ctx.payment_address, scene_cid=cid,
        scene_size_bytes=request.scene.stat().st_size, renderer_build=roles.build,
        settings=settings, frames=request.frames, ru_per_frame=ru,
        max_price_wei_per_frame=request.max_price_wei_per_frame,
        budget_wei=budget_wei(len(request.frames), request.max_price_wei_per_frame,
                              DEFAULT_CHECKER_FEE_BPS, checks_per_frame(assurance)),
        deadline_ms=now_ms + int(request.deadline_s * 1000), assurance=assurance,
        checker_fee_bps=DEFAULT_CHECKER_FEE_BPS, escrow=escrow, created_ms=now_ms,
    )  # fmt: skip
    job_id, out_dir = job_id_of(spec), request.out_dir.resolve()
    if link is not None:
        # Saved before any money moves: killed from here on, the node resumes the job
        # (escrow_once finds a deposit that was mined) instead of forgetting it.
        await roles.requester.save_job(spec, job_id, out_dir)
        try:
            await escrow_once(link, spec, job_id)
        except DepositRefused as exc:
            await roles.requester.forget_job(job_id)
            raise SubmitError(f"the escrow refused the deposit: {exc}") from None
    return await roles.requester.start_job(spec, job_id, out_dir)

"""Client-mode routes of the local API: submit, follow, cancel jobs; role statistics.

Mounted by ``node.app.run`` next to the core routes, behind the same bearer
token. The scene is named by a path on this machine (the API is bound to
127.0.0.1: client and node share a disk), and the frames land in ``out_dir``.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, get_args, get_type_hints

import trio
from fastapi import Depends, FastAPI, HTTPException, Query
from pydantic import BaseModel, Field, field_validator, model_validator

from ledger.errors import LedgerError
from node.api.app import MAX_WAIT_S, _BearerAuth
from node.roles.requester_job import RefundNotYet, RequesterJob
from node.roles.service import Roles
from node.roles.submit import SubmitError, SubmitRequest, preflight, submit
from protocol.codec import U256, Range
from protocol.errors import LocalProtocolError
from protocol.market.quote import DEFAULT_CHECKER_FEE_BPS, budget_wei, checkers_warning
from protocol.messages import MAX_FRAMES_PER_JOB, Assurance, Frame, RenderSettings
from protocol.verification import accepts_short, checks_per_frame

HEX = frozenset("0123456789abcdef")
MAX_CANDIDATES = 10


def _bounds(annotated: Any) -> Range:
    """The protocol's ``Range`` of an annotated integer: its limits are the API's."""
    return next(m for m in get_args(annotated)[1:] if isinstance(m, Range))


def _field_bounds(name: str) -> Range:
    return _bounds(get_type_hints(RenderSettings, include_extras=True)[name])


_FRAME, _U256 = _bounds(Frame), _bounds(U256)
_RES, _SAMPLES = _field_bounds("resolution_x"), _field_bounds("samples")
MAX_DEADLINE_S = 366 * 86_400
Pixels = Annotated[int, Field(ge=_RES.lo, le=_RES.hi)]


class JobRequest(BaseModel):
    """A job as the client sends it; every bound is the protocol's, checked before submit."""

    scene: str = Field(description="Path of the .blend on this machine")
    frames: list[Annotated[int, Field(ge=_FRAME.lo, le=_FRAME.hi)]] = Field(
        min_length=1, max_length=MAX_FRAMES_PER_JOB
    )
    max_price_wei_per_frame: int = Field(gt=0, le=_U256.hi)
    deadline_s: float = Field(7200.0, gt=0, le=MAX_DEADLINE_S, allow_inf_nan=False)
    out_dir: str
    assurance: str = "normal"
    resolution: tuple[Pixels, Pixels] | None = None
    samples: int | None = Field(None, ge=_SAMPLES.lo, le=_SAMPLES.hi)

    @field_validator("frames")
    @classmethod
    def _no_repeats(cls, frames: list[int]) -> list[int]:
        if len(set(frames)) != len(frames):
            raise ValueError("frames must not repeat")
        return frames

    @model_validator(mode="after")
    def _budget_fits(self) -> JobRequest:
        checks = max(checks_per_frame(a) for a in Assurance)  # the job's, at most
        if budget_wei(len(self.frames), self.max_price_wei_per_frame, DEFAULT_CHECKER_FEE_BPS,
                      checks) > _U256.hi:  # fmt: skip
            raise ValueError("frames × max_price_wei_per_frame exceeds what escrow can hold")
        return self


class SceneRequest(BaseModel):
    """A scene to price before submitting it: the job's overrides, as ``JobRequest``'s."""

    scene: str = Field(description="Path of the .blend on this machine")
    resolution: tuple[Pixels, Pixels] | None = None
    samples: int | None = Field(None, ge=_SAMPLES.lo, le=_SAMPLES.hi)


def job_json(job: RequesterJob) -> dict[str, Any]:
    stats = job.machine.statistics()
    view = job.view
    spent_wei = sum(job.machine.due_wei_by_payee().values())
    return {
        "job_id": job.job_id.hex(),
        "state": stats.state.value,
        "outcome": view.outcome if job.done.is_set() else None,  # frames collected too
        "frames": {str(f): s.value for f, s in sorted(job.machine.frame_states().items())},
        "accepted": {str(f): info for f, info in sorted(view.accepted.items())},
        "failed": {str(f): r for f, r in view.failed.items()},
        "frames_total": stats.frames_total,
        "frames_accepted": stats.frames_accepted,
        "workers": sorted(view.workers),
        "blocklisted": sorted(view.blocklisted),
        "awards": stats.awards,
        "spent_wei": spent_wei,
        "budget_wei": stats.budget_wei,
        "refund_wei": view.refund_wei,
        "refunded": view.refunded,
        "started_ms": view.started_ms,
        "finished_ms": view.finished_ms,
        "out_dir": str(job.out_dir),
        "now_ms": job.ctx.clock.now_ms(),
        "deadline_ms": job.spec.deadline_ms,
        "max_price_wei_per_frame": job.spec.max_price_wei_per_frame,
        "renderer_build": job.spec.renderer_build,
        "ru_per_frame": job.spec.ru_per_frame,
        "assurance": job.spec.assurance.value,
        "escrowed": job.spec.escrow is not None,
        "settings": {"resolution": [job.spec.settings.resolution_x, job.spec.settings.resolution_y],
                     "samples": job.spec.settings.samples, "seed": job.spec.settings.seed},
    }  # fmt: skip


def roles_json(roles: Roles) -> dict[str, Any]:
    link = roles.ctx.chain
    return {
        "worker": {"rendered": roles.worker.rendered, "rendering": roles.worker.rendering}
        if roles.worker
        else None,
        "checker": {"checked": roles.checker.checked} if roles.checker else None,
        "challenges": {"judged": roles.requester.challenger.judged,  # capacity challenges
                       "passed": roles.requester.challenger.passed,  # we issued
                       "caught": roles.requester.challenger.caught},
        "payee": {"paid_wei": roles.payee.paid_wei, "owed_wei": roles.payee.owed_wei()}
        if roles.payee else None,
        "payment_address": "0x" + roles.ctx.payment_address.hex(),
        "renderer_build": roles.build,
        "has_chain": link is not None,
        "checker_fee_bps": DEFAULT_CHECKER_FEE_BPS,
        "transactions": [tx.as_json() for tx in link.transactions] if link else [],
    }  # fmt: skip


def find_job(jobs: Mapping[bytes, RequesterJob], text: str) -> RequesterJob:
    """The job whose hex id starts with ``text``: 404 if none, 409 naming them if several."""
    prefix = text.strip().lower()
    if not prefix or len(prefix) > 64 or not all(c in HEX for c in prefix):
        raise HTTPException(404, f"{text[:80]!r} is not a job id (hex, or a unique prefix of one)")
    matches = [j for j_id, j in jobs.items() if j_id.hex().startswith(prefix)]
    if not matches:
        raise HTTPException(404, f"no job {prefix} on this node (`pictor job list` shows them)")
    if len(matches) > 1:
        names = ", ".join(sorted(j.job_id.hex()[:16] for j in matches)[:MAX_CANDIDATES])
        raise HTTPException(409, f"job id prefix {prefix} is ambiguous: {len(matches)} jobs "
                                 f"match ({names}); give more digits")  # fmt: skip
    return matches[0]


def add_job_routes(app: FastAPI, roles: Roles, token: str) -> None:
    auth = [Depends(_BearerAuth(token))]

    def find(job_id: str) -> RequesterJob:
        return find_job(roles.requester.jobs, job_id)

    @app.post("/v1/client/jobs", dependencies=auth, summary="Submit a Blender job")
    async def post_job(body: JobRequest) -> dict[str, Any]:
        request = SubmitRequest(
            Path(body.scene), tuple(body.frames), body.max_price_wei_per_frame, body.deadline_s,
            Path(body.out_dir), body.assurance, body.resolution, body.samples,
        )  # fmt: skip
        try:
            job = await submit(roles, request)
        except (SubmitError, LocalProtocolError) as exc:  # the latter: a value the wire refuses
            raise HTTPException(422, str(exc)) from None
        # what `pictor job submit` warns of before it escrows (the API said nothing)
        assurance = job.spec.assurance
        about = len(roles.requester.pick_checkers(b""))  # checkers advertising, connected
        warning = checkers_warning(assurance.value, checks_per_frame(assurance), about,
                                   accept_short=accepts_short(assurance))
        return {**job_json(job), "warnings": [warning] if warning else []}

    @app.post("/v1/client/scenes/estimate", dependencies=auth,
              summary="Preflight a scene and price it: render units per frame, pinned settings")  # fmt: skip
    async def estimate_scene(body: SceneRequest) -> dict[str, Any]:
        if not Path(body.scene).is_file():
            raise HTTPException(422, f"scene {body.scene} not found")
        try:
            settings, ru = await preflight(roles, Path(body.scene), body.resolution, body.samples)
        except SubmitError as exc:
            raise HTTPException(422, str(exc)) from None
        return {"ru_per_frame": ru, "settings": {
            "engine": settings.engine, "resolution": [settings.resolution_x, settings.resolution_y],
            "samples": settings.samples, "seed": settings.seed}}  # fmt: skip

    @app.get("/v1/client/jobs", dependencies=auth, summary="This node's jobs")
    async def list_jobs() -> list[dict[str, Any]]:
        return [job_json(j) for j in roles.requester.jobs.values()]

    @app.get("/v1/client/jobs/{job_id}", dependencies=auth, summary="One job; long-poll")
    async def get_job(
        job_id: str,
        wait_s: float = Query(0.0, ge=0, le=MAX_WAIT_S, description="Wait for a change"),
    ) -> dict[str, Any]:
        job = find(job_id)
        if wait_s and not job.done.is_set():
            with trio.move_on_after(wait_s):
                await job.wait_changed()
        return job_json(job)

    @app.get("/v1/client/jobs/{job_id}/transactions", dependencies=auth,
             summary="This node's transactions for one job (its deposit, refund)")  # fmt: skip
    async def get_job_transactions(job_id: str) -> list[dict[str, Any]]:
        job_id_raw, chain = find(job_id).job_id, roles.ctx.chain
        txs = chain.transactions if chain is not None else []
        return [tx.as_json() for tx in txs if job_id_raw in tx.job_ids]

    @app.post("/v1/client/jobs/{job_id}/cancel", dependencies=auth, summary="Cancel a job")
    async def cancel_job(job_id: str) -> dict[str, Any]:
        job = find(job_id)
        await roles.requester.cancel(job.job_id)
        return job_json(job)

    @app.post("/v1/client/jobs/{job_id}/refund", dependencies=auth,
              summary="Reclaim a job's unspent escrow (after its deadline + grace)")  # fmt: skip
    async def refund_job(job_id: str) -> dict[str, Any]:
        job = find(job_id)
        try:
            refunded_wei = await job.refund_now()
        except RefundNotYet as exc:
            raise HTTPException(409, str(exc)) from None
        except LedgerError as exc:
            raise HTTPException(503, f"the chain did not answer: {str(exc)[:200]}") from None
        return {**job_json(job), "refunded_now_wei": refunded_wei}

    @app.get("/v1/roles", dependencies=auth, summary="Worker, checker and payment statistics")
    async def get_roles() -> dict[str, Any]:
        return roles_json(roles)

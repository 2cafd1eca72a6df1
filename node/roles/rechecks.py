"""A checker re-checks a claimed worker's result and signs its answer if it passes.

Theory of operation. A worker whose result a fraud claim names asks staked
checkers to sign a rung of the claim's ladder for it (``CleanSignRequest``,
node.roles.answerer).
A checker takes the request only about a job it knows (its announce, with an
escrow) and queues it (bounded: ``QUEUE_LEN``; a full queue answers "busy").
Before any render it reads the escrow: a claim on that result by that worker
must be pending, or contested (a later even rung of its ladder; we must then
have signed none of its odd rungs, the claim's) (a request naming a result no claim ever named is scored
against its sender, since the worker reads its claims from the same chain), and its evidence (tiles, claimers) must be logged; we must
not be a claimer, the worker or the requester. It also reads, from the
claim's own transaction, the rejecting verdicts the claimers published
(``protocol.fraud_evidence``): kept only when their commitment is the claim's
``tiles`` and each rejects this very task and frame. Only then does it fetch
the scene and the frame from the asking worker by CID (the frame's CID is the
digest the worker signed), preflight the scene as for any check, and
re-render every grid cell those verdicts name, plus
``protocol.slashing.recheck_tiles`` cells chosen from a fresh secret (the
most a check plan asks, since a stake hangs on it). The worker sends nothing
but the request's names: it cannot choose the tiles, nor hide the claimers'
(a partial fake whose bad cells the claimers found fails here, whatever our
own draw). A claim whose transaction published no evidence that matches its
``tiles`` (claimers that hid it; an honest slasher always publishes) is
re-checked on our own cells only. A claim against a checker's pass
(``Escrow.claim_pass``, answered by that checker the same way) publishes its
passing verdict instead (``claimed_pass``): its cells are the ones re-rendered.
All tiles pass: it signs the rung the request names (even: the accused's
side; not one the ladder is already past) of that very claim
(``ledger.fraud.RungVote`` over the claim's ``tiles`` and claimers, as the
escrow logged them) and sends ``CleanSigned``; anything else: no signature.
The outcome is remembered (bounded), so a worker that asks again, for the
same rung or a later one, gets a signature without a second render (the
chain is read again each time: the rung and the claim are its); a result
that failed is not re-rendered either.

The queue, the render and the remembered outcomes are :class:`RecheckQueue`'s,
shared with node.roles.pass_rechecks (a requester's claim against a pass).

A rung we sign locks the claim's amount of our stake once the worker sends
it, and we lose it if the claim's side has the last rung of the ladder
(docs/LEDGER.md): we sign only what our own render passed, and only the rung
named (a signature counts on no other rung and no other claim).
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from typing import Generic, TypeVar

import trio

from ledger.client import CLAIM_CONTESTED, CLAIM_NONE, CLAIM_PENDING, ClaimEvidence, ClaimState
from ledger.fraud import CleanAnswer, ResultRef, result_ref, sign
from node.log import log_event
from node.render.base import RendererIdentity
from node.roles.adversary import FALSE_REJECT
from node.roles.common import peer_of
from node.roles.context import RoleContext
from node.roles.scene_gate import SceneGate
from node.verify.checker import new_secret, verify_result
from protocol.errors import IllegalMessage
from protocol.fraud_evidence import claimed_cells, claimed_pass, claimed_verdicts, clearly_wrong
from protocol.messages import (
    CleanSigned,
    CleanSignRequest,
    FraudSigned,
    FraudSignRequest,
    JobSpec,
    Verdict,
    VerifyRequest,
)
from protocol.slashing import claim_side, recheck_tiles
from protocol.verification import DEFAULT_POLICY, Tile

logger = logging.getLogger(__name__)
QUEUE_LEN = 8
MAX_REMEMBERED = 1024  # re-checks whose outcome is kept (oldest forgotten)
NO_CLAIM_PENALTY = 5

# What was judged: job, task, accused address, frame CID, the claim's tiles (hence the
# cells its published verdicts name). A claim on another frame or other tiles is judged anew.
Key = tuple[bytes, bytes, bytes, str, bytes]
Request = TypeVar("Request", CleanSignRequest, FraudSignRequest)


class RecheckQueue(Generic[Request]):
    """Re-checks strangers ask of us before we sign about a claim: queued (bounded:
    ``QUEUE_LEN``; a full queue answers "busy"), rendered one at a time, and each
    outcome remembered (bounded: ``MAX_REMEMBERED``), so asking again (for the same
    rung or another) costs no second render: the chain is read again and the asked
    signature made. The claim's side is the subclass's: :class:`Rechecks` answers a
    claimed worker (even rungs), ``node.roles.pass_rechecks`` a requester claiming a
    pass, ``node.roles.overturn_rechecks`` a requester climbing a claim's ladder."""

    def __init__(self, ctx: RoleContext, specs: Mapping[bytes, JobSpec], gate: SceneGate) -> None:
        self.ctx = ctx
        self.specs = specs
        self.gate = gate
        channel = trio.open_memory_channel[tuple[bytes, Request]](QUEUE_LEN)
        self._send: trio.MemorySendChannel[tuple[bytes, Request]] = channel[0]
        self._recv: trio.MemoryReceiveChannel[tuple[bytes, Request]] = channel[1]
        self._done: OrderedDict[Key, bool] = OrderedDict()  # whether we sign about it
        self.signed = 0  # re-checks that ended in a signature (more asked of one not counted)
        self.rendered = 0  # re-checks rendered

    def receive(self, sender: bytes, request: Request) -> bool:
        """Queue a re-check; False when we cannot take it (unknown job, busy)."""
        spec = self.specs.get(request.job_id)
        if spec is None or spec.escrow is None or self.ctx.chain is None:
            return False
        self._vet(sender, spec, request)
        try:
            self._send.send_nowait((sender, request))
        except trio.WouldBlock:
            return False
        return True

    async def run(self) -> None:
        async for sender, request in self._recv:
            try:
                await self._recheck(sender, request)
            except Exception as exc:  # no signature; the asker asks others
                log_event(logger, logging.WARNING, "re-check failed", frame=request.frame,
                          error=f"{type(exc).__name__}: {str(exc)[:300]}")  # fmt: skip

    def _vet(self, sender: bytes, spec: JobSpec, request: Request) -> None:
        """Refuse a request before it is queued (raise ``IllegalMessage``)."""

    def _answer(self, sender: bytes, request: Request, signature: bytes) -> None:
        raise NotImplementedError

    async def _recheck(self, sender: bytes, request: Request) -> None:
        raise NotImplementedError

    async def _render(
        self, source: bytes, spec: JobSpec, check: VerifyRequest, required: Sequence[Tile]
    ) -> Verdict | None:
        """Our verdict on ``check.frame_cid`` (the scene and frame fetched from
        ``source``), re-rendering ``check``'s draw and the ``required`` cells; None
        when the scene fails its preflight."""
        scene = await self.ctx.fetch_from(source, spec.scene_cid)
        refusal = await self.gate.refusal(scene, spec.scene_cid, spec.settings, spec.ru_per_frame)
        if refusal is not None:
            return None
        frame = await self.ctx.fetch_from(source, check.frame_cid)
        verdict = await verify_result(
            self.ctx.render.tiles, check, scene=scene, frame_image=frame, settings=spec.settings,
            job_build=spec.renderer_build,
            worker=RendererIdentity(spec.renderer_build, check.worker_device_class),
            required=required,
        )  # fmt: skip
        self.rendered += 1
        return verdict

    async def _claimed(self, request: Request) -> tuple[JobSpec, ResultRef, ClaimState] | None:
        """The job, the result the request names and the escrow's claim on it by the
        request's accused, read now (None: the job forgotten meanwhile, or no escrow)."""
        spec, chain = self.specs.get(request.job_id), self.ctx.chain
        if spec is None or chain is None:
            return None
        ref = result_ref(spec, request.job_id, request.task_id, request.frame, request.frame_cid)
        if ref is None:
            return None
        return spec, ref, await chain.claim_state(ref, request.worker_address)

    def _remember(self, key: Key, signs: bool) -> None:
        if signs and key not in self._done:
            self.signed += 1
        self._done[key] = signs
        while len(self._done) > MAX_REMEMBERED:
            self._done.popitem(last=False)


class FraudRechecks(RecheckQueue[FraudSignRequest]):
    """Re-checks a requester asks of us before we sign its claim's ``Fraud`` (against a
    pass: node.roles.pass_rechecks; overturning an answer: node.roles.overturn_rechecks),
    each putting at most ``max_at_risk_wei`` of our stake behind it."""

    def __init__(
        self, ctx: RoleContext, specs: Mapping[bytes, JobSpec], gate: SceneGate,
        max_at_risk_wei: int,
    ) -> None:  # fmt: skip
        super().__init__(ctx, specs, gate)
        self.max_at_risk_wei = max_at_risk_wei

    def _answer(self, sender: bytes, request: FraudSignRequest, signature: bytes) -> None:
        self.ctx.outbox.send(sender, FraudSigned(request.job_id, request.task_id, signature,
                                                 request.rung, request.round))  # fmt: skip


class Rechecks(RecheckQueue[CleanSignRequest]):
    def _vet(self, sender: bytes, spec: JobSpec, request: CleanSignRequest) -> None:
        if request.rung % 2:
            raise IllegalMessage("a clean signature asked for the claim's side", penalty=10)

    def _answer(self, sender: bytes, request: CleanSignRequest, signature: bytes) -> None:
        self.ctx.outbox.send(sender, CleanSigned(request.job_id, request.task_id, signature,
                                                 request.rung))  # fmt: skip

    async def _recheck(self, sender: bytes, request: CleanSignRequest) -> None:
        claimed, chain = await self._claimed(request), self.ctx.chain
        if claimed is None or chain is None:
            return  # forgotten meanwhile
        spec, ref, state = claimed
        if state.status == CLAIM_NONE:  # no claim ever named that result: a lie, or our
            # chain reader a block behind (a small penalty that decays); nothing rendered
            self.ctx.node.gate.refuse(peer_of(sender), IllegalMessage(
                "a re-check of a result no claim names", penalty=NO_CLAIM_PENALTY), "recheck_unclaimed")  # fmt: skip
            return
        evidence = await chain.claim_evidence(ref, request.worker_address)
        if state.status not in (CLAIM_PENDING, CLAIM_CONTESTED):
            return  # settled meanwhile: we render nothing for it
        if evidence is None:  # its claim commits to another frame (or our reader lags):
            # scored as a claim naming nothing (review of stop 44: unscored, each made-up
            # frame cost a search of the chain's logs)
            self.ctx.node.gate.refuse(peer_of(sender), IllegalMessage(
                "a re-check of a frame the claim does not name", penalty=NO_CLAIM_PENALTY), "recheck_unclaimed")  # fmt: skip
            return
        key = (request.job_id, request.task_id, request.worker_address, request.frame_cid, evidence.tiles)
        if request.rung < state.rungs or self._done.get(key) is False:
            return  # a rung the ladder is past (our signature would count nowhere), or refused
        if chain.address in (*evidence.claimers, request.worker_address, ref.requester):
            return self._remember(key, False)
        if state.status == CLAIM_CONTESTED:  # a Clean rung: never from the claim's side
            ladder = await chain.claim_ladder(ref, request.worker_address) or ()
            if chain.address in claim_side((), ladder):
                return self._remember(key, False)
        if key not in self._done and not await self._passes(sender, spec, request, evidence):
            return self._remember(key, False)
        self._remember(key, True)
        vote = CleanAnswer(ref, request.worker_address, evidence.tiles).rung(evidence.claimers,
                                                                           request.rung)  # fmt: skip
        self._answer(sender, request, sign(vote, self.ctx.payment_key))

    async def _passes(self, sender: bytes, spec: JobSpec, request: CleanSignRequest,
                      evidence: ClaimEvidence) -> bool:  # fmt: skip
        """Whether our re-render of the claimed result passes, where the claimers' published
        verdicts looked and on cells of our own draw."""
        verdicts = claimed_verdicts(evidence.published, evidence.tiles, request.job_id,
                                    request.task_id, request.frame)  # fmt: skip
        a_pass = claimed_pass(evidence.published, evidence.tiles, request.job_id,
                              request.task_id, request.frame)  # a claim on a checker's pass
        verdicts = verdicts if a_pass is None else (a_pass,)
        settings = spec.settings
        required = () if verdicts is None else claimed_cells(
            verdicts, settings.resolution_x, settings.resolution_y, DEFAULT_POLICY.sampling.tile_px
        )  # fmt: skip
        # our own draw: no requester asks this check (the claimers' cells are ``required``)
        check = VerifyRequest(request.job_id, request.task_id, request.frame, sender, bytes(32),
                              request.frame_cid, spec.scene_cid, 0, recheck_tiles(spec),
                              new_secret(), request.worker_device_class)  # fmt: skip
        verdict = await self._render(sender, spec, check, required)
        if verdict is not None and a_pass is not None:  # a pass stands unless clearly wrong
            right = not clearly_wrong(verdict)  # (protocol.fraud_evidence.PASS_CLAIM_PSNR_MILLIDB)
        else:
            right = verdict is not None and verdict.passed
        passed = right and self.ctx.settings.adversary != FALSE_REJECT
        log_event(logger, logging.INFO, "re-check for a claimed worker", frame=request.frame,
                  passed=passed, worker=request.worker_address.hex(),
                  claimed_tiles=len(required), evidence=verdicts is not None)  # fmt: skip
        return passed

"""The checker role: answer a ``VerifyRequest`` with a signed ``Verdict``.

Theory of operation. The job's pinned settings come from its ``JobAnnounce``
(gossip; every node hears it), the scene and the frame from the requester
(the frame in the requester's re-encoding, so that a planted result cannot be
told from a real one: node.roles.plants), both by CID through the content store
(verified chunk by chunk). The scene is preflighted first (:mod:`node.roles.scene_gate`, as a
worker does): a refused scene gets no verdict and no re-render.
``node.verify.verify_result`` re-renders ``request.tiles`` cells (k from the
requester's check plan, protocol.verification) chosen by the request's
``tile_secret`` (the requester's draw: protocol.tile_secret; a verdict on any
other cells is refused) and builds the verdict, which goes back to the
requester; a passing verdict of an escrowed job carries our payment key's
signed ``Pass`` (``Verdict.pass_sig``, ``ledger.fraud.sign_pass``: what makes the
pass claimable if the frame was wrong, protocol.signed_pass), or the requester
refuses it. The request carries the worker's device class (from its
Result): the same build and class as ours compares exactly, anything else
with the cross-hardware tolerance. Checks run one at a time, in a warm
Blender process per job that keeps the scene loaded (node.verify.warm_tiles),
closed when the job's requester closes the job.

A rejecting verdict is remembered (bounded): when a dispute's majority upholds
it, the requester asks us to sign a fraud claim (``FraudSignRequest``), and we
sign only one about that very result (``protocol.slashing.may_sign``), putting
at most ``MAX_AT_RISK_WEI`` of our stake behind it. A worker that a claim
names may ask us to re-check its result and sign its answer
(``CleanSignRequest``): :mod:`node.roles.rechecks`. A requester whose plant
another checker passed may ask us to sign a claim against that pass
(``FraudSignRequest.pass_verdict``): :mod:`node.roles.pass_rechecks`. A
requester whose fraud claim the accused answered asks checkers that did not
reject the frame to overturn the answer: :mod:`node.roles.overturn_rechecks`;
once an answer stood, to sign the reopened frame's next claim:
:mod:`node.roles.reclaim_rechecks`.

Pay before work, as for a worker (:mod:`node.roles.paycheck`): with a chain,
before each check the checker reads the escrow; its lane must hold what the
job has promised it so far (its latest voucher, or the fees of its verdicts
sent for the job if more) plus this check's fee. When it does not, or the
chain does not answer, nothing is rendered and no verdict is sent: the
requester's verify timeout asks again (perhaps another checker).
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

import trio

if TYPE_CHECKING:
    from trio_typing import TaskStatus

from ledger.fraud import FraudClaim, RungVote, checker_pass, result_ref, sign, sign_pass
from node.log import log_event
from node.render.base import RendererIdentity
from node.roles.adversary import FALSE_REJECT, false_reject, lazy_verdict
from node.roles.chain import Payee
from node.roles.claim_defence import ClaimDefence
from node.roles.context import RoleContext
from node.roles.overturn_rechecks import OverturnRechecks
from node.roles.pass_rechecks import PassRechecks
from node.roles.paycheck import PayCheck
from node.roles.rechecks import Rechecks
from node.roles.reclaim_rechecks import ReclaimRechecks
from node.roles.scene_gate import SceneGate
from node.verify.checker import verify_result
from protocol.errors import IllegalMessage
from protocol.market.records import verdict_digest_of
from protocol.messages import (
    FraudSigned,
    FraudSignRequest,
    JobAnnounce,
    JobCancelled,
    JobSpec,
    VerifyRequest,
    Voucher,
)
from protocol.slashing import Rejection, may_sign, tiles_commitment
from protocol.verification import check_stale, fee_promised

logger = logging.getLogger(__name__)
QUEUE_LEN = 64
MAX_ANSWERED_JOBS = 1024  # jobs whose verdicts' fees are remembered (oldest forgotten)
MAX_ANSWERED_TASKS = 4096  # per job (beyond: not remembered, the check is more lenient)
MAX_REJECTIONS = 4096  # rejecting verdicts remembered for fraud claims (oldest forgotten)
MAX_SPECS = 4096  # announced jobs remembered (least recently announced or used forgotten)
MAX_SPECS_PER_REQUESTER = 64  # a requester's own flood evicts only its own jobs
# The most of our stake one claim may lock: the default escrow's SLASH_CAP (docs/LEDGER.md).
MAX_AT_RISK_WEI = 10**17


class CheckerRole:
    def __init__(self, ctx: RoleContext, payee: Payee | None, defence: ClaimDefence) -> None:
        self.ctx = ctx
        self.payee = payee
        self.defence = defence  # the node's watch on what we sign (node.roles.claim_defence)
        # every announce a stranger signs lands here: bounded, oldest forgotten
        self.specs: OrderedDict[bytes, JobSpec] = OrderedDict()
        self.checked = 0
        self.scene_gate = SceneGate(ctx.render.inspect)
        self._send, self._recv = trio.open_memory_channel[tuple[bytes, VerifyRequest, int]](
            QUEUE_LEN
        )
        self._releases, self._releases_out = trio.open_memory_channel[Path](16)
        self._pay_check = PayCheck(ctx.chain, self.specs.__contains__)
        # job -> task and tile secret -> fee of the verdict sent: a request asked again (a
        # verify timeout, a requester restarted: the same secret) is paid once, so it
        # counts once; a dispute's request about a task we checked before is paid apart
        self._answered: dict[bytes, dict[bytes, int]] = {}
        self.refused = 0  # checks not made: their pay was not secured
        # (job, task) -> our rejecting verdict: what we may sign a fraud claim for (bounded)
        self._rejections: OrderedDict[tuple[bytes, bytes], Rejection] = OrderedDict()
        self.fraud_signed = 0  # fraud claims we signed
        # re-checks a claimed worker asks for, to answer a claim (node.roles.rechecks)
        self.rechecks = Rechecks(ctx, self.specs, self.scene_gate)
        # claims against another checker's pass of a plant (node.roles.pass_rechecks)
        self.pass_rechecks = PassRechecks(ctx, self.specs, self.scene_gate, MAX_AT_RISK_WEI)
        # overturns of answers to fraud claims on frames we did not check (node.roles.overturn_rechecks)
        self.overturn_rechecks = OverturnRechecks(ctx, self.specs, self.scene_gate, MAX_AT_RISK_WEI)
        # reopened frames' claims on frames we did not check (node.roles.reclaim_rechecks)
        self.reclaim_rechecks = ReclaimRechecks(ctx, self.specs, self.scene_gate, MAX_AT_RISK_WEI)

    def on_announce(self, announce: JobAnnounce) -> None:
        """A job we may be asked to check: gossiped (validated before it got here) or
        sent by its requester directly (the caller runs ``check_announce``)."""
        job_id, requester = announce.job_id, announce.spec.requester
        if job_id not in self.specs:  # one requester's flood evicts only its own jobs
            mine = [j for j, spec in self.specs.items() if spec.requester == requester]
            if len(mine) >= MAX_SPECS_PER_REQUESTER:
                del self.specs[mine[0]]
        self.specs[job_id] = announce.spec
        self.specs.move_to_end(job_id)
        while len(self.specs) > MAX_SPECS:
            self.specs.popitem(last=False)

    def receive(self, sender: bytes, request: VerifyRequest) -> bool:
        """Queue a check; False when we cannot take it (unknown job or full queue)."""
        spec = self.specs.get(request.job_id)
        if spec is None or spec.requester != sender:
            return False
        if not self.defence.takes_signed_work(spec):
            return False  # a pass we sign must stay watched (node.roles.claim_watch)
        self.specs.move_to_end(request.job_id)  # a job in use is the last forgotten
        try:
            self._send.send_nowait((sender, request, self.ctx.clock.now_ms()))
        except trio.WouldBlock:
            return False
        return True

    def on_voucher(self, sender: bytes, voucher: Voucher) -> bool:
        """Take a fee voucher; False when too busy to (the requester sends it again)."""
        spec = self.specs.get(voucher.job_id)
        if self.payee is not None and spec is not None and spec.requester == sender:
            # queued by the payee: a store write must not hold the stream
            return self.payee.offer(voucher, spec.requester_address, "requester")
        return True

    def on_cancelled(self, sender: bytes, cancelled: JobCancelled) -> None:
        """The job's requester closed it: no larger voucher will come (the payee may
        redeem ours now)."""
        spec = self.specs.get(cancelled.job_id)
        if spec is None or spec.requester != sender:
            return
        if self.payee is not None:
            self.payee.job_over(spec.requester_address, cancelled.job_id)
        release = self.ctx.render.release_tiles
        if release is not None and self.ctx.content.has(spec.scene_cid):
            try:  # the warm process that kept the job's scene for its checks
                self._releases.send_nowait(self.ctx.content.path_of(spec.scene_cid))
            except trio.WouldBlock:
                pass  # closed when idle instead

    async def run(self, *, task_status: TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self._release_scenes)
            nursery.start_soon(self.rechecks.run)
            nursery.start_soon(self.pass_rechecks.run)
            nursery.start_soon(self.overturn_rechecks.run)
            nursery.start_soon(self.reclaim_rechecks.run)
            task_status.started()
            async for requester, request, queued_ms in self._recv:
                waited_ms = self.ctx.clock.now_ms() - queued_ms
                if check_stale(waited_ms, self.ctx.settings.market.verify_timeout_ms):
                    log_event(logger, logging.INFO, "check skipped: waited too long",
                              frame=request.frame, waited_ms=waited_ms)  # fmt: skip
                    continue
                try:
                    await self._check(requester, request, queued_ms)
                except Exception as exc:  # no verdict; the requester times out
                    log_event(logger, logging.WARNING, "check failed", frame=request.frame,
                              error=str(exc)[:300])  # fmt: skip

    async def _pay_problem(self, spec: JobSpec, request: VerifyRequest) -> str | None:
        """Why this check's fee might not be paid, or None (read before any await)."""
        answered = self._answered.get(request.job_id, {})
        promised_wei = sum(answered.values())
        if self.payee is not None:
            voucher_wei = self.payee.voucher_wei(spec.requester_address, request.job_id)
            promised_wei = max(promised_wei, voucher_wei)
        asked = request.task_id + request.tile_secret  # a dispute's second request has its own
        # a request answered before counts its fee once; one answered late counted 0, so a
        # re-ask's fee is secured anew (second review of stop 39)
        cumulative_wei = promised_wei + max(0, request.fee_wei - answered.get(asked, 0))
        return await self._pay_check.problem(spec, request.job_id, cumulative_wei)

    async def _release_scenes(self) -> None:
        release = self.ctx.render.release_tiles
        async for scene in self._releases_out:
            if release is not None:
                await release(scene)

    async def _check(self, requester: bytes, request: VerifyRequest, queued_ms: int) -> None:
        spec = self.specs.get(request.job_id)
        if spec is None:  # forgotten while queued (MAX_SPECS newer announces): no check
            return
        if (problem := await self._pay_problem(spec, request)) is not None:
            self.refused += 1
            log_event(logger, logging.WARNING, "check refused: pay not secured",
                      frame=request.frame, reason=problem)  # fmt: skip
            return
        scene = await self.ctx.fetch_from(requester, request.scene_cid)
        refusal = await self.scene_gate.refusal(scene, request.scene_cid, spec.settings,
                                                spec.ru_per_frame)  # fmt: skip
        if refusal is not None:  # logged by the gate; no verdict: the requester times out
            return
        # From the requester, never the worker: it serves every frame it asks about
        # (real or planted, node.roles.plants); where it comes from must not tell.
        frame = await self.ctx.fetch_from(requester, request.frame_cid)
        if self.ctx.settings.adversary == "lazy":  # test-only: passes without rendering
            verdict = await lazy_verdict(request, frame, spec)
        else:
            verdict = await verify_result(
                self.ctx.render.tiles, request, scene=scene, frame_image=frame,
                settings=spec.settings, job_build=spec.renderer_build,
                worker=RendererIdentity(spec.renderer_build, request.worker_device_class),
            )  # fmt: skip
        if self.ctx.settings.adversary == FALSE_REJECT:  # test-only: a lying checker
            verdict = false_reject(verdict)
        # A pass of an escrowed job is signed (a lazy checker's too: the requester refuses
        # an unsigned one), which makes it claimable if the frame was wrong (issue 17).
        verdict = replace(verdict, pass_sig=sign_pass(spec, verdict, request.frame_cid,
                                                      self.ctx.payment_key))  # fmt: skip
        signed = checker_pass(spec, verdict, request.frame_cid, self.ctx.payment_address)
        if verdict.pass_sig is not None and signed is not None:  # a signed pass can be claimed
            self.defence.watch_signed(signed.ref, requester)
        elif spec.escrow is not None:  # a rejection: its fee's vouchers still come after a restart
            self.defence.note_payer(request.job_id, requester, spec.requester_address)
        self.checked += 1
        answered = self._answered.pop(request.job_id, {})
        self._answered[request.job_id] = answered  # the newest job last
        if len(answered) < MAX_ANSWERED_TASKS:  # a late verdict's fee is not counted on
            answered[request.task_id + request.tile_secret] = fee_promised(
                self.ctx.clock.now_ms() - queued_ms,
                self.ctx.settings.market.verify_timeout_ms,
                request.fee_wei,
            )
        if len(self._answered) > MAX_ANSWERED_JOBS:  # a stranger's jobs stay bounded
            del self._answered[next(iter(self._answered))]
        log_event(logger, logging.INFO, "verdict", frame=request.frame, passed=verdict.passed)
        if not verdict.passed:
            key = (request.job_id, request.task_id)
            self._rejections[key] = Rejection(request.frame, request.frame_cid,
                                              verdict_digest_of(verdict))  # fmt: skip
            while len(self._rejections) > MAX_REJECTIONS:
                self._rejections.popitem(last=False)
        self.ctx.outbox.send(requester, verdict)

    def on_fraud_sign_request(self, sender: bytes, request: FraudSignRequest) -> bool:
        """Sign the job's requester's fraud claim about a result we rejected ourselves
        (``protocol.slashing.may_sign``); about a task we did not reject, queue a re-check
        to overturn an answer to its claim (node.roles.overturn_rechecks) or to sign a
        reopened frame's claim (node.roles.reclaim_rechecks; False: busy);
        raises ``IllegalMessage`` for anything else."""
        spec = self.specs.get(request.job_id)
        if spec is None or spec.requester != sender or self.ctx.chain is None:
            raise IllegalMessage("a fraud claim about a job we do not check for its sender")
        rejection = self._rejections.get((request.job_id, request.task_id))
        if rejection is not None and rejection.frame_cid != request.frame_cid:
            # we rejected another frame of the task (a plant we were served): judge this
            # one as any pick does, never refuse it as a claim about "our" rejection
            rejection = None
        if rejection is None and request.rung is None:  # a reopened frame's claim
            return self.reclaim_rechecks.receive(sender, request)
        if rejection is None:
            return self.overturn_rechecks.receive(sender, request)
        why = may_sign(rejection, request.frame, request.frame_cid, request.verdict_digests,
                       request.amount_wei, MAX_AT_RISK_WEI)  # fmt: skip
        ref = result_ref(spec, request.job_id, request.task_id, request.frame, request.frame_cid)
        if why or ref is None:
            raise IllegalMessage(f"fraud claim not signed: {why or 'no escrow'}", penalty=10)
        claim = FraudClaim(ref, request.worker_address, tiles_commitment(request.verdict_digests),
                           request.amount_wei, request.round)  # fmt: skip
        message: FraudClaim | RungVote = claim
        if request.rung is not None:  # a place on the claim's side of its ladder, once answered
            claimers = list(request.claimers)
            if request.rung % 2 == 0:
                raise IllegalMessage("fraud claim not signed: an even rung is the accused's", penalty=10)
            if claimers != sorted(set(claimers)):  # the escrow logs them ascending
                raise IllegalMessage("fraud claim not signed: claimers out of order", penalty=10)
            # Signed from our own rejection only on a claim we opened: its claimers include
            # us, so its amount is the one our own Fraud signature consented to (the escrow
            # counts the signature only when they are that claim's). A claim we did not
            # sign (we signed late, or were left out) is re-checked like any pick's: the
            # chain read, the claimed cells rendered (node.roles.overturn_rechecks).
            if self.ctx.chain.address not in claimers:
                return self.overturn_rechecks.receive(sender, request)
            message = claim.rung(claimers, request.rung)
        self.fraud_signed += 1
        log_event(logger, logging.INFO, "fraud claim signed", frame=request.frame,
                  worker=request.worker_address.hex(), rung=request.rung)  # fmt: skip
        signed = FraudSigned(request.job_id, request.task_id, sign(message, self.ctx.payment_key),
                             request.rung, request.round)  # fmt: skip
        self.ctx.outbox.send(sender, signed)
        return True

"""The worker role: a trio shell around ``WorkerMachine``.

Theory of operation. Announces (gossip) and market messages (streams) go into
the machine; its commands are carried out here: ``Send`` through the outbox,
``StartRender`` starts a render task (fetch the scene by CID from the
requester, preflight it ourselves — :mod:`node.roles.scene_gate`; a refused
scene is declined, ``scene refused: <why>``, and never rendered — render the
frame with the Blender backend in its sandbox, put the
PNG in the content store for requester and checker to fetch, report back),
``CancelRender`` cancels that task, ``VoucherReceived`` hands the voucher to
the payee, which checks its signature and redeems it on chain.

Pay before work. With a chain, the worker reads the escrow
(:mod:`node.roles.paycheck`) before it bids on an announce (the job exists for
that requester, is not refunded, pays in the native coin, and its vouchers
still pay ``REDEEM_MARGIN_S`` after the job's deadline) and again before it
starts each awarded frame: its lane must then also cover what the requester's
vouchers have promised it so far plus every frame it is rendering for the job,
this one included. When it does not (or the chain does not answer), the award
is declined (``AwardDeclined`` with the reason) and nothing is rendered; the
requester then drops our bid for that job, and the machine bids again after a
backoff, a bounded number of times (the lane may only be late: our reading
lags the requester's funding, or our chain was out).

``adversary="wrong-seed"`` renders with another seed and reports it as the
job's render: a cheat the checkers must catch (tests only; off by default).
``adversary="stall"`` takes its awards and never finishes a frame (a machine
that hangs mid-render, for the lease-expiry tests: the render in flight stays
visible until the process is killed).
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

from ledger.fraud import result_ref, sign
from node.log import log_event
from node.roles.chain import Payee
from node.roles.challenge_answer import ChallengeAnswerer
from node.roles.claim_defence import ClaimDefence
from node.roles.common import run_timer
from node.roles.context import RoleContext
from node.roles.paycheck import PayCheck
from node.roles.scene_gate import SceneGate
from protocol.market import (
    CancelRender,
    Command,
    Send,
    StartRender,
    VoucherReceived,
    WorkerConfig,
    WorkerMachine,
)
from protocol.messages import (
    CapacityChallenge,
    FailureReason,
    JobAnnounce,
    JobCancelled,
    JobSpec,
    Message,
    check_announce,
)

logger = logging.getLogger(__name__)
BRAZEN = "wrong-seed-disputed"  # test adversary: cheats, then disputes its rejection
STALL = "stall"  # test adversary: holds its leases, never finishes a frame
MAX_SPECS = 4096  # announced jobs remembered beyond those the machine knows
MAX_CHECKS = 8  # announces checked on chain at once; more are dropped (re-announced later)


class WorkerRole:
    def __init__(
        self, ctx: RoleContext, payee: Payee | None, build: str, device_class: str,
        score_ru_per_hour: int = 0, reference_probe_ms: int = 0, *, defence: ClaimDefence,
    ) -> None:  # fmt: skip
        self.ctx = ctx
        self.payee = payee
        self.build = build
        self.device_class = device_class
        # The machine contests rejections of our results; a test adversary never does.
        config = WorkerConfig(ctx.settings.price_wei_per_ru, (build,), slots=1,
                              score_ru_per_hour=score_ru_per_hour,
                              dispute_rejections=ctx.settings.adversary in ("", BRAZEN))  # fmt: skip
        self.machine = WorkerMachine(ctx.me, ctx.payment_address, config, ctx.clock.now_ms())
        # every announce a stranger signs lands here: bounded, least recently announced
        # forgotten first, never one of a job the machine still knows (bounded by
        # WorkerConfig.max_known_jobs)
        self.specs: OrderedDict[bytes, JobSpec] = OrderedDict()
        self.rendered = 0
        self._renders: dict[bytes, trio.CancelScope] = {}
        self._changed = trio.Event()
        self._nursery: trio.Nursery | None = None
        self._checking: set[bytes] = set()  # announces whose escrow is being read
        self._pay_check = PayCheck(ctx.chain, self.machine.knows_job)
        self.scene_gate = SceneGate(ctx.render.inspect, ctx.render.probe)
        self.reference_probe_ms = reference_probe_ms  # from our benchmark; 0: we cannot probe
        # The watch for fraud claims on our signed results, and their answers: the
        # node's, shared with its checker role (node.roles.claim_defence).
        self.defence = defence
        self.answerer = self.defence.answerer
        self.claim_watch = self.defence.watch
        self.challenges = ChallengeAnswerer(ctx, self.specs, self.machine.knows_job,
                                            (build, device_class), self.scene_gate)  # fmt: skip

    async def run(self, *, task_status: TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            nursery.start_soon(run_timer, self.ctx.clock, self.machine.get_timer,
                               self._fire, lambda: self._changed)  # fmt: skip
            task_status.started()

    @property
    def rendering(self) -> int:
        return len(self._renders)

    def free_slots(self) -> int:
        """Slots the machine's config offers minus renders in flight (for the advert)."""
        return max(0, self.machine.config.slots - self.rendering)

    async def _fire(self, now_ms: int) -> None:
        self.carry_out(self.machine.handle_timer(now_ms))

    def on_announce(self, sender: bytes, announce: JobAnnounce) -> None:
        """Raises ``IllegalMessage`` (the node blames the forwarder) for a malformed one."""
        check_announce(announce, sender)
        job_id = announce.job_id
        self.specs[job_id] = announce.spec
        self.specs.move_to_end(job_id)
        if len(self.specs) > MAX_SPECS:
            self._forget_specs()
        if self.ctx.chain is None or self.machine.knows_job(job_id):
            self.receive(sender, announce)  # no chain to ask, or the machine ignores it
            return
        if job_id in self._checking or len(self._checking) >= MAX_CHECKS:
            return
        self._checking.add(job_id)
        assert self._nursery is not None
        self._nursery.start_soon(self._check_then_bid, sender, announce)

    def _forget_specs(self) -> None:
        for job_id in list(self.specs):  # oldest first
            if len(self.specs) <= MAX_SPECS:
                return
            if not self.machine.knows_job(job_id):
                del self.specs[job_id]

    async def _check_then_bid(self, sender: bytes, announce: JobAnnounce) -> None:
        try:
            problem = await self.pay_problem(announce.spec, announce.job_id, 0)
        finally:
            self._checking.discard(announce.job_id)
        if problem is None and not self.defence.takes_signed_work(announce.spec):
            problem = "claim watch full: no more signed results until older windows close"
        if problem is not None:
            log_event(logger, logging.INFO, "job not bid on", job=announce.job_id.hex()[:16],
                      reason=problem)  # fmt: skip
            return
        self.receive(sender, announce)  # checked already (check_announce): it cannot raise

    async def pay_problem(self, spec: JobSpec, job_id: bytes, cumulative_wei: int) -> str | None:
        """Why vouchers totalling ``cumulative_wei`` for the job might not pay, or None."""
        return await self._pay_check.problem(spec, job_id, cumulative_wei)

    def receive(self, sender: bytes, message: Message) -> None:
        """Feed the machine; ``IllegalMessage`` propagates to the caller (peer scoring)."""
        self.carry_out(self.machine.receive(sender, message, self.ctx.clock.now_ms()))
        if isinstance(message, JobCancelled):
            spec = self.specs.get(message.job_id)
            if spec is not None and spec.requester == sender:  # the job is over
                if self.payee is not None:
                    self.payee.job_over(spec.requester_address, message.job_id)
                self._release_scene(spec)

    def on_challenge(self, sender: bytes, challenge: CapacityChallenge) -> None:
        """A requester's capacity challenge (node.roles.challenge_answer); raises
        ``IllegalMessage`` for one we never invited."""
        assert self._nursery is not None
        self.challenges.receive(sender, challenge, self._nursery)

    def _release_scene(self, spec: JobSpec) -> None:
        """Close the warm Blender process that kept the job's scene (if the kit keeps one)."""
        release = self.ctx.render.release_frames
        if release is not None and self.ctx.content.has(spec.scene_cid) and self._nursery:
            self._nursery.start_soon(release, self.ctx.content.path_of(spec.scene_cid))

    def carry_out(self, commands: list[Command]) -> None:
        assert self._nursery is not None
        for command in commands:
            if isinstance(command, Send):
                self.ctx.outbox.send(command.to, command.message)
            elif isinstance(command, StartRender):
                scope = trio.CancelScope()
                self._renders[command.task_id] = scope
                self._nursery.start_soon(self._render, command, scope)
            elif isinstance(command, CancelRender):
                if (running := self._renders.pop(command.task_id, None)) is not None:
                    running.cancel()
            elif isinstance(command, VoucherReceived) and self.payee is not None:
                spec = self.specs.get(command.voucher.job_id)
                if spec is not None:
                    self._nursery.start_soon(self.payee.receive, command.voucher,
                                             spec.requester_address, "requester")  # fmt: skip
        self._changed.set()
        self._changed = trio.Event()

    async def _render(self, command: StartRender, scope: trio.CancelScope) -> None:
        with scope:
            # Our total for the job once this frame is paid: every result delivered and
            # every frame in flight (this one included), read before any await.
            cumulative_wei = self.machine.pay_needed_wei(command.job_id)
            problem = await self.pay_problem(command.spec, command.job_id, cumulative_wei)
            if problem is not None:
                self._renders.pop(command.task_id, None)
                log_event(logger, logging.WARNING, "award declined: pay not secured",
                          frame=command.frame, reason=problem)  # fmt: skip
                self.carry_out(self.machine.decline(
                    command.task_id, problem, self.ctx.clock.now_ms()
                ))  # fmt: skip
                return
            try:
                scene = await self.ctx.fetch_from(command.spec.requester, command.spec.scene_cid)
                if not await self._accept_scene(command, scene):
                    return
                cid, size, render_ms = await self._render_frame(command, scene)
            except Exception as exc:  # any failure is reported, not raised
                log_event(
                    logger, logging.WARNING, "render failed", frame=command.frame, error=str(exc)
                )
                now_ms = self.ctx.clock.now_ms()
                reason = FailureReason.RENDER_ERROR
                self.carry_out(
                    self.machine.render_failed(command.task_id, reason, str(exc)[:200], now_ms)
                )
                return
            finally:
                self._renders.pop(command.task_id, None)
            self.rendered += 1
            self.carry_out(self.machine.render_finished(
                command.task_id, cid, size, render_ms, self.build, self.device_class,
                self.ctx.clock.now_ms(), result_sig=self._result_sig(command, cid),
            ))  # fmt: skip

    def _result_sig(self, command: StartRender, frame_cid: str) -> bytes | None:
        """Our payment key's signature of the result (escrowed jobs only): it makes us
        answerable for this frame, and only for this frame (see ``ledger.fraud``)."""
        if self.ctx.settings.adversary == "unsigned-result":
            return None
        ref = result_ref(command.spec, command.job_id, command.task_id, command.frame, frame_cid)
        if ref is None:
            return None
        self.defence.watch_signed(ref, command.spec.requester)  # any signed result can be claimed
        return sign(ref, self.ctx.payment_key)

    async def _accept_scene(self, command: StartRender, scene: Path) -> bool:
        """Our own preflight, then (with a measured score) the probe's verdict on time."""
        spec = command.spec
        refusal = await self.scene_gate.refusal(scene, spec.scene_cid, spec.settings,
                                                spec.ru_per_frame)  # fmt: skip
        if refusal is not None:
            self._renders.pop(command.task_id, None)
            self.carry_out(self.machine.refuse_scene(command.task_id, refusal,
                                                     self.ctx.clock.now_ms()))  # fmt: skip
            return False
        if not (self.machine.config.score_ru_per_hour and self.reference_probe_ms):
            return True
        complexity = await self.scene_gate.complexity_permille(scene, spec, command.frame,
                                                               self.reference_probe_ms)  # fmt: skip
        if complexity is None:
            return True
        declined = self.machine.scene_measured(command.task_id, complexity, self.ctx.clock.now_ms())
        if declined:
            self._renders.pop(command.task_id, None)
            log_event(logger, logging.WARNING, "award declined: cannot finish before the deadline",
                      frame=command.frame, complexity_permille=complexity)  # fmt: skip
            self.carry_out(declined)
        return not declined

    async def _render_frame(self, command: StartRender, scene: Path) -> tuple[str, int, int]:
        spec = command.spec
        settings = spec.settings
        if self.ctx.settings.adversary in ("wrong-seed", BRAZEN):
            settings = replace(settings, seed=(settings.seed + 1) % (1 << 32))

        def progress(_frame: int, fraction: float) -> None:
            permille = min(999, int(fraction * 1000))
            self.carry_out(self.machine.render_progress(command.task_id, permille,
                                                        self.ctx.clock.now_ms()))  # fmt: skip

        if self.ctx.settings.adversary == STALL:  # hangs mid-frame until killed
            await trio.sleep_forever()
        out_dir = self.ctx.work_root / f"out-{command.task_id.hex()[:16]}"
        started_s = trio.current_time()
        outputs = await self.ctx.render.frames.render_frames(
            scene, settings, [command.frame], out_dir, progress
        )
        render_ms = int((trio.current_time() - started_s) * 1000)
        path = outputs[0].path
        cid = await trio.to_thread.run_sync(self.ctx.content.put_file, path)
        size = path.stat().st_size
        path.unlink(missing_ok=True)
        return cid, size, render_ms

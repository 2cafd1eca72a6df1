"""Worker driver: runs the real ``protocol.market.WorkerMachine`` on a
modelled GPU, and the worker-side adversaries.

The driver is the node's renderer and wallet: ``StartRender`` becomes a
render of modelled duration (``models.render_outcome``) that ends in
``render_finished`` or ``render_failed``; ``CancelRender`` stops it;
``VoucherReceived`` goes to the wallet, which redeems as the node's payee does
(``simulations/wallet.py``).
Bidding, slots, heartbeats and lease handling are the machine's. Before it
renders, the driver checks its pay is secured as the node does
(``node/roles/paycheck.py``: ``ledger.secured.Secured.problem`` on the job's
lane, for its vouchers so far plus every frame in flight) and declines the
award when it is not (``WorkerMachine.decline``).

Behaviours (what a dishonest operator's modified node does):

* ``cheater`` / ``sybil`` — at ``cheat_rate`` return a wrong frame (in a tenth
  of the time) or, for ``partial_share`` of cheats, a partial render (half the
  time); the frame CID differs from the true one, which checkers may notice.
* ``lazy`` — accepts awards and never renders; its machine keeps
  heartbeating, so the lease stays alive until the job's deadline.
* ``sniper`` — asks ``sniper_discount`` below the going price to win awards.
* ``flood`` — a sybil capacity flood: fresh identities that claim
  ``flood_score_factor`` times their card's score and ask 1 wei per RU (so they
  win cheapest-first awards), and cheat like a sybil (always wrong frames here:
  ``cheat_rate`` 1 for them); a caught one is replaced by a fresh key.

A requester's capacity challenge is answered as the node's answerer does
(``simulations/challenges.py``). Vouchers are the node's persisted state: a crashed worker comes back with its
key and its vouchers (and redeems them), but not its in-flight renders.
"""

from __future__ import annotations

import hashlib

from ledger.secured import NATIVE_TOKEN, REDEEM_MARGIN_S
from protocol import RemoteProtocolError
from protocol.market import (
    CancelRender,
    Command,
    Send,
    StartRender,
    VoucherReceived,
    WorkerConfig,
    WorkerMachine,
)
from protocol.messages import CapacityChallenge, FailureReason, JobCancelled, Message, Voucher
from simulations.challenges import ChallengeAnswerer
from simulations.models import render_outcome
from simulations.requesters import RENDERER_BUILD
from simulations.wallet import Wallet
from simulations.world import SimNode, World

CHEATERS = ("cheater", "sybil", "flood")
WORK_TENTHS = {"honest": 10, "partial": 5, "wrong": 1}  # a result's render time, of an honest one


def true_cid(job_id: bytes, frame: int) -> str:
    """The CID an honest render of this frame has (the simulator's ground truth)."""
    return "bafk" + hashlib.sha256(job_id + frame.to_bytes(4, "big")).hexdigest()[:52]


class WorkerDriver:
    def __init__(self, world: World, node: SimNode, vouchers: dict[bytes, Voucher]) -> None:
        assert node.gpu is not None
        self.world = world
        self.node = node
        self.wallet = Wallet(world, vouchers)  # persisted: survives crashes
        scenario = world.scenario
        ask = scenario.workload.price_wei_per_ru
        score = node.gpu.score_ru_per_hour
        if node.behaviour == "sniper":
            ask = int(ask * (1 - scenario.adversaries.sniper_discount))
        elif node.behaviour == "flood":  # claims a huge card and works for almost nothing
            ask, score = 1, score * scenario.adversaries.flood_score_factor
        config = WorkerConfig(
            min_price_wei_per_ru=ask,
            renderer_builds=(RENDERER_BUILD,),
            slots=1,
            score_ru_per_hour=max(1, int(score)),
            dispute_rejections=node.behaviour not in CHEATERS
            or scenario.adversaries.cheaters_dispute,
        )
        self.machine = WorkerMachine(node.node_id, node.address, config, world.epoch_ms())
        world.adverts[node.node_id] = config.score_ru_per_hour  # what its adverts claim
        self.challenges = ChallengeAnswerer(self, RENDERER_BUILD)  # simulations/challenges.py
        self._renders: dict[bytes, int] = {}  # task id -> render token
        self.set_up: set[bytes] = set()  # jobs whose scene this run fetched and inspected
        self._token = 0
        self.alive = True

    def on_message(self, sender: bytes, message: Message, digest: bytes | None) -> None:
        if isinstance(message, CapacityChallenge):  # the node's answerer, not its machine
            self.challenges.receive(sender, message)
            return
        try:
            commands = self.machine.receive(sender, message, self.world.epoch_ms())
        except RemoteProtocolError as exc:
            self.world.metrics.machine_errors += 1
            self.world.loop.note("machine-error", f"worker: {exc}")
            return
        if isinstance(message, JobCancelled):  # from its requester (the machine checked)
            self.wallet.job_over(self.world.by_id[sender].address, message.job_id)
        self._run(commands)

    @property
    def rendering(self) -> bool:
        return bool(self._renders)

    def stop(self) -> None:
        """Crash or leave: renders in flight are lost, the timer dies."""
        self.alive = self.wallet.alive = False
        self.world.disarm(("w", self.node.index))
        for _ in self._renders:
            self.world.metrics.busy_delta(self.world.loop.now_ms, -1)
        self._renders.clear()

    def _on_timer(self) -> None:
        if self.alive:
            self._run(self.machine.handle_timer(self.world.epoch_ms()))

    def _run(self, commands: list[Command]) -> None:
        world = self.world
        for cmd in commands:
            if isinstance(cmd, Send):
                world.send(self.node, cmd.to, cmd.message)
            elif isinstance(cmd, StartRender):
                self._start_render(cmd)
            elif isinstance(cmd, CancelRender):
                if self._renders.pop(cmd.task_id, None) is not None:
                    world.metrics.busy_delta(world.loop.now_ms, -1)
            elif isinstance(cmd, VoucherReceived):
                self.wallet.receive(cmd.voucher)
        if self.alive:
            world.arm(("w", self.node.index), self.machine.get_timer(), self._on_timer)

    def _pay_problem(self, cmd: StartRender) -> str | None:
        """Why this frame's pay might not be paid (the node's PayCheck), or None."""
        job_id = cmd.job_id
        cumulative_wei = self.machine.pay_needed_wei(job_id)  # as the node's worker asks
        secured = self.world.chain.secured(job_id, self.node.address)
        return secured.problem(token=NATIVE_TOKEN, cumulative_wei=cumulative_wei,
                               redeem_by_s=cmd.spec.deadline_ms // 1000 + REDEEM_MARGIN_S)  # fmt: skip

    def _start_render(self, cmd: StartRender) -> None:
        world = self.world
        problem = self._pay_problem(cmd)
        if problem is not None:
            world.metrics.awards_declined += 1
            world.loop.note("declined", problem)
            self._run(self.machine.decline(cmd.task_id, problem, world.epoch_ms()))
            return
        world.metrics.renders_started += 1
        if self.node.behaviour == "lazy":
            return  # takes the award, never renders: only the deadline frees the frame
        self._token += 1
        self._renders[cmd.task_id] = self._token
        world.metrics.busy_delta(world.loop.now_ms, +1)
        assert self.node.gpu is not None
        scene = world.scenes[cmd.job_id]
        outcome = render_outcome(
            world.loop.rng,
            world.scenario.rendering,
            self.node.gpu,
            scene.ru_per_frame,
            scene.scene_vram_mib,
        )
        kind, duration_ms = self._cheat(outcome.duration_ms) if outcome.ok else ("", 0)
        duration_ms = duration_ms or outcome.duration_ms
        if cmd.job_id not in self.set_up:  # its first frame of the job: scene + preflight
            self.set_up.add(cmd.job_id)
            duration_ms += int(world.scenario.rendering.job_setup_s * 1000)
        duration_ms += self.challenges.holds_ms(cmd.job_id)  # after the job's challenge render
        arg = (cmd, self._token, outcome.ok, outcome.reason, kind, duration_ms)
        world.loop.call_later(duration_ms, self._render_done, arg, "render-done")

    def _cheat(self, duration_ms: int) -> tuple[str, int]:
        """Does this result cheat? A cheat also saves the cheater time."""
        adv = self.world.scenario.adversaries
        rng = self.world.loop.rng
        if self.node.behaviour not in CHEATERS:
            return ("honest", duration_ms)
        if self.node.behaviour != "flood" and rng.random() >= adv.cheat_rate:
            return ("honest", duration_ms)
        if rng.random() < adv.partial_share:
            return ("partial", duration_ms // 2 + 1)
        return ("wrong", duration_ms // 10 + 1)

    def _render_done(self, arg: tuple[StartRender, int, bool, str, str, int]) -> None:
        cmd, token, ok, reason, kind, duration_ms = arg
        world = self.world
        if not self.alive or self._renders.get(cmd.task_id) != token:
            return  # cancelled, or this node crashed since
        del self._renders[cmd.task_id]
        world.metrics.busy_delta(world.loop.now_ms, -1)
        now = world.epoch_ms()
        if not ok:
            world.metrics.renders_failed += 1
            detail = "scene needs more VRAM" if reason == "out_of_memory" else "renderer crashed"
            self._run(self.machine.render_failed(cmd.task_id, FailureReason(reason), detail, now))
            return
        cid = true_cid(cmd.job_id, cmd.frame)
        if kind != "honest":
            world.metrics.cheats_submitted += 1
            cid = (
                "bafk" + hashlib.sha256(cid.encode() + kind.encode() + cmd.task_id).hexdigest()[:52]
            )
        world.result_kind[cmd.task_id] = kind
        ru_wei = world.scenes[cmd.job_id].ru_per_frame * world.scenario.workload.price_wei_per_ru
        costs = world.metrics.work_cost_wei  # at the honest ask; a cheat costs its share
        costs[self.node.node_id] = costs.get(self.node.node_id, 0) + ru_wei * WORK_TENTHS[kind] // 10
        size = world.scenario.rendering.result_size_bytes
        assert self.node.gpu is not None
        self._run(
            self.machine.render_finished(
                cmd.task_id, cid, size, duration_ms, RENDERER_BUILD, self.node.gpu.name, now,
                result_sig=self.node.address + bytes(45),  # a stand-in, as vouchers' (chain.py)
            )
        )

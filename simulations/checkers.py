"""Checker model: stands in for the verification machine until protocol/ has one.

What a checker does on a VerifyRequest is *modelled*, not decided: it
re-renders ``tiles_per_check`` tiles (each costing ``tile_fraction`` of the
frame on its own GPU) and compares them with the worker's result. The
simulator knows the true frame (``workers.true_cid``), so the outcome is:

* the result is the true frame: pass, except a ``false_reject_rate`` of
  tolerance misses;
* a wrong frame: caught with probability ``1 - (1 - detect_per_tile) ** tiles``;
  a partial render with ``partial_detect_per_tile`` per tile;
* a colluding checker passes every cheater's frame.

The answer is a real, signed Verdict sent back through the network; the
requester's JobMachine decides what it means. Fee vouchers go to its wallet.
"""

from __future__ import annotations

from protocol.messages import Message, TileEvidence, Verdict, VerifyRequest, Voucher
from simulations.wallet import Wallet
from simulations.workers import CHEATERS, true_cid
from simulations.world import SimNode, World

MS_PER_HOUR = 3_600_000
TILE_PX = 32


class CheckerDriver:
    def __init__(self, world: World, node: SimNode, vouchers: dict[bytes, Voucher]) -> None:
        self.world = world
        self.node = node
        self.wallet = Wallet(world, vouchers)
        self.alive = True

    def on_message(self, sender: bytes, message: Message, digest: bytes | None) -> None:
        if isinstance(message, Voucher):
            self.wallet.receive(message)
        elif isinstance(message, VerifyRequest):
            self._verify(sender, message)

    def stop(self) -> None:
        self.alive = self.wallet.alive = False

    def _verify(self, requester: bytes, request: VerifyRequest) -> None:
        world = self.world
        scene = world.scenes.get(request.job_id)
        if scene is None or self.node.gpu is None:
            return
        config = world.scenario.verification
        tile_ru = scene.ru_per_frame * config.tile_fraction * config.tiles_per_check
        duration_ms = int(tile_ru / self.node.gpu.score_ru_per_hour * MS_PER_HOUR) + 2_000
        passed = self._judge(request)
        world.loop.call_later(duration_ms, self._answer, (requester, request, passed), "verdict")

    def _judge(self, request: VerifyRequest) -> bool:
        world = self.world
        config = world.scenario.verification
        rng = world.loop.rng
        if request.frame_cid == true_cid(request.job_id, request.frame):
            return rng.random() >= config.false_reject_rate
        worker = world.by_id.get(request.worker)
        if (
            self.node.behaviour == "colluder"
            and worker is not None
            and worker.behaviour in CHEATERS
        ):
            return True
        kind = world.result_kind.get(request.task_id, "wrong")
        per_tile = config.partial_detect_per_tile if kind == "partial" else config.detect_per_tile
        return rng.random() >= 1 - (1 - per_tile) ** config.tiles_per_check

    def _answer(self, arg: tuple[bytes, VerifyRequest, bool]) -> None:
        requester, request, passed = arg
        if not self.alive:
            return
        world = self.world
        tiles = tuple(
            TileEvidence(i * TILE_PX, 0, TILE_PX, TILE_PX, 90_000 if passed else 30_000, 0)
            for i in range(world.scenario.verification.tiles_per_check)
        )
        assert self.node.gpu is not None
        verdict = Verdict(
            request.job_id, request.task_id, request.frame, request.worker,
            request.result_digest, passed, world.loop.rng.randbytes(32), tiles,
            "blender-3.4.1", self.node.gpu.name,
        )  # fmt: skip
        world.send(self.node, requester, verdict)

"""Checker driver: the real tile selection and judging rules of
``protocol.verification``, over pixels the simulator models.

On a VerifyRequest the checker lets ``verification.select_tiles`` pick ``k``
grid cells from the request's ``tile_secret`` (the requester's draw, which its
machine holds every verdict to: protocol.tile_secret) and the result's
digest (``k`` is the request's ``tiles``: the requester's check plan, in which
``verification.tiles_per_check`` overrides ``k`` when set), "re-renders" them, and builds
the Verdict with ``verification.build_verdict`` and the policy's
``tile_passes``. Only the pixels are modelled, from the simulator's ground
truth about the result (``World.result_kind``):

* honest: identical pixels on the same device class, else ~83 dB (DESIGN.md);
  a ``false_reject_rate`` of tiles come out below the threshold anyway;
* wrong frame: every tile at 28–38 dB (the measured cheats);
* partial render: the last ``partial_fraction`` of the grid cells (row-major)
  is wrong, so detection is the exact hypergeometric chance that a selected
  cell lands there — the protocol's own tile choice decides;
* a colluding checker reports identical pixels for every cheater's result,
  without looking (so it passes a plant of one too);
* a plant (forced error, ``World.plants``): every cell wrong;
* a lazy checker renders nothing and reports every tile identical (a strategic
  one, ``adversaries.lazy_checker_after`` = N, only from its N+1-th check on:
  before that it renders like an honest checker; a whitewashing one,
  ``adversaries.lazy_checker_whitewash``, counts per requester and comes back
  to a requester that struck it under a fresh key, :meth:`CheckerDriver.whitewashed`);
* a lazy pair (``adversaries.lazy_pair_checkers``: identities of one owner that share
  notes, ``World.pair_notes``): asked about a task another member was asked about, it
  tells which request is the plant, as comparing the two frames' pixels does (a plant's
  CID is in ``World.plants``; one CID twice is two real checks), rejects the plant and
  passes the real frame, rendering neither (:meth:`CheckerDriver._pair_call`; notes are
  written when a request comes and read when it leaves the queue, so a partner's request
  that came meanwhile counts); otherwise it renders like an honest checker.

Before a check, as the node's checker does, the driver makes sure its fee is
secured on chain (its lane holds every fee promised so far plus this one) and
otherwise answers nothing (``checks_refused``): the requester times out.

Re-rendering costs ``scenario.tile_fraction`` of the frame per tile on the checker's GPU
(by default ``protocol.cost.tile_cost_ppm``: the tile's share of the frame's pixels) plus
``check_overhead_s`` per check;
what it costs the checker in wei is ``verification.check_cost_bps`` of the
frame's price for a 24-tile check, scaled by k / 24 (the frame's price is the
fee over ``checker_fee_bps``), booked in ``Metrics.checker_cost_wei``.
"""

from __future__ import annotations

from collections import deque

from ledger.secured import NATIVE_TOKEN, REDEEM_MARGIN_S
from protocol.messages import JobCancelled, Message, TileEvidence, VerifyRequest, Voucher
from protocol.verification import (
    DEFAULT_POLICY,
    PSNR_IDENTICAL_MILLIDB,
    TileCheck,
    build_verdict,
    cell_of,
    check_stale,
    fee_promised,
    select_tiles,
    tile_passes,
)
from simulations.scenario import tile_fraction
from simulations.wallet import Wallet
from simulations.workers import CHEATERS
from simulations.world import SimNode, World, faked_from

MS_PER_HOUR = 3_600_000

QUEUE_LEN = 64  # node/roles/checker.py: checks waiting beyond the one running


class CheckerDriver:
    def __init__(self, world: World, node: SimNode, vouchers: dict[bytes, Voucher]) -> None:
        self.world = world
        self.node = node
        self.wallet = Wallet(world, vouchers)
        self.alive = True
        self._queue: deque[tuple[bytes, VerifyRequest, int]] = deque()  # waiting, in order
        self._stale_ms = int(world.scenario.market.verify_timeout_s * 1000)
        self._busy = False
        self._set_up: set[bytes] = set()  # jobs whose scene this run fetched and inspected
        self._answered: dict[bytes, dict[bytes, int]] = {}  # job -> task -> fee of our verdict
        self._rendered = 0  # checks answered with a render (a strategic lazy checker counts them)
        # a whitewashing one counts them per requester, under its current key there
        self._rendered_for: dict[bytes, int] = {}
        # a lazy pair member's calls: (task, frame CID) -> passed unrendered, or None: rendered
        self._pair_calls: dict[tuple[bytes, str], bool | None] = {}

    def _lazy(self, requester: bytes) -> bool:
        """Whether this check is answered without rendering (see the module docstring)."""
        if self.node.behaviour != "lazy_checker":
            return False
        adversaries = self.world.scenario.adversaries
        if adversaries.lazy_checker_whitewash:
            return self._rendered_for.get(requester, 0) >= adversaries.lazy_checker_after
        return self._rendered >= adversaries.lazy_checker_after

    def _pair_call(self, request: VerifyRequest) -> bool | None:
        """A lazy pair member's call on ``request`` without rendering (True: pass it,
        False: reject it as the plant), or None: render. It calls only when another
        member was asked about the same task: one frame CID twice is two real checks;
        two CIDs are the real frame and the plant, told apart by their pixels (modelled:
        the plant's CID is known to the world). Decided once per request."""
        if self.node.behaviour != "lazy_pair":
            return None
        key = (request.task_id, request.frame_cid)
        if key not in self._pair_calls:
            notes = self.world.pair_notes.get(request.task_id, {})
            others = any(member != self.node.node_id for member in notes)
            call = (request.frame_cid not in self.world.plants) if others else None
            self._pair_calls[key] = call
            if call:  # what a cheat that slips this way is booked as (simulations.slip)
                self.world.pair_passed.add(request.task_id)
        return self._pair_calls[key]

    def whitewashed(self, requester: bytes) -> None:
        """``requester`` struck us and we come back to it under a fresh key (a whitewashing
        lazy checker): it knows nothing of the new key, and we start our act again."""
        self._rendered_for.pop(requester, None)

    def on_message(self, sender: bytes, message: Message, digest: bytes | None) -> None:
        if isinstance(message, Voucher):
            self.wallet.receive(message)
        elif isinstance(message, JobCancelled):  # the job is over: redeem what it owes
            self.wallet.job_over(self.world.by_id[sender].address, message.job_id)
            self._answered.pop(message.job_id, None)
        elif isinstance(message, VerifyRequest):
            self._verify(sender, message)

    def stop(self) -> None:
        self.alive = self.wallet.alive = False

    def _verify(self, requester: bytes, request: VerifyRequest) -> None:
        """Queue the check, as the node does: one at a time, ``QUEUE_LEN`` waiting at most
        (a request beyond is dropped; the requester's verify timeout asks again)."""
        if len(self._queue) >= QUEUE_LEN:
            return
        if self.node.behaviour == "lazy_pair":  # the pair's notes: who was asked what
            notes = self.world.pair_notes.setdefault(request.task_id, {})
            notes.setdefault(self.node.node_id, set()).add(request.frame_cid)
        self._queue.append((requester, request, self.world.loop.now_ms))
        if not self._busy:
            self._next()

    def _next(self) -> None:
        world = self.world
        self._busy = False
        while self._queue and self.alive:
            requester, request, queued_ms = self._queue.popleft()
            if check_stale(world.loop.now_ms - queued_ms, self._stale_ms):
                continue
            scene = world.scenes.get(request.job_id)
            if scene is None or self.node.gpu is None:
                continue
            if self._pay_problem(request) is not None:  # no verdict: the requester times out
                world.metrics.checks_refused += 1
                continue
            config = world.scenario.verification
            k = request.tiles
            self._busy = True
            if self._lazy(requester) or self._pair_call(request) is not None:  # renders nothing
                world.loop.call_later(2_000, self._answer, (requester, request, k, queued_ms), "verdict")
                return
            tile_ru = scene.ru_per_frame * tile_fraction(world.scenario) * k
            overhead_ms = int(config.check_overhead_s * 1000)
            if request.job_id not in self._set_up:  # first check of the job: scene + preflight
                self._set_up.add(request.job_id)
                setup_s = config.checker_setup_s or world.scenario.rendering.job_setup_s
                overhead_ms += int(setup_s * 1000)
            duration_ms = int(tile_ru / self.node.gpu.score_ru_per_hour * MS_PER_HOUR) + overhead_ms
            if config.checker_fee_bps:
                cost = request.fee_wei * config.check_cost_bps * k // (config.checker_fee_bps * 24)
                costs = world.metrics.checker_cost_wei
                costs[self.node.node_id] = costs.get(self.node.node_id, 0) + cost
            world.loop.call_later(duration_ms, self._answer, (requester, request, k, queued_ms),
                                  "verdict")  # fmt: skip
            return

    def _pay_problem(self, request: VerifyRequest) -> str | None:
        """Why this check's fee might not be paid (the node's checker: node/roles/checker.py)."""
        answered = self._answered.get(request.job_id, {})
        voucher = self.wallet.vouchers.get(request.job_id)
        promised_wei = max(sum(answered.values()), voucher.cumulative_wei if voucher else 0)
        cumulative_wei = promised_wei + max(0, request.fee_wei - answered.get(request.task_id, 0))
        secured = self.world.chain.secured(request.job_id, self.node.address)
        return secured.problem(token=NATIVE_TOKEN, cumulative_wei=cumulative_wei,
                               redeem_by_s=secured.deadline_s + REDEEM_MARGIN_S)  # fmt: skip

    def _answer(self, arg: tuple[bytes, VerifyRequest, int, int]) -> None:
        if not self.alive:
            return
        requester = arg[0]
        paired = self._pair_call(arg[1]) is not None
        rendered = not self._lazy(requester) and not paired
        if paired:  # a fee for a check nobody made (accounts)
            unrendered = self.world.metrics.unrendered_fees_wei
            unrendered[self.node.node_id] = unrendered.get(self.node.node_id, 0) + arg[1].fee_wei
        self._judge(arg)
        self._rendered += rendered
        self._rendered_for[requester] = self._rendered_for.get(requester, 0) + rendered
        self._next()

    def _judge(self, arg: tuple[bytes, VerifyRequest, int, int]) -> None:
        requester, request, k, queued_ms = arg
        world = self.world
        w, h = world.scenario.workload.resolution_x, world.scenario.workload.resolution_y
        tile_px = DEFAULT_POLICY.sampling.tile_px
        tiles = select_tiles(request.result_digest, request.tile_secret, w, h, k, tile_px)
        columns = -(-w // tile_px)
        bad_from = self._first_bad_cell(requester, request, columns * -(-h // tile_px))
        worker = world.by_id.get(request.worker)
        same_device = worker is not None and worker.gpu == self.node.gpu
        checks = []
        for tile in tiles:
            cell = cell_of(tile, w, tile_px)
            psnr, diff = self._pixels(cell >= bad_from, same_device)
            evidence = TileEvidence(tile.x, tile.y, tile.width, tile.height, psnr, diff)
            checks.append(
                TileCheck(evidence, tile_passes(evidence, same_device, DEFAULT_POLICY.comparison))
            )
        assert self.node.gpu is not None
        verdict = build_verdict(request, checks=checks,
                                checker_build="blender-3.4.1",
                                checker_device_class=self.node.gpu.name)  # fmt: skip
        self._answered.setdefault(request.job_id, {})[request.task_id] = fee_promised(
            world.loop.now_ms - queued_ms, self._stale_ms, request.fee_wei
        )  # a late verdict's fee is not counted on (node/roles/checker.py the same)
        world.send(self.node, requester, verdict)

    def _first_bad_cell(self, requester: bytes, request: VerifyRequest, cells: int) -> int:
        """Cells from this index on hold wrong pixels (``cells``: none are wrong)."""
        world = self.world
        kind = world.result_kind.get(request.task_id, "wrong")
        worker = world.by_id.get(request.worker)
        if self._lazy(requester):
            return cells  # "looked", saw nothing wrong
        if (call := self._pair_call(request)) is not None:
            return cells if call else 0  # the pair's call, unrendered
        if (
            self.node.behaviour == "colluder"
            and worker is not None
            and worker.behaviour in CHEATERS
        ):
            return cells  # reports the cheat as clean
        if request.frame_cid in world.plants:
            return 0  # a plant: every cell differs from an honest render
        return faked_from(kind, world.scenario.adversaries.partial_fraction, cells)

    def _pixels(self, wrong: bool, same_device: bool) -> tuple[int, int]:
        """Modelled (psnr_millidb, max_abs_diff) of one re-rendered tile."""
        rng = self.world.loop.rng
        if wrong:
            return rng.randint(28_000, 38_000), rng.randint(20, 255)
        if rng.random() < self.world.scenario.verification.false_reject_rate:
            return rng.randint(40_000, 59_000), rng.randint(2, 8)  # a tolerance miss
        if same_device:
            return PSNR_IDENTICAL_MILLIDB, 0
        return rng.randint(80_000, 86_000), 1

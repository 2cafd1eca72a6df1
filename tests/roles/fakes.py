"""Fakes for the role drivers' ports (node/roles/ports.py): a renderer and an escrow.

``FakeRenderKit`` renders deterministic noise images: a frame's pixels are a
function of the scene file's bytes, the job's seed and the frame number, and a
tile re-render is the same region of the same function, so honest results pass
the real checker code bit for bit and a result rendered with another seed is
rejected. Renders can be delayed (mock-clock sleeps), held at a gate, or fail.

``FakeEscrow`` is the escrow contract's rules in memory (jobs keyed by
requester and id, lanes, cumulative vouchers paying up to their lane with the
real EIP-712 signature check, batches that skip what cannot pay, refund after
deadline + grace), with integer balances; ``FakeChain`` is one
account's ``ports.Chain`` onto it, with an outage switch, injected reverts and
a per-call delay.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import trio
from PIL import Image

from ledger.client import (
    CLAIM_ANSWERED,
    CLAIM_CONTESTED,
    CLAIM_EXECUTED,
    CLAIM_PENDING,
    ChainReadings,
    ClaimEvidence,
    ClaimState,
    FraudTerms,
    JobState,
    Ladder,
    Secured,
)
from ledger.deploy import EscrowParams
from ledger.errors import ChainRevert, ChainUnreachable
from ledger.fraud import CheckerPass, CleanAnswer, FraudClaim, ResultRef, RungVote, claim_commit
from ledger.fraud import recover as fraud_recover
from ledger.voucher_book import Lane, payable_wei
from ledger.vouchers import SECP256K1_HALF_N, VoucherError, recover_signer
from node.render.base import FrameOutput, ProgressFn, RendererIdentity, RenderError
from node.render.probe import Probe, probe_of
from node.roles.ports import ChainTx, RenderKit
from node.verify.blender_tiles import TileRenders
from protocol.cost import LightPaths, frame_work
from protocol.fraud_evidence import find_evidence
from protocol.messages import MAX_CLAIMERS, RenderSettings, Voucher
from protocol.slashing import (
    SignerStanding,
    accused_side,
    answer_split,
    claim_side,
    may_back_claim,
    slash_split,
    takeable_wei,
)
from protocol.verification import Tile

ESCROW_DEFAULTS = EscrowParams()

FAKE_BUILD = "blender-3.4.1"  # what the roles pin; the fake claims it so jobs match
FAKE_DEVICE = "cpu-fake"


def write_scene(path: Path, *, resolution: tuple[int, int] = (32, 24), samples: int = 4,
                seed: int = 0, has_camera: bool = True,
                external_files: Sequence[dict[str, Any]] = ()) -> Path:  # fmt: skip
    """A "scene" the fake kit understands: the facts preflight reads, as JSON."""
    path.write_text(json.dumps({"resolution": list(resolution), "samples": samples,
                                "seed": seed, "has_camera": has_camera,
                                "external_files": list(external_files)}))  # fmt: skip
    return path


def frame_pixels(scene: Path, settings: RenderSettings, frame: int) -> np.ndarray:
    digest = hashlib.sha256(scene.read_bytes()).digest()
    seed = int.from_bytes(hashlib.sha256(digest + f"{settings.seed}/{frame}".encode()).digest()[:8])
    rng = np.random.default_rng(seed)
    shape = (settings.resolution_y, settings.resolution_x, 4)
    pixels = rng.integers(0, 256, size=shape, dtype=np.uint8)
    pixels[..., 3] = 255
    return pixels


DEBT_S = 90 * 86400  # Escrow.DEBT_S (tests/ledger/test_stake_slash.py -k owes ties them)


def _save(pixels: np.ndarray, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels, "RGBA").save(path)
    return path


@dataclass
class FakeFrames:
    """The worker's renderer: ``delay_s`` per frame, ``fail`` decides failures."""

    delay_s: float = 0.5
    fail: Callable[[int], bool] = lambda frame: False
    gate: trio.Event | None = None  # renders wait for it when set
    rendered: list[int] = field(default_factory=list)
    started: int = 0
    probe_s: float = 0.01  # how long the worker's probe render of a scene takes
    probed: int = 0
    corrupt: tuple[Tile, ...] = ()  # a partial fake: these cells' colours inverted

    async def identify(self) -> RendererIdentity:
        return RendererIdentity(FAKE_BUILD, FAKE_DEVICE)

    async def render_frames(
        self,
        scene: Path,
        settings: RenderSettings,
        frames: Sequence[int],
        out_dir: Path,
        progress: ProgressFn | None = None,
    ) -> list[FrameOutput]:
        outputs = []
        for frame in frames:
            self.started += 1
            if self.gate is not None:
                await self.gate.wait()
            if progress is not None:
                progress(frame, 0.5)
            await trio.sleep(self.delay_s)
            if self.fail(frame):
                raise RenderError(f"fake render of frame {frame} failed")
            pixels = frame_pixels(scene, settings, frame)
            for t in self.corrupt:
                pixels[t.y : t.y + t.height, t.x : t.x + t.width, :3] ^= 0xFF
            path = _save(pixels, out_dir / f"frame_{frame:04d}.png")
            self.rendered.append(frame)
            outputs.append(FrameOutput(frame, path, self.delay_s))
        return outputs


@dataclass
class FakeTiles:
    """The checker's renderer: the same pixels as ``FakeFrames``, region by region."""

    delay_s: float = 0.1
    lie: bool = False  # re-render with another seed: every honest frame then "fails"
    rendered: int = 0

    async def identify(self) -> RendererIdentity:
        return RendererIdentity(FAKE_BUILD, FAKE_DEVICE)

    async def render_tiles(
        self, scene: Path, settings: RenderSettings, frame: int, tiles: Sequence[Tile],
        out_dir: Path,
    ) -> TileRenders:  # fmt: skip
        await trio.sleep(self.delay_s)
        if self.lie:
            settings = replace(settings, seed=settings.seed + 1)
        pixels = frame_pixels(scene, settings, frame)
        paths = tuple(
            _save(pixels[t.y : t.y + t.height, t.x : t.x + t.width], out_dir / f"tile_{i}.png")
            for i, t in enumerate(tiles)
        )
        self.rendered += 1
        return TileRenders(paths, self.delay_s, self.delay_s)


async def fake_inspect(scene: Path) -> dict[str, Any]:
    """Preflight facts (``node.render.preflight.analyse``'s input) from a fake scene."""
    await trio.lowlevel.checkpoint()
    try:
        spec = json.loads(scene.read_text())
    except (OSError, ValueError) as exc:
        raise RenderError(f"not a fake scene: {exc}") from None
    render = {
        "engine": "CYCLES", "resolution": spec["resolution"], "resolution_percentage": 100,
        "samples": spec["samples"], "seed": spec["seed"], "has_camera": spec["has_camera"],
        "use_denoising": False, "use_adaptive_sampling": False, "use_animated_seed": False,
        "dither_intensity": 0.0, "use_compositing": False,
        "frame_start": 1, "frame_end": 4, "frame_step": 1,
    }  # fmt: skip
    return {"render": render, "external_files": spec.get("external_files", []), "texts": [],
            "scripted_drivers": [], "saved_version": "3.4"}  # fmt: skip


def fake_kit(frames: FakeFrames | None = None, tiles: FakeTiles | None = None) -> RenderKit:
    frames = frames or FakeFrames()

    async def probe(scene: Path, settings: RenderSettings, paths: LightPaths, frame: int) -> Probe:
        """A probe render taking ``frames.probe_s`` (mock time)."""
        frames.probed += 1
        await trio.sleep(frames.probe_s)
        small = probe_of(settings)
        work = frame_work(small.resolution_x, small.resolution_y, small.samples, paths)
        return Probe(max(1, int(frames.probe_s * 1000)), work)

    return RenderKit(frames, tiles or FakeTiles(), fake_inspect, probe)


# -- chain ---------------------------------------------------------------------


@dataclass
class EscrowJob:
    requester: bytes
    remaining_wei: int  # deposited, not yet paid or refunded (lanes included)
    deadline_s: int
    refunded: bool = False
    unallocated_wei: int = 0  # the part of remaining_wei in no lane
    created_s: int = 0  # the first deposit's minute (MAX_JOB_S counts from it)


JobKey = tuple[bytes, bytes]  # (requester, job_id), as the contract keys jobs
# Why a batch entry paid nothing: the contract's SKIP_* codes.
SKIPS = {"no such job": 1, "refunded": 2, "voucher expired": 3, "bad signature": 4,
         "nothing owed": 5, "lane spent": 6}  # fmt: skip


class FakeEscrow:
    """The contract's rules (ledger/contracts/Escrow.vy) in memory; integers only.

    Jobs are keyed by (requester, job id); ``open_lanes`` carves payees' lanes
    out of the unallocated budget; a voucher pays ``min(cumulative, lane) -
    paid``; ``redeem`` reverts with the contract's reason, a batch skips
    entries that cannot pay; ``refund`` returns the unallocated budget and
    every lane's unpaid part after deadline + grace.
    """

    CHAIN_ID = 31337
    CONTRACT = bytes.fromhex("e7" * 20)

    def __init__(self, now_s: Callable[[], int], grace_s: int = 60) -> None:
        self.now_s = now_s
        self.grace = grace_s
        self.jobs: dict[JobKey, EscrowJob] = {}
        self.lanes: dict[tuple[bytes, bytes, bytes], Lane] = {}  # (requester, job, payee)
        self.lanes_ending: dict[tuple[bytes, int], int] = {}  # (payee, UTC day) -> new lanes
        self.balances: dict[bytes, int] = {}
        self.stakes: dict[bytes, int] = {}  # active stake per account (set by tests)
        self.unbonding: dict[bytes, int] = {}  # stake an account asked to unbond (set by tests)
        # The deployed escrow's defaults (a shorter challenge window: tests wait it out)
        self.terms = FraudTerms(quorum=ESCROW_DEFAULTS.slash_quorum,
                                cap_wei=ESCROW_DEFAULTS.slash_cap_wei, challenge_s=900)
        self.checkers: set[bytes] = set()  # registered checkers
        self.locked: dict[bytes, int] = {}  # stake locked behind pending claims
        self.claims: dict[tuple[ResultRef, bytes], ClaimState] = {}
        self.ladders: dict[tuple[ResultRef, bytes], Ladder] = {}  # a contested claim's rungs
        self.published: dict[tuple[ResultRef, bytes], bytes] = {}  # claim -> evidence carried
        # claim -> what its FraudClaimed event logged: tiles, claimers
        self.logged: dict[tuple[ResultRef, bytes], tuple[bytes, tuple[bytes, ...]]] = {}
        self.credit: dict[bytes, int] = {}  # slash payouts (pull payments)
        self.checker_min_stake_wei = 0  # none asked unless a test sets it
        self.max_job_s = ESCROW_DEFAULTS.max_job_s
        self.deposited_wei = 0
        self.log: list[tuple[str, bytes, int]] = []  # (event, account, amount)
        self.skipped: list[tuple[bytes, bytes, int]] = []  # (job_id, payee, SKIP code)
        self._changed = trio.Event()

    async def wait_until(self, predicate: Callable[[], bool]) -> None:
        """Wait (no polling) until ``predicate()`` holds after some transaction."""
        while not predicate():
            await self._changed.wait()

    def _mined(self, event: str, account: bytes, amount_wei: int) -> None:
        self.log.append((event, account, amount_wei))
        self._changed.set()
        self._changed = trio.Event()

    def job_of(self, job_id: bytes) -> EscrowJob:
        """The one job with this id (tests use random ids)."""
        (job,) = [j for (_, jid), j in self.jobs.items() if jid == job_id]
        return job

    @property
    def paid(self) -> dict[tuple[bytes, bytes], int]:
        """Paid so far per (job_id, payee), every requester's jobs together."""
        out: dict[tuple[bytes, bytes], int] = {}
        for (_, job_id, payee), lane in self.lanes.items():
            if lane.paid_wei:
                out[(job_id, payee)] = out.get((job_id, payee), 0) + lane.paid_wei
        return out

    def lane(self, requester: bytes, job_id: bytes, payee: bytes) -> Lane:
        return self.lanes.get((requester, job_id, payee), Lane(0, 0))

    def deposit(self, sender: bytes, job_id: bytes, amount_wei: int, deadline_s: int) -> None:
        if amount_wei <= 0:
            raise ChainRevert("zero deposit")
        if deadline_s <= self.now_s():
            raise ChainRevert("deadline passed")
        job = self.jobs.get((sender, job_id))
        if job is None:
            job = EscrowJob(sender, 0, deadline_s, created_s=self.now_s() // 60 * 60)
            if deadline_s > job.created_s + self.max_job_s:
                raise ChainRevert("deadline too far")
            self.jobs[(sender, job_id)] = job
        elif job.refunded:
            raise ChainRevert("refunded")
        elif deadline_s < job.deadline_s:
            raise ChainRevert("deadline earlier")
        elif self.now_s() > job.deadline_s + self.grace:
            raise ChainRevert("job expired")
        elif deadline_s > job.created_s + self.max_job_s:
            raise ChainRevert("deadline too far")
        job.deadline_s = deadline_s
        job.remaining_wei += amount_wei
        job.unallocated_wei += amount_wei
        self.deposited_wei += amount_wei
        self._mined("deposit", sender, amount_wei)

    def open_lanes(self, sender: bytes, job_id: bytes, fundings: Sequence[tuple[bytes, int]]) -> None:
        job = self.jobs.get((sender, job_id))
        if job is None:
            raise ChainRevert("no such job")
        if job.refunded:
            raise ChainRevert("refunded")
        if self.now_s() > job.deadline_s + self.grace:
            raise ChainRevert("job expired")
        unallocated = job.unallocated_wei
        for payee, amount in fundings:  # checked in full first: a revert changes nothing
            if payee == bytes(20):
                raise ChainRevert("zero payee")
            if amount > unallocated:
                raise ChainRevert("over budget")
            unallocated -= amount
        job.unallocated_wei = unallocated
        for payee, amount in fundings:
            lane = self.lane(sender, job_id, payee)
            if amount > 0 and lane.total_wei == 0:  # a new lane: counted (open_lanes_of)
                day = (job.deadline_s + self.grace) // 86_400
                self.lanes_ending[(payee, day)] = self.lanes_ending.get((payee, day), 0) + 1
            self.lanes[(sender, job_id, payee)] = Lane(lane.total_wei + amount, lane.paid_wei)
            self._mined("lane", payee, amount)

    def open_lanes_of(self, payee: bytes) -> int:
        """``Escrow.open_lanes_of``: new lanes whose job's window ends today or later."""
        today = self.now_s() // 86_400
        return sum(n for (p, day), n in self.lanes_ending.items() if p == payee and day >= today)

    def _due(self, v: Voucher) -> tuple[str | None, int]:
        """(why the voucher pays nothing, or None; what it pays), as ``_check`` + ``_due``."""
        job = self.jobs.get((v.requester, v.job_id))
        if job is None:
            return "no such job", 0
        if job.refunded:
            return "refunded", 0
        if self.now_s() > job.deadline_s + self.grace:
            return "voucher expired", 0
        if (v.chain_id, v.contract) != (self.CHAIN_ID, self.CONTRACT):
            return "bad signature", 0
        try:
            if recover_signer(v) != v.requester:
                return "bad signature", 0
        except VoucherError:
            return "bad signature", 0
        lane = self.lane(v.requester, v.job_id, v.payee)
        if v.cumulative_wei <= lane.paid_wei:
            return "nothing owed", 0
        amount = payable_wei(v.cumulative_wei, lane)
        return ("lane spent", 0) if amount == 0 else (None, amount)

    def _pay(self, v: Voucher, amount: int) -> None:
        job = self.jobs[(v.requester, v.job_id)]
        lane = self.lane(v.requester, v.job_id, v.payee)
        self.lanes[(v.requester, v.job_id, v.payee)] = Lane(lane.total_wei, lane.paid_wei + amount)
        job.remaining_wei -= amount
        self.balances[v.payee] = self.balances.get(v.payee, 0) + amount
        self._mined("redeem", v.payee, amount)

    def redeem(self, v: Voucher) -> None:
        """``redeem``: reverts with the reason when nothing can be paid."""
        why, amount = self._due(v)
        if why is not None:
            raise ChainRevert(why)
        self._pay(v, amount)

    def redeem_batch(self, vouchers: Sequence[Voucher]) -> int:
        """``redeem_batch``: entries that cannot pay are skipped (and logged)."""
        count = 0
        for v in vouchers:
            why, amount = self._due(v)
            if why is not None:
                self.skipped.append((v.job_id, v.payee, SKIPS[why]))
                continue
            self._pay(v, amount)
            count += 1
        return count

    def refund(self, requester: bytes, job_id: bytes) -> None:
        job = self.jobs.get((requester, job_id))
        if job is None:
            raise ChainRevert("no such job")
        if job.refunded:
            raise ChainRevert("refunded")
        if self.now_s() <= job.deadline_s + self.grace:
            raise ChainRevert("grace not over")
        job.refunded = True
        amount, job.remaining_wei, job.unallocated_wei = job.remaining_wei, 0, 0
        self.balances[job.requester] = self.balances.get(job.requester, 0) + amount
        self._mined("refund", job.requester, amount)

    def secured(self, requester: bytes, job_id: bytes, payee: bytes) -> Secured:
        job = self.jobs.get((requester, job_id))
        lane = self.lane(requester, job_id, payee)
        if job is None:
            return Secured(False, bytes(20), 0, self.grace, False, lane.total_wei, lane.paid_wei)
        return Secured(True, bytes(20), job.deadline_s, job.deadline_s + self.grace,
                       job.refunded, lane.total_wei, lane.paid_wei)  # fmt: skip

    # -- stake claims: the contract's claim_fraud / execute_slash rules that the node meets

    def register(self, account: bytes, stake_wei: int) -> None:
        """Stake and register a checker (a test's setup)."""
        self.stakes[account] = self.stakes.get(account, 0) + stake_wei
        self.checkers.add(account)

    def claim_fraud(self, claim: FraudClaim, worker_sig: bytes, sigs: Sequence[bytes],
                    evidence: bytes = b"") -> None:  # fmt: skip
        """``evidence``: what the transaction carried after its arguments (kept as the
        chain would: ``claim_evidence`` reads it back, as the real client does)."""
        if fraud_recover(claim.ref, worker_sig) != claim.worker:
            raise ChainRevert("not the worker's result")
        self._open_claim(claim, sigs, evidence)

    def claim_pass(self, signed: CheckerPass, pass_sig: bytes, amount_wei: int,
                   sigs: Sequence[bytes], evidence: bytes = b"") -> None:  # fmt: skip
        """The contract's claim_pass: the checker's own Pass, then a fraud claim with
        the checker as the accused."""
        if fraud_recover(signed, pass_sig) != signed.checker:
            raise ChainRevert("not the checker's pass")
        self._open_claim(signed.claim(amount_wei), sigs, evidence)

    def _open_claim(self, claim: FraudClaim, sigs: Sequence[bytes], evidence: bytes) -> None:
        ref, worker = claim.ref, claim.worker
        job = self.jobs.get((ref.requester, ref.job_id))
        if job is None:
            raise ChainRevert("no such job")
        key = (ref, worker)
        prior = self.claims.get(key)
        # an answer that stood leaves one window more to claim the frame again (Escrow)
        reopened = (prior is not None and prior.status == CLAIM_ANSWERED
                    and self.now_s() <= prior.settle_at_s + self.terms.challenge_s)  # fmt: skip
        if self.now_s() > job.deadline_s + self.grace and not reopened:
            raise ChainRevert("claim window over")
        if claim.amount_wei != self.terms.cap_wei:
            raise ChainRevert("amount is not the cap")
        if prior is not None and prior.status != CLAIM_ANSWERED:
            raise ChainRevert("already claimed")
        if prior is not None and len(sigs) <= prior.answered_by:
            raise ChainRevert("answered by a quorum as large")
        if len(sigs) < self.terms.quorum:
            raise ChainRevert("below quorum")
        if len(sigs) >= MAX_CLAIMERS:  # a larger quorum must always be able to answer
            raise ChainRevert("too many claimers")
        # signed for this round (Escrow._open_claim: the prior claim's answered_by)
        signed = replace(claim, round=0 if prior is None else prior.answered_by)
        signers = self._signers(signed, sigs, worker, ref.requester, claim.amount_wei)
        # free active stake first, then the unbonding bucket (Escrow._open_claim)
        from_active = min(claim.amount_wei, self.stakes.get(worker, 0) - self.locked.get(worker, 0))
        from_unbonding = min(claim.amount_wei - from_active, self.unbonding.get(worker, 0))
        taken = from_active + from_unbonding  # 0 is no refusal: it may collect at execution
        for signer in signers:
            self.locked[signer] = self.locked.get(signer, 0) + claim.amount_wei
        self.stakes[worker] = self.stakes.get(worker, 0) - from_active
        if from_unbonding:
            self.unbonding[worker] -= from_unbonding
        if self.stakes[worker] < self.checker_min_stake_wei:  # Escrow._sync_checker
            self.checkers.discard(worker)
        self.claims[key] = ClaimState(taken, claim.amount_wei,
                                      self.now_s() + self.terms.challenge_s,
                                      claim_commit(ref.frame_digest, claim.tiles, signers),
                                      CLAIM_PENDING, 0 if prior is None else prior.answered_by,
                                      from_unbonding_wei=from_unbonding)  # fmt: skip
        self.logged[key] = (claim.tiles, tuple(signers))
        self.published[key] = find_evidence(evidence)
        self.ladders.pop(key, None)  # a new claim's ladder starts empty (Escrow: rungs=0)
        self._mined("claim", worker, taken)

    def evidence(self, ref: ResultRef, worker: bytes) -> ClaimEvidence | None:
        """The claim's FraudClaimed event: its tiles and claimers (the commit holds both)."""
        logged = self.logged.get((ref, worker))
        if logged is None:
            return None
        return ClaimEvidence(*logged, self.published.get((ref, worker), b""))

    def answer_claim(self, answer: CleanAnswer, claimers: Sequence[bytes], sigs: Sequence[bytes]) -> None:
        """The contract's answer_claim: the first rung of the claim's ladder."""
        self.escalate(answer, claimers, (), sigs)

    def escalate(self, signed: CleanAnswer | FraudClaim, claimers: Sequence[bytes],
                 ladder: Sequence[Sequence[bytes]], sigs: Sequence[bytes]) -> None:  # fmt: skip
        """The contract's escalate (Escrow._rung): more distinct registered checkers than
        the last rung (the claimers, before the first), each with the amount free and never
        on the other side, sign this rung of this claim (``RungVote``) in the window."""
        ref, worker = signed.ref, signed.worker
        key = (ref, worker)
        state = self.claims.get(key)
        n = len(ladder)
        if n == 0 and (state is None or state.status != CLAIM_PENDING):
            raise ChainRevert("no pending claim")
        if n > 0 and (state is None or state.status != CLAIM_CONTESTED):
            raise ChainRevert("no contested claim")
        assert state is not None
        if n > 0 and tuple(map(tuple, ladder)) != self.ladders.get(key):
            raise ChainRevert("wrong ladder")
        if self.now_s() >= state.settle_at_s:
            raise ChainRevert("challenge window over")
        if state.commit != claim_commit(ref.frame_digest, signed.tiles, claimers):
            raise ChainRevert("wrong claim")
        if len(sigs) <= (len(ladder[-1]) if n else len(claimers)):
            raise ChainRevert("quorum not larger")
        fraud = n % 2 == 1
        message = RungVote(ref, worker, signed.tiles, tuple(claimers), n)  # this claim, this rung
        signers = self._signers(message, sigs, worker, ref.requester, state.amount_wei)
        other = accused_side(ladder) if fraud else claim_side(claimers, ladder)
        if any(a in other for a in signers):
            raise ChainRevert("signed for the other side")
        for a in signers:
            self.locked[a] = self.locked.get(a, 0) + state.amount_wei
        self.ladders[key] = (*(tuple(r) for r in ladder), tuple(signers))
        self.claims[key] = replace(state, status=CLAIM_CONTESTED, answered_by=len(signers),
                                   settle_at_s=self.now_s() + self.terms.challenge_s, rungs=n + 1)  # fmt: skip
        self._mined("rung", worker, state.taken_wei)

    def _signers(self, message: FraudClaim | RungVote, sigs: Sequence[bytes], worker: bytes,
                 requester: bytes, amount_wei: int) -> list[bytes]:  # fmt: skip
        """Escrow._signers: distinct (ascending) registered checkers, neither the accused
        nor the requester, each with ``amount_wei`` and a cap more free; a malleable
        signature recovers to nobody (Escrow._recover), so it is not ascending."""
        signers: list[bytes] = []
        for sig in sigs:
            malleable = len(sig) == 65 and int.from_bytes(sig[32:64], "big") > SECP256K1_HALF_N
            signer = bytes(20) if malleable else fraud_recover(message, sig)
            if signer <= (signers[-1] if signers else bytes(20)):
                raise ChainRevert("signers not ascending")
            signers.append(signer)
            if signer == worker:
                raise ChainRevert("worker cannot sign")
            if signer == requester:
                raise ChainRevert("requester cannot sign")
            if signer not in self.checkers or self.stakes.get(signer, 0) < self.checker_min_stake_wei:
                raise ChainRevert("not a checker")
            # the amount and a cap more free (Escrow._signers; the amount is the cap)
            if not may_back_claim(self.stakes.get(signer, 0), self.locked.get(signer, 0), amount_wei):
                raise ChainRevert("stake at risk too low")
        return signers

    def settle_contest(self, signed: CleanAnswer | FraudClaim, claimers: Sequence[bytes],
                       ladder: Sequence[Sequence[bytes]]) -> None:  # fmt: skip
        key = (signed.ref, signed.worker)
        state = self.claims.get(key)
        if state is None or state.status != CLAIM_CONTESTED:
            raise ChainRevert("no contested claim")
        if self.now_s() < state.settle_at_s:
            raise ChainRevert("challenge window open")
        if state.commit != claim_commit(signed.ref.frame_digest, signed.tiles, claimers):
            raise ChainRevert("wrong claim")
        if tuple(map(tuple, ladder)) != self.ladders.get(key):
            raise ChainRevert("wrong ladder")
        self._settle(signed, claimers, ladder, state)

    def execute_slash(self, claim: FraudClaim, claimers: Sequence[bytes]) -> None:
        state = self.claims.get((claim.ref, claim.worker))
        if state is None or state.status not in (CLAIM_PENDING, CLAIM_EXECUTED) or (
            state.status == CLAIM_EXECUTED and self.now_s() > state.settle_at_s + DEBT_S
        ):  # an executed claim is owed for DEBT_S after its window (Escrow.execute_slash)
            raise ChainRevert("no pending claim")
        if self.now_s() < state.settle_at_s:
            raise ChainRevert("challenge window open")
        if state.commit != claim_commit(claim.ref.frame_digest, claim.tiles, claimers):
            raise ChainRevert("wrong claim")
        self._settle(claim, claimers, (), state)

    def _settle(self, signed: CleanAnswer | FraudClaim, claimers: Sequence[bytes],
                ladder: Sequence[Sequence[bytes]], state: ClaimState) -> None:  # fmt: skip
        """Escrow._settle: the last rung's side wins (the claim's, with no rung)."""
        ref, worker = signed.ref, signed.worker
        owed = state.status == CLAIM_EXECUTED  # collecting a debt: positions settled already
        amount = 0 if owed else state.amount_wei
        fraud = [*claimers, *(a for i, r in enumerate(ladder) if i % 2 == 1 for a in r)]
        clean = [a for i, r in enumerate(ladder) if i % 2 == 0 for a in r]
        upheld = len(ladder) % 2 == 0
        winners, losers = (fraud, clean) if upheld else (clean, fraud)
        penalty = amount * len(losers)
        for a in losers:
            self.locked[a] -= amount
            self.stakes[a] -= amount
            if self.stakes[a] < self.checker_min_stake_wei:
                self.checkers.discard(a)
        for a in winners:
            self.locked[a] -= amount
        if upheld:
            # Escrow._settle: it takes what the accused holds now, up to the amount, besides
            # what it held; executed already, it collects a debt (no positions, no forfeit)
            held = 0 if owed else state.taken_wei
            want = state.amount_wei - state.taken_wei
            more = min(want, self.stakes.get(worker, 0) - self.locked.get(worker, 0))
            later = min(want - more, self.unbonding.get(worker, 0))
            self.stakes[worker] = self.stakes.get(worker, 0) - more
            if later:
                self.unbonding[worker] -= later
            if self.stakes[worker] < self.checker_min_stake_wei:
                self.checkers.discard(worker)
            self.claims[(ref, worker)] = replace(state, status=CLAIM_EXECUTED,
                                                 taken_wei=state.taken_wei + more + later)  # fmt: skip
            split = slash_split(held + more + later, len(winners), penalty)  # half burned
            share = split.per_claimer_wei
            self.credit[ref.requester] = self.credit.get(ref.requester, 0) + split.requester_wei
            self._mined("slash", worker, held + more + later)
        else:
            self.claims[(ref, worker)] = replace(state, status=CLAIM_ANSWERED)
            # each part back where it was taken from (Escrow._settle): a false claim does
            # not turn an honest worker's unbonding stake active again
            self.stakes[worker] = self.stakes.get(worker, 0) + state.taken_wei - state.from_unbonding_wei
            if state.from_unbonding_wei:
                self.unbonding[worker] = self.unbonding.get(worker, 0) + state.from_unbonding_wei
            answered = answer_split(penalty, len(winners))  # half of the forfeits burned
            share = answered.per_answerer_wei
            self.credit[worker] = self.credit.get(worker, 0) + answered.accused_wei
            self._mined("answer stood", worker, state.taken_wei)
        for a in winners:
            self.credit[a] = self.credit.get(a, 0) + share

    def paid_to(self, payee: bytes) -> int:
        return sum(lane.paid_wei for (_, _, p), lane in self.lanes.items() if p == payee)

    def conserved(self) -> bool:
        """Every wei deposited is still escrowed or was paid out exactly once, and no
        job's lanes hold more than it deposited."""
        held = sum(j.remaining_wei for j in self.jobs.values())
        for (requester, job_id), job in self.jobs.items():
            lanes = [ln for (r, j, _), ln in self.lanes.items() if (r, j) == (requester, job_id)]
            unpaid = sum(ln.total_wei - ln.paid_wei for ln in lanes)
            if not job.refunded and unpaid + job.unallocated_wei != job.remaining_wei:
                return False
            if any(ln.paid_wei > ln.total_wei for ln in lanes):
                return False
        return held + sum(self.balances.values()) == self.deposited_wei


class FakeChain:
    """One account's ``node.roles.ports.Chain`` onto a ``FakeEscrow``."""

    def __init__(self, escrow: FakeEscrow, address: bytes) -> None:
        self.escrow = escrow
        self.address = address
        self.transactions: list[ChainTx] = []
        self.down = False  # every call raises ChainUnreachable while True
        self.down_calls: set[str] = set()  # calls (by name) that raise ChainUnreachable
        self.reverts: list[str] = []  # the next transactions revert with these reasons
        # The next transactions are mined, but their sender never hears back: it sees the
        # chain unreachable ("lost"), or waits for its receipt until it is killed ("hang").
        self.after_mined: list[str] = []
        self.delay_s = 0.0
        self.gas_price = 1
        self.calls: list[str] = []
        self._called = trio.Event()

    async def wait_calls(self, what: str, count: int) -> None:
        """Wait (no polling) until ``what`` was attempted ``count`` times."""
        while self.calls.count(what) < count:
            await self._called.wait()

    @property
    def chain_id(self) -> int:
        return self.escrow.CHAIN_ID

    @property
    def contract(self) -> bytes:
        return self.escrow.CONTRACT

    async def _enter(self, what: str) -> None:
        refused = what in self.down_calls  # decided when the call is made, not after its wait
        self.calls.append(what)
        self._called.set()
        self._called = trio.Event()
        if self.delay_s:
            await trio.sleep(self.delay_s)
        else:
            await trio.lowlevel.checkpoint()
        if self.down or refused:
            raise ChainUnreachable(f"{what}: chain down")

    async def _transact(self, what: str, jobs: tuple[bytes, ...], fn: Callable[[], None]) -> None:
        await self._enter(what)
        if self.reverts:
            raise ChainRevert(self.reverts.pop(0))
        fn()
        self.transactions.append(ChainTx(what, f"0x{len(self.transactions):064x}", 50_000, jobs))
        if self.after_mined:
            if self.after_mined.pop(0) == "hang":
                await trio.sleep_forever()
            raise ChainUnreachable(f"{what}: mined, but the receipt was lost")

    async def deposit(self, job_id: bytes, budget_wei: int, deadline_s: int) -> None:
        await self._transact("deposit", (job_id,),
                             lambda: self.escrow.deposit(self.address, job_id, budget_wei, deadline_s))  # fmt: skip

    async def top_up(self, job_id: bytes, amount_wei: int, deadline_s: int) -> None:
        await self._transact("top-up", (job_id,),
                             lambda: self.escrow.deposit(self.address, job_id, amount_wei, deadline_s))  # fmt: skip

    async def latest_deadline_s(self, job_id: bytes) -> int:
        job = self.escrow.jobs[(self.address, job_id)]
        return job.created_s + self.escrow.max_job_s

    async def refund(self, job_id: bytes) -> None:
        await self._transact("refund", (job_id,), lambda: self.escrow.refund(self.address, job_id))

    async def open_lanes(self, job_id: bytes, fundings: Sequence[tuple[bytes, int]]) -> None:
        await self._transact("open_lanes", (job_id,),
                             lambda: self.escrow.open_lanes(self.address, job_id, list(fundings)))  # fmt: skip

    async def redeem(self, vouchers: Sequence[Voucher]) -> None:
        jobs = tuple(dict.fromkeys(v.job_id for v in vouchers))
        if len(vouchers) == 1:
            await self._transact("redeem", jobs, lambda: self.escrow.redeem(vouchers[0]))
        else:
            await self._transact("redeem", jobs, lambda: self.escrow.redeem_batch(vouchers))

    async def job(self, job_id: bytes) -> JobState:
        await self._enter("job")
        job = self.escrow.jobs.get((self.address, job_id))
        if job is None:
            return JobState(bytes(20), bytes(20), 0, 0, False)
        return JobState(job.requester, bytes(20), job.remaining_wei, job.deadline_s,
                        job.refunded, job.unallocated_wei)  # fmt: skip

    async def lanes(self, job_id: bytes, payees: Sequence[bytes]) -> dict[bytes, int]:
        await self._enter("lanes")
        return {p: self.escrow.lane(self.address, job_id, p).total_wei for p in payees}

    async def secured(self, requester: bytes, job_id: bytes) -> Secured:
        await self._enter("secured")
        return self.escrow.secured(requester, job_id, self.address)

    async def readings(self, vouchers: Sequence[Voucher]) -> ChainReadings:
        await self._enter("readings")
        lanes = {v.key(): self.escrow.lane(v.requester, v.job_id, v.payee) for v in vouchers
                 if (v.chain_id, v.contract) == (self.chain_id, self.contract)}  # fmt: skip
        return ChainReadings(lanes, self.escrow.now_s(), self.gas_price)

    async def grace_s(self) -> int:
        await self._enter("grace")
        return self.escrow.grace

    async def chain_time_s(self) -> int:
        await self._enter("time")
        return self.escrow.now_s()

    async def gas_price_wei(self) -> int:
        await self._enter("gas_price")
        return self.gas_price

    async def free_stake_wei(self) -> int:
        await self._enter("stake")
        return self.escrow.stakes.get(self.address, 0) - self.escrow.locked.get(self.address, 0)

    async def stake_of(self, account: bytes) -> int:
        await self._enter("stake_of")
        return self.escrow.stakes.get(account, 0)

    async def free_stake_of(self, account: bytes) -> int:
        await self._enter("free_stake_of")
        return self.escrow.stakes.get(account, 0) - self.escrow.locked.get(account, 0)

    async def open_lanes_of(self, account: bytes) -> int:
        await self._enter("open_lanes_of")
        return self.escrow.open_lanes_of(account)

    async def signer_standing(self, account: bytes) -> SignerStanding:
        await self._enter("signer_standing")
        return SignerStanding(account in self.escrow.checkers, self.escrow.stakes.get(account, 0),
                              self.escrow.locked.get(account, 0))  # fmt: skip

    async def stake_held_of(self, account: bytes) -> int:
        await self._enter("stake_held_of")
        return self.escrow.stakes.get(account, 0) + self.escrow.unbonding.get(account, 0)

    async def takeable_of(self, account: bytes) -> int:
        await self._enter("takeable_of")
        return takeable_wei(self.escrow.stakes.get(account, 0), self.escrow.locked.get(account, 0),
                            self.escrow.unbonding.get(account, 0))  # fmt: skip

    async def fraud_terms(self) -> FraudTerms:
        await self._enter("fraud_terms")
        return self.escrow.terms

    async def claim_fraud(
        self, claim: FraudClaim, worker_sig: bytes, ordered_sigs: Sequence[bytes],
        evidence: bytes = b"",
    ) -> None:  # fmt: skip
        await self._transact("claim_fraud", (claim.ref.job_id,),
                             lambda: self.escrow.claim_fraud(claim, worker_sig, ordered_sigs, evidence))  # fmt: skip

    async def claim_pass(
        self, signed: CheckerPass, pass_sig: bytes, amount_wei: int,
        ordered_sigs: Sequence[bytes], evidence: bytes = b"",
    ) -> None:  # fmt: skip
        await self._transact("claim_pass", (signed.ref.job_id,), lambda: self.escrow.claim_pass(
            signed, pass_sig, amount_wei, ordered_sigs, evidence))  # fmt: skip

    async def execute_slash(self, claim: FraudClaim, claimers: Sequence[bytes]) -> None:
        await self._transact("execute_slash", (claim.ref.job_id,),
                             lambda: self.escrow.execute_slash(claim, claimers))  # fmt: skip

    async def claim_state(self, ref: ResultRef, worker: bytes) -> ClaimState:
        await self._enter("claim_state")
        return self.escrow.claims.get((ref, worker), ClaimState(0, 0, 0, b"", 0))

    async def is_checker(self, account: bytes) -> bool:
        await self._enter("is_checker")
        return account in self.escrow.checkers

    async def claim_evidence(self, ref: ResultRef, worker: bytes) -> ClaimEvidence | None:
        await self._enter("claim_evidence")
        return self.escrow.evidence(ref, worker)

    async def claim_ladder(self, ref: ResultRef, worker: bytes) -> Ladder | None:
        await self._enter("claim_ladder")
        return self.escrow.ladders.get((ref, worker))  # reset by a new claim on the frame

    async def escalate(
        self, signed: CleanAnswer | FraudClaim, claimers: Sequence[bytes],
        ladder: Sequence[Sequence[bytes]], ordered_sigs: Sequence[bytes],
    ) -> None:  # fmt: skip
        await self._transact("escalate", (signed.ref.job_id,), lambda: self.escrow.escalate(
            signed, claimers, ladder, ordered_sigs))  # fmt: skip

    async def settle_contest(
        self, signed: CleanAnswer | FraudClaim, claimers: Sequence[bytes],
        ladder: Sequence[Sequence[bytes]],
    ) -> None:  # fmt: skip
        await self._transact("settle_contest", (signed.ref.job_id,),
                             lambda: self.escrow.settle_contest(signed, claimers, ladder))  # fmt: skip

    async def checker_min_stake_wei(self) -> int:
        return self.escrow.checker_min_stake_wei

    async def register_checker(self) -> None:
        def register() -> None:
            if self.escrow.stakes.get(self.address, 0) < self.escrow.checker_min_stake_wei:
                raise ChainRevert("stake too low")
            self.escrow.checkers.add(self.address)

        await self._transact("register_checker", (), register)

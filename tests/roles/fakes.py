"""Fakes for the role drivers' ports (node/roles/ports.py): a renderer and an escrow.

``FakeRenderKit`` renders deterministic noise images: a frame's pixels are a
function of the scene file's bytes, the job's seed and the frame number, and a
tile re-render is the same region of the same function, so honest results pass
the real checker code bit for bit and a result rendered with another seed is
rejected. Renders can be delayed (mock-clock sleeps), held at a gate, or fail.

``FakeEscrow`` is the escrow contract's rules in memory (deposit, cumulative
voucher redeem with the real EIP-712 signature check, all-or-nothing batches,
refund after deadline + grace), with integer balances; ``FakeChain`` is one
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

from ledger.client import JobState
from ledger.errors import ChainRevert, ChainUnreachable
from ledger.vouchers import VoucherError, recover_signer
from node.render.base import FrameOutput, ProgressFn, RendererIdentity, RenderError
from node.roles.ports import ChainTx, RenderKit
from node.verify.blender_tiles import TileRenders
from protocol.messages import RenderSettings, Voucher
from protocol.verification import Tile

FAKE_BUILD = "blender-3.4.1"  # what the roles pin; the fake claims it so jobs match
FAKE_DEVICE = "cpu-fake"


def write_scene(path: Path, *, resolution: tuple[int, int] = (32, 24), samples: int = 4,
                seed: int = 0, has_camera: bool = True) -> Path:  # fmt: skip
    """A "scene" the fake kit understands: the facts preflight reads, as JSON."""
    path.write_text(json.dumps({"resolution": list(resolution), "samples": samples,
                                "seed": seed, "has_camera": has_camera}))  # fmt: skip
    return path


def frame_pixels(scene: Path, settings: RenderSettings, frame: int) -> np.ndarray:
    digest = hashlib.sha256(scene.read_bytes()).digest()
    seed = int.from_bytes(hashlib.sha256(digest + f"{settings.seed}/{frame}".encode()).digest()[:8])
    rng = np.random.default_rng(seed)
    shape = (settings.resolution_y, settings.resolution_x, 4)
    pixels = rng.integers(0, 256, size=shape, dtype=np.uint8)
    pixels[..., 3] = 255
    return pixels


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
            path = _save(frame_pixels(scene, settings, frame), out_dir / f"frame_{frame:04d}.png")
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
    return {"render": render, "external_files": [], "texts": [], "scripted_drivers": [],
            "saved_version": "3.4"}  # fmt: skip


def fake_kit(frames: FakeFrames | None = None, tiles: FakeTiles | None = None) -> RenderKit:
    return RenderKit(frames or FakeFrames(), tiles or FakeTiles(), fake_inspect)


# -- chain ---------------------------------------------------------------------


@dataclass
class EscrowJob:
    requester: bytes
    remaining_wei: int
    deadline_s: int
    refunded: bool = False


class FakeEscrow:
    """The contract's rules (ledger/contracts/Escrow.vy) in memory; integers only."""

    CHAIN_ID = 31337
    CONTRACT = bytes.fromhex("e7" * 20)

    def __init__(self, now_s: Callable[[], int], grace_s: int = 60) -> None:
        self.now_s = now_s
        self.grace = grace_s
        self.jobs: dict[bytes, EscrowJob] = {}
        self.paid: dict[tuple[bytes, bytes], int] = {}
        self.balances: dict[bytes, int] = {}
        self.deposited_wei = 0
        self.log: list[tuple[str, bytes, int]] = []  # (event, account, amount)
        self._changed = trio.Event()

    async def wait_until(self, predicate: Callable[[], bool]) -> None:
        """Wait (no polling) until ``predicate()`` holds after some transaction."""
        while not predicate():
            await self._changed.wait()

    def _mined(self, event: str, account: bytes, amount_wei: int) -> None:
        self.log.append((event, account, amount_wei))
        self._changed.set()
        self._changed = trio.Event()

    def deposit(self, sender: bytes, job_id: bytes, amount_wei: int, deadline_s: int) -> None:
        if amount_wei <= 0:
            raise ChainRevert("zero deposit")
        job = self.jobs.get(job_id)
        if job is None:
            self.jobs[job_id] = EscrowJob(sender, amount_wei, deadline_s)
        elif job.requester != sender:
            raise ChainRevert("not requester")
        else:
            job.remaining_wei += amount_wei
            job.deadline_s = max(job.deadline_s, deadline_s)
        self.deposited_wei += amount_wei
        self._mined("deposit", sender, amount_wei)

    def redeem(self, vouchers: Sequence[Voucher]) -> None:
        """All or nothing, like ``redeem_batch``."""
        staged: dict[tuple[bytes, bytes], int] = {}
        spent: dict[bytes, int] = {}
        pays: list[tuple[bytes, int]] = []
        for v in vouchers:
            job = self.jobs.get(v.job_id)
            if job is None:
                raise ChainRevert("no such job")
            if job.refunded:
                raise ChainRevert("refunded")
            if self.now_s() > job.deadline_s + self.grace:
                raise ChainRevert("voucher expired")
            if (v.chain_id, v.contract) != (self.CHAIN_ID, self.CONTRACT):
                raise ChainRevert("bad signature")
            try:
                if recover_signer(v) != job.requester:
                    raise ChainRevert("bad signature")
            except VoucherError:
                raise ChainRevert("bad signature") from None
            key = (v.job_id, v.payee)
            already = staged.get(key, self.paid.get(key, 0))
            if v.cumulative_wei <= already:
                raise ChainRevert("nothing owed")
            amount = v.cumulative_wei - already
            if amount > job.remaining_wei - spent.get(v.job_id, 0):
                raise ChainRevert("over budget")
            staged[key] = v.cumulative_wei
            spent[v.job_id] = spent.get(v.job_id, 0) + amount
            pays.append((v.payee, amount))
        self.paid.update(staged)
        for job_id, amount in spent.items():
            self.jobs[job_id].remaining_wei -= amount
        for payee, amount in pays:
            self.balances[payee] = self.balances.get(payee, 0) + amount
            self._mined("redeem", payee, amount)

    def refund(self, job_id: bytes) -> None:
        job = self.jobs.get(job_id)
        if job is None:
            raise ChainRevert("no such job")
        if job.refunded:
            raise ChainRevert("refunded")
        if self.now_s() <= job.deadline_s + self.grace:
            raise ChainRevert("grace not over")
        job.refunded = True
        amount, job.remaining_wei = job.remaining_wei, 0
        self.balances[job.requester] = self.balances.get(job.requester, 0) + amount
        self._mined("refund", job.requester, amount)

    def paid_to(self, payee: bytes) -> int:
        return sum(amount for (_, p), amount in self.paid.items() if p == payee)

    def conserved(self) -> bool:
        """Every wei deposited is still escrowed or was paid out exactly once."""
        held = sum(j.remaining_wei for j in self.jobs.values())
        return held + sum(self.balances.values()) == self.deposited_wei


class FakeChain:
    """One account's ``node.roles.ports.Chain`` onto a ``FakeEscrow``."""

    def __init__(self, escrow: FakeEscrow, address: bytes) -> None:
        self.escrow = escrow
        self.address = address
        self.transactions: list[ChainTx] = []
        self.down = False  # every call raises ChainUnreachable while True
        self.reverts: list[str] = []  # the next transactions revert with these reasons
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
        self.calls.append(what)
        self._called.set()
        self._called = trio.Event()
        if self.delay_s:
            await trio.sleep(self.delay_s)
        else:
            await trio.lowlevel.checkpoint()
        if self.down:
            raise ChainUnreachable(f"{what}: chain down")

    async def _transact(self, what: str, jobs: tuple[bytes, ...], fn: Callable[[], None]) -> None:
        await self._enter(what)
        if self.reverts:
            raise ChainRevert(self.reverts.pop(0))
        fn()
        self.transactions.append(ChainTx(what, f"0x{len(self.transactions):064x}", 50_000, jobs))

    async def deposit(self, job_id: bytes, budget_wei: int, deadline_s: int) -> None:
        await self._transact("deposit", (job_id,),
                             lambda: self.escrow.deposit(self.address, job_id, budget_wei, deadline_s))  # fmt: skip

    async def refund(self, job_id: bytes) -> None:
        await self._transact("refund", (job_id,), lambda: self.escrow.refund(job_id))

    async def redeem(self, vouchers: Sequence[Voucher]) -> None:
        jobs = tuple(dict.fromkeys(v.job_id for v in vouchers))
        await self._transact("redeem", jobs, lambda: self.escrow.redeem(list(vouchers)))

    async def job(self, job_id: bytes) -> JobState:
        await self._enter("job")
        job = self.escrow.jobs.get(job_id)
        if job is None:
            return JobState(bytes(20), bytes(20), 0, 0, False)
        return JobState(job.requester, bytes(20), job.remaining_wei, job.deadline_s, job.refunded)

    async def grace_s(self) -> int:
        await self._enter("grace")
        return self.escrow.grace

    async def chain_time_s(self) -> int:
        await self._enter("time")
        return self.escrow.now_s()

    async def gas_price_wei(self) -> int:
        await self._enter("gas_price")
        return self.gas_price

"""The role drivers' two seams: what they render with, and how they reach the chain.

Theory of operation. A role never builds a renderer or a chain client of its
own: ``RoleContext`` hands it a ``RenderKit`` and a ``Chain`` (or no chain).
The node plugs in Blender (``blender_kit``) and the real escrow
(``node.roles.chain.ChainLink``); the role tests plug in a deterministic fake
renderer and an in-memory escrow (tests/roles/fakes.py), so every path of
a role runs in milliseconds under trio's mock clock, with the same code the
node runs.

Each port is the narrowest interface the roles use today: a new chain call or
render mode is added here first, then to both implementations.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Protocol

from ledger.client import (
    ChainReadings,
    ClaimEvidence,
    ClaimState,
    FraudTerms,
    JobState,
    Ladder,
    Secured,
)
from ledger.fraud import CheckerPass, CleanAnswer, FraudClaim, ResultRef
from node.render.base import FrameRenderer
from node.render.blender import BlenderConfig
from node.render.probe import Probe
from node.render.warm import WarmConfig
from node.verify.checker import TileRenderer
from protocol.cost import LightPaths
from protocol.messages import RenderSettings, Voucher
from protocol.slashing import SignerStanding

__all__ = [
    "Chain", "ChainReadings", "ChainTx", "FrameRenderer", "JobState", "RenderKit",
    "SceneInspector", "SceneProbe", "Secured", "TileRenderer",
]  # fmt: skip


class SceneInspector(Protocol):
    """A scene's raw facts (``node.render.preflight.inspect_scene``'s dict)."""

    async def __call__(self, scene: Path) -> dict[str, Any]: ...


class SceneProbe(Protocol):
    """A short timed render of one frame (``node.render.probe.probe_render``)."""

    async def __call__(
        self, scene: Path, settings: RenderSettings, paths: LightPaths, frame: int
    ) -> Probe: ...


SceneRelease = Callable[[Path], Awaitable[None]]


@dataclass(frozen=True)
class RenderKit:
    frames: FrameRenderer  # the worker's renders
    tiles: TileRenderer  # the checker's re-renders
    inspect: SceneInspector  # preflight: the requester's, and every worker's and checker's
    probe: SceneProbe | None = None  # the worker's measure of a scene it accepts
    # A role is done with a scene (its job ended or was cancelled): close the warm
    # Blender process that kept it loaded (node.render.warm). None: nothing kept.
    release_frames: SceneRelease | None = None
    release_tiles: SceneRelease | None = None


@dataclass(frozen=True)
class ChainTx:
    """A transaction this node sent: what for, its hash, gas used, and the jobs it touched."""

    what: str
    tx_hash: str
    gas: int
    job_ids: tuple[bytes, ...]

    def as_json(self) -> dict[str, Any]:
        return {"what": self.what, "tx": self.tx_hash, "gas": self.gas,
                "jobs": [j.hex() for j in self.job_ids]}  # fmt: skip


class Chain(Protocol):
    """One payment account's view of, and transactions against, the escrow.

    Every method raises ``ledger.errors.LedgerError`` (and only that) when the
    chain cannot answer or refuses; callers retry later.
    """

    @property
    def chain_id(self) -> int: ...

    @property
    def contract(self) -> bytes: ...

    @property
    def address(self) -> bytes: ...

    @property
    def transactions(self) -> list[ChainTx]:
        """Every transaction this node sent, oldest first."""
        ...

    async def deposit(self, job_id: bytes, budget_wei: int, deadline_s: int) -> None: ...

    async def top_up(self, job_id: bytes, amount_wei: int, deadline_s: int) -> None:
        """A further deposit into this account's job that moves its deadline (the
        transaction's ``what`` says "top-up", not "deposit")."""
        ...

    async def latest_deadline_s(self, job_id: bytes) -> int:
        """The furthest deadline the escrow takes for this account's job: its first
        deposit's minute + MAX_JOB_S."""
        ...

    async def refund(self, job_id: bytes) -> None: ...

    async def open_lanes(self, job_id: bytes, fundings: Sequence[tuple[bytes, int]]) -> None:
        """Move (payee address, wei) amounts of this account's job into payees' lanes."""
        ...

    async def redeem(self, vouchers: Sequence[Voucher]) -> None:
        """Redeem one voucher, or several in one batch transaction."""
        ...

    async def job(self, job_id: bytes) -> JobState:
        """This account's job ``job_id`` (the requester's own view)."""
        ...

    async def lanes(self, job_id: bytes, payees: Sequence[bytes]) -> dict[bytes, int]:
        """The lane totals of ``payees`` in this account's job ``job_id``."""
        ...

    async def secured(self, requester: bytes, job_id: bytes) -> Secured:
        """What (requester, job_id) has secured for this account: a payee's pre-bid check."""
        ...

    async def readings(self, vouchers: Sequence[Voucher]) -> ChainReadings:
        """The lanes of ``vouchers``, chain time and gas price: a payee's plan input."""
        ...

    async def grace_s(self) -> int: ...

    async def chain_time_s(self) -> int:
        """The latest block's timestamp: the clock the contract judges deadlines by."""
        ...

    async def gas_price_wei(self) -> int: ...

    async def free_stake_wei(self) -> int:
        """This account's free active stake in the escrow (what its adverts may state):
        as ``free_stake_of`` reads it, what requesters read of it."""
        ...

    async def stake_of(self, account: bytes) -> int:
        """``account``'s active stake, locked part included (the escrow's checker
        minimum is judged on it: registration, the public record's count)."""
        ...

    async def free_stake_of(self, account: bytes) -> int:
        """``account``'s free active stake: active less what pending claims lock
        (``StakeState.free_wei``); a requester's check of a bidder or a checker. A claim
        on ``account`` takes only free (and unbonding) stake, so locked stake backs
        nothing: a cheat that signed claims against its own sybils locked its stake away
        from the honest claim on its fake, and read as active it looked staked the while
        (tests/roles/test_min_stake.py -k locked)."""
        ...

    async def open_lanes_of(self, account: bytes) -> int:
        """Lanes opened for ``account`` in jobs (any requester's) whose claim window has
        not ended (``Escrow.open_lanes_of``): the jobs its stake backs at once."""
        ...

    async def signer_standing(self, account: bytes) -> SignerStanding:
        """Whether ``account`` is a registered checker, and its active and locked stake
        (``protocol.slashing.may_pick_claimer`` judges it as a claim's signer)."""
        ...

    async def stake_held_of(self, account: bytes) -> int:
        """What ``account`` holds that a claim takes now or once released
        (``protocol.slashing.stake_held_wei``: active, locked part included, and
        unbonding)."""
        ...

    async def takeable_of(self, account: bytes) -> int:
        """What a claim could take from ``account`` (``protocol.slashing.takeable_wei``:
        free active plus unbonding stake)."""
        ...

    async def fraud_terms(self) -> FraudTerms:
        """The escrow's quorum, slash cap and challenge window."""
        ...

    async def claim_fraud(
        self, claim: FraudClaim, worker_sig: bytes, ordered_sigs: Sequence[bytes],
        evidence: bytes = b"",
    ) -> None:  # fmt: skip
        """Open ``claim`` with the worker's Result signature and the claimers' (ascending),
        publishing ``evidence`` (``protocol.fraud_evidence``) in the same transaction."""
        ...

    async def claim_pass(
        self, signed_pass: CheckerPass, pass_sig: bytes, amount_wei: int,
        ordered_sigs: Sequence[bytes], evidence: bytes = b"",
    ) -> None:  # fmt: skip
        """Open a claim against a checker's pass (``Escrow.claim_pass``): its own
        ``Pass`` signature and the claimers' ``Fraud`` ones over
        ``signed_pass.claim(amount_wei)`` (ascending), publishing ``evidence``."""
        ...

    async def execute_slash(self, claim: FraudClaim, claimers: Sequence[bytes]) -> None:
        """Settle ``claim`` after its window (``claimers`` ascending, as claimed)."""
        ...

    async def claim_state(self, ref: ResultRef, worker: bytes) -> ClaimState:
        """The escrow's claim on ``worker``'s result ``ref`` (status 0: none)."""
        ...

    async def is_checker(self, account: bytes) -> bool:
        """Whether the escrow counts ``account`` as a registered checker now."""
        ...

    async def claim_evidence(self, ref: ResultRef, worker: bytes) -> ClaimEvidence | None:
        """The claim's tiles and claimers, as the escrow logged them (None: no claim)."""
        ...

    async def claim_ladder(self, ref: ResultRef, worker: bytes) -> Ladder | None:
        """The rungs of the claim (each one's signers, ascending), contested or settled
        after an answer, as the escrow logged them (None: never answered)."""
        ...

    async def escalate(
        self, signed: CleanAnswer | FraudClaim, claimers: Sequence[bytes],
        ladder: Sequence[Sequence[bytes]], ordered_sigs: Sequence[bytes],
    ) -> None:  # fmt: skip
        """Outnumber the last rung of ``ladder`` with signatures (ascending) over rung
        ``len(ladder)`` of the claim ``signed`` names (``signed.rung(claimers, len(ladder))``)."""
        ...

    async def settle_contest(
        self, signed: CleanAnswer | FraudClaim, claimers: Sequence[bytes],
        ladder: Sequence[Sequence[bytes]],
    ) -> None:  # fmt: skip
        """After the last rung's window: its side wins."""
        ...

    async def checker_min_stake_wei(self) -> int:
        """The escrow's minimum stake of a registered checker (0: none asked)."""
        ...

    async def register_checker(self) -> None:
        """Register this account as a checker again (it holds the minimum active stake:
        a claim that took it under the minimum dropped the flag, and winning it does not
        restore the flag)."""
        ...


def blender_kit(
    config: BlenderConfig, work_root: Path, warm: WarmConfig | None = None
) -> RenderKit:
    """The node's real renderers: Blender in its sandbox, probed once; with ``warm``
    (max_processes > 0) frames and checks render in one warm process per job."""
    from node.render.blender import BlenderBackend
    from node.render.preflight import inspect_scene
    from node.render.probe import probe_render
    from node.render.sandbox import probe_sandbox
    from node.render.warm import WarmPool
    from node.render.warm_frames import WarmFrameRenderer
    from node.verify.blender_tiles import BlenderTileRenderer
    from node.verify.warm_tiles import SCRIPTS, WarmTileRenderer

    config = replace(config, work_root=work_root)
    sandbox = probe_sandbox()
    backend = BlenderBackend(config, sandbox)
    one_shot_tiles = BlenderTileRenderer(config, sandbox)

    async def inspect(scene: Path) -> dict[str, Any]:
        return await inspect_scene(scene, config, sandbox)

    async def probe(scene: Path, settings: RenderSettings, paths: LightPaths, frame: int) -> Probe:
        return await probe_render(backend, scene, settings, paths, frame, work_root)

    if warm is None or warm.max_processes == 0:
        return RenderKit(backend, one_shot_tiles, inspect, probe)
    pool = WarmPool(config, sandbox, warm, SCRIPTS)
    frames = WarmFrameRenderer(backend, pool)
    tiles = WarmTileRenderer(one_shot_tiles, pool)
    return RenderKit(frames, tiles, inspect, probe, frames.release, tiles.release)

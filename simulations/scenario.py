"""What a scenario file may say: one frozen dataclass per TOML section.

Every knob of every model lives here with its default and bounds, so the
schema, the defaults and the documentation (docs/SIMULATIONS.md) are one
thing. Units are in the names. Probabilities are per event (per message, per
frame, per result). Rates are per simulated hour.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from protocol.cost import tile_cost_ppm
from protocol.market.config import MarketConfig
from protocol.market.quote import DEFAULT_CHECKER_FEE_BPS
from protocol.slashing import upheld_rejecters
from protocol.verification import DEFAULT_POLICY
from simulations.schema import ScenarioError, apply_override, bounded, build, parse_value

DEFAULT_LATENCY_MS = {
    "eu-eu": 15,
    "us-us": 20,
    "asia-asia": 25,
    "eu-us": 45,
    "eu-asia": 110,
    "us-asia": 90,
}


@dataclass(frozen=True)
class Meta:
    name: str = "unnamed"
    description: str = ""
    duration_s: float = bounded(6 * 3600.0, 1, 30 * 86400)  # safety phase, faults on
    liveness_bound_s: float = bounded(6 * 3600.0, 1, 30 * 86400)  # faults off: all jobs end
    start_ms: int = bounded(1_800_000_000_000, 0, 2**63)  # wall clock handed to machines
    sample_interval_s: float = bounded(300.0, 1, 86400)  # time series resolution
    check_invariants: bool = True  # after every event (VOPR); off only for benchmarks
    # A frame accepted from a worker the job already caught cheating is a violation
    # (off: only counted, as frames_from_known_cheaters; docs/SIMULATIONS.md).
    known_cheater_invariant: bool = True


@dataclass(frozen=True)
class Nodes:
    workers: int = bounded(30, 0, 100_000)
    checkers: int = bounded(5, 0, 10_000)
    requesters: int = bounded(4, 1, 10_000)
    # Stake each worker holds in the escrow from the start (flood identities hold none);
    # 0 = none: the node's default, stake is optional
    worker_stake_wei: int = bounded(0, 0, 10**30)
    # Stake each checker holds from the start: twice the escrow's default SLASH_CAP. One
    # cap is what the node's requester asks of checkers by default
    # (market.checker_stake_wei); a claim's signer locks a cap and keeps a cap more free
    # (protocol.slashing.may_back_claim), so with less no checker could sign a claim. A
    # whitewashing lazy checker posts it again under each fresh key (simulations/pass_claims.py)
    checker_stake_wei: int = bounded(2 * 10**17, 0, 10**30)


@dataclass(frozen=True)
class Partition:
    start_s: float = bounded(0.0, 0)
    duration_s: float = bounded(600.0, 0)
    regions: tuple[str, ...] = ()  # cut off from every other region, then healed


@dataclass(frozen=True)
class Network:
    regions: tuple[str, ...] = ("eu", "us", "asia")
    latency_ms: dict[str, float] = field(  # "a-b" -> one-way ms; "b-a" is the same pair
        default_factory=lambda: dict(DEFAULT_LATENCY_MS), metadata={"lo": 0, "hi": 10_000}
    )
    jitter_ms: float = bounded(5.0, 0, 10_000)  # uniform extra delay per message
    loss: float = bounded(0.0, 0, 1)
    duplication: float = bounded(0.0, 0, 1)
    bandwidth_mbit_s: float = bounded(100.0, 0.01, 1e6)  # per-message serialisation delay
    gossip_fanout: int = bounded(8, 1, 64)  # gossipsub mesh degree: hops = log_fanout(n)
    gossip_reach: int = bounded(0, 0, 1_000_000)  # workers a job announce reaches; 0 = all
    sign_gossip: bool = True  # False: gossip travels as objects (counted bytes, no Ed25519)
    advert_interval_s: float = bounded(30.0, 1, 86400)  # CapacityAdvert period
    partitions: tuple[Partition, ...] = ()


@dataclass(frozen=True)
class GpuClass:
    name: str = "rtx-3060"
    score_ru_per_hour: float = bounded(1000.0, 1)
    vram_mib: int = bounded(12_288, 1)
    weight: float = bounded(1.0, 0)  # share of workers with this card


DEFAULT_GPUS = (
    GpuClass("gtx-1660", 450.0, 6_144, 2.0),
    GpuClass("rtx-3060", 1000.0, 12_288, 3.0),
    GpuClass("rtx-3090", 2100.0, 24_576, 2.0),
    GpuClass("rtx-4090", 3800.0, 24_576, 1.0),
    GpuClass("a100-80g", 4200.0, 81_920, 0.5),
)


@dataclass(frozen=True)
class Rendering:
    gpu_classes: tuple[GpuClass, ...] = DEFAULT_GPUS
    time_noise: float = bounded(0.1, 0, 1)  # render time × U(1-x, 1+x)
    failure_rate: float = bounded(0.01, 0, 1)  # a render ends in RENDER_ERROR
    result_size_bytes: int = bounded(4_000_000, 1)
    # A node's cost before its first frame or check of a job: fetching the scene and
    # inspecting it itself (the node's preflight: a Blender start). bench/sim_fidelity.py
    # measures it; 0 = not modelled.
    job_setup_s: float = bounded(0.0, 0)
    # A worker's capacity-challenge answer besides the job's setup and the challenge's
    # render: what the answer's small render costs beyond its share of a frame (Blender's
    # fixed cost per render), with every bidder answering at once. Measured by
    # bench/sim_fidelity.py; 0 = not modelled.
    challenge_start_s: float = bounded(0.0, 0)
    # A requester's own preflight before it deposits and announces a job (the node's
    # ``pictor`` client inspects the scene: a Blender start). Measured by
    # bench/sim_fidelity.py; 0 = not modelled.
    preflight_s: float = bounded(0.0, 0)


@dataclass(frozen=True)
class Chain:
    block_time_s: float = bounded(12.0, 0.1, 3600)
    confirmations: int = bounded(2, 0, 1000)
    # An L2's price: frames of ~1e14 wei are never worth a redeem at mainnet's 20 gwei
    # (54k gas = 1.1e15 wei), and payees follow the node's RedeemPolicy.
    gas_price_gwei: float = bounded(0.05, 0)
    gas_deposit: int = bounded(70_895, 0)  # a native deposit (bench/gas.py modelled())
    gas_redeem: int = bounded(51_359, 0)  # a payee redeems its own voucher (bench/gas.py modelled())
    gas_redeem_item: int = bounded(29_960, 0)  # each further voucher of a batch (modelled())
    gas_refund: int = bounded(37_618, 0)  # bench/gas.py modelled()
    # open_lanes: a base plus each lane it opens or tops up (bench/gas.py modelled()). A
    # new lane also adds to its payee's count of open lanes by the day its job's window
    # ends (Escrow.open_lanes_of): a new storage slot when the payee has none that day
    # (gas_lane_new), else a cheaper write (gas_lane_counted)
    gas_open_lanes: int = bounded(31_014, 0)
    gas_lane_new: int = bounded(48_216, 0)
    gas_lane_counted: int = bounded(31_116, 0)
    gas_lane_top_up: int = bounded(8_737, 0)
    grace_s: float = bounded(3600.0, 0)  # escrow: vouchers redeem until deadline + grace
    # Fraud claims (ledger/deploy.py's defaults): distinct rejecting checkers a claim
    # needs (as many as a default dispute's upheld rejection carries), and the most it
    # takes from the worker's stake
    slash_quorum: int = bounded(upheld_rejecters(MarketConfig().dispute_checkers), 1, 63)
    slash_cap_wei: int = bounded(10**17, 1, 2**128)


@dataclass(frozen=True)
class Churn:
    join_per_hour: float = bounded(0.0, 0)
    leave_per_hour: float = bounded(0.0, 0)
    crash_per_hour: float = bounded(0.0, 0)
    restart_after_s: float = bounded(600.0, 0)  # a crashed node returns with its key
    # Scripted kills (s from the start): the first worker with a render in flight (else
    # the first online one) is killed for good — bench/sim_fidelity.py's "one worker
    # killed mid-job", at the moment the real run killed one.
    kill_workers_at_s: tuple[float, ...] = ()


@dataclass(frozen=True)
class Workload:
    jobs_per_hour: float = bounded(2.0, 0)
    first_job_s: float = bounded(60.0, 0)
    frames_min: int = bounded(5, 1, 10_000)
    frames_max: int = bounded(40, 1, 10_000)
    ru_per_frame_min: int = bounded(20, 1)
    ru_per_frame_max: int = bounded(200, 1)
    resolution_x: int = bounded(640, 1, 16_384)  # sets the checkers' tile grid
    resolution_y: int = bounded(360, 1, 16_384)
    scene_vram_mib_max: int = bounded(16_384, 1)  # scenes need U(1 GiB, this)
    deadline_s: float = bounded(4 * 3600.0, 1)
    price_wei_per_ru: int = bounded(10**12, 0)  # what honest workers ask
    max_price_factor: float = bounded(2.0, 0)  # requester's cap, × the honest ask
    # 0, the default: the node's escrow (protocol.market.quote.budget_wei, room for the
    # assurance's checks and a spare, and since stop 35 for retries), as node.roles.submit
    # deposits; a positive factor overrides it: budget = frames × cap × this
    # (docs/SIMULATIONS.md, "Workload": 1.5 until issue 20 made the node's the default)
    budget_factor: float = bounded(0.0, 0)


NODE_TRIAL_LEASES = 2  # node/config.py's NodeConfig.trial_leases (not imported: no node here)
PASS_CLAIM_STAKE = -1  # node/config.py's: checker_stake_wei = the escrow's SLASH_CAP


@dataclass(frozen=True)
class Verification:
    assurance: str = "normal"  # protocol.messages.Assurance: none = no checking at all
    checker_fee_bps: int = bounded(DEFAULT_CHECKER_FEE_BPS, 0, 10_000)  # share of the price
    tiles_per_check: int = bounded(0, 0, 256)  # 0: protocol.verification.plan_check's k
    # checkers that must each pass a fresh worker's result; 0: the protocol's level
    checkers_fresh: int = bounded(0, 0, 8)
    tiles_fresh: int = bounded(0, 0, 256)  # each one's tiles (k_fresh); 0: the protocol's
    reputation: bool = True  # requesters keep a ReputationBook and the machine uses it
    # requesters publish their verdicts and read everyone's (protocol.record), as the node
    public_record: bool = True
    prior_accepted: int = bounded(0, 0)  # an established network: every requester knows
    prior_age_days: float = bounded(0.0, 0)  # each first worker with this many accepted frames
    prior_cheaters: bool = True  # cheaters too (they behaved until now), or honest ones only
    # One tile's re-render cost as a share of the frame; 0: protocol.cost's, the protocol's
    # tile (16 px) over the workload's frame (640 x 360: 0.001111), see tile_fraction()
    tile_fraction: float = bounded(0.0, 0, 1)
    check_overhead_s: float = bounded(2.0, 0)  # a check's fixed cost: start-up, scene load
    # The requester's work on a result before its first check is asked: the frame's fetch
    # from the worker and the copy checkers are served (node.roles.plants), one at a
    # time per job; 0: not modelled. bench/sim_fidelity.py measures it. A fixed cost:
    # result_size_bytes and the network's bandwidth do not move it.
    prepare_s: float = bounded(0.0, 0)
    # A requester's judgement of a capacity challenge's answer besides the frame's fetch:
    # a cold tile renderer's start and one tile (bench/sim_fidelity.py measures it).
    challenge_judge_s: float = bounded(2.0, 0)
    # A checker's cost before its first check of a job (the scene's fetch and its own
    # preflight); 0: rendering.job_setup_s. bench/sim_fidelity.py measures it as the
    # devnet's checker meets it: while the workers render and the requester judges.
    checker_setup_s: float = bounded(0.0, 0)
    false_reject_rate: float = bounded(0.0, 0, 1)  # an honest tile measures below threshold
    # What an honest 24-tile check costs its checker, as a share of the frame's price;
    # scaled by k / 24. The warm checks the node makes (docs/RENDERING.md: 4.6 % of the
    # worker's wall time for 24 tiles, the job's first check's start-up included; 6.2 %
    # before, one cold Blender per check, bench/verification.py).
    check_cost_bps: int = bounded(460, 0, 10_000)


@dataclass(frozen=True)
class Adversaries:
    cheater_fraction: float = bounded(0.0, 0, 1)
    cheat_rate: float = bounded(0.5, 0, 1)  # of a cheater's results
    partial_share: float = bounded(0.3, 0, 1)  # of cheats that are partial renders
    partial_fraction: float = bounded(0.1, 0, 1)  # share of the frame a partial render fakes
    lazy_fraction: float = bounded(0.0, 0, 1)  # accept, never deliver
    colluding_checker_fraction: float = bounded(0.0, 0, 1)  # pass every cheater's frame
    lazy_checker_fraction: float = bounded(0.0, 0, 1)  # pass everything, never render
    # A strategic lazy checker: renders its first lazy_checker_after checks honestly
    # (earning the requesters' trust: probation plants), then passes everything
    lazy_checker_after: int = bounded(0, 0, 1_000_000)
    # A whitewashing lazy checker: struck by a requester, it comes back to that requester
    # under a fresh key (probation starts again, lazy_checker_after counts per requester
    # and key); identities cost nothing here
    lazy_checker_whitewash: bool = False
    # A lazy pair: this many checker identities of one owner that compare notes. Asked
    # about a task one of them was asked about too, it tells the plant from the real
    # frame (their pixels differ: docs/VERIFICATION.md, "What two colluding checkers can
    # tell"), rejects the plant and passes the real frame without rendering; two requests
    # naming one frame are both real and both passed. Else it renders as an honest checker.
    lazy_pair_checkers: int = bounded(0, 0, 64)
    sybil_identities: int = bounded(0, 0, 10_000)  # one cheater, fresh keys when caught
    # Cheaters dispute every rejection, their fakes' too (the worker machine's default);
    # false: the rational cheater, which knows its fakes and disputes none (its stake is
    # then at risk only through the requester's own confirmation: protocol.market.verifying)
    cheaters_dispute: bool = True
    free_rider_fraction: float = bounded(0.0, 0, 1)  # requesters that never pay
    clawback_fraction: float = bounded(0.0, 0, 1)  # requesters that claw the escrow back
    # A sybil capacity flood: fresh identities of one operator claiming flood_score_factor
    # times their card's score at 1 wei per RU, returning wrong frames (replaced when caught)
    flood_identities: int = bounded(0, 0, 10_000)
    flood_score_factor: float = bounded(100.0, 1, 1e6)
    sniper_fraction: float = bounded(0.0, 0, 1)  # workers undercutting the ask
    sniper_discount: float = bounded(0.3, 0, 1)


@dataclass(frozen=True)
class Market:
    """The requester's ``protocol.market.MarketConfig`` (every job uses it)."""

    lease_s: float = bounded(60.0, 1)
    heartbeat_interval_s: float = bounded(15.0, 0.1)
    bid_window_s: float = bounded(5.0, 0)
    verify_timeout_s: float = bounded(120.0, 1)
    max_attempts_per_frame: int = bounded(3, 1)
    blocklist_after_failures: int = bounded(3, 1)
    blocklist_after_rejections: int = bounded(1, 1)
    max_tasks_per_worker: int = bounded(4, 1)
    task_timeout_factor: int = bounded(4, 1)
    min_task_timeout_s: float = bounded(600.0, 1)
    reannounce_interval_s: float = bounded(300.0, 1)
    plant_rate_ppm: int = bounded(MarketConfig().plant_rate_ppm, 0, 1_000_000)  # forced errors
    # requests out at one checker per requester; beyond, they wait (verification.with_room)
    checks_per_checker: int = bounded(MarketConfig().checks_per_checker, 0, 1_000_000)  # 0: none
    # protocol.capacity: the node's default (NodeConfig.trial_leases; a test checks), with
    # its capacity challenges (simulations/challenges.py); 0: neither
    trial_leases: int = bounded(NODE_TRIAL_LEASES, 0, 1_000_000)
    # Stake a checker must hold to be asked a check or sent a plant (the node's
    # NodeConfig.checker_stake_wei): -1 = chain.slash_cap_wei, what a claim of a missed
    # plant takes (the node's default); 0 = none
    checker_stake_wei: int = bounded(PASS_CLAIM_STAKE, PASS_CLAIM_STAKE, 10**30)
    # Stake a requester asks of its workers (MarketConfig.min_stake_wei; 0: none), for
    # its job and for each other job the escrow counts the worker open in
    min_stake_wei: int = bounded(0, 0, 10**30)


@dataclass(frozen=True)
class Scenario:
    scenario: Meta = Meta()
    nodes: Nodes = Nodes()
    network: Network = Network()
    rendering: Rendering = Rendering()
    chain: Chain = Chain()
    churn: Churn = Churn()
    workload: Workload = Workload()
    verification: Verification = Verification()
    adversaries: Adversaries = Adversaries()
    market: Market = Market()


def load_scenario(path: str | Path, overrides: dict[str, Any] | None = None) -> Scenario:
    """Read and validate a scenario file; ``overrides`` maps dotted keys to values."""
    try:
        raw = tomllib.loads(Path(path).read_text())
    except tomllib.TOMLDecodeError as exc:
        raise ScenarioError(f"{path}: not valid TOML: {exc}") from None
    return scenario_from_dict(raw, overrides)


def scenario_from_dict(raw: dict[str, Any], overrides: dict[str, Any] | None = None) -> Scenario:
    for dotted, value in (overrides or {}).items():
        apply_override(raw, dotted, parse_value(value) if isinstance(value, str) else value)
    scenario = build(Scenario, raw, "")
    _check_cross_fields(scenario)
    return scenario


def tile_fraction(s: Scenario) -> float:
    """One checked tile's re-render cost as a share of its frame: ``verification.tile_fraction``
    when set, else ``protocol.cost.tile_cost_ppm`` of the protocol's tile size at the
    workload's resolution (a check's fixed cost is ``verification.check_overhead_s``)."""
    if s.verification.tile_fraction:
        return s.verification.tile_fraction
    w = s.workload
    return tile_cost_ppm(DEFAULT_POLICY.sampling.tile_px, w.resolution_x, w.resolution_y) / 1e6


def _check_cross_fields(s: Scenario) -> None:
    w = s.workload
    if w.frames_min > w.frames_max:
        raise ScenarioError("workload.frames_min: larger than workload.frames_max")
    if w.ru_per_frame_min > w.ru_per_frame_max:
        raise ScenarioError("workload.ru_per_frame_min: larger than workload.ru_per_frame_max")
    regions = set(s.network.regions)
    for key in s.network.latency_ms:
        a, _, b = key.partition("-")
        if a not in regions or b not in regions:
            raise ScenarioError(f"network.latency_ms.{key}: names a region not in network.regions")
    for i, part in enumerate(s.network.partitions):
        for region in part.regions:
            if region not in regions:
                raise ScenarioError(f"network.partitions[{i}].regions: unknown region {region!r}")
    chain_s = (s.chain.confirmations + 1) * s.chain.block_time_s
    if s.scenario.liveness_bound_s < w.deadline_s + chain_s:
        raise ScenarioError(
            "scenario.liveness_bound_s: must be at least workload.deadline_s plus the deposit's "
            f"confirmation time ({w.deadline_s + chain_s:.0f} s), or a job may still be open"
        )
    if s.market.heartbeat_interval_s >= s.market.lease_s:
        raise ScenarioError("market.heartbeat_interval_s: must be shorter than market.lease_s")
    if s.verification.assurance not in ("none", "normal", "high"):
        raise ScenarioError("verification.assurance: one of none, normal, high")
    if not s.rendering.gpu_classes:
        raise ScenarioError("rendering.gpu_classes: needs at least one GPU class")

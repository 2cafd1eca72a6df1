"""Verification: which tiles a checker re-renders, how it judges them, how often.

Theory of operation
-------------------
A checker re-renders ``k`` square tiles of a worker's frame and compares them
with the same regions of the worker's image (Blender renders a border region
bit-identically to the full frame's pixels, DESIGN.md). Everything here is
pure; the re-render itself is ``node.verify``'s business.

*Which tiles.* The frame is cut into a fixed grid of ``tile_px`` cells (edge
cells cropped). The requester draws a 32-byte tile secret for each request
*after* the worker signed its result (:mod:`protocol.tile_secret`: from its
job's ``check_secret``, never sent to the worker) and sends it in
``VerifyRequest.tile_secret``; the checker derives ``seed = SHA-256(TILE_DOMAIN
|| result_digest || secret)`` from it, and :func:`select_tiles` expands the seed
(SHA-256 in counter mode) into a partial Fisher-Yates shuffle of the grid and
takes ``k`` distinct cells. The worker cannot know which cells will be looked
at, and the checker cannot choose them either (a checker that drew its own
secret could redraw until the cells missed a partial fake): the requester
refuses a verdict whose secret or tiles are not its draw's. The secret is
revealed in ``Verdict.secret``, so anyone can re-derive the choice
(:func:`audit_verdict`). Cells never overlap: for a fixed
re-render budget that maximises the area looked at, and sampling without
replacement makes the detection probability exactly hypergeometric.

*How judged* (:func:`compare_tile`). Same renderer build and device class:
pixels must be identical (``max_abs_diff == 0``). Otherwise the tile passes
when its PSNR is at least ``min_psnr_millidb`` (55 dB): honest renders on
another CPU code path measured ~83 dB over a 320x240 frame, every cheat
28-38 dB. Even if *all* of such a frame's error fell into one 16 px tile, that
tile would still read 59.5 dB (docs/VERIFICATION.md); 55 dB keeps 4.5 dB
under that worst case and 17 dB over the loudest cheat.

*How often* (:func:`plan_check`). The job's assurance level and the worker's
reputation (protocol.reputation) give the probability that a frame is
checked at all and ``k``; :func:`plan_frame_check` turns that into the
decision for one result (checked or not, from a draw the worker cannot
predict, and ``k``), which the requester's job machine sends the checker in
``VerifyRequest.tiles``. A worker that falsifies a fraction ``f`` of the
frame, aligned to whole cells (its best strategy: partial cells are more
likely to be hit), touches ``m = ceil(f * N)`` of ``N`` cells and escapes a
check with probability ``C(N - m, k) / C(N, k)`` (hypergeometric, exact).
Without the resolution we state the bound ``1 - (1 - f)^k`` (sampling with
replacement), which never exceeds the exact value: it is the conservative
figure. Pixels inside a tile are not independent samples, so per-pixel
formulas such as ``1 - (1 - f)^(k * a)`` overstate detection and are not used.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Collection, Iterator, Mapping, MutableMapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from protocol.errors import LocalProtocolError
from protocol.messages import Assurance, Result, TileEvidence, Verdict, VerifyRequest

TILE_DOMAIN = b"pictor/verify/tiles/v1\x00"
CHECK_DOMAIN = b"pictor/verify/check/v1\x00"
PSNR_IDENTICAL_MILLIDB = 2**32 - 1  # "infinite" PSNR (identical pixels) on the wire
_U64 = 2**64


@dataclass(frozen=True, order=True)
class Tile:
    """A pixel rectangle, origin top-left (image row order), end exclusive."""

    y: int
    x: int
    width: int
    height: int


# --- tile selection ---------------------------------------------------------------


def tile_seed(result_digest: bytes, secret: bytes) -> bytes:
    if len(result_digest) != 32 or len(secret) != 32:
        raise LocalProtocolError("result_digest and secret must be 32 bytes each")
    return hashlib.sha256(TILE_DOMAIN + result_digest + secret).digest()


def tile_grid(width: int, height: int, tile_px: int) -> tuple[Tile, ...]:
    """The fixed grid of cells, row-major; edge cells are cropped to the frame."""
    if width < 1 or height < 1 or tile_px < 1:
        raise LocalProtocolError("width, height and tile_px must be positive")
    return tuple(
        Tile(y, x, min(tile_px, width - x), min(tile_px, height - y))
        for y in range(0, height, tile_px)
        for x in range(0, width, tile_px)
    )


def _uniform_below(seed: bytes, counter: int, bound: int) -> tuple[int, int]:
    """An unbiased integer in [0, bound) from the seed's stream; returns (value, next counter)."""
    limit = _U64 - _U64 % bound
    while True:
        block = hashlib.sha256(seed + counter.to_bytes(8, "big")).digest()
        counter += 1
        value = int.from_bytes(block[:8], "big")
        if value < limit:
            return value % bound, counter


def _picks(seed: bytes, cells: int, k: int) -> Iterator[int]:
    """The row-major indices of the ``min(k, cells)`` cells the seed picks, in draw order:
    a partial Fisher-Yates, its swaps kept sparse (the same draws and result as swapping
    in the whole tile_grid, which was built for every check: a twelfth of a simulated
    run's time); position i is final once drawn."""
    moved: dict[int, int] = {}
    counter = 0
    for i in range(min(k, cells)):
        j, counter = _uniform_below(seed, counter, cells - i)
        yield moved.get(i + j, i + j)
        moved[i + j] = moved.get(i, i)


def select_tiles(
    result_digest: bytes, secret: bytes, width: int, height: int, k: int, tile_px: int
) -> tuple[Tile, ...]:
    """``min(k, N)`` distinct grid cells chosen by the seed; sorted top-left first."""
    if k < 0:
        raise LocalProtocolError("k must be >= 0")
    if width < 1 or height < 1 or tile_px < 1:
        raise LocalProtocolError("width, height and tile_px must be positive")
    columns = -(-width // tile_px)
    tiles = []
    for index in _picks(tile_seed(result_digest, secret), columns * -(-height // tile_px), k):
        y, x = index // columns * tile_px, index % columns * tile_px
        tiles.append(Tile(y, x, min(tile_px, width - x), min(tile_px, height - y)))
    return tuple(sorted(tiles))


def draw_includes(
    result_digest: bytes, secret: bytes, width: int, height: int, k: int, tile_px: int,
    cell: int,
) -> bool:  # fmt: skip
    """Whether :func:`select_tiles` picks grid cell ``cell`` (row-major index): the same
    draws, stopped at the first pick of it (a requester aiming a dispute's draw tries
    many secrets: ``protocol.tile_secret.aimed_tile_secret``)."""
    cells = -(-width // tile_px) * -(-height // tile_px)
    return cell in _picks(tile_seed(result_digest, secret), cells, k)  # stops at it


def cell_of(tile: TileEvidence | Tile, width: int, tile_px: int) -> int:
    """The row-major index of the grid cell a tile (or a verdict's evidence of one) is."""
    return (tile.y // tile_px) * -(-width // tile_px) + tile.x // tile_px


def should_check(draw: bytes, probability: float) -> bool:
    """Whether to check this frame, from >= 8 unpredictable bytes the caller supplies.

    The requester passes ``SHA-256(CHECK_DOMAIN || its secret || result_digest)``
    so the decision is unknown to the worker and reproducible by the requester.
    """
    if len(draw) < 8:
        raise LocalProtocolError("need at least 8 bytes to draw from")
    if probability >= 1.0:
        return True
    return int.from_bytes(draw[:8], "big") < probability * _U64


# --- comparison ---------------------------------------------------------------------


@dataclass(frozen=True)
class ComparisonPolicy:
    """Thresholds; values and their measurements are in docs/VERIFICATION.md."""

    min_psnr_millidb: int = 55_000
    exact_max_abs_diff: int = 0  # same build and device class: bit-identical pixels

    def __post_init__(self) -> None:
        if not 0 < self.min_psnr_millidb < PSNR_IDENTICAL_MILLIDB or self.exact_max_abs_diff < 0:
            raise LocalProtocolError("comparison thresholds out of range")


@dataclass(frozen=True)
class TileCheck:
    evidence: TileEvidence
    passed: bool
    digest: bytes = bytes(32)  # tile_digest of the checker's re-render; zeros: none made


TILE_PIXELS_DOMAIN = b"pictor/verify/tile-pixels/v1\x00"


def tile_digest(pixels: npt.NDArray[np.generic]) -> bytes:
    """The commitment to one tile's pixels that a ``Verdict`` carries per tile:
    SHA-256 of the domain, height and width (u16), channels and bytes per sample
    (u8), then every sample big-endian, row-major. Any re-render of the tile on the
    same build and device class must hash the same (Blender renders bit-identically
    there, docs/VERIFICATION.md), so a checker that committed to pixels it did not
    render is proved wrong by one re-render of one tile."""
    if pixels.dtype not in (np.uint8, np.uint16) or pixels.ndim not in (2, 3):
        raise LocalProtocolError("tiles must be 2-D or 3-D uint8/uint16 arrays")
    height, width = pixels.shape[:2]
    channels = 1 if pixels.ndim == 2 else pixels.shape[2]
    size = pixels.dtype.itemsize
    head = height.to_bytes(2, "big") + width.to_bytes(2, "big") + bytes((channels, size))
    body = np.ascontiguousarray(pixels, dtype=pixels.dtype.newbyteorder(">")).tobytes()
    return hashlib.sha256(TILE_PIXELS_DOMAIN + head + body).digest()


def psnr_millidb(reference: npt.NDArray[np.generic], candidate: npt.NDArray[np.generic]) -> int:
    """PSNR over every channel, in thousandths of a dB, peak from the dtype."""
    peak = float(np.iinfo(reference.dtype).max)  # type: ignore[type-var]
    diff = reference.astype(np.float64) - candidate.astype(np.float64)
    mse = float(np.mean(diff * diff))
    if mse == 0.0:
        return PSNR_IDENTICAL_MILLIDB
    value = math.floor(10_000.0 * math.log10(peak * peak / mse))
    return max(0, min(value, PSNR_IDENTICAL_MILLIDB - 1))


def tile_passes(evidence: TileEvidence, same_build: bool, policy: ComparisonPolicy) -> bool:
    """The rule, stated on the evidence alone so that an auditor can re-apply it."""
    if same_build:
        return evidence.max_abs_diff <= policy.exact_max_abs_diff
    return evidence.psnr_millidb >= policy.min_psnr_millidb


def compare_tile(
    reference: npt.NDArray[np.generic],
    candidate: npt.NDArray[np.generic],
    same_build: bool,
    policy: ComparisonPolicy,
    tile: Tile | None = None,
) -> TileCheck:
    """Judge one tile: ``reference`` re-rendered by the checker, ``candidate`` cut
    from the worker's image. Both HxW or HxWxC, same shape and integer dtype."""
    if reference.shape != candidate.shape or reference.dtype != candidate.dtype:
        raise LocalProtocolError(
            f"tile arrays differ: {reference.shape}/{reference.dtype} vs "
            f"{candidate.shape}/{candidate.dtype}"
        )
    if reference.dtype not in (np.uint8, np.uint16) or reference.ndim not in (2, 3):
        raise LocalProtocolError("tiles must be 2-D or 3-D uint8/uint16 arrays")
    height, width = reference.shape[:2]
    where = tile or Tile(0, 0, width, height)
    if (where.height, where.width) != (height, width):
        raise LocalProtocolError("tile size and array shape disagree")
    diff = np.abs(reference.astype(np.int32) - candidate.astype(np.int32))
    evidence = TileEvidence(
        x=where.x,
        y=where.y,
        width=width,
        height=height,
        psnr_millidb=psnr_millidb(reference, candidate),
        max_abs_diff=int(diff.max()) if diff.size else 0,
    )
    return TileCheck(evidence, tile_passes(evidence, same_build, policy), tile_digest(reference))


# --- adaptive sampling --------------------------------------------------------------


@dataclass(frozen=True)
class Level:
    """Sampling for one assurance level: fresh (reputation 0) to trusted (1).

    ``checkers_*``: how many different checkers must each pass a checked result, each
    drawing its own ``k`` tiles. A second checker is the lever against a colluding
    checker (it passes its partners' cheats without looking: a cheat now slips only when
    every checker asked colludes) and against partial fakes (two independent draws:
    ``P(escape)`` squared); it costs a second check and fee per result
    (docs/VERIFICATION.md, "The slip figure").

    ``accept_short``: when the requester knows no other checker it could ask for a
    result's further check, the passes it has decide (``JobMachine.checkers_exhausted``):
    a network of one checker (``pictor demo``) still completes; False, the result waits
    for another checker (``high``: the requester asked for two)."""

    k_fresh: int
    k_trusted: int
    check_fresh: float
    check_trusted: float
    checkers_fresh: int = 1
    checkers_trusted: int = 1
    accept_short: bool = False


@dataclass(frozen=True)
class SamplingPolicy:
    tile_px: int = 16
    levels: dict[Assurance, Level] = field(
        default_factory=lambda: {
            Assurance.NONE: Level(0, 0, 0.0, 0.0),
            # Two checkers of 32 tiles each for an unbacked result: one colluding checker
            # in six let 6.1 % of cheats through one checker, and two of 24 tiles each
            # still missed a partial fake in 0.2-0.66 % of cheats, 32 in 0.076 % (stop 41,
            # with a checker's requests capped and plants picked first: docs/VERIFICATION.md,
            # "The slip figure"); a staked record earns one checker of 8 tiles, 1 in 4.
            Assurance.NORMAL: Level(32, 8, 1.0, 0.25, checkers_fresh=2, accept_short=True),
            Assurance.HIGH: Level(48, 24, 1.0, 1.0, checkers_fresh=2, checkers_trusted=2),
        }
    )

    def __post_init__(self) -> None:
        if self.tile_px < 1 or set(self.levels) != set(Assurance):
            raise LocalProtocolError("tile_px must be positive and every Assurance have a level")
        if any(min(v.checkers_fresh, v.checkers_trusted) < 1 for v in self.levels.values()):
            raise LocalProtocolError("a checked result needs at least one checker")


@dataclass(frozen=True)
class VerificationPolicy:
    sampling: SamplingPolicy = field(default_factory=SamplingPolicy)
    comparison: ComparisonPolicy = field(default_factory=ComparisonPolicy)


DEFAULT_POLICY = VerificationPolicy()


@dataclass(frozen=True)
class CheckPlan:
    check_probability: float
    k: int
    tile_px: int
    checkers: int = 1  # different checkers that must each pass a checked result


def plan_check(
    assurance: Assurance, reputation: float, policy: VerificationPolicy = DEFAULT_POLICY
) -> CheckPlan:
    """Interpolate between the fresh and trusted ends of the level by reputation."""
    if not 0.0 <= reputation <= 1.0:
        raise LocalProtocolError("reputation must be in [0, 1]")
    level = policy.sampling.levels[assurance]
    k = level.k_fresh - round((level.k_fresh - level.k_trusted) * reputation)
    q = level.check_fresh - (level.check_fresh - level.check_trusted) * reputation
    n = level.checkers_fresh - round((level.checkers_fresh - level.checkers_trusted) * reputation)
    return CheckPlan(q, k, policy.sampling.tile_px, n)


def checks_per_frame(assurance: Assurance, policy: VerificationPolicy = DEFAULT_POLICY) -> int:
    """The most checkers a frame of a job at ``assurance`` can need (its fresh or trusted
    end, whichever asks more; 0 at a level that checks nothing, ``none``): what a job's
    escrow and estimate make room for (``protocol.market.quote.budget_wei``), and how
    many checkers besides a plant's the requester must be able to ask."""
    level = policy.sampling.levels[assurance]
    if level.check_fresh == 0.0 and level.check_trusted == 0.0:
        return 0  # nothing checked: no fee, no plant, no dispute (no rejection)
    return max(level.checkers_fresh, level.checkers_trusted)


# How long a requester's driver waits for a checker it could ask to appear (an advert
# not heard yet, a reconnect) before it gives up on one: the node's wait for a first
# check, and for a further check before it tells the machine none is left
# (JobMachine.checkers_exhausted); the simulator waits as long (docs/SIMULATIONS.md).
CHECKER_WAIT_MS = 30_000


def accepts_short(assurance: Assurance, policy: VerificationPolicy = DEFAULT_POLICY) -> bool:
    """Whether a frame at ``assurance`` is accepted on the passes it has when no other
    checker can be asked (``Level.accept_short``), rather than waiting for one."""
    return policy.sampling.levels[assurance].accept_short


def check_stale(waited_ms: int, verify_timeout_ms: int) -> bool:
    """A checker's queued request that has waited a verify timeout is not worth rendering:
    its requester has asked another checker by then, and a late verdict goes unpaid."""
    return waited_ms >= verify_timeout_ms


def fee_promised(answered_after_ms: int, verify_timeout_ms: int, fee_wei: int) -> int:
    """What a checker counts as promised for a verdict it sends ``answered_after_ms`` after
    its request arrived: the fee, or 0 once a verify timeout has passed (its requester
    asked another checker by then and pays a late verdict only within its window and
    cap: protocol.market.verifying.VerifyDesk._keep_late_checks). Counted anyway, an
    unpaid late fee kept the checker's figure above the requester's, and the checker
    refused every later check of the job as unsecured (docs/MARKET.md, "Late verdicts")."""
    return 0 if check_stale(answered_after_ms, verify_timeout_ms) else fee_wei


def with_room(candidates: Sequence[bytes], out: Mapping[bytes, int], cap: int) -> list[bytes]:
    """The ``candidates`` a requester may send a check or a plant now: those holding
    fewer than ``cap`` of its requests (``out``: the sum of its jobs'
    ``JobMachine.checks_out``; ``MarketConfig.checks_per_checker``; 0: no cap, every
    candidate). :func:`choose_checker` then picks among them. If none has room the
    request waits at the requester for a verdict (or a stale request) to free a place,
    and its verify timeout has not started.

    Why: a checker renders one check at a time and drops a request that waited a verify
    timeout (``check_stale``). Spread evenly, a burst of results queued many checks at a
    slow checker: most went stale, each was asked again after the timeout, and results
    asked ``verify_attempts`` times were abandoned and rendered again, more checks still
    (docs/MARKET.md, "Checks wait for a checker with room"). Plants wait the same way: a
    checker sees every request come when it holds none of ours, a plant as a real check.
    A dispute's seats do not wait (their timeout runs).

    Speed counts: a checker that answers sooner has room sooner and takes more checks.
    A lazy checker answers at once, so it is always free; it cannot dodge plants by that,
    because a task's plant picks its checker before the task's real check does
    (protocol.market.plants), so plants reach each checker in proportion to the checks it
    takes (stop 40's escape: picked second, no plant reached the checker that took
    nearly every first check; tests/roles/test_checker_room.py). Stop 40 kept shares
    balanced instead (a check waited for one of the checkers given the fewest): that cost
    ``baseline`` 5 % of median job time at 24 tiles and 19 % at 32."""
    return [c for c in candidates if not cap or out.get(c, 0) < cap]


def prefer_unasked(candidates: Sequence[bytes], silent: Collection[bytes]) -> list[bytes]:
    """The ``candidates`` for a result's renewed check that were not asked about it since
    its last pass (``silent``: ``JobMachine.checkers_silent``, asked and no verdict
    taken), unless that leaves none. With checks waiting for a checker with room
    (:func:`with_room`) a silent checker's place frees just as the verify timeout renews
    the request, so it was asked again and again until the result was given up (a
    checker refusing unsecured checks, in the simulator's ``baseline``: 26 results
    abandoned in 30 seeds against 3 before the cap)."""
    others = [c for c in candidates if c not in silent]
    return others or list(candidates)


def choose_checker(
    candidates: Sequence[bytes], given: MutableMapping[bytes, int], draw: int
) -> bytes:
    """The checker a requester asks, among ``candidates`` (those it may ask for this
    task): one it has given the fewest checks of this kind (``given``; real checks and
    plants are counted apart), ties broken by ``draw`` (the caller's randomness), so
    every checker gets its share and no checker can tell that the next check is its
    own. The choice is counted in ``given``, and a candidate seen for the first time
    enters it level with the least-asked candidate: it joins the ties, it does not
    jump the queue (a fresh identity at zero took every check until it caught up, so
    churning checker identities captured most checks; found in review). A rotation over one counter
    sent, with two checkers and a plant per result, every real check to one checker
    and every plant to the other."""
    if not candidates:
        raise LocalProtocolError("no candidate checker")
    floor = min((given[c] for c in candidates if c in given), default=0)
    for c in candidates:
        given.setdefault(c, floor)  # a newcomer starts level with the least-asked
    fewest = min(given[c] for c in candidates)
    tied = sorted(c for c in candidates if given[c] == fewest)
    chosen = tied[draw % len(tied)]
    given[chosen] += 1
    return chosen


def check_draw(check_secret: bytes, result_digest: bytes) -> bytes:
    """The bytes :func:`should_check` draws from for one result.

    ``check_secret`` is the requester's, drawn for the job and never sent to the
    worker, so the worker cannot tell which of its results will be checked; the
    requester (and anyone it reveals the secret to) can recompute every draw."""
    if len(check_secret) != 32 or len(result_digest) != 32:
        raise LocalProtocolError("check_secret and result_digest must be 32 bytes each")
    return hashlib.sha256(CHECK_DOMAIN + check_secret + result_digest).digest()


def plan_frame_check(
    assurance: Assurance,
    reputation: float,
    check_secret: bytes | None,
    result_digest: bytes,
    policy: VerificationPolicy = DEFAULT_POLICY,
) -> int:
    """How many tiles to check this result with; 0: it is not checked.

    The one decision every driver uses (the requester's job machine calls it
    for each result): :func:`plan_check` gives the share of frames and ``k``,
    :func:`should_check` draws from :func:`check_draw`. Without a secret
    (``None``) every result is checked, the safe side. A checked result gets at
    least one tile."""
    plan = plan_check(assurance, reputation, policy)
    if plan.check_probability <= 0.0 or plan.k <= 0:
        return 0
    if check_secret is not None and not should_check(
        check_draw(check_secret, result_digest), plan.check_probability
    ):
        return 0
    return max(1, plan.k)


def p_caught_exact(cells: int, k: int, falsified_cells: int) -> float:
    """P(at least one of k distinct cells out of ``cells`` is falsified): hypergeometric."""
    if not 0 <= falsified_cells <= cells or k < 0:
        raise LocalProtocolError("need 0 <= falsified_cells <= cells and k >= 0")
    k = min(k, cells)
    return 1.0 - math.comb(cells - falsified_cells, k) / math.comb(cells, k)


def p_caught_bound(fraction: float, k: int) -> float:
    """Conservative P(caught | checked) = 1 - (1 - f)^k (with-replacement bound)."""
    if not 0.0 <= fraction <= 1.0:
        raise LocalProtocolError("fraction must be in [0, 1]")
    return 1.0 - (1.0 - fraction) ** k


@dataclass(frozen=True)
class Explanation:
    assurance: Assurance
    reputation: float
    fraction: float
    check_probability: float
    k: int
    tile_px: int
    formula: str
    p_caught_if_checked: float
    p_caught_per_frame: float
    frames_for_99: int | None  # cheated frames until caught with >= 99 %; None: never
    checked_area_share: float | None


def explain(
    assurance: Assurance,
    reputation: float,
    fraction: float,
    *,
    width: int | None = None,
    height: int | None = None,
    policy: VerificationPolicy = DEFAULT_POLICY,
) -> Explanation:
    """The numbers ``pictor verify --explain`` prints."""
    plan = plan_check(assurance, reputation, policy)
    share: float | None = None
    if width is not None and height is not None:
        cells = len(tile_grid(width, height, plan.tile_px))
        falsified = min(cells, math.ceil(fraction * cells))
        p_checked = p_caught_exact(cells, plan.k, falsified) if plan.k else 0.0
        formula = f"1 - C(N-m,k)/C(N,k), N={cells} cells, m={falsified}"
        picked = min(plan.k, cells)
        share = min(1.0, picked * plan.tile_px**2 / (width * height))
    else:
        p_checked = p_caught_bound(fraction, plan.k)
        formula = "1 - (1-f)^k (lower bound)"
    if plan.checkers > 1:  # each checker draws its own tiles: every one must miss
        p_checked = 1.0 - (1.0 - p_checked) ** plan.checkers
        formula = f"1 - (1 - [{formula}])^{plan.checkers} checkers"
    p_frame = plan.check_probability * p_checked
    frames: int | None = None
    if p_frame >= 1.0:
        frames = 1
    elif p_frame > 0.0:
        frames = max(1, math.ceil(math.log(0.01) / math.log1p(-p_frame)))
    return Explanation(
        assurance, reputation, fraction, plan.check_probability, plan.k, plan.tile_px,
        formula, p_checked, p_frame, frames, share,
    )  # fmt: skip


# --- verdicts -----------------------------------------------------------------------


def build_verdict(
    request: VerifyRequest,
    *,
    checks: Sequence[TileCheck],
    checker_build: str,
    checker_device_class: str,
) -> Verdict:
    """The Verdict for ``request``; the sender signs it with ``encode_envelope``.
    Its secret is the request's ``tile_secret``: ``checks`` must be on the tiles
    that secret selects (the requester refuses anything else)."""
    if not checks:
        raise LocalProtocolError("a verdict needs at least one checked tile")
    return Verdict(
        job_id=request.job_id,
        task_id=request.task_id,
        frame=request.frame,
        worker=request.worker,
        result_digest=request.result_digest,
        passed=all(c.passed for c in checks),
        secret=request.tile_secret,
        tiles=tuple(c.evidence for c in checks),
        checker_build=checker_build,
        checker_device_class=checker_device_class,
        tile_digests=tuple(c.digest for c in checks),
    )


def builds_match(result: Result, verdict: Verdict) -> bool:
    """Same renderer build and device class on both sides: the exact rule applies."""
    return (result.renderer_build, result.device_class) == (
        verdict.checker_build,
        verdict.checker_device_class,
    )


def tiles_drawn(
    verdict: Verdict, secret: bytes, width: int, height: int, k: int, tile_px: int
) -> bool:
    """Are the verdict's tiles exactly, in order, the ``k`` cells ``secret`` selects for
    its result (:func:`select_tiles`)? The one check of a verdict's draw, for
    :func:`audit_verdict` and the requester's (``protocol.tile_secret``)."""
    expected = select_tiles(verdict.result_digest, secret, width, height, k, tile_px)
    return tuple(Tile(t.y, t.x, t.width, t.height) for t in verdict.tiles) == expected


def audit_verdict(
    verdict: Verdict,
    result_digest: bytes,
    width: int,
    height: int,
    policy: VerificationPolicy = DEFAULT_POLICY,
    *,
    same_build: bool | None = None,
) -> bool:
    """Does the verdict hold together? Its tiles must be exactly the ones its
    revealed secret selects for this result, and, when the caller knows whether
    the builds matched, ``passed`` must follow from the evidence by the policy.
    (Whether the checker rendered honestly takes a re-render: see disputes.)"""
    if verdict.result_digest != result_digest or not verdict.tiles:
        return False
    if len(verdict.tile_digests) != len(verdict.tiles):
        return False  # the commitment to the re-render must cover every tile
    if not tiles_drawn(
        verdict, verdict.secret, width, height, len(verdict.tiles), policy.sampling.tile_px
    ):
        return False
    if same_build is None:
        return True
    judged = all(tile_passes(t, same_build, policy.comparison) for t in verdict.tiles)
    return judged == verdict.passed

"""What a job will cost, before it is submitted: asks, a proposed max price, the escrow.

Theory of operation
-------------------
A worker bids on a job when it runs the job's renderer build and its ask
(``price_wei_per_ru × ru_per_frame``, :func:`ask_wei_per_frame`, the same
product :class:`~protocol.market.worker.WorkerMachine` bids) is at most the
job's max price per frame. So a requester who reads the workers' adverts can
propose a max price that is sure to draw bids: walk the offers that run the
build cheapest first until their free slots cover the frames (every worker
counts at least one slot: slots free up as frames finish), take the highest
ask among them and add a margin for asks that move while the job is announced.

Awards are pay-as-bid, so the estimate is an upper bound at the chosen asks:
every frame at the highest chosen ask plus the fees of the checks the job's
plan asks of a fresh worker's frame (``checks``:
:func:`protocol.verification.checks_per_frame`, none at ``none``, two at ``normal``
and at ``high``). The escrow is larger (:func:`budget_wei`: room for those checks and
one re-check per frame: a plant, a checker that timed out; and for a tenth of
the frames again at the cap, since an attempt that fails leaves its price in
its worker's lane, at least two); what is not spent is refunded after the deadline. A budget sized for one check starved ``high``'s
second checker: the machine then accepts on the passes it has rather than
overspend (protocol.market.verifying), so a job paid for two checkers got one.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

BPS = 10_000
# The checker's fee per check, a share of the frame price: the founding design's 10 %.
# One default for the node, the simulator and the estimates; a job states its own.
DEFAULT_CHECKER_FEE_BPS = 1_000
# Attempts the escrow has room for beyond one a frame, a share of the frames (at least
# one): a rejected or abandoned attempt's price stays in its worker's lane until the
# refund (protocol.market.lanes), and without this room a job with bids at the cap and
# one cheat could not pay its frame again (tests/protocol/market/test_lane_credit.py).
RETRY_ROOM_BPS = 1_000
# At least two: a cheat caught on its first result has often been awarded its next
# frame already, and both prices stay in its lane (test_lane_credit.py, 6 frames).
MIN_RETRIES = 2


@dataclass(frozen=True)
class Offer:
    """One worker's standing offer, as read from its CapacityAdvert."""

    worker: str
    ask_wei_per_frame: int
    renderer_builds: tuple[str, ...]
    free_slots: int
    score_ru_per_hour: int


@dataclass(frozen=True)
class PriceProposal:
    max_price_wei_per_frame: int
    workers: int  # offers at or below the proposed max price that run the build
    cheapest_ask_wei: int
    estimate_wei: int  # upper bound: every frame at the chosen asks, plus its checks' fees
    budget_wei: int  # what the escrow holds until the deadline


def ask_wei_per_frame(price_wei_per_ru: int, ru_per_frame: int) -> int:
    """A worker's ask for one frame: the product its bid carries."""
    return price_wei_per_ru * ru_per_frame


def checker_fee_wei(price_wei: int, fee_bps: int) -> int:
    """One check's fee for a frame paid ``price_wei`` (rounded down, as the requester pays it)."""
    return price_wei * fee_bps // BPS


def retries_room(frames: int) -> int:
    """How many attempts beyond one a frame the escrow has room for (:func:`budget_wei`):
    a tenth of the frames, at least ``MIN_RETRIES``."""
    return max(MIN_RETRIES, -(-frames * RETRY_ROOM_BPS // BPS))


def budget_wei(frames: int, max_price_wei_per_frame: int, fee_bps: int, checks: int = 1) -> int:
    """The escrow: every frame at the cap, its ``checks`` and one re-check, and
    :func:`retries_room` more attempts at the cap with their checks, rounded up, in
    integers. ``checks`` 0 (assurance ``none``): no fee and no re-check at all."""
    if checks < 0:
        raise ValueError("checks must be >= 0")
    fees = checks + 1 if checks else 0
    frames_wei = frames * max_price_wei_per_frame * (BPS + fees * fee_bps)
    retries_wei = retries_room(frames) * max_price_wei_per_frame * (BPS + checks * fee_bps)
    return -(-(frames_wei + retries_wei) // BPS)


def estimate_wei(frames: int, ask_wei: int, fee_bps: int, checks: int = 1) -> int:
    """Upper bound of what ``frames`` cost at ``ask_wei`` each, with ``checks`` fees each."""
    return frames * (ask_wei + checks * checker_fee_wei(ask_wei, fee_bps))


def checkers_warning(
    assurance: str,
    checks: int,
    checkers_about: int,
    hint: str = "submit at assurance normal",
    accept_short: bool = False,
) -> str | None:
    """Why a job at ``assurance``, whose frames need ``checks`` different checkers
    (:func:`protocol.verification.checks_per_frame`), would wait, or be checked less than
    planned (``accept_short``: the level's ``verification.Level.accept_short``), with
    ``checkers_about`` checkers advertising; None when neither. ``hint``: how the reader
    lowers the assurance. The CLI prints it before it escrows, the API returns it with
    the job."""
    if checks == 0:
        return None
    if checkers_about == 0:
        return "no checker advertises yet: frames will wait for verification"
    if checkers_about < checks and accept_short:
        return (
            f"assurance {assurance} asks {checks} different checkers of a new worker's frame "
            f"and {checkers_about} advertise(s): such frames are accepted on "
            f"{checkers_about} checker's pass, less protection against a colluding checker"
        )
    if checkers_about < checks:
        return (
            f"assurance {assurance} asks {checks} different checkers of a frame and "
            f"{checkers_about} advertise(s): its frames wait for more checkers, or {hint}"
        )
    return None


def eligible(offers: Iterable[Offer], renderer_build: str) -> list[Offer]:
    """Offers that run the build, cheapest first (then fastest, then by name)."""
    runs = [o for o in offers if renderer_build in o.renderer_builds]
    return sorted(runs, key=lambda o: (o.ask_wei_per_frame, -o.score_ru_per_hour, o.worker))


def propose_max_price(
    offers: Iterable[Offer],
    renderer_build: str,
    frames: int,
    fee_bps: int,
    margin_bps: int = 1_000,
    checks: int = 1,
) -> PriceProposal | None:
    """The max price per frame that the cheapest offers covering ``frames`` accept.

    ``None`` when no offer runs the build: no price would draw a bid.
    """
    if frames < 1 or margin_bps < 0:
        raise ValueError("frames must be >= 1 and margin_bps >= 0")
    ranked = eligible(offers, renderer_build)
    if not ranked:
        return None
    covered = 0
    top_ask_wei = ranked[0].ask_wei_per_frame
    for offer in ranked:
        top_ask_wei = offer.ask_wei_per_frame
        covered += max(1, offer.free_slots)
        if covered >= frames:
            break
    max_price_wei = top_ask_wei + -(-top_ask_wei * margin_bps // BPS)
    if max_price_wei == 0:
        max_price_wei = 1  # a job's max price is positive; free workers still bid
    return PriceProposal(
        max_price_wei_per_frame=max_price_wei,
        workers=sum(1 for o in ranked if o.ask_wei_per_frame <= max_price_wei),
        cheapest_ask_wei=ranked[0].ask_wei_per_frame,
        estimate_wei=estimate_wei(frames, top_ask_wei, fee_bps, checks),
        budget_wei=budget_wei(frames, max_price_wei, fee_bps, checks),
    )

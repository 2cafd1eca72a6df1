"""When a requester slashes, and what its claimers sign: the fraud claim's plan.

Theory of operation
-------------------
The escrow (``ledger/contracts/Escrow.vy``) slashes a worker for one frame when
a quorum of registered, staked checkers sign an EIP-712 ``Fraud`` claim over
the worker's own signed Result (``Result.result_sig``). The node never slashes
on one checker's word: only when a *dispute* ends with the majority rejecting
the result (:class:`protocol.market.SlashDue`, from the job machine), and only
the checkers whose verdicts rejected it are asked to sign. Their ``tiles``
field commits to that evidence: the SHA-256 of the rejecting verdicts' body
digests (``protocol.market.records.verdict_digest_of``: a resent verdict
travels in a fresh envelope, but its body digest stays), sorted (:func:`tiles_commitment`), so a checker can see
its own verdict is among them, and the verdicts themselves, published with the
claim (``protocol.fraud_evidence``), tell an answering quorum
(``answer_claim``) which tiles to re-check.

A checker signs only a claim about a result it rejected itself
(:func:`may_sign`; a claim against another checker's pass of a plant:
``protocol.fraud_evidence.may_sign_pass``): the same job, task, frame and frame CID it judged, its own
verdict's digest in the commitment, and an amount no larger than it agreed to
put at risk. A claim the contract could not take (fewer rejecters than its
quorum) is not started (:func:`claim_possible`).
"""

from __future__ import annotations

import hashlib
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass

from protocol.messages import MAX_CLAIMERS, JobSpec
from protocol.verification import DEFAULT_POLICY, plan_check

TILES_DOMAIN = b"pictor/fraud-tiles/v1\x00"


def takeable_wei(active_wei: int, locked_wei: int, unbonding_wei: int) -> int:
    """What a claim could take from an account's stake, as the escrow's ``_open_claim``
    takes it: its free active stake (what backs its own pending claims stays with them)
    and its unbonding stake (still slashable until withdrawn). A checker that requests
    to unbond all it has after taking checks has nothing *active*, yet a claim on its
    passes still takes the cap: asking for active stake alone let it escape every claim."""
    return max(0, active_wei - locked_wei) + max(0, unbonding_wei)


def stake_held_wei(active_wei: int, unbonding_wei: int) -> int:
    """What an account holds that a claim on it takes now or later: its active stake,
    the part pending claims lock included (they release it, and an owed claim collects
    it then), and its unbonding stake. A pass claim is not started against an accused
    holding none (its claimers would re-render for nothing); asked of free stake alone,
    a checker that locked all of it behind claims it signed escaped every pass claim
    (review of stop 45)."""
    return max(0, active_wei) + max(0, unbonding_wei)


def signer_free_wei(amount_wei: int) -> int:
    """The free stake a claim's signer must hold to lock ``amount_wei`` (the escrow's
    ``_signers``: the amount and one cap more, the amount being the cap)."""
    return 2 * amount_wei


def may_back_claim(active_wei: int, locked_wei: int, amount_wei: int) -> bool:
    """Whether a registered checker's stake can back one more claim of ``amount_wei`` as a
    signer: the escrow locks ``amount_wei`` of each signer's *free* active stake and asks
    one cap more free besides (the amount is the cap: the escrow takes no other), and
    refuses the whole claim ("stake at risk too low") for one signer short of it. A
    checker whose stake other pending claims hold is no claimer, whatever it holds.

    Why the cap besides: a claim takes only an accused's free (and unbonding) stake, so a
    cheat that signed claims against its own sybils locked its stake away from the
    honest claim on its fake (tests/ledger/test_stake_shields.py); a signer now always
    leaves a claim on it the whole cap."""
    return active_wei - locked_wei >= signer_free_wei(amount_wei)


DEBT_S = 90 * 86400  # Escrow.DEBT_S: how long after its window an owed claim collects


def debt_open(now_s: int, settle_at_s: int) -> bool:
    """Whether the escrow still collects an executed claim that took less than its amount
    (``execute_slash`` again): until ``DEBT_S`` after its window (``settle_at_s``: a
    contested claim's is its last rung's; chain seconds). Not longer: an honest unstaked
    worker that a colluding quorum claimed while its node was offline would owe its first
    stake for good."""
    return now_s <= settle_at_s + DEBT_S


@dataclass(frozen=True)
class SlashSplit:
    """Where an upheld claim's taken stake goes (the escrow's ``_settle``), in wei."""

    burned_wei: int  # stays in the escrow, nobody's
    requester_wei: int  # the job's requester (rounding dust included)
    per_claimer_wei: int  # each position of the claim's side


def slash_split(taken_wei: int, claimers: int, forfeits_wei: int = 0) -> SlashSplit:
    """The escrow's split of an upheld claim: half of the ``taken_wei`` burned, of the
    rest a half to the requester and a half, with half of ``forfeits_wei`` (the losing
    answerers' locked stake; the other half burned), in equal parts to the claim side's
    ``claimers`` positions; the requester keeps the dust.

    Why burn: the slashed stake once went whole to the requester and the claimers, so a
    cheat whose friends, as requester and staked checkers, claimed junk results it signed
    and let the claims execute got every wei back, before the honest claim on its fake and
    sooner than unbonding allows (tests/ledger/test_stake_shields.py). Burned, that escape
    costs it half of what the friends took, and the honest claims stay owed for the rest
    (the escrow collects an executed claim's shortfall later: docs/VERIFICATION.md, "What
    a cheat's friends can do to its stake"). A collection of an owed claim splits the same
    way, with no forfeits."""
    if claimers <= 0:
        raise ValueError("a claim has at least one claimer")
    burned = taken_wei // 2
    kept = taken_wei - burned
    paid_forfeits = forfeits_wei // 2
    share = (kept // 2 + paid_forfeits) // claimers
    return SlashSplit(burned + forfeits_wei - paid_forfeits,
                      kept + paid_forfeits - share * claimers, share)  # fmt: skip


def worth_collecting(takeable_wei: int, owed_wei: int, claimers: int, gas_cost_wei: int) -> bool:
    """Whether the requester executes an owed claim again now: its part of what the
    collection would take (``min(takeable_wei, owed_wei)``, split by :func:`slash_split`)
    beats the transaction's ``gas_cost_wei``. A cheat staking a wei an hour made every
    owed claim send a collection that paid nothing (review of stop 45)."""
    if owed_wei <= 0 or claimers <= 0:
        return False
    return slash_split(min(takeable_wei, owed_wei), claimers).requester_wei > gas_cost_wei


@dataclass(frozen=True)
class AnswerSplit:
    """Where the claim side's forfeits go when the accused's answer stands (``_settle``)."""

    burned_wei: int
    accused_wei: int  # the rounding dust included
    per_answerer_wei: int  # each position of the accused's side


def answer_split(forfeits_wei: int, answerers: int) -> AnswerSplit:
    """The escrow's split of the claim side's locked stake when the accused's answer
    stands: half burned, of the rest a half in equal parts to the accused side's
    ``answerers`` positions and the rest to the accused. Why burn: a cheat that is a
    checker too signed claims against its own sybils and had friends answer them, so its
    locked stake went whole to the coalition as forfeits, out of reach of the honest
    claims on its fakes (review of stop 45)."""
    if answerers <= 0:
        raise ValueError("an answer has at least one answerer")
    paid = forfeits_wei // 2
    share = paid // 2 // answerers
    return AnswerSplit(forfeits_wei - paid, paid - share * answerers, share)


@dataclass(frozen=True)
class SignerStanding:
    """What the escrow holds of an account that might sign a claim."""

    registered: bool  # a registered checker (``is_checker``)
    active_wei: int
    locked_wei: int  # the part of ``active_wei`` other pending claims hold


def may_pick_claimer(
    address: bytes, standing: SignerStanding, *, barred: Collection[bytes], amount_wei: int
) -> bool:
    """Whether a requester may ask ``address`` to sign a claim of ``amount_wei`` (and count
    its signature when the claim goes out): not ``barred`` (the accused and the requester,
    whom the escrow refuses as signers; the node bars the task's worker too), registered,
    and with the amount and a cap more in free stake (:func:`may_back_claim`: one signer short of it and
    the escrow refuses the whole claim). The node's slasher picks and re-reads its signers
    by this rule, and the simulator picks its claimers by it."""
    return (
        address not in barred
        and standing.registered
        and may_back_claim(standing.active_wei, standing.locked_wei, amount_wei)
    )


def tiles_commitment(verdict_digests: Iterable[bytes]) -> bytes:
    """The claim's ``tiles``: SHA-256 over the rejecting verdicts' body digests, sorted."""
    return hashlib.sha256(TILES_DOMAIN + b"".join(sorted(verdict_digests))).digest()


def upheld_rejecters(dispute_checkers: int) -> int:
    """Rejecting verdicts a dispute of ``dispute_checkers`` carries when it upholds a
    rejection: the majority of its ``dispute_checkers + 1`` verdicts (the first
    checker's and the dispute's), and no more, since the dispute ends the moment a
    majority is reached. The escrow's default quorum is this number for the market's
    default dispute (``ledger.deploy.EscrowParams``): with a larger quorum no dispute
    could ever be claimed (docs/VERIFICATION.md, "Slashing quorum")."""
    return dispute_checkers // 2 + 1


def dispute_checkers_for(quorum: int) -> int:
    """The smallest dispute whose upheld rejection carries ``quorum`` rejecters."""
    return 2 * max(quorum - 1, 1)


def recheck_tiles(spec: JobSpec) -> int:
    """Tiles a checker re-renders before it signs a claimed worker's answer: what the
    job's check plan asks of a fresh worker (its largest ``k``, since a stake hangs on
    it), at most the frame's cells."""
    tile_px = DEFAULT_POLICY.sampling.tile_px
    s = spec.settings
    cells = -(-s.resolution_x // tile_px) * -(-s.resolution_y // tile_px)
    return max(1, min(plan_check(spec.assurance, 0.0).k, cells))


def claim_window_open(
    now_s: int, redeem_until_s: int, answered_settle_at_s: int | None = None, challenge_s: int = 0
) -> bool:
    """Whether the escrow still opens a claim on a result of a job, as its ``_open_claim``
    decides: while the job's vouchers pay, ``now_s <= redeem_until_s`` (its deadline, as
    top-ups last pushed it, + GRACE_S; ``Secured.redeem_until_s``; chain seconds); and a
    frame whose last claim was answered (the answer's window over at
    ``answered_settle_at_s``: ``ClaimState.settle_at_s`` of an answered claim) for one
    challenge window more, so the accused's friends' claim and answer cannot hold a frame
    past the job's window."""
    reopened = answered_settle_at_s is not None and now_s <= answered_settle_at_s + challenge_s
    return now_s <= redeem_until_s or reopened


def claim_top_up_deadline_s(
    now_s: int, redeem_until_s: int, grace_s: int, open_for_s: int,
    latest_deadline_s: int | None = None,
) -> int | None:  # fmt: skip
    """The deadline a requester's top-up gives its job so that a claim it starts gathering
    now may still open ``open_for_s`` from now: the escrow opens one through deadline +
    grace (``claim_window_open``), so a dispute that ended near it, or a deployment with no
    grace, lost its claim (stop 27's review, finding 7). None when the window lasts that
    long already, or is over (the escrow takes no top-up then: "job expired"). The top-up
    pushes it to twice ``open_for_s``, so a gather re-checking at each resend tops up once,
    not at every resend. The
    deadline is at least ``open_for_s`` ahead: the escrow takes only a deadline after its
    block's time, which is past ``now_s`` (with a long grace, 24 h by default, a deadline
    a second ahead was refused: "deadline passed"), so with a grace longer than
    ``open_for_s`` the window moves on by about that grace. ``latest_deadline_s``: the
    furthest deadline the escrow takes for the job (its first deposit's minute +
    MAX_JOB_S; "deadline too far" beyond it): the top-up goes at most that far, and not
    at all when that pushes nothing (the job's deadline is there already, or it has
    passed)."""
    if redeem_until_s >= now_s + open_for_s or not claim_window_open(now_s, redeem_until_s):
        return None
    deadline_s = max(now_s + 2 * open_for_s - grace_s, now_s + open_for_s)
    if latest_deadline_s is None or deadline_s <= latest_deadline_s:
        return deadline_s
    if latest_deadline_s <= max(now_s, redeem_until_s - grace_s):
        return None
    return latest_deadline_s


def claim_watch_ends_s(redeem_until_s: int, challenge_s: int) -> int:
    """When the signer of a result (or pass) of that job may stop watching it for claims:
    the last second a claim can open, plus the challenge window it would have to be
    answered in, plus the answer's own window (an answer stands, and is closed, only
    after it; a larger quorum may overturn it before). Before letting a result go, the
    watch reads the deadline again: a top-up inside the window pushes it later (after
    the window, the escrow refuses top-ups)."""
    return redeem_until_s + 2 * challenge_s


def claim_side(claimers: Iterable[bytes], ladder: Sequence[Sequence[bytes]]) -> frozenset[bytes]:
    """Who signed for a contested claim (the escrow's ``_on_side``): its claimers and the
    signers of its odd rungs (``Fraud``). Nobody may sign for both sides."""
    return frozenset(claimers) | frozenset(a for rung in ladder[1::2] for a in rung)


def accused_side(ladder: Sequence[Sequence[bytes]]) -> frozenset[bytes]:
    """Who signed against a contested claim: the signers of its even rungs (``Clean``;
    rung 0 is the accused's answer)."""
    return frozenset(a for rung in ladder[0::2] for a in rung)


def claim_positions(
    claimers: Iterable[bytes], ladder: Sequence[Sequence[bytes]]
) -> frozenset[bytes]:
    """Everyone who holds a position on a claim, on either side: its claimers and every
    rung's signers. A frame reopened after an answer stood is claimed again with picked
    checkers; none of them is one of these (the answer's signers are the accused's side,
    and a junk claim's signers may be its friends too: either way not a pick that judges)."""
    return claim_side(claimers, ladder) | accused_side(ladder)


def accused_climbs_next(ladder: Sequence[Sequence[bytes]]) -> bool:
    """Whether the next rung of a claim's ladder is the accused's (``Clean``): while there
    is none (the answer), and after each of the claim's rungs."""
    return len(ladder) % 2 == 0


def claim_possible(rejecters: int, quorum: int) -> bool:
    """The contract takes a claim of at least ``quorum`` signers (and fewer than its
    MAX_SIGNERS, which the dispute sizes keep far below)."""
    return quorum > 0 and rejecters >= quorum


def claim_needs(quorum: int, claim_round: int) -> int | None:
    """Signers a claim of round ``claim_round`` needs (``Fraud.round``: the size of the
    answer that ended the frame's last claim, 0 for its first): the escrow's quorum and
    more than that answer had; None when no claim can have that many (it takes fewer
    than ``MAX_CLAIMERS``)."""
    need = max(quorum, claim_round + 1)
    return need if need < MAX_CLAIMERS else None


@dataclass(frozen=True)
class Rejection:
    """What a checker remembers of a verdict that rejected a result."""

    frame: int
    frame_cid: str
    verdict_digest: bytes


def may_sign(
    rejection: Rejection | None, frame: int, frame_cid: str, verdict_digests: Iterable[bytes],
    amount_wei: int, max_at_risk_wei: int,
) -> str:  # fmt: skip
    """Why a checker must not sign this fraud claim ("" when it may)."""
    if rejection is None:
        return "we did not reject this task's result"
    if (rejection.frame, rejection.frame_cid) != (frame, frame_cid):
        return "the claim names another result than the one we rejected"
    if rejection.verdict_digest not in set(verdict_digests):
        return "our verdict is not among the claim's evidence"
    return at_risk_refusal(amount_wei, max_at_risk_wei)


def at_risk_refusal(amount_wei: int, max_at_risk_wei: int) -> str:
    """Why a claim for ``amount_wei`` must not carry our signature ("" when it may):
    the escrow locks that much of each signer's stake until the claim ends. Every claim
    a checker signs (a worker's fraud, another checker's pass) asks this."""
    if not 0 < amount_wei <= max_at_risk_wei:
        return "the claim puts more of our stake at risk than we allow"
    return ""

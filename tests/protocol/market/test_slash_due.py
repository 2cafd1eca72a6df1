"""A dispute whose majority rejects a signed result of an escrowed job makes the
requester's machine claim the worker's stake (SlashDue); nothing else does."""

from __future__ import annotations

from ledger.deploy import EscrowParams
from ledger.fraud import result_ref, result_signer, sign
from protocol.market import MarketConfig, SlashDue, TaskState
from protocol.market.records import verdict_digest_of
from protocol.messages import Verdict
from protocol.slashing import (
    DEBT_S,
    Rejection,
    SignerStanding,
    accused_climbs_next,
    accused_side,
    claim_needs,
    claim_possible,
    claim_side,
    claim_top_up_deadline_s,
    claim_watch_ends_s,
    claim_window_open,
    debt_open,
    dispute_checkers_for,
    may_pick_claimer,
    may_sign,
    tiles_commitment,
    upheld_rejecters,
    worth_collecting,
)
from tests.protocol.market.harness import MarketHarness
from tests.protocol.market.test_result_sig import ESCROW, cid_of

WINDOW_MS = MarketConfig().bid_window_ms
CID = cid_of(b"a frame")


def disputed(*, escrowed: bool = True, signed: bool = True) -> tuple[MarketHarness, bytes]:
    harness = MarketHarness(frames=(1,), checkers=4, escrow=ESCROW if escrowed else None,
                            result_signer=result_signer)  # fmt: skip
    harness.start()
    harness.advance(WINDOW_MS)
    (task_id,) = harness.renders
    sig = None
    if escrowed and signed:
        ref = result_ref(harness.spec, harness.job_id, task_id, 1, CID)
        assert ref is not None
        sig = sign(ref, harness.payment_keys[harness.renders[task_id]])
    harness.finish_render(task_id, cid=CID if escrowed else "bafkreiframe", result_sig=sig)
    harness.verdict(task_id, False)
    harness.dispute(task_id)
    assert harness.job.task_state(task_id) is TaskState.DISPUTED
    return harness, task_id


def verdicts_sent(harness: MarketHarness, task_id: bytes) -> dict[bytes, Verdict]:
    return {c: v for c, v in harness.verdicts if v.task_id == task_id}


def test_an_upheld_dispute_claims_the_signed_result_of_its_rejecters() -> None:
    harness, task_id = disputed()
    harness.dispute_verdict(0, False)  # 2 of 3 reject: upheld by a majority
    (due,) = harness.commands(SlashDue)
    assert isinstance(due, SlashDue)
    task = harness.job._tasks[task_id]
    first = next(iter(task.checkers - task.dispute_checkers))
    second = harness.dispute_requests[0][0]
    assert due.rejecters == (first, second)
    assert due.worker == task.worker and due.worker_address == task.payee_address
    assert (due.frame, due.frame_cid, due.result_sig) == (1, CID, task.result.result_sig)  # type: ignore[union-attr]
    sent = verdicts_sent(harness, task_id)
    assert due.verdict_digests == (verdict_digest_of(sent[first]), verdict_digest_of(sent[second]))


def test_the_default_escrow_takes_what_a_default_dispute_upholds() -> None:
    """The rejecters an upheld default dispute names reach the default escrow's quorum
    (it was 3 against 2 rejecters: no claim could ever be made), and for any dispute
    size the smallest dispute for a quorum upholds with that many rejecters."""
    harness, _ = disputed()
    harness.dispute_verdict(0, False)
    (due,) = harness.commands(SlashDue)
    assert isinstance(due, SlashDue)
    quorum = EscrowParams().slash_quorum
    assert len(due.rejecters) == upheld_rejecters(MarketConfig().dispute_checkers) == quorum
    assert claim_possible(len(due.rejecters), quorum)
    for q in range(1, 6):
        assert upheld_rejecters(dispute_checkers_for(q)) >= q
        assert q == 1 or upheld_rejecters(dispute_checkers_for(q) - 2) < q  # the smallest


def test_no_claim_without_a_majority_rejecting_a_signed_escrowed_result() -> None:
    overturned, _ = disputed()
    overturned.dispute_verdict(0, True)
    overturned.dispute_verdict(1, True)
    timed_out, _ = disputed()
    timed_out.dispute_verdict(0, True)
    timed_out.advance(MarketConfig().verify_timeout_ms)  # upheld, but by no majority
    unescrowed, _ = disputed(escrowed=False)
    unescrowed.dispute_verdict(0, False)
    for harness in (overturned, timed_out, unescrowed):
        assert harness.commands(SlashDue) == []


def test_a_checker_signs_only_what_it_rejected() -> None:
    mine = b"\x01" * 32
    rejection = Rejection(1, CID, mine)
    others = [b"\x02" * 32, mine]
    assert may_sign(rejection, 1, CID, others, 10, 10) == ""
    assert may_sign(None, 1, CID, others, 10, 10)
    assert may_sign(rejection, 2, CID, others, 10, 10)  # another frame
    assert may_sign(rejection, 1, cid_of(b"other"), others, 10, 10)  # another result
    assert may_sign(rejection, 1, CID, [b"\x02" * 32], 10, 10)  # our verdict left out
    assert may_sign(rejection, 1, CID, others, 11, 10)  # more at risk than allowed
    assert may_sign(rejection, 1, CID, others, 0, 10)
    assert tiles_commitment(others) == tiles_commitment(reversed(others))
    assert tiles_commitment(others) != tiles_commitment([mine])
    assert claim_possible(3, 3) and not claim_possible(2, 3) and not claim_possible(5, 0)
    # a claim needs the quorum and more than the last answer, and fewer than MAX_CLAIMERS
    assert (claim_needs(2, 0), claim_needs(2, 3), claim_needs(2, 14)) == (2, 4, 15)
    assert claim_needs(2, 15) is None and claim_needs(16, 0) is None


def test_the_claim_window_is_the_escrows_and_the_watch_outlasts_it() -> None:
    """As Escrow._open_claim decides (its last second: tests/ledger/test_claim_window.py):
    open through deadline + grace; the signer watches two challenge windows beyond it (a
    last-second claim's, and its answer's)."""
    assert claim_window_open(1_000 + 600, 1_000 + 600)
    assert not claim_window_open(1_000 + 601, 1_000 + 600)
    ends = claim_watch_ends_s(1_000 + 600, 900)
    assert ends == 3_400 and not claim_window_open(ends - 2 * 900 + 1, 1_000 + 600)
    # a frame whose last claim was answered (its answer's window over at 5_000) is open to
    # a larger claim for one challenge window more, past the job's window (Escrow's
    # `reopened`; tests/ledger/test_sybil_answer.py meets it on the contract)
    assert claim_window_open(5_900, 1_600, 5_000, 900)
    assert not claim_window_open(5_901, 1_600, 5_000, 900)
    assert claim_window_open(1_600, 1_600, 500, 900)  # the job's window still counts


def test_a_claim_window_ending_before_a_gather_is_pushed_by_a_top_up() -> None:
    """node.roles.slasher tops its job up to this deadline (stop 27's finding 7): the
    window then lasts twice what a gather needs; none while it lasts that long, or is over."""
    # 100 s left of the window (deadline 1_000, grace 600), a gather needs 660 s
    deadline = claim_top_up_deadline_s(1_500, 1_600, 600, 660)
    assert deadline == 1_500 + 2 * 660 - 600
    assert claim_window_open(1_500 + 660, deadline + 600)
    assert claim_top_up_deadline_s(1_500, 1_500 + 660, 600, 660) is None  # long enough
    assert claim_top_up_deadline_s(1_601, 1_600, 600, 660) is None  # over: no top-up taken
    assert claim_top_up_deadline_s(1_000, 1_000, 0, 660) == 1_000 + 2 * 660  # no grace
    # the default 24 h grace: a deadline 660 s ahead, never one the next block has passed
    # (this stop's review: it was now + 1, which the escrow refused)
    assert claim_top_up_deadline_s(100_000, 100_500, 86_400, 660) == 100_000 + 660
    # the escrow's MAX_JOB_S: never past the furthest deadline it takes ("deadline too
    # far"), and no top-up when that pushes nothing
    assert claim_top_up_deadline_s(1_500, 1_600, 600, 660, 10**9) == 1_500 + 2 * 660 - 600
    assert claim_top_up_deadline_s(1_500, 1_600, 600, 660, 1_800) == 1_800
    assert claim_top_up_deadline_s(1_500, 1_600, 600, 660, 1_000) is None  # at the deadline
    assert claim_top_up_deadline_s(1_500, 1_600, 50, 660, 1_500) is None  # at the chain's now


def test_who_may_sign_a_claim_is_one_rule_for_node_and_simulator() -> None:
    """node.roles.requester picks and node.roles.slasher re-reads its signers by it;
    simulations.pass_claims picks its claimers by it."""
    me, accused = b"\x01" * 20, b"\x02" * 20
    barred = frozenset({accused})
    # the amount, and a cap (the amount) more kept free: the escrow's signer rule
    assert may_pick_claimer(me, SignerStanding(True, 20, 0), barred=barred, amount_wei=10)
    assert not may_pick_claimer(me, SignerStanding(True, 19, 0), barred=barred, amount_wei=10)
    assert not may_pick_claimer(accused, SignerStanding(True, 20, 0), barred=barred, amount_wei=10)
    assert not may_pick_claimer(me, SignerStanding(False, 20, 0), barred=barred, amount_wei=10)
    assert not may_pick_claimer(me, SignerStanding(True, 20, 1), barred=barred, amount_wei=10)


def test_the_sides_of_a_claims_ladder_are_one_rule_for_both_nodes() -> None:
    """node.roles.answerer and node.roles.slasher read whose turn it is and who may not
    sign by these (the escrow's ``_on_side``): rung 0 and every even rung are the
    accused's, the claimers and every odd rung the claim's."""
    claimers, ladder = (b"c1", b"c2"), ((b"a1", b"a2", b"a3"), (b"c1", b"f1", b"f2", b"f3"))
    assert claim_side(claimers, ladder) == {b"c1", b"c2", b"f1", b"f2", b"f3"}
    assert accused_side(ladder) == {b"a1", b"a2", b"a3"}
    assert accused_climbs_next(()) and not accused_climbs_next(ladder[:1])
    assert accused_climbs_next(ladder) and claim_side(claimers, ()) == set(claimers)


def test_an_owed_claim_is_collected_only_when_the_requesters_part_beats_the_gas() -> None:
    """Review of stop 45: a cheat staking a wei an hour made every owed claim send a
    collection paying nothing. The requester's part is a quarter of what it takes."""
    gas = 180_000 * 10**9
    assert worth_collecting(10**17, 10**17, 2, gas)
    assert not worth_collecting(1, 10**17, 2, gas)  # a wei staked
    assert not worth_collecting(4 * gas, 10**17, 2, gas)  # a quarter of it: the gas, no more
    assert worth_collecting(4 * gas + 4, 10**17, 2, gas)
    assert not worth_collecting(10**18, 0, 2, gas)  # nothing owed


def test_an_owed_claim_collects_until_debt_s_after_its_window_as_the_escrow_does() -> None:
    """Escrow.execute_slash: ``block.timestamp <= settle_at + DEBT_S`` (stop 45)."""
    assert debt_open(1_000 + DEBT_S, 1_000) and not debt_open(1_001 + DEBT_S, 1_000)

"""Stake, unbonding, checker registration and two-phase slashing (claim, window, execute
or answer), on the real contract. Each attack test failed on the one-step ``slash`` it replaced."""

from __future__ import annotations

import os
from typing import Any

import pytest
from eth_account import Account
from eth_utils.crypto import keccak

from ledger.client import (
    CLAIM_ANSWERED,
    CLAIM_CONTESTED,
    CLAIM_EXECUTED,
    CLAIM_PENDING,
    LOG_RANGE_BLOCKS,
    EscrowClient,
)
from ledger.errors import ChainRevert
from ledger.fraud import (
    CleanAnswer,
    FraudClaim,
    ResultRef,
    claim_commit,
    claim_id,
    order_signatures,
    sign,
    signable,
)
from ledger.tx import TxSender
from ledger.vouchers import split_signature
from protocol.fraud_evidence import claimed_verdicts, pack_evidence
from protocol.market.records import verdict_digest_of
from protocol.messages import TileEvidence, Verdict
from protocol.slashing import answer_split, slash_split, tiles_commitment
from tests.ledger.conftest import (
    CHALLENGE_S,
    CHECKER_MIN_STAKE_WEI,
    ETHER,
    FAST_TX,
    SLASH_CAP_WEI,
    UNBONDING_S,
    Env,
)

TILES = bytes(range(32))  # the claimers' commitment to the tiles they re-rendered


def reverts(reason: str, fn: object, *args: object) -> None:
    with pytest.raises(ChainRevert) as info:
        fn(*args)  # type: ignore[operator]
    assert info.value.reason == reason


# The checker minimum and a cap more: a signer keeps a cap free besides what it locks, so
# each can sign two claims at once (test_signers_put_their_own_stake_at_risk).
SIGNER_STAKE_WEI = CHECKER_MIN_STAKE_WEI + SLASH_CAP_WEI


def register(checkers: list[EscrowClient], stake_wei: int = SIGNER_STAKE_WEI) -> None:
    for c in checkers:
        c.send(c.calls.stake(stake_wei))
        c.send(c.calls.register_checker())


def result_of(env: Env, job_id: bytes, frame: int = 1, content: bytes = b"frame") -> ResultRef:
    return ResultRef(env.chain.chain_id, env.contract_bytes, env.requester.account, job_id,
                     b"\x07" * 32, frame, content.ljust(32, b"\0"))  # fmt: skip


def claim_for(env: Env, ref: ResultRef, worker: EscrowClient, amount_wei: int) -> FraudClaim:
    return FraudClaim(ref, worker.account, TILES, amount_wei)


def signed(env: Env, message: object, signers: list[EscrowClient]) -> list[bytes]:
    return order_signatures(message, [sign(message, env.key_of(s)) for s in signers])  # type: ignore[arg-type]


def open_claim(env: Env, claim: FraudClaim, claimers: list[EscrowClient],
               result_signer: EscrowClient | None = None) -> None:  # fmt: skip
    """Submit ``claim`` with the worker's own Result signature (or ``result_signer``'s)."""
    worker = result_signer or next(w for w in env.workers if w.account == claim.worker)
    worker_sig = sign(claim.ref, env.key_of(worker))
    env.outsider.send(env.outsider.calls.claim_fraud(claim, worker_sig, signed(env, claim, claimers)))


def ordered(clients: list[EscrowClient]) -> list[bytes]:
    return sorted(c.account for c in clients)


def staked_job(env: Env, worker: EscrowClient, stake_wei: int) -> bytes:
    job_id = os.urandom(32)
    env.requester.deposit(job_id, ETHER, env.deadline_in(3600))
    worker.send(worker.calls.stake(stake_wei))
    return job_id


def test_unbonding_delay(env: Env) -> None:
    worker = env.workers[0]
    worker.send(worker.calls.stake(3 * ETHER))
    reverts("bad amount", worker.send, worker.calls.request_unbond(4 * ETHER))
    reverts("nothing unbonding", worker.send, worker.calls.withdraw_stake())
    worker.send(worker.calls.request_unbond(2 * ETHER))
    st = worker.stake_of(worker.account)
    assert (st.active_wei, st.unbonding_wei) == (ETHER, 2 * ETHER)
    assert st.unbond_at_s == env.chain.timestamp_s() + UNBONDING_S
    env.chain.advance_time(UNBONDING_S - 2)
    reverts(
        "still unbonding", worker.send, worker.calls.withdraw_stake()
    )  # simulated at unbond_at - 1
    env.chain.advance_time(2)  # a block at unbond_at: simulation and inclusion both allowed
    before = worker.balance_wei()  # the escrow's balance
    worker.send(worker.calls.withdraw_stake())
    assert before - worker.balance_wei() == 2 * ETHER
    assert worker.stake_of(worker.account).unbonding_wei == 0


def test_checker_registration_needs_stake(env: Env) -> None:
    checker = env.checkers[0]
    reverts("stake too low", checker.send, checker.calls.register_checker())
    register([checker])
    assert checker.is_checker(checker.account)


def test_checker_flag_cleared_when_active_stake_drops_under_minimum(env_fast: Env) -> None:
    env = env_fast
    checker = env.checkers[0]
    register([checker], CHECKER_MIN_STAKE_WEI + 10)
    checker.send(checker.calls.request_unbond(10))  # still at the minimum
    assert checker.is_checker(checker.account)
    checker.send(checker.calls.request_unbond(1))
    assert not checker.is_checker(checker.account)
    # A worker that is also a checker loses the flag when a slash takes it under the minimum.
    worker = env.workers[0]
    job_id = staked_job(env, worker, CHECKER_MIN_STAKE_WEI)
    worker.send(worker.calls.register_checker())
    register(env.checkers[1:3])
    open_claim(env, claim_for(env, result_of(env, job_id), worker, SLASH_CAP_WEI), env.checkers[1:3])
    assert not worker.is_checker(worker.account)


def test_uninvolved_worker_cannot_be_slashed(env_fast: Env) -> None:
    """A quorum accuses a staked worker that never delivered this result."""
    env = env_fast
    bystander, cheat = env.workers[2], env.workers[0]
    job_id = staked_job(env, bystander, ETHER)
    register(env.checkers[:2])
    ref = result_of(env, job_id)
    claim = claim_for(env, ref, bystander, SLASH_CAP_WEI)
    send, calls = env.outsider.send, env.outsider.calls
    quorum = signed(env, claim, env.checkers[:2])
    for forger in (env.checkers[0], env.requester, cheat):  # nobody signs for the bystander
        forged = sign(ref, env.key_of(forger))
        reverts("not the worker's result", send, calls.claim_fraud(claim, forged, quorum))
    # The bystander's own signature over another result (another frame, another digest).
    for other in (result_of(env, job_id, frame=2), result_of(env, job_id, content=b"other")):
        theirs = sign(other, env.key_of(bystander))
        reverts("not the worker's result", send, calls.claim_fraud(claim, theirs, quorum))
    assert bystander.stake_of().active_wei == ETHER


def test_claim_executes_after_the_window_and_splits(env: Env) -> None:
    worker = env.workers[0]
    job_id = staked_job(env, worker, 4 * ETHER)
    register(env.checkers[:2])
    claim = claim_for(env, result_of(env, job_id), worker, SLASH_CAP_WEI)
    open_claim(env, claim, env.checkers[:2])
    assert worker.stake_of().active_wei == 4 * ETHER - SLASH_CAP_WEI  # held by the claim
    state = env.outsider.claim(claim.ref, worker.account)
    assert (state.status, state.taken_wei) == (CLAIM_PENDING, SLASH_CAP_WEI)
    for c in env.checkers[:2]:
        assert c.stake_of().locked_wei == SLASH_CAP_WEI
    claimers = ordered(env.checkers[:2])
    execute = env.outsider.calls.execute_slash(claim, claimers)
    reverts("challenge window open", env.outsider.send, execute)
    reverts("already claimed", open_claim, env, claim, env.checkers[:2])
    env.chain.advance_time(CHALLENGE_S)
    reverts("wrong claim", env.outsider.send,
            env.outsider.calls.execute_slash(claim, claimers[::-1]))  # fmt: skip
    env.outsider.send(execute)
    assert env.outsider.claim(claim.ref, worker.account).status == CLAIM_EXECUTED
    # half burned, a quarter to the requester, a quarter shared by the claimers
    split = slash_split(SLASH_CAP_WEI, 2)
    assert (split.burned_wei, split.requester_wei, split.per_claimer_wei) == (
        SLASH_CAP_WEI // 2, SLASH_CAP_WEI // 4, SLASH_CAP_WEI // 8)  # fmt: skip
    assert env.requester.credit_wei(env.requester.account) == split.requester_wei
    for c in env.checkers[:2]:
        assert c.credit_wei(c.account) == split.per_claimer_wei
        assert c.stake_of().locked_wei == 0
    before = env.outsider.balance_wei()
    checker = env.checkers[0]
    checker.send(checker.calls.withdraw_credit())
    assert before - env.outsider.balance_wei() == split.per_claimer_wei  # left the escrow
    # executed for its whole amount: executing again takes and pays nothing more
    credit = env.requester.credit_wei(env.requester.account)
    env.outsider.send(execute)
    assert env.requester.credit_wei(env.requester.account) == credit
    assert worker.stake_of().active_wei == 4 * ETHER - SLASH_CAP_WEI


def test_slash_is_capped_per_frame(env_fast: Env) -> None:
    env = env_fast
    worker = env.workers[0]
    job_id = staked_job(env, worker, 100 * ETHER)
    register(env.checkers[:2], 100 * ETHER)
    ref = result_of(env, job_id)
    for amount_wei in (100 * ETHER, SLASH_CAP_WEI + 1, SLASH_CAP_WEI - 1, 0):  # the cap, exactly
        reverts("amount is not the cap", open_claim, env, claim_for(env, ref, worker, amount_wei),
                env.checkers[:2])  # fmt: skip
    for frame in (1, 2):  # each frame is its own claim, each capped
        open_claim(env, claim_for(env, result_of(env, job_id, frame), worker, SLASH_CAP_WEI),
                   env.checkers[:2])  # fmt: skip
    assert worker.stake_of().active_wei == 100 * ETHER - 2 * SLASH_CAP_WEI


def test_signers_put_their_own_stake_at_risk(env_fast: Env) -> None:
    env = env_fast
    worker = env.workers[0]
    job_id = staked_job(env, worker, 10 * ETHER)
    # the minimum and a cap: 1.5 ether each, cap 0.5 ether; a signer locks the amount and
    # keeps a cap more free (a claim on it takes the whole cap, whatever it signed)
    register(env.checkers[:2])
    open_claim(env, claim_for(env, result_of(env, job_id, 1), worker, SLASH_CAP_WEI),
               env.checkers[:2])  # fmt: skip
    c = env.checkers[0]
    assert c.stake_of().free_wei == CHECKER_MIN_STAKE_WEI
    reverts("bad amount", c.send, c.calls.request_unbond(CHECKER_MIN_STAKE_WEI + 1))  # locked
    open_claim(env, claim_for(env, result_of(env, job_id, 2), worker, SLASH_CAP_WEI),
               env.checkers[:2])  # fmt: skip
    assert c.stake_of().free_wei == SLASH_CAP_WEI  # a cap left free: no more claims
    reverts("stake at risk too low", open_claim, env,
            claim_for(env, result_of(env, job_id, 3), worker, SLASH_CAP_WEI), env.checkers[:2])  # fmt: skip


def test_false_claim_is_answered_by_a_larger_quorum(env: Env) -> None:
    worker, honest = env.workers[0], env.checkers[2:5]
    job_id = staked_job(env, worker, 2 * ETHER)
    liars = env.checkers[:2]
    register(liars)
    register(honest)
    claim = claim_for(env, result_of(env, job_id), worker, SLASH_CAP_WEI)
    open_claim(env, claim, liars)
    answer, claimers = claim.answer, ordered(liars)
    vote = answer.rung(claimers, 0)  # what the answer's signers sign
    # What the worker's node reads to answer: the claim's tiles and claimers, logged by
    # FraudClaimed and matching the claim's commitment (none for an unclaimed result).
    evidence = worker.claim_evidence(claim.ref, worker.account)
    assert evidence is not None and (evidence.tiles, list(evidence.claimers)) == (TILES, claimers)
    assert worker.claim_evidence(result_of(env, job_id, 2), worker.account) is None
    send, calls = env.outsider.send, env.outsider.calls
    reverts("quorum not larger", send, calls.answer_claim(answer, claimers, signed(env, vote, honest[:2])))
    mixed = signed(env, vote, [*honest[:2], liars[0]])
    reverts("signed for the other side", send, calls.answer_claim(answer, claimers, mixed))
    other_tiles = type(answer)(answer.ref, answer.worker, bytes(32))
    reverts("wrong claim", send, calls.answer_claim(other_tiles, claimers, signed(env, other_tiles.rung(claimers, 0), honest)))
    # signatures over anything but this claim's rung 0 recover to strangers
    for other in (claim, answer.rung(claimers, 2), answer.rung(claimers[:1], 0)):  # another claim's
        reverts("not a checker", send, calls.answer_claim(answer, claimers, signed(env, other, honest)))
    send(calls.answer_claim(answer, claimers, signed(env, vote, honest)))
    # The answer contests the claim: its signers lock the amount, and it stands only
    # after a window in which a larger quorum could overturn it.
    state = env.outsider.claim(claim.ref, worker.account)
    assert (state.status, state.answered_by) == (CLAIM_CONTESTED, 3)
    assert worker.ladder(claim.ref, worker.account) == (tuple(ordered(honest)),)
    assert all(h.stake_of().locked_wei == SLASH_CAP_WEI for h in honest)
    assert worker.stake_of().active_wei == 2 * ETHER - SLASH_CAP_WEI  # still held
    reverts("challenge window open", send, calls.settle_contest(answer, claimers, [ordered(honest)]))
    stand(env, answer, claimers, ordered(honest))
    assert env.outsider.claim(claim.ref, worker.account).status == CLAIM_ANSWERED
    # what a slasher reopening the frame reads (its picks leave out every position on the
    # claim that stood): the answered claim's ladder and evidence, still found
    assert worker.ladder(claim.ref, worker.account) == (tuple(ordered(honest)),)
    assert worker.claim_evidence(claim.ref, worker.account) == evidence
    outsider_evidence = env.outsider.claim_evidence(claim.ref, worker.account)  # no cache
    assert outsider_evidence is not None and list(outsider_evidence.claimers) == claimers
    assert worker.stake_of().active_wei == 2 * ETHER
    assert all(h.stake_of().locked_wei == 0 for h in honest)
    penalty = 2 * SLASH_CAP_WEI
    for liar in liars:
        st = liar.stake_of()
        assert (st.active_wei, st.locked_wei) == (SIGNER_STAKE_WEI - SLASH_CAP_WEI, 0)
    split = answer_split(penalty, 3)  # half of the liars' forfeit burned
    assert split.per_answerer_wei == penalty // 4 // 3
    for h in honest:
        assert h.credit_wei(h.account) == split.per_answerer_wei
    assert worker.credit_wei(worker.account) == split.accused_wei == penalty // 2 - 3 * split.per_answerer_wei
    env.chain.advance_time(CHALLENGE_S)
    reverts("no pending claim", send, calls.execute_slash(claim, claimers))


def stand(env: Env, answer: CleanAnswer, claimers: list[bytes], answerers: list[bytes]) -> None:
    """Let an answer's window pass, nobody outnumbering it, and settle: the answer stands."""
    env.chain.advance_time(CHALLENGE_S)
    reverts("wrong ladder", env.outsider.send, env.outsider.calls.settle_contest(
        answer, claimers, [answerers[:-1]]))  # fmt: skip
    env.outsider.send(env.outsider.calls.settle_contest(answer, claimers, [answerers]))


def test_a_claim_publishes_its_evidence_after_the_arguments(env_fast: Env) -> None:
    """The slasher's rejecting verdicts ride in claim_fraud's calldata after the ABI
    arguments (protocol.fraud_evidence): the contract takes the claim unchanged, and any
    node reads them back from the chain, checked against the claim's ``tiles``."""
    env = env_fast
    worker = env.workers[0]
    job_id = staked_job(env, worker, 4 * ETHER)
    register(env.checkers[:2])
    ref = result_of(env, job_id)
    verdicts = [rejecting_verdict(ref, i) for i in range(2)]
    blob = pack_evidence(verdicts)
    tiles = tiles_commitment(verdict_digest_of(v) for v in verdicts)
    claim = FraudClaim(ref, worker.account, tiles, SLASH_CAP_WEI)
    worker_sig = sign(claim.ref, env.key_of(worker))
    sigs = signed(env, claim, env.checkers[:2])
    receipt = env.outsider.send(env.outsider.calls.claim_fraud(claim, worker_sig, sigs, blob))
    evidence = worker.claim_evidence(ref, worker.account)
    assert evidence is not None and evidence.tiles == tiles and evidence.published == blob
    found = claimed_verdicts(evidence.published, tiles, ref.job_id, ref.task_id, ref.frame)
    assert found == tuple(verdicts)
    # a claim without evidence publishes none (and costs less: the calldata)
    plain = FraudClaim(result_of(env, job_id, 2), worker.account, tiles, SLASH_CAP_WEI)
    bare = env.outsider.send(env.outsider.calls.claim_fraud(
        plain, sign(plain.ref, env.key_of(worker)), signed(env, plain, env.checkers[:2])))  # fmt: skip
    bare_evidence = worker.claim_evidence(plain.ref, worker.account)
    assert bare_evidence is not None and bare_evidence.published == b""
    print(f"claim_fraud gas: {bare['gasUsed']} bare, {receipt['gasUsed']} with "
          f"{len(blob)} bytes of evidence")  # fmt: skip


def rejecting_verdict(ref: ResultRef, checker: int, tiles: int = 24) -> Verdict:
    """A dispute-sized rejecting verdict (the default plan's 24 fresh tiles)."""
    evidence = tuple(TileEvidence(16 * (i % 8), 16 * (i // 8), 16, 16, 21_000, 255)
                     for i in range(tiles))  # fmt: skip
    return Verdict(ref.job_id, ref.task_id, ref.frame, bytes([checker]) * 32, bytes(32), False,
                   bytes([9 + checker]) * 32, evidence, "blender-4.2", "cpu",
                   tuple(bytes([i]) * 32 for i in range(tiles)))  # fmt: skip


def test_requests_naming_other_frames_of_a_claim_read_its_logs_once(env_fast: Env) -> None:
    """Review of stop 44: a claim's id leaves the frame out, so a re-check request naming
    a made-up frame of a claimed result passes the "no claim" test, and each new frame
    cost a binary search for the claim's block and its log reads. The claim's events are
    read once; another frame only fails to match them."""
    env = env_fast
    worker = env.workers[0]
    job_id = staked_job(env, worker, 4 * ETHER)
    register(env.checkers[:2])
    claim = claim_for(env, result_of(env, job_id), worker, SLASH_CAP_WEI)
    open_claim(env, claim, env.checkers[:2])
    reads = []
    logs = worker._claim_logs

    def counted(*args: Any) -> Any:
        reads.append(args)
        return logs(*args)

    worker._claim_logs = counted  # type: ignore[method-assign]
    assert worker.claim_evidence(claim.ref, worker.account) is not None
    for _ in range(5):  # made-up frames of the claimed result
        made_up = type(claim.ref)(**{**{f: getattr(claim.ref, f) for f in claim.ref.__slots__},
                                     "frame_digest": os.urandom(32)})  # fmt: skip
        assert worker.claim_evidence(made_up, worker.account) is None
    assert len(reads) == 1


def test_answer_comes_too_late_after_the_window(env_fast: Env) -> None:
    env = env_fast
    worker = env.workers[0]
    job_id = staked_job(env, worker, ETHER)
    register(env.checkers)
    claim = claim_for(env, result_of(env, job_id), worker, SLASH_CAP_WEI)
    open_claim(env, claim, env.checkers[:2])
    env.chain.advance_time(CHALLENGE_S)
    reverts("challenge window over", env.outsider.send, env.outsider.calls.answer_claim(
        claim.answer, ordered(env.checkers[:2]),
        signed(env, claim.answer.rung(ordered(env.checkers[:2]), 0), env.checkers[2:5])))  # fmt: skip


def test_claim_rejects_weak_proofs(env: Env) -> None:
    worker = env.workers[0]
    job_id = staked_job(env, worker, ETHER)
    register(env.checkers[:2])
    claim = claim_for(env, result_of(env, job_id), worker, SLASH_CAP_WEI)
    worker_sig = sign(claim.ref, env.key_of(worker))
    send, calls = env.outsider.send, env.outsider.calls
    reverts("below quorum", send, calls.claim_fraud(claim, worker_sig, signed(env, claim, env.checkers[:1])))
    one = sign(claim, env.key_of(env.checkers[0]))
    reverts("signers not ascending", send, calls.claim_fraud(claim, worker_sig, [one, one]))
    backwards = signed(env, claim, env.checkers[:2])[::-1]
    reverts("signers not ascending", send, calls.claim_fraud(claim, worker_sig, backwards))
    outsider = signed(env, claim, [env.checkers[0], env.checkers[3]])
    reverts("not a checker", send, calls.claim_fraud(claim, worker_sig, outsider))
    worker.send(worker.calls.stake(CHECKER_MIN_STAKE_WEI))
    worker.send(worker.calls.register_checker())
    self_sig = signed(env, claim, [env.checkers[0], worker])
    reverts("worker cannot sign", send, calls.claim_fraud(claim, worker_sig, self_sig))
    register([env.requester])
    by_requester = signed(env, claim, [env.checkers[0], env.requester])
    reverts("requester cannot sign", send, calls.claim_fraud(claim, worker_sig, by_requester))
    other_amount = claim_for(env, claim.ref, worker, SLASH_CAP_WEI // 2)
    reverts("not a checker", send,
            calls.claim_fraud(claim, worker_sig, signed(env, other_amount, env.checkers[:2])))  # fmt: skip
    no_job = claim_for(env, result_of(env, os.urandom(32)), worker, SLASH_CAP_WEI)
    reverts("no such job", send, calls.claim_fraud(no_job, sign(no_job.ref, env.key_of(worker)),
                                                   signed(env, no_job, env.checkers[:2])))  # fmt: skip


def test_unbonding_stake_stays_slashable(env: Env) -> None:
    worker = env.workers[0]
    job_id = staked_job(env, worker, SLASH_CAP_WEI // 2)
    worker.send(worker.calls.request_unbond(SLASH_CAP_WEI // 2))
    register(env.checkers[:2])
    claim = claim_for(env, result_of(env, job_id), worker, SLASH_CAP_WEI)  # more than it has
    open_claim(env, claim, env.checkers[:2])
    st = worker.stake_of()
    assert (st.active_wei, st.unbonding_wei) == (0, 0)
    env.chain.advance_time(max(UNBONDING_S, CHALLENGE_S))
    reverts("nothing unbonding", worker.send, worker.calls.withdraw_stake())
    env.outsider.send(env.outsider.calls.execute_slash(claim, ordered(env.checkers[:2])))
    taken_wei = SLASH_CAP_WEI // 2  # all it had: the unbonding bucket
    assert env.requester.credit_wei(env.requester.account) == slash_split(taken_wei, 2).requester_wei


@pytest.mark.parametrize("free_wei", [0, SLASH_CAP_WEI // 5], ids=["all-unbonding", "part-unbonding"])
def test_a_false_claim_returns_unbonding_stake_to_unbonding(env: Env, free_wei: int) -> None:
    """Review L4 of issue 17: a claim takes free active stake first, then unbonding stake,
    and a claim the accused's answer beat gave all of it back as active stake, so a false
    claim restarted an honest worker's unbonding (request_unbond again, UNBONDING_S more):
    griefing paid only by the liars' locks. Each part now goes back where it came from, the
    unbonding's clock unchanged, and the worker withdraws at the time it was first told."""
    worker, liars, honest = env.workers[0], env.checkers[:2], env.checkers[2:5]
    job_id = staked_job(env, worker, ETHER)
    worker.send(worker.calls.request_unbond(ETHER - free_wei))  # free_wei stays active
    before = worker.stake_of()
    register(liars)
    register(honest)
    claim = claim_for(env, result_of(env, job_id), worker, SLASH_CAP_WEI)
    open_claim(env, claim, liars)
    held = worker.stake_of()
    assert (held.active_wei, held.unbonding_wei) == (0, ETHER - SLASH_CAP_WEI)
    answer, claimers = claim.answer, ordered(liars)
    vote = signed(env, answer.rung(claimers, 0), honest)
    env.outsider.send(env.outsider.calls.answer_claim(answer, claimers, vote))
    stand(env, answer, claimers, ordered(honest))
    assert env.outsider.claim(claim.ref, worker.account).status == CLAIM_ANSWERED
    assert worker.stake_of() == before  # active, unbonding and unbond_at as they were
    env.chain.advance_time(before.unbond_at_s - env.chain.timestamp_s() - 2)
    reverts("still unbonding", worker.send, worker.calls.withdraw_stake())  # at unbond_at - 1
    env.chain.advance_time(2)
    escrow_before = worker.balance_wei()
    worker.send(worker.calls.withdraw_stake())
    assert escrow_before - worker.balance_wei() == ETHER - free_wei


def test_a_claim_on_a_worker_holding_nothing_is_a_debt_collected_when_it_stakes(env_fast: Env) -> None:
    """Stop 45: a claim opens whatever the accused holds (other claims may hold its stake
    now: tests/ledger/test_stake_shields.py), executes with what it holds then, releasing
    its claimers, and stays owed: executing it again collects what the accused holds, up to
    the amount, split as a slash (no lock, no forfeit the second time)."""
    env = env_fast
    worker = env.workers[0]
    job_id = staked_job(env, env.workers[1], ETHER)
    register(env.checkers[:2])
    claim = claim_for(env, result_of(env, job_id), worker, SLASH_CAP_WEI)
    open_claim(env, claim, env.checkers[:2])
    assert env.outsider.claim(claim.ref, worker.account).taken_wei == 0
    env.chain.advance_time(CHALLENGE_S)
    execute = env.outsider.calls.execute_slash(claim, ordered(env.checkers[:2]))
    env.outsider.send(execute)
    state = env.outsider.claim(claim.ref, worker.account)
    assert (state.status, state.taken_wei) == (CLAIM_EXECUTED, 0)
    assert all(c.stake_of().locked_wei == 0 for c in env.checkers[:2])  # released
    assert env.requester.credit_wei(env.requester.account) == 0
    worker.send(worker.calls.stake(SLASH_CAP_WEI // 4))
    worker.send(worker.calls.request_unbond(SLASH_CAP_WEI // 4))  # unbonding is slashable too
    worker.send(worker.calls.stake(SLASH_CAP_WEI))
    env.outsider.send(execute)  # anyone: the claim's requester and claimers are paid
    assert env.outsider.claim(claim.ref, worker.account).taken_wei == SLASH_CAP_WEI
    st = worker.stake_of()  # free active first, then unbonding
    assert (st.active_wei, st.unbonding_wei) == (0, SLASH_CAP_WEI // 4)
    split = slash_split(SLASH_CAP_WEI, 2)
    assert env.requester.credit_wei(env.requester.account) == split.requester_wei
    assert all(c.credit_wei(c.account) == split.per_claimer_wei for c in env.checkers[:2])
    assert all(c.stake_of().locked_wei == 0 for c in env.checkers[:2])  # no second release


def test_checker_that_unbonded_no_longer_counts(env: Env) -> None:
    worker = env.workers[0]
    job_id = staked_job(env, worker, ETHER)
    register(env.checkers[:2])
    quitter = env.checkers[1]
    quitter.send(quitter.calls.request_unbond(CHECKER_MIN_STAKE_WEI))
    assert not quitter.is_checker(quitter.account)
    reverts("not a checker", open_claim, env,
            claim_for(env, result_of(env, job_id), worker, SLASH_CAP_WEI), env.checkers[:2])  # fmt: skip


def test_a_claim_always_leaves_room_for_a_larger_answer(env_fast: Env) -> None:
    """Sixteen colluding checkers (the most the contract reads) would make a claim no larger
    quorum could answer: claims take at most fifteen."""
    env = env_fast
    worker = env.workers[0]
    job_id = staked_job(env, worker, ETHER)
    w3, funder = env.chain.w3, env.requester.sender.address
    keys = [Account.create().key for _ in range(16)]
    colluders = []
    for key in keys:
        w3.eth.send_transaction({"from": funder, "to": Account.from_key(key).address,
                                 "value": 2 * ETHER})  # fmt: skip
        colluders.append(EscrowClient(TxSender(w3, bytes(key), FAST_TX), env.escrow))
    register(colluders)
    claim = claim_for(env, result_of(env, job_id), worker, SLASH_CAP_WEI)
    worker_sig = sign(claim.ref, env.key_of(worker))
    sigs = order_signatures(claim, [sign(claim, bytes(k)) for k in keys])
    send, calls = env.outsider.send, env.outsider.calls
    reverts("too many claimers", send, calls.claim_fraud(claim, worker_sig, sigs))
    send(calls.claim_fraud(claim, worker_sig, sigs[:15]))


def test_typed_data_digests_match_the_contract(env_fast: Env) -> None:
    """ledger.fraud's Result, Fraud and Rung hash exactly as Escrow.vy does, and its
    claim_id and claim_commit are the escrow's."""
    env = env_fast
    claim = claim_for(env, result_of(env, os.urandom(32), frame=7), env.workers[0], 12345)
    fns, worker = env.outsider.contract.functions, env.chain.w3.to_checksum_address(claim.worker)

    def local(message: object) -> bytes:
        msg = signable(message)  # type: ignore[arg-type]
        return keccak(b"\x19" + msg.version + msg.header + msg.body)

    assert fns.result_digest(claim.ref.arg()).call() == local(claim.ref)
    assert fns.fraud_digest(claim.ref.arg(), worker, TILES, 12345, 0).call() == local(claim)
    later = FraudClaim(claim.ref, claim.worker, TILES, 12345, 7)  # after an answer of 7
    assert fns.fraud_digest(claim.ref.arg(), worker, TILES, 12345, 7).call() == local(later)
    claimers = sorted(c.account for c in env.checkers[:3])
    vote = claim.answer.rung(claimers, 3)
    assert fns.claim_id(claim.ref.arg(), worker).call() == claim_id(claim.ref, claim.worker)
    commit = claim_commit(claim.ref.frame_digest, TILES, claimers)
    assert fns.rung_digest(claim_id(claim.ref, claim.worker), commit, 3).call() == local(vote)


def test_claim_evidence_reads_the_logs_from_the_claims_block_in_capped_ranges(
    env_fast: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The worker's lookup read FraudClaimed logs from block 0 in one query: providers
    that cap a query's range refuse that on any long-lived chain. It now finds the
    claim's block by its timestamp and reads from there, LOG_RANGE_BLOCKS at a time."""
    env = env_fast
    worker = env.workers[0]
    job_id = staked_job(env, worker, 4 * ETHER)
    register(env.checkers[:2])
    env.outsider.w3.provider.make_request("anvil_mine", [hex(2 * LOG_RANGE_BLOCKS)])  # type: ignore[arg-type]
    claim = claim_for(env, result_of(env, job_id), worker, SLASH_CAP_WEI)
    open_claim(env, claim, env.checkers[:2])
    claimed_at = worker.w3.eth.block_number
    env.outsider.w3.provider.make_request("anvil_mine", [hex(3 * LOG_RANGE_BLOCKS)])  # type: ignore[arg-type]
    queries: list[tuple[int, int]] = []
    get_logs = worker.w3.eth.get_logs

    def capped(params: Any) -> Any:
        first, last = int(params["fromBlock"]), int(params["toBlock"])
        queries.append((first, last))
        assert last - first < LOG_RANGE_BLOCKS, "a range the provider refuses"
        return get_logs(params)

    monkeypatch.setattr(worker.w3.eth, "get_logs", capped)
    evidence = worker.claim_evidence(claim.ref, worker.account)
    assert evidence is not None and evidence.tiles == TILES
    assert queries[0][0] <= claimed_at <= queries[0][1]  # found in its first query
    assert len(queries) == 1
    blocks_read: list[int] = []
    get_block = worker.w3.eth.get_block

    def counted(number: Any) -> Any:
        blocks_read.append(number)
        return get_block(number)

    monkeypatch.setattr(worker.w3.eth, "get_block", counted)
    assert worker.claim_evidence(claim.ref, worker.account) == evidence  # asked again:
    assert len(queries) == 1 and not blocks_read  # kept, no second search (~log2(head) reads)


def test_a_malleable_twin_of_a_claim_signature_recovers_to_nobody(env_fast: Env) -> None:
    """Escrow._signers recovers through _recover (stop 45, 179 bytes of code): a high-s
    twin of a claimer's signature recovers to no address, so it is not ascending."""
    env = env_fast
    worker = env.workers[0]
    job_id = staked_job(env, worker, ETHER)
    register(env.checkers[:2])
    claim = claim_for(env, result_of(env, job_id), worker, SLASH_CAP_WEI)
    sigs = [split_signature(s) for s in signed(env, claim, env.checkers[:2])]
    n = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
    v, r, s = sigs[1]
    twin = (55 - v, r, (n - int.from_bytes(s, "big")).to_bytes(32, "big"))  # v 27 <-> 28
    worker_sig = split_signature(sign(claim.ref, env.key_of(worker)))
    fns, address = env.outsider.contract.functions, env.chain.w3.to_checksum_address(worker.account)

    def claim_with(ordered: list[object]) -> object:  # by hand: the client refuses a high s
        return fns.claim_fraud(claim.ref.arg(), address, worker_sig, claim.tiles, claim.amount_wei,
                               ordered)  # fmt: skip

    # first, or after its signer's own signature: it recovers to no address (address 0 is
    # not above the start nor above the first signer)
    for bad in ([twin, sigs[0]], [sigs[0], twin]):
        with pytest.raises(ChainRevert) as info:
            env.outsider.sender.transact(claim_with(bad))
        assert info.value.reason == "signers not ascending"
    env.outsider.sender.transact(claim_with(sigs))
    assert env.outsider.claim(claim.ref, worker.account).status == CLAIM_PENDING


def test_the_node_collects_owed_claims_as_long_as_the_escrow_owes_them() -> None:
    """Escrow.DEBT_S (how long an executed claim short of its amount may be collected) is
    protocol.slashing.DEBT_S, the node's: a node that gave up earlier left stake the escrow still
    owed it, one that went on later would send collections the escrow refuses."""
    import re
    from pathlib import Path

    from protocol.slashing import DEBT_S as DEBT_HORIZON_S

    source = (Path(__file__).resolve().parents[2] / "ledger" / "contracts" / "Escrow.vy").read_text()
    found = re.search(r"^DEBT_S: constant\(uint256\) = (\d+) \* (\d+)", source, re.M)
    assert found is not None
    from tests.roles.fakes import DEBT_S as FAKE_DEBT_S

    assert int(found[1]) * int(found[2]) == DEBT_HORIZON_S == FAKE_DEBT_S


def test_an_owed_claim_is_collectible_for_debt_s_after_its_window_and_no_longer(env_fast: Env) -> None:
    env = env_fast
    worker = env.workers[0]
    job_id = staked_job(env, env.workers[1], ETHER)
    register(env.checkers[:2])
    claim = claim_for(env, result_of(env, job_id), worker, SLASH_CAP_WEI)
    open_claim(env, claim, env.checkers[:2])  # the worker holds nothing: owed
    settle_at_s = env.outsider.claim(claim.ref, worker.account).settle_at_s
    env.chain.advance_time(CHALLENGE_S)
    execute = env.outsider.calls.execute_slash(claim, ordered(env.checkers[:2]))
    env.outsider.send(execute)
    worker.send(worker.calls.stake(SLASH_CAP_WEI // 2))
    debt_s = 90 * 86400
    env.chain.advance_time(settle_at_s + debt_s - env.chain.timestamp_s() - 5)
    env.outsider.send(execute)  # a few seconds before the end: half of it collected
    assert env.outsider.claim(claim.ref, worker.account).taken_wei == SLASH_CAP_WEI // 2
    worker.send(worker.calls.stake(SLASH_CAP_WEI))
    env.chain.advance_time(10)
    reverts("no pending claim", env.outsider.send, execute)  # past DEBT_S: owed no more
    assert worker.stake_of().active_wei == SLASH_CAP_WEI

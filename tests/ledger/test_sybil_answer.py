"""A true claim's answer by the cheat's sybils, and a false claim's escalation by colluders
(issue 17, stop-26 review finding 3; this stop's review of the first fix).

Before answers were bonded, the escrow cancelled a claim for any ``Clean`` signed by
more registered, staked checkers than claimed it, and an answer risked nothing: a cheat
running ``quorum + 1`` staked checker identities answered every true claim against it,
kept its stake and took the honest claimers' locked stake. The first fix bonded the
answer but made a larger quorum's overturn final and riskless, which handed the same
hole to a false claim's colluders (answered by 3 honest checkers, 4 colluders overturned
at no risk and took the honest answerers' stake). Now a contested claim is a ladder:
each rung outnumbers the last within its window, alternating sides, every signer
locking the claim's amount; the side of the last rung wins and takes the other side's
locked stake. A side wins only with more staked checkers than the other can bring, up
to the signer bound (16), which the last test shows (docs/LEDGER.md)."""

from __future__ import annotations

from dataclasses import replace

from ledger.client import (
    CLAIM_ANSWERED,
    CLAIM_CONTESTED,
    CLAIM_EXECUTED,
    CLAIM_PENDING,
    EscrowClient,
)
from ledger.fraud import FraudClaim, order_signatures, sign
from protocol.slashing import answer_split, slash_split
from tests.ledger.conftest import (
    CHALLENGE_S,
    CHECKER_MIN_STAKE_WEI,
    ETHER,
    GRACE_S,
    SLASH_CAP_WEI,
    Env,
)
from tests.ledger.test_claim_preemption import fresh_checkers
from tests.ledger.test_stake_slash import (
    SIGNER_STAKE_WEI,
    claim_for,
    open_claim,
    ordered,
    register,
    result_of,
    reverts,
    staked_job,
)

MAX_SIGNERS = 16


def sign_all(env: Env, message: object, signers: list[EscrowClient], fresh: dict[bytes, bytes]) -> list[bytes]:
    """``signed`` for env's clients and fresh checkers (``fresh``: account -> key)."""
    keys = [fresh.get(c.account) or env.key_of(c) for c in signers]
    return order_signatures(message, [sign(message, k) for k in keys])  # type: ignore[arg-type]


def fresh(env: Env, n: int) -> tuple[list[EscrowClient], dict[bytes, bytes]]:
    clients, keys = fresh_checkers(env, n)
    return clients, {c.account: k for c, k in zip(clients, keys, strict=True)}


def two_sides(env: Env) -> tuple[EscrowClient, bytes, list[EscrowClient], list[EscrowClient]]:
    """A staked worker's job, and the env's checkers as a claim's two sides: two that can
    each sign twice (the claim and a rung), and three more."""
    worker = env.workers[0]
    job_id = staked_job(env, worker, 2 * ETHER)
    first, second = env.checkers[:2], env.checkers[2:5]
    register(first, CHECKER_MIN_STAKE_WEI + SLASH_CAP_WEI)
    register(second)
    return worker, job_id, first, second


def test_a_cheats_sybils_cannot_answer_a_true_claim_for_profit(env_fast: Env) -> None:
    env = env_fast
    cheat = env.workers[0]
    job_id = staked_job(env, cheat, 2 * ETHER)
    honest, sybils = env.checkers[:2], env.checkers[2:5]  # the sybils: the cheat's own keys
    register(honest, CHECKER_MIN_STAKE_WEI + SLASH_CAP_WEI)  # each can sign the claim twice
    register(sybils)
    more_honest, keys = fresh(env, 2)
    claim = claim_for(env, result_of(env, job_id), cheat, SLASH_CAP_WEI)  # a true claim
    open_claim(env, claim, honest)
    answer, claimers = claim.answer, ordered(honest)
    send, calls = env.outsider.send, env.outsider.calls
    send(calls.answer_claim(answer, claimers, sign_all(env, answer.rung(claimers, 0), sybils, keys)))
    assert env.outsider.claim(claim.ref, cheat.account).status == CLAIM_CONTESTED
    ladder = env.outsider.ladder(claim.ref, cheat.account)
    assert ladder == (tuple(ordered(sybils)),)
    for s in sybils:  # the answer put its signers' stake at risk
        assert s.stake_of().locked_wei == SLASH_CAP_WEI
        reverts("bad amount", s.send, s.calls.request_unbond(s.stake_of().free_wei + 1))
    # The honest side outnumbers it with the claim's own signature: the claimers sign
    # again (their free stake covers a second amount), two more join.
    rung = [*honest, *more_honest]
    vote = claim.rung(claimers, 1)  # what rung 1's signers sign
    reverts("quorum not larger", send, calls.escalate(
        claim, claimers, ladder, sign_all(env, vote, rung[:3], keys)))  # fmt: skip
    reverts("signed for the other side", send, calls.escalate(
        claim, claimers, ladder, sign_all(env, vote, [*rung[:3], sybils[0]], keys)))  # fmt: skip
    for other in (claim, answer.rung(claimers, 0), claim.rung(claimers, 3)):  # counted nowhere else
        reverts("not a checker", send, calls.escalate(
            claim, claimers, ladder, sign_all(env, other, rung, keys)))  # fmt: skip
    reverts("wrong ladder", send, calls.escalate(
        claim, claimers, [ordered(more_honest)], sign_all(env, vote, rung, keys)))  # fmt: skip
    send(calls.escalate(claim, claimers, ladder, sign_all(env, vote, rung, keys)))
    ladder = (*ladder, tuple(ordered(rung)))
    assert env.outsider.ladder(claim.ref, cheat.account) == ladder
    assert all(h.stake_of().locked_wei == 2 * SLASH_CAP_WEI for h in honest)
    # The sybils have nobody left to outnumber it: after its window the claim executes.
    reverts("challenge window open", send, calls.settle_contest(claim, claimers, ladder))
    env.chain.advance_time(CHALLENGE_S)
    reverts("challenge window over", send, calls.escalate(
        answer, claimers, ladder, sign_all(env, answer.rung(claimers, 2), sybils, keys)))  # fmt: skip
    send(calls.settle_contest(claim, claimers, ladder))
    assert env.outsider.claim(claim.ref, cheat.account).status == CLAIM_EXECUTED
    # The claimers were right: they lose nothing, and the cheat and its sybils gain nothing.
    for c in honest:
        st = c.stake_of()
        assert (st.active_wei, st.locked_wei) == (CHECKER_MIN_STAKE_WEI + SLASH_CAP_WEI, 0)
    gained = cheat.credit_wei(cheat.account) + sum(s.credit_wei(s.account) for s in sybils)
    assert gained == 0
    assert cheat.stake_of().active_wei == 2 * ETHER - SLASH_CAP_WEI
    for s in sybils:  # each sybil lost its locked amount
        st = s.stake_of()
        assert (st.active_wei, st.locked_wei) == (SIGNER_STAKE_WEI - SLASH_CAP_WEI, 0)
    # half the cheat's taken stake and of the sybils' forfeit burned; a quarter of the one
    # and half of the other in equal parts to the claim side's six positions (the claimers
    # hold two each); the rest to the requester
    split = slash_split(SLASH_CAP_WEI, 6, 3 * SLASH_CAP_WEI)
    share = (SLASH_CAP_WEI // 4 + 3 * SLASH_CAP_WEI // 2) // 6
    assert split.per_claimer_wei == share
    assert split.burned_wei == SLASH_CAP_WEI // 2 + 3 * SLASH_CAP_WEI // 2
    for c in honest:
        assert c.credit_wei(c.account) == 2 * share
    for c in more_honest:
        assert c.credit_wei(c.account) == share
    assert env.requester.credit_wei(env.requester.account) == (
        SLASH_CAP_WEI // 2 + 3 * SLASH_CAP_WEI // 2 - 6 * share) == split.requester_wei  # fmt: skip


def test_a_false_claim_cannot_outnumber_an_honest_answer_at_no_risk(env_fast: Env) -> None:
    """This stop's review, HIGH 1: with a final, riskless overturn, 4 colluders beat an
    honest answer of 3 and took the answerers' stake. Now the colluders' rung locks their
    stake and the honest side answers it again with more: the claim is cancelled and
    every colluding position forfeits its amount."""
    env = env_fast
    worker = env.workers[0]
    job_id = staked_job(env, worker, 2 * ETHER)
    liars, honest = env.checkers[:2], env.checkers[2:5]
    register(liars, CHECKER_MIN_STAKE_WEI + SLASH_CAP_WEI)
    register(honest, CHECKER_MIN_STAKE_WEI + SLASH_CAP_WEI)
    more_liars, liar_keys = fresh(env, 2)
    more_honest, honest_keys = fresh(env, 2)
    keys = {**liar_keys, **honest_keys}
    claim = claim_for(env, result_of(env, job_id), worker, SLASH_CAP_WEI)  # a false claim
    open_claim(env, claim, liars)
    answer, claimers = claim.answer, ordered(liars)
    send, calls = env.outsider.send, env.outsider.calls
    send(calls.answer_claim(answer, claimers, sign_all(env, answer.rung(claimers, 0), honest, keys)))
    ladder = env.outsider.ladder(claim.ref, worker.account)
    assert ladder is not None
    colluders = [*liars, *more_liars]
    send(calls.escalate(claim, claimers, ladder, sign_all(env, claim.rung(claimers, 1), colluders, keys)))
    ladder = env.outsider.ladder(claim.ref, worker.account)
    assert ladder is not None and len(ladder) == 2
    rung = [*honest, *more_honest]  # the three answer again, with two more
    send(calls.escalate(answer, claimers, ladder, sign_all(env, answer.rung(claimers, 2), rung, keys)))
    ladder = env.outsider.ladder(claim.ref, worker.account)
    assert ladder is not None and len(ladder) == 3
    env.chain.advance_time(CHALLENGE_S)
    send(calls.settle_contest(answer, claimers, ladder))
    assert env.outsider.claim(claim.ref, worker.account).status == CLAIM_ANSWERED
    assert worker.stake_of().active_wei == 2 * ETHER
    for c in liars:  # two positions each: the claim and the rung
        assert c.stake_of().active_wei == CHECKER_MIN_STAKE_WEI - SLASH_CAP_WEI
    for c in more_liars:
        assert c.stake_of().active_wei == CHECKER_MIN_STAKE_WEI
    for c in [*honest, *more_honest]:
        st = c.stake_of()
        assert st.locked_wei == 0 and st.active_wei == CHECKER_MIN_STAKE_WEI + SLASH_CAP_WEI
    penalty = 6 * SLASH_CAP_WEI  # six colluding positions: half of it burned
    share = penalty // 4 // 8  # eight honest positions (three of them twice)
    assert answer_split(penalty, 8).per_answerer_wei == share
    assert worker.credit_wei(worker.account) == penalty // 2 - 8 * share
    for c in honest:
        assert c.credit_wei(c.account) == 2 * share
    assert env.requester.credit_wei(env.requester.account) == 0


def test_the_side_with_more_staked_checkers_has_the_last_word_up_to_sixteen(env_fast: Env) -> None:
    """The limit, written down: rungs grow strictly and stop at 16 signers, so an answer
    of 16 (the escrow's bound) has the last word: a cheat with 16 staked checker
    identities still keeps a true claim off, at no loss."""
    env = env_fast
    cheat = env.workers[0]
    job_id = staked_job(env, cheat, 2 * ETHER)
    honest = env.checkers[:2]
    register(honest, CHECKER_MIN_STAKE_WEI + SLASH_CAP_WEI)
    sybils, keys = fresh(env, MAX_SIGNERS)
    claim = claim_for(env, result_of(env, job_id), cheat, SLASH_CAP_WEI)
    open_claim(env, claim, honest)
    send, calls, claimers = env.outsider.send, env.outsider.calls, ordered(honest)
    send(calls.answer_claim(claim.answer, claimers, sign_all(env, claim.answer.rung(claimers, 0), sybils, keys)))
    ladder = (tuple(ordered(sybils)),)
    reverts("quorum not larger", send, calls.escalate(  # the escrow takes at most 16
        claim, claimers, ladder, sign_all(env, claim.rung(claimers, 1), [*honest, *env.checkers[2:5]], keys)))  # fmt: skip
    env.chain.advance_time(CHALLENGE_S)
    send(calls.settle_contest(claim.answer, claimers, ladder))
    assert env.outsider.claim(claim.ref, cheat.account).status == CLAIM_ANSWERED


def test_friends_cannot_hold_a_frame_past_the_claim_window(env_fast: Env) -> None:
    """This stop's second review (H1): one claim holds a frame, and a claim and its answer
    by the accused's friends (2 + 3, their forfeits staying among them) held it past the
    job's claim window, since a contest lasts a window per rung: the honest claim came too
    late ("claim window over"). A contest the accused's side won now leaves the frame
    open to a larger claim for one more window, past the job's."""
    env = env_fast
    cheat = env.workers[0]
    job_id = staked_job(env, cheat, 2 * ETHER)  # its deadline: an hour from now
    friends = env.checkers[:5]
    register(friends)
    honest, keys = fresh(env, 4)
    ref = result_of(env, job_id)
    junk = claim_for(env, ref, cheat, SLASH_CAP_WEI)
    env.chain.advance_time(3600 + GRACE_S - 30)  # the friends claim at the window's end
    open_claim(env, junk, friends[:2])
    send, calls, claimers = env.outsider.send, env.outsider.calls, ordered(friends[:2])
    send(calls.answer_claim(junk.answer, claimers, sign_all(env, junk.answer.rung(claimers, 0), friends[2:], keys)))
    env.chain.advance_time(CHALLENGE_S)
    send(calls.settle_contest(junk.answer, claimers, [ordered(friends[2:])]))
    assert env.outsider.claim(ref, cheat.account).status == CLAIM_ANSWERED
    true_claim = FraudClaim(ref, cheat.account, b"\x09" * 32, SLASH_CAP_WEI, 3)  # after an answer of 3
    sigs = sign_all(env, true_claim, honest, keys)
    worker_sig = sign(ref, env.key_of(cheat))
    send(calls.claim_fraud(true_claim, worker_sig, sigs))  # past the job's window, reopened
    assert env.outsider.claim(ref, cheat.account).status == CLAIM_PENDING


def test_a_reopened_frame_closes_a_window_after_the_contest(env_fast: Env) -> None:
    env = env_fast
    cheat = env.workers[0]
    job_id = staked_job(env, cheat, 2 * ETHER)
    friends = env.checkers[:5]
    register(friends)
    honest, keys = fresh(env, 4)
    ref = result_of(env, job_id)
    junk = claim_for(env, ref, cheat, SLASH_CAP_WEI)
    open_claim(env, junk, friends[:2])
    send, calls, claimers = env.outsider.send, env.outsider.calls, ordered(friends[:2])
    send(calls.answer_claim(junk.answer, claimers, sign_all(env, junk.answer.rung(claimers, 0), friends[2:], keys)))
    env.chain.advance_time(3600 + GRACE_S + 2 * CHALLENGE_S)
    send(calls.settle_contest(junk.answer, claimers, [ordered(friends[2:])]))
    true_claim = FraudClaim(ref, cheat.account, b"\x09" * 32, SLASH_CAP_WEI)
    reverts("claim window over", send, calls.claim_fraud(
        true_claim, sign(ref, env.key_of(cheat)), sign_all(env, true_claim, honest, keys)))  # fmt: skip


def test_an_answer_signed_for_one_claim_counts_on_no_other_claim(env_fast: Env) -> None:
    """Stop 27's review (M1): a rung's signatures named neither the rung nor the claim.
    Honest checkers that once answered a false claim on a frame could be replayed, by
    anyone, as the answer to a later claim on the same frame: locked and then outnumbered
    without ever having signed about it. Liars whose second claim (4) outnumbered the
    honest answer (3) needed only two Clean sybils to make a rung 0 of 5 from it. Now a
    signature names its claim (its commit) and its rung: the replay recovers to strangers."""
    env = env_fast
    worker, job_id, liars, honest = two_sides(env)
    more_liars, liar_keys = fresh(env, 2)
    sybils, sybil_keys = fresh(env, 2)  # the liars' keys that sign Clean
    keys = {**liar_keys, **sybil_keys}
    ref = result_of(env, job_id)
    first = claim_for(env, ref, worker, SLASH_CAP_WEI)  # a false claim
    open_claim(env, first, liars)
    send, calls, claimers = env.outsider.send, env.outsider.calls, ordered(liars)
    honest_sigs = sign_all(env, first.answer.rung(claimers, 0), honest, keys)
    send(calls.answer_claim(first.answer, claimers, honest_sigs))
    env.chain.advance_time(CHALLENGE_S)
    send(calls.settle_contest(first.answer, claimers, [ordered(honest)]))
    assert env.outsider.claim(ref, worker.account).status == CLAIM_ANSWERED
    # the liars claim the frame again, by more than answered (same tiles, same amount)
    second = [*liars, *more_liars]
    again = replace(first, round=3)  # the round after an answer of 3
    send(calls.claim_fraud(again, sign(ref, env.key_of(worker)), sign_all(env, again, second, keys)))
    claimers2 = ordered(second)
    vote = first.answer.rung(claimers2, 0)
    replayed = order_signatures(vote, [*honest_sigs, *sign_all(env, vote, sybils, keys)])
    reverts("not a checker", send, calls.answer_claim(first.answer, claimers2, replayed))
    assert all(h.stake_of().locked_wei == 0 for h in honest)
    # the honest checkers' own consent to this claim counts, as any rung does
    send(calls.answer_claim(first.answer, claimers2, sign_all(env, vote, [*honest, *sybils], keys)))
    assert env.outsider.claim(ref, worker.account).status == CLAIM_CONTESTED


def test_a_claims_signatures_open_no_later_claim_on_the_frame(env_fast: Env) -> None:
    """Stop 28's review (H2): a claim's own Fraud signatures named no round of the frame's
    claims. Once honest claimers lost a claim (their answer outnumbered them and nobody
    climbed), anyone could take their signatures from its calldata, add two sybils and
    open a larger claim on the frame, answer it with more sybils and take the honest
    claimers' stake a second time, on a claim they never signed. Fraud now names the size
    of the answer that ended the frame's last claim: the replay recovers to strangers."""
    env = env_fast
    cheat, job_id, honest, sybils = two_sides(env)
    more_sybils, keys = fresh(env, 2)
    ref = result_of(env, job_id)
    claim = claim_for(env, ref, cheat, SLASH_CAP_WEI)
    honest_sigs = sign_all(env, claim, honest, keys)
    send, calls, claimers = env.outsider.send, env.outsider.calls, ordered(honest)
    send(calls.claim_fraud(claim, sign(ref, env.key_of(cheat)), honest_sigs))
    send(calls.answer_claim(claim.answer, claimers, sign_all(env, claim.answer.rung(claimers, 0), sybils, keys)))
    env.chain.advance_time(CHALLENGE_S)
    send(calls.settle_contest(claim.answer, claimers, [ordered(sybils)]))
    assert env.outsider.claim(ref, cheat.account).status == CLAIM_ANSWERED
    locked = [h.stake_of().locked_wei for h in honest]
    # the replay: the honest claimers' own signatures and two of the cheat's, 4 > 3
    replayed = order_signatures(claim, [*honest_sigs, *sign_all(env, claim, more_sybils, keys)])
    reverts("not a checker", send, calls.claim_fraud(claim, sign(ref, env.key_of(cheat)), replayed))
    assert [h.stake_of().locked_wei for h in honest] == locked
    # what the honest claimers sign for this round still opens it
    again = replace(claim, round=3)
    send(calls.claim_fraud(again, sign(ref, env.key_of(cheat)),
                           sign_all(env, again, [*honest, *more_sybils], keys)))  # fmt: skip
    assert env.outsider.claim(ref, cheat.account).status == CLAIM_PENDING

"""A cheat's sybils answer a true claim (issue 17, stop-26 review finding 3).

Before answers were bonded, the escrow cancelled a claim for any ``Clean`` signed by
more registered, staked checkers than claimed it, and an answer risked nothing: a cheat
running ``quorum + 1`` staked checker identities answered every true claim against it,
kept its stake and took the honest claimers' locked stake. Now an answer locks its
signers' stake and only stands after a window in which a larger quorum of the claim's
own ``Fraud`` signatures overturns it (``overturn_answer``): the sybils then lose their
locked stake to the overturners and the claim executes. The attack wins only with an
answer of ``MAX_SIGNERS`` (16) sybils, which nothing outnumbers (docs/VERIFICATION.md,
"A true claim answered by colluders"); the last test shows that limit."""

from __future__ import annotations

from ledger.client import CLAIM_CONTESTED, CLAIM_EXECUTED, EscrowClient
from ledger.fraud import order_signatures, sign
from tests.ledger.conftest import CHALLENGE_S, CHECKER_MIN_STAKE_WEI, ETHER, SLASH_CAP_WEI, Env
from tests.ledger.test_claim_preemption import fresh_checkers
from tests.ledger.test_stake_slash import (
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
    send(calls.answer_claim(answer, claimers, sign_all(env, answer, sybils, keys)))
    assert env.outsider.claim(claim.ref, cheat.account).status == CLAIM_CONTESTED
    answerers = env.outsider.answerers(claim.ref, cheat.account)
    assert answerers == tuple(ordered(sybils))
    for s in sybils:  # the answer put its signers' stake at risk
        assert s.stake_of().locked_wei == SLASH_CAP_WEI
        reverts("bad amount", s.send, s.calls.request_unbond(CHECKER_MIN_STAKE_WEI))
    # The honest side overturns it with a larger quorum of the claim's own signature:
    # the claimers sign again (their free stake covers a second amount), two more join.
    overturners = [*honest, *more_honest]
    reverts("quorum not larger", send, calls.overturn_answer(
        claim, claimers, list(answerers), sign_all(env, claim, overturners[:3], keys)))  # fmt: skip
    reverts("answerer cannot overturn", send, calls.overturn_answer(
        claim, claimers, list(answerers), sign_all(env, claim, [*overturners[:3], sybils[0]], keys)))  # fmt: skip
    reverts("not a checker", send, calls.overturn_answer(  # Clean signatures are no overturn
        claim, claimers, list(answerers), sign_all(env, answer, overturners, keys)))  # fmt: skip
    reverts("wrong answer", send, calls.overturn_answer(
        claim, claimers, ordered(more_honest), sign_all(env, claim, overturners, keys)))  # fmt: skip
    send(calls.overturn_answer(claim, claimers, list(answerers), sign_all(env, claim, overturners, keys)))
    assert env.outsider.claim(claim.ref, cheat.account).status == CLAIM_EXECUTED
    # The claimers were right: they lose nothing, and the cheat and its sybils gain nothing.
    for c in honest:
        st = c.stake_of()
        assert (st.active_wei, st.locked_wei) == (CHECKER_MIN_STAKE_WEI + SLASH_CAP_WEI, 0)
    gained = cheat.credit_wei(cheat.account) + sum(s.credit_wei(s.account) for s in sybils)
    assert gained == 0
    assert cheat.stake_of().active_wei == 2 * ETHER - SLASH_CAP_WEI
    for s in sybils:  # each sybil lost its locked amount, now under the checker minimum
        st = s.stake_of()
        assert (st.active_wei, st.locked_wei) == (CHECKER_MIN_STAKE_WEI - SLASH_CAP_WEI, 0)
        assert not s.is_checker(s.account)
    # the sybils' forfeit to the overturners; the cheat's stake as an executed claim pays it
    penalty = 3 * SLASH_CAP_WEI
    claimer_share = SLASH_CAP_WEI // 2 // 2
    for o in honest:
        assert o.credit_wei(o.account) == penalty // 4 + claimer_share
    for o in more_honest:
        assert o.credit_wei(o.account) == penalty // 4
    assert env.requester.credit_wei(env.requester.account) == SLASH_CAP_WEI - 2 * claimer_share
    env.chain.advance_time(CHALLENGE_S)
    reverts("no contested answer", send, calls.close_answer(answer, claimers, list(answerers)))


def test_an_overturn_comes_too_late_after_the_answers_window(env_fast: Env) -> None:
    env = env_fast
    cheat = env.workers[0]
    job_id = staked_job(env, cheat, 2 * ETHER)
    honest, sybils = env.checkers[:2], env.checkers[2:5]
    register(honest, CHECKER_MIN_STAKE_WEI + SLASH_CAP_WEI)
    register(sybils)
    more_honest, keys = fresh(env, 2)
    claim = claim_for(env, result_of(env, job_id), cheat, SLASH_CAP_WEI)
    open_claim(env, claim, honest)
    send, calls, claimers = env.outsider.send, env.outsider.calls, ordered(honest)
    send(calls.answer_claim(claim.answer, claimers, sign_all(env, claim.answer, sybils, keys)))
    env.chain.advance_time(CHALLENGE_S)
    reverts("challenge window over", send, calls.overturn_answer(
        claim, claimers, ordered(sybils), sign_all(env, claim, [*honest, *more_honest], keys)))  # fmt: skip


def test_an_answer_of_max_signers_cannot_be_overturned(env_fast: Env) -> None:
    """The limit, written down: an answer of 16 (the escrow's signer bound) has the last
    word, so a cheat with 16 staked checker identities still answers a true claim."""
    env = env_fast
    cheat = env.workers[0]
    job_id = staked_job(env, cheat, 2 * ETHER)
    honest = env.checkers[:2]
    register(honest, CHECKER_MIN_STAKE_WEI + SLASH_CAP_WEI)
    sybils, keys = fresh(env, MAX_SIGNERS)
    claim = claim_for(env, result_of(env, job_id), cheat, SLASH_CAP_WEI)
    open_claim(env, claim, honest)
    send, calls, claimers = env.outsider.send, env.outsider.calls, ordered(honest)
    send(calls.answer_claim(claim.answer, claimers, sign_all(env, claim.answer, sybils, keys)))
    reverts("quorum not larger", send, calls.overturn_answer(  # the escrow takes at most 16
        claim, claimers, ordered(sybils), sign_all(env, claim, [*honest, *env.checkers[2:5]], keys)))  # fmt: skip

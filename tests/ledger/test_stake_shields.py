"""Ways a cheat's coalition kept its stake from honest claims (reviews of stops 44 and 45),
played on the real contract; docs/VERIFICATION.md, "What a cheat's friends can do to its
stake".

1. A shield of claimer positions: the cheat is a registered checker too (one payment
   address for its roles). With one staked friend it signs claims against sybil workers;
   each locks a cap of its stake as a claimer. A claim took only free stake (and
   unbonding), so honest claims on its fakes found nothing while the locks stood. Now a
   signer keeps a cap free besides what it locks (the first honest claim takes a whole
   cap), and a claim that took less than its amount stays owed: executing it again
   collects what the accused holds then, so the locks coming back pay the rest.
2. Friends claim first: the cheat signs junk results in a friend requester's job and two
   staked friends claim them, so its stake was held when the honest claim came ("nothing
   to slash"). Now the honest claim opens anyway and collects whatever the friends' claims
   give back: answered by more friends (the stake returned) it takes the cap; executed,
   half of what they took is burned."""

from __future__ import annotations

import os

from ledger.client import CLAIM_EXECUTED, EscrowClient
from ledger.fraud import FraudClaim, ResultRef, sign
from protocol.slashing import slash_split
from tests.ledger.conftest import CHALLENGE_S, CHECKER_MIN_STAKE_WEI, SLASH_CAP_WEI, Env
from tests.ledger.test_stake_slash import (
    TILES,
    claim_for,
    open_claim,
    ordered,
    register,
    result_of,
    reverts,
    signed,
    staked_job,
)
from tests.ledger.test_sybil_answer import fresh, sign_all


def execute(env: Env, claim: FraudClaim, claimers: list[EscrowClient]) -> None:
    env.outsider.send(env.outsider.calls.execute_slash(claim, ordered(claimers)))


def test_a_cheats_own_claimer_positions_do_not_shield_its_stake(env_fast: Env) -> None:
    env = env_fast
    cheat, sybils, friend = env.workers[0], env.workers[1:3], env.checkers[2]
    register([cheat], 4 * SLASH_CAP_WEI)  # the minimum is two caps here
    register([friend], 2 * CHECKER_MIN_STAKE_WEI)
    job_id = staked_job(env, sybils[0], 1)
    sybil_claims = [claim_for(env, result_of(env, job_id, frame), sybil, SLASH_CAP_WEI)
                    for sybil, frame in ((sybils[0], 101), (sybils[1], 101), (sybils[0], 102))]  # fmt: skip
    for claim in sybil_claims:  # each locks a cap of the cheat's stake as a claimer
        open_claim(env, claim, [cheat, friend])
    # a cap stays free: one more lock is refused
    assert cheat.stake_of().free_wei == SLASH_CAP_WEI
    reverts("stake at risk too low", open_claim, env,
            claim_for(env, result_of(env, job_id, 103), sybils[1], SLASH_CAP_WEI), [cheat, friend])  # fmt: skip
    register(env.checkers[:2])
    honest = [claim_for(env, result_of(env, job_id, frame), cheat, SLASH_CAP_WEI) for frame in (7, 8)]
    for claim in honest:  # two fakes: the first claim takes the free cap, the second nothing
        open_claim(env, claim, env.checkers[:2])
    held = [env.outsider.claim(c.ref, cheat.account).taken_wei for c in honest]
    assert held == [SLASH_CAP_WEI, 0]
    env.chain.advance_time(CHALLENGE_S)
    for claim in honest:  # executed while the locks stand: the second takes nothing yet
        execute(env, claim, env.checkers[:2])
    assert env.outsider.claim(honest[1].ref, cheat.account).taken_wei == 0
    for claim in sybil_claims:  # the locks come back
        execute(env, claim, [cheat, friend])
    cheat.send(cheat.calls.request_unbond(cheat.stake_of().free_wei))  # and it runs: too late
    before = env.requester.credit_wei(env.requester.account)
    execute(env, honest[1], env.checkers[:2])  # collected: unbonding stake is slashable
    state = env.outsider.claim(honest[1].ref, cheat.account)
    assert (state.status, state.taken_wei) == (CLAIM_EXECUTED, SLASH_CAP_WEI)
    split = slash_split(SLASH_CAP_WEI, 2)
    assert env.requester.credit_wei(env.requester.account) - before == split.requester_wei


def junk_claims(env: Env, cheat: EscrowClient, friends: list[EscrowClient]) -> list[FraudClaim]:
    """Two junk results the cheat signs in a friend requester's job (env.outsider's),
    claimed by ``friends``: they take its stake."""
    friend_job = os.urandom(32)
    env.outsider.deposit(friend_job, 1, env.deadline_in(3600))
    claims = []
    for frame in (1, 2):
        ref = ResultRef(env.chain.chain_id, env.contract_bytes, env.outsider.account,
                        friend_job, b"\x09" * 32, frame, b"junk".ljust(32, b"\0"))  # fmt: skip
        claim = FraudClaim(ref, cheat.account, TILES, SLASH_CAP_WEI)
        env.outsider.send(env.outsider.calls.claim_fraud(
            claim, sign(ref, env.key_of(cheat)), signed(env, claim, friends)))  # fmt: skip
        claims.append(claim)
    return claims


def honest_claim_on(env: Env, cheat: EscrowClient) -> FraudClaim:
    """The honest requester's claim on the cheat's fake, made while its stake is held."""
    register(env.checkers[:2])
    job_id = staked_job(env, env.workers[1], 1)
    honest = claim_for(env, result_of(env, job_id, frame=7), cheat, SLASH_CAP_WEI)
    open_claim(env, honest, env.checkers[:2])  # opens: it was "nothing to slash"
    assert env.outsider.claim(honest.ref, cheat.account).taken_wei == 0
    return honest


def test_friends_claiming_junk_first_burn_half_and_leave_the_honest_claim_owed(env_fast: Env) -> None:
    env = env_fast
    cheat, friends = env.workers[0], env.checkers[2:4]
    register(friends)
    staked_wei = 2 * SLASH_CAP_WEI
    cheat.send(cheat.calls.stake(staked_wei))
    junk = junk_claims(env, cheat, friends)
    honest = honest_claim_on(env, cheat)
    env.chain.advance_time(CHALLENGE_S)
    for claim in junk:  # the friends take it: half of it is burned
        execute(env, claim, friends)
    recovered = sum(c.credit_wei(c.account) for c in [env.outsider, *friends])
    split = slash_split(SLASH_CAP_WEI, len(friends))
    assert recovered == 2 * (split.requester_wei + 2 * split.per_claimer_wei) == staked_wei // 2
    execute(env, honest, env.checkers[:2])
    state = env.outsider.claim(honest.ref, cheat.account)
    assert (state.status, state.taken_wei) == (CLAIM_EXECUTED, 0)  # owed: collected if it stakes
    cheat.send(cheat.calls.stake(SLASH_CAP_WEI))
    execute(env, honest, env.checkers[:2])
    assert env.outsider.claim(honest.ref, cheat.account).taken_wei == SLASH_CAP_WEI


def test_friends_answering_their_own_junk_claims_give_the_stake_to_the_honest_claim(
    env_fast: Env,
) -> None:
    """Review of stop 45: the friends' junk claims held the cheat's stake while the honest
    claim came, then more friends answered them, the answers stood and the stake went back
    whole (their forfeits stayed in the coalition), burning nothing."""
    env = env_fast
    cheat, friends = env.workers[0], env.checkers[2:4]
    register(friends)
    cheat.send(cheat.calls.stake(2 * SLASH_CAP_WEI))
    junk = junk_claims(env, cheat, friends)
    honest = honest_claim_on(env, cheat)
    answerers, keys = fresh(env, 3)
    claimers = ordered(friends)
    for claim in junk:
        vote = claim.answer.rung(claimers, 0)
        env.outsider.send(env.outsider.calls.answer_claim(
            claim.answer, claimers, sign_all(env, vote, answerers, keys)))  # fmt: skip
    env.chain.advance_time(CHALLENGE_S)
    execute(env, honest, env.checkers[:2])  # the stake is still held: nothing yet
    assert env.outsider.claim(honest.ref, cheat.account).taken_wei == 0
    for claim in junk:  # the answers stand: the stake goes back
        env.outsider.send(env.outsider.calls.settle_contest(claim.answer, claimers, [ordered(answerers)]))
    assert cheat.stake_of().active_wei == 2 * SLASH_CAP_WEI
    execute(env, honest, env.checkers[:2])
    assert env.outsider.claim(honest.ref, cheat.account).taken_wei == SLASH_CAP_WEI
    assert cheat.stake_of().active_wei == SLASH_CAP_WEI


def test_positions_lost_on_purpose_move_half_the_locked_stake(env_fast: Env) -> None:
    """Review of stop 45: rather than let its sybil claims execute, the cheat had three more
    friends answer them; the answers stood and its locked positions went to the coalition
    as forfeits, whole, out of reach of the honest claim still owed. Half of a forfeit is
    burned now, as half of a slash: that way out costs the coalition half of what it
    moves."""
    env = env_fast
    cheat, sybils, friend = env.workers[0], env.workers[1:3], env.checkers[2]
    register([cheat], 3 * SLASH_CAP_WEI)
    register([friend], 2 * CHECKER_MIN_STAKE_WEI)
    job_id = os.urandom(32)
    env.requester.deposit(job_id, 10**15, env.deadline_in(3600))
    sybil_claims = [claim_for(env, result_of(env, job_id, 101), sybil, SLASH_CAP_WEI) for sybil in sybils]
    for claim in sybil_claims:  # stakeless sybils: the claims hold nothing
        open_claim(env, claim, [cheat, friend])
    register(env.checkers[:2])
    honest = [claim_for(env, result_of(env, job_id, frame), cheat, SLASH_CAP_WEI) for frame in (7, 8)]
    for claim in honest:
        open_claim(env, claim, env.checkers[:2])
    assert [env.outsider.claim(c.ref, cheat.account).taken_wei for c in honest] == [SLASH_CAP_WEI, 0]
    answerers, keys = fresh(env, 3)
    claimers = ordered([cheat, friend])
    for claim in sybil_claims:
        env.outsider.send(env.outsider.calls.answer_claim(
            claim.answer, claimers, sign_all(env, claim.answer.rung(claimers, 0), answerers, keys)))  # fmt: skip
    env.chain.advance_time(CHALLENGE_S)
    for claim in sybil_claims:  # the answers stand: the claimers' positions are forfeit
        env.outsider.send(env.outsider.calls.settle_contest(claim.answer, claimers, [ordered(answerers)]))
    assert cheat.stake_of().active_wei == 0  # its cap went to the honest claim, the rest lost
    forfeits = 2 * len(claimers) * SLASH_CAP_WEI
    coalition = [*sybils, *answerers]
    assert sum(c.credit_wei(c.account) for c in coalition) == forfeits // 2  # the rest burned
    execute(env, honest[1], env.checkers[:2])  # still owed: nothing left to collect
    assert env.outsider.claim(honest[1].ref, cheat.account).taken_wei == 0

"""Two ways a cheat's coalition keeps its stake from an honest claim (review of stop 44).
Known and open: docs/VERIFICATION.md, "What a cheat's friends can do to its stake". Each
test plays the attack and asserts what the escrow should do; both stay expected failures
until it does (``strict``: they fail the run the day they pass).

1. A shield of claimer positions: the cheat is a registered checker too (one payment
   address for its roles). With one staked friend it signs claims against sybil workers
   staked 1 wei; each locks a cap of its stake as a claimer. A claim takes only free
   stake (and unbonding), so the honest claim on the cheat's faked frame takes 1 wei and
   uses the frame up; the sybil claims execute and the locks come back.
2. Friends claim first: the cheat signs junk results in a friend requester's job and two
   staked friends claim them. Claims on one accused are first come, first served: the
   honest claim finds nothing, and after CHALLENGE_S (2 days, against a 7-day unbonding)
   the coalition holds every wei of the stake as credit."""

from __future__ import annotations

import os

import pytest

from ledger.fraud import FraudClaim, ResultRef, sign
from tests.ledger.conftest import CHALLENGE_S, CHECKER_MIN_STAKE_WEI, SLASH_CAP_WEI, Env
from tests.ledger.test_stake_slash import (
    TILES,
    claim_for,
    open_claim,
    ordered,
    register,
    result_of,
    signed,
    staked_job,
)


@pytest.mark.xfail(strict=True, reason="a cheat's claimer positions shield its stake (open)")
def test_a_cheats_own_claimer_positions_do_not_shield_its_stake(env_fast: Env) -> None:
    env = env_fast
    cheat, sybils, friend = env.workers[0], env.workers[1:3], env.checkers[2]
    register([cheat], CHECKER_MIN_STAKE_WEI + 1)
    register([friend], 2 * CHECKER_MIN_STAKE_WEI)
    job_id = staked_job(env, sybils[0], 1)
    sybils[1].send(sybils[1].calls.stake(1))
    for sybil in sybils:  # each locks a cap of the cheat's stake as a claimer
        open_claim(env, claim_for(env, result_of(env, job_id, 101), sybil, SLASH_CAP_WEI),
                   [cheat, friend])  # fmt: skip
    register(env.checkers[:2])
    honest = claim_for(env, result_of(env, job_id, frame=7), cheat, SLASH_CAP_WEI)
    open_claim(env, honest, env.checkers[:2])
    assert env.outsider.claim(honest.ref, cheat.account).taken_wei == SLASH_CAP_WEI  # 1 today


@pytest.mark.xfail(strict=True, reason="friends' claims on junk results take the stake first (open)")
def test_friends_claiming_junk_results_first_leave_the_honest_claim_its_cap(env_fast: Env) -> None:
    env = env_fast
    cheat, friends, friend_requester = env.workers[0], env.checkers[2:4], env.outsider
    register(friends)
    cheat.send(cheat.calls.stake(2 * SLASH_CAP_WEI))
    friend_job = os.urandom(32)
    friend_requester.deposit(friend_job, 1, env.deadline_in(3600))
    for frame in (1, 2):  # junk the cheat signs in its friend's job, claimed by its friends
        ref = ResultRef(env.chain.chain_id, env.contract_bytes, friend_requester.account,
                        friend_job, b"\x09" * 32, frame, b"junk".ljust(32, b"\0"))  # fmt: skip
        claim = FraudClaim(ref, cheat.account, TILES, SLASH_CAP_WEI)
        env.outsider.send(env.outsider.calls.claim_fraud(
            claim, sign(ref, env.key_of(cheat)), signed(env, claim, friends)))  # fmt: skip
    register(env.checkers[:2])
    job_id = staked_job(env, env.workers[1], 1)
    honest = claim_for(env, result_of(env, job_id, frame=7), cheat, SLASH_CAP_WEI)
    open_claim(env, honest, env.checkers[:2])  # reverts "nothing to slash" today
    env.chain.advance_time(CHALLENGE_S)
    env.outsider.send(env.outsider.calls.execute_slash(honest, ordered(env.checkers[:2])))
    assert env.outsider.claim(honest.ref, cheat.account).taken_wei == SLASH_CAP_WEI

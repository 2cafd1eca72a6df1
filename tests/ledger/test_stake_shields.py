"""Two ways a cheat's coalition kept its stake from an honest claim (review of stop 44),
played on the real contract; docs/VERIFICATION.md, "What a cheat's friends can do to its
stake".

1. A shield of claimer positions: the cheat is a registered checker too (one payment
   address for its roles). With one staked friend it signs claims against sybil workers
   staked 1 wei; each locks a cap of its stake as a claimer. A claim takes only free
   stake (and unbonding), so the honest claim on the cheat's faked frame took 1 wei.
   Now a signer keeps a cap free besides what it locks (``protocol.slashing.
   may_back_claim``): the honest claim takes the whole cap.
2. Friends claim first: the cheat signs junk results in a friend requester's job and two
   staked friends claim them. Claims on one accused are first come, first served, so
   the honest claim still finds nothing; but half of every upheld claim is burned
   (``protocol.slashing.slash_split``), so the escape costs the cheat half its stake:
   at two caps staked, as much as the honest claim would have taken."""

from __future__ import annotations

import os

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


def test_a_cheats_own_claimer_positions_do_not_shield_its_stake(env_fast: Env) -> None:
    env = env_fast
    cheat, sybils, friend = env.workers[0], env.workers[1:3], env.checkers[2]
    register([cheat], CHECKER_MIN_STAKE_WEI + SLASH_CAP_WEI)
    register([friend], 2 * CHECKER_MIN_STAKE_WEI)
    job_id = staked_job(env, sybils[0], 1)
    sybils[1].send(sybils[1].calls.stake(1))
    for sybil in sybils:  # each locks a cap of the cheat's stake as a claimer
        open_claim(env, claim_for(env, result_of(env, job_id, 101), sybil, SLASH_CAP_WEI),
                   [cheat, friend])  # fmt: skip
    # a cap stays free: one more lock is refused, however many claims the cheat would sign
    assert cheat.stake_of().free_wei == SLASH_CAP_WEI
    reverts("stake at risk too low", open_claim, env,
            claim_for(env, result_of(env, job_id, 102), sybils[0], SLASH_CAP_WEI), [cheat, friend])  # fmt: skip
    register(env.checkers[:2])
    honest = claim_for(env, result_of(env, job_id, frame=7), cheat, SLASH_CAP_WEI)
    open_claim(env, honest, env.checkers[:2])
    assert env.outsider.claim(honest.ref, cheat.account).taken_wei == SLASH_CAP_WEI


def test_friends_claiming_junk_results_first_burn_half_the_cheats_stake(env_fast: Env) -> None:
    env = env_fast
    cheat, friends, friend_requester = env.workers[0], env.checkers[2:4], env.outsider
    register(friends)
    staked_wei = 2 * SLASH_CAP_WEI
    cheat.send(cheat.calls.stake(staked_wei))
    friend_job = os.urandom(32)
    friend_requester.deposit(friend_job, 1, env.deadline_in(3600))
    junk: list[FraudClaim] = []
    for frame in (1, 2):  # junk the cheat signs in its friend's job, claimed by its friends
        ref = ResultRef(env.chain.chain_id, env.contract_bytes, friend_requester.account,
                        friend_job, b"\x09" * 32, frame, b"junk".ljust(32, b"\0"))  # fmt: skip
        claim = FraudClaim(ref, cheat.account, TILES, SLASH_CAP_WEI)
        env.outsider.send(env.outsider.calls.claim_fraud(
            claim, sign(ref, env.key_of(cheat)), signed(env, claim, friends)))  # fmt: skip
        junk.append(claim)
    register(env.checkers[:2])
    job_id = staked_job(env, env.workers[1], 1)
    honest = claim_for(env, result_of(env, job_id, frame=7), cheat, SLASH_CAP_WEI)
    # first come, first served: the honest claim finds nothing (open: a shared hold)
    reverts("nothing to slash", open_claim, env, honest, env.checkers[:2])
    env.chain.advance_time(CHALLENGE_S)
    for claim in junk:
        env.outsider.send(env.outsider.calls.execute_slash(claim, ordered(friends)))
    coalition = [friend_requester, *friends]
    recovered = sum(c.credit_wei(c.account) for c in coalition)
    split = slash_split(SLASH_CAP_WEI, len(friends))
    assert recovered == 2 * (split.requester_wei + 2 * split.per_claimer_wei) == staked_wei // 2
    # the escape cost the cheat what the honest claim would have taken
    assert staked_wei - recovered >= SLASH_CAP_WEI
    assert cheat.stake_of().active_wei == 0

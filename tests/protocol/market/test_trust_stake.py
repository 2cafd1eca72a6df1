"""A worker's record lowers its checks only while stake backs it.

The long con: a cheater builds a record with honest frames, then cheats. At ``normal``
a trusted worker is checked on a quarter of its results, so two thirds of its cheats
were accepted (cheaters_20pct on an established network, seeds 1-20: 67.1 % slipped,
docs/VERIFICATION.md) and a caught one cost it its record only. Now a job that asks
checkers for the stake one claim takes (``pass_claim_wei``: the escrow's cap, set by
the node and the simulator) asks the same of a worker before its record counts for the
check plan: an unstaked record is checked as a fresh key is; a staked one keeps its
discount, and each cheat caught costs it a claim (protocol.market.verifying's
confirmation).
"""

from __future__ import annotations

from tests.protocol.market.test_check_plan import TRUSTED, harness_with

CAP_WEI = 10**17
DIGESTS = [bytes([i]) * 32 for i in range(200)]


def test_a_record_lowers_the_checks_only_while_stake_backs_it() -> None:
    harness = harness_with({0: TRUSTED}, frames=(1,), checkers=3)  # assurance normal
    worker = next(iter(harness.workers))
    (task_id,) = harness.renders
    address = harness.job._tasks[task_id].payee_address

    def checked() -> int:
        plans = [harness.job.check_plan(worker, d, harness.now_ms, address) for d in DIGESTS]
        return sum(1 for k in plans if k)

    assert checked() < 100  # no claim is asked of checkers (no chain): the record counts
    harness.job.set_pass_claim_stake(CAP_WEI)
    assert checked() == len(DIGESTS)  # unstaked: every result, as a fresh key's
    assert harness.job.checkers_needed(worker, harness.now_ms, address) == 2  # a fresh key's
    harness.job.set_stake(address, CAP_WEI - 1)
    assert checked() == len(DIGESTS)  # less than one claim takes
    harness.job.set_stake(address, CAP_WEI)
    assert checked() < 100  # its stake answers for a caught cheat: the discount again
    assert harness.job.checkers_needed(worker, harness.now_ms, address) == 1
    assert harness.job.check_plan(worker, DIGESTS[0], harness.now_ms) in (0, 8)  # by its bid

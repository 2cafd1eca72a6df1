"""The event follower: confirmation depth, order, idempotence and reorgs (via chain snapshots)."""

from __future__ import annotations

import os

from ledger.artifacts import load_artifact
from ledger.follower import ChainEvent, EventFollower, FollowerConfig
from tests.ledger.conftest import ETHER, Env


def follower(env: Env, confirmations: int) -> EventFollower:
    start = env.chain.w3.eth.block_number + 1
    config = FollowerConfig(confirmations=confirmations, rewind_blocks=16)
    return EventFollower(env.chain.w3, env.escrow, load_artifact("Escrow")["abi"], start, config)


def test_events_arrive_in_order_after_confirmations(env: Env) -> None:
    seen: list[ChainEvent] = []
    chain = env.chain
    f = follower(env, confirmations=2)
    job_id = os.urandom(32)
    env.requester.deposit(job_id, ETHER, env.deadline_in(3600))
    env.requester.open_lanes(job_id, [(w.account, ETHER // 10) for w in env.workers[:2]])
    env.outsider.redeem_batch([env.voucher(job_id, w, ETHER // 10) for w in env.workers[:2]])
    assert f.poll(seen.append) == 1 and seen[0].name == "Deposited"  # 2 blocks deep
    assert f.poll(seen.append) == 0  # the lanes block is not deep enough yet
    chain.mine(1)
    assert f.poll(seen.append) == 2
    chain.mine(1)
    assert f.poll(seen.append) == 2
    assert [e.name for e in seen] == ["Deposited", *["LaneFunded"] * 2, *["Redeemed"] * 2]
    assert [e.position for e in seen] == sorted(e.position for e in seen)
    assert seen[3].args["payee"] == env.workers[0].sender.address
    assert seen[3].args["amount"] == ETHER // 10
    assert f.poll(seen.append) == 0  # nothing new: nothing delivered twice


def test_reorg_inside_the_depth_is_never_seen(env: Env) -> None:
    seen: list[ChainEvent] = []
    chain = env.chain
    f = follower(env, confirmations=2)
    fork = chain.snapshot()
    env.requester.deposit(os.urandom(32), ETHER, env.deadline_in(3600))
    assert f.poll(seen.append) == 0
    chain.revert(fork)  # the deposit's block is orphaned
    chain.mine(3)
    assert f.poll(seen.append) == 0
    assert seen == []


def test_deep_reorg_rescans_and_stays_idempotent(env: Env) -> None:
    seen: list[ChainEvent] = []
    chain = env.chain
    f = follower(env, confirmations=0)
    kept = os.urandom(32)
    env.requester.deposit(kept, ETHER, env.deadline_in(3600))
    fork = chain.snapshot()
    env.requester.deposit(os.urandom(32), ETHER, env.deadline_in(3600))
    assert f.poll(seen.append) == 2
    chain.revert(fork)
    chain.mine(1)  # a different block at the same height
    moved = os.urandom(32)
    env.outsider.send(env.outsider.calls.deposit(moved, ETHER, env.deadline_in(3600)))
    assert f.poll(seen.append) == 1  # only the new event; `kept` is not re-delivered
    assert seen[-1].args["job_id"] == moved
    assert sum(1 for e in seen if e.args["job_id"] == kept) == 1


def test_event_identity(env: Env) -> None:
    seen: list[ChainEvent] = []
    f = follower(env, confirmations=0)
    env.requester.deposit(os.urandom(32), ETHER, env.deadline_in(3600))
    f.poll(seen.append)
    event: ChainEvent = seen[0]
    receipt = env.chain.w3.eth.get_transaction_receipt(event.tx_hash)
    assert receipt["blockNumber"] == event.block_number


def test_callback_failure_redelivers(env: Env) -> None:
    seen: list[ChainEvent] = []
    f = follower(env, confirmations=0)
    env.requester.deposit(os.urandom(32), ETHER, env.deadline_in(3600))

    def broken(event: ChainEvent) -> None:
        raise RuntimeError("store is down")

    try:
        f.poll(broken)
    except RuntimeError:
        pass
    assert f.poll(seen.append) == 1

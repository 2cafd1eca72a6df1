"""The payee: vouchers verified, persisted, redeemed on a slow, failing or racing chain."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
import trio
from eth_account import Account

from ledger.client import Secured
from ledger.errors import ChainUnreachable
from ledger.voucher_book import RedeemPolicy
from ledger.vouchers import Voucher, sign
from node.roles import persist
from node.roles.chain import Payee
from node.store import Store, open_store
from tests.roles.fakes import FakeChain, FakeEscrow

RETRY_S = 2.0
MOCK_LIMIT_S = 600
GWEI = 10**9  # vouchers worth far more than a redeem's gas at 1 wei/gas


class Setup:
    def __init__(self, store: Store) -> None:
        self.escrow = FakeEscrow(lambda: int(trio.current_time()) + 1_000_000)
        self.requester_key = bytes(Account.create().key)
        self.requester = bytes.fromhex(Account.from_key(self.requester_key).address[2:])
        self.me = os.urandom(20)
        self.chain = FakeChain(self.escrow, self.me)
        self.store = store
        self.payee = Payee(self.chain, store, RedeemPolicy(), RETRY_S)
        self.job_id = os.urandom(32)
        self.escrow.deposit(self.requester, self.job_id, 10**18, 2_000_000)
        self.escrow.open_lanes(self.requester, self.job_id, [(self.me, 10**15)])

    def voucher(self, cumulative_wei: int, key: bytes | None = None) -> Voucher:
        unsigned = Voucher(self.escrow.CHAIN_ID, self.escrow.CONTRACT, self.requester,
                           self.job_id, self.me, cumulative_wei)  # fmt: skip
        return sign(unsigned, key or self.requester_key)

    async def paid_on_chain(self, wei: int) -> None:
        await self.escrow.wait_until(lambda: self.escrow.paid.get((self.job_id, self.me)) == wei)


@asynccontextmanager
async def payee_running(tmp_path: Path) -> AsyncIterator[Setup]:
    with trio.fail_after(MOCK_LIMIT_S):  # mock time: a hang fails fast instead
        async with open_store(tmp_path / "node.db") as store, trio.open_nursery() as nursery:
            setup = Setup(store)
            await setup.payee.load()
            nursery.start_soon(setup.payee.run)
            yield setup
            nursery.cancel_scope.cancel()


async def test_a_newer_voucher_during_a_slow_redeem_is_not_counted_twice(
    autojump_clock: trio.testing.MockClock, tmp_path: Path
) -> None:
    async with payee_running(tmp_path) as s:
        s.chain.delay_s = 5.0
        assert await s.payee.receive(s.voucher(100 * GWEI), s.requester, "requester")
        await s.chain.wait_calls("redeem", 1)  # in flight now
        assert await s.payee.receive(s.voucher(300 * GWEI), s.requester, "requester")
        await s.paid_on_chain(100 * GWEI)
        await s.paid_on_chain(300 * GWEI)
        await s.escrow.wait_until(lambda: s.payee.paid_wei == 300 * GWEI)
        assert s.payee.paid_wei == s.escrow.balances[s.me] == 300 * GWEI


async def test_outage_and_revert_postpone_then_pay(
    autojump_clock: trio.testing.MockClock, tmp_path: Path
) -> None:
    async with payee_running(tmp_path) as s:
        s.chain.down = True
        assert await s.payee.receive(s.voucher(500 * GWEI), s.requester, "requester")
        await s.chain.wait_calls("secured", 3)  # retried every RETRY_S
        assert s.escrow.balances == {}
        s.chain.down = False
        s.chain.reverts = ["out of gas"]
        await s.chain.wait_calls("redeem", 2)
        await s.paid_on_chain(500 * GWEI)
        assert s.payee.paid_wei == 500 * GWEI


async def test_forged_and_foreign_vouchers_are_refused_and_not_kept(
    autojump_clock: trio.testing.MockClock, tmp_path: Path
) -> None:
    async with payee_running(tmp_path) as s:
        stranger = bytes(Account.create().key)
        assert not await s.payee.receive(s.voucher(100 * GWEI, stranger), s.requester, "requester")
        assert s.payee.book.total_owed_wei() == 0
        # signed by the job's requester, but paying another address: each such lane was a
        # chain read, a row and a book entry, and ours to redeem with our gas (review of
        # stop 38: only the worker's machine looked at the payee)
        other = bytes.fromhex(Account.create().address[2:])
        elsewhere = sign(Voucher(s.escrow.CHAIN_ID, s.escrow.CONTRACT, s.requester, s.job_id,
                                 other, 100 * GWEI), s.requester_key)  # fmt: skip
        assert not await s.payee.receive(elsewhere, s.requester, "requester")
        assert s.payee.owed_wei() == 0
        assert await s.payee.receive(s.voucher(100 * GWEI), s.requester, "requester")
        await s.paid_on_chain(100 * GWEI)


@pytest.mark.parametrize("restarts", [1, 2])
async def test_vouchers_survive_a_restart_before_redeeming(
    autojump_clock: trio.testing.MockClock, tmp_path: Path, restarts: int
) -> None:
    async with open_store(tmp_path / "node.db") as store:
        s = Setup(store)
        s.chain.down = True
        assert await s.payee.receive(s.voucher(700 * GWEI), s.requester, "requester")
        for _ in range(restarts):
            s.payee = Payee(s.chain, store, RedeemPolicy(), RETRY_S)
            await s.payee.load()
        assert s.payee.owed_wei() == 700 * GWEI  # its redeem-by time is read once the chain answers
        s.chain.down = False
        await s.payee.redeem_now()
        assert s.escrow.balances[s.me] == 700 * GWEI


async def test_a_voucher_someone_else_redeemed_drops_out_and_the_others_still_pay(
    autojump_clock: trio.testing.MockClock, tmp_path: Path
) -> None:
    """Issue 13, problem 3: the payee's plan follows paid() on chain, not its own record,
    so a voucher redeemed for it by anyone (or before a restart) joins no batch."""
    async with open_store(tmp_path / "node.db") as store:
        s = Setup(store)
        other_job = os.urandom(32)
        s.escrow.deposit(s.requester, other_job, 10**18, 2_000_000)
        s.escrow.open_lanes(s.requester, other_job, [(s.me, 10**15)])
        first = s.voucher(400 * GWEI)
        second = sign(Voucher(s.escrow.CHAIN_ID, s.escrow.CONTRACT, s.requester, other_job,
                              s.me, 600 * GWEI), s.requester_key)  # fmt: skip
        s.chain.down = True  # held, not yet redeemed
        assert await s.payee.receive(first, s.requester, "requester")
        assert await s.payee.receive(second, s.requester, "requester")
        s.escrow.redeem(first)  # a third party front-runs one of them
        s.chain.down = False
        await s.payee.redeem_now()
        assert s.escrow.skipped == [] and s.escrow.balances[s.me] == 1000 * GWEI
        assert s.payee.paid_wei == 1000 * GWEI and s.payee.owed_wei() == 0
        # restarted, it knows what the chain paid (persisted) and redeems nothing twice
        s.payee = Payee(s.chain, store, RedeemPolicy(), RETRY_S)
        await s.payee.load()
        assert s.payee.paid_wei == 1000 * GWEI and s.payee.owed_wei() == 0
        await s.payee.redeem_now()
        assert s.chain.calls.count("redeem") == 1


async def test_a_voucher_past_its_redeem_by_time_is_written_off_and_forgotten(
    autojump_clock: trio.testing.MockClock, tmp_path: Path
) -> None:
    async with open_store(tmp_path / "node.db") as store:
        s = Setup(store)
        s.chain.gas_price = 10**6  # 30k gas x 1e6 wei: more than the voucher is worth
        assert await s.payee.receive(s.voucher(GWEI), s.requester, "requester")
        await s.payee.redeem_now()  # not worth its gas before the urgent margin
        assert s.payee.owed_wei() == GWEI and not s.escrow.balances
        await trio.sleep(2_000_000)  # autojump: mock time passes deadline + grace
        await s.payee.redeem_now()
        assert s.payee.owed_wei() == 0 and not s.escrow.balances
        assert await store.call(persist.load_vouchers) == []


async def test_concurrent_receives_keep_the_newest_voucher_whatever_order_they_finish(
    autojump_clock: trio.testing.MockClock, tmp_path: Path
) -> None:
    """The older voucher's chain read answers after the newer one's failed: the newer
    voucher (held until its redeem-by time is read) must not be dropped for it (it was:
    a worker in the chain-outage e2e test ended paid one frame short)."""
    async with open_store(tmp_path / "node.db") as store:
        s = Setup(store)
        answer, asked, real_secured, reads = trio.Event(), trio.Event(), s.chain.secured, []

        async def secured(requester: bytes, job_id: bytes) -> Secured:
            reads.append(job_id)
            if len(reads) == 1:  # the older voucher's read: slow, then answers
                asked.set()
                await answer.wait()
                return await real_secured(requester, job_id)
            raise ChainUnreachable("chain down")  # the newer one's: fails at once

        s.chain.secured = secured  # type: ignore[method-assign]
        async with trio.open_nursery() as nursery:
            nursery.start_soon(s.payee.receive, s.voucher(100 * GWEI), s.requester, "requester")
            await asked.wait()  # the older voucher's read is in flight
            assert await s.payee.receive(s.voucher(300 * GWEI), s.requester, "requester")
            answer.set()
        assert s.payee.owed_wei() == 300 * GWEI
        (row,) = await store.call(persist.load_vouchers)
        assert row[5] == 300 * GWEI and row[9] > 0  # the newest, with its redeem-by time
        await s.payee.redeem_now()
        assert s.escrow.balances[s.me] == 300 * GWEI

"""Verdicts count in the public record by their checker's chain-confirmed stake (issue 16 item 2).

``CheckerStakes`` reads the escrow's minimum checker stake and each named
checker's active stake (at the payment address its advert binds), and is the
record book's ``checker_counts``: a puppet checker without stake stops
counting once the network asks stake, and a checker whose stake lapses stops
counting at the next refresh.
"""

from __future__ import annotations

import trio
import trio.testing

from ledger.errors import LedgerError
from node.record.stakes import CheckerStakes
from protocol import NodeKey
from protocol.record import RecordBook, RecordConfig, stake_admits
from tests.protocol.test_record import World
from tests.protocol.vectors_samples import NOW_MS

MIN_WEI = 100


class FakeStakes:
    def __init__(self) -> None:
        self.min_wei = MIN_WEI
        self.by_address: dict[bytes, int] = {}
        self.down = False
        self.reads = 0

    async def read_min(self) -> int:
        await trio.lowlevel.checkpoint()
        if self.down:
            raise LedgerError("chain down")
        return self.min_wei

    async def read_stake(self, address: bytes) -> int:
        await trio.lowlevel.checkpoint()
        self.reads += 1
        if self.down:
            raise LedgerError("chain down")
        return self.by_address.get(address, 0)


def test_the_rule() -> None:
    assert stake_admits(None, 0) and stake_admits(0, 0)  # a network without checker stake
    assert not stake_admits(None, MIN_WEI)  # not confirmed yet
    assert not stake_admits(MIN_WEI - 1, MIN_WEI) and stake_admits(MIN_WEI, MIN_WEI)


async def test_only_staked_checkers_count_and_lapsed_stake_stops_counting(
    autojump_clock: trio.testing.MockClock,
) -> None:
    w = World()
    staked, puppet, unknown = (NodeKey.generate() for _ in range(3))
    addresses = {staked.node_id.raw: b"\x01" * 20, puppet.node_id.raw: b"\x02" * 20}
    chain = FakeStakes()
    chain.by_address = {b"\x01" * 20: 150, b"\x02" * 20: 0}
    stakes = CheckerStakes(chain.read_min, chain.read_stake, addresses.get, refresh_s=300.0)
    book = RecordBook(RecordConfig(checker_counts=stakes.counts))
    book.learn_job(w.announce, w.requester.node_id.raw)
    for frame, checker in ((1, staked), (2, staked), (3, puppet), (4, puppet), (5, unknown)):
        book.add(w.record(frame, checker=checker), NOW_MS)
    worker = w.worker.node_id.raw
    assert book.history(worker, NOW_MS).accepted == 5  # no minimum read yet: all count
    async with trio.open_nursery() as nursery:
        nursery.start_soon(stakes.run)
        await trio.testing.wait_all_tasks_blocked()
        assert stakes.min_stake_wei == MIN_WEI
        assert book.history(worker, NOW_MS).accepted == 0  # nothing confirmed yet: read now
        await trio.testing.wait_all_tasks_blocked()
        assert book.history(worker, NOW_MS).accepted == 2  # the staked checker's two
        assert (
            stakes.stake_of(puppet.node_id.raw) == 0
            and stakes.stake_of(unknown.node_id.raw) is None
        )

        chain.by_address[b"\x01" * 20] = MIN_WEI - 1  # it unbonds
        chain.down = True  # and the chain is unreachable at the next refresh: readings stand
        await trio.sleep(301)  # autojump: the refresh is due
        assert book.history(worker, NOW_MS).accepted == 2
        chain.down = False
        await trio.sleep(301)
        await trio.testing.wait_all_tasks_blocked()
        assert book.history(worker, NOW_MS).accepted == 0
        nursery.cancel_scope.cancel()


async def test_the_wanted_queue_is_bounded(autojump_clock: trio.testing.MockClock) -> None:
    chain = FakeStakes()
    stakes = CheckerStakes(chain.read_min, chain.read_stake, lambda _c: None, max_checkers=8)
    stakes.min_stake_wei = MIN_WEI
    for i in range(1_000):  # a flood of checker ids nobody advertised
        assert not stakes.counts(i.to_bytes(32, "big"))
    assert len(stakes._wanted) == 8
    async with trio.open_nursery() as nursery:
        nursery.start_soon(stakes.run)
        await trio.testing.wait_all_tasks_blocked()
        assert not stakes._wanted and chain.reads == 0  # no advert, no address: nothing read
        nursery.cancel_scope.cancel()

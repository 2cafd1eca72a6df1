"""How long a node watches what it signed for claims, and at what RPC cost.

Review finding (stop 26): the watch kept a result 7 days (and 1,024 of them) while the
escrow took a claim on it forever, so a requester with a colluding quorum waited for
the watch to lapse and claimed an old result, unanswered. The escrow now opens claims
only while the job's vouchers pay (tests/ledger/test_claim_window.py); the watch keeps
a result until that window and the challenge after it are over, reading the job's
deadline again before it lets go (a top-up may have pushed it), and reads at most
``POLL_BATCH`` claims a poll, every result within ``reread_bound_s``."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import trio
import trio.testing

from ledger.client import CLAIM_PENDING, ClaimState
from ledger.deploy import EscrowParams
from ledger.fraud import ResultRef
from node.roles import persist
from node.roles.claim_watch import MAX_WATCHED, POLL_BATCH, WATCH_FOR_S, ClaimWatch, reread_bound_s
from node.store import Store, open_store
from tests.roles.fakes import FakeChain, FakeEscrow

DAY_S = 24 * 3600
T0_S = 1_000_000  # the escrow's and the watch's clock at trio time 0
REQUESTER = b"\x0b" * 20


class Watching:
    def __init__(self, store: Store) -> None:
        self.escrow = FakeEscrow(lambda: int(trio.current_time()) + T0_S)
        self.me = os.urandom(20)
        self.chain = FakeChain(self.escrow, self.me)
        self.pending: list[ResultRef] = []
        self.watch = ClaimWatch(self.chain, store, lambda: int((trio.current_time() + T0_S) * 1000),
                                lambda ref, _settle, _req: self.pending.append(ref))  # fmt: skip
        self.store = store

    def job(self, deadline_in_s: int) -> bytes:
        job_id = os.urandom(32)
        self.escrow.deposit(REQUESTER, job_id, 10**18, self.escrow.now_s() + deadline_in_s)
        return job_id

    def ref(self, job_id: bytes, frame: int = 1) -> ResultRef:
        return ResultRef(self.escrow.CHAIN_ID, self.escrow.CONTRACT, REQUESTER, job_id,
                         os.urandom(32), frame, os.urandom(32))  # fmt: skip

    def claim(self, ref: ResultRef) -> None:
        """A colluding quorum's claim on our result (its signatures are the escrow's
        business, tests/roles/test_claim_answer.py)."""
        self.escrow.claims[(ref, self.me)] = ClaimState(
            1, 1, self.escrow.now_s() + self.escrow.terms.challenge_s, b"", CLAIM_PENDING)

    async def claimed_now_is_seen(self, ref: ResultRef) -> None:
        """A poll (the first look, if due), then a claim on ``ref``: the next poll hands
        it to the answerer."""
        await self.watch.poll()
        self.claim(ref)
        await self.watch.poll()
        assert self.pending == [ref]

    async def stored(self) -> int:
        return len(await self.store.call(persist.watched_results))


@asynccontextmanager
async def watching(tmp_path: Path) -> AsyncIterator[Watching]:
    async with open_store(tmp_path / "node.db", inline=True) as store, trio.open_nursery() as nursery:
        w = Watching(store)
        nursery.start_soon(w.watch._saver)
        yield w
        nursery.cancel_scope.cancel()


async def test_a_result_stays_watched_while_its_job_can_still_be_claimed(
    autojump_clock: trio.testing.MockClock, tmp_path: Path
) -> None:
    """The attack: a long job, a claim after the watch's first look. Before, the watch had
    let the result go at 7 days and the claim went unanswered."""
    async with watching(tmp_path) as w:
        ref = w.ref(w.job(deadline_in_s=10 * DAY_S))
        w.watch.watch(ref, b"requester-node")
        await trio.sleep(8 * DAY_S)  # past the first look, inside the job's window
        await w.claimed_now_is_seen(ref)


async def test_a_top_up_inside_the_window_keeps_the_result_watched(
    autojump_clock: trio.testing.MockClock, tmp_path: Path
) -> None:
    async with watching(tmp_path) as w:
        job_id = w.job(deadline_in_s=DAY_S)
        ref = w.ref(job_id)
        w.watch.watch(ref, b"requester-node")
        await trio.sleep(DAY_S)
        w.escrow.deposit(REQUESTER, job_id, 1, w.escrow.now_s() + 9 * DAY_S)  # pushed later
        await trio.sleep(WATCH_FOR_S)
        await w.claimed_now_is_seen(ref)  # the first look read the deadline again


async def test_a_result_is_let_go_once_no_claim_can_open_or_be_answered(
    autojump_clock: trio.testing.MockClock, tmp_path: Path
) -> None:
    async with watching(tmp_path) as w:
        ref = w.ref(w.job(deadline_in_s=DAY_S))
        w.watch.watch(ref, b"requester-node")
        await trio.sleep(WATCH_FOR_S)  # past deadline + grace + challenge
        await trio.testing.wait_all_tasks_blocked()
        assert await w.stored() == 1
        await w.watch.poll()
        assert w.watch.watching == 0 and "claim_state" not in w.chain.calls
        await trio.testing.wait_all_tasks_blocked()
        assert await w.stored() == 0  # a restart does not watch it again either


async def test_a_chain_that_does_not_answer_keeps_the_result_watched(
    autojump_clock: trio.testing.MockClock, tmp_path: Path
) -> None:
    async with watching(tmp_path) as w:
        ref = w.ref(w.job(deadline_in_s=10 * DAY_S))
        w.watch.watch(ref, b"requester-node")
        await trio.sleep(WATCH_FOR_S)
        w.chain.down = True
        await w.watch.poll()  # the deadline cannot be read: kept
        w.chain.down = False
        await w.claimed_now_is_seen(ref)


async def test_a_poll_reads_a_bounded_batch_and_every_result_in_turn(
    autojump_clock: trio.testing.MockClock, tmp_path: Path
) -> None:
    async with watching(tmp_path) as w:
        job_id = w.job(deadline_in_s=10 * DAY_S)
        refs = [w.ref(job_id, frame) for frame in range(2 * POLL_BATCH + 10)]
        for ref in refs:
            w.watch.watch(ref, b"requester-node")
        w.claim(refs[0])
        w.claim(refs[-1])
        await w.watch.poll()
        assert w.chain.calls.count("claim_state") == POLL_BATCH
        await w.watch.poll()
        await w.watch.poll()
        assert w.chain.calls.count("claim_state") == len(refs) + POLL_BATCH - 10
        assert set(w.pending) == {refs[0], refs[-1]}


def test_every_result_is_read_well_inside_the_challenge_window() -> None:
    """A full watch re-reads each result within ``reread_bound_s``: a quarter of the
    deployed escrow's challenge window at most, so an answer keeps most of it."""
    assert reread_bound_s() == MAX_WATCHED / POLL_BATCH * 300.0
    assert reread_bound_s() <= EscrowParams().challenge_s / 4

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
from dataclasses import replace
from pathlib import Path

import trio
import trio.testing

from ledger.client import CLAIM_ANSWERED, CLAIM_PENDING, ClaimState
from ledger.deploy import EscrowParams
from ledger.fraud import ResultRef
from node.roles import persist
from node.roles.claim_watch import (
    MAX_UNTIL_MS,
    MAX_WATCHED,
    POLL_BATCH,
    WATCH_FOR_S,
    ClaimWatch,
    _Watched,
    reread_bound_s,
)
from node.store import Store, open_store
from protocol.envelope import decode_envelope
from tests.roles.cluster import open_cluster
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

    def claim(self, ref: ResultRef, status: int = CLAIM_PENDING) -> None:
        """A colluding quorum's claim on our result (its signatures are the escrow's
        business, tests/roles/test_claim_answer.py)."""
        self.escrow.claims[(ref, self.me)] = ClaimState(
            1, 1, self.escrow.now_s() + self.escrow.terms.challenge_s, b"", status)

    async def claimed_now_is_seen(self, ref: ResultRef) -> None:
        """A poll (the first look, if due), then a claim on ``ref``: the next poll hands
        it to the answerer."""
        await self.watch.poll()
        self.claim(ref)
        await self.watch.poll()
        assert self.pending == [ref]

    async def stored(self) -> int:
        return len(await self.store.call(persist.watched_results))


async def two_frames_of_one_task(w: Watching, job_id: bytes) -> tuple[ResultRef, ResultRef]:
    """Two results we signed for one task (two encodings of its frame), both watched."""
    first = w.ref(job_id)
    second = replace(first, frame_digest=os.urandom(32))
    w.watch.watch(first, b"requester-node")
    w.watch.watch(second, b"requester-node")
    return first, second


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
        w.escrow.terms = replace(w.escrow.terms, challenge_s=2 * DAY_S)  # the deployed one
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


async def test_a_deadline_near_the_contracts_limit_does_not_crash_the_node(
    autojump_clock: trio.testing.MockClock, tmp_path: Path
) -> None:
    """Review: a job escrowed until 2**64 - 1 s made the extended watch time overflow the
    store's INTEGER; the saver raised, the node died, and died again at each restart."""
    async with watching(tmp_path) as w:
        job_id = os.urandom(32)
        w.escrow.max_job_s = 2**64  # an escrow without MAX_JOB_S (the review found it so)
        w.escrow.deposit(REQUESTER, job_id, 10**18, 2**64 - 1)
        ref = w.ref(job_id)
        w.watch.watch(ref, b"requester-node")
        await trio.sleep(WATCH_FOR_S)
        await w.claimed_now_is_seen(ref)  # the first look extended it, clamped
        await trio.testing.wait_all_tasks_blocked()
        assert [until for _, until in await w.store.call(persist.watched_results)] == [MAX_UNTIL_MS]


async def test_two_frames_signed_for_one_task_are_both_watched(
    autojump_clock: trio.testing.MockClock, tmp_path: Path
) -> None:
    """Review: the watch was keyed by (job, task), so a requester that had a checker pass
    two encodings of one task's frame pushed the first pass out of the watch, then
    claimed it unanswered."""
    async with watching(tmp_path) as w:
        job_id = w.job(deadline_in_s=10 * DAY_S)
        first, _ = await two_frames_of_one_task(w, job_id)
        await trio.testing.wait_all_tasks_blocked()
        assert w.watch.watching == 2 and await w.stored() == 2
        await w.claimed_now_is_seen(first)


async def test_an_answered_claim_stays_watched_for_a_larger_quorums_claim(
    autojump_clock: trio.testing.MockClock, tmp_path: Path
) -> None:
    """The escrow lets a quorum larger than the answer's claim the frame again."""
    async with watching(tmp_path) as w:
        ref = w.ref(w.job(deadline_in_s=10 * DAY_S))
        w.watch.watch(ref, b"requester-node")
        w.claim(ref, CLAIM_ANSWERED)
        await w.watch.poll()
        assert w.watch.watching == 1
        await w.claimed_now_is_seen(ref)


async def test_a_job_the_chain_does_not_know_stays_watched(
    autojump_clock: trio.testing.MockClock, tmp_path: Path
) -> None:
    """It existed when we signed and escrow jobs are never deleted: a node behind."""
    async with watching(tmp_path) as w:
        ref = w.ref(os.urandom(32))  # never deposited, as a lagging node answers
        w.watch.watch(ref, b"requester-node")
        await trio.sleep(WATCH_FOR_S)
        await w.watch.poll()
        assert w.watch.watching == 1


async def test_a_short_challenge_window_reads_more_a_poll(
    autojump_clock: trio.testing.MockClock, tmp_path: Path
) -> None:
    async with watching(tmp_path) as w:
        w.escrow.terms = replace(w.escrow.terms, challenge_s=1200)  # an operator's choice
        job_id = w.job(deadline_in_s=10 * DAY_S)
        for frame in range(3 * POLL_BATCH):
            w.watch.watch(w.ref(job_id, frame), b"requester-node")
        assert await w.watch.reads_per_poll() == 3 * POLL_BATCH  # all, each poll
        assert reread_bound_s(1200) <= 1200 / 4 and reread_bound_s(3600) <= 3600 / 4


async def test_a_full_watch_takes_no_new_work_to_sign(
    autojump_clock: trio.testing.MockClock, tmp_path: Path
) -> None:
    """Review: a requester could have a node sign past ``MAX_WATCHED`` (its own jobs'
    windows kept open by top-ups) and push an older result out of the watch, then claim
    it. A full watch now bids on no escrowed job and takes no escrowed check: the work
    goes to a worker and the checkers whose watches have room (two: a new worker's
    result meets two checkers at normal, and one that never answers is not "none left")."""
    async with open_cluster(tmp_path) as cluster:
        client = await cluster.add("client", "client")
        full_worker = await cluster.add("w1", "worker")
        await cluster.add("w2", "worker")
        full_checker = await cluster.add("c1", "checker")
        await cluster.add("c2", "checker")
        await cluster.add("c3", "checker")
        for member in (full_worker, full_checker):
            watch = member.live().defence.watch  # type: ignore[union-attr]
            far = T0_S * 1000 + 10**12
            for i in range(MAX_WATCHED):
                ref = ResultRef(1, b"\0" * 20, REQUESTER, i.to_bytes(32, "big"), b"\0" * 32, 1, b"\0" * 32)
                watch._watched[(ref.job_id, ref.task_id, ref.frame_digest)] = _Watched(ref, b"", far)
            assert watch.full
        await cluster.settle("client", 5)
        job_id = await cluster.submit("client", frames=3)
        job = client.live().requester.jobs[job_id]
        await job.done.wait()
        assert job.view.outcome == "completed"
        senders = {decode_envelope(wire).sender.raw for wire in job.results.values()}
        assert senders == {cluster.members["w2"].key.node_id.raw}
        assert full_checker.live().checker.checked == 0  # type: ignore[union-attr]
        roomy = [cluster.members[c].live().checker.checked for c in ("c2", "c3")]  # type: ignore[union-attr]
        assert sum(roomy) >= 6  # two checks of each of the three frames


async def test_claims_on_two_frames_of_one_task_are_both_handed_to_the_answerer(
    autojump_clock: trio.testing.MockClock, tmp_path: Path
) -> None:
    """Claim statuses were kept by (job, task): a second claim, on the other frame of the
    task, read "pending" as already seen and was never answered."""
    async with watching(tmp_path) as w:
        job_id = w.job(deadline_in_s=10 * DAY_S)
        first, second = await two_frames_of_one_task(w, job_id)
        w.claim(first)
        w.claim(second)
        await w.watch.poll()
        assert sorted(w.pending, key=lambda r: r.frame_digest) == sorted(
            [first, second], key=lambda r: r.frame_digest)

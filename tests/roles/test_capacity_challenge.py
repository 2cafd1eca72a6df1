"""Issue 17 item 3, node side: the requester challenges unproven bidders (a timed
render it checks with one tile) and keeps them to trial frames until they pass.

Attacks: a worker advertising a huge benchmark score at 1 wei a render unit, and a
flood of fresh identities doing the same. Rendering is the fake kit's
(tests/roles/fakes.py): 0.5 s of mock time a frame, whatever the advert says."""

from __future__ import annotations

from pathlib import Path

import trio

from node.render.benchmark import REFERENCE_VERSION, BenchmarkResult, save_result
from protocol.messages import CapacityChallenge, ChallengeAnswer
from tests.roles.cluster import Cluster, Member, open_cluster
from tests.roles.fakes import FAKE_BUILD, FAKE_DEVICE, FakeFrames

HUGE_RU_PER_HOUR = 1_000_000_000
TRIAL = 1  # the client's MarketConfig.trial_leases


async def liar(cluster: Cluster, name: str, frames: FakeFrames | None = None) -> Member:
    """A worker whose benchmark cache claims ``HUGE_RU_PER_HOUR``, asking 1 wei an RU."""
    result = BenchmarkResult(FAKE_BUILD, FAKE_DEVICE, 0.001, 1, HUGE_RU_PER_HOUR, REFERENCE_VERSION)
    save_result(cluster.root / name, result)
    return await cluster.add(name, "worker", price_wei_per_ru=1, frames=frames)


def workers_of(member: Member, job_id: bytes) -> set[str]:
    return member.live().requester.jobs[job_id].view.workers


async def test_a_fake_score_is_capped_by_its_challenge_and_does_not_win_the_job(
    autojump_clock: trio.testing.MockClock, tmp_path: Path
) -> None:
    async with open_cluster(tmp_path) as cluster:
        client = await cluster.add("client", "client", trial_leases=TRIAL)
        fake = await liar(cluster, "liar")
        honest = await cluster.add("honest", "worker")  # no benchmark: bids 1 s per RU
        await cluster.add("checker", "checker")
        await cluster.settle("client", 3)
        job_id = await cluster.submit("client", frames=4)
        job = client.live().requester.jobs[job_id]
        await job.done.wait()
        assert job.view.outcome == "completed"
        assert workers_of(client, job_id) == {honest.key.node_id.raw.hex()}
        challenger = client.live().requester.challenger
        now_ms = client.live().ctx.clock.now_ms()
        caught = challenger.book.outcome(fake.key.node_id.raw, now_ms)
        assert caught is not None and caught.caught and not caught.passed
        # capped to what its challenge showed: 1 RU/4 px in ~0.5 s, nowhere near 1e9 RU/h
        assert 0 < caught.score_ru_per_hour < 10_000
        passed = challenger.book.outcome(honest.key.node_id.raw, now_ms)
        assert passed is not None and passed.passed
        assert fake.live().worker.challenges.answered == 1  # type: ignore[union-attr]
        assert client.live().ctx.render.tiles.rendered >= 2  # type: ignore[attr-defined]


async def test_a_flood_of_fresh_identities_gets_at_most_the_trial_frames(
    autojump_clock: trio.testing.MockClock, tmp_path: Path
) -> None:
    async with open_cluster(tmp_path) as cluster:
        client = await cluster.add("client", "client", trial_leases=TRIAL)
        # the flood renders slowly (5 s a frame): its challenges are judged after the bid
        # window closed, so the cheapest of it wins the one trial lease first
        sybils = [await liar(cluster, f"sybil{i}", FakeFrames(delay_s=5.0)) for i in range(5)]
        staked = await cluster.add("staked", "worker")
        cluster.escrow.stakes[staked.address] = 10**18
        await cluster.add("checker", "checker")
        await cluster.settle("client", 7)
        job_id = await cluster.submit("client", frames=6)
        job = client.live().requester.jobs[job_id]
        peak = 0
        while job.view.outcome is None:
            leased = {t.worker for t in job.machine._active.values()}
            peak = max(peak, len(leased & {s.key.node_id.raw for s in sybils}))
            await job.wait_changed()
        assert job.view.outcome == "completed"
        assert peak <= TRIAL, peak
        flood = {s.key.node_id.raw.hex() for s in sybils}
        assert len(workers_of(client, job_id) & flood) <= TRIAL
        assert staked.key.node_id.raw.hex() in workers_of(client, job_id)
        challenger = client.live().requester.challenger
        await challenger.wait_judged(len(sybils))  # the last waited for a challenge slot
        now_ms = client.live().ctx.clock.now_ms()
        outcomes = [challenger.book.outcome(s.key.node_id.raw, now_ms) for s in sybils]
        assert all(o is not None and o.caught for o in outcomes)  # every one challenged
        assert challenger.book.outcome(staked.key.node_id.raw, now_ms) is None  # staked: none


async def test_uninvited_challenges_and_answers_are_refused(
    autojump_clock: trio.testing.MockClock, tmp_path: Path
) -> None:
    """A stranger cannot buy free renders with challenges, nor plant an answer."""
    async with open_cluster(tmp_path) as cluster:
        client = await cluster.add("client", "client", trial_leases=TRIAL)
        worker = await cluster.add("worker", "worker")
        await cluster.settle("client", 1)
        challenge = CapacityChallenge(b"c" * 32, b"j" * 32)  # a job the worker never bid on
        assert not await client.live().ctx.outbox.deliver(worker.key.node_id.raw, challenge)
        answer = ChallengeAnswer(b"c" * 32, b"j" * 32, "bafkfake", 1, FAKE_BUILD, FAKE_DEVICE)
        assert not await worker.live().ctx.outbox.deliver(client.key.node_id.raw, answer)
        assert worker.live().worker.challenges.answered == 0  # type: ignore[union-attr]
        assert worker.kit.frames.started == 0  # type: ignore[attr-defined]

"""Forced errors with real nodes: a lazy checker is caught by a plant, an honest one
cannot be framed, and the workers never notice (issue 17, item 1)."""

from __future__ import annotations

from pathlib import Path

import trio

from tests.roles.cluster import Cluster, Member, open_cluster
from tests.roles.test_job_flow import all_paid

EVERY_RESULT = 1_000_000  # plant_rate_ppm: every checked result gets a plant


def checker_fees(cluster: Cluster, job_id: bytes) -> int:
    """The fee of one check in this job (every fake worker asks the same price)."""
    job = cluster.members["client"].live().requester.jobs[job_id]
    (fee,) = {t.fee_wei for t in job.machine._tasks.values()}
    return fee


def answered(member: Member) -> int:
    checker = member.live().checker
    assert checker is not None
    return checker.checked


async def test_a_lazy_checker_is_caught_by_a_plant_and_loses_its_fee(
    autojump_clock: trio.testing.MockClock, tmp_path: Path
) -> None:
    async with open_cluster(tmp_path) as cluster:
        client = await cluster.add("client", "client", plant_rate_ppm=EVERY_RESULT)
        workers = [await cluster.add(f"w{i}", "worker") for i in (1, 2)]
        lazy = await cluster.add("lazy", "checker", adversary="lazy")
        honest = await cluster.add("c1", "checker")
        # a fresh worker's result meets two checkers at normal, and its plant a third
        other = await cluster.add("c2", "checker")
        await cluster.settle("client", 5)
        # eight frames: with three checkers the plant goes to one of two, and four frames
        # left the lazy one without any plant about one run in twelve
        job_id = await cluster.submit("client", frames=8)
        role = client.live().requester
        job = role.jobs[job_id]
        await job.done.wait()
        assert job.view.outcome == "completed"
        lazy_id = lazy.key.node_id.raw
        assert lazy_id in role.struck  # it passed a plant: this requester never asks it again
        # one miss strikes it; with three checkers it may hold two plants at once, and
        # miss both before the first is judged (stop 37: one run in four)
        misses = job.machine.plant_misses[lazy_id]
        assert set(job.machine.plant_misses) == {lazy_id} and misses in (1, 2)
        assert lazy.kit.tiles.rendered == 0  # type: ignore[attr-defined]  # it never rendered
        assert honest.key.node_id.raw not in role.struck
        # the plant's fee is withheld; every other verdict it sent is paid
        owed = await all_paid(cluster, "client", job_id)
        fee = checker_fees(cluster, job_id)
        assert owed.get(lazy.address, 0) == fee * (answered(lazy) - misses)
        assert owed[honest.address] == fee * answered(honest)
        assert owed[other.address] == fee * answered(other)
        # workers: every frame paid at its price once, nobody rejected or blocklisted
        assert not job.view.blocklisted and job.view.rejected == 0
        earned = sum(int(str(f["price_wei"])) for f in job.view.accepted.values())
        assert sum(owed.get(w.address, 0) for w in workers) == earned


async def test_an_honest_checker_cannot_be_framed_by_plants(
    autojump_clock: trio.testing.MockClock, tmp_path: Path
) -> None:
    """Every checked result gets a plant; honest checkers reject every plant (each cell
    of a plant fails the comparison), are paid for every verdict, and are never struck."""
    async with open_cluster(tmp_path) as cluster:
        client = await cluster.add("client", "client", plant_rate_ppm=EVERY_RESULT)
        worker = await cluster.add("w1", "worker")
        # a fresh worker's result meets two checkers at normal, and its plant a third
        checkers = [await cluster.add(f"c{i}", "checker") for i in (1, 2, 3)]
        await cluster.settle("client", 4)
        job_id = await cluster.submit("client", frames=3)
        role = client.live().requester
        job = role.jobs[job_id]
        await job.done.wait()
        assert job.view.outcome == "completed"
        assert len(job.machine._plants_asked) == 3 and not job.machine._plants
        assert role.struck == set() and job.machine.plant_misses == {}
        # probation: each rejected plant counted for its checker (fewer plants later)
        assert sum(role.tested.values()) == 3
        assert set(role.tested) <= {c.key.node_id.raw for c in checkers}
        owed = await all_paid(cluster, "client", job_id)
        fee = checker_fees(cluster, job_id)
        assert sum(answered(c) for c in checkers) == 9  # 3 x 2 real checks, 3 plants
        # A plant's verdict never reaches the public record: a rejected plant published as
        # the worker's rejection defamed an honest worker everywhere (seen in the e2e
        # dispute test: the plant's verdict came first and stood as the task's record).
        node = client.live().ctx.node
        await node.wait_until(lambda: node.record.book.jobs[job_id].closed is not None)
        history = node.record.history(worker.key.node_id.raw)
        assert (history.accepted, history.rejected) == (3, 0)
        for checker in checkers:
            assert owed.get(checker.address, 0) == fee * answered(checker)
        earned = sum(int(str(f["price_wei"])) for f in job.view.accepted.values())
        assert owed[worker.address] == earned and not job.view.blocklisted


async def test_by_default_a_checker_without_a_pass_claims_stake_is_never_asked(
    autojump_clock: trio.testing.MockClock, tmp_path: Path
) -> None:
    """The attack (issue 17): a lazy checker struck for a missed plant whitewashes under
    a fresh key, since the miss cost it one fee (docs/VERIFICATION.md, "Checker stake").
    A requester with a chain asks, by default, only checkers whose confirmed stake covers
    what one claim of their pass takes (the escrow's SLASH_CAP): a fresh key without it
    gets no check and no plant; ``checker_stake_wei = 0`` turns that off."""
    async with open_cluster(tmp_path) as cluster:
        client = await cluster.add("client", "client", plant_rate_ppm=EVERY_RESULT)
        await cluster.add("w1", "worker")
        fresh = await cluster.add("fresh", "checker", adversary="lazy", stake=False)
        short = await cluster.add("short", "checker", adversary="lazy", stake=False)
        cap_wei = cluster.escrow.terms.cap_wei
        cluster.escrow.stakes[short.address] = cap_wei - 1
        staked = [await cluster.add(f"c{i}", "checker") for i in (1, 2)]
        await cluster.settle("client", 5)
        job_id = await cluster.submit("client", frames=3)
        job = client.live().requester.jobs[job_id]
        await job.done.wait()
        assert job.view.outcome == "completed"
        assert job.machine.pass_claim_wei == cap_wei
        assert answered(fresh) == answered(short) == 0  # never asked: no check, no plant
        assert sum(answered(c) for c in staked) == 6  # 3 results x 2 checkers (no third for a plant)
        owed = await all_paid(cluster, "client", job_id)
        assert fresh.address not in owed and short.address not in owed
        # turned off, the same fresh key is asked (and caught by a plant, as before)
        relaxed = await cluster.add("relaxed", "client", plant_rate_ppm=EVERY_RESULT,
                                    checker_stake_wei=0)  # fmt: skip
        await cluster.settle("relaxed", 5)
        job_id = await cluster.submit("relaxed", frames=3)
        job = relaxed.live().requester.jobs[job_id]
        await job.done.wait()
        assert job.machine.pass_claim_wei == 0
        assert answered(fresh) + answered(short) > 0

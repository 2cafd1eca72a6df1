"""A payee that restarts keeps the vouchers its requester sends afterwards.

Workers and checkers keep job specs in memory only. Found by review (stop 36,
MEDIUM): after a restart, a voucher for a job the node no longer knew (its last
frame delivered, so never announced again) was acknowledged and dropped, and the
requester's voucher post then stopped: the worker lost that frame's pay. A node
knows the jobs it signed work for from its stored claim watch (their requester's
node and payment address, node.roles.claim_watch), and keeps a voucher of such a
job from its requester: the voucher's own signature by that address is what makes
it worth keeping, so a stranger still cannot make the payee store anything.
"""

from __future__ import annotations

from pathlib import Path

import trio
import trio.testing

from node.roles.requester_job import RequesterJob
from protocol.market import TaskState
from protocol.messages import Voucher
from tests.roles.cluster import Cluster, Member, open_cluster
from tests.roles.fakes import FakeTiles


async def one_frame_job(cluster: Cluster, *strangers: str) -> tuple[Member, Member, RequesterJob]:
    """A client, a worker ``w1``, a checker and ``strangers`` (clients) settled; a job of
    one frame submitted: (client, worker, its job)."""
    client = await cluster.add("client", "client")
    worker = await cluster.add("w1", "worker")
    await cluster.add("c1", "checker")
    for name in strangers:
        await cluster.add(name, "client")
    await cluster.settle("client", 2 + len(strangers))
    job_id = await cluster.submit("client", frames=1)
    return client, worker, client.live().requester.jobs[job_id]


async def test_a_worker_restarted_before_its_frame_is_paid_keeps_the_voucher(
    autojump_clock: trio.testing.MockClock, tmp_path: Path
) -> None:
    async with open_cluster(tmp_path) as cluster:
        client, worker, job = await one_frame_job(cluster)
        job_id, node = job.job_id, client.live().ctx.node

        def delivered() -> bool:
            return any(t.state is TaskState.VERIFYING and t.checkers
                       for t in job.machine._tasks.values())  # fmt: skip

        # the result is in and the requester holds its frame (it serves the checker):
        # the check and the pay are still to come
        await node.wait_until(delivered)
        await cluster.kill("w1")
        with trio.fail_after(600):
            await job.done.wait()
        assert job.view.outcome == "completed"
        due_wei = job.machine.due_wei_by_payee()[worker.address]
        assert due_wei > 0
        await cluster.restart("w1")
        payee = worker.live().payee
        assert payee is not None
        escrow = cluster.escrow
        with trio.fail_after(1800):  # the job is over: redeemed once worth its gas
            await escrow.wait_until(lambda: escrow.balances.get(worker.address, 0) == due_wei)
        assert payee.voucher_wei(client.address, job_id) == due_wei


async def test_a_stranger_cannot_make_a_restarted_payee_keep_a_voucher(
    autojump_clock: trio.testing.MockClock, tmp_path: Path
) -> None:
    async with open_cluster(tmp_path) as cluster:
        client, worker, job = await one_frame_job(cluster, "s1")
        job_id, stranger = job.job_id, cluster.members["s1"]
        await job.done.wait()
        await cluster.kill("w1")
        await cluster.restart("w1")
        payee = worker.live().payee
        assert payee is not None
        paid = payee.voucher_wei(client.address, job_id)
        # a voucher for the worker's job, sent by someone other than its requester, and
        # one for a job the worker never worked in: neither is kept
        link = worker.live().ctx.chain
        assert link is not None
        forged = Voucher(link.chain_id, link.contract, client.address, job_id, worker.address,
                         paid + 10**15, bytes(65))  # fmt: skip
        outbox = stranger.live().ctx.outbox
        await outbox.deliver(worker.key.node_id.raw, forged)
        other = Voucher(link.chain_id, link.contract, stranger.address, b"\x07" * 32,
                        worker.address, 10**15, bytes(65))  # fmt: skip
        await outbox.deliver(worker.key.node_id.raw, other)
        assert payee.voucher_wei(client.address, job_id) == paid
        assert payee.voucher_wei(stranger.address, b"\x07" * 32) == 0


async def test_a_checker_restarted_after_a_rejection_keeps_its_fee_voucher(
    autojump_clock: trio.testing.MockClock, tmp_path: Path
) -> None:
    """Issue 17's notes: a checker signs only its passes, so the claim watch knew the
    requester of no job whose every verdict it gave was a rejection, and restarted it
    acknowledged and dropped that job's fee vouchers. Its verdicts now note the job's
    payer (stored: ``job_payers``)."""
    async with open_cluster(tmp_path) as cluster:
        client = await cluster.add("client", "client")
        await cluster.add("w1", "worker")
        checker = await cluster.add("c1", "checker", tiles=FakeTiles(lie=True))  # rejects all
        await cluster.settle("client", 2)
        job_id = await cluster.submit("client", frames=1)
        job = client.live().requester.jobs[job_id]
        node = client.live().ctx.node

        def fee_due() -> bool:
            return job.machine.due_wei_by_payee().get(checker.address, 0) > 0

        await node.wait_until(fee_due)  # its rejection is in; the fee's voucher on its way
        await cluster.kill("c1")
        await cluster.restart("c1")
        due_wei = job.machine.due_wei_by_payee()[checker.address]
        await client.live().requester.cancel(job_id)  # nothing more to render: over now
        escrow = cluster.escrow
        with trio.fail_after(1800):  # the job is over: redeemed once worth its gas
            await escrow.wait_until(lambda: escrow.balances.get(checker.address, 0) >= due_wei)
        payee = checker.live().payee
        assert payee is not None and payee.voucher_wei(client.address, job_id) >= due_wei

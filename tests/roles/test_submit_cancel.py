"""Submitting (preflight, escrow through an outage), cancelling and the refund after it."""

from __future__ import annotations

from functools import partial
from pathlib import Path

import pytest
import trio

from node.roles.requester_job import RefundNotYet
from node.roles.submit import SubmitError, SubmitRequest, submit
from tests.roles.cluster import open_cluster
from tests.roles.fakes import write_scene


@pytest.mark.parametrize(
    ("change", "error"),
    [
        ({"frames": ()}, "no frames"),
        ({"scene": Path("/nonexistent/scene.json")}, "not found"),
        ({"assurance": "paranoid"}, "one of normal, high, none"),
        ({"scene": "no-camera"}, "no active camera"),
        ({"scene": "not-a-scene"}, "inspection failed"),
    ],
)
async def test_submit_refuses_with_a_reason_and_escrows_nothing(
    autojump_clock: trio.testing.MockClock, tmp_path: Path, change: dict[str, object], error: str
) -> None:
    async with open_cluster(tmp_path) as cluster:
        client = await cluster.add("client", "client")
        values: dict[str, object] = {
            "scene": write_scene(tmp_path / "ok.json"), "frames": (1, 2),
            "max_price_wei_per_frame": 10**14, "deadline_s": 600.0, "out_dir": tmp_path / "out",
        }  # fmt: skip
        values.update(change)
        if values["scene"] == "no-camera":
            values["scene"] = write_scene(tmp_path / "dark.json", has_camera=False)
        elif values["scene"] == "not-a-scene":
            (tmp_path / "junk.json").write_bytes(b"\x00BLENDER?")
            values["scene"] = tmp_path / "junk.json"
        with pytest.raises(SubmitError, match=error):
            await submit(client.live(), SubmitRequest(**values))  # type: ignore[arg-type]
        assert cluster.escrow.log == [] and not client.live().requester.jobs


async def test_settings_override_and_deposit_waits_out_an_outage(
    autojump_clock: trio.testing.MockClock, tmp_path: Path
) -> None:
    async with open_cluster(tmp_path) as cluster:
        client = await cluster.add("client", "client")
        assert client.chain is not None
        client.chain.down = True
        request = SubmitRequest(write_scene(tmp_path / "s.json"), (1,), 10**14, 600.0,
                                tmp_path / "out", resolution=(16, 8), samples=2)  # fmt: skip
        async with trio.open_nursery() as nursery:
            nursery.start_soon(submit, client.live(), request)
            await client.chain.wait_calls("job", 3)  # asks first whether it exists already
            assert not client.live().requester.jobs  # nothing announced before it is paid for
            client.chain.down = False
        (job,) = client.live().requester.jobs.values()
        assert (job.spec.settings.resolution_x, job.spec.settings.resolution_y) == (16, 8)
        assert job.spec.settings.samples == 2
        assert cluster.escrow.job_of(job.job_id).remaining_wei == job.spec.budget_wei


async def test_cancelled_job_is_refunded_after_deadline_and_grace(
    autojump_clock: trio.testing.MockClock, tmp_path: Path
) -> None:
    async with open_cluster(tmp_path) as cluster:
        client = await cluster.add("client", "client")  # no worker: nothing will be rendered
        job_id = await cluster.submit("client", frames=2, deadline_s=120.0)
        requester = client.live().requester
        job = requester.jobs[job_id]
        await requester.cancel(job_id)
        await job.done.wait()
        assert job.view.outcome == "cancelled"
        while not job.view.refunded:
            await job.wait_changed()
        assert cluster.escrow.job_of(job_id).refunded
        assert cluster.escrow.balances[client.address] == job.spec.budget_wei
        assert job.view.refund_wei == job.view.refunded_wei == job.spec.budget_wei
        # The chain said "grace not over" until it was: the node asked, never forced it.
        assert client.chain is not None and client.chain.calls.count("refund") == 1


async def test_a_restarted_requester_still_reclaims_its_refund(
    autojump_clock: trio.testing.MockClock, tmp_path: Path
) -> None:
    """Issue 13 item 6: the refund task started only for live jobs, so a requester that
    restarted after its job ended never reclaimed the unspent escrow."""
    async with open_cluster(tmp_path) as cluster:
        client = await cluster.add("client", "client")
        job_id = await cluster.submit("client", frames=2, deadline_s=120.0)
        job = client.live().requester.jobs[job_id]
        await client.live().requester.cancel(job_id)
        await job.done.wait()
        await cluster.kill("client")  # before deadline + grace: nothing refunded yet
        assert not cluster.escrow.job_of(job_id).refunded
        await cluster.restart("client")
        resumed = client.live().requester.jobs[job_id]
        while not resumed.view.refunded:
            await resumed.wait_changed()
        assert cluster.escrow.balances[client.address] == job.spec.budget_wei
        await cluster.kill("client")
        await cluster.restart("client")  # settled now: no longer resumed, never asked again
        assert resumed.view.refunded and resumed.view.refunded_wei == job.spec.budget_wei
        assert job_id not in client.live().requester.jobs


async def test_refund_by_hand_says_when_and_then_refunds(
    autojump_clock: trio.testing.MockClock, tmp_path: Path
) -> None:
    async with open_cluster(tmp_path) as cluster:
        client = await cluster.add("client", "client")
        job_id = await cluster.submit("client", frames=1, deadline_s=120.0)
        job = client.live().requester.jobs[job_id]
        with pytest.raises(RefundNotYet, match="refunds after deadline"):
            await job.refund_now()
        await job.done.wait()  # expires at the deadline (nobody bids)
        while not job.view.refunded:
            await job.wait_changed()
        assert await job.refund_now() == 0  # settled already: nothing left, no error
        assert client.chain is not None and client.chain.calls.count("refund") == 1


async def test_a_refused_deposit_is_final_and_says_why(
    autojump_clock: trio.testing.MockClock, tmp_path: Path
) -> None:
    """A revert (the contract said no) used to be retried every 2 s forever."""
    async with open_cluster(tmp_path) as cluster:
        client = await cluster.add("client", "client")
        assert client.chain is not None
        client.chain.reverts = ["deadline too far"]
        with pytest.raises(SubmitError, match="refused the deposit: deadline too far") as info:
            await cluster.submit("client", frames=1)
        assert "shorter --deadline" in str(info.value)  # what to do next
        assert client.chain.calls.count("deposit") == 1 and not client.live().requester.jobs


async def test_a_deposit_whose_receipt_was_lost_is_not_made_twice(
    autojump_clock: trio.testing.MockClock, tmp_path: Path
) -> None:
    """The deposit was mined but the node saw an outage; retrying it topped the job up
    with a second budget (the contract adds deposits to an existing job)."""
    async with open_cluster(tmp_path) as cluster:
        client = await cluster.add("client", "client")
        assert client.chain is not None
        client.chain.after_mined = ["lost"]
        job_id = await cluster.submit("client", frames=1)
        job = client.live().requester.jobs[job_id]
        assert cluster.escrow.deposited_wei == job.spec.budget_wei
        assert cluster.escrow.job_of(job_id).remaining_wei == job.spec.budget_wei


async def test_a_requester_killed_while_depositing_resumes_the_job_and_its_refund(
    autojump_clock: trio.testing.MockClock, tmp_path: Path
) -> None:
    """Killed after the deposit was mined but before the job was saved, the node forgot
    the job: the money stayed in escrow with nobody to announce, run or refund it."""
    async with open_cluster(tmp_path) as cluster:
        client = await cluster.add("client", "client")  # no worker: the job will expire
        assert client.chain is not None
        client.chain.after_mined = ["hang"]
        async with trio.open_nursery() as nursery:
            nursery.start_soon(partial(cluster.submit, "client", frames=1, deadline_s=120.0))
            await client.chain.wait_calls("deposit", 1)
            await trio.testing.wait_all_tasks_blocked()
            await cluster.kill("client")
            nursery.cancel_scope.cancel()  # the submit call died with its node
        assert cluster.escrow.deposited_wei > 0  # the money is in escrow
        await cluster.restart("client")
        await client.live().requester.wait_jobs(1)  # it starts once the deposit is confirmed
        (job,) = client.live().requester.jobs.values()
        while not job.view.refunded:
            await job.wait_changed()
        assert cluster.escrow.job_of(job.job_id).refunded
        assert cluster.escrow.deposited_wei == job.spec.budget_wei  # once, not again
        assert cluster.escrow.balances[client.address] == job.spec.budget_wei

"""A voucher the payee could not be reached for is sent again until it is acknowledged.

Found in CI (tests/netns/test_nat_job.py, stop 35): the worker behind NAT held no
voucher at all after its relay died, and was never paid for its frames. The outbox
tried each send a few times over seconds and dropped it, and the requester sent the
latest vouchers again only after its own restart. Here the requester's market
messages to the worker are lost while its frame is checked and the job finishes
(the worker still reaches the requester, and the requester still fetches the frame);
once they get through again, the voucher arrives and the worker redeems its pay.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import trio

from node.net.port import NetworkError
from protocol.topics import MARKET_PROTOCOL
from tests.roles.cluster import open_cluster
from tests.roles.fakes import FakeFrames
from tests.roles.test_job_flow import all_paid

OUTAGE_S = 120.0  # far past the outbox's own retries (about 5 s)


@dataclass
class HeldFrames(FakeFrames):
    """Renders once the test opens ``gate``; ``rendering`` says the award arrived."""

    rendering: trio.Event = field(default_factory=trio.Event)

    async def render_frames(self, *args: Any, **kwargs: Any) -> Any:
        self.rendering.set()
        return await super().render_frames(*args, **kwargs)


def cut_market_messages(network: Any, peer: str) -> trio.Event:
    """Lose ``network``'s market messages to ``peer`` until the event returned is set."""
    open_stream = network.open_stream
    restored = trio.Event()

    async def lossy(to: str, protocol_id: str) -> Any:
        if to == peer and protocol_id == MARKET_PROTOCOL and not restored.is_set():
            raise NetworkError(f"no route to {to}")
        return await open_stream(to, protocol_id)

    network.open_stream = lossy
    return restored


async def test_a_voucher_sent_while_its_payee_was_unreachable_arrives_later(
    autojump_clock: trio.testing.MockClock, tmp_path: Path
) -> None:
    frames = HeldFrames(gate=trio.Event())
    async with open_cluster(tmp_path) as cluster:
        client = await cluster.add("client", "client", trial_leases=0)
        worker = await cluster.add("w1", "worker", frames=frames)
        await cluster.add("c1", "checker")
        await cluster.settle("client", 2)
        job_id = await cluster.submit("client", frames=1)
        job = client.live().requester.jobs[job_id]
        await frames.rendering.wait()
        cut = cut_market_messages(client.live().ctx.node.network, worker.peer)
        frames.gate.set()  # type: ignore[union-attr]
        await job.done.wait()
        assert job.view.outcome == "completed"
        payee = worker.live().payee
        assert payee is not None and payee.book.total_owed_wei() == 0  # nothing arrived
        assert client.live().requester.vouchers.waiting() >= 1
        await trio.sleep(OUTAGE_S)  # the outage lasts on: what the requester does meanwhile
        cut.set()  # the path is back
        owed = await all_paid(cluster, "client", job_id)
        assert owed[worker.address] > 0
        await trio.testing.wait_all_tasks_blocked()  # the acknowledgement reaches it
        assert client.live().requester.vouchers.waiting() == 0

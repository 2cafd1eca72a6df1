"""The public work record under a plan of two checkers per result: the verdict that
decides goes public, not the first pass. Before, the first checker's pass was recorded
as the worker's accepted frame and the second checker's rejection (the one the machine
acted on) was kept only as a dispute verdict: a caught cheat read "accepted" to every
node."""

from __future__ import annotations

import pytest

from node.roles.job_record import JobRecord
from protocol.market import Command
from protocol.messages import Assurance, Message, WorkRecord
from tests.protocol.market.harness import MarketHarness
from tests.protocol.market.test_check_plan import WINDOW_MS


class Gossip:
    """The record service's publishing side: what goes out, in order."""

    def __init__(self) -> None:
        self.sent: list[object] = []

    def publish_soon(self, topic: str, message: object) -> None:
        self.sent.append(message)


@pytest.mark.parametrize("second_passes", [True, False])
def test_the_deciding_verdict_is_the_public_one(second_passes: bool) -> None:
    harness = MarketHarness(frames=(1,), worker_prices_wei_per_ru=(100,), checkers=3,
                            assurance=Assurance.HIGH)  # fmt: skip
    record = JobRecord(harness.job_id, harness.spec)
    receive = harness.job.receive

    def spy(sender: bytes, message: Message, now_ms: int, *,
            envelope_digest: bytes | None = None) -> list[Command]:  # fmt: skip
        out = receive(sender, message, now_ms, envelope_digest=envelope_digest)
        record.evidence(sender, message, repr(message).encode(), envelope_digest or bytes(32), out)
        return out

    harness.job.receive = spy  # type: ignore[method-assign]
    harness.start()
    harness.advance(WINDOW_MS)
    (task_id,) = harness.renders
    harness.finish_render(task_id)
    gossip = Gossip()
    harness.verdict(task_id, True)
    record.flush(gossip, live=True)  # type: ignore[arg-type]
    assert gossip.sent == []
    harness.verdict(task_id, second_passes)
    record.flush(gossip, live=True)  # type: ignore[arg-type]
    (published,) = gossip.sent
    assert isinstance(published, WorkRecord) and published.accepted is second_passes

"""The public work record under a plan of two checkers per result: the verdict that
decides goes public, not the first pass. Before, the first checker's pass was recorded
as the worker's accepted frame and the second checker's rejection (the one the machine
acted on) was kept only as a dispute verdict: a caught cheat read "accepted" to every
node."""

from __future__ import annotations

import pytest

from node.roles.job_record import JobRecord
from protocol.market import Command, Send
from protocol.messages import Assurance, LeaseRevoked, Message, WorkRecord
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


def test_a_held_pass_of_a_result_given_up_is_dropped() -> None:
    """A first pass is held while the plan waits for a second checker; if the result is
    then given up (no second verdict in ``verify_attempts`` asks: abandoned, its lease
    revoked) no acceptance will publish that pass, and it is dropped at once (it was kept
    until the job ended). A pass that is accepted on later is still published."""
    harness = MarketHarness(frames=(1,), worker_prices_wei_per_ru=(100,), checkers=3,
                            assurance=Assurance.HIGH)  # fmt: skip
    record = JobRecord(harness.job_id, harness.spec)
    receive, handle_timer = harness.job.receive, harness.job.handle_timer

    def spy(sender: bytes, message: Message, now_ms: int, *,
            envelope_digest: bytes | None = None) -> list[Command]:  # fmt: skip
        out = receive(sender, message, now_ms, envelope_digest=envelope_digest)
        record.evidence(sender, message, repr(message).encode(), envelope_digest or bytes(32), out)
        record.decided(out)
        return out

    def timer_spy(now_ms: int) -> list[Command]:
        out = handle_timer(now_ms)
        record.decided(out)
        return out

    harness.job.receive = spy  # type: ignore[method-assign]
    harness.job.handle_timer = timer_spy  # type: ignore[method-assign]
    harness.start()
    harness.advance(WINDOW_MS)
    (task_id,) = harness.renders
    harness.finish_render(task_id)
    harness.verdict(task_id, True)
    assert record.passes_held == 1  # the first pass, while the second checker is asked
    config = harness.job.config
    for _ in range(config.verify_attempts + 1):  # the second checker never answers
        harness.advance(config.verify_timeout_ms)
    revoked = [c for c in harness.commands(Send) if isinstance(c.message, LeaseRevoked)]
    assert any(c.message.task_id == task_id for c in revoked)  # given up
    assert record.passes_held == 0

"""A requester job's records after a restart: every one goes out, whatever their number."""

from __future__ import annotations

from typing import Any

import trio

from node.roles.job_record import JobRecord
from protocol.messages import ClosedOutcome, JobClosed, Message
from tests.protocol.vectors_samples import sample_spec

JOB = b"\x07" * 32


class Book:
    """The record service's book, as JobRecord reads it: knows the job, no record."""

    def __init__(self) -> None:
        self.tasks: dict[bytes, Any] = {}
        self.disputes: dict[bytes, Any] = {}
        self.jobs: dict[bytes, Any] = {}

    def requester_of(self, job_id: bytes) -> bytes:
        return b"requester"


class Service:
    """A record service whose outgoing queue holds two messages (the node's: 4,096)."""

    def __init__(self) -> None:
        self.book = Book()
        self.send, self.recv = trio.open_memory_channel[Message](2)
        self.dropped = 0

    def learn_own(self, message: Message) -> None:
        pass

    def publish_soon(self, topic: str, message: Message) -> None:  # what republish used
        try:
            self.send.send_nowait(message)
        except trio.WouldBlock:
            self.dropped += 1

    async def publish_queued(self, topic: str, message: Message) -> None:
        await self.send.send(message)


async def test_a_republish_larger_than_the_publish_queue_drops_nothing() -> None:
    """Review finding: the republish after a restart queued every record of a resumed
    job without waiting, so past the queue's length the rest were dropped (one warning
    each). It now waits for room."""
    record = JobRecord(JOB, sample_spec())
    closings = [JobClosed(JOB, ClosedOutcome.PARTIAL, n, 0) for n in range(10)]
    for closing in closings:
        record.closed(closing)
        record.flush(Service(), live=False)  # a replay: kept for the republish
    service = Service()
    got: list[Message] = []

    async def drain() -> None:
        async for message in service.recv:
            got.append(message)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(drain)
        assert await record.republish(service) == 10  # type: ignore[arg-type]  # the book lacks all
        await service.send.aclose()
    assert (got, service.dropped) == (closings, 0)

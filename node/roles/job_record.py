"""What one requester job contributes to the public work record, and when it goes out.

Theory of operation. The job's inputs pass through here as they are fed to
its machine (live, and again on a replay): workers' signed results are kept;
the first verdict the machine decides a task on becomes a ``WorkRecord``
(which verdict that is: ``protocol.record_trigger``, the simulator's rule
too); the verdicts of a dispute become a
``DisputeRecord`` when the machine resolves it; the job's end a
``JobClosed``. Records are queued while an input is applied and handed out
only after the input was journalled (``flush``): live, to the node's record
service for gossip; on a replay, kept, so that after a restart
:meth:`JobRecord.republish` can publish what the public record (the node's
own book, rebuilt from its store and its peers) lacks — a crash between a
decision and its publication then loses nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from protocol.market import Command, DisputeResolved
from protocol.messages import (
    MAX_DISPUTE_VERDICTS,
    DisputeRecord,
    JobAnnounce,
    JobClosed,
    JobSpec,
    Message,
    Result,
    Verdict,
    WorkRecord,
)
from protocol.record_trigger import VerdictUse, accepted_on_held, given_up_on_held, verdict_use
from protocol.topics import RECORD_TOPIC

if TYPE_CHECKING:
    from node.record.service import RecordService

Record = WorkRecord | DisputeRecord | JobClosed


@dataclass
class JobRecord:
    job_id: bytes
    spec: JobSpec
    results: dict[bytes, bytes] = field(default_factory=dict)  # task -> the worker's Result
    _recorded: set[bytes] = field(default_factory=set)  # tasks with a WorkRecord
    _rejections: dict[bytes, bytes] = field(default_factory=dict)  # task -> rejection's digest
    _dispute_verdicts: dict[bytes, list[bytes]] = field(default_factory=dict)  # task -> wires
    _held: dict[bytes, bytes] = field(default_factory=dict)  # task -> its last pass before another
    _pending: list[tuple[bytes, Record]] = field(default_factory=list)
    _replayed: list[tuple[bytes, Record]] = field(default_factory=list)

    def evidence(
        self, peer: bytes, message: Message, wire: bytes, digest: bytes, commands: list[Command]
    ) -> None:
        """One message the machine took (``wire``: its signed bytes) and what it returned."""
        if isinstance(message, Result) and wire:
            self.results.setdefault(message.task_id, wire)
        elif isinstance(message, Verdict) and wire:
            result = self.results.get(message.task_id)
            if result is None:
                return
            recorded = message.task_id in self._recorded
            use = verdict_use(message.task_id, peer, commands, recorded=recorded)
            if use is VerdictUse.DISPUTE:  # a dispute checker's verdict
                self._dispute_verdicts.setdefault(message.task_id, []).append(wire)
            elif use is VerdictUse.HELD:  # its record if no other checker can be asked
                self._held[message.task_id] = wire
            elif use is VerdictUse.WORK:
                self._held.pop(message.task_id, None)
                self._recorded.add(message.task_id)
                if not message.passed:  # what a DisputeRecord names
                    self._rejections[message.task_id] = digest
                record = WorkRecord(self.job_id, message.passed, result, wire)
                self._pending.append((message.task_id, record))

    def decided(self, commands: list[Command]) -> None:
        """After every input: a task the machine accepted on the passes it had (no other
        checker to ask) is recorded with its last pass (``protocol.record_trigger``); one
        it gave up (its lease revoked: abandoned, its worker blocklisted) drops its held
        pass, which no acceptance will ever publish (they stayed until the job ended)."""
        for task_id in accepted_on_held(commands, self._held):
            wire, result = self._held.pop(task_id), self.results.get(task_id)
            if result is not None and task_id not in self._recorded:
                self._recorded.add(task_id)
                self._pending.append((task_id, WorkRecord(self.job_id, True, result, wire)))
        for task_id in given_up_on_held(commands, self._held):
            del self._held[task_id]

    @property
    def passes_held(self) -> int:
        """Passes kept for tasks that may yet be accepted on them (bounded by open tasks)."""
        return len(self._held)

    def dispute_resolved(self, c: DisputeResolved) -> None:
        wires = self._dispute_verdicts.pop(c.task_id, [])[:MAX_DISPUTE_VERDICTS]
        result, disputed = self.results.get(c.task_id), self._rejections.get(c.task_id)
        if wires and result is not None and disputed is not None:  # decided on verdicts
            record = DisputeRecord(self.job_id, c.task_id, disputed, result, tuple(wires))
            self._pending.append((c.task_id, record))

    def closed(self, closed: JobClosed) -> None:
        self._pending.append((b"", closed))

    def flush(
        self, service: RecordService, live: bool, held: Callable[[bytes], bool] = lambda _: False
    ) -> None:
        """After an input was journalled: publish its records (live) or keep them (replay).
        Live, records go out in order up to the first whose task is ``held`` (a task with
        a forced error open, node.roles.plants); that one and the rest wait for a later flush."""
        if live:
            while self._pending and not held(self._pending[0][0]):
                service.publish_soon(RECORD_TOPIC, self._pending.pop(0)[1])
            return
        self._replayed += self._pending
        self._pending.clear()

    async def republish(self, service: RecordService) -> int:
        """After a replay: publish the job's records again; returns how many our own
        book lacked. All of them go out, not only those: a record is in our book (and
        store) before its gossip leaves, so a kill in between kept one from every peer
        although our book had it (the role tests found it once store writes ran
        inline). A peer that has a record ignores it again, unpenalised (PROTOCOL.md §5)."""
        book = service.book
        if book.requester_of(self.job_id) is None:  # its announce was never stored: learn it
            service.learn_own(JobAnnounce(self.job_id, self.spec))
        missing = 0
        for task_id, message in self._replayed:
            if isinstance(message, WorkRecord):
                known = task_id in book.tasks
            elif isinstance(message, DisputeRecord):
                known = task_id in book.disputes
            else:
                info = book.jobs.get(self.job_id)
                known = info is not None and info.closed is not None
            missing += not known
        replayed, self._replayed = self._replayed, []
        for _, message in replayed:  # however many: the queue waits, it drops nothing
            await service.publish_queued(RECORD_TOPIC, message)
        return missing

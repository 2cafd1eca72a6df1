"""The public work record in the simulator: what requesters publish, counted by the node's code.

As the node (``node.roles.job_record``, ``node.record.service``): a requester
publishes one WorkRecord per task its machine decided on a checker's verdict,
a DisputeRecord when a dispute was decided on verdicts, a JobClosed when the
job ends — which verdict counts is ``protocol.record_trigger``'s rule, the
node's — and holds a task's records while a plant of it is out (the node's
``JobRecord.flush``). Every node keeps a ``protocol.record.RecordBook``; here
one book stands for all of them, and a record enters it once gossip has
reached every node (:meth:`NetworkModel.gossip_reach_ms` after it left: the
mesh's most hops over the publisher's slowest link, jitter included). The
book counts each record by the node's rules (``RecordBook.add_task``,
``add_dispute``, ``add_closed``: rate, first per task, dispute majority,
bounds). No record is signed: the simulator builds the ``CheckedTask`` and
``DisputeVotes`` the node would read from the envelopes, with the digests of
the envelopes it carried. A requester's machines are fed
``with_public(own record, book history)``, as ``RequesterRole.worker_record``.

Left out: gossip loss and partitions for records (every record reaches every
node; the node's record sync repairs a lost one at its next start), the
records' traffic in the network counts, and a record's own size in its delay.
``verification.public_record = false`` publishes nothing: each requester then
knows only its own verdicts (the simulator before this module).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from protocol.market import Command, DisputeResolved, JobMachine
from protocol.messages import (
    MAX_DISPUTE_VERDICTS,
    ClosedOutcome,
    JobAnnounce,
    JobClosed,
    Result,
    Verdict,
)
from protocol.record import Added, CheckedTask, DisputeVotes, RecordBook
from protocol.record_trigger import VerdictUse, accepted_on_held, given_up_on_held, verdict_use
from protocol.reputation import WorkerHistory
from simulations.world import SimNode, World

Record = CheckedTask | DisputeVotes | JobClosed


@dataclass
class _Job:
    """One job's evidence, as ``node.roles.job_record.JobRecord`` keeps it."""

    results: dict[bytes, tuple[Result, bytes]] = field(default_factory=dict)  # task -> (it, digest)
    recorded: set[bytes] = field(default_factory=set)
    rejections: dict[bytes, bytes] = field(default_factory=dict)  # task -> the rejection's digest
    votes: dict[bytes, list[tuple[bytes, bool]]] = field(default_factory=dict)
    held: dict[bytes, tuple[bytes, Verdict, bytes]] = field(default_factory=dict)  # a held pass
    pending: list[tuple[bytes, Record]] = field(default_factory=list)
    failed: int = 0
    over: bool = False


def shared_record(world: World) -> PublicRecord:
    """The world's one public record (every requester driver publishes into it)."""
    if world.public_record is None:
        world.public_record = PublicRecord(world)
    assert isinstance(world.public_record, PublicRecord)
    return world.public_record


class PublicRecord:
    """The network's public work record: one book, fed by every requester driver."""

    def __init__(self, world: World) -> None:
        self.world = world
        self.book = RecordBook()
        self._jobs: dict[bytes, _Job] = {}
        self.published = 0  # records handed to gossip
        self.counted = 0  # records the book kept (Added.NEW)

    def history(self, worker: bytes, now_ms: int) -> WorkerHistory:
        return self.book.history(worker, now_ms)

    def job_started(self, announce: JobAnnounce) -> None:
        """Every node learns the job's requester from its announce (before any record)."""
        self.book.learn_job(announce, announce.spec.requester)
        self._jobs[announce.job_id] = _Job()

    def taken(self, requester: bytes, sender: bytes, message: Result | Verdict, digest: bytes,
              commands: list[Command]) -> None:  # fmt: skip
        """A result or verdict the job's machine took, and what it answered (``evidence``)."""
        job = self._jobs.get(message.job_id)
        if job is None:
            return
        if isinstance(message, Result):
            job.results.setdefault(message.task_id, (message, digest))
            return
        known = job.results.get(message.task_id)
        if known is None:
            return
        recorded = message.task_id in job.recorded
        use = verdict_use(message.task_id, sender, commands, recorded=recorded)
        if use is VerdictUse.DISPUTE:
            job.votes.setdefault(message.task_id, []).append((sender, message.passed))
        elif use is VerdictUse.HELD:  # its record if no other checker can be asked
            job.held[message.task_id] = (sender, message, digest)
        elif use is VerdictUse.WORK:
            job.held.pop(message.task_id, None)
            self._record(job, requester, sender, message, digest)

    def _record(
        self, job: _Job, requester: bytes, sender: bytes, message: Verdict, digest: bytes
    ) -> None:
        job.recorded.add(message.task_id)
        if not message.passed:
            job.rejections[message.task_id] = digest
        result, result_digest = job.results[message.task_id]
        task = CheckedTask(
            message.job_id, message.task_id, result.frame, message.worker, sender, requester,
            message.passed, len(message.tiles), result.frame_cid, result.render_time_ms,
            result_digest, digest, self.world.epoch_ms(),
        )  # fmt: skip
        job.pending.append((message.task_id, task))

    def decided(self, requester: bytes, job_id: bytes, commands: list[Command]) -> None:
        """Every input's commands: a task accepted on the passes it had (no other checker
        to ask) is recorded with its last pass, and one given up drops it, as the node
        does."""
        job = self._jobs.get(job_id)
        if job is None or not job.held:
            return
        for task_id in accepted_on_held(commands, job.held):
            sender, verdict, digest = job.held.pop(task_id)
            if task_id not in job.recorded:
                self._record(job, requester, sender, verdict, digest)
        for task_id in given_up_on_held(commands, job.held):  # as the node: never published
            del job.held[task_id]

    def dispute_resolved(self, requester: bytes, c: DisputeResolved) -> None:
        job = self._jobs.get(c.job_id)
        if job is None:
            return
        votes = job.votes.pop(c.task_id, [])[:MAX_DISPUTE_VERDICTS]
        known, disputed = job.results.get(c.task_id), job.rejections.get(c.task_id)
        if votes and known is not None and disputed is not None:  # decided on verdicts
            record = DisputeVotes(c.job_id, c.task_id, requester, disputed, known[1], tuple(votes))
            job.pending.append((c.task_id, record))

    def frame_failed(self, job_id: bytes) -> None:
        job = self._jobs.get(job_id)
        if job is not None:
            job.failed += 1

    def job_closed(self, job_id: bytes, outcome: str, accepted: int) -> None:
        job = self._jobs.get(job_id)
        if job is not None:
            job.pending.append((b"", JobClosed(job_id, ClosedOutcome(outcome), accepted, job.failed)))
            job.over = True

    def flush(self, publisher: SimNode, machine: JobMachine) -> None:
        """After a machine input: records leave in order up to the first whose task has a
        plant out (``JobRecord.flush``'s ``held``); each enters the book after gossip."""
        job = self._jobs.get(machine.job_id)
        if job is None:
            return
        world = self.world
        while job.pending and not machine.plant_open(job.pending[0][0]):
            _, record = job.pending.pop(0)
            if isinstance(record, CheckedTask):  # signed when it leaves, as the node's
                record = replace(record, timestamp_ms=world.epoch_ms())
            if not publisher.online:
                continue  # the node's publish fails with the node
            self.published += 1
            at_ms = world.loop.now_ms + world.net.gossip_reach_ms(publisher.index)
            world.loop.call_at(int(at_ms), self._arrive, (publisher.node_id, record), "record")
        if job.over:
            del self._jobs[machine.job_id]  # as the node's job: what is still held is lost

    def _arrive(self, arg: tuple[bytes, Record]) -> None:
        signer, record = arg
        now_ms = self.world.epoch_ms()
        if isinstance(record, CheckedTask):
            added = self.book.add_task(record, now_ms)
        elif isinstance(record, DisputeVotes):
            added = self.book.add_dispute(record)
        else:
            added = self.book.add_closed(record, signer, now_ms)
        self.counted += added is Added.NEW

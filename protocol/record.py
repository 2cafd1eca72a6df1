"""The public work record: what counts for reputation, and the book every node keeps.

Theory of operation
-------------------
Results and verdicts travel on direct streams, so only a job's requester sees
them. To let every node (and the explorer) know how a worker did, the
requester publishes, on gossip ``/pictor/1/record``, one :class:`WorkRecord`
per task it decided on a checker's verdict, and one :class:`JobClosed` when the
job ends. A WorkRecord carries two envelopes byte for byte: the worker's own
signed ``Result`` and the checker's signed ``Verdict`` about it. So one record
bears three signatures, and each names what only its signer could say.

What COUNTS for reputation (docs/VERIFICATION.md, "The public work record").
A verdict counts for worker W, once, when all of these hold:

1. the record is signed by the job's requester R — known from the job's
   ``JobAnnounce`` (its id is the hash of a spec that names R), so nobody
   speaks for another's job;
2. it carries W's own signed Result for that job, task and frame, and the
   checker C's signed Verdict about exactly that Result (its envelope digest),
   naming W, for the same job, task and frame;
3. R, W and C are three different keys, and ``accepted`` is what C said;
4. it is the first record for that task (one per task id);
5. C is admitted by ``RecordConfig.checker_counts``: :func:`stake_admits` of
   its chain-confirmed stake (node/record/stakes.py) — every checker while
   the network asks no checker stake, else only those whose confirmed active
   stake is at least the minimum.

So a sybil checker cannot defame a worker that never worked for its requester:
without W's signature on a Result for that very job and task there is no
record, and a record whose signer is not the job's requester is refused. What
the record does NOT prove is that R, W and C are different people: puppets
that render for each other earn "accepted" counts. The score's pessimistic
prior and its maturity time bound what that buys, and stake (the hook above)
is what will price it; until then every node and the explorer can at least
see who checked whom.

Disputes. A rejection the worker disputed is settled by more checkers; the
requester publishes their signed verdicts about the same Result in a
:class:`DisputeRecord` (no stated outcome: it is counted here). It applies to
the task's recorded rejection when its signer is that task's requester, each
verdict is about exactly the recorded Result, and its checkers are distinct
and none of worker, requester or the first checker. The rejection is
OVERTURNED when the passing verdicts outnumber the failing ones, the first
checker's rejection included (:func:`overturned`), counting only admitted
checkers (rule 5) — the machine's rule (protocol.market.verifying) when all
count. An overturned rejection is no strike for the worker (it is neither a
rejection nor an acceptance in its history, as ``Judgement.CLEARED`` in a
requester's own book) and is one for the first checker
(:meth:`RecordBook.checker_history`: ``overruled``).

Rules 1–3 are stateless except for knowing the job's requester:
:func:`open_record` checks 2 and 3 (a relay can, so a relay that forwards a
bad record is blamed); :meth:`RecordBook.add` checks 1 and 4.

Bounds: the book keeps at most ``max_jobs`` announced jobs and ``max_tasks``
records (dropping the oldest, and its counts with it), and admits at most
``rate_per_s`` records per requester (token bucket of ``burst``, at most
``max_senders`` buckets).
"""

from __future__ import annotations

import enum
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field

from protocol.envelope import Envelope, decode_envelope
from protocol.errors import IllegalMessage, LocalProtocolError
from protocol.messages import (
    DisputeRecord,
    JobAnnounce,
    JobClosed,
    Result,
    Verdict,
    WorkRecord,
    check_announce,
)
from protocol.reputation import WorkerHistory


@dataclass(frozen=True)
class CheckedTask:
    """One counted (or countable) task, as read from a verified WorkRecord."""

    job_id: bytes
    task_id: bytes
    frame: int
    worker: bytes
    checker: bytes
    requester: bytes  # the record's signer
    passed: bool
    tiles: int
    frame_cid: str
    render_time_ms: int
    result_digest: bytes
    verdict_digest: bytes
    timestamp_ms: int  # the record's (the requester's clock)


def open_record(env: Envelope) -> CheckedTask:
    """The task a WorkRecord envelope states; raises ``RemoteProtocolError`` if it is inconsistent.

    Stateless: anything a relay could check. Who the job's requester is, and
    whether the task was recorded before, is :meth:`RecordBook.add`'s business.
    """
    record = env.message
    if not isinstance(record, WorkRecord):
        raise IllegalMessage(f"{env.type} is not a work record")
    result_env = decode_envelope(record.result)
    verdict_env = decode_envelope(record.verdict)
    result, verdict = result_env.message, verdict_env.message
    if not isinstance(result, Result) or not isinstance(verdict, Verdict):
        raise IllegalMessage("a work record carries a result and a verdict", penalty=50)
    worker, checker = result_env.sender.raw, verdict_env.sender.raw
    if verdict.result_digest != result_env.digest or verdict.worker != worker:
        raise IllegalMessage("the verdict is about another result", penalty=50)
    same = (record.job_id, result.task_id, result.frame)
    if (result.job_id, result.task_id, result.frame) != same or (
        verdict.job_id,
        verdict.task_id,
        verdict.frame,
    ) != same:
        raise IllegalMessage("result, verdict and record name different tasks", penalty=50)
    if len({worker, checker, env.sender.raw}) != 3:
        raise IllegalMessage("requester, worker and checker must be three keys", penalty=50)
    if record.accepted != verdict.passed:
        raise IllegalMessage("the record contradicts its verdict", penalty=50)
    return CheckedTask(
        record.job_id, result.task_id, result.frame, worker, checker, env.sender.raw,
        verdict.passed, len(verdict.tiles), result.frame_cid, result.render_time_ms,
        result_env.digest, verdict_env.digest, env.timestamp_ms,
    )  # fmt: skip


@dataclass(frozen=True)
class DisputeVotes:
    """A dispute's verdicts as read from a verified DisputeRecord: ``(checker, passed)``."""

    job_id: bytes
    task_id: bytes
    requester: bytes
    verdict_digest: bytes  # the disputed rejection's
    result_digest: bytes
    votes: tuple[tuple[bytes, bool], ...]


def open_dispute(env: Envelope) -> DisputeVotes:
    """The votes a DisputeRecord envelope carries; raises ``RemoteProtocolError`` if inconsistent.

    Stateless, like :func:`open_record`; that the task's recorded rejection is
    about this result and by another checker is :meth:`RecordBook.dispute`'s.
    """
    record = env.message
    if not isinstance(record, DisputeRecord):
        raise IllegalMessage(f"{env.type} is not a dispute record")
    result_env = decode_envelope(record.result)
    result = result_env.message
    if not isinstance(result, Result):
        raise IllegalMessage("a dispute record carries the disputed result", penalty=50)
    worker, same = result_env.sender.raw, (record.job_id, record.task_id, result.frame)
    if (result.job_id, result.task_id) != same[:2] or not record.verdicts:
        raise IllegalMessage("a dispute record about another task, or without verdicts", penalty=50)
    votes: list[tuple[bytes, bool]] = []
    for wire in record.verdicts:
        verdict_env = decode_envelope(wire)
        verdict = verdict_env.message
        if not isinstance(verdict, Verdict):
            raise IllegalMessage("a dispute record carries verdicts", penalty=50)
        if verdict.result_digest != result_env.digest or verdict.worker != worker:
            raise IllegalMessage("a dispute verdict about another result", penalty=50)
        if (verdict.job_id, verdict.task_id, verdict.frame) != same:
            raise IllegalMessage("a dispute verdict about another task", penalty=50)
        votes.append((verdict_env.sender.raw, verdict.passed))
    signers = [c for c, _ in votes]
    if len(set(signers)) != len(signers) or {worker, env.sender.raw} & set(signers):
        raise IllegalMessage("dispute checkers must be distinct and neither worker nor requester",
                             penalty=50)  # fmt: skip
    return DisputeVotes(record.job_id, record.task_id, env.sender.raw, record.verdict_digest,
                        result_env.digest, tuple(votes))  # fmt: skip


def overturned(first_counts: bool, votes: list[bool]) -> bool:
    """A dispute's outcome: the passes outnumber the rejections (the first one included
    when its checker counts). ``votes`` are the counted dispute verdicts."""
    passes = sum(votes)
    return passes > len(votes) - passes + int(first_counts)


@dataclass(frozen=True)
class CheckerHistory:
    """What the public record says of one checker: counted verdicts, and how many of its
    rejections a dispute overturned."""

    verdicts: int = 0
    overruled: int = 0


class Added(enum.Enum):
    """What :meth:`RecordBook.add` did with a record (the driver maps it to gossip verdicts)."""

    NEW = "new"  # kept; forward it
    DUPLICATE = "duplicate"  # that task is recorded already: ignore
    UNKNOWN_JOB = "unknown_job"  # no announce heard for the job: ignore
    UNKNOWN_TASK = "unknown_task"  # a dispute of a rejection not (or no longer) recorded
    OVER_RATE = "over_rate"  # the requester records faster than allowed: ignore


def _always(_checker: bytes) -> bool:
    return True


def stake_admits(stake_wei: int | None, min_stake_wei: int) -> bool:
    """Rule 5 with stake: a checker counts when the network asks no checker stake
    (``min_stake_wei`` 0: the escrow's minimum, or no chain) or when its chain-confirmed
    active stake is known (not None) and at least the minimum. What a node plugs into
    ``RecordConfig.checker_counts`` (node/record/stakes.py)."""
    if min_stake_wei <= 0:
        return True
    return stake_wei is not None and stake_wei >= min_stake_wei


@dataclass(frozen=True)
class RecordConfig:
    max_jobs: int = 50_000
    max_tasks: int = 200_000
    rate_per_s: float = 20.0  # records per requester; a job's frames close seconds apart
    burst: int = 1_000
    max_senders: int = 10_000
    # Issue 17's hook: a verdict counts only when its checker is admitted
    # (confirmed stake, once stake exists). Evaluated when counting, so a
    # checker whose stake lapses stops counting without rewriting the book.
    checker_counts: Callable[[bytes], bool] = field(default=_always)

    def __post_init__(self) -> None:
        if min(self.max_jobs, self.max_tasks, self.burst, self.max_senders) < 1:
            raise LocalProtocolError("record bounds must be at least 1")
        if self.rate_per_s <= 0:
            raise LocalProtocolError("rate_per_s must be positive")


@dataclass
class JobInfo:
    requester: bytes
    frames: int
    closed: JobClosed | None = None
    closed_ms: int = 0


class RecordBook:
    """Every node's copy of the public record, and the reputation derived from it."""

    def __init__(self, config: RecordConfig | None = None) -> None:
        self.config = config or RecordConfig()
        self.jobs: OrderedDict[bytes, JobInfo] = OrderedDict()
        self.tasks: OrderedDict[bytes, CheckedTask] = OrderedDict()
        self._by_worker: dict[bytes, dict[bytes, None]] = {}  # worker -> its task ids, in order
        self._by_checker: dict[bytes, dict[bytes, None]] = {}  # checker -> its task ids
        self.disputes: dict[
            bytes, DisputeVotes
        ] = {}  # task id -> its dispute (recorded tasks only)
        self._buckets: OrderedDict[bytes, tuple[float, int]] = OrderedDict()

    def learn_job(self, announce: JobAnnounce, sender: bytes) -> bool:
        """Remember who a job's requester is (raises ``IllegalMessage`` for a bad announce).

        True when the job was new to the book.
        """
        check_announce(announce, sender)
        if announce.job_id in self.jobs:
            self.jobs.move_to_end(announce.job_id)
            return False
        self.jobs[announce.job_id] = JobInfo(sender, len(announce.spec.frames))
        while len(self.jobs) > self.config.max_jobs:
            self.jobs.popitem(last=False)
        return True

    def requester_of(self, job_id: bytes) -> bytes | None:
        info = self.jobs.get(job_id)
        return None if info is None else info.requester

    def add(
        self, env: Envelope, now_ms: int, *, rate_limited: bool = True,
        opened: CheckedTask | None = None,
    ) -> Added:  # fmt: skip
        """Keep one verified WorkRecord envelope if it counts; see the module doc.

        Raises ``RemoteProtocolError`` when the record is inconsistent or not
        signed by the job's requester. ``rate_limited=False`` is for history
        (the store, a sync page), which is old by nature. ``opened`` is
        ``open_record(env)`` when the caller has it already (it costs two
        signature checks).
        """
        task = opened if opened is not None else open_record(env)
        return self.add_task(task, now_ms, rate_limited=rate_limited)

    def add_task(self, task: CheckedTask, now_ms: int, *, rate_limited: bool = True) -> Added:
        """Keep one task read from a WorkRecord (rules 1 and 4, the rate and the bounds).

        What :meth:`add` does after opening the envelope; a driver that builds the
        task from messages it carried (the simulator, which signs no records) counts
        it here by the same rules."""
        info = self.jobs.get(task.job_id)
        if info is None:
            return Added.UNKNOWN_JOB
        if info.requester != task.requester:
            raise IllegalMessage("a work record signed by someone other than the job's requester")
        if task.task_id in self.tasks:
            return Added.DUPLICATE
        if rate_limited and not self._take(task.requester, now_ms):
            return Added.OVER_RATE
        self.tasks[task.task_id] = task
        self._by_worker.setdefault(task.worker, {})[task.task_id] = None
        self._by_checker.setdefault(task.checker, {})[task.task_id] = None
        while len(self.tasks) > self.config.max_tasks:
            _, old = self.tasks.popitem(last=False)
            self.disputes.pop(old.task_id, None)
            for index, key in ((self._by_worker, old.worker), (self._by_checker, old.checker)):
                mine = index[key]
                mine.pop(old.task_id, None)
                if not mine:
                    del index[key]
        return Added.NEW

    def dispute(self, env: Envelope, *, opened: DisputeVotes | None = None) -> Added:
        """Keep a DisputeRecord about a recorded rejection (first one per task); see the
        module doc. Raises ``RemoteProtocolError`` when it is inconsistent or does not
        fit the recorded task. Its rate is the record's: at most one per recorded task."""
        votes = opened if opened is not None else open_dispute(env)
        return self.add_dispute(votes)

    def add_dispute(self, votes: DisputeVotes) -> Added:
        """Keep a dispute's votes read from a DisputeRecord (what :meth:`dispute` does
        after opening the envelope; for a driver that builds them, as :meth:`add_task`)."""
        info = self.jobs.get(votes.job_id)
        if info is None:
            return Added.UNKNOWN_JOB
        if info.requester != votes.requester:
            raise IllegalMessage(
                "a dispute record signed by someone other than the job's requester"
            )
        task = self.tasks.get(votes.task_id)
        if task is None:
            return Added.UNKNOWN_TASK
        if task.passed or (task.result_digest, task.verdict_digest) != (
            votes.result_digest,
            votes.verdict_digest,
        ):
            raise IllegalMessage("a dispute record about no recorded rejection", penalty=50)
        if any(checker == task.checker for checker, _ in votes.votes):
            raise IllegalMessage("the rejecting checker cannot vote in its dispute", penalty=50)
        if votes.task_id in self.disputes:
            return Added.DUPLICATE
        self.disputes[votes.task_id] = votes
        return Added.NEW

    def overturned(self, task: CheckedTask) -> bool:
        """Whether a dispute overturned ``task``'s rejection, counting admitted checkers only."""
        votes = self.disputes.get(task.task_id)
        if votes is None or task.passed:
            return False
        counts = self.config.checker_counts
        return overturned(counts(task.checker), [p for c, p in votes.votes if counts(c)])

    def close(self, env: Envelope, now_ms: int) -> Added:
        """Keep a JobClosed from the job's requester (first one wins)."""
        closed = env.message
        if not isinstance(closed, JobClosed):
            raise IllegalMessage(f"{env.type} is not a job closure")
        return self.add_closed(closed, env.sender.raw, env.timestamp_ms)

    def add_closed(self, closed: JobClosed, signer: bytes, timestamp_ms: int) -> Added:
        """Keep a job's closure by ``signer`` (what :meth:`close` does after reading the
        envelope)."""
        info = self.jobs.get(closed.job_id)
        if info is None:
            return Added.UNKNOWN_JOB
        if info.requester != signer:
            raise IllegalMessage("a job closed by someone other than its requester")
        if closed.frames_accepted + closed.frames_failed > info.frames:
            raise IllegalMessage("a job closed with more frames than it has", penalty=50)
        if info.closed is not None:
            return Added.DUPLICATE
        info.closed, info.closed_ms = closed, timestamp_ms
        return Added.NEW

    def _take(self, sender: bytes, now_ms: int) -> bool:
        """Spend one of ``sender``'s record tokens (token bucket, bounded table)."""
        tokens, last_ms = self._buckets.pop(sender, (float(self.config.burst), now_ms))
        elapsed_s = max(0, now_ms - last_ms) / 1000
        tokens = min(float(self.config.burst), tokens + elapsed_s * self.config.rate_per_s)
        ok = tokens >= 1.0
        self._buckets[sender] = (tokens - 1.0 if ok else tokens, now_ms)
        while len(self._buckets) > self.config.max_senders:
            self._buckets.popitem(last=False)  # the longest idle: it starts full again
        return ok

    def tasks_of(self, worker: bytes) -> list[CheckedTask]:
        return [self.tasks[t] for t in self._by_worker.get(worker, {})]

    def history(self, worker: bytes, now_ms: int) -> WorkerHistory:
        """The worker's history from the counted records (``protocol.reputation.score`` it).

        ``age_ms`` runs from the earliest counted record's timestamp, which is
        the requester's signed clock (never later than ``now_ms``).
        """
        counted = [t for t in self.tasks_of(worker) if self.config.checker_counts(t.checker)]
        counted = [t for t in counted if not self.overturned(t)]  # struck: no strike, no pass
        if not counted:
            return WorkerHistory()
        accepted = sum(t.passed for t in counted)
        first_ms = min(min(t.timestamp_ms for t in counted), now_ms)
        return WorkerHistory(accepted=accepted, rejected=len(counted) - accepted,
                             age_ms=now_ms - first_ms)  # fmt: skip

    def checker_history(self, checker: bytes) -> CheckerHistory:
        """The checker's counted verdicts (as first checker) and its overruled rejections."""
        tasks = [self.tasks[t] for t in self._by_checker.get(checker, {})]
        if not self.config.checker_counts(checker):
            return CheckerHistory()
        return CheckerHistory(len(tasks), sum(self.overturned(t) for t in tasks))

    def workers(self) -> list[bytes]:
        return list(self._by_worker)

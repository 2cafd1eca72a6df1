"""WorkerMachine under arbitrary message orders: it refuses, never breaks."""

from __future__ import annotations

from collections import Counter

from hypothesis import given, settings
from hypothesis import strategies as st

from protocol.errors import IllegalMessage
from protocol.market import CancelRender, Send, StartRender, WorkerConfig, WorkerMachine
from protocol.messages import (
    Award,
    Failure,
    FailureReason,
    Heartbeat,
    JobAnnounce,
    JobCancelled,
    LeaseExtended,
    LeaseRevoked,
    Result,
    Voucher,
    job_id_of,
)
from tests.protocol.market.harness import BUILD, START_MS, key_for, make_spec

REQUESTER = key_for("requester").node_id.raw
STRANGER = key_for("stranger").node_id.raw
ME = key_for("worker0").node_id.raw
ADDRESS = bytes(range(20))
SPEC = make_spec(REQUESTER, (1, 2), max_price_wei_per_frame=2_000, budget_wei=10**6,
                 deadline_ms=START_MS + 3_600_000)  # fmt: skip
JOB = job_id_of(SPEC)
SLOTS = 2


def task(n: int) -> bytes:
    return bytes([n]) * 32


awards = st.builds(
    lambda n, f, p: Award(JOB, task(n), f, ME, p, START_MS + 60_000, 15_000),
    st.integers(1, 4), st.sampled_from([1, 2, 2, 3]), st.sampled_from([1_000, 1_000, 500]),
)  # fmt: skip
others = st.one_of(
    st.just(JobAnnounce(JOB, SPEC)),
    st.builds(lambda n: LeaseExtended(JOB, task(n), START_MS + 120_000), st.integers(1, 5)),
    st.builds(lambda n: LeaseRevoked(JOB, task(n), "x"), st.integers(1, 5)),
    st.just(JobCancelled(JOB, "x")),
    st.builds(lambda w: Voucher(1, bytes(20), bytes(20), JOB, ADDRESS, w, bytes(65)), st.integers(0, 5_000)),
    st.just(Heartbeat(JOB, task(1), 1)),
)
# sampled_from is uniform over its list, so repeats weight the step kinds
steps = st.lists(
    st.tuples(
        st.sampled_from(["award"] * 6 + ["other", "finish", "fail", "time"]),
        st.sampled_from([True, True, True, False]),  # from the requester?
        awards,
        others,
        st.integers(0, 30_000),
    ),
    max_size=40,
)


@settings(max_examples=300, deadline=None)
@given(steps)
def test_worker_survives_any_order_and_keeps_to_its_slots(plan: list) -> None:  # type: ignore[type-arg]
    machine = WorkerMachine(ME, ADDRESS, WorkerConfig(100, (BUILD,), slots=SLOTS), START_MS)
    machine.receive(REQUESTER, JobAnnounce(JOB, SPEC), START_MS)
    now = START_MS
    started: set[bytes] = set()
    ended: Counter[bytes] = Counter()
    for kind, from_requester, award, other, delta_ms in plan:
        out: list[object] = []
        rendering = [t for t, s in machine.task_states().items() if s.name == "RENDERING"]
        if kind in ("award", "other"):
            sender = REQUESTER if from_requester else STRANGER
            try:
                out = list(machine.receive(sender, award if kind == "award" else other, now))
            except IllegalMessage:
                pass
        elif kind == "finish" and rendering:
            out = list(machine.render_finished(rendering[0], "bafk", 1, 1, BUILD, "cpu", now))
        elif kind == "fail" and rendering:
            out = list(machine.render_failed(rendering[0], FailureReason.TIMEOUT, "", now))
        elif kind == "time":
            now += delta_ms
            timer = machine.get_timer()
            if timer is not None and timer <= now:
                out = list(machine.handle_timer(now))
        for command in out:
            if isinstance(command, StartRender):
                assert command.task_id not in started
                started.add(command.task_id)
            elif isinstance(command, CancelRender):
                ended[command.task_id] += 1
            elif isinstance(command, Send):
                assert command.to == REQUESTER  # a worker only ever talks to the requester
                if isinstance(command.message, Result | Failure):
                    ended[command.message.task_id] += 1
        assert machine.statistics().tasks_rendering <= SLOTS
        assert all(n == 1 for n in ended.values())  # each render ends once
        assert set(ended) <= started

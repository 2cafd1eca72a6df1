"""The transition tables are the spec: check their shape, and that the docs show them."""

from __future__ import annotations

import enum
import inspect
from pathlib import Path

import pytest

from protocol.errors import IllegalMessage, IllegalTransition
from protocol.market import events as ev
from protocol.market.awarding import Bidder, plan_awards
from protocol.market.tables import (
    ALL_TABLES,
    FRAME_TRANSITIONS,
    JOB_TRANSITIONS,
    TASK_TRANSITIONS,
    WORKER_TASK_TRANSITIONS,
    FrameState,
    JobState,
    TaskState,
    WorkerTaskState,
    format_tables,
    is_stale,
    next_state,
)

DOCS = Path(__file__).resolve().parents[3] / "docs" / "MARKET.md"
BEGIN, END = "<!-- tables:begin -->", "<!-- tables:end -->"
TABLES: list[tuple[dict, type[enum.Enum]]] = [  # type: ignore[type-arg]
    (JOB_TRANSITIONS, JobState),
    (FRAME_TRANSITIONS, FrameState),
    (TASK_TRANSITIONS, TaskState),
    (WORKER_TASK_TRANSITIONS, WorkerTaskState),
]


@pytest.mark.parametrize(("table", "states"), TABLES)
def test_every_state_has_a_row_and_every_target_is_a_state(table: dict, states: type) -> None:  # type: ignore[type-arg]
    assert set(table) == set(states)
    for row in table.values():
        assert all(isinstance(target, states) for target in row.values())


def test_every_event_is_used_and_every_table_key_is_an_event() -> None:
    events = {
        cls for _, cls in inspect.getmembers(ev, inspect.isclass) if cls.__module__ == ev.__name__
    }
    used = {event for table, _ in TABLES for row in table.values() for event in row}
    assert used <= events
    assert events == used


def test_end_states_only_absorb_stale_echoes() -> None:
    for state in (TaskState.ACCEPTED, TaskState.EXPIRED, TaskState.REVOKED, TaskState.FAILED):
        assert is_stale(TASK_TRANSITIONS, state)
    assert not is_stale(TASK_TRANSITIONS, TaskState.LEASED)
    for state in (JobState.FINISHED, JobState.EXPIRED, JobState.CANCELLED):
        assert JOB_TRANSITIONS[state] == {}
    assert FRAME_TRANSITIONS[FrameState.ACCEPTED] == FRAME_TRANSITIONS[FrameState.FAILED] == {}


def test_every_state_can_reach_an_end_state() -> None:
    for table, _ in TABLES:
        ends = {s for s in table if is_stale(table, s)}
        reach = set(ends)
        changed = True
        while changed:
            changed = False
            for state, row in table.items():
                if state not in reach and set(row.values()) & reach:
                    reach.add(state)
                    changed = True
        assert reach == set(table)


def test_illegal_events_say_whose_fault_it_is() -> None:
    with pytest.raises(IllegalMessage):  # a peer's message
        next_state(TASK_TRANSITIONS, TaskState.LEASED, ev.VerdictPassed(b""))
    with pytest.raises(IllegalTransition):  # our own driver
        next_state(TASK_TRANSITIONS, TaskState.LEASED, ev.CheckerAssigned(b""))
    with pytest.raises(IllegalTransition):
        next_state(JOB_TRANSITIONS, JobState.FINISHED, ev.JobCancelledLocally(b""))
    assert (
        next_state(TASK_TRANSITIONS, TaskState.EXPIRED, ev.ResultReceived(b"")) is TaskState.EXPIRED
    )


def test_docs_show_the_current_tables() -> None:
    text = DOCS.read_text()
    shown = text[text.index(BEGIN) + len(BEGIN) : text.index(END)].strip()
    assert shown == format_tables().strip(), (
        "docs/MARKET.md is stale: run python -c 'from tests.protocol.market.test_tables "
        "import write_docs; write_docs()'"
    )
    for title in ALL_TABLES:
        assert title in text


def write_docs() -> None:
    text = DOCS.read_text()
    head, tail = text[: text.index(BEGIN) + len(BEGIN)], text[text.index(END) :]
    DOCS.write_text(f"{head}\n{format_tables().strip()}\n{tail}")


def bidder(name: str, price_wei: int, slots: int = 1, eta_s: int = 60) -> Bidder:
    return Bidder(name.encode().ljust(32, b"\0"), price_wei, eta_s, bytes(20), slots)


def test_awards_go_cheapest_first_within_slots_and_budget() -> None:
    cheap, dear = bidder("cheap", 100, slots=2), bidder("dear", 200, slots=5)
    plan = plan_awards([dear, cheap], {4, 1, 3, 2}, {}, {}, 10_000, lambda p: 0)
    assert [(b.worker[:4], f) for b, f in plan] == [
        (b"chea", 1), (b"chea", 2), (b"dear", 3), (b"dear", 4),
    ]  # fmt: skip
    plan = plan_awards([dear, cheap], {1, 2, 3}, {}, {cheap.worker: 2}, 10_000, lambda p: 0)
    assert {b.worker for b, _ in plan} == {dear.worker}
    plan = plan_awards([dear, cheap], {1, 2, 3}, {}, {}, 330, lambda p: p // 10)
    assert [(b.price_wei, f) for b, f in plan] == [(100, 1), (100, 2)]  # 110 each, 220 <= 330


def test_awards_skip_a_frame_the_worker_already_failed_and_tie_break_on_eta() -> None:
    fast, slow = bidder("fast", 100, eta_s=10), bidder("slow", 100, eta_s=90)
    plan = plan_awards([slow, fast], {1}, {}, {}, 10_000, lambda p: 0)
    assert plan == [(fast, 1)]
    plan = plan_awards([slow, fast], {1}, {1: {fast.worker}}, {}, 10_000, lambda p: 0)
    assert plan == [(slow, 1)]

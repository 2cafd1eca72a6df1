"""WorkerMachine on its own: bids, awards, heartbeats, lease loss, payment."""

from __future__ import annotations

import dataclasses

import pytest

from protocol.errors import IllegalMessage, IllegalTransition
from protocol.market import (
    CancelRender,
    Send,
    StartRender,
    VoucherReceived,
    WorkerConfig,
    WorkerMachine,
    WorkerTaskState,
)
from protocol.messages import (
    Award,
    AwardDeclined,
    Bid,
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
from tests.protocol.market.harness import BUILD, RU_PER_FRAME, START_MS, key_for, make_spec

REQUESTER = key_for("requester").node_id.raw
ME = key_for("worker0").node_id.raw
STRANGER = key_for("stranger").node_id.raw
MY_ADDRESS = bytes(range(20))
SPEC = make_spec(REQUESTER, (1, 2, 3), max_price_wei_per_frame=2_000, budget_wei=10**6,
                 deadline_ms=START_MS + 3_600_000)  # fmt: skip
JOB = job_id_of(SPEC)
ANNOUNCE = JobAnnounce(JOB, SPEC)


def worker(
    price_wei_per_ru: int = 100, slots: int = 1, builds: tuple[str, ...] = (BUILD,)
) -> WorkerMachine:
    config = WorkerConfig(price_wei_per_ru, builds, slots=slots, score_ru_per_hour=36)
    return WorkerMachine(ME, MY_ADDRESS, config, START_MS)


def award(task: int, frame: int = 1, price_wei: int = 1_000, lease_ms: int = 60_000) -> Award:
    return Award(JOB, bytes([task]) * 32, frame, ME, price_wei, START_MS + lease_ms, 15_000)


def bid_and_award(machine: WorkerMachine, *awards: Award) -> list[object]:
    machine.receive(REQUESTER, ANNOUNCE, START_MS)
    out: list[object] = []
    for a in awards:
        out += machine.receive(REQUESTER, a, START_MS)
    return out


def test_bids_its_ask_on_a_job_it_can_render() -> None:
    machine = worker(slots=2)
    (send,) = machine.receive(REQUESTER, ANNOUNCE, START_MS)
    assert isinstance(send, Send) and send.to == REQUESTER
    assert send.message == Bid(JOB, 2, 100 * RU_PER_FRAME, RU_PER_FRAME * 100, MY_ADDRESS)
    assert machine.receive(REQUESTER, ANNOUNCE, START_MS) == []  # one bid per job


@pytest.mark.parametrize(
    "machine",
    [worker(price_wei_per_ru=201), worker(builds=("blender-4.2.0",))],
    ids=["ask above max price", "renderer build not installed"],
)
def test_does_not_bid_on_jobs_it_cannot_take(machine: WorkerMachine) -> None:
    assert machine.receive(REQUESTER, ANNOUNCE, START_MS) == []


def test_does_not_bid_after_the_deadline() -> None:
    assert worker().receive(REQUESTER, ANNOUNCE, SPEC.deadline_ms) == []


def test_refuses_forged_announcements() -> None:
    machine = worker()
    with pytest.raises(IllegalMessage):
        machine.receive(REQUESTER, JobAnnounce(bytes(32), SPEC), START_MS)
    with pytest.raises(IllegalMessage):
        machine.receive(STRANGER, ANNOUNCE, START_MS)
    assert machine.receive(REQUESTER, ANNOUNCE, START_MS) != []  # still usable


def test_takes_an_award_when_a_slot_is_free_and_declines_otherwise() -> None:
    machine = worker(slots=1)
    out = bid_and_award(machine, award(1), award(2, frame=2))
    assert out[0] == StartRender(bytes([1]) * 32, JOB, 1, SPEC)
    assert isinstance(out[1], Send) and isinstance(out[1].message, AwardDeclined)
    assert out[1].message.reason == "no free slot"
    assert machine.receive(REQUESTER, award(1), START_MS) == []  # a duplicate is ignored
    states = machine.task_states()
    assert states[bytes([1]) * 32] is WorkerTaskState.RENDERING
    assert states[bytes([2]) * 32] is WorkerTaskState.DECLINED


def test_declines_an_award_below_its_ask() -> None:
    (send,) = bid_and_award(worker(), award(1, price_wei=999))
    assert isinstance(send, Send) and isinstance(send.message, AwardDeclined)


def test_refuses_awards_it_never_bid_for_or_meant_for_others() -> None:
    machine = worker()
    with pytest.raises(IllegalMessage):
        machine.receive(REQUESTER, award(1), START_MS)  # no bid yet
    machine.receive(REQUESTER, ANNOUNCE, START_MS)
    with pytest.raises(IllegalMessage):
        machine.receive(STRANGER, award(1), START_MS)
    with pytest.raises(IllegalMessage):
        machine.receive(REQUESTER, dataclasses.replace(award(1), worker=STRANGER), START_MS)
    with pytest.raises(IllegalMessage):
        machine.receive(REQUESTER, award(1, frame=99), START_MS)
    machine.receive(REQUESTER, award(1), START_MS)
    with pytest.raises(IllegalMessage):
        machine.receive(REQUESTER, award(1, frame=2), START_MS)  # same task id, other frame


def test_heartbeats_on_its_timer_and_follows_lease_extensions() -> None:
    machine = worker()
    bid_and_award(machine, award(1))
    task_id = bytes([1]) * 32
    assert machine.get_timer() == START_MS + 15_000
    machine.render_progress(task_id, 250, START_MS + 1)
    (send,) = machine.handle_timer(START_MS + 15_000)
    assert isinstance(send, Send) and send.message == Heartbeat(JOB, task_id, 250)
    assert machine.get_timer() == START_MS + 30_000
    machine.receive(REQUESTER, LeaseExtended(JOB, task_id, START_MS + 75_000), START_MS + 15_001)
    for t in (30_000, 45_000, 60_000):
        (beat,) = machine.handle_timer(START_MS + t)
        assert isinstance(beat, Send)
    assert machine.task_states()[task_id] is WorkerTaskState.RENDERING


def test_abandons_a_task_whose_lease_ran_out() -> None:
    machine = worker()
    bid_and_award(machine, award(1))
    task_id = bytes([1]) * 32
    machine.handle_timer(START_MS + 15_000)
    machine.handle_timer(START_MS + 30_000)
    machine.handle_timer(START_MS + 45_000)
    assert machine.handle_timer(START_MS + 60_000) == [CancelRender(task_id)]
    assert machine.task_states()[task_id] is WorkerTaskState.ABANDONED
    assert machine.get_timer() is None
    # the renderer may still report before CancelRender reached it: ignored
    assert machine.render_finished(task_id, "bafkrei", 1, 1, BUILD, "cpu", START_MS + 61_000) == []


def test_delivers_results_and_failures_to_the_requester() -> None:
    machine = worker(slots=2)
    bid_and_award(machine, award(1), award(2, frame=2))
    (done,) = machine.render_finished(bytes([1]) * 32, "bafkreif", 10, 20, BUILD, "cpu", START_MS)
    assert done == Send(
        REQUESTER, Result(JOB, bytes([1]) * 32, 1, "bafkreif", 10, 20, BUILD, "cpu")
    )
    (failed,) = machine.render_failed(
        bytes([2]) * 32, FailureReason.OUT_OF_MEMORY, "vram", START_MS
    )
    expected = Failure(JOB, bytes([2]) * 32, 2, FailureReason.OUT_OF_MEMORY, "vram")
    assert failed == Send(REQUESTER, expected)
    with pytest.raises(IllegalTransition):
        machine.render_finished(bytes([1]) * 32, "bafkreif", 10, 20, BUILD, "cpu", START_MS)
    with pytest.raises(IllegalTransition):
        machine.render_failed(bytes([9]) * 32, FailureReason.TIMEOUT, "", START_MS)
    assert machine.get_timer() is None


def test_stops_rendering_when_the_lease_is_revoked_or_the_job_cancelled() -> None:
    machine = worker(slots=2)
    bid_and_award(machine, award(1), award(2, frame=2))
    revoke = LeaseRevoked(JOB, bytes([1]) * 32, "expired")
    with pytest.raises(IllegalMessage):
        machine.receive(STRANGER, revoke, START_MS)
    assert machine.receive(REQUESTER, revoke, START_MS) == [CancelRender(bytes([1]) * 32)]
    lost_award = LeaseRevoked(JOB, bytes([7]) * 32, "expired")
    assert machine.receive(REQUESTER, lost_award, START_MS) == []
    with pytest.raises(IllegalMessage):
        machine.receive(STRANGER, lost_award, START_MS)
    cancel = JobCancelled(JOB, "deadline passed")
    assert machine.receive(REQUESTER, cancel, START_MS) == [CancelRender(bytes([2]) * 32)]
    assert machine.receive(STRANGER, JobCancelled(bytes(32), "x"), START_MS) == []
    (declined,) = machine.receive(REQUESTER, award(3, frame=3), START_MS)
    assert isinstance(declined, Send) and isinstance(declined.message, AwardDeclined)


def test_keeps_only_newer_vouchers_for_its_own_address() -> None:
    machine = worker()
    bid_and_award(machine)
    voucher = Voucher(1, bytes(20), bytes(20), JOB, MY_ADDRESS, 1_000, bytes(65))
    assert machine.receive(REQUESTER, voucher, START_MS) == [VoucherReceived(voucher)]
    assert (
        machine.receive(REQUESTER, dataclasses.replace(voucher, cumulative_wei=900), START_MS) == []
    )
    assert machine.voucher_wei(JOB) == 1_000
    with pytest.raises(IllegalMessage):
        machine.receive(REQUESTER, dataclasses.replace(voucher, payee=bytes(20)), START_MS)
    with pytest.raises(IllegalMessage):
        machine.receive(STRANGER, dataclasses.replace(voucher, cumulative_wei=5_000), START_MS)
    assert machine.statistics().vouchers_wei == 1_000


def test_forgets_jobs_long_after_their_deadline() -> None:
    machine = worker()
    bid_and_award(machine, award(1))
    later = SPEC.deadline_ms + machine.config.job_memory_ms
    other = make_spec(REQUESTER, (7,), max_price_wei_per_frame=2_000, budget_wei=1,
                      deadline_ms=later + 3_600_000)  # fmt: skip
    machine.receive(REQUESTER, JobAnnounce(job_id_of(other), other), later)
    assert machine.statistics().jobs_known == 1
    assert machine.task_states() == {}


def test_a_worker_takes_no_other_message() -> None:
    with pytest.raises(IllegalMessage):
        worker().receive(REQUESTER, Bid(JOB, 1, 1, 1, MY_ADDRESS), START_MS)


def test_bids_again_once_a_slot_frees_after_declining_for_lack_of_one() -> None:
    machine = worker(slots=1)
    bid_and_award(machine, award(1), award(2, frame=2))  # the second is declined
    out = machine.render_finished(bytes([1]) * 32, "bafkreif", 10, 20, BUILD, "cpu", START_MS)
    assert [type(c.message).__name__ for c in out if isinstance(c, Send)] == ["Result", "Bid"]
    again = worker(slots=1)
    bid_and_award(again, award(1), award(2, frame=2))
    out = again.render_failed(bytes([1]) * 32, FailureReason.OUT_OF_MEMORY, "", SPEC.deadline_ms)
    assert [type(c.message).__name__ for c in out if isinstance(c, Send)] == ["Failure"]


def test_a_scene_its_preflight_refused_declines_every_award_of_the_job_and_never_rebids() -> None:
    machine = worker(slots=2)
    bid_and_award(machine, award(1), award(2, frame=2))
    out = machine.refuse_scene(bytes([1]) * 32, "image 'x' at /etc/passwd is not packed", START_MS)
    declined = [c.message for c in out if isinstance(c, Send)]
    assert {c.task_id for c in out if isinstance(c, CancelRender)} == {bytes([1]) * 32,
                                                                        bytes([2]) * 32}
    assert all(isinstance(m, AwardDeclined) for m in declined) and len(declined) == 2
    assert declined[0].reason.startswith("scene refused: image 'x'")  # type: ignore[union-attr]
    assert all(s is WorkerTaskState.DECLINED for s in machine.task_states().values())
    # A later award of the job is declined at once, with the same reason; no bid follows.
    (send,) = machine.receive(REQUESTER, award(3, frame=3), START_MS)
    assert isinstance(send, Send) and isinstance(send.message, AwardDeclined)
    assert send.message.reason.startswith("scene refused")
    assert machine.handle_timer(START_MS + 1) == []
    assert machine.statistics().awards_declined == 3


def test_no_bid_on_a_job_whose_frame_cannot_end_before_its_deadline() -> None:
    # score 36 RU/h and 10 RU a frame: 1,000 s a frame.
    short = make_spec(REQUESTER, (1,), max_price_wei_per_frame=2_000, budget_wei=10**6,
                      deadline_ms=START_MS + 999_000)  # fmt: skip
    assert worker().receive(REQUESTER, JobAnnounce(job_id_of(short), short), START_MS) == []
    unmeasured = WorkerMachine(ME, MY_ADDRESS, WorkerConfig(100, (BUILD,)), START_MS)
    assert unmeasured.receive(REQUESTER, JobAnnounce(job_id_of(short), short), START_MS) != []
    assert worker().receive(REQUESTER, ANNOUNCE, START_MS) != []  # an hour left: it bids


def test_an_award_that_would_end_after_the_deadline_is_declined_as_too_slow() -> None:
    machine = worker()
    machine.receive(REQUESTER, ANNOUNCE, START_MS)
    late_ms = SPEC.deadline_ms - 999_000
    (send,) = machine.receive(REQUESTER, dataclasses.replace(award(1), lease_deadline_ms=late_ms
                                                             + 60_000), late_ms)  # fmt: skip
    assert isinstance(send, Send) and isinstance(send.message, AwardDeclined)
    assert send.message.reason.startswith("cannot finish before the deadline: a frame of 10 RU")


def test_a_probe_that_measures_a_heavy_scene_declines_the_frame_and_later_ones() -> None:
    machine = worker()
    bid_and_award(machine, award(1))
    # 1,000 s a frame as priced; the probe says 4x that, and 3,600 s are left.
    assert machine.scene_measured(bytes([1]) * 32, 2_000, START_MS) == []  # 2,000 s: fits
    out = machine.scene_measured(bytes([1]) * 32, 4_000, START_MS)
    assert CancelRender(bytes([1]) * 32) in out
    (declined,) = [c.message for c in out if isinstance(c, Send)]
    assert isinstance(declined, AwardDeclined) and "4000 s here" in declined.reason
    assert machine.task_states()[bytes([1]) * 32] is WorkerTaskState.DECLINED
    (send,) = machine.receive(REQUESTER, award(2, frame=2), START_MS)
    assert isinstance(send.message, AwardDeclined)  # type: ignore[attr-defined]
    assert send.message.reason.startswith("cannot finish")  # type: ignore[attr-defined]


def test_a_rejection_naming_a_verdict_is_disputed_by_the_machine_once() -> None:
    from protocol.messages import Dispute

    machine = worker()
    bid_and_award(machine, award(1))
    task = bytes([1]) * 32
    machine.render_finished(task, "bafkreif", 10, 20, BUILD, "cpu", START_MS)
    digest = bytes([0xAB]) * 32
    rejected = LeaseRevoked(JOB, task, "rejected by a checker", digest)
    with pytest.raises(IllegalMessage):
        machine.receive(STRANGER, rejected, START_MS)
    (sent,) = machine.receive(REQUESTER, rejected, START_MS)
    assert sent == Send(REQUESTER, Dispute(JOB, task, digest, "rendered as specified"))
    assert machine.task_states()[task] is WorkerTaskState.DISPUTED
    assert machine.statistics().tasks_disputed == 1
    assert machine.receive(REQUESTER, rejected, START_MS) == []  # a resent revocation
    assert machine.task_states()[task] is WorkerTaskState.DISPUTED


def test_a_rejection_of_a_task_never_delivered_is_the_requesters_fault() -> None:
    machine = worker()
    bid_and_award(machine, award(1))
    rejected = LeaseRevoked(JOB, bytes([1]) * 32, "rejected by a checker", bytes(32))
    with pytest.raises(IllegalMessage):  # still rendering: nothing to reject
        machine.receive(REQUESTER, rejected, START_MS)


def test_a_worker_configured_not_to_dispute_only_notes_the_rejection() -> None:
    config = WorkerConfig(100, (BUILD,), score_ru_per_hour=36, dispute_rejections=False)
    machine = WorkerMachine(ME, MY_ADDRESS, config, START_MS)
    bid_and_award(machine, award(1))
    task = bytes([1]) * 32
    machine.render_finished(task, "bafkreif", 10, 20, BUILD, "cpu", START_MS)
    assert machine.receive(REQUESTER, LeaseRevoked(JOB, task, "r", bytes(32)), START_MS) == []
    assert machine.task_states()[task] is WorkerTaskState.REJECTED


def bids(commands: list[object]) -> list[Bid]:
    return [c.message for c in commands if isinstance(c, Send) and isinstance(c.message, Bid)]


def test_an_award_declined_for_unsecured_pay_is_bid_for_again_later_and_boundedly() -> None:
    """Issue 13: declining an unsecured award cost the bid for good (the requester drops
    it); the lane may only be late, so the worker bids again, backing off, a few times."""
    machine = worker()
    (start,) = bid_and_award(machine, award(1))
    assert isinstance(start, StartRender)
    out = machine.decline(start.task_id, "pay not secured: 0 wei secured", START_MS)
    assert bids(out) == []  # not at once: the lane needs time to show up
    rebid_ms = WorkerConfig(1, ()).unsecured_rebid_ms
    assert machine.get_timer() == START_MS + rebid_ms
    assert bids(machine.handle_timer(START_MS + rebid_ms - 1)) == []
    (again,) = bids(machine.handle_timer(START_MS + rebid_ms))
    assert again.job_id == JOB
    # declined again and again: the waits double, then it gives up on the job
    now_ms, waits = START_MS + rebid_ms, []
    for task in range(2, 10):
        (start,) = machine.receive(REQUESTER, award(task, lease_ms=10**8), now_ms)
        assert isinstance(start, StartRender)
        machine.decline(start.task_id, "pay not secured", now_ms)
        due_ms = machine.get_timer()
        if due_ms is None:
            break
        waits.append(due_ms - now_ms)
        now_ms = due_ms
        assert len(bids(machine.handle_timer(now_ms))) == 1
    assert waits == [2 * rebid_ms, 4 * rebid_ms]
    assert machine.get_timer() is None and bids(machine.handle_timer(now_ms + 10**7)) == []


def test_a_rendered_frame_resets_the_unsecured_count_and_a_cancel_stops_the_rebid() -> None:
    machine = worker()
    (start,) = bid_and_award(machine, award(1))
    machine.decline(start.task_id, "pay not secured", START_MS)
    rebid_ms = WorkerConfig(1, ()).unsecured_rebid_ms
    machine.handle_timer(START_MS + rebid_ms)
    (start,) = machine.receive(REQUESTER, award(2, lease_ms=10**6), START_MS + rebid_ms)
    machine.render_finished(start.task_id, "bafkreiframe", 1, 1, BUILD, "cpu", START_MS + rebid_ms)
    (start,) = machine.receive(REQUESTER, award(3, lease_ms=10**6), START_MS + rebid_ms)
    machine.decline(start.task_id, "pay not secured", START_MS + rebid_ms)
    assert machine.get_timer() == START_MS + 2 * rebid_ms  # the first wait again, not doubled
    machine.receive(REQUESTER, JobCancelled(JOB, "done"), START_MS + rebid_ms + 1)
    assert machine.get_timer() is None


def test_pay_needed_counts_results_delivered_and_not_revoked() -> None:
    """What the lane must hold before another frame: results delivered and still unpaid
    count (they did not: a worker rendered frames its lane no longer covered), results
    whose lease the requester revoked without a verdict do not (they stalled a lone
    worker: its frame is awarded again and paid once), vouchers are a floor."""
    machine = worker(slots=2)
    bid_and_award(machine, award(1, frame=1), award(2, frame=2))
    assert machine.pay_needed_wei(JOB) == 2_000  # two renders in flight
    machine.render_finished(bytes([1]) * 32, "bafkreif", 10, 20, BUILD, "cpu", START_MS)
    assert machine.pay_needed_wei(JOB) == 2_000  # one delivered, unpaid; one in flight
    machine.receive(REQUESTER, LeaseRevoked(JOB, bytes([1]) * 32, "blocklisted"), START_MS)
    assert machine.pay_needed_wei(JOB) == 1_000  # the revoked result will not be paid
    voucher = Voucher(1, bytes(20), SPEC.requester_address, JOB, MY_ADDRESS, 1_500, b"")
    machine.receive(REQUESTER, voucher, START_MS)
    assert machine.pay_needed_wei(JOB) == 2_500  # paid so far, plus the render in flight

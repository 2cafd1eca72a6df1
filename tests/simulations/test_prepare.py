"""The requester's work on a result before its check is asked (issue 20, calibration):
the node fetches the frame from the worker and makes the copy checkers are served
(node.roles.plants), one frame at a time; ``verification.prepare_s`` models it."""

from __future__ import annotations

from tests.simulations.test_challenges import _one_job


def test_a_results_check_waits_for_its_preparation_one_frame_at_a_time() -> None:
    def makespan_ms(prepare_s: float) -> int:
        return _one_job(verification__prepare_s=prepare_s, verification__check_overhead_s=0.1)

    base = makespan_ms(0.0)
    assert base == _one_job(verification__check_overhead_s=0.1)  # 0: not modelled
    # Two results 1.1 s apart (a frame's render, its Result): the second waits for the
    # first's 3 s, then takes its own, so its check is asked about 4.9 s later than
    # without (2.9 s, were the two prepared side by side). The job's plants wait for the
    # real checks' picks, as the node's (a plant first took the only checker, and the
    # real check waited for its verify timeout: 600 s).
    assert 4_500 <= makespan_ms(3.0) - base <= 5_500

"""bench/sim_fidelity.py's "where the time went": the same four phases read from the real
requester's market journal and from the simulator's events, so that each calibration run
says which phase the model misses (docs/SIMULATIONS.md, Calibration)."""

from __future__ import annotations

import argparse

import pytest

from bench.fidelity_fit import Fit
from bench.sim_fidelity import Phases, real_phases, sim_run

W, C, R = b"w" * 32, b"c" * 32, b"r" * 32


def test_the_journal_gives_the_start_the_first_check_and_the_checkers_verdicts() -> None:
    journal = [(2.0, "start", b""), (2.1, "msg", W), (9.5, "msg", W),  # bids, answer, result
               (10.0, "assign", C), (11.0, "msg", W), (15.0, "msg", C),
               (15.5, "assign", C), (16.0, "msg", R), (17.0, "msg", C), (17.2, "timer", b"")]  # fmt: skip
    phases = real_phases(journal)
    assert phases == Phases(2.0, 10.0, 15.0, 17.0)
    assert list(phases.spans().values()) == pytest.approx([2.0, 8.0, 5.0, 2.0])
    assert real_phases([(2.0, "start", b""), (3.0, "msg", W)]) is None  # no check asked
    assert real_phases([(2.0, "start", b""), (3.0, "assign", C)]) is None  # no verdict yet


def test_the_simulated_phases_follow_the_run_they_come_from() -> None:
    """The simulator's phases, read by its after-event hook, are in order and end where
    its job ends (the last verdict accepts the last frame)."""
    args = argparse.Namespace(frames=4, workers=2, width=160, height=120, samples=16, seed=1)
    fit = Fit(frame_alone_s=0.28, frame_shared_s=0.79, check_s=0.23, k=24,
              tile_fraction=0.0133, check_overhead_s=0.02, setup_s=3.6, answer_s=5.5,
              judge_s=6.0, first_check_s=8.5, preflight_s=1.75, fetch_s=0.04,
              prepare_s=0.05)  # fmt: skip
    figures, phases = sim_run(args, fit, -1.0, 1, {"gas_price_wei": 10**9, "gas": {}})
    assert phases is not None
    assert 0 < phases.started_s < phases.first_check_s < phases.first_verdict_s
    assert phases.first_verdict_s < phases.last_verdict_s <= figures.makespan_s
    assert figures.makespan_s - phases.last_verdict_s < 0.1
    # the preflight comes before the deposit; the first check pays the checker's setup
    assert phases.started_s >= fit.preflight_s
    assert phases.first_verdict_s - phases.first_check_s >= fit.first_check_s - fit.check_s

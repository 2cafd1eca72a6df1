"""A violated invariant stops the run and reports the seed and the trace tail."""

from __future__ import annotations

from typing import Any

import pytest

from simulations.loop import InvariantViolation
from simulations.runner import run_scenario
from simulations.scenario import load_scenario
from simulations.world import World
from tests.simulations.conftest import SCENARIOS


def _inject_after_first_redeem(world: World) -> None:
    """Test-only fault: once a redeem has landed, pay its payee a second time."""
    chain = world.chain
    if chain.stats.redeems and not getattr(world, "_injected", False):
        world._injected = True  # type: ignore[attr-defined]
        job = next(j for j in chain.jobs.values() if j.paid_to)
        payee = next(iter(sorted(job.paid_to)))
        chain.balances[payee] += 1  # money out of thin air: escrow not conserved


def test_injected_violation_reports_seed_and_trace(small: dict[str, Any]) -> None:
    scenario = load_scenario(SCENARIOS / "baseline.toml", small)
    with pytest.raises(InvariantViolation) as info:
        run_scenario(scenario, 4242, hooks=[_inject_after_first_redeem])
    report = info.value.report()
    assert "escrow not conserved" in report
    assert "seed=4242" in report and "--seed 4242" in report
    assert info.value.seed == 4242
    assert len(info.value.trace_tail) >= 10
    assert "tx-redeem" in report  # the event that triggered it is in the tail


def test_double_payment_by_a_machine_would_be_caught(small: dict[str, Any]) -> None:
    """The payment check itself: a voucher above what was accepted is 'paid twice'."""
    scenario = load_scenario(SCENARIOS / "baseline.toml", small)

    def overpay(world: World) -> None:
        books = world.invariants.books
        if books and not getattr(world, "_injected", False):
            job_id = next(iter(books))
            world._injected = True  # type: ignore[attr-defined]
            world.invariants.payment_recorded(job_id, b"\x01" * 20, 1)

    with pytest.raises(InvariantViolation, match="paid twice"):
        run_scenario(scenario, 9, hooks=[overpay])


def test_clean_run_has_no_violation(small: dict[str, Any]) -> None:
    outcome = run_scenario(load_scenario(SCENARIOS / "heavy_churn.toml", small), 8)
    assert outcome.summary["jobs_unfinished"] == 0


def test_liveness_violation_names_the_open_jobs(small: dict[str, Any]) -> None:
    """Test-only fault: a job that never ends (as if a machine never settled)."""
    from simulations.metrics import JobRecord

    def never_ending_job(world: World) -> None:
        if not getattr(world, "_injected", False):
            world._injected = True  # type: ignore[attr-defined]
            world.metrics.jobs[b"\x00" * 32] = JobRecord(world.loop.now_ms, 1, 1)
            world.metrics.open_jobs += 1

    scenario = load_scenario(SCENARIOS / "baseline.toml", small)
    with pytest.raises(InvariantViolation, match=r"liveness: 1 job\(s\) still open") as info:
        run_scenario(scenario, 5, hooks=[never_ending_job])
    assert info.value.seed == 5 and info.value.trace_tail

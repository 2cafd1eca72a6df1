"""A lazy pair: two checkers of one owner that compare notes (docs/VERIFICATION.md,
"What two colluding checkers can tell"). Asked about one task, they tell the plant from
the real frame and render neither; plants never catch them, and they earn more than an
honest checker. The simulator's row of that open finding (docs/SIMULATIONS.md)."""

from __future__ import annotations

from simulations.adversary_table import SIZE
from simulations.checkers import CheckerDriver
from simulations.runner import run_scenario
from simulations.scenario import load_scenario
from tests.simulations.conftest import SCENARIOS


def test_a_lazy_pair_skips_renders_plants_never_catch_it_and_it_earns_more() -> None:
    pair = honest = unrendered = plants = 0
    for seed in (1, 2):
        run = run_scenario(load_scenario(SCENARIOS / "lazy_pair.toml", SIZE), seed)
        s = run.summary
        pair += s["lazy_pair_checker_profit_wei"]
        honest += s["honest_checker_profit_wei"]
        plants += s["plants_sent"]
        assert s["plants_missed"] == 0  # it rejects every plant it is sent
        for checker in run.world.checkers:
            driver = checker.driver
            assert isinstance(driver, CheckerDriver)
            if checker.behaviour != "lazy_pair":
                continue
            calls = [c for c in driver._pair_calls.values() if c is not None]
            unrendered += len(calls)
            fees = run.metrics.unrendered_fees_wei.get(checker.node_id, 0)
            assert (fees > 0) == bool(calls)  # its unrendered answers' fees, booked
            assert s["honest_loss_wei"] >= fees  # checks paid for and never made
            notes = run.world.pair_notes
            for task_id, _ in (k for k, c in driver._pair_calls.items() if c is not None):
                # a call only where another member of the pair was asked about the task
                assert len(notes[task_id]) >= 2
    assert plants and unrendered  # plants went, and the pair skipped renders
    assert pair > honest  # per checker, over the two runs

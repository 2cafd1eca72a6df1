"""One simulation run: build the world, run safety then liveness, summarise.

Phase 1, safety (``scenario.duration_s``): every fault the scenario asks for
is on — loss, duplication, partitions, churn, adversaries — and jobs keep
arriving. The invariants (``invariants.py``) are checked after every event.

Phase 2, liveness (at most ``scenario.liveness_bound_s``): network faults and
churn stop (crashed nodes still come back), no new jobs arrive, and every job
must end — completed, or failed cleanly by the machine (expired, partial) —
before the bound. Adversaries keep behaving as they do: a network with
cheaters must still finish its jobs. A job left open is a liveness violation.

Either violation raises :class:`~simulations.loop.InvariantViolation` with
the seed and the trace tail. The summary holds only simulated quantities, so
it is byte-identical for a seed; wall time is reported separately.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from simulations.accounts import adversary_accounts, stake_net
from simulations.metrics import Metrics, checker_profits, write_outputs
from simulations.models import draw_job, next_arrival_ms
from simulations.population import Population
from simulations.scenario import Scenario
from simulations.world import World

Hook = Callable[[World], None]
Progress = Callable[[float, str], None]
PROGRESS_STEPS = 100


@dataclass
class RunOutcome:
    seed: int
    summary: dict[str, Any]
    metrics: Metrics
    events: int
    wall_s: float
    world: World


def run_scenario(
    scenario: Scenario, seed: int, *, hooks: Iterable[Hook] = (), progress: Progress | None = None
) -> RunOutcome:
    """Run both phases; raises ``InvariantViolation`` on a safety or liveness failure."""
    started = time.perf_counter()
    world = World(scenario, seed)
    loop = world.loop
    population = Population(world)
    population.populate()
    population.start_churn()
    world.net.schedule_partitions()
    meta = scenario.scenario
    safety_end_ms = int(meta.duration_s * 1000)
    arrivals = _Arrivals(world, population, safety_end_ms)
    arrivals.schedule(int(scenario.workload.first_job_s * 1000))
    sample_ms = int(meta.sample_interval_s * 1000)

    def sample(_: object) -> None:
        population.count_adverts(sample_ms)
        world.metrics.sample(loop.now_ms)
        loop.call_later(sample_ms, sample, None, "sample")

    loop.call_later(sample_ms, sample, None, "sample")
    if meta.check_invariants:
        loop.after_event.append(world.invariants.after_event)
    for hook in hooks:
        loop.after_event.append(_bind(hook, world))

    _run_phase(world, 0, safety_end_ms, "safety", progress)
    # Liveness: faults off, no new work; the open jobs must all end.
    world.faults_on = False
    world.net.faults_off()
    population.stop_churn()
    bound_end_ms = safety_end_ms + int(meta.liveness_bound_s * 1000)
    _run_phase(world, safety_end_ms, bound_end_ms, "liveness", progress, until_idle=True)
    open_jobs = [j for j in world.metrics.jobs.values() if j.finished_ms is None]
    if open_jobs:
        raise loop.violation(
            f"liveness: {len(open_jobs)} job(s) still open {meta.liveness_bound_s:.0f} s "
            "after faults stopped"
        )
    if meta.check_invariants:
        world.invariants.check_chain(every_job=True)
        world.invariants.raise_first(loop)
    world.metrics.sample(loop.now_ms)
    summary = world.metrics.summary(loop.now_ms, world.net.stats, world.chain.stats)
    behaviours = {c.node_id: c.behaviour for c in world.checkers}
    summary.update(checker_profits(world.metrics, behaviours, stake_net(world)))
    summary.update(adversary_accounts(world))
    summary["events"] = loop.events_run
    summary["seed"] = seed
    summary["scenario"] = meta.name
    return RunOutcome(
        seed, summary, world.metrics, loop.events_run, time.perf_counter() - started, world
    )


def _bind(hook: Hook, world: World) -> Callable[[object], None]:
    return lambda _loop: hook(world)


def _run_phase(
    world: World,
    start_ms: int,
    end_ms: int,
    name: str,
    progress: Progress | None,
    until_idle: bool = False,
) -> None:
    loop = world.loop

    def all_ended() -> bool:
        return world.metrics.open_jobs == 0

    step_ms = max(1, (end_ms - start_ms) // PROGRESS_STEPS)
    t = start_ms
    while t < end_ms:
        t = min(end_ms, t + step_ms)
        loop.run_until(t, all_ended if until_idle else None)
        if progress is not None:
            progress((t - start_ms) / (end_ms - start_ms), name)
        if until_idle and all_ended():
            return


class _Arrivals:
    """The workload: jobs arrive as a Poisson process at random requesters.

    From a stream of its own, seeded from the run's seed: the same seed gives the same
    jobs (when, where, what) whatever else a change of parameters or code draws, so two
    runs of a seed compare like for like. Drawn from the loop's one RNG, a change that
    only slowed the checkers also changed which jobs came (9 against 18 in one run of
    tests/simulations' small lazy_checkers), and the difference read as its effect."""

    def __init__(self, world: World, population: Population, until_ms: int) -> None:
        self.world = world
        self.population = population
        self.until_ms = until_ms
        self.rng = random.Random(f"arrivals:{world.loop.seed}")  # deterministic (sha512)

    def schedule(self, at_ms: int) -> None:
        if at_ms < self.until_ms:
            self.world.loop.call_at(at_ms, self._arrive, None, "job-arrives")

    def _arrive(self, _: object) -> None:
        world, rng = self.world, self.rng
        requester = rng.choice(self.population.requesters)
        requester.submit(draw_job(rng, world.scenario.workload))
        gap_ms = next_arrival_ms(rng, world.scenario.workload.jobs_per_hour)
        if gap_ms is not None:
            self.schedule(world.loop.now_ms + gap_ms)


def write_run(outcome: RunOutcome, out_dir: Path, plots: bool = True) -> list[Path]:
    paths = write_outputs(out_dir, outcome.summary, outcome.metrics)
    if plots:
        from simulations.plots import plot_run  # matplotlib only when asked

        paths += plot_run(out_dir, outcome.metrics)
    return paths

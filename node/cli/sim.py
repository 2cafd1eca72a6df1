"""``pictor sim``: run and sweep network simulations (logic in simulations/)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from node.cli.console import out_console

# simulations/ sits beside node/, not below it: every import of it stays inside a
# command function, so the node program never depends on it at import time
# (tests/test_layering.py).

app = typer.Typer(help="Deterministic simulations of a Pictor network.", no_args_is_help=True)
console = out_console()

ScenarioArg = Annotated[Path, typer.Argument(help="scenario TOML (see simulations/scenarios/)")]
OutOpt = Annotated[Path, typer.Option("--out", help="directory for metrics and plots")]


@app.command("run")
def run(
    scenario: ScenarioArg,
    seed: Annotated[int, typer.Option(help="the run's only source of randomness")] = 1,
    out: OutOpt = Path("sim-out"),
    plots: Annotated[bool, typer.Option(help="write PNG plots")] = True,
) -> None:
    """Run one scenario: safety phase (faults on), then liveness (faults off)."""
    from simulations.loop import InvariantViolation
    from simulations.runner import run_scenario, write_run
    from simulations.sweep import HEADLINE

    config = _load(scenario)
    with Progress(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.percentage:>3.0f}%"),
                  TimeElapsedColumn(), console=console, transient=True) as bar:  # fmt: skip
        task = bar.add_task("safety", total=1.0)
        try:
            outcome = run_scenario(
                config, seed,
                progress=lambda done, phase: bar.update(task, completed=done, description=phase),
            )  # fmt: skip
        except InvariantViolation as exc:
            typer.echo(exc.report(), err=True)  # plain: a trace must not be re-wrapped
            raise typer.Exit(1) from None
    paths = write_run(outcome, out, plots=plots)
    table = Table("metric", "value", title=f"{config.scenario.name} seed={seed}")
    for key in (
        *HEADLINE,
        "jobs_completed",
        "jobs_failed",
        "messages_per_frame",
        "bytes_per_frame",
    ):
        table.add_row(key, str(outcome.summary[key]))
    console.print(table)
    rate = outcome.events / outcome.wall_s if outcome.wall_s else 0.0
    console.print(f"{outcome.events} events in {outcome.wall_s:.1f} s ({rate:,.0f} events/s); "
                  f"wrote {len(paths)} files to {out}")  # fmt: skip


@app.command("sweep")
def sweep_cmd(
    scenario: ScenarioArg,
    param: Annotated[list[str], typer.Option(help="dotted.key=v1,v2 (repeatable)")],
    seeds: Annotated[int, typer.Option(help="seeds per grid point")] = 10,
    workers: Annotated[int, typer.Option(help="processes (local, or a started local cluster)")] = 2,
    executor: Annotated[
        str, typer.Option(help="local processes, or a Ray or Dask cluster (pictor[cluster])")
    ] = "local",
    address: Annotated[
        str | None,
        typer.Option(help="join this Ray/Dask cluster (ray: 'auto' or host:port; dask: "
                          "tcp://host:8786); without it a local cluster is started"),
    ] = None,
    out: OutOpt = Path("sweep-out"),
) -> None:
    """Run a parameter grid × seeds in parallel; table and plots with 95 % CIs.

    The files written are the same bytes whichever executor ran the runs."""
    from simulations.executors import make_executor
    from simulations.plots import plot_sweep
    from simulations.scenario import load_scenario
    from simulations.schema import ScenarioError
    from simulations.sweep import (
        HEADLINE,
        grid_specs,
        parse_params,
        summarise,
        sweep,
        write_sweep,
    )

    _load(scenario)  # fail early on a bad file
    try:
        grid = parse_params(param)
        specs = grid_specs(str(scenario), grid, seeds)
        for key, values in grid:  # validate every override before spending CPU
            for value in values:
                load_scenario(scenario, {key: value})
    except ScenarioError as exc:
        console.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from None
    where = address or f"{workers} {'processes' if executor == 'local' else 'local workers'}"
    with console.status(f"{len(specs)} runs on {executor} ({where})") as status:

        def progress(done: int, total: int) -> None:
            status.update(f"{done}/{total} runs done on {executor} ({where})")

        try:
            runner = make_executor(executor, workers, address, progress)
        except ValueError as exc:
            console.print(f"[red]{exc}[/red]")
            raise typer.Exit(2) from None
        results = sweep(runner, specs)
    rows = summarise(results)
    paths = write_sweep(out, rows, results)
    first_key = grid[0][0]
    stats = {m: [(r[m], r[f"{m}_ci95"]) for r in rows] for m in HEADLINE[:4]}
    paths += plot_sweep(out, first_key, [r[first_key] for r in rows], stats)
    _print_rows(rows, [k for k, _ in grid])
    failures = [r for r in results if r.violation]
    for failure in failures:
        console.print(
            f"[red]violation[/red] seed={failure.spec.seed} {dict(failure.spec.overrides)}"
        )
    if failures:
        console.print(f"regression entries written to {out / 'regressions.toml'}")
    crashed = [r for r in results if r.error]
    for run in crashed:
        console.print(f"[red]run failed[/red] seed={run.spec.seed} {dict(run.spec.overrides)}\n"
                      f"{(run.error or '')[-600:]}", highlight=False)  # fmt: skip
    console.print(f"wrote {len(paths)} files to {out}")
    if failures or crashed:
        raise typer.Exit(1)


_COLUMNS = {"frames_per_hour": "frames/h", "utilisation": "util", "makespan_s": "makespan s",
            "cheats_caught": "caught", "cheats_missed": "missed"}  # fmt: skip


def _print_rows(rows: list[dict[str, object]], keys: list[str]) -> None:
    """Only the swept keys that vary, and the headline metrics as mean ± CI."""
    varying = [k for k in keys if len({str(r[k]) for r in rows}) > 1] or keys[:1]
    short = [k.rsplit(".", 1)[-1] for k in varying]
    table = Table(*short, "runs", "viol.", *_COLUMNS.values(), title="mean ± 95 % CI")
    for row in rows:
        cells = [f"{_num(row[m])}±{_num(row[f'{m}_ci95'])}" for m in _COLUMNS]
        table.add_row(
            *(str(row[k]) for k in varying), str(row["runs"]), str(row["violations"]), *cells
        )
    console.print(table)


def _num(value: object) -> str:
    x = float(value)  # type: ignore[arg-type]
    return f"{x:,.0f}" if abs(x) >= 100 else f"{x:.2g}"


def _load(path: Path):  # type: ignore[no-untyped-def]
    from simulations.scenario import load_scenario
    from simulations.schema import ScenarioError

    try:
        return load_scenario(path)
    except (ScenarioError, OSError) as exc:
        console.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from None

"""``pictor demo``: the README's main-job command."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.live import Live
from rich.table import Table

from node.cli.console import err_console, out_console
from node.cli.job_view import JobClock, eth, progress_view


def demo(
    out: Annotated[Path, typer.Option(help="Where frames and summary.json go.")] = Path(
        "pictor-demo-out"
    ),
    frames: Annotated[int, typer.Option(min=1, max=250, help="Animation length.")] = 8,
    workers: Annotated[int, typer.Option(min=1, help="Worker nodes.")] = 3,
    checkers: Annotated[int, typer.Option(min=1, help="Checker nodes.")] = 1,
    resolution: Annotated[str, typer.Option(help="WxH of the frames.")] = "160x120",
    samples: Annotated[int, typer.Option(min=1, help="Cycles samples per pixel.")] = 16,
) -> None:
    """Bring up a local network, render a generated scene end to end, tear down.

    A local anvil chain with the escrow, a client node, workers and checkers as
    separate processes on loopback; the client escrows the budget, workers bid
    and render, checkers re-render tiles, accepted frames are paid with
    vouchers that workers redeem on chain. Frames and summary.json land in OUT.
    """
    from node.devnet.demo import DemoConfig, run_demo

    console = out_console()
    w, _, h = resolution.partition("x")
    config = DemoConfig(out.resolve(), frames, (int(w), int(h)), samples, workers, checkers)
    config.out_dir.mkdir(parents=True, exist_ok=True)
    clock = JobClock()  # counts from the job's start, not the demo's
    live = Live(console=console, refresh_per_second=4, transient=True)

    def on_change(job: dict[str, Any], names: dict[str, str]) -> None:
        if not live.is_started:
            live.start()
        live.update(progress_view(job, clock, names))

    try:
        summary = run_demo(config, on_change, lambda s: console.print(f"[dim]·[/] {s}"))
    except Exception as exc:
        live.stop()
        err_console().print(f"[bold red]demo failed:[/] {exc}")
        raise typer.Exit(1) from None
    live.stop()
    console.print(_summary(summary))
    if summary["outcome"] != "completed" or summary["paid_on_chain_wei"] < summary["spent_wei"]:
        raise typer.Exit(1)


def _summary(s: dict[str, Any]) -> Table:
    t = Table(title=f"pictor demo: {s['outcome']}", show_header=False)
    t.add_row("frames", f"{s['frames_accepted']}/{s['frames_total']} rendered, verified, paid")
    t.add_row("time", f"job {s['job_wall_s']} s, whole demo {s['demo_wall_s']} s")
    t.add_row("cost", f"{eth(s['spent_wei'])} (escrowed {eth(s['budget_wei'])})")
    t.add_row("paid on chain", eth(s["paid_on_chain_wei"]))
    t.add_row("workers", ", ".join(s["workers"]) or "—")
    t.add_row("rendered by", ", ".join(f"{n}: {c}" for n, c in s["rendered_by"].items()))
    t.add_row("checked by", ", ".join(f"{n}: {c}" for n, c in s["checked_by"].items()))
    t.add_row("reassigned", str(s["reassigned"]))
    t.add_row("transactions", f"{len(s['transactions'])} "
              f"(redeem gas per frame ≈ {s['redeem_gas_per_frame']})")  # fmt: skip
    t.add_row("output", s["out_dir"])
    return t

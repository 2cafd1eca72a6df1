"""``pictor devnet up|down``: a local network on loopback, with a local chain."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Annotated

import typer

from node.cli.console import err_console, out_console
from node.devnet.supervisor import STATE_FILE

app = typer.Typer(help="Run a local Pictor network (anvil chain + node processes) on loopback.")
DirOption = typer.Option("--dir", help="Where the devnet's data directories and state live.")
UP_TIMEOUT_S = 180.0
DOWN_TIMEOUT_S = 60.0


def _alive(pid: int) -> bool:
    """Running, and not a zombie (an orphan's reaper may be slow, or absent in a container)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat[stat.rindex(")") + 2] not in "ZX"


@app.command("up")
def up(
    workers: Annotated[int, typer.Option(min=1, help="Worker nodes.")] = 3,
    checkers: Annotated[int, typer.Option(min=1, help="Checker nodes.")] = 1,
    base: Annotated[Path, DirOption] = Path("pictor-devnet"),
) -> None:
    """Start anvil with the escrow deployed, a client node, workers and checkers; return."""
    console = out_console()
    base = base.resolve()
    if (base / STATE_FILE).exists():
        err_console().print(f"[red]a devnet already runs in {base}[/]; `pictor devnet down`")
        raise typer.Exit(1)
    base.mkdir(parents=True, exist_ok=True)
    log = (base / "supervisor.log").open("a")
    argv = [sys.executable, "-m", "node.devnet.supervisor", str(base), str(workers), str(checkers)]
    process = subprocess.Popen(argv, stdout=log, stderr=log, start_new_session=True)
    deadline = time.monotonic() + UP_TIMEOUT_S
    while not (base / STATE_FILE).exists():
        if process.poll() is not None or time.monotonic() > deadline:
            err_console().print(f"[red]devnet did not start[/]; see {base}/supervisor.log")
            raise typer.Exit(1)
        time.sleep(0.2)
    state = json.loads((base / STATE_FILE).read_text())
    console.print(f"chain    {state['rpc_url']} (id {state['chain_id']}), escrow {state['escrow']}")
    for name, node in state["nodes"].items():
        console.print(
            f"{name:<10} {', '.join(node['roles']):<8} api {node['api']}  {node['data_dir']}"
        )
    client = state["nodes"]["client"]["data_dir"]
    console.print("\nsubmit a job (no scene at hand? `pictor example-scene scene.blend` makes one):")
    console.print(f"  pictor job submit scene.blend --frames 1-8 --data-dir {client}", highlight=False)
    console.print(f"stop it:\n  pictor devnet down --dir {base}", highlight=False)


@app.command("down")
def down(base: Annotated[Path, DirOption] = Path("pictor-devnet")) -> None:
    """Stop the devnet's nodes and chain."""
    state_path = base.resolve() / STATE_FILE
    if not state_path.exists():
        err_console().print(f"no devnet runs in {base}")
        raise typer.Exit(1)
    pid = json.loads(state_path.read_text())["supervisor_pid"]
    if _alive(pid):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + DOWN_TIMEOUT_S
    while _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.2)
    state_path.unlink(missing_ok=True)
    out_console().print("devnet stopped")

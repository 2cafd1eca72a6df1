"""``pictor job submit|status|watch|list|cancel|download``: client mode against the local node.

The node does the work (preflight, content, escrow, market, verification,
payment); these commands only talk to its local API and draw the progress.
"""

from __future__ import annotations

import re
import shutil
import time
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console, Group
from rich.live import Live
from rich.table import Table

from node.cli.init_cmd import DataDirOption
from node.config import default_data_dir
from node.devnet.api import ApiError, NodeApi

app = typer.Typer(help="Submit Blender jobs to the network and follow them (client mode).")
WEI_PER_ETH = 10**18
_STYLE = {"pending": "white", "leased": "cyan", "verifying": "yellow", "accepted": "green",
          "failed": "red"}  # fmt: skip


def parse_frames(text: str) -> list[int]:
    """``1-48``, ``1,3,5-7`` -> frame numbers; ``BadParameter`` on anything else."""
    frames: list[int] = []
    for part in text.split(","):
        m = re.fullmatch(r"\s*(\d+)\s*(?:-\s*(\d+)\s*)?", part)
        if m is None:
            raise typer.BadParameter(f"bad frame range {part!r}; use e.g. 1-48 or 1,3,5-7")
        first, last = int(m.group(1)), int(m.group(2) or m.group(1))
        if last < first:
            raise typer.BadParameter(f"frame range {part!r} runs backwards")
        frames.extend(range(first, last + 1))
    return sorted(set(frames))


def parse_duration_s(text: str) -> float:
    m = re.fullmatch(r"(\d+(?:\.\d+)?)\s*([smhd]?)", text.strip())
    if m is None:
        raise typer.BadParameter(f"bad duration {text!r}; use e.g. 90s, 30m, 2h")
    return float(m.group(1)) * {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}[m.group(2)]


def parse_wei(text: str) -> int:
    m = re.fullmatch(r"(\d+(?:\.\d+)?)\s*(wei|gwei|eth)?", text.strip().lower())
    if m is None:
        raise typer.BadParameter(f"bad amount {text!r}; use e.g. 0.02eth, 5gwei, 1000wei")
    unit = {"wei": 1, "gwei": 10**9, "eth": WEI_PER_ETH, None: 1}[m.group(2)]
    return int(Decimal(m.group(1)) * unit)  # exact: 0.1 ETH is not a binary fraction


def eth(wei: int) -> str:
    return f"{wei / WEI_PER_ETH:.6f} ETH"


def _api(data_dir: Path | None) -> NodeApi:
    data_dir = (data_dir or default_data_dir()).expanduser()
    try:
        return NodeApi.for_data_dir(data_dir)
    except Exception as exc:  # config or key file problems, said plainly
        _fail(f"cannot reach the local node's API ({data_dir}): {exc}")
        raise


def _fail(message: str, code: int = 1) -> None:
    Console(stderr=True).print(f"[bold red]error:[/] {message}")
    raise typer.Exit(code)


def progress_view(job: dict[str, Any], started_s: float) -> Group:
    frames = job["frames"]
    done = job["frames_accepted"]
    elapsed_s = time.monotonic() - started_s
    eta = f"{elapsed_s / done * (len(frames) - done):.0f} s" if done else "—"
    head = Table.grid(padding=(0, 2))
    head.add_row(f"job [bold]{job['job_id'][:16]}[/]", f"{done}/{len(frames)} frames",
                 f"elapsed {elapsed_s:.0f} s", f"ETA {eta}", f"spent {eth(job['spent_wei'])}",
                 f"workers {len(job['workers'])}")  # fmt: skip
    grid = Table(show_header=True, header_style="bold", box=None)
    grid.add_column("frame", justify="right")
    grid.add_column("state")
    grid.add_column("worker")
    for frame, state in frames.items():
        worker = job["accepted"].get(frame, {}).get("worker", "")
        grid.add_row(frame, f"[{_STYLE.get(state, 'white')}]{state}[/]", worker[:12])
    return Group(head, grid)


def summary_table(job: dict[str, Any], roles: dict[str, Any], wall_s: float | None) -> Table:
    t = Table(
        title=f"job {job['job_id'][:16]}: {job['outcome'] or job['state']}", show_header=False
    )
    t.add_row("frames", f"{job['frames_accepted']}/{job['frames_total']} accepted, "
              f"{len(job['failed'])} failed")  # fmt: skip
    if wall_s is not None:
        t.add_row("time", f"{wall_s:.1f} s")
    t.add_row("cost", f"{eth(job['spent_wei'])} of {eth(job['budget_wei'])} escrowed; "
              f"refund due {eth(job['refund_wei'])}")  # fmt: skip
    t.add_row("workers", ", ".join(w[:12] for w in job["workers"]) or "—")
    t.add_row("blocklisted", ", ".join(w[:12] for w in job["blocklisted"]) or "—")
    t.add_row("reassigned", str(max(0, job["awards"] - job["frames_accepted"])))
    txs = roles.get("transactions", [])
    t.add_row(
        "on-chain", "; ".join(f"{x['what']} {x['tx'][:10]}… gas {x['gas']}" for x in txs) or "—"
    )
    t.add_row("output", job["out_dir"])
    return t


def follow(api: NodeApi, job_id: str, console: Console, timeout_s: float) -> dict[str, Any]:
    started_s = time.monotonic()
    job = api.job(job_id)
    with Live(progress_view(job, started_s), console=console, refresh_per_second=4) as live:
        job = api.wait_job(job_id, timeout_s,
                           on_change=lambda j: live.update(progress_view(j, started_s)))  # fmt: skip
    return job


@app.command("submit")
def submit(
    scene: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="The .blend file.")],
    frames: Annotated[str, typer.Option(help="Frames, e.g. 1-48 or 1,3,5-7.")] = "1",
    max_price: Annotated[
        str, typer.Option(help="Most you pay per frame, e.g. 0.02eth.")
    ] = "0.02eth",
    deadline: Annotated[str, typer.Option(help="Time allowed, e.g. 2h, 30m.")] = "2h",
    assurance: Annotated[str, typer.Option(help="Verification: normal or high.")] = "normal",
    out: Annotated[
        Path | None, typer.Option(help="Where frames land (default ./pictor-out).")
    ] = None,
    resolution: Annotated[str | None, typer.Option(help="Override WxH, e.g. 640x360.")] = None,
    samples: Annotated[int | None, typer.Option(help="Override the scene's samples.")] = None,
    wait: Annotated[bool, typer.Option("--wait/--no-wait", help="Follow until done.")] = True,
    data_dir: Path | None = DataDirOption,
) -> None:
    """Preflight, escrow and announce a job on the local node, then follow it until done."""
    api, console = _api(data_dir), Console()
    body: dict[str, Any] = {
        "scene": str(scene.resolve()), "frames": parse_frames(frames),
        "max_price_wei_per_frame": parse_wei(max_price), "deadline_s": parse_duration_s(deadline),
        "assurance": assurance, "out_dir": str((out or Path("pictor-out")).resolve()),
    }  # fmt: skip
    if resolution:
        w, _, h = resolution.partition("x")
        body["resolution"] = [int(w), int(h)]
    if samples:
        body["samples"] = samples
    started_s = time.monotonic()
    try:
        job = api.post("/v1/client/jobs", body)
        console.print(f"submitted job [bold]{job['job_id']}[/] ({len(job['frames'])} frames)")
        if not wait:
            return
        job = follow(api, job["job_id"], console, body["deadline_s"] + 60)
        console.print(summary_table(job, api.get("/v1/roles"), time.monotonic() - started_s))
    except ApiError as exc:
        _fail(str(exc))
    if job["outcome"] != "completed":
        raise typer.Exit(1)


@app.command("status")
def status(job_id: str, data_dir: Path | None = DataDirOption) -> None:
    """One job's summary."""
    api = _api(data_dir)
    try:
        Console().print(summary_table(api.job(job_id), api.get("/v1/roles"), None))
    except ApiError as exc:
        _fail(str(exc))


@app.command("watch")
def watch(job_id: str, data_dir: Path | None = DataDirOption) -> None:
    """Live progress of a job until it finishes."""
    api, console = _api(data_dir), Console()
    try:
        job = follow(api, job_id, console, 7 * 86400)
        console.print(summary_table(job, api.get("/v1/roles"), None))
    except ApiError as exc:
        _fail(str(exc))


@app.command("list")
def list_jobs(data_dir: Path | None = DataDirOption) -> None:
    """Jobs this node submitted."""
    t = Table("job", "state", "frames", "spent")
    try:
        for job in _api(data_dir).get("/v1/client/jobs"):
            t.add_row(job["job_id"][:16], job["outcome"] or job["state"],
                      f"{job['frames_accepted']}/{job['frames_total']}", eth(job["spent_wei"]))  # fmt: skip
    except ApiError as exc:
        _fail(str(exc))
    Console().print(t)


@app.command("cancel")
def cancel(job_id: str, data_dir: Path | None = DataDirOption) -> None:
    """Stop a job: open frames fail, leases are revoked, the unspent budget is refundable."""
    try:
        job = _api(data_dir).post(f"/v1/client/jobs/{job_id}/cancel")
    except ApiError as exc:
        _fail(str(exc))
        raise
    Console().print(f"cancelled; refund due {eth(job['refund_wei'])} "
                    "(the escrow returns it after the deadline's grace period)")  # fmt: skip


@app.command("download")
def download(
    job_id: str,
    out: Annotated[Path, typer.Option(help="Folder to copy accepted frames into.")] = Path("."),
    data_dir: Path | None = DataDirOption,
) -> None:
    """Copy a job's accepted frames into OUT."""
    try:
        job = _api(data_dir).job(job_id)
    except ApiError as exc:
        _fail(str(exc))
        raise
    out.mkdir(parents=True, exist_ok=True)
    copied = 0
    for frame in job["accepted"]:
        source = Path(job["out_dir"]) / f"frame_{int(frame):04d}.png"
        if source.exists():
            shutil.copyfile(source, out / source.name)
            copied += 1
    Console().print(f"{copied} frames copied to {out}")

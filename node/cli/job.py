"""``pictor job submit|status|watch|list|cancel|download``: client mode against the local node.

The node does the work (preflight, content, escrow, market, verification,
payment); these commands only talk to its local API and draw the progress.
``submit`` reads the workers' current asks from the node's adverts, proposes
a max price unless given one, shows the estimate and the escrow and asks
before anything is escrowed (``--yes`` skips the question). A job id is its
64 hex digits or any unique prefix of them (the node resolves it).
"""

from __future__ import annotations

import re
import shutil
import sys
import time
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console, Group
from rich.live import Live
from rich.table import Table

from node.cli.console import err_console, out_console
from node.cli.init_cmd import DataDirOption
from node.cli.job_market import checkers, offers, proposal_lines, stall_lines
from node.cli.job_view import JOB_ID_CHARS, JobClock, eth, progress_view, summary_table
from node.config import default_data_dir
from node.devnet.api import ApiError, NodeApi
from protocol.market.quote import (
    PriceProposal,
    budget_wei,
    checkers_warning,
    eligible,
    estimate_wei,
    propose_max_price,
)
from protocol.messages import Assurance
from protocol.money import parse_amount_wei
from protocol.verification import accepts_short, checks_per_frame

app = typer.Typer(help="Submit Blender jobs to the network and follow them (client mode).")
ADVERT_WAIT_S = 15.0  # a node just started has not heard every advert yet
STALL_AFTER_S = 15.0  # bids arrive within the 2 s bid window; give the market time first


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
    """``0.02eth``, ``5gwei``, ``1000`` (wei) -> integer wei, exactly."""
    try:
        return parse_amount_wei(text)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None


def _api(data_dir: Path | None) -> NodeApi:
    data_dir = (data_dir or default_data_dir()).expanduser()
    if not (data_dir / "config.toml").exists():
        _fail(f"no node in {data_dir}: create one with `pictor init --data-dir {data_dir}` and "
              f"start it with `pictor node run --data-dir {data_dir}`, or run `pictor devnet up` "
              "and use --data-dir pictor-devnet/client")  # fmt: skip
    try:
        return NodeApi.for_data_dir(data_dir)
    except Exception as exc:  # config or key file problems, said plainly
        _fail(f"cannot reach the local node's API ({data_dir}): {exc}")
        raise


def _fail(message: str, code: int = 1) -> None:
    err_console().print(f"[bold red]error:[/] {message}", highlight=False)
    raise typer.Exit(code)


class StallWatch:
    """Says under the live view why a job is not moving, once it has had time to start."""

    def __init__(self, api: NodeApi) -> None:
        self.api = api
        self._asked_s = 0.0
        self._lines: list[str] = []

    def lines(self, job: dict[str, Any], elapsed_s: float | None) -> list[str]:
        moving = any(s in ("leased", "verifying") for s in job["frames"].values())
        if moving or job["outcome"] is not None or (elapsed_s or 0) < STALL_AFTER_S:
            self._lines = []
            return []
        if time.monotonic() - self._asked_s >= STALL_AFTER_S / 3:
            self._asked_s = time.monotonic()
            try:
                has_chain = self.api.get("/v1/roles")["has_chain"]
                self._lines = stall_lines(job, self.api.get("/v1/network"), has_chain)
            except ApiError:
                pass
        return self._lines


def follow(api: NodeApi, job_id: str, console: Console, timeout_s: float) -> dict[str, Any]:
    clock, stalls = JobClock(), StallWatch(api)

    def view(job: dict[str, Any]) -> Group:
        shown = progress_view(job, clock)
        notes = [f"[yellow]not moving:[/] {line}" for line in stalls.lines(job, clock.elapsed_s())]
        return Group(shown, *notes) if notes else shown

    job = api.job(job_id)
    with Live(view(job), console=console, refresh_per_second=4) as live:
        job = api.wait_job(job_id, timeout_s, on_change=lambda j: live.update(view(j)))
    return job


def network_adverts(api: NodeApi) -> list[dict[str, Any]]:
    adverts: list[dict[str, Any]] = api.get("/v1/network")
    if not adverts:  # just started: wait a little for the first adverts
        adverts = api.get(f"/v1/network?min_peers=1&wait_s={ADVERT_WAIT_S}",
                          timeout_s=ADVERT_WAIT_S + 10)  # fmt: skip
    return adverts


def price_for(
    roles: dict[str, Any], adverts: list[dict[str, Any]], frames: int, given_wei: int | None,
    ru_per_frame: int, assurance: Assurance = Assurance.NORMAL,
) -> tuple[PriceProposal, list[str]]:  # fmt: skip
    """The max price (given or proposed), its figures, and warnings; exits when hopeless.
    ``ru_per_frame``: the scene's, as the node's preflight prices it (the job's number);
    ``assurance``: the job's, which says how many checks a frame's fees cover."""
    build, fee_bps = roles["renderer_build"], roles["checker_fee_bps"]
    checks = checks_per_frame(assurance)
    workers = offers(adverts, ru_per_frame)
    warnings: list[str] = []
    about = checkers(adverts)
    short = accepts_short(assurance)
    if (warning := checkers_warning(assurance.value, checks, about, "pass --assurance normal",
                                    short)):  # fmt: skip
        warnings.append(warning)
    proposal = propose_max_price(workers, build, frames, fee_bps, checks=checks)
    if proposal is None and given_wei is None:
        seen = sorted({b for w in workers for b in w.renderer_builds})
        _fail(f"no worker advertises {build} ({len(workers)} worker advert(s) seen, running "
              f"{', '.join(seen) or 'nothing'}); check `pictor network`, or pass --max-price "
              "to submit anyway")  # fmt: skip
    if given_wei is None:
        assert proposal is not None
        return proposal, warnings
    ranked = eligible(workers, build)
    within = [o for o in ranked if o.ask_wei_per_frame <= given_wei]
    if not ranked:
        warnings.append(f"no worker advertises {build} yet: nobody will bid until one does")
    elif not within:
        warnings.append(f"every ask is above your max price: cheapest ask "
                        f"{eth(ranked[0].ask_wei_per_frame)} per frame; no worker will bid")  # fmt: skip
    top = max((o.ask_wei_per_frame for o in within), default=given_wei)
    return PriceProposal(
        max_price_wei_per_frame=given_wei, workers=len(within),
        cheapest_ask_wei=ranked[0].ask_wei_per_frame if ranked else 0,
        estimate_wei=estimate_wei(frames, top, fee_bps, checks),
        budget_wei=budget_wei(frames, given_wei, fee_bps, checks),
    ), warnings  # fmt: skip


def confirm(console: Console, proposal: PriceProposal, yes: bool) -> None:
    if yes:
        return
    if not sys.stdin.isatty():
        _fail("stdin is not a terminal, so nobody can confirm the escrow: pass --yes to "
              "submit without asking")  # fmt: skip
    if not typer.confirm(f"Escrow {eth(proposal.budget_wei)} and submit?", default=True):
        console.print("not submitted")
        raise typer.Exit(1)


@app.command("submit")
def submit(
    scene: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="The .blend file.")],
    frames: Annotated[str, typer.Option(help="Frames, e.g. 1-48 or 1,3,5-7.")] = "1",
    max_price: Annotated[
        str | None,
        typer.Option(help="Most you pay per frame, e.g. 0.2eth (default: from current asks)."),
    ] = None,
    deadline: Annotated[str, typer.Option(help="Time allowed, e.g. 2h, 30m.")] = "2h",
    assurance: Annotated[
        Assurance,
        typer.Option(help="Verification: normal (two checkers of a new worker's frame, one "
                     "if only one advertises; a trusted worker whose stake backs its record: "
                     "one checker, frames sampled), high (every frame, two checkers, more "
                     "tiles, trusted workers too) or none."),
    ] = Assurance.NORMAL,
    out: Annotated[
        Path | None, typer.Option(help="Where frames land (default ./pictor-out).")
    ] = None,
    resolution: Annotated[str | None, typer.Option(help="Override WxH, e.g. 640x360.")] = None,
    samples: Annotated[int | None, typer.Option(help="Override the scene's samples.")] = None,
    wait: Annotated[bool, typer.Option("--wait/--no-wait", help="Follow until done.")] = True,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Escrow without asking.")] = False,
    data_dir: Path | None = DataDirOption,
) -> None:
    """Propose a price, confirm, then escrow and announce a job on the local node and follow it."""
    api, console = _api(data_dir), out_console()
    frame_list = parse_frames(frames)
    given_wei = parse_wei(max_price) if max_price is not None else None
    overrides: dict[str, Any] = {}
    if resolution:
        w, _, h = resolution.partition("x")
        overrides["resolution"] = [int(w), int(h)]
    if samples:
        overrides["samples"] = samples
    try:
        roles = api.get("/v1/roles")
        scene_cost = api.post("/v1/client/scenes/estimate",
                              {"scene": str(scene.resolve()), **overrides})  # fmt: skip
        ru = int(scene_cost["ru_per_frame"])
        proposal, warnings = price_for(roles, network_adverts(api), len(frame_list), given_wei, ru,
                                       assurance)  # fmt: skip
    except ApiError as exc:
        _fail(str(exc))
        raise
    console.print(f"scene: {ru} RU per frame (a 320x240 frame at 32 samples is 1 RU)",
                  highlight=False)  # fmt: skip
    for line in proposal_lines(proposal, len(frame_list), given_wei is None):
        console.print(line, highlight=False)
    for warning in warnings:
        console.print(f"[yellow]warning:[/] {warning}", highlight=False)
    confirm(console, proposal, yes)
    body: dict[str, Any] = {
        "scene": str(scene.resolve()), "frames": frame_list,
        "max_price_wei_per_frame": proposal.max_price_wei_per_frame,
        "deadline_s": parse_duration_s(deadline),
        "assurance": assurance.value, "out_dir": str((out or Path("pictor-out")).resolve()),
        **overrides,
    }  # fmt: skip
    started_s = time.monotonic()
    try:
        job = api.post("/v1/client/jobs", body)
        console.print(f"submitted job [bold]{job['job_id']}[/] ({len(job['frames'])} frames)")
        if not wait:
            return
        job = follow(api, job["job_id"], console, body["deadline_s"] + 60)
        txs = api.get(f"/v1/client/jobs/{job['job_id']}/transactions")
        console.print(summary_table(job, txs, time.monotonic() - started_s))
    except ApiError as exc:
        _fail(str(exc))
    if job["outcome"] != "completed":
        raise typer.Exit(1)


def _summary(api: NodeApi, job: dict[str, Any]) -> None:
    console = out_console()
    txs = api.get(f"/v1/client/jobs/{job['job_id']}/transactions")
    console.print(summary_table(job, txs, None))
    if job["outcome"] is None:
        roles = api.get("/v1/roles")
        reasons = stall_lines(job, api.get("/v1/network"), roles["has_chain"])
        if reasons:
            console.print("[bold]not moving:[/]")
        for reason in reasons:
            console.print(f"  - {reason}", highlight=False)


@app.command("status")
def status(
    job_id: Annotated[str, typer.Argument(help="Job id or any unique prefix of it.")],
    data_dir: Path | None = DataDirOption,
) -> None:
    """One job's summary, and why it is not moving when it is not."""
    api = _api(data_dir)
    try:
        _summary(api, api.job(job_id))
    except ApiError as exc:
        _fail(str(exc))


@app.command("watch")
def watch(
    job_id: Annotated[str, typer.Argument(help="Job id or any unique prefix of it.")],
    data_dir: Path | None = DataDirOption,
) -> None:
    """Live progress of a job until it finishes."""
    api, console = _api(data_dir), out_console()
    try:
        job = follow(api, job_id, console, 7 * 86400)
        _summary(api, job)
    except ApiError as exc:
        _fail(str(exc))


@app.command("list")
def list_jobs(data_dir: Path | None = DataDirOption) -> None:
    """Jobs this node submitted (any unique prefix of an id works in the other commands)."""
    t = Table("job", "state", "frames", "spent")
    try:
        for job in _api(data_dir).get("/v1/client/jobs"):
            t.add_row(job["job_id"][:JOB_ID_CHARS], job["outcome"] or job["state"],
                      f"{job['frames_accepted']}/{job['frames_total']}", eth(job["spent_wei"]))  # fmt: skip
    except ApiError as exc:
        _fail(str(exc))
    out_console().print(t)


@app.command("cancel")
def cancel(
    job_id: Annotated[str, typer.Argument(help="Job id or any unique prefix of it.")],
    data_dir: Path | None = DataDirOption,
) -> None:
    """Stop a job: open frames fail, leases are revoked, the unspent budget is refundable."""
    try:
        job = _api(data_dir).post(f"/v1/client/jobs/{job_id}/cancel")
    except ApiError as exc:
        _fail(str(exc))
        raise
    out_console().print(f"cancelled; refund due {eth(job['refund_wei'])} "
                        "(the escrow returns it after the deadline's grace period)")  # fmt: skip


@app.command("refund")
def refund(
    job_id: Annotated[str, typer.Argument(help="Job id or any unique prefix of it.")],
    data_dir: Path | None = DataDirOption,
) -> None:
    """Reclaim a job's unspent escrow now (the node also does it by itself once the chain
    passes the job's deadline + grace, also after a restart)."""
    try:
        job = _api(data_dir).post(f"/v1/client/jobs/{job_id}/refund")
    except ApiError as exc:
        _fail(str(exc))
        raise
    if job["refunded_now_wei"]:
        out_console().print(f"refunded {eth(job['refunded_now_wei'])} to this node's address")
    else:
        out_console().print("nothing left to refund: the escrow of this job is settled")


@app.command("download")
def download(
    job_id: Annotated[str, typer.Argument(help="Job id or any unique prefix of it.")],
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
    out_console().print(f"{copied} frames copied to {out}")

"""How a job reads in the terminal: live progress, the summary, ids and amounts.

Times come from the node's own clock (``started_ms`` and ``now_ms`` in the job
JSON), so elapsed and ETA count from the job's start, whoever follows it and
whenever they started following. Amounts are integer wei, printed exactly.
"""

from __future__ import annotations

import time
from typing import Any

from rich.console import Group
from rich.table import Table

from node.cli.names import short_peer
from protocol.money import format_eth

_STYLE = {"pending": "white", "leased": "cyan", "verifying": "yellow", "accepted": "green",
          "failed": "red"}  # fmt: skip
JOB_ID_CHARS = 16  # what tables print; any unique prefix is accepted back


def eth(wei: int) -> str:
    """Up to 6 decimals, exact or marked ``≈`` (integer rounding; the API has exact wei)."""
    return format_eth(int(wei), 6)


class JobClock:
    """Seconds since the job started, by the node's clock, advanced locally between polls."""

    def __init__(self) -> None:
        self._elapsed_s: float | None = None
        self._seen_s = 0.0
        self._done = False

    def update(self, job: dict[str, Any]) -> None:
        end_ms = job.get("finished_ms") or job.get("now_ms")
        if end_ms is None or job.get("started_ms") is None:
            return
        self._elapsed_s = max(0.0, (end_ms - job["started_ms"]) / 1000)
        self._seen_s = time.monotonic()
        self._done = job.get("outcome") is not None

    def elapsed_s(self) -> float | None:
        if self._elapsed_s is None:
            return None
        return self._elapsed_s + (0.0 if self._done else time.monotonic() - self._seen_s)


def eta_text(elapsed_s: float | None, done: int, total: int) -> str:
    if not done or elapsed_s is None or done >= total:
        return "—"
    return f"{elapsed_s / done * (total - done):.0f} s"


def progress_view(job: dict[str, Any], clock: JobClock, names: dict[str, str] | None = None) -> Group:
    clock.update(job)
    frames = job["frames"]
    done = job["frames_accepted"]
    elapsed = clock.elapsed_s()
    head = Table.grid(padding=(0, 2))
    head.add_row(f"job [bold]{job['job_id'][:JOB_ID_CHARS]}[/]", f"{done}/{len(frames)} frames",
                 f"elapsed {elapsed or 0:.0f} s", f"ETA {eta_text(elapsed, done, len(frames))}",
                 f"spent {eth(job['spent_wei'])}", f"workers {len(job['workers'])}")  # fmt: skip
    grid = Table(show_header=True, header_style="bold", box=None)
    grid.add_column("frame", justify="right")
    grid.add_column("state")
    grid.add_column("worker")
    for frame, state in frames.items():
        worker = job["accepted"].get(frame, {}).get("worker", "")
        grid.add_row(frame, f"[{_STYLE.get(state, 'white')}]{state}[/]",
                     display(worker, names) if worker else "")  # fmt: skip
    return Group(head, grid)


def display(node: str, names: dict[str, str] | None = None) -> str:
    """A node's one display name: the demo's role name when known, else the short peer id."""
    short = short_peer(node)
    return (names or {}).get(short, short)


def summary_table(job: dict[str, Any], txs: list[dict[str, Any]], wall_s: float | None) -> Table:
    """The job's summary; ``txs`` are this job's own transactions (its deposit, refund)."""
    t = Table(title=f"job {job['job_id'][:JOB_ID_CHARS]}: {job['outcome'] or job['state']}",
              show_header=False)  # fmt: skip
    t.add_column()
    t.add_column(overflow="fold")  # on a narrow terminal a transaction hash folds, never cut
    t.add_row("frames", f"{job['frames_accepted']}/{job['frames_total']} accepted, "
              f"{len(job['failed'])} failed")  # fmt: skip
    if wall_s is not None:
        t.add_row("time", f"{wall_s:.1f} s")
    t.add_row("cost", f"{eth(job['spent_wei'])} of {eth(job['budget_wei'])} escrowed; "
              f"refund due {eth(job['refund_wei'])}")  # fmt: skip
    t.add_row("workers", ", ".join(short_peer(w) for w in job["workers"]) or "—")
    t.add_row("blocklisted", ", ".join(short_peer(w) for w in job["blocklisted"]) or "—")
    t.add_row("reassigned", str(max(0, job["awards"] - job["frames_accepted"])))
    t.add_row("on-chain", "; ".join(f"{x['what']} {x['tx']} gas {x['gas']}" for x in txs) or "—")
    t.add_row("output", job["out_dir"])
    return t

"""What the dashboard shows, as one JSON document (sent on every change over SSE).

Theory of operation. ``Snapshots.build`` reads the node's live objects — the
requester's jobs, the worker machine, the payee's vouchers (the store's
``earned_vouchers`` rows), the checker's verdicts in the public work record,
the GPU probe, the peers' adverts — and returns plain JSON. Every list in it
is bounded (newest first), so the document stays small whatever strangers
do: the record holds other nodes' verdicts too, but only ours are listed.
Amounts go out as exact ETH text and as wei in decimal strings (a browser's
numbers are doubles; 0.1 ETH in wei is past 2**53).

The document is built at most once per ``min_interval_s`` and shared by every
open stream, so more viewers do not mean more work for the node.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import trio

from node.api.jobs_routes import job_json
from node.cli.job_market import stall_lines
from node.cli.names import short_peer
from node.render.gpu import GpuProbe, probe_gpus
from protocol.identity import NodeId, address_text
from protocol.market.quote import DEFAULT_CHECKER_FEE_BPS
from protocol.money import format_eth

if TYPE_CHECKING:
    from node.roles.requester_job import RequesterJob
    from node.roles.service import Roles

MAX_JOBS = 50
MAX_READY_FRAMES = 500  # frames per job listed as downloadable (thumbnails: the UI's choice)
MAX_VERDICTS = 100
MAX_RECORD_SCAN = 20_000  # newest record entries searched for our verdicts, per document
MAX_FAILED = 50  # failed frames listed per job, with their reasons
MAX_VOUCHER_ROWS = 50
MAX_TASKS = 16
GPU_PROBE_EVERY_S = 5.0


def money(wei: int) -> dict[str, str]:
    return {"wei": str(wei), "eth": format_eth(wei)}


def peer_name(raw: bytes) -> str:
    return short_peer(NodeId(raw).text)


@dataclass(frozen=True)
class UiLimits:
    min_interval_s: float = 1.0  # one document per second at most, shared by all streams
    max_streams: int = 4  # open event streams at once (all callers hold the same token)
    stream_max_s: float = 300.0  # then the stream ends; the page reconnects
    keep_uploads: int = 4  # uploaded scenes kept on disk (oldest removed)


def ready_frames(out_dir: Path, frames: list[int]) -> list[int]:
    """The job's frames whose PNG is in ``out_dir`` (one directory listing)."""
    try:
        names = {entry.name for entry in out_dir.iterdir()}
    except OSError:
        return []
    return [f for f in frames if f"frame_{f:04d}.png" in names][:MAX_READY_FRAMES]


def job_row(job: RequesterJob, adverts: list[dict[str, Any]], has_chain: bool) -> dict[str, Any]:
    full = job_json(job)
    states = list(full["frames"].values())
    counts = {s: states.count(s) for s in sorted(set(states))}
    return {
        "job_id": full["job_id"], "short_id": full["job_id"][:16], "state": full["state"],
        "outcome": full["outcome"], "frames_total": full["frames_total"],
        "frames_accepted": full["frames_accepted"], "frame_states": counts,
        "ready": ready_frames(job.out_dir, [int(f) for f in full["frames"]]),
        "failed": dict(list(full["failed"].items())[:MAX_FAILED]),
        "workers": [peer_name(bytes.fromhex(w)) for w in full["workers"]],
        "spent": money(full["spent_wei"]), "budget": money(full["budget_wei"]),
        "refund": money(full["refund_wei"] or 0), "refunded": full["refunded"],
        "max_price_per_frame": money(full["max_price_wei_per_frame"]),
        "started_ms": full["started_ms"], "finished_ms": full["finished_ms"],
        "now_ms": full["now_ms"], "deadline_ms": full["deadline_ms"],
        "settings": full["settings"], "out_dir": full["out_dir"], "escrowed": full["escrowed"],
        "stalled": stall_lines(full, adverts, has_chain) if full["outcome"] is None else [],
    }  # fmt: skip


def voucher_rows(conn: sqlite3.Connection) -> list[tuple[bytes, bytes, int, int]]:
    """The newest earned vouchers: (requester address, job id, promised, paid)."""
    rows = conn.execute(
        "SELECT requester, job_id, cumulative_wei, paid_wei FROM earned_vouchers"
        " ORDER BY rowid DESC LIMIT ?",
        (MAX_VOUCHER_ROWS,),
    ).fetchall()
    return [(r[0], r[1], int(r[2]), int(r[3])) for r in rows]


class Snapshots:
    def __init__(self, roles: Roles, limits: UiLimits) -> None:
        self.roles = roles
        self.limits = limits
        self._lock = trio.Lock()
        self._built_s = -1e9
        self._doc: dict[str, Any] = {}
        self._gpu: GpuProbe | None = None
        self._gpu_s = -1e9
        self._ended: dict[bytes, tuple[tuple[bool, int | None], dict[str, Any]]] = {}

    async def get(self) -> dict[str, Any]:
        """The newest document, rebuilt when older than ``min_interval_s``."""
        async with self._lock:
            if trio.current_time() - self._built_s >= self.limits.min_interval_s:
                self._doc = await self.build()
                self._built_s = trio.current_time()
            return self._doc

    async def build(self) -> dict[str, Any]:
        roles = self.roles
        node = roles.ctx.node
        adverts = self.adverts()
        has_chain = roles.ctx.chain is not None
        jobs = list(roles.requester.jobs.values())[::-1][:MAX_JOBS]
        return {
            "node": {
                "peer_id": node.node_id, "name": short_peer(node.node_id),
                "roles": [r.value for r in node.config.roles],
                "uptime_s": round(trio.current_time() - node.started_s),
                "connected_peers": len(node.network.connected_peers()),
                "payment_address": address_text(roles.ctx.payment_address),
                "has_chain": has_chain, "renderer_build": roles.build,
            },
            "network": self._network(adverts),
            "jobs": [self._job_row(j, adverts, has_chain) for j in jobs],
            "worker": self._worker(),
            "earnings": await self._earnings(),
            "checker": self._checker(),
            "gpus": await self._gpus(),
        }  # fmt: skip

    def _job_row(
        self, job: RequesterJob, adverts: list[dict[str, Any]], has_chain: bool
    ) -> dict[str, Any]:
        """A running job's row is built afresh; an ended job's is kept until its refund
        changes (a 10,000-frame job costs tens of ms to describe: not every second)."""
        if not job.done.is_set():
            return job_row(job, adverts, has_chain)
        key = (job.view.refunded, job.view.refund_wei)
        kept = self._ended.get(job.job_id)
        if kept is None or kept[0] != key:
            kept = self._ended[job.job_id] = (key, job_row(job, adverts, has_chain))
            while len(self._ended) > 2 * MAX_JOBS:
                del self._ended[next(iter(self._ended))]
        return kept[1]

    def adverts(self) -> list[dict[str, Any]]:
        """The adverts as ``/v1/network`` has them (what the stall reasons read)."""
        out = []
        for peer, seen in self.roles.ctx.node.capacity.items():
            a = seen.advert
            out.append({"peer_id": peer, "roles": [r.value for r in a.roles],
                        "renderer_builds": list(a.renderer_builds),
                        "price_wei_per_ru": str(a.price_wei_per_ru), "free_slots": a.free_slots,
                        "score_ru_per_hour": a.score_ru_per_hour})  # fmt: skip
        return out

    @staticmethod
    def _network(adverts: list[dict[str, Any]]) -> dict[str, Any]:
        asks = [int(a["price_wei_per_ru"]) for a in adverts if "worker" in a["roles"]]
        return {
            "workers": len(asks),
            "checkers": sum(1 for a in adverts if "checker" in a["roles"]),
            "cheapest_ask_per_ru": money(min(asks)) if asks else None,
            "free_slots": sum(a["free_slots"] for a in adverts if "worker" in a["roles"]),
        }

    def _worker(self) -> dict[str, Any] | None:
        worker = self.roles.worker
        if worker is None:
            return None
        stats = worker.machine.statistics()
        now_ms = self.roles.ctx.clock.now_ms()
        tasks = [{"task_id": t.task_id.hex()[:16], "job_id": t.job_id.hex(), "frame": t.frame,
                  "price": money(t.price_wei), "progress_permille": t.progress_permille,
                  "lease_left_s": max(0, (t.lease_deadline_ms - now_ms) // 1000)}
                 for t in worker.machine.rendering_tasks()[:MAX_TASKS]]  # fmt: skip
        return {
            "rendered": worker.rendered, "rendering": worker.rendering, "tasks": tasks,
            "submitted": stats.tasks_submitted, "failed": stats.tasks_failed,
            "declined": stats.awards_declined, "revoked": stats.tasks_revoked,
            "jobs_known": stats.jobs_known, "vouchers": money(stats.vouchers_wei),
            "price_per_ru": money(self.roles.ctx.settings.price_wei_per_ru),
            "device_class": worker.device_class,
        }  # fmt: skip

    async def _earnings(self) -> dict[str, Any] | None:
        payee = self.roles.payee
        if payee is None:
            return None
        rows = await self.roles.ctx.node.store.call(voucher_rows)
        return {
            "paid": money(payee.paid_wei), "owed": money(payee.owed_wei()),
            "jobs": [{"job_id": job.hex(), "requester": address_text(requester),
                      "promised": money(promised), "paid": money(paid)}
                     for requester, job, promised, paid in rows],
        }  # fmt: skip

    def _checker(self) -> dict[str, Any] | None:
        checker = self.roles.checker
        if checker is None:
            return None
        me = self.roles.ctx.me
        verdicts = []
        for scanned, task in enumerate(reversed(self.roles.ctx.node.record.book.tasks.values())):
            if scanned >= MAX_RECORD_SCAN:
                break  # the record holds everyone's verdicts: ours are among the newest
            if task.checker == me:
                verdicts.append({"job_id": task.job_id.hex(), "frame": task.frame,
                                 "worker": peer_name(task.worker), "passed": task.passed,
                                 "tiles": task.tiles, "timestamp_ms": task.timestamp_ms})  # fmt: skip
                if len(verdicts) >= MAX_VERDICTS:
                    break
        return {"checked": checker.checked, "refused": checker.refused, "verdicts": verdicts,
                "fee_bps": DEFAULT_CHECKER_FEE_BPS}  # fmt: skip

    async def _gpus(self) -> dict[str, Any]:
        now_s = trio.current_time()
        if self._gpu is None or now_s - self._gpu_s >= GPU_PROBE_EVERY_S:
            self._gpu = await trio.to_thread.run_sync(probe_gpus)  # NVML: a few ms
            self._gpu_s = now_s
        probe = self._gpu
        return {
            "available": probe.available, "detail": probe.detail, "driver": probe.driver_version,
            "gpus": [{"index": g.index, "model": g.model, "vram_mib": g.vram_mib,
                      "vram_used_mib": g.vram_used_mib, "utilization_pct": g.utilization_pct,
                      "temperature_c": g.temperature_c, "power_w": g.power_w,
                      "device_class": g.device_class} for g in probe.gpus],
        }  # fmt: skip

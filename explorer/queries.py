"""Read model: what every page and JSON endpoint shows, computed from the index.

Each function takes a ``Tx`` and returns JSON-ready values (wei as decimal
strings: they overflow JSON's safe integers), so the web layer is a thin
shell and the indexer's stats loop reuses :func:`overview`. Totals over
chain events are summed in Python because wei amounts are stored as text
(see :mod:`explorer.indexer.schema`); they are per node or per job, so small.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from explorer.indexer.db import Row, Tx
from protocol.reputation import WorkerHistory, score

HOUR_MS = 3_600_000
DONE_STATES = ("rendered", "accepted")


@dataclass(frozen=True)
class ReadSettings:
    online_window_ms: int = 90_000  # three missed 30 s adverts and a node is offline
    page_rows: int = 200


def _online_cutoff(now_ms: int, s: ReadSettings) -> int:
    return now_ms - s.online_window_ms


def _median_price(tx: Tx, cutoff_ms: int, online: int) -> str:
    if online == 0:
        return "0"
    # Zero-padded text sorts numerically, so the database finds the median row.
    key = tx.scalar(
        "SELECT price_wei_per_ru FROM nodes WHERE last_seen_ms >= ? "
        "ORDER BY price_wei_per_ru LIMIT 1 OFFSET ?",
        (cutoff_ms, online // 2),
    )
    return str(int(key)) if key is not None else "0"


def overview(tx: Tx, now_ms: int, s: ReadSettings) -> dict[str, Any]:
    cutoff = _online_cutoff(now_ms, s)
    head = tx.one(
        "SELECT COUNT(*) AS n, COALESCE(SUM(score_ru_per_hour), 0) AS ru FROM nodes "
        "WHERE last_seen_ms >= ?",
        (cutoff,),
    ) or {"n": 0, "ru": 0}
    gpus = tx.all(
        # node_gpus carries its node's last_seen_ms, so no join with the wide nodes rows.
        "SELECT model, COUNT(*) AS count FROM node_gpus WHERE last_seen_ms >= ? "
        "GROUP BY model ORDER BY count DESC, model",
        (cutoff,),
    )
    jobs_running = tx.scalar(
        "SELECT COUNT(*) FROM jobs j WHERE j.cancelled_ms IS NULL AND j.closed_ms IS NULL "
        "AND j.deadline_ms > ? "
        "AND EXISTS (SELECT 1 FROM frames f WHERE f.job_id = j.job_id "
        "AND f.state NOT IN ('accepted', 'rendered'))",
        (now_ms,),
    )
    frames_hour = tx.scalar(
        "SELECT COUNT(*) FROM frames WHERE rendered_ms >= ? AND state IN ('rendered', 'accepted')",
        (now_ms - HOUR_MS,),
    )
    return {
        "now_ms": now_ms,
        "nodes_online": int(head["n"]),
        "nodes_total": int(tx.scalar("SELECT COUNT(*) FROM nodes") or 0),
        "gpus_online": sum(int(g["count"]) for g in gpus),
        "gpus_by_model": [{"model": g["model"], "count": int(g["count"])} for g in gpus],
        "capacity_ru_per_hour": int(head["ru"]),
        "jobs_total": int(tx.scalar("SELECT COUNT(*) FROM jobs") or 0),
        "jobs_running": int(jobs_running or 0),
        "frames_per_hour": int(frames_hour or 0),
        "median_price_wei_per_ru": _median_price(tx, cutoff, int(head["n"])),
        "chain_cursor": _cursor(tx),
    }


def _cursor(tx: Tx) -> int | None:
    value = tx.scalar("SELECT value FROM meta WHERE key = 'chain_cursor'")
    return None if value is None else int(value)


SERIES = (
    "nodes_online",
    "gpus_online",
    "capacity_ru_per_hour",
    "jobs_running",
    "frames_per_hour",
    "median_price_wei_per_ru",
)


def series(tx: Tx, since_ms: int) -> list[dict[str, Any]]:
    rows = tx.all("SELECT * FROM stats WHERE at_ms >= ? ORDER BY at_ms", (since_ms,))
    return [
        {k: (str(int(v)) if k.endswith("_wei_per_ru") else v) for k, v in r.items()} for r in rows
    ]


def record_stats(tx: Tx, snapshot: dict[str, Any], bucket_ms: int) -> None:
    """Store one point of the overview's history (one row per bucket)."""
    at_ms = snapshot["now_ms"] // bucket_ms * bucket_ms
    values = [snapshot[k] for k in SERIES]
    tx.execute(
        "INSERT INTO stats (at_ms, nodes_online, gpus_online, capacity_ru_per_hour, jobs_running, "
        "frames_per_hour, median_price_wei_per_ru) VALUES (?,?,?,?,?,?,?) "
        "ON CONFLICT (at_ms) DO UPDATE SET nodes_online = excluded.nodes_online, "
        "gpus_online = excluded.gpus_online, capacity_ru_per_hour = excluded.capacity_ru_per_hour, "
        "jobs_running = excluded.jobs_running, frames_per_hour = excluded.frames_per_hour, "
        "median_price_wei_per_ru = excluded.median_price_wei_per_ru",
        (at_ms, *values),
    )


def _node_public(row: Row, now_ms: int, s: ReadSettings) -> dict[str, Any]:
    span_ms = max(1, now_ms - row["first_seen_ms"])
    return {
        "node_id": row["node_id"],
        "address": row["address"],
        "roles": [r for r in row["roles"].split(",") if r],
        "renderer_builds": [b for b in row["renderer_builds"].split(",") if b],
        "gpus": json.loads(row["gpus"]),
        "score_ru_per_hour": row["score_ru_per_hour"],
        "price_wei_per_ru": str(int(row["price_wei_per_ru"])),
        "stake_wei": row["stake_wei"],
        "free_slots": row["free_slots"],
        "addrs": json.loads(row["addrs"]),
        "first_seen_ms": row["first_seen_ms"],
        "last_seen_ms": row["last_seen_ms"],
        "online": row["last_seen_ms"] >= _online_cutoff(now_ms, s),
        "adverts": row["adverts"],
        # Adverts come every ~30 s: the share of expected adverts that arrived.
        "uptime_pct": round(min(100.0, 100.0 * row["adverts"] * 30_000 / span_ms), 1)
        if now_ms - row["first_seen_ms"] > 30_000
        else 100.0,
    }


def list_nodes(tx: Tx, now_ms: int, s: ReadSettings, offset: int = 0) -> list[dict[str, Any]]:
    rows = tx.all(
        "SELECT * FROM nodes ORDER BY last_seen_ms DESC, node_id LIMIT ? OFFSET ?",
        (s.page_rows, offset),
    )
    return [_node_public(r, now_ms, s) for r in rows]


def _sum_wei(rows: list[Row]) -> str:
    return str(sum(int(r["amount_wei"] or 0) for r in rows))


def node(tx: Tx, node_id: str, now_ms: int, s: ReadSettings) -> dict[str, Any] | None:
    row = tx.one("SELECT * FROM nodes WHERE node_id = ?", (node_id,))
    frames = tx.all(
        "SELECT state, COUNT(*) AS n FROM frames WHERE worker = ? GROUP BY state", (node_id,)
    )
    verdicts = tx.all(
        "SELECT * FROM verdicts WHERE worker = ? ORDER BY timestamp_ms DESC LIMIT ?",
        (node_id, s.page_rows),
    )
    issued = int(tx.scalar("SELECT COUNT(*) FROM verdicts WHERE checker = ?", (node_id,)) or 0)
    if row is None and not frames and not verdicts and not issued:
        return None
    by_state = {r["state"]: int(r["n"]) for r in frames}
    # A dispute checker's verdict decides a dispute and is no count of its own; a
    # rejection a dispute overturned is no strike (protocol.record, "Disputes").
    passed = int(tx.scalar("SELECT COUNT(*) FROM verdicts WHERE worker = ? AND passed = 1 "
                           "AND dispute = 0", (node_id,)) or 0)  # fmt: skip
    failed = int(tx.scalar("SELECT COUNT(*) FROM verdicts WHERE worker = ? AND passed = 0 "
                           "AND dispute = 0 AND overruled = 0", (node_id,)) or 0)  # fmt: skip
    overruled = int(tx.scalar("SELECT COUNT(*) FROM verdicts WHERE checker = ? AND overruled = 1",
                              (node_id,)) or 0)  # fmt: skip
    info = _node_public(row, now_ms, s) if row else {"node_id": node_id, "online": False}
    address = row["address"] if row else None
    earned = (
        tx.all(
            "SELECT * FROM chain_events WHERE account = ? AND name = 'Redeemed' "
            "ORDER BY block_number DESC, log_index DESC",
            (address,),
        )
        if address
        else []
    )
    first_ms = row["first_seen_ms"] if row else now_ms
    history = WorkerHistory(
        accepted=passed,
        rejected=failed,
        failed=by_state.get("failed", 0),
        age_ms=max(0, now_ms - first_ms),
    )
    return {
        **info,
        "frames_by_state": by_state,
        "frames_rendered": sum(by_state.get(k, 0) for k in DONE_STATES),
        "verdicts_received": {"passed": passed, "failed": failed},
        "recent_verdicts": [_verdict(v) for v in verdicts],
        "verdicts_issued": issued,
        "verdicts_overruled": overruled,
        "reputation": round(score(history), 4),
        "earnings_wei": _sum_wei(earned),
        "redeems": [_event(e) for e in earned[: s.page_rows]],
    }


def _verdict(v: Row) -> dict[str, Any]:
    return {k: (bool(v[k]) if k == "passed" else v[k]) for k in v}


def _event(e: Row) -> dict[str, Any]:
    out = dict(e)
    out["args"] = json.loads(e["args"])
    if e["job_id"]:
        out["job_id"] = e["job_id"]
    return out


def _job_public(row: Row) -> dict[str, Any]:
    return dict(row)


def list_jobs(tx: Tx, s: ReadSettings, offset: int = 0) -> list[dict[str, Any]]:
    rows = tx.all(
        "SELECT * FROM jobs ORDER BY announced_ms DESC, job_id LIMIT ? OFFSET ?",
        (s.page_rows, offset),
    )
    return [_job_public(r) for r in rows]


def job(
    tx: Tx, job_id: str, now_ms: int, s: ReadSettings, offset: int = 0
) -> dict[str, Any] | None:
    row = tx.one("SELECT * FROM jobs WHERE job_id = ?", (job_id,))
    events = tx.all(
        "SELECT * FROM chain_events WHERE job_id = ? ORDER BY block_number, log_index", (job_id,)
    )
    if row is not None:
        # The escrow keys jobs by (requester, id): anyone may deposit under this id with
        # their own account, and those events are not this job's money.
        events = [e for e in events if e["requester"] in (None, row["requester_address"])]
    if row is None and not events:
        return None
    states = tx.all(
        "SELECT state, COUNT(*) AS n FROM frames WHERE job_id = ? GROUP BY state", (job_id,)
    )
    frames = tx.all(
        "SELECT frame, state, worker, task_id, frame_cid, render_time_ms, rendered_ms, updated_ms "
        "FROM frames WHERE job_id = ? ORDER BY frame LIMIT ? OFFSET ?",
        (job_id, s.page_rows, offset),
    )
    workers = tx.all(
        "SELECT worker, COUNT(*) AS frames FROM frames WHERE job_id = ? AND worker IS NOT NULL "
        "GROUP BY worker ORDER BY frames DESC, worker",
        (job_id,),
    )
    verdicts = tx.all(
        "SELECT * FROM verdicts WHERE job_id = ? ORDER BY timestamp_ms LIMIT ?",
        (job_id, s.page_rows),
    )
    vouchers = tx.all(
        "SELECT * FROM vouchers WHERE job_id = ? ORDER BY timestamp_ms LIMIT ?",
        (job_id, s.page_rows),
    )
    disputes = tx.all("SELECT * FROM disputes WHERE job_id = ? LIMIT ?", (job_id, s.page_rows))
    by_name: dict[str, int] = {}
    for e in events:
        by_name[e["name"]] = by_name.get(e["name"], 0) + int(e["amount_wei"] or 0)
    status = _job_status(row, {r["state"]: int(r["n"]) for r in states}, now_ms,
                         refunded="Refunded" in by_name)  # fmt: skip
    return {
        "job_id": job_id,
        "job": _job_public(row) if row else None,
        "status": status,
        "frames_by_state": {r["state"]: int(r["n"]) for r in states},
        "frames": frames,
        "frames_offset": offset,
        "workers": [{"worker": w["worker"], "frames": int(w["frames"])} for w in workers],
        "verdicts": [_verdict(v) for v in verdicts],
        "vouchers": vouchers,
        "disputes": disputes,
        "transactions": [_event(e) for e in events],
        "deposited_wei": str(by_name.get("Deposited", 0)),
        "redeemed_wei": str(by_name.get("Redeemed", 0)),
        "refunded_wei": str(by_name.get("Refunded", 0)),
    }


_CLOSED_STATUS = {"completed": "done", "partial": "done (partial)", "expired": "expired",
                  "cancelled": "cancelled"}  # fmt: skip


def _job_status(row: Row | None, states: dict[str, int], now_ms: int, refunded: bool) -> str:
    if row is None:
        return "on chain only"
    if row["cancelled_ms"] is not None:
        return "cancelled"
    if row["closed_ms"] is not None:  # the requester's signed word (JobClosed)
        return _CLOSED_STATUS.get(row["outcome"], "done")
    if refunded:  # the escrow returned the rest: the requester has closed the job
        return "ended (refunded)"
    if sum(states.get(k, 0) for k in DONE_STATES) >= row["frames_total"]:
        return "done"
    return "expired" if row["deadline_ms"] <= now_ms else "running"


def checkers(tx: Tx, s: ReadSettings) -> list[dict[str, Any]]:
    rows = tx.all(
        "SELECT checker, COUNT(*) AS verdicts, SUM(passed) AS passed, SUM(overruled) AS overruled "
        "FROM verdicts GROUP BY checker ORDER BY verdicts DESC, checker LIMIT ?",
        (s.page_rows,),
    )
    registered = tx.all("SELECT account FROM chain_events WHERE name = 'CheckerRegistered'")
    role = tx.all(
        "SELECT node_id, address FROM nodes WHERE roles LIKE '%checker%' LIMIT ?", (s.page_rows,)
    )
    disputes = tx.all(
        "SELECT v.checker AS checker, COUNT(*) AS n FROM disputes d "
        "JOIN verdicts v ON v.digest = d.verdict_digest GROUP BY v.checker"
    )
    against = {d["checker"]: int(d["n"]) for d in disputes}
    seen = {r["checker"] for r in rows}
    out = [
        {
            "node_id": r["checker"],
            "verdicts_issued": int(r["verdicts"]),
            "passed": int(r["passed"] or 0),
            "rejected": int(r["verdicts"]) - int(r["passed"] or 0),
            "disputes": against.get(r["checker"], 0),
            "overruled": int(r["overruled"] or 0),
        }
        for r in rows
    ]
    out += [
        {"node_id": r["node_id"], "verdicts_issued": 0, "passed": 0, "rejected": 0, "disputes": 0,
         "overruled": 0}
        for r in role
        if r["node_id"] not in seen
    ]
    addresses = {r["node_id"]: r["address"] for r in role}
    regs = {e["account"] for e in registered}
    for c in out:
        c["registered_on_chain"] = addresses.get(c["node_id"]) in regs
    return out


def transaction(tx: Tx, tx_hash: str) -> dict[str, Any] | None:
    events = tx.all("SELECT * FROM chain_events WHERE tx_hash = ? ORDER BY log_index", (tx_hash,))
    if not events:
        return None
    return {
        "tx_hash": tx_hash,
        "block_number": events[0]["block_number"],
        "events": [_event(e) for e in events],
    }


def address(tx: Tx, addr: str, s: ReadSettings) -> dict[str, Any] | None:
    events = tx.all(
        "SELECT * FROM chain_events WHERE account = ? ORDER BY block_number DESC, log_index DESC LIMIT ?",
        (addr, s.page_rows),
    )
    nodes = tx.all("SELECT node_id FROM nodes WHERE address = ?", (addr,))
    jobs = tx.all(
        "SELECT job_id FROM jobs WHERE requester_address = ? ORDER BY announced_ms DESC LIMIT ?",
        (addr, s.page_rows),
    )
    if not events and not nodes and not jobs:
        return None
    redeemed = [e for e in events if e["name"] == "Redeemed"]
    return {
        "address": addr,
        "nodes": [n["node_id"] for n in nodes],
        "jobs": [j["job_id"] for j in jobs],
        "earnings_wei": _sum_wei(redeemed),
        "events": [_event(e) for e in events],
    }


def find(tx: Tx, kind: str, value: str) -> str | None:
    """The page URL for a search term already classified by :mod:`explorer.web.ids`."""
    if kind == "node":
        hit = tx.scalar("SELECT node_id FROM nodes WHERE node_id = ?", (value,)) or tx.scalar(
            "SELECT worker FROM frames WHERE worker = ? LIMIT 1", (value,)
        )
        return f"/nodes/{value}" if hit else None
    if kind == "hash32":
        if tx.scalar("SELECT job_id FROM jobs WHERE job_id = ?", (value,)) or tx.scalar(
            "SELECT job_id FROM chain_events WHERE job_id = ? LIMIT 1", (value,)
        ):
            return f"/jobs/{value}"
        if tx.scalar("SELECT tx_hash FROM chain_events WHERE tx_hash = ? LIMIT 1", ("0x" + value,)):
            return f"/tx/0x{value}"
        return None
    if kind == "address":
        found = address(tx, value, ReadSettings(page_rows=1))
        return f"/address/{value}" if found else None
    return None

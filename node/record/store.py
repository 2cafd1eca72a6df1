"""The ``work_record`` table: what a node keeps of the public record, in arrival order.

Rows are whole signed envelopes (announce, work record, dispute record, job closure), so a
node restarting or serving a fresh peer hands out exactly what it verified;
``seq`` orders them (an announce is stored just before its job's first
record) and is the sync cursor. The table is bounded: past ``keep`` rows the
oldest go, which the in-memory book does too (``RecordConfig.max_tasks``).
"""

from __future__ import annotations

import sqlite3

ANNOUNCE, WORK, CLOSED, DISPUTE = "announce", "work", "closed", "dispute"


def save(
    conn: sqlite3.Connection, rows: list[tuple[bytes, str, bytes, bytes, int]], keep: int
) -> int:
    """Insert ``(digest, kind, job_id, envelope, received_ms)`` rows; returns how many were new.

    An announce is kept once per job (a requester re-announces every few seconds).
    """
    added = 0
    for digest, kind, job_id, envelope, received_ms in rows:
        if kind == ANNOUNCE and conn.execute(
            "SELECT 1 FROM work_record WHERE job_id = ? AND kind = ?", (job_id, ANNOUNCE)
        ).fetchone():
            continue
        cur = conn.execute(
            "INSERT INTO work_record (digest, kind, job_id, envelope, received_ms) "
            "VALUES (?,?,?,?,?) ON CONFLICT (digest) DO NOTHING",
            (digest, kind, job_id, envelope, received_ms),
        )
        added += cur.rowcount
    if added:
        conn.execute(
            "DELETE FROM work_record WHERE seq <= "
            "(SELECT seq FROM work_record ORDER BY seq DESC LIMIT 1 OFFSET ?)",
            (keep,),
        )
    return added


def has_announce(conn: sqlite3.Connection, job_id: bytes) -> bool:
    row = conn.execute(
        "SELECT 1 FROM work_record WHERE job_id = ? AND kind = ?", (job_id, ANNOUNCE)
    ).fetchone()
    return row is not None


def page(conn: sqlite3.Connection, after_seq: int, limit: int, max_bytes: int) -> tuple[int, list[bytes]]:
    """Envelopes after ``after_seq`` in order, at most ``limit`` and ``max_bytes`` in all."""
    items: list[bytes] = []
    last, size = after_seq, 0
    for seq, envelope in conn.execute(
        "SELECT seq, envelope FROM work_record WHERE seq > ? ORDER BY seq LIMIT ?",
        (after_seq, limit),
    ):
        if items and size + len(envelope) > max_bytes:
            break
        items.append(bytes(envelope))
        last, size = int(seq), size + len(envelope)
    return last, items


def count(conn: sqlite3.Connection) -> int:
    return int(conn.execute("SELECT COUNT(*) FROM work_record").fetchone()[0])

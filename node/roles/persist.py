"""SQL for the role drivers (tables from store migrations 2, 3, 5, 6 and 7); each runs in one transaction.

The requester journals every input of a job machine (``market_journal``) so a
restarted node replays it into a fresh machine and carries on from the same
state, and keeps its reputation view (``worker_records``); payees keep the
vouchers they earned (``earned_vouchers``).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable

from ledger.voucher_book import Key
from ledger.voucher_book import Row as BookRow
from protocol.messages import Voucher
from protocol.reputation import WorkerRecord

# (chain_id, contract, requester, job_id, payee, cumulative_wei, signature, payer,
#  paid_wei, redeem_by_s)
Row = tuple[int, bytes, bytes, bytes, bytes, int, bytes, str, int, int]
_KEY = "chain_id = ? AND contract = ? AND requester = ? AND job_id = ? AND payee = ?"


def load_vouchers(conn: sqlite3.Connection) -> list[Row]:
    rows = conn.execute(
        "SELECT chain_id, contract, requester, job_id, payee, cumulative_wei, signature, payer,"
        " paid_wei, redeem_by_s FROM earned_vouchers"
    ).fetchall()
    return [(r[0], r[1], r[2], r[3], r[4], int(r[5]), r[6], r[7], int(r[8]), r[9]) for r in rows]


def save_voucher(conn: sqlite3.Connection, *, payer: str, v: Voucher, redeem_by_s: int) -> None:
    """Keep ``v`` (the newest for its lane); what was paid on it so far stays."""
    conn.execute(
        "INSERT INTO earned_vouchers (chain_id, contract, requester, job_id, payee, payer,"
        " cumulative_wei, signature, redeem_by_s) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
        " ON CONFLICT DO UPDATE SET payer = excluded.payer,"
        " cumulative_wei = excluded.cumulative_wei, signature = excluded.signature,"
        " redeem_by_s = MAX(redeem_by_s, excluded.redeem_by_s)",
        (v.chain_id, v.contract, v.requester, v.job_id, v.payee, payer, str(v.cumulative_wei),
         v.signature, redeem_by_s),
    )  # fmt: skip


def sync_vouchers(conn: sqlite3.Connection, *, rows: list[BookRow], gone: list[Key]) -> None:
    """Make the stored book the payee's ``VoucherBook`` (``to_rows``): paid amounts and
    redeem-by times updated, vouchers written off (``gone``) or settled and over
    deleted; vouchers whose redeem-by time is still unknown stay."""
    kept = set()
    for chain_id, contract, requester, job_id, payee, _cum, _sig, paid_wei, by_s in rows:
        key = (chain_id, contract, requester, job_id, payee)
        kept.add(key)
        conn.execute(f"UPDATE earned_vouchers SET paid_wei = ?, redeem_by_s = ? WHERE {_KEY}",
                     (str(paid_wei), by_s, *key))  # fmt: skip
    stored = conn.execute(
        "SELECT chain_id, contract, requester, job_id, payee FROM earned_vouchers"
        " WHERE redeem_by_s > 0"
    ).fetchall()
    for key in [*gone, *(tuple(r) for r in stored if tuple(r) not in kept)]:
        conn.execute(f"DELETE FROM earned_vouchers WHERE {_KEY}", key)


def load_worker_records(
    conn: sqlite3.Connection, *, limit: int
) -> list[tuple[bytes, WorkerRecord]]:
    """The ``limit`` most recently judged workers, least recent first (the book's order)."""
    rows = conn.execute(
        "SELECT worker, accepted, rejected, failed, timed_out, first_seen_ms FROM worker_records"
        " ORDER BY judged_ms DESC, worker LIMIT ?",
        (limit,),
    ).fetchall()
    return [(r[0], WorkerRecord(r[1], r[2], r[3], r[4], r[5])) for r in reversed(rows)]


def save_worker_record(
    conn: sqlite3.Connection, *, worker: bytes, record: WorkerRecord, now_ms: int, limit: int
) -> None:
    """Keep ``record``; past ``limit`` workers the least recently judged are dropped."""
    conn.execute(
        "INSERT OR REPLACE INTO worker_records (worker, accepted, rejected, failed, timed_out,"
        " first_seen_ms, judged_ms) VALUES (?, ?, ?, ?, ?, ?, ?)",
        (worker, record.accepted, record.rejected, record.failed, record.timed_out,
         record.first_seen_ms, now_ms),
    )  # fmt: skip
    conn.execute(
        "DELETE FROM worker_records WHERE worker IN (SELECT worker FROM worker_records"
        " ORDER BY judged_ms, worker DESC LIMIT MAX(0, (SELECT COUNT(*) FROM worker_records) - ?))",
        (limit,),
    )


def save_job(
    conn: sqlite3.Connection, *, job_id: str, requester: str, spec: bytes, out_dir: str, now_ms: int
) -> None:
    conn.execute(
        "INSERT OR IGNORE INTO jobs (job_id, requester, spec, state, created_ms, updated_ms, out_dir)"
        " VALUES (?, ?, ?, 'open', ?, ?, ?)",
        (job_id, requester, spec, now_ms, now_ms, out_dir),
    )


def forget_job(conn: sqlite3.Connection, *, job_id: str) -> None:
    """Drop a job that never started (its deposit was refused): nothing to resume."""
    conn.execute("DELETE FROM market_journal WHERE job_id = ?", (job_id,))
    conn.execute("DELETE FROM jobs WHERE job_id = ?", (job_id,))


def set_job_state(conn: sqlite3.Connection, *, job_id: str, state: str, now_ms: int) -> None:
    conn.execute(
        "UPDATE jobs SET state = ?, updated_ms = ? WHERE job_id = ?", (state, now_ms, job_id)
    )


def job_spec(conn: sqlite3.Connection, *, job_id: str) -> bytes | None:
    """The stored spec of this node's job ``job_id``, settled or not (None: unknown)."""
    row = conn.execute("SELECT spec FROM jobs WHERE job_id = ?", (job_id,)).fetchone()
    return None if row is None else bytes(row[0])


def unsettled_jobs(conn: sqlite3.Connection) -> list[tuple[str, bytes, str]]:
    """This node's jobs whose escrow is not yet settled: open ones, and ended ones whose
    refund the journal does not record (a restart must still reclaim it)."""
    rows = conn.execute(
        "SELECT job_id, spec, out_dir FROM jobs WHERE out_dir IS NOT NULL AND NOT EXISTS "
        "(SELECT 1 FROM market_journal m WHERE m.job_id = jobs.job_id AND m.kind = 'refunded')"
    ).fetchall()
    return [(r[0], r[1], r[2]) for r in rows]


def journal(
    conn: sqlite3.Connection, *, job_id: str, kind: str, peer: bytes, data: bytes, now_ms: int
) -> None:
    conn.execute(
        "INSERT INTO market_journal (job_id, seq, kind, peer, data, now_ms) VALUES "
        "(?, (SELECT COALESCE(MAX(seq), 0) + 1 FROM market_journal WHERE job_id = ?), ?, ?, ?, ?)",
        (job_id, job_id, kind, peer, data, now_ms),
    )


def journal_judged(
    conn: sqlite3.Connection, *, journal: Callable[[sqlite3.Connection], None],
    records: list[tuple[bytes, WorkerRecord]], now_ms: int, limit: int,
) -> None:  # fmt: skip
    """One journal entry (``journal``, a bound :func:`journal`) and the worker records
    its judgements changed, together: a replay never judges again, so a record
    written after its entry would be lost in a crash between the two."""
    journal(conn)
    for worker, record in records:
        save_worker_record(conn, worker=worker, record=record, now_ms=now_ms, limit=limit)


def read_journal(conn: sqlite3.Connection, *, job_id: str) -> list[tuple[str, bytes, bytes, int]]:
    rows = conn.execute(
        "SELECT kind, peer, data, now_ms FROM market_journal WHERE job_id = ? ORDER BY seq",
        (job_id,),
    ).fetchall()
    return [(r[0], r[1], r[2], r[3]) for r in rows]


def save_task(
    conn: sqlite3.Connection, *, task_id: str, job_id: str, frame: int, worker: str, state: str,
    price_wei: int, now_ms: int,
) -> None:  # fmt: skip
    conn.execute(
        "INSERT OR REPLACE INTO tasks (task_id, job_id, frame, worker, state, price_wei, updated_ms)"
        " VALUES (?, ?, ?, ?, ?, ?, ?)",
        (task_id, job_id, frame, worker, state, str(price_wei), now_ms),
    )


CLAIM_TABLES = ("fraud_claims", "pass_claims")  # a worker's result, a checker's pass


def save_claim(
    conn: sqlite3.Connection, *, job_id: bytes, task_id: bytes, state: str, data: bytes,
    now_ms: int, only_new: bool = False, table: str = "fraud_claims",
) -> bool:  # fmt: skip
    """Keep a fraud claim's state; with ``only_new`` an existing claim is left as it is.
    True when the row was written."""
    if table not in CLAIM_TABLES:
        raise ValueError(f"no claim table {table!r}")
    verb = "INSERT OR IGNORE" if only_new else "INSERT OR REPLACE"
    cur = conn.execute(
        f"{verb} INTO {table} (job_id, task_id, state, data, updated_ms) VALUES (?, ?, ?, ?, ?)",
        (job_id, task_id, state, data, now_ms),
    )
    return cur.rowcount > 0


def open_claims(
    conn: sqlite3.Connection, *, final: tuple[str, ...], table: str = "fraud_claims"
) -> list[tuple[str, bytes]]:
    """(state, data) of every claim in ``table`` not in a ``final`` state."""
    if table not in CLAIM_TABLES:
        raise ValueError(f"no claim table {table!r}")
    marks = ", ".join("?" * len(final))
    rows = conn.execute(f"SELECT state, data FROM {table} WHERE state NOT IN ({marks})", final)
    return [(r[0], r[1]) for r in rows.fetchall()]


def watch_result(
    conn: sqlite3.Connection, *, job_id: bytes, task_id: bytes, data: bytes, until_ms: int,
    keep: int,
) -> None:  # fmt: skip
    """Keep a signed result in the claim watch; only the newest ``keep`` stay."""
    conn.execute(
        "INSERT OR REPLACE INTO claim_watch (job_id, task_id, data, until_ms) VALUES (?, ?, ?, ?)",
        (job_id, task_id, data, until_ms),
    )
    conn.execute(
        "DELETE FROM claim_watch WHERE rowid NOT IN"
        " (SELECT rowid FROM claim_watch ORDER BY until_ms DESC, rowid DESC LIMIT ?)", (keep,)
    )  # fmt: skip


def unwatch_result(conn: sqlite3.Connection, *, job_id: bytes, task_id: bytes) -> None:
    conn.execute("DELETE FROM claim_watch WHERE job_id = ? AND task_id = ?", (job_id, task_id))


def save_payer(
    conn: sqlite3.Connection, *, job_id: bytes, requester: bytes, address: bytes, until_ms: int,
    keep: int,
) -> None:  # fmt: skip
    """Remember ``job_id``'s requester (node id, payment address) until ``until_ms``; only
    the newest ``keep`` stay."""
    conn.execute(
        "INSERT OR REPLACE INTO job_payers (job_id, requester, address, until_ms)"
        " VALUES (?, ?, ?, ?)", (job_id, requester, address, until_ms),
    )  # fmt: skip
    conn.execute(
        "DELETE FROM job_payers WHERE rowid NOT IN"
        " (SELECT rowid FROM job_payers ORDER BY until_ms DESC, rowid DESC LIMIT ?)", (keep,)
    )  # fmt: skip


def stored_payers(conn: sqlite3.Connection, now_ms: int) -> list[tuple[bytes, bytes, bytes]]:
    """(job id, requester node id, payment address) of the payers still remembered, oldest
    first; the expired ones are deleted."""
    conn.execute("DELETE FROM job_payers WHERE until_ms <= ?", (now_ms,))
    rows = conn.execute("SELECT job_id, requester, address FROM job_payers ORDER BY until_ms, rowid")
    return [(bytes(r[0]), bytes(r[1]), bytes(r[2])) for r in rows.fetchall()]


def watched_results(conn: sqlite3.Connection) -> list[tuple[bytes, int]]:
    """(data, until_ms) of every watched result, oldest first."""
    rows = conn.execute("SELECT data, until_ms FROM claim_watch ORDER BY until_ms, rowid")
    return [(r[0], int(r[1])) for r in rows.fetchall()]

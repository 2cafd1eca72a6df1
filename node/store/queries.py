"""SQL for the store: plain functions of a connection, run on the database thread."""

from __future__ import annotations

import json
import sqlite3

TABLES = ("jobs", "tasks", "leases", "results", "verdicts", "vouchers")
_KV_TABLES = ("identity", "config")


def get_kv(conn: sqlite3.Connection, table: str, key: str) -> str | None:
    assert table in _KV_TABLES
    row = conn.execute(f"SELECT value FROM {table} WHERE key = ?", (key,)).fetchone()
    return None if row is None else str(row[0])


def set_kv(conn: sqlite3.Connection, table: str, key: str, value: str) -> None:
    assert table in _KV_TABLES
    conn.execute(f"INSERT OR REPLACE INTO {table}(key, value) VALUES (?, ?)", (key, value))


def replace_config(conn: sqlite3.Connection, values: dict[str, str]) -> None:
    conn.execute("DELETE FROM config")
    conn.executemany("INSERT INTO config(key, value) VALUES (?, ?)", sorted(values.items()))


def upsert_peer(conn: sqlite3.Connection, peer_id: str, addrs: list[str], now_ms: int) -> None:
    conn.execute(
        """INSERT INTO peers(peer_id, addrs, first_seen_ms, last_seen_ms) VALUES (?, ?, ?, ?)
           ON CONFLICT(peer_id) DO UPDATE SET
             addrs = CASE WHEN excluded.addrs = '[]' THEN peers.addrs ELSE excluded.addrs END,
             last_seen_ms = excluded.last_seen_ms""",
        (peer_id, json.dumps(sorted(addrs)), now_ms, now_ms),
    )


def record_dial(conn: sqlite3.Connection, peer_id: str, ok: bool, now_ms: int) -> None:
    conn.execute(
        """UPDATE peers SET last_dial_ms = ?,
             dial_failures = CASE WHEN ? THEN 0 ELSE dial_failures + 1 END
           WHERE peer_id = ?""",
        (now_ms, ok, peer_id),
    )


def ban_peer(conn: sqlite3.Connection, peer_id: str, until_ms: int) -> None:
    conn.execute(
        """INSERT INTO peers(peer_id, first_seen_ms, last_seen_ms, banned_until_ms)
           VALUES (?, ?, ?, ?)
           ON CONFLICT(peer_id) DO UPDATE SET banned_until_ms = excluded.banned_until_ms""",
        (peer_id, until_ms, until_ms, until_ms),
    )


def save_advert(
    conn: sqlite3.Connection, peer_id: str, envelope: bytes, addrs: list[str], now_ms: int
) -> None:
    upsert_peer(conn, peer_id, addrs, now_ms)
    conn.execute(
        "UPDATE peers SET advert = ?, advert_ms = ? WHERE peer_id = ?",
        (envelope, now_ms, peer_id),
    )


def prune_peers(conn: sqlite3.Connection, keep: int, now_ms: int) -> int:
    """Keep at most ``keep`` unbanned and ``keep`` banned peers; return how many went.

    Unbanned peers that answered a dial and were seen lately stay; of the
    banned, those whose ban ends last.
    """
    before = conn.total_changes
    conn.execute(
        """DELETE FROM peers WHERE peer_id IN (
             SELECT peer_id FROM peers WHERE banned_until_ms <= ?
             ORDER BY (last_dial_ms IS NOT NULL AND dial_failures = 0) DESC, last_seen_ms DESC
             LIMIT -1 OFFSET ?)""",
        (now_ms, keep),
    )
    conn.execute(
        """DELETE FROM peers WHERE peer_id IN (
             SELECT peer_id FROM peers WHERE banned_until_ms > ?
             ORDER BY banned_until_ms DESC LIMIT -1 OFFSET ?)""",
        (now_ms, keep),
    )
    return conn.total_changes - before


def list_peers(conn: sqlite3.Connection) -> list[dict[str, object]]:
    rows = conn.execute("SELECT * FROM peers ORDER BY peer_id").fetchall()
    peers = []
    for row in rows:
        peer = dict(row)
        peer["addrs"] = json.loads(str(row["addrs"]))
        peers.append(peer)
    return peers


def list_rows(conn: sqlite3.Connection, table: str, limit: int) -> list[dict[str, object]]:
    if table not in TABLES:
        raise ValueError(f"no such table {table!r}; tables: {', '.join(TABLES)}")
    rows = conn.execute(f"SELECT * FROM {table} LIMIT ?", (limit,)).fetchall()
    # Envelopes and specs are bytes; the API shows them as hex.
    return [{k: (v.hex() if isinstance(v, bytes) else v) for k, v in dict(r).items()} for r in rows]


def task_counts(conn: sqlite3.Connection) -> dict[str, int]:
    rows = conn.execute("SELECT state, COUNT(*) FROM tasks GROUP BY state").fetchall()
    return {str(state): int(count) for state, count in rows}

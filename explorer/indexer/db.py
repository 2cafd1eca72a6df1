"""The index database: SQLite by default, PostgreSQL when configured.

Why threads: neither sqlite3 nor psycopg's sync API runs on trio, and
aiosqlite/psycopg's async API want asyncio. So, like the node's store, every
call runs on a worker thread through ``trio.to_thread.run_sync``. One writer
connection behind a ``CapacityLimiter(1)`` serializes the indexer's writes;
a small pool of reader connections lets web requests read concurrently
(SQLite in WAL mode lets readers proceed while the writer commits).

The dialect layer is deliberately small: statements are written with ``?``
placeholders (see :mod:`explorer.indexer.schema`) and rewritten for psycopg;
rows come back as plain dicts from both drivers.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import trio

from explorer.indexer.schema import SCHEMA_VERSION, TABLES

T = TypeVar("T")
Row = dict[str, Any]
READERS = 4


class DatabaseUrlError(ValueError):
    """The ``--db`` value is neither a SQLite path nor a postgresql:// URL."""


@dataclass(frozen=True)
class DbTarget:
    dialect: str  # "sqlite" or "postgresql"
    location: str  # file path or the PostgreSQL URL

    @classmethod
    def parse(cls, url: str) -> DbTarget:
        if url.startswith(("postgresql://", "postgres://")):
            return cls("postgresql", url)
        if url.startswith("sqlite:///"):
            return cls("sqlite", url[len("sqlite:///") :])
        if "://" in url or not url:
            raise DatabaseUrlError(
                f"--db must be a file path, sqlite:///PATH or postgresql://...: {url!r}"
            )
        return cls("sqlite", url)


class Tx:
    """One connection inside one transaction, dialect-neutral."""

    def __init__(self, conn: Any, dialect: str) -> None:
        self._conn = conn
        self.dialect = dialect

    def _sql(self, sql: str) -> str:
        # psycopg reads % as a placeholder marker, so literal ones (LIKE) are doubled.
        return sql.replace("%", "%%").replace("?", "%s") if self.dialect == "postgresql" else sql

    def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        """Run one statement; return the number of rows it changed."""
        cur = self._conn.execute(self._sql(sql), tuple(params))
        return int(cur.rowcount)

    def all(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        cur = self._conn.execute(self._sql(sql), tuple(params))
        return [dict(row) for row in cur.fetchall()]

    def one(self, sql: str, params: Sequence[Any] = ()) -> Row | None:
        rows = self.all(sql, params)
        return rows[0] if rows else None

    def scalar(self, sql: str, params: Sequence[Any] = ()) -> Any:
        row = self._conn.execute(self._sql(sql), tuple(params)).fetchone()
        if row is None:
            return None
        return row[0] if self.dialect == "sqlite" else next(iter(row.values()))


def _open_sqlite(path: str) -> sqlite3.Connection:
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
    conn.row_factory = sqlite3.Row
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute("PRAGMA busy_timeout=5000")
    return conn


def _open_postgresql(url: str) -> Any:
    try:
        import psycopg
        from psycopg.rows import dict_row
    except ImportError as exc:  # optional dependency
        raise DatabaseUrlError("PostgreSQL needs psycopg: pip install 'psycopg[binary]'") from exc
    return psycopg.connect(url, autocommit=True, row_factory=dict_row)


def _begin(conn: Any, dialect: str) -> None:
    conn.execute("BEGIN IMMEDIATE" if dialect == "sqlite" else "BEGIN")


def _in_transaction(conn: Any, dialect: str, fn: Callable[[Tx], T]) -> T:
    _begin(conn, dialect)
    try:
        result = fn(Tx(conn, dialect))
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")
    return result


def _migrate(tx: Tx) -> None:
    for statement in TABLES:
        tx.execute(statement)
    found = tx.scalar("SELECT value FROM meta WHERE key = 'schema_version'")
    if found is not None and int(found) > SCHEMA_VERSION:
        raise RuntimeError(f"index schema {found} is newer than this explorer ({SCHEMA_VERSION})")
    if found is not None and int(found) < 2:
        _add_event_requester(tx)
    if found is not None and int(found) < 3:
        _add_job_closure(tx)
    if found is not None and int(found) < 4:
        _add_columns(tx, "verdicts", (("dispute", "BIGINT NOT NULL DEFAULT 0"),
                                      ("overruled", "BIGINT NOT NULL DEFAULT 0")))  # fmt: skip
    tx.execute(
        "INSERT INTO meta (key, value) VALUES ('schema_version', ?) "
        "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        (str(SCHEMA_VERSION),),
    )


def _add_event_requester(tx: Tx) -> None:
    """Schema 1 → 2: chain events learn their job's requester, read back from the stored args."""
    tx.execute("ALTER TABLE chain_events ADD COLUMN requester TEXT")
    for row in tx.all("SELECT block_number, log_index, args FROM chain_events"):
        requester = json.loads(row["args"]).get("requester")
        if requester is not None:
            tx.execute(
                "UPDATE chain_events SET requester = ? WHERE block_number = ? AND log_index = ?",
                (str(requester).lower(), row["block_number"], row["log_index"]),
            )


def _add_job_closure(tx: Tx) -> None:
    """Schema 2 → 3: jobs learn their requester's JobClosed (a jobs table made just now has it)."""
    _add_columns(tx, "jobs", (("closed_ms", "BIGINT"), ("outcome", "TEXT")))


def _add_columns(tx: Tx, table: str, columns: tuple[tuple[str, str], ...]) -> None:
    """Add the columns ``table`` lacks (a table made just now by TABLES has them all)."""
    if tx.dialect == "postgresql":
        names = {r["column_name"] for r in tx.all(
            "SELECT column_name FROM information_schema.columns WHERE table_name = ?", (table,))}  # fmt: skip
    else:
        names = {r["name"] for r in tx.all(f"PRAGMA table_info({table})")}
    for column, kind in columns:
        if column not in names:
            tx.execute(f"ALTER TABLE {table} ADD COLUMN {column} {kind}")


class IndexDb:
    """Async facade: ``write`` on the one writer, ``read`` on a pooled reader."""

    def __init__(self, target: DbTarget, writer: Any, readers: list[Any]) -> None:
        self.target = target
        self._writer = writer
        self._write_limiter = trio.CapacityLimiter(1)
        self._readers = readers
        self._read_limiter = trio.CapacityLimiter(len(readers))

    @property
    def dialect(self) -> str:
        return self.target.dialect

    async def write(self, fn: Callable[[Tx], T]) -> T:
        """Run ``fn`` in one write transaction."""
        return await trio.to_thread.run_sync(
            _in_transaction, self._writer, self.dialect, fn, limiter=self._write_limiter
        )

    async def read(self, fn: Callable[[Tx], T]) -> T:
        """Run ``fn`` on a reader connection (a consistent snapshot for SQLite)."""
        async with self._read_limiter:
            conn = self._readers.pop()
            try:
                return await trio.to_thread.run_sync(_read_snapshot, conn, self.dialect, fn)
            finally:
                self._readers.append(conn)


def _read_snapshot(conn: Any, dialect: str, fn: Callable[[Tx], T]) -> T:
    conn.execute("BEGIN")
    try:
        return fn(Tx(conn, dialect))
    finally:
        conn.execute("ROLLBACK")


def _connect(target: DbTarget) -> Any:
    if target.dialect == "sqlite":
        return _open_sqlite(target.location)
    return _open_postgresql(target.location)


@asynccontextmanager
async def open_index(url: str, readers: int = READERS) -> AsyncIterator[IndexDb]:
    """Open (creating the schema as needed) and finally close the index."""
    target = DbTarget.parse(url)
    conns: list[Any] = []
    try:
        writer = await trio.to_thread.run_sync(_connect, target)
        conns.append(writer)
        await trio.to_thread.run_sync(_in_transaction, writer, target.dialect, _migrate)
        for _ in range(readers):
            conns.append(await trio.to_thread.run_sync(_connect, target))
        yield IndexDb(target, writer, conns[1:])
    finally:
        with trio.CancelScope(shield=True):
            for conn in conns:
                await trio.to_thread.run_sync(conn.close)

"""SQLite store on a worker thread, with WAL and versioned migrations.

Why not aiosqlite: it hands back asyncio futures and does not run under trio.
So the node uses stdlib ``sqlite3`` and runs every call through
``trio.to_thread.run_sync`` behind a ``CapacityLimiter(1)``: one connection,
used by one thread at a time, so calls are serialized exactly like a
dedicated database thread (the connection is opened with
``check_same_thread=False`` because trio may pick another pool thread).

Crash safety: WAL journal with ``synchronous=NORMAL`` is durable against a
process crash (SIGKILL): a committed transaction survives, an uncommitted one
vanishes, and the next open replays the WAL. Every write helper commits one
transaction, so the store is always between two consistent states.
"""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TypeVar

import trio

from node.store import queries
from node.store.schema import MIGRATIONS

T = TypeVar("T")


def _connect(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
    conn.row_factory = sqlite3.Row
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute("PRAGMA foreign_keys=ON")
    conn.execute("PRAGMA busy_timeout=5000")
    return conn


def migrate(conn: sqlite3.Connection) -> int:
    """Bring the schema to the newest version; return it."""
    version: int = conn.execute("PRAGMA user_version").fetchone()[0]
    if version > len(MIGRATIONS):
        raise RuntimeError(
            f"store schema version {version} is newer than this program knows "
            f"({len(MIGRATIONS)}): upgrade pictor"
        )
    for number, script in enumerate(MIGRATIONS[version:], start=version + 1):
        # executescript commits first, so run the statements in our own transaction.
        conn.execute("BEGIN IMMEDIATE")
        try:
            for statement in script.split(";"):
                if statement.strip():
                    conn.execute(statement)
            conn.execute(f"PRAGMA user_version={number}")
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
    return len(MIGRATIONS)


class Store:
    """Async facade over one SQLite connection; see the module docstring."""

    def __init__(self, conn: sqlite3.Connection, *, inline: bool = False) -> None:
        self._conn = conn
        self._limiter = trio.CapacityLimiter(1)
        # Inline: run each call on the trio thread itself (tests under trio's autojump
        # clock, which jumps whenever every task waits, a thread's work included: a
        # lease could expire while a journal write was still on the database thread).
        self._inline = inline

    async def call(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``fn(conn)`` in one transaction on the database thread."""

        def run() -> T:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                result = fn(self._conn)
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            self._conn.execute("COMMIT")
            return result

        if self._inline:
            result = run()
            await trio.lowlevel.checkpoint()
            return result
        return await trio.to_thread.run_sync(run, limiter=self._limiter)

    # Thin named wrappers so callers read as intent, not SQL.
    async def get_identity(self, key: str) -> str | None:
        return await self.call(lambda c: queries.get_kv(c, "identity", key))

    async def set_identity(self, key: str, value: str) -> None:
        await self.call(lambda c: queries.set_kv(c, "identity", key, value))

    async def save_config(self, values: dict[str, str]) -> None:
        await self.call(lambda c: queries.replace_config(c, values))

    async def upsert_peer(self, peer_id: str, addrs: list[str], now_ms: int) -> None:
        await self.call(lambda c: queries.upsert_peer(c, peer_id, addrs, now_ms))

    async def record_dial(self, peer_id: str, ok: bool, now_ms: int) -> None:
        await self.call(lambda c: queries.record_dial(c, peer_id, ok, now_ms))

    async def ban_peer(self, peer_id: str, until_ms: int) -> None:
        await self.call(lambda c: queries.ban_peer(c, peer_id, until_ms))

    async def save_advert(
        self, peer_id: str, envelope: bytes, addrs: list[str], now_ms: int
    ) -> None:
        """Keep a peer's latest advert and the listen addresses it announced."""
        await self.call(lambda c: queries.save_advert(c, peer_id, envelope, addrs, now_ms))

    async def prune_peers(self, keep: int, now_ms: int) -> int:
        """Bound the peers table (strangers' adverts land there); return rows removed."""
        return await self.call(lambda c: queries.prune_peers(c, keep, now_ms))

    async def list_peers(self) -> list[dict[str, object]]:
        return await self.call(queries.list_peers)

    async def list_rows(self, table: str, limit: int = 500) -> list[dict[str, object]]:
        return await self.call(lambda c: queries.list_rows(c, table, limit))

    async def task_counts(self) -> dict[str, int]:
        return await self.call(queries.task_counts)

    async def check_integrity(self) -> str:
        return await self.call(lambda c: str(c.execute("PRAGMA integrity_check").fetchone()[0]))


@asynccontextmanager
async def open_store(path: Path, *, inline: bool = False) -> AsyncIterator[Store]:
    """Open (creating and migrating as needed) and finally close the store; ``inline``:
    see :class:`Store` (tests only)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = await trio.to_thread.run_sync(_connect, path)
    store = Store(conn, inline=inline)
    try:
        await trio.to_thread.run_sync(migrate, conn)
        yield store
    finally:
        # Shielded: closing checkpoints the WAL and must finish even on cancel. Behind
        # the store's limiter: never while a call of a task that outlived the block
        # still runs on the connection (two threads in one connection can crash SQLite).
        with trio.CancelScope(shield=True):
            await trio.to_thread.run_sync(conn.close, limiter=store._limiter)

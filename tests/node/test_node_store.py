"""Store: migrations, WAL, peers and adverts, transactions roll back on error."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from node.store import open_store
from node.store.db import _connect, migrate
from node.store.schema import MIGRATIONS


async def test_migrates_and_persists_across_reopen(tmp_path: Path) -> None:
    path = tmp_path / "s.sqlite3"
    async with open_store(path) as store:
        await store.set_identity("node_id", "12D3abc")
        await store.upsert_peer("p1", ["/ip4/1.2.3.4/tcp/1"], now_ms=10)
        await store.upsert_peer("p1", [], now_ms=20)  # no addrs: keep the known ones
        await store.record_dial("p1", ok=False, now_ms=30)
        await store.save_advert("p2", b"\x01\x02", ["/ip4/5.6.7.8/tcp/2"], now_ms=40)
    async with open_store(path) as store:
        assert await store.get_identity("node_id") == "12D3abc"
        peers = {p["peer_id"]: p for p in await store.list_peers()}
        assert peers["p1"]["addrs"] == ["/ip4/1.2.3.4/tcp/1"]
        assert peers["p1"]["last_seen_ms"] == 20
        assert peers["p1"]["dial_failures"] == 1
        assert peers["p2"]["advert"] == b"\x01\x02"
        assert peers["p2"]["addrs"] == ["/ip4/5.6.7.8/tcp/2"]
        assert await store.check_integrity() == "ok"
        assert await store.list_rows("tasks") == []
        assert await store.task_counts() == {}
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert conn.execute("PRAGMA user_version").fetchone()[0] == len(MIGRATIONS)


async def test_failed_call_rolls_back(tmp_path: Path) -> None:
    async with open_store(tmp_path / "s.sqlite3") as store:

        def half_then_fail(conn: sqlite3.Connection) -> None:
            conn.execute("INSERT INTO identity VALUES ('a', 'b')")
            raise RuntimeError("boom")

        with pytest.raises(RuntimeError):
            await store.call(half_then_fail)
        assert await store.get_identity("a") is None


def test_refuses_newer_schema(tmp_path: Path) -> None:
    conn = _connect(tmp_path / "s.sqlite3")
    conn.execute(f"PRAGMA user_version={len(MIGRATIONS) + 1}")
    with pytest.raises(RuntimeError, match="upgrade pictor"):
        migrate(conn)

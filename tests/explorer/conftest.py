"""Fixtures: an index in a temporary SQLite file and an in-process client for the app."""

from __future__ import annotations

import os
import secrets
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from explorer.indexer.db import IndexDb, Tx, open_index
from explorer.indexer.rows import apply_message
from explorer.web.app import create_app
from explorer.web.reader import WebSettings
from protocol import Envelope
from tests.explorer.factory import wall_ms


@pytest.fixture
async def index(tmp_path: Path) -> AsyncIterator[IndexDb]:
    async with open_index(str(tmp_path / "explorer.db"), readers=2) as db:
        yield db


POSTGRES_URL = os.environ.get("PICTOR_TEST_POSTGRES_URL", "")
NO_POSTGRES = "set PICTOR_TEST_POSTGRES_URL=postgresql://user@host:port/db to test PostgreSQL"


@pytest.fixture(
    params=[
        "sqlite",
        pytest.param("postgresql", marks=pytest.mark.skipif(not POSTGRES_URL, reason=NO_POSTGRES)),
    ]
)
async def any_index(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[IndexDb]:
    """The index on each dialect; PostgreSQL only when PICTOR_TEST_POSTGRES_URL names a server."""
    if request.param == "sqlite":
        async with open_index(str(tmp_path / "explorer.db"), readers=2) as db:
            yield db
        return
    server = os.environ.get("PICTOR_TEST_POSTGRES_URL", "")
    if not server:
        pytest.skip(
            "set PICTOR_TEST_POSTGRES_URL=postgresql://user@host:port/db to test PostgreSQL"
        )
    psycopg = pytest.importorskip("psycopg")
    name = f"explorer_test_{secrets.token_hex(6)}"
    with psycopg.connect(server, autocommit=True) as admin:
        admin.execute(f"CREATE DATABASE {name}")
    try:
        async with open_index(server.rsplit("/", 1)[0] + "/" + name, readers=2) as db:
            yield db
    finally:
        with psycopg.connect(server, autocommit=True) as admin:
            admin.execute(f"DROP DATABASE {name} WITH (FORCE)")


@pytest.fixture
async def client(index: IndexDb) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(index, WebSettings(), wall_ms)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://explorer") as c:
        yield c


async def put(db: IndexDb, *envelopes: Envelope) -> int:
    """Index envelopes as the gossip writer would; returns how many were new."""
    now_ms = wall_ms()

    def write(tx: Tx) -> int:
        return sum(apply_message(tx, e, now_ms) for e in envelopes)

    return await db.write(write)

"""Fixtures: an index in a temporary SQLite file and an in-process client for the app."""

from __future__ import annotations

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

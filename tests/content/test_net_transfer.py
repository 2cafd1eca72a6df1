"""Transfer over the Network port (in-memory network): peers serve, a fetcher verifies."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from node.content.cid import cid_of_bytes
from node.content.net import PeerChunkSource, content_handler, content_limits, serve_content
from node.content.source import ChunkSourceError, StoreChunkSource
from node.content.store import ContentStore
from node.content.transfer import TransferConfig, fetch
from node.net.memory import MemoryHub

MIB = 1 << 20


async def test_fetch_from_peers_over_the_network(tmp_path: Path) -> None:
    hub = MemoryHub()
    data = os.urandom(5 * MIB + 7)
    limits = content_limits(MIB)
    async with hub.open("seed") as seed_net, hub.open("empty") as empty_net, hub.open("me") as me:
        seed_store = ContentStore(tmp_path / "seed", budget_bytes=1 << 30)
        cid = seed_store.put_bytes(data)
        bad: list[str] = []
        serve_content(seed_net, StoreChunkSource(seed_store), limits, lambda p, e: bad.append(p))
        empty_store = ContentStore(tmp_path / "empty", budget_bytes=1 << 30)
        serve_content(empty_net, StoreChunkSource(empty_store), limits, lambda p, e: None)
        await me.connect(seed_net.listen_addrs()[0])
        await me.connect(empty_net.listen_addrs()[0])

        local = ContentStore(tmp_path / "me", budget_bytes=1 << 30)
        sources = [PeerChunkSource(me, peer, limits) for peer in ("empty", "seed")]
        report = await fetch(cid, sources, local, TransferConfig(retry_backoff_s=0.0))
        assert local.read_bytes(cid) == data
        assert report.chunks_fetched == 6 and bad == []

        with pytest.raises(ChunkSourceError, match="refused"):
            await sources[0].get_manifest(cid)  # the empty peer says so, it does not hang
        with pytest.raises(ChunkSourceError):
            await PeerChunkSource(me, "stranger", limits).get_chunk(cid, 0)  # not connected


async def test_handler_refuses_malformed_requests(tmp_path: Path) -> None:
    store = ContentStore(tmp_path, budget_bytes=1 << 20)
    cid = store.put_bytes(b"abc")
    handle = content_handler(StoreChunkSource(store))
    assert await handle("p", b"M" + cid.encode()) is not None
    assert (await handle("p", b"C\x00\x00\x00\x00" + cid.encode())) == b"\x00abc"
    for body in (b"", b"X", b"M../../etc/passwd", b"C\x00", b"C\x00\x00\x00\x09" + cid.encode(),
                 b"M\xff\xfe", b"M" + cid_of_bytes(b"other").encode()):  # fmt: skip
        reply = await handle("p", body)
        assert reply is not None and reply[:1] == b"\x01", body

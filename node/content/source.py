"""Where chunks come from: the ``ChunkSource`` port and the store-backed server side.

A source is one peer (or IPFS, or a test double). The fetcher only needs two
calls; any failure to deliver is a ``ChunkSourceError`` (dropped connection,
refusal, timeout), while *wrong* bytes are detected by the fetcher itself.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from typing import Protocol

import trio

from node.content.cid import digest_of
from node.content.manifest import Manifest, chunk_count_for
from node.content.store import ContentError, ContentStore

DEFAULT_CHUNK_BYTES = 1 << 20
_MANIFEST_CACHE_LEN = 64


class ChunkSourceError(Exception):
    """A source failed to deliver (connection dropped, refused, no such content)."""


class ChunkSource(Protocol):
    @property
    def name(self) -> str:
        """For logs and blame: a peer id, ``ipfs``, ``local``."""
        ...

    async def get_manifest(self, cid: str) -> bytes: ...

    async def get_chunk(self, cid: str, index: int) -> bytes: ...


def manifest_of_file(store: ContentStore, cid: str, chunk_size_bytes: int) -> Manifest:
    size = store.size_of(cid)
    digests = []
    with store.path_of(cid).open("rb") as f:
        for _ in range(chunk_count_for(size, chunk_size_bytes)):
            digests.append(hashlib.sha256(f.read(chunk_size_bytes)).digest())
    return Manifest(digest_of(cid), size, chunk_size_bytes, tuple(digests))


class StoreChunkSource:
    """Serves manifests and chunks out of a local ``ContentStore``.

    Manifests are computed on first request (a full read of the blob) and kept
    in a small LRU, since a popular scene is asked for by many workers at once.
    """

    def __init__(self, store: ContentStore, chunk_size_bytes: int = DEFAULT_CHUNK_BYTES) -> None:
        self._store = store
        self._chunk_size_bytes = chunk_size_bytes
        self._manifests: OrderedDict[str, bytes] = OrderedDict()

    @property
    def name(self) -> str:
        return "local"

    async def get_manifest(self, cid: str) -> bytes:
        if cid in self._manifests:
            self._manifests.move_to_end(cid)
            return self._manifests[cid]
        try:
            manifest = await trio.to_thread.run_sync(
                manifest_of_file, self._store, cid, self._chunk_size_bytes
            )
        except (ContentError, ValueError) as exc:
            raise ChunkSourceError(str(exc)) from exc
        raw = manifest.encode()
        self._manifests[cid] = raw
        if len(self._manifests) > _MANIFEST_CACHE_LEN:
            self._manifests.popitem(last=False)
        return raw

    async def get_chunk(self, cid: str, index: int) -> bytes:
        try:
            size = self._store.size_of(cid)
        except ContentError as exc:
            raise ChunkSourceError(str(exc)) from exc
        if not 0 <= index < chunk_count_for(size, self._chunk_size_bytes):
            raise ChunkSourceError(f"chunk {index} out of range")
        offset = index * self._chunk_size_bytes
        return await trio.to_thread.run_sync(
            self._store.read_range, cid, offset, self._chunk_size_bytes
        )

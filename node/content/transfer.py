"""Chunked, verified, resumable fetch of one content item from any peers that have it.

Theory of operation:

1. Ask the sources for the manifest in turn until one passes
   :func:`decode_manifest` (its claims checked against the CID and our limits).
2. The content is assembled in the store's ``partial/<cid>.part`` file, chunks
   written at their offsets. On start, chunks already in that file whose hash
   matches the manifest are kept: a transfer cut by a dropped connection, a
   cancel or a crash resumes where it stopped, with no separate journal to
   get out of sync with the data.
3. A few workers take missing chunk indices from a channel. Each tries the
   sources in turn (starting at a different one per chunk, to spread load);
   a chunk is written only if its length and sha2-256 match the manifest. A
   delivery failure moves on to the next source; a *wrong* chunk counts against
   its source, and a source past ``max_bad_chunks`` is dropped for this fetch.
4. The assembled file is hashed against the CID and moved into the store. A
   mismatch means the manifest lied: its source is dropped and the fetch starts
   over with another manifest.
"""

from __future__ import annotations

import hashlib
import os
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

import trio

from node.content.cid import digest_of
from node.content.manifest import Manifest, ManifestError, decode_manifest
from node.content.source import ChunkSource, ChunkSourceError
from node.content.store import ContentError, ContentStore


class TransferError(Exception):
    """The content could not be fetched from any source; the message says why."""


@dataclass(frozen=True)
class TransferConfig:
    max_content_bytes: int = 8 << 30
    max_chunk_bytes: int = 4 << 20
    request_timeout_s: float = 30.0
    parallel_chunks: int = 4
    rounds_per_chunk: int = 5  # full passes over all sources before a chunk is given up
    retry_backoff_s: float = 0.2
    max_bad_chunks: int = 3
    # A whole fetch must keep this rate: its chunk requests may wait, summed, one request
    # timeout plus its size at this rate, per parallel request (network waits only: the
    # store's threads do not count). Each chunk alone has request_timeout_s, so a source
    # serving a manifest of 1-byte chunks each just inside it held a 4 KiB fetch for 33
    # hours, and with it a requester's checks of a job and a capacity-challenge slot
    # (review of stop 44). 8 KiB/s: an 8 MiB frame in 17 min at worst.
    min_rate_bytes_per_s: int = 8 << 10


@dataclass
class TransferReport:
    cid: str
    size_bytes: int = 0
    chunks_fetched: int = 0
    chunks_resumed: int = 0
    bytes_fetched: int = 0
    corrupt_chunks: int = 0
    failed_requests: int = 0
    dropped_sources: list[str] = field(default_factory=list)


@dataclass
class _Fetch:
    cid: str
    manifest: Manifest
    fd: int
    sources: list[ChunkSource]
    config: TransferConfig
    report: TransferReport
    bad_chunks: Counter[str] = field(default_factory=Counter)
    waited_s: float = 0.0  # chunk requests' network waits, summed (min_rate_bytes_per_s)


async def fetch(
    cid: str, sources: Sequence[ChunkSource], store: ContentStore, config: TransferConfig
) -> TransferReport:
    """Bring ``cid`` into ``store``. Raises ``TransferError`` when no source can supply it."""
    digest = digest_of(cid)
    report = TransferReport(cid)
    live = list(sources)
    while not store.has(cid):
        manifest, manifest_source = await _first_manifest(cid, digest, live, config, report)
        try:
            await _assemble(cid, manifest, live, store, config, report)
        except ContentError:
            # Every chunk matched the manifest yet the whole did not match the CID.
            live.remove(manifest_source)
            report.dropped_sources.append(manifest_source.name)
    report.size_bytes = store.size_of(cid)
    return report


async def _first_manifest(
    cid: str,
    digest: bytes,
    sources: list[ChunkSource],
    config: TransferConfig,
    report: TransferReport,
) -> tuple[Manifest, ChunkSource]:
    for source in list(sources):
        try:
            with trio.fail_after(config.request_timeout_s):
                raw = await source.get_manifest(cid)
            return (
                decode_manifest(raw, digest, config.max_content_bytes, config.max_chunk_bytes),
                source,
            )
        except (ChunkSourceError, trio.TooSlowError, OSError):
            report.failed_requests += 1
        except ManifestError:
            sources.remove(source)
            report.dropped_sources.append(source.name)
    raise TransferError(f"no source gave a valid manifest for {cid}")


async def _assemble(
    cid: str,
    manifest: Manifest,
    sources: list[ChunkSource],
    store: ContentStore,
    config: TransferConfig,
    report: TransferReport,
) -> None:
    part = store.partial_path(cid)
    fd = os.open(part, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        if os.fstat(fd).st_size != manifest.size_bytes:
            os.ftruncate(fd, manifest.size_bytes)
        missing = await trio.to_thread.run_sync(_missing_chunks, fd, manifest)
        report.chunks_resumed += manifest.chunk_count - len(missing)
        job = _Fetch(cid, manifest, fd, sources, config, report)
        send, receive = trio.open_memory_channel[int](len(missing))
        for index in missing:
            send.send_nowait(index)
        send.close()
        try:
            async with trio.open_nursery() as nursery:
                for _ in range(max(1, min(config.parallel_chunks, len(missing)))):
                    nursery.start_soon(_chunk_worker, job, receive.clone())
        except BaseExceptionGroup as group:
            # Surface our own error rather than trio's group of identical ones.
            failures = group.subgroup(TransferError)
            if failures is None:
                raise
            raise TransferError(str(_first_leaf(failures))) from group
        await trio.to_thread.run_sync(os.fsync, fd)
    finally:
        os.close(fd)
    await trio.to_thread.run_sync(store.adopt_partial, cid)


def _first_leaf(group: BaseExceptionGroup[TransferError]) -> BaseException:
    leaf: BaseException = group
    while isinstance(leaf, BaseExceptionGroup):
        leaf = leaf.exceptions[0]
    return leaf


def _missing_chunks(fd: int, manifest: Manifest) -> list[int]:
    missing = []
    for index, want in enumerate(manifest.chunk_digests):
        offset = index * manifest.chunk_size_bytes
        have = os.pread(fd, manifest.chunk_length(index), offset)
        if hashlib.sha256(have).digest() != want:
            missing.append(index)
    return missing


async def _chunk_worker(job: _Fetch, indices: trio.MemoryReceiveChannel[int]) -> None:
    async with indices:
        async for index in indices:
            await _fetch_chunk(job, index)


async def _fetch_chunk(job: _Fetch, index: int) -> None:
    want_len = job.manifest.chunk_length(index)
    want_digest = job.manifest.chunk_digests[index]
    for round_no in range(job.config.rounds_per_chunk):
        if not job.sources:
            raise TransferError(f"every source for {job.cid} was dropped")
        start = index % len(job.sources)
        for source in job.sources[start:] + job.sources[:start]:
            data = await _try_chunk(job, source, index)
            if data is None:
                continue
            if len(data) == want_len and hashlib.sha256(data).digest() == want_digest:
                await trio.to_thread.run_sync(
                    os.pwrite, job.fd, data, index * job.manifest.chunk_size_bytes
                )
                job.report.chunks_fetched += 1
                job.report.bytes_fetched += len(data)
                return
            _blame(job, source)
        if round_no + 1 < job.config.rounds_per_chunk:
            await trio.sleep(job.config.retry_backoff_s * (round_no + 1))
    raise TransferError(f"chunk {index} of {job.cid} could not be fetched")


async def _try_chunk(job: _Fetch, source: ChunkSource, index: int) -> bytes | None:
    config = job.config
    limit_s = config.parallel_chunks * (
        config.request_timeout_s + job.manifest.size_bytes / config.min_rate_bytes_per_s
    )
    if job.waited_s > limit_s:  # what came stays in the partial file: a later fetch resumes
        raise TransferError(f"{job.cid}: {job.manifest.size_bytes} bytes not fetched at "
                            f"{config.min_rate_bytes_per_s} bytes/s")  # fmt: skip
    start = trio.current_time()
    try:
        with trio.fail_after(config.request_timeout_s):
            data = await source.get_chunk(job.cid, index)
    except (ChunkSourceError, trio.TooSlowError, OSError):
        job.report.failed_requests += 1
        return None
    finally:
        job.waited_s += trio.current_time() - start
    if len(data) > job.manifest.chunk_size_bytes:
        _blame(job, source)
        return None
    return data


def _blame(job: _Fetch, source: ChunkSource) -> None:
    job.report.corrupt_chunks += 1
    job.bad_chunks[source.name] += 1
    if job.bad_chunks[source.name] > job.config.max_bad_chunks and source in job.sources:
        job.sources.remove(source)
        job.report.dropped_sources.append(source.name)

"""The local content store: one file per CID under a directory.

Layout under ``root``::

    blobs/<cid>        complete, verified content (immutable once there)
    partial/<cid>.part a transfer in progress (chunks land at their offsets)
    tmp/               staging for atomic writes
    pins.json          the pinned CIDs (rewritten atomically)

Every write goes to ``tmp/`` first and is renamed into ``blobs/`` only after its
hash matched, so a crash never leaves a blob whose bytes differ from its name.
Size accounting is kept in memory from one scan at open. ``collect_garbage``
deletes unpinned blobs, least recently used first, until the total is within
the byte budget. The API is synchronous (file I/O); async callers run it with
``trio.to_thread.run_sync``.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from node.content.cid import cid_from_digest, cid_of_file, digest_of

_COPY_BYTES = 1 << 20


class ContentError(Exception):
    """Content is missing, or its bytes do not match the CID they were stored under."""


@dataclass(frozen=True)
class StoreStats:
    blob_count: int
    total_bytes: int
    pinned_bytes: int
    budget_bytes: int


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class ContentStore:
    def __init__(self, root: Path, budget_bytes: int) -> None:
        self.root = root
        self.budget_bytes = budget_bytes
        for sub in ("blobs", "partial", "tmp"):
            (root / sub).mkdir(parents=True, exist_ok=True)
        self._sizes: dict[str, int] = {
            p.name: p.stat().st_size for p in (root / "blobs").iterdir() if p.is_file()
        }
        self._pins: set[str] = self._load_pins()

    # -- reading ---------------------------------------------------------------

    def has(self, cid: str) -> bool:
        return cid in self._sizes

    def size_of(self, cid: str) -> int:
        try:
            return self._sizes[cid]
        except KeyError:
            raise ContentError(f"no content {cid}") from None

    def path_of(self, cid: str) -> Path:
        """Where the blob lives (for handing a scene to a renderer). Raises if absent."""
        self.size_of(cid)
        return self.root / "blobs" / cid

    def read_bytes(self, cid: str) -> bytes:
        return self.path_of(cid).read_bytes()

    def read_range(self, cid: str, offset: int, length: int) -> bytes:
        with self.path_of(cid).open("rb") as f:
            f.seek(offset)
            return f.read(length)

    def touch(self, cid: str) -> None:
        """Mark as recently used, so garbage collection keeps it longer."""
        os.utime(self.path_of(cid))

    def cids(self) -> list[str]:
        return sorted(self._sizes)

    def stats(self) -> StoreStats:
        pinned = sum(self._sizes.get(c, 0) for c in self._pins)
        return StoreStats(len(self._sizes), sum(self._sizes.values()), pinned, self.budget_bytes)

    # -- writing ---------------------------------------------------------------

    def put_bytes(self, data: bytes) -> str:
        cid = cid_from_digest(hashlib.sha256(data).digest())
        if not self.has(cid):
            with self._staging() as (f, tmp):
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
                self._install(tmp, cid, len(data))
        return cid

    def put_file(self, source: Path) -> str:
        """Copy a file in (hashing while copying); the source is left alone."""
        hasher = hashlib.sha256()
        with self._staging() as (f, tmp), source.open("rb") as src:
            size = 0
            while block := src.read(_COPY_BYTES):
                hasher.update(block)
                f.write(block)
                size += len(block)
            f.flush()
            os.fsync(f.fileno())
            cid = cid_from_digest(hasher.digest())
            if not self.has(cid):
                self._install(tmp, cid, size)
        return cid

    def partial_path(self, cid: str) -> Path:
        digest_of(cid)  # a CID from a peer becomes a file name: refuse anything else
        return self.root / "partial" / f"{cid}.part"

    def adopt_partial(self, cid: str) -> None:
        """Move a finished transfer into ``blobs/`` after checking its whole-content hash."""
        part = self.partial_path(cid)
        if cid_of_file(part) != cid:
            part.unlink()
            raise ContentError(f"assembled content does not hash to {cid}")
        self._install(part, cid, part.stat().st_size)

    def delete(self, cid: str) -> None:
        if cid in self._sizes:
            (self.root / "blobs" / cid).unlink(missing_ok=True)
            del self._sizes[cid]
        self.unpin(cid)

    # -- pins and garbage collection ---------------------------------------------

    def pin(self, cid: str) -> None:
        digest_of(cid)
        if cid not in self._pins:
            self._pins.add(cid)
            self._save_pins()

    def unpin(self, cid: str) -> None:
        if cid in self._pins:
            self._pins.discard(cid)
            self._save_pins()

    def is_pinned(self, cid: str) -> bool:
        return cid in self._pins

    def collect_garbage(self) -> list[str]:
        """Delete unpinned blobs, least recently used first, until within budget."""
        total = sum(self._sizes.values())
        if total <= self.budget_bytes:
            return []
        blobs = self.root / "blobs"
        candidates = sorted(
            (c for c in self._sizes if c not in self._pins),
            key=lambda c: (blobs / c).stat().st_mtime_ns,
        )
        removed = []
        for cid in candidates:
            if total <= self.budget_bytes:
                break
            total -= self._sizes[cid]
            self.delete(cid)
            removed.append(cid)
        return removed

    # -- internals ----------------------------------------------------------------

    @contextlib.contextmanager
    def _staging(self) -> Iterator[tuple[BinaryIO, Path]]:
        fd, name = tempfile.mkstemp(dir=self.root / "tmp")
        tmp = Path(name)
        try:
            with os.fdopen(fd, "wb") as f:
                yield f, tmp
        finally:
            tmp.unlink(missing_ok=True)

    def _install(self, tmp: Path, cid: str, size: int) -> None:
        os.replace(tmp, self.root / "blobs" / cid)
        _fsync_dir(self.root / "blobs")
        self._sizes[cid] = size

    def _load_pins(self) -> set[str]:
        path = self.root / "pins.json"
        if not path.exists():
            return set()
        return set(json.loads(path.read_text()))

    def _save_pins(self) -> None:
        path = self.root / "pins.json"
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(sorted(self._pins)))
        os.replace(tmp, path)


def copy_out(store: ContentStore, cid: str, dest: Path) -> None:
    """Copy a blob to ``dest`` (a renderer's private working directory)."""
    shutil.copyfile(store.path_of(cid), dest)

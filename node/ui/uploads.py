"""Scenes dropped on the dashboard: streamed to disk, named by their hash, few kept.

A .blend can be large (packed textures), so the body is never held in
memory: chunks go to a temporary file while they are hashed and counted,
and the finished file is renamed to ``<sha256>.blend``. Only one upload runs
at a time and only ``keep`` files stay (the oldest go), so the disk a token
holder can fill through this path is bounded by ``keep × max_bytes``. The
first bytes must be a .blend's (plain, gzip or zstd): anything else is
refused before it reaches Blender's inspection.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import trio

BLEND_MAGICS = (b"BLENDER", b"\x1f\x8b", b"\x28\xb5\x2f\xfd")  # plain, gzip, zstd
SAFE_NAME = re.compile(r"[^A-Za-z0-9._ -]+")
MAX_NAME_CHARS = 80


class UploadRefused(ValueError):
    """The upload is not a scene, too large, or another one is running."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status = status


@dataclass(frozen=True)
class Upload:
    path: Path
    name: str
    size_bytes: int
    sha256: str


def display_name(name: str) -> str:
    """The file name as the user gave it, reduced to harmless characters."""
    cleaned = SAFE_NAME.sub("_", Path(name).name).strip() or "scene.blend"
    return cleaned[-MAX_NAME_CHARS:]


class UploadDir:
    def __init__(self, root: Path, max_bytes: int, keep: int) -> None:
        self.root = root
        self.max_bytes = max_bytes
        self.keep = keep
        self._busy = trio.Lock()

    async def save(self, name: str, chunks: AsyncIterator[bytes]) -> Upload:
        if self._busy.locked():
            raise UploadRefused(429, "another scene is uploading; try again when it is done")
        async with self._busy:
            self.root.mkdir(parents=True, exist_ok=True)
            part = self.root / "upload.part"
            digest, size = hashlib.sha256(), 0
            try:
                async with await trio.open_file(part, "wb") as out:
                    async for chunk in chunks:
                        if size == 0 and chunk and not _looks_like_blend(chunk):
                            raise UploadRefused(422, "not a .blend file (its first bytes are not "
                                                     "a Blender file's)")  # fmt: skip
                        size += len(chunk)
                        if size > self.max_bytes:
                            raise UploadRefused(413, f"upload over {self.max_bytes} bytes")
                        digest.update(chunk)
                        await out.write(chunk)
                if size == 0:
                    raise UploadRefused(422, "empty upload")
                path = self.root / f"{digest.hexdigest()}.blend"
                if not path.exists():  # the same scene again: the file (and its mtime) stays
                    part.replace(path)
            finally:
                part.unlink(missing_ok=True)
            self._prune(keep_path=path)
            return Upload(path, display_name(name), size, digest.hexdigest())

    def _prune(self, keep_path: Path) -> None:
        scenes = sorted(self.root.glob("*.blend"), key=lambda p: p.stat().st_mtime, reverse=True)
        scenes = [keep_path] + [p for p in scenes if p != keep_path]
        for old in scenes[self.keep :]:
            old.unlink(missing_ok=True)


def _looks_like_blend(first: bytes) -> bool:
    return any(first[: len(m)] == m[: len(first)] for m in BLEND_MAGICS)

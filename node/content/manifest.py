"""Chunk manifests: the list of chunk hashes a transfer verifies against.

Wire format (big-endian, no optional parts, so one content has one manifest
per chunk size)::

    b"PICTMAN1" | content sha2-256 (32) | size u64 | chunk size u32 | N x sha2-256 (32)

with N = ceil(size / chunk size). Trust model: the content CID is the sha2-256
of the whole content, so a manifest cannot be proven right before the content
is complete. It is checked at once for everything that *can* be checked (the
digest it claims, its exact length, size and chunk-size limits, and for content
of one chunk the chunk hash itself equals the CID's digest); every chunk is
checked against it as it arrives, so a corrupt or truncated chunk is caught and
refetched immediately; and the assembled content is hashed against the CID at
the end, which authenticates the manifest. A lying manifest therefore costs at
most one wasted download and marks the peer that served it.
"""

from __future__ import annotations

import hashlib
import struct
from dataclasses import dataclass

_MAGIC = b"PICTMAN1"
_HEAD = struct.Struct(">8s32sQI")
DIGEST_BYTES = 32


class ManifestError(ValueError):
    """A manifest that is malformed, oversized or contradicts the CID it was asked for."""


@dataclass(frozen=True)
class Manifest:
    content_digest: bytes
    size_bytes: int
    chunk_size_bytes: int
    chunk_digests: tuple[bytes, ...]

    @property
    def chunk_count(self) -> int:
        return len(self.chunk_digests)

    def chunk_length(self, index: int) -> int:
        start = index * self.chunk_size_bytes
        return min(self.chunk_size_bytes, self.size_bytes - start)

    def encode(self) -> bytes:
        head = _HEAD.pack(_MAGIC, self.content_digest, self.size_bytes, self.chunk_size_bytes)
        return head + b"".join(self.chunk_digests)


def chunk_count_for(size_bytes: int, chunk_size_bytes: int) -> int:
    return -(-size_bytes // chunk_size_bytes)


def decode_manifest(
    raw: bytes, expected_digest: bytes, max_size_bytes: int, max_chunk_bytes: int
) -> Manifest:
    """Parse and check everything about a manifest that can be checked before the content."""
    if len(raw) < _HEAD.size:
        raise ManifestError("manifest shorter than its header")
    magic, digest, size, chunk_size = _HEAD.unpack_from(raw)
    if magic != _MAGIC:
        raise ManifestError("not a Pictor manifest")
    if digest != expected_digest:
        raise ManifestError("manifest is for other content")
    if size > max_size_bytes:
        raise ManifestError(f"content of {size} bytes over the {max_size_bytes} limit")
    if not 0 < chunk_size <= max_chunk_bytes:
        raise ManifestError(f"chunk size {chunk_size} outside 1..{max_chunk_bytes}")
    count = chunk_count_for(size, chunk_size)
    if len(raw) != _HEAD.size + count * DIGEST_BYTES:
        raise ManifestError(f"manifest length does not match {count} chunks")
    body = raw[_HEAD.size :]
    digests = tuple(body[i : i + DIGEST_BYTES] for i in range(0, len(body), DIGEST_BYTES))
    if count == 1 and digests[0] != expected_digest:
        raise ManifestError("single-chunk manifest contradicts the CID")
    if count == 0 and expected_digest != hashlib.sha256(b"").digest():
        raise ManifestError("empty manifest for non-empty content")
    return Manifest(digest, size, chunk_size, digests)

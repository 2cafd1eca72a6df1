"""CIDv1 (raw, sha2-256, base32) of bytes and files, and strict parsing.

We accept only this one CID shape from peers: a single hash function means one
digest to compare and no downgrade to a weaker hash chosen by the sender.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from multiformats import CID, multihash

_READ_BYTES = 1 << 20


class CidError(ValueError):
    """Text that is not a CIDv1 raw sha2-256 (a peer's fault when it came from one)."""


def cid_from_digest(digest: bytes) -> str:
    if len(digest) != 32:
        raise CidError(f"sha2-256 digest must be 32 bytes, got {len(digest)}")
    return str(CID("base32", 1, "raw", multihash.wrap(digest, "sha2-256")))


def cid_of_bytes(data: bytes) -> str:
    return cid_from_digest(hashlib.sha256(data).digest())


def cid_of_file(path: Path) -> str:
    hasher = hashlib.sha256()
    with path.open("rb") as f:
        while block := f.read(_READ_BYTES):
            hasher.update(block)
    return cid_from_digest(hasher.digest())


def digest_of(cid_text: str) -> bytes:
    """The sha2-256 digest inside ``cid_text``; raises ``CidError`` for any other shape."""
    try:
        cid = CID.decode(cid_text)
    except Exception as exc:  # multiformats raises several unrelated types
        raise CidError(f"not a CID: {cid_text[:80]!r}") from exc
    if cid.version != 1 or cid.codec.name != "raw" or cid.hashfun.name != "sha2-256":
        raise CidError(f"only CIDv1 raw sha2-256 is accepted, got {cid_text[:80]!r}")
    digest = bytes(cid.raw_digest)
    if len(digest) != 32:
        raise CidError("truncated sha2-256 digest")
    if cid_from_digest(digest) != cid_text:
        # Refuse other multibase spellings so one content has one name (map keys, file names).
        raise CidError(f"CID must be base32 lower case: {cid_text[:80]!r}")
    return digest


def check_cid(cid_text: str) -> str:
    digest_of(cid_text)
    return cid_text

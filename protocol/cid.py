"""The sha2-256 digest inside a content id, without a multiformats dependency.

Frames and scenes are named by CIDv1, raw codec, sha2-256, base32 lower case
(``node.content.cid``): ``"b"`` + base32(0x01 0x55 0x12 0x20 || digest). A
worker's signed Result (``ledger.fraud``) commits to the frame's digest, so the
requester, the checkers and the contract must read the same 32 bytes out of
``Result.frame_cid``; this is that one reading. Any other spelling of a CID is
``None`` here, as it is an error in ``node.content.cid.digest_of``.
"""

from __future__ import annotations

import base64
import binascii

_PREFIX = bytes([0x01, 0x55, 0x12, 0x20])  # CIDv1, raw, sha2-256, 32 bytes
_CID_CHARS = 59  # "b" + ceil(36 * 8 / 5)


def sha256_of_cid(cid: str) -> bytes | None:
    """The 32-byte digest named by ``cid``, or None unless it is our one CID shape."""
    if len(cid) != _CID_CHARS or cid[0] != "b" or cid != cid.lower():
        return None
    body = cid[1:].upper()
    try:
        raw = base64.b32decode(body + "=" * (-len(body) % 8))
    except (binascii.Error, ValueError):
        return None
    if len(raw) != 36 or raw[:4] != _PREFIX:
        return None
    if base64.b32encode(raw).decode().rstrip("=").lower() != cid[1:]:
        return None  # non-canonical trailing bits: one content, one name
    return raw[4:]


def cid_of_sha256(digest: bytes) -> str:
    """The CID naming the content whose SHA-256 is ``digest`` (the inverse of
    :func:`sha256_of_cid`)."""
    if len(digest) != 32:
        raise ValueError("a sha2-256 digest is 32 bytes")
    return "b" + base64.b32encode(_PREFIX + digest).decode().rstrip("=").lower()

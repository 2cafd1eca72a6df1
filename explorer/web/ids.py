"""Validating ids from URLs and the search box, before any query runs.

Every id has one canonical text form (peer ids as libp2p prints them, hashes
as lower-case hex, addresses lower-case with ``0x``) so a URL names exactly
one index row. Anything else is refused with :class:`BadId` (a 400 page),
never passed to SQL as-is.
"""

from __future__ import annotations

import re

from protocol import NodeId

_HEX32 = re.compile(r"(?:0x)?([0-9a-fA-F]{64})")
_ADDRESS = re.compile(r"(?:0x)?([0-9a-fA-F]{40})")
MAX_QUERY_CHARS = 200


class BadId(ValueError):
    """Input that can never name anything in the index (HTTP 400)."""


def node_id(text: str) -> str:
    try:
        return NodeId.from_text(text.strip()).text
    except Exception as exc:  # base58 and length errors come in several types
        raise BadId(f"not a node id (a 12D3KooW… Ed25519 peer id): {text[:80]!r}") from exc


def hash32(text: str, what: str = "job id") -> str:
    found = _HEX32.fullmatch(text.strip())
    if not found:
        raise BadId(f"not a {what} (64 hex digits): {text[:80]!r}")
    return found.group(1).lower()


def tx_hash(text: str) -> str:
    return "0x" + hash32(text, "transaction hash")


def address(text: str) -> str:
    found = _ADDRESS.fullmatch(text.strip())
    if not found:
        raise BadId(f"not an address (0x and 40 hex digits): {text[:80]!r}")
    return "0x" + found.group(1).lower()


def classify(query: str) -> tuple[str, str]:
    """(kind, canonical value) of a search term: node, hash32 (job or tx) or address."""
    q = query.strip()
    if not q or len(q) > MAX_QUERY_CHARS:
        raise BadId("search for a node id (12D3KooW…), a job id, a transaction hash or an address")
    if _HEX32.fullmatch(q):
        return "hash32", hash32(q)
    if _ADDRESS.fullmatch(q):
        return "address", address(q)
    return "node", node_id(q)

"""protocol.cid reads the same digest out of a CID as node.content.cid, and only ours."""

from __future__ import annotations

import hashlib

from hypothesis import given
from hypothesis import strategies as st

from node.content.cid import CidError, cid_from_digest, digest_of
from protocol.cid import sha256_of_cid


@given(st.binary(min_size=32, max_size=32))
def test_the_digest_of_our_cids(digest: bytes) -> None:
    cid = cid_from_digest(digest)
    assert sha256_of_cid(cid) == digest == digest_of(cid)


@given(st.text(max_size=80))
def test_any_text_is_ours_exactly_when_the_node_takes_it(text: str) -> None:
    try:
        expected: bytes | None = digest_of(text)
    except CidError:
        expected = None
    assert sha256_of_cid(text) == expected


def test_other_spellings_are_refused() -> None:
    cid = cid_from_digest(hashlib.sha256(b"frame").digest())
    for other in (cid.upper(), "B" + cid[1:], cid[:-1], cid + "a", "bafkreiframe", "z" + cid[1:],
                  cid[:-1] + ("b" if cid[-1] != "b" else "c")):  # fmt: skip
        assert sha256_of_cid(other) is None or sha256_of_cid(other) != sha256_of_cid(cid)

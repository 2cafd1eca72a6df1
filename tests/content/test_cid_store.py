"""CIDs and the local content store: naming, atomic writes, pins, garbage collection."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from node.content.cid import CidError, cid_from_digest, cid_of_bytes, cid_of_file, digest_of
from node.content.store import ContentError, ContentStore


def test_cid_matches_ipfs_raw_leaf() -> None:
    # `ipfs add --cid-version 1 --raw-leaves` of b"hello" gives this CID.
    assert cid_of_bytes(b"hello") == "bafkreibm6jg3ux5qumhcn2b3flc3tyu6dmlb4xa7u5bf44yegnrjhc4yeq"
    assert digest_of(cid_of_bytes(b"x")) == hashlib.sha256(b"x").digest()


@pytest.mark.parametrize(
    "text",
    [
        "",
        "not-a-cid",
        "BAFKREIBM6JG3UX5QUMHCN2B3FLC3TYU6DMLB4XA7U5BF44YEGNRJHC4YEQ",  # other multibase
        "bafybeigdyrzt5sfp7udm7hu76uh7y26nf3efuylqabf3oclgtqy55fbzdi",  # dag-pb
        "../../etc/passwd",
    ],
)
def test_other_cid_shapes_refused(text: str) -> None:
    with pytest.raises(CidError):
        digest_of(text)


def test_put_get_file_and_size_accounting(tmp_path: Path) -> None:
    store = ContentStore(tmp_path / "s", budget_bytes=1 << 20)
    cid = store.put_bytes(b"scene bytes")
    src = tmp_path / "f.bin"
    src.write_bytes(os.urandom(3000))
    cid2 = store.put_file(src)
    assert cid2 == cid_of_file(src)
    assert store.read_bytes(cid) == b"scene bytes"
    assert store.read_range(cid2, 100, 10) == src.read_bytes()[100:110]
    assert store.stats().total_bytes == 11 + 3000
    assert store.put_bytes(b"scene bytes") == cid  # idempotent, not double counted
    assert store.stats().blob_count == 2
    # A fresh store over the same directory recovers the accounting and pins.
    store.pin(cid)
    again = ContentStore(tmp_path / "s", budget_bytes=1 << 20)
    assert again.stats().total_bytes == 3011 and again.is_pinned(cid)
    assert list((tmp_path / "s" / "tmp").iterdir()) == []


def test_gc_removes_unpinned_least_recent_first(tmp_path: Path) -> None:
    store = ContentStore(tmp_path, budget_bytes=2500)
    cids = [store.put_bytes(bytes([i]) * 1000) for i in range(4)]
    for age, cid in enumerate(cids):
        os.utime(store.path_of(cid), (1000 + age, 1000 + age))
    store.pin(cids[0])  # oldest, but pinned
    removed = store.collect_garbage()
    assert removed == cids[1:3]
    assert store.has(cids[0]) and store.has(cids[3])
    assert store.stats().total_bytes == 2000
    with pytest.raises(ContentError):
        store.path_of(cids[1])


def test_adopt_partial_refuses_wrong_bytes(tmp_path: Path) -> None:
    store = ContentStore(tmp_path, budget_bytes=1 << 20)
    cid = cid_from_digest(hashlib.sha256(b"right").digest())
    store.partial_path(cid).write_bytes(b"wrong")
    with pytest.raises(ContentError):
        store.adopt_partial(cid)
    assert not store.has(cid) and not store.partial_path(cid).exists()

"""Verdicts: built from checks, signed as envelopes, auditable from the secret."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest

from protocol.envelope import decode_envelope, encode_envelope
from protocol.errors import LocalProtocolError
from protocol.identity import NodeKey
from protocol.messages import Result, TileEvidence, Verdict, VerifyRequest
from protocol.verification import (
    DEFAULT_POLICY,
    Tile,
    audit_verdict,
    build_verdict,
    builds_match,
    compare_tile,
    select_tiles,
)

W, H = 160, 96
DIGEST = hashlib.sha256(b"result envelope").digest()
SECRET = hashlib.sha256(b"checker secret").digest()
REQUEST = VerifyRequest(
    job_id=b"\x01" * 32,
    task_id=b"\x02" * 32,
    frame=3,
    worker=b"\x03" * 32,
    result_digest=DIGEST,
    frame_cid="bafkreiframe",
    scene_cid="bafkreiscene",
    fee_wei=10,
    tiles=4,
    tile_secret=SECRET,
)
rng = np.random.default_rng(7)
FRAME = rng.integers(0, 256, size=(H, W, 3), dtype=np.uint8)


def _verdict(candidate: np.ndarray, k: int = 4) -> Verdict:
    tiles = select_tiles(DIGEST, SECRET, W, H, k, DEFAULT_POLICY.sampling.tile_px)
    checks = [
        compare_tile(
            FRAME[t.y : t.y + t.height, t.x : t.x + t.width],
            candidate[t.y : t.y + t.height, t.x : t.x + t.width],
            True,
            DEFAULT_POLICY.comparison,
            t,
        )
        for t in tiles
    ]
    return build_verdict(
        REQUEST,
        checks=checks,
        checker_build="blender-3.4.1",
        checker_device_class="cpu",
    )


def test_honest_frame_passes_and_the_verdict_audits() -> None:
    verdict = _verdict(FRAME.copy())
    assert verdict.passed and len(verdict.tiles) == 4
    assert audit_verdict(verdict, DIGEST, W, H, same_build=True)
    assert audit_verdict(verdict, DIGEST, W, H)


def test_tampered_frame_fails() -> None:
    assert not _verdict(255 - FRAME).passed


def test_signed_verdict_round_trips_and_re_derives() -> None:
    key = NodeKey(b"\x09" * 32)
    wire = encode_envelope(key, _verdict(FRAME.copy()), nonce=1, now_ms=1_000)
    env = decode_envelope(wire)
    assert env.sender == key.node_id
    assert isinstance(env.message, Verdict)
    assert audit_verdict(env.message, DIGEST, W, H, same_build=True)


def test_cherry_picked_tiles_fail_the_audit() -> None:
    honest = _verdict(FRAME.copy())
    moved = Verdict(**{**honest.__dict__, "tiles": (TileEvidence(0, 0, 32, 32, 2**32 - 1, 0),) * 4})
    assert not audit_verdict(moved, DIGEST, W, H)
    other_secret = Verdict(**{**honest.__dict__, "secret": b"\x00" * 32})
    assert not audit_verdict(other_secret, DIGEST, W, H)
    assert not audit_verdict(honest, b"\x00" * 32, W, H)


def test_a_pass_contradicting_its_evidence_fails_the_audit() -> None:
    bad = _verdict(255 - FRAME)
    lying = Verdict(**{**bad.__dict__, "passed": True})
    assert audit_verdict(lying, DIGEST, W, H)  # tiles are right...
    assert not audit_verdict(lying, DIGEST, W, H, same_build=True)  # ...the judgement is not


def test_no_tiles_no_verdict() -> None:
    with pytest.raises(LocalProtocolError):
        build_verdict(
            REQUEST, checks=[], checker_build="b", checker_device_class="c"
        )
    assert Tile(0, 0, 1, 1) < Tile(0, 1, 1, 1)


def test_builds_match_reads_the_result_and_the_verdict() -> None:
    verdict = _verdict(FRAME.copy())
    result = Result(b"\x01" * 32, b"\x02" * 32, 3, "cid", 1, 1, "blender-3.4.1", "cpu")
    assert builds_match(result, verdict)
    other = Result(b"\x01" * 32, b"\x02" * 32, 3, "cid", 1, 1, "blender-3.4.1", "cuda-sm90")
    assert not builds_match(other, verdict)

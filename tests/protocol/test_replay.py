"""Replay and clock-skew rejection."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from protocol import NodeKey, ReplayGuard, decode_envelope, encode_envelope
from protocol.errors import ClockSkew, ReplayDetected
from protocol.messages import Heartbeat

KEY = NodeKey(b"k" * 32)
MSG = Heartbeat(job_id=b"j" * 32, task_id=b"t" * 32, progress_permille=1)
NOW = 1_800_000_000_000


def env(nonce: int, ts: int, key: NodeKey = KEY):
    return decode_envelope(encode_envelope(key, MSG, nonce=nonce, now_ms=ts))


def test_replay_is_refused_and_fresh_nonce_accepted() -> None:
    guard = ReplayGuard(skew_ms=1000)
    guard.check(env(1, NOW), NOW)
    with pytest.raises(ReplayDetected):
        guard.check(env(1, NOW), NOW + 10)
    guard.check(env(2, NOW), NOW + 10)
    guard.check(env(1, NOW, NodeKey(b"o" * 32)), NOW + 10)  # nonces are per sender


def test_timestamps_outside_the_skew_window_are_refused() -> None:
    guard = ReplayGuard(skew_ms=1000)
    with pytest.raises(ClockSkew, match="-1001 ms"):
        guard.check(env(1, NOW - 1001), NOW)
    with pytest.raises(ClockSkew):
        guard.check(env(2, NOW + 1001), NOW)
    guard.check(env(3, NOW - 1000), NOW)
    guard.check(env(4, NOW + 1000), NOW)


def test_an_old_replay_fails_on_its_timestamp_after_being_forgotten() -> None:
    guard = ReplayGuard(skew_ms=1000)
    guard.check(env(1, NOW), NOW)
    assert guard.statistics()["remembered"] == 1
    with pytest.raises(ClockSkew):
        guard.check(env(1, NOW), NOW + 1001)
    assert guard.statistics() == {"remembered": 0, "senders": 0}


def test_one_sender_cannot_fill_memory() -> None:
    guard = ReplayGuard(skew_ms=1000, max_per_sender=3)
    for nonce in range(3):
        guard.check(env(nonce, NOW), NOW)
    with pytest.raises(ReplayDetected, match="too many") as info:
        guard.check(env(99, NOW), NOW)
    assert info.value.penalty == 50
    guard.check(env(99, NOW, NodeKey(b"o" * 32)), NOW)


@given(st.lists(st.tuples(st.integers(0, 20), st.integers(-1500, 1500)), max_size=40))
def test_guard_accepts_each_nonce_once_within_window(events) -> None:
    guard = ReplayGuard(skew_ms=1000)
    accepted: set[int] = set()
    for nonce, offset in events:
        envelope = env(nonce, NOW + offset)
        try:
            guard.check(envelope, NOW)
        except ClockSkew:
            assert abs(offset) > 1000
        except ReplayDetected:
            assert nonce in accepted
        else:
            assert abs(offset) <= 1000 and nonce not in accepted
            accepted.add(nonce)

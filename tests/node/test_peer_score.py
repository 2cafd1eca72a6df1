"""The pure scoring policy: rate limits, penalties, decay, bans."""

from __future__ import annotations

from node.net.peer_score import Action, Admission, PeerScorer, ScoreConfig


def test_burst_then_throttle_then_refill() -> None:
    scorer = PeerScorer(ScoreConfig(rate_per_s=10, burst=5))
    assert [scorer.admit("p", 0.0) for _ in range(5)] == [Admission.ALLOWED] * 5
    assert scorer.admit("p", 0.0) is Admission.THROTTLED
    assert scorer.admit("p", 0.2) is Admission.ALLOWED  # 0.2 s refills 2 tokens


def test_penalties_accumulate_to_ban_and_disconnect_once() -> None:
    scorer = PeerScorer(ScoreConfig(ban_score=100, ban_s=60))
    assert scorer.penalize("p", 60, "bad_signature", 0.0) is Action.NONE
    assert scorer.penalize("p", 60, "bad_signature", 1.0) is Action.DISCONNECT
    assert scorer.penalize("p", 60, "bad_signature", 2.0) is Action.NONE  # already banned
    assert scorer.admit("p", 3.0) is Admission.BANNED
    assert scorer.is_banned("p", 59.0)
    assert not scorer.is_banned("p", 61.5)
    assert scorer.view(2.0)[0].rejected == {"bad_signature": 3}


def test_score_decays_with_half_life() -> None:
    scorer = PeerScorer(ScoreConfig(half_life_s=10))
    scorer.penalize("p", 40, "skew", 0.0)
    assert abs(scorer.score("p", 10.0) - 20.0) < 1e-9
    assert scorer.penalize("p", 70, "skew", 10.0) is Action.NONE  # 20 + 70 < 100


def test_flood_gets_banned_while_other_peer_unaffected() -> None:
    scorer = PeerScorer(ScoreConfig(rate_per_s=1, burst=2, throttle_penalty=10, ban_score=50))
    outcomes = [scorer.admit("flooder", 0.0) for _ in range(20)]
    assert outcomes[-1] is Admission.BANNED
    assert scorer.admit("honest", 0.0) is Admission.ALLOWED


def test_forget_idle_drops_recovered_peers_only() -> None:
    scorer = PeerScorer(ScoreConfig(half_life_s=1, ban_s=5, ban_score=10))
    scorer.penalize("banned", 20, "x", 0.0)
    scorer.penalize("old", 1, "x", 0.0)
    scorer.forget_idle(4.0, min_score=0.1)
    assert [v.peer for v in scorer.view(4.0)] == ["banned"]


def test_records_are_bounded_and_bans_outlive_strangers() -> None:
    scorer = PeerScorer(ScoreConfig(max_records=100, ban_score=100, ban_s=3600))
    scorer.penalize("villain", 100, "bad_signature", 0.0)  # banned
    scorer.penalize("suspect", 50, "malformed_message", 0.0)
    for i in range(10_000):  # fresh identities, each sends one message
        scorer.admit(f"stranger-{i}", 1.0 + i * 1e-4)
        assert len(scorer) <= 100
    assert scorer.is_banned("villain", 2.0)
    assert scorer.score("suspect", 2.0) > 40  # the most telling records stay

"""Capacity claims, tested: trial frames for the unproven, challenge-capped speed.

Theory of operation
-------------------
Any node may advertise any benchmark score and bid any ETA; a flood of fresh
identities claiming huge scores at 1 wei would otherwise win every award
(issue 17, item 3). Two rules, both decided here and applied by the job
machine's award plan (:mod:`protocol.market.awarding`):

* **Trial frames.** A bidder is *proven* when the chain confirms stake for its
  payment address, its record shows an accepted frame, or it passed a timed
  capacity challenge (:func:`is_proven`). With ``MarketConfig.trial_leases``
  > 0 an unproven bidder holds at most ``TRIAL_SLOTS`` live lease, and all
  unproven bidders together at most ``trial_leases`` of the job's: a flood of
  1,000 identities gets that many trial frames at a time, each checked as a
  fresh worker's is (protocol.verification), never the job. A trial frame's
  failure costs its frame no attempt (``max_attempts_per_frame``): a stream
  of fresh keys would otherwise fail every frame in three tries.
* **Challenge-capped speed.** A challenge is a small seeded render of
  ``challenge_ru`` render units whose output the challenger can check exactly
  (same build and device class); the driver times it. :func:`capped_score`
  believes the claimed score unless the challenge ran slower than the claim
  by more than ``margin_permille`` (machines are noisy: 3,000 = three times
  slower still counts as honest), and otherwise the measured score. The award
  plan then ranks the bidder by an ETA no shorter than the capped score allows
  (:func:`eta_floor_s`), so an inflated claim buys nothing.

The challenge itself — what is rendered, how it is timed and judged, and a
caught bidder's exclusion from the job's awards — is :mod:`protocol.challenge`;
the node's requester issues it (``node.roles.challenger``) and feeds
``JobMachine.capacity_judged``.
"""

from __future__ import annotations

TRIAL_SLOTS = 1
DEFAULT_MARGIN_PERMILLE = 3_000  # a challenge up to 3x slower than claimed is believed
MS_PER_HOUR = 3_600_000


def measured_score(challenge_ru: int, measured_ms: int) -> int:
    """Render units per hour that a challenge of ``challenge_ru`` in ``measured_ms`` shows."""
    return challenge_ru * MS_PER_HOUR // max(1, measured_ms)


def capped_score(
    claimed_ru_per_hour: int, challenge_ru: int, measured_ms: int,
    margin_permille: int = DEFAULT_MARGIN_PERMILLE,
) -> int:  # fmt: skip
    """The score to believe after a timed challenge (see the module docstring)."""
    measured = measured_score(challenge_ru, measured_ms)
    if claimed_ru_per_hour * 1000 <= measured * margin_permille:
        return claimed_ru_per_hour
    return max(1, measured)


def eta_floor_s(ru_per_frame: int, score_ru_per_hour: int) -> int:
    """The shortest ETA per frame a bidder of ``score_ru_per_hour`` can honestly quote."""
    return -(-ru_per_frame * 3600 // max(1, score_ru_per_hour))


def is_proven(stake_wei: int | None, accepted_frames: int, challenge_passed: bool) -> bool:
    """Whether a bidder is past its trial: staked, a record of accepted work, or a passed
    capacity challenge."""
    return bool(stake_wei) or accepted_frames > 0 or challenge_passed

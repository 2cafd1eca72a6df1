"""Market settings: one frozen dataclass per side, every default resolved.

Defaults and why:

* ``lease_ms`` 60 s with ``heartbeat_interval_ms`` 15 s: a lease survives three
  lost heartbeats in a row before a live worker loses its task, and a dead
  worker's frame is free again within a minute.
* ``max_attempts_per_frame`` 3, ``blocklist_after_failures`` 3 (soft
  failures) and ``blocklist_after_rejections`` 1 (a checker's failing
  verdict): see the requester module's docstring.
* ``bid_window_ms`` 5 s: long enough for gossip to reach the network and bids
  to come back (gossip hop 3–9 ms, connects ≥ 250 ms), short enough that an
  artist does not notice it. Bids arriving later are still used, and the
  announce is repeated every ``reannounce_interval_ms`` (5 min) while frames
  wait for a worker, so nodes that join later hear of the job.
* A task must deliver within ``max(min_task_timeout_ms, task_timeout_factor ×
  the bid's ETA)`` of its award, heartbeats or not (10 min, 4×): otherwise a
  worker that heartbeats and never renders would hold a frame to the deadline,
  and one that understates its ETA to win awards would go unpunished.
* ``dispute_window_ms`` 60 s and ``dispute_checkers`` 2: a worker whose result a
  checker rejected may dispute within a minute of being told; two more
  checkers are then asked and the majority of the three verdicts decides (an
  even number keeps the total odd, so there is always a majority).
* ``plant_rate_ppm`` 100,000: the base rate of forced errors: a checked result
  also gets a planted bad copy for another checker (:mod:`protocol.market.plants`)
  at this rate once the requester knows that checker; a checker it has not yet
  seen reject two of its plants is on probation, planted at one check in two,
  then one in six (``protocol.forced_errors.plant_rate_ppm``). Chosen with
  ``bench/forced_errors.py`` on the ``lazy_checkers`` scenario
  (docs/VERIFICATION.md, "Forced errors"): with probation a lazy checker earns
  21-27 % of what an honest one does at 5-20 %, while a flat 10 % left it
  earning more (4.7e14 wei a run against 2.9e14); the plants cost requesters
  about 1.2 % of what they pay for frames. The base rate prices a strategic
  checker that renders until trusted and then goes lazy: it takes about
  ``1 / rate`` of its share of checks' fees from a requester before a plant
  reaches it; at 10 % one that turns lazy after 20 checks earns 0.69x what an
  honest checker does, one that turns lazy after 60 (late in a 6 h run) 1.21x
  (0.97x at 20 %, for 0.6 % more of frame pay, but its own take hardly moved:
  the honest figure did). No base rate prices a checker that whitewashes after
  each strike (docs/VERIFICATION.md, "The base rate stays 10 %"); stake a miss
  can take does, in the simulator (docs/VERIFICATION.md, "Checker stake"): a
  requester asks it of checkers by default (``JobMachine.set_pass_claim_stake``).
"""

from __future__ import annotations

from dataclasses import dataclass

from protocol.errors import LocalProtocolError
from protocol.messages import MAX_DISPUTE_VERDICTS


@dataclass(frozen=True)
class MarketConfig:
    """The requester's rules for one job."""

    lease_ms: int = 60_000
    heartbeat_interval_ms: int = 15_000
    bid_window_ms: int = 5_000
    max_attempts_per_frame: int = 3
    blocklist_after_failures: int = 3
    blocklist_after_rejections: int = 1
    max_tasks_per_worker: int = 4
    verify_timeout_ms: int = 120_000
    verify_attempts: int = 5
    task_timeout_factor: int = 4
    min_task_timeout_ms: int = 600_000
    reannounce_interval_ms: int = 300_000
    refund_grace_ms: int = 24 * 3_600_000
    max_bidders: int = 1_000
    dispute_window_ms: int = 60_000
    dispute_checkers: int = 2
    # Workers and checkers whose chain-confirmed stake (fed by the driver: set_stake) is
    # below this get no award and no check, and a worker's must hold it once more for each
    # other job the escrow counts it open in; 0 = no minimum. See protocol.market.awarding.
    min_stake_wei: int = 0
    # Live leases all unproven bidders together may hold (protocol.capacity: trial
    # frames); 0 = no trial limit.
    trial_leases: int = 0
    plant_rate_ppm: int = 100_000  # forced errors per million checked results (see above)
    # Late verdicts (a check still out when its task was decided) paid per checker and
    # job: protocol.market.verifying.VerifyDesk._keep_late_checks.
    late_fees_per_checker: int = 4
    # Requests a requester keeps out at one checker, over all its jobs; further checks
    # and plants wait for one with room (protocol.verification.with_room); 0: no cap
    # (docs/MARKET.md, "Checks wait for a checker with room", says why 1).
    checks_per_checker: int = 1

    def __post_init__(self) -> None:
        if min(self.min_stake_wei, self.trial_leases, self.late_fees_per_checker,
               self.checks_per_checker) < 0:  # fmt: skip
            raise LocalProtocolError(
                "min_stake_wei, trial_leases, late_fees_per_checker and checks_per_checker "
                "must be >= 0"
            )
        if not 0 < self.heartbeat_interval_ms < self.lease_ms:
            raise LocalProtocolError("need 0 < heartbeat_interval_ms < lease_ms")
        for name in (
            "max_attempts_per_frame",
            "blocklist_after_failures",
            "blocklist_after_rejections",
            "max_tasks_per_worker",
            "verify_attempts",
            "verify_timeout_ms",
            "max_bidders",
            "task_timeout_factor",
            "min_task_timeout_ms",
            "reannounce_interval_ms",
        ):
            if getattr(self, name) < 1:
                raise LocalProtocolError(f"{name} must be at least 1")
        if self.bid_window_ms < 0 or self.refund_grace_ms < 0 or self.dispute_window_ms < 0:
            raise LocalProtocolError(
                "bid_window_ms, refund_grace_ms and dispute_window_ms must be >= 0"
            )
        if not 0 <= self.plant_rate_ppm <= 1_000_000:
            raise LocalProtocolError("plant_rate_ppm must be within 0..1,000,000")
        if self.dispute_checkers < 0 or self.dispute_checkers % 2:
            raise LocalProtocolError("dispute_checkers must be even and >= 0 (0: no disputes)")
        if self.dispute_checkers > MAX_DISPUTE_VERDICTS:  # a DisputeRecord carries them all
            raise LocalProtocolError(f"dispute_checkers must be at most {MAX_DISPUTE_VERDICTS}")


@dataclass(frozen=True)
class WorkerConfig:
    """What a worker offers: its ask, the renderer builds it runs, its slots."""

    min_price_wei_per_ru: int
    renderer_builds: tuple[str, ...]
    slots: int = 1
    # Its benchmark score; 0 = not measured: bids then quote 1 s per RU and the worker
    # cannot judge whether a frame ends before the deadline, so it does not try.
    score_ru_per_hour: int = 0
    max_known_jobs: int = 1_000
    job_memory_ms: int = 24 * 3_600_000
    dispute_rejections: bool = True  # contest every rejection of a result we submitted
    # After an award declined because its pay was not secured (the lane not yet
    # funded as our chain reading sees it, or the chain did not answer), bid again
    # after unsecured_rebid_ms, doubling, at most unsecured_rebids times in a row.
    unsecured_rebids: int = 3
    unsecured_rebid_ms: int = 10_000

    def __post_init__(self) -> None:
        if self.min_price_wei_per_ru < 0:
            raise LocalProtocolError("min_price_wei_per_ru must be >= 0")
        if self.unsecured_rebids < 0 or self.unsecured_rebid_ms < 1:
            raise LocalProtocolError("unsecured_rebids must be >= 0, unsecured_rebid_ms >= 1")
        if self.slots < 1 or self.score_ru_per_hour < 0 or self.max_known_jobs < 1:
            raise LocalProtocolError("slots and max_known_jobs must be >= 1, the score >= 0")

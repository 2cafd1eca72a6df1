"""Metrics of one run: counters, integrals and a time series, written as
JSON and CSV with sorted keys and fixed float formatting, so the same seed
gives the same bytes (wall-clock figures never go in these files).
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from simulations.chain import ChainStats
from simulations.network import NetStats

SERIES_COLUMNS = (
    "t_s",
    "workers_online",
    "workers_busy",
    "utilisation",
    "frames_accepted",
    "cheats_caught",
    "cheats_missed",
    "price_wei_per_ru",
)


@dataclass
class JobRecord:
    submitted_ms: int
    frames: int
    ru_per_frame: int
    finished_ms: int | None = None
    outcome: str = ""
    frames_accepted: int = 0


@dataclass
class Metrics:
    frames_accepted: int = 0
    frames_failed: int = 0
    ru_accepted: int = 0
    paid_wei: int = 0  # voucher increments sent to workers for frames
    fees_wei: int = 0  # voucher increments sent to checkers
    checks_requested: int = 0  # VerifyRequests sent (the checkers' work)
    checks_refused: int = 0  # by a checker whose fee was not secured on chain
    tiles_requested: int = 0  # the tiles those requests asked for
    results_unchecked: int = 0  # results the check plan accepted without a check
    # results no checker judged in verify_attempts asks: given up, the frame rendered again
    results_abandoned: int = 0
    disputes_resolved: int = 0  # rejections a worker contested, decided by a majority
    disputes_overturned: int = 0  # ... in the worker's favour
    unpaid_wei: int = 0  # owed by free riders, never vouched for
    slashes: int = 0  # fraud claims made (a dispute's quorum rejected a signed result)
    slashes_impossible: int = 0  # SlashDue with fewer rejecters than the escrow's quorum
    pass_claims: int = 0  # false passes claimed against the checker's stake (pass_claims.py)
    pass_claims_contradicted: int = 0  # ... of them: real passes a later rejection contradicted
    pass_claims_impossible: int = 0  # ... not claimed: fewer other staked checkers than a quorum
    pass_claims_signed: dict[bytes, int] = field(default_factory=dict)  # checker -> claims signed
    cheats_submitted: int = 0
    cheats_caught: int = 0
    cheats_missed: int = 0
    # what became of the other cheated results (docs/SIMULATIONS.md, "The slip figure")
    cheats_revoked: int = 0  # dropped unjudged: its worker was blocklisted for another result
    cheats_unverified: int = 0  # no checker answered in time: given up, the frame re-awarded
    cheats_missed_by: dict[str, int] = field(default_factory=dict)  # why accepted: MISS_CAUSES
    false_rejects: int = 0
    frames_from_known_cheaters: int = 0  # accepted after the job caught that worker
    renders_started: int = 0
    awards_declined: int = 0  # pay not secured on chain (the worker's pay check)
    renders_failed: int = 0
    decode_rejects: int = 0  # envelopes refused by decode/replay (duplicates, ...)
    plants_sent: int = 0  # forced errors: planted results sent to checkers
    plants_missed: int = 0  # ... that a checker passed (it is struck)
    plant_fees_wei: int = 0  # fees due for verdicts on plants (what forced errors cost)
    challenges_sent: int = 0  # capacity challenges of unproven bidders (simulations/challenges.py)
    challenges_passed: int = 0
    challenges_caught: int = 0  # a wrong answer, or slower than claimed beyond the margin
    challenges_unanswered: int = 0  # no answer in time: the bidder stays on trial frames
    challenge_cost_wei: int = 0  # the unpaid challenge renders of honest workers, at the ask
    checker_fees_wei: dict[bytes, int] = field(default_factory=dict)  # checker -> fees due
    checker_cost_wei: dict[bytes, int] = field(default_factory=dict)  # checker -> its renders
    # a lazy pair member -> the fees of the requests it answered without rendering
    unrendered_fees_wei: dict[bytes, int] = field(default_factory=dict)
    work_cost_wei: dict[bytes, int] = field(default_factory=dict)  # worker -> renders it finished
    owed_wei: dict[tuple[bytes, bytes], int] = field(default_factory=dict)  # (job, payee) -> books
    bad_frames_paid_wei: int = 0  # honest requesters' pay for accepted wrong or partial frames
    machine_errors: int = 0  # RemoteProtocolError raised by a machine
    crashes: int = 0
    joins: int = 0
    leaves: int = 0
    jobs: dict[bytes, JobRecord] = field(default_factory=dict)
    open_jobs: int = 0
    series: list[tuple[float, ...]] = field(default_factory=list)
    _busy_ms: int = 0
    _online_ms: int = 0
    _busy: int = 0
    _online: int = 0
    _mark_ms: int = 0
    _last_sample: tuple[int, int, int, int] = (0, 0, 0, 0)  # busy, online, paid, ru

    def _integrate(self, now_ms: int) -> None:
        span = now_ms - self._mark_ms
        self._busy_ms += span * self._busy
        self._online_ms += span * self._online
        self._mark_ms = now_ms

    def busy_delta(self, now_ms: int, delta: int) -> None:
        self._integrate(now_ms)
        self._busy += delta

    def online_delta(self, now_ms: int, delta: int) -> None:
        self._integrate(now_ms)
        self._online += delta

    def sample(self, now_ms: int) -> None:
        self._integrate(now_ms)
        busy0, online0, paid0, ru0 = self._last_sample
        online_span = self._online_ms - online0
        util = (self._busy_ms - busy0) / online_span if online_span else 0.0
        ru = self.ru_accepted - ru0
        price = (self.paid_wei - paid0) / ru if ru else 0.0
        self.series.append(
            (
                now_ms / 1000,
                self._online,
                self._busy,
                round(util, 6),
                self.frames_accepted,
                self.cheats_caught,
                self.cheats_missed,
                round(price, 3),
            )
        )
        self._last_sample = (self._busy_ms, self._online_ms, self.paid_wei, self.ru_accepted)

    def summary(self, now_ms: int, net: NetStats, chain: ChainStats) -> dict[str, Any]:
        """The headline figures (see docs/SIMULATIONS.md for each definition)."""
        self._integrate(now_ms)
        done = [j for j in self.jobs.values() if j.finished_ms is not None]
        spans = sorted((j.finished_ms or 0) - j.submitted_ms for j in done)
        frames = self.frames_accepted
        first = min((j.submitted_ms for j in self.jobs.values()), default=0)
        last = max((j.finished_ms or 0 for j in done), default=first)
        per_frame = (lambda x: round(x / frames, 3)) if frames else (lambda x: 0.0)
        return {
            "sim_hours": round(now_ms / 3_600_000, 6),
            "jobs_submitted": len(self.jobs),
            "jobs_completed": sum(j.outcome == "completed" for j in done),
            "jobs_failed": sum(j.outcome != "completed" for j in done),
            "jobs_unfinished": len(self.jobs) - len(done),
            "makespan_s": round((last - first) / 1000, 3),
            "job_time_p50_s": round(_pct(spans, 0.5) / 1000, 3),
            "job_time_p95_s": round(_pct(spans, 0.95) / 1000, 3),
            "frames_accepted": frames,
            "frames_failed": self.frames_failed,
            "frames_per_hour": round(frames / (now_ms / 3_600_000), 3) if now_ms else 0.0,
            "utilisation": round(self._busy_ms / self._online_ms, 6) if self._online_ms else 0.0,
            "price_wei_per_ru": round(self.paid_wei / self.ru_accepted, 3)
            if self.ru_accepted
            else 0.0,
            "paid_wei": self.paid_wei,
            "checker_fees_wei": self.fees_wei,
            "checks_requested": self.checks_requested,
            "checks_refused": self.checks_refused,
            "tiles_requested": self.tiles_requested,
            "results_unchecked": self.results_unchecked,
            "results_abandoned": self.results_abandoned,
            "disputes_resolved": self.disputes_resolved,
            "disputes_overturned": self.disputes_overturned,
            "unpaid_wei": self.unpaid_wei,
            "slashes": self.slashes,
            "slashes_impossible": self.slashes_impossible,
            "pass_claims": self.pass_claims,
            "pass_claims_impossible": self.pass_claims_impossible,
            "pass_claims_contradicted": self.pass_claims_contradicted,
            "cheats_submitted": self.cheats_submitted,
            "cheats_caught": self.cheats_caught,
            "cheats_missed": self.cheats_missed,
            **{f"cheats_missed_{c}": self.cheats_missed_by.get(c, 0) for c in MISS_CAUSES},
            "cheats_revoked": self.cheats_revoked,
            "cheats_unverified": self.cheats_unverified,
            "cheat_slip_ppm": slip_ppm(self.cheats_missed, self.cheats_caught, self.cheats_revoked),
            "false_rejects": self.false_rejects,
            "plants_sent": self.plants_sent,
            "plants_missed": self.plants_missed,
            "plant_fees_wei": self.plant_fees_wei,
            "challenges_sent": self.challenges_sent,
            "challenges_passed": self.challenges_passed,
            "challenges_caught": self.challenges_caught,
            "challenges_unanswered": self.challenges_unanswered,
            "challenge_cost_wei": self.challenge_cost_wei,
            "frames_from_known_cheaters": self.frames_from_known_cheaters,
            "renders_started": self.renders_started,
            "awards_declined": self.awards_declined,
            "renders_failed": self.renders_failed,
            "messages": net.messages + net.gossip_messages,
            "bytes": net.bytes + net.gossip_bytes,
            "messages_per_frame": per_frame(net.messages + net.gossip_messages),
            "bytes_per_frame": per_frame(net.bytes + net.gossip_bytes),
            "market_messages_per_frame": per_frame(net.messages),
            "market_bytes_per_frame": per_frame(net.bytes),
            "messages_lost": net.lost,
            "messages_duplicated": net.duplicated,
            "messages_partitioned": net.partitioned,
            "decode_rejects": self.decode_rejects,
            "machine_errors": self.machine_errors,
            "gas": chain.gas,
            "gas_per_frame": per_frame(chain.gas),
            "gas_wei": chain.gas_wei,
            "txs": chain.txs,
            "tx_reverts": chain.reverts,
            "redeems": chain.redeems,
            "refunds": chain.refunds,
            "crashes": self.crashes,
            "joins": self.joins,
            "leaves": self.leaves,
        }


# Why a cheated result was accepted: no check (the plan waived it), the checker that passed it
# colludes with the cheater or renders nothing, an honest checker's tiles missed the fake, or
# a dispute's majority overturned the rejection.
MISS_CAUSES = ("unchecked", "colluder", "lazy", "sampled", "overturned")


def slip_ppm(missed: int, caught: int, revoked: int) -> int:
    """Cheated results accepted, per million cheated results a requester decided on: accepted,
    rejected by a verdict, or dropped with their blocklisted worker. Results given up unverified
    are left out: their frame is re-awarded and decided on again (counted then)."""
    decided = missed + caught + revoked
    return missed * 1_000_000 // decided if decided else 0


def checker_profits(
    metrics: Metrics, behaviours: dict[bytes, str], stakes: dict[bytes, int] | None = None
) -> dict[str, int]:
    """Mean fees minus render cost per checker, plus what claims gave it and minus the
    stake they took (``stakes``: node -> that net, ``simulations.accounts.stake_net``; also
    reported alone, ``*_checker_stake_net_wei``), by kind (wei; ``behaviours``: every
    checker's). A kind absent from the run reports 0."""
    out: dict[str, int] = {}
    stakes = stakes or {}
    kinds = (("lazy_checker", "lazy"), ("honest", "honest"), ("colluder", "colluding"),
             ("lazy_pair", "lazy_pair"))  # fmt: skip
    for kind, name in kinds:
        nodes = [n for n, b in behaviours.items() if b == kind]
        total = sum(metrics.checker_fees_wei.get(n, 0) - metrics.checker_cost_wei.get(n, 0)
                    + stakes.get(n, 0) for n in nodes)  # fmt: skip
        out[f"{name}_checker_profit_wei"] = total // len(nodes) if nodes else 0
        staked = sum(stakes.get(n, 0) for n in nodes)  # the claims' part of it
        out[f"{name}_checker_stake_net_wei"] = staked // len(nodes) if nodes else 0
    return out


def _pct(values: list[int], q: float) -> float:
    if not values:
        return 0.0
    return float(values[min(len(values) - 1, int(q * len(values)))])


def write_outputs(out_dir: Path, summary: dict[str, Any], metrics: Metrics) -> list[Path]:
    """Write metrics.json, metrics.csv, timeseries.csv and jobs.csv; return the paths."""
    out_dir.mkdir(parents=True, exist_ok=True)
    files = {
        "metrics.json": json.dumps(summary, indent=2, sort_keys=True) + "\n",
        "metrics.csv": _csv(("metric", "value"), sorted(summary.items())),
        "timeseries.csv": _csv(SERIES_COLUMNS, metrics.series),
        "jobs.csv": _csv(
            ("job_id", "submitted_s", "finished_s", "outcome", "frames", "frames_accepted"),
            [
                (
                    jid.hex()[:16],
                    j.submitted_ms / 1000,
                    "" if j.finished_ms is None else j.finished_ms / 1000,
                    j.outcome,
                    j.frames,
                    j.frames_accepted,
                )
                for jid, j in metrics.jobs.items()
            ],
        ),
    }
    paths = []
    for name, text in files.items():
        path = out_dir / name
        path.write_text(text)
        paths.append(path)
    return paths


def _csv(header: tuple[str, ...], rows: Any) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return buf.getvalue()

"""Does the simulator predict a real run? The same small job on a devnet and in the simulator.

    python bench/sim_fidelity.py                       # 3 workers, 1 checker, 12 frames
    python bench/sim_fidelity.py --frames 4 --workers 2 --kill-after 0 --json OUT
                                                       # the CI test's reduced run
    python bench/sim_fidelity.py --reuse OUT           # simulate again against a saved run

1. **Fit** (bench/fidelity_fit.py; measured here, beside the devnet's running nodes,
   once before the job is submitted and again after the payees redeemed; the model
   takes the mean of the two, as the box's background load moves): the reference
   scene of the devnet (``node.devnet.scene``) at the job's resolution and samples,
   rendered as a worker renders it (the node's own sandboxed render kit, one warm
   Blender per job) — alone, then ``--workers`` at once, as the devnet's workers
   share this machine's cores; a steady check as the node's checker makes one (the
   frame's fetch over the node's content transfer, libp2p on loopback, then a warm
   tile check at the plan's k, node.verify); the node's preflight inspection of the
   scene. Then capacity challenges as the devnet meets them (the node runs with
   trial leases): ``--workers`` answers at once, each a fresh kit's inspection and
   quarter frame; the requester's judgements of them on one fresh kit (one tile
   each) while the workers render and the checker makes its first check (inspection
   + k tiles). From these: the simulated GPU's score (RU per hour from the concurrent
   frame time), the tile share (tile pixels over frame pixels), the check's fixed
   cost (the fetch and the check minus its tiles' share of a frame), a node's setup
   before its first frame of a job (inspection + warm start), the requester's
   preflight (the inspection), the answer's cost beyond that setup and its modelled
   render, the judgement, and the checker's first-check excess. The network is
   loopback (1 ms) with the node's own advert interval on both sides (the devnet's
   nodes run with it, not the devnet's quick 2 s), the chain anvil's (one block per transaction: 0.1 s blocks), its
   gas price the devnet's when the job ends, each modelled operation's gas measured
   on the in-process EVM (bench/gas.py's ``modelled``). Market timings and prices
   are the devnet node's own (``role_settings`` of a devnet ``NodeConfig``), not
   typed in; trial leases too.
2. **Real**: ``LocalDevnet`` (anvil, real ``pictor node run`` processes,
   Blender); the job is submitted, one worker is SIGKILLed once ``--kill-after``
   frames are accepted, the job runs to the end and the surviving payees redeem.
   Makespan is submission to the job's ``finished_ms``; messages and envelope
   bytes are the requester's direct-stream counters (``pictor_stream_*`` in
   /metrics: every market message has the requester at one end); gas is every
   transaction the requester and the surviving payees sent (the killed worker
   never redeems); spend is the job's ``spent_wei``.
3. **Simulated**: the same job (frames, RU, price, cap, deadline), nodes and kill
   time in ``simulations`` with the fitted models, invariants on.

Prints both side by side with the relative error of each figure; ``--json``
writes them. Goal (issue 20): makespan and spend within 10 %.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sqlite3
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

# Run as a script, this file's folder would shadow the `protocol` package.
_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]
sys.path.insert(0, str(_HERE.parent))

import httpx
from prometheus_client.parser import text_string_to_metric_families

from bench.fidelity_fit import Fit, fit_in
from bench.gas import measure_modelled
from node.config import NodeConfig
from node.devnet.network import DevnetConfig, LocalDevnet
from node.devnet.scene import build_scene
from node.roles.service import role_settings
from protocol.market.quote import DEFAULT_CHECKER_FEE_BPS
from simulations.runner import run_scenario
from simulations.scenario import scenario_from_dict

MAX_PRICE_WEI = 2 * 10**17  # the demo's cap: twice the devnet ask of 0.1 ETH a 1-RU frame
DEADLINE_S = 7200.0  # the API's default job deadline
JOB_TIMEOUT_S = 900.0
# The node's own advert interval (30 s) on both sides: the devnet's 2 s, for quick discovery
# in tests, put fifteen times the adverts' gossip on this machine's cores during the job (a
# new peer, a stake or a capacity change is still advertised at once).
ADVERT_INTERVAL_S = NodeConfig(Path(".")).advert_interval_s


@dataclass(frozen=True)
class Figures:
    makespan_s: float
    frames_per_hour: float
    messages_per_frame: float
    bytes_per_frame: float
    gas_per_frame: float
    spend_wei: int


@dataclass(frozen=True)
class Phases:
    """Where a run's time went: seconds from submission to the job's start (its preflight
    and deposit), to its first check asked, to the first verdict, to the last."""

    started_s: float
    first_check_s: float
    first_verdict_s: float
    last_verdict_s: float

    def spans(self) -> dict[str, float]:
        return {"A submission to start (preflight, deposit)": self.started_s,
                "B start to first check asked (bids, challenges, frame)":
                    self.first_check_s - self.started_s,
                "C the first check": self.first_verdict_s - self.first_check_s,
                "D the other checks": self.last_verdict_s - self.first_verdict_s}  # fmt: skip


def real_phases(journal: list[tuple[float, str, bytes]]) -> Phases | None:
    """The requester's market journal (seconds from submission, input kind, peer, in
    order) as phases: its ``start``, its first ``assign`` (a check asked), and the
    messages from the peers it asked checks of that follow (their verdicts); None
    without a check."""
    started = next((t for t, kind, _ in journal if kind == "start"), None)
    assigns = [(t, peer) for t, kind, peer in journal if kind == "assign"]
    if started is None or not assigns:
        return None
    checkers = {peer for _, peer in assigns}
    verdicts = [t for t, kind, peer in journal
                if kind == "msg" and peer in checkers and t >= assigns[0][0]]  # fmt: skip
    if not verdicts:
        return None
    return Phases(started, assigns[0][0], verdicts[0], verdicts[-1])


class SimPhases:
    """An ``after_event`` hook of the simulator (``run_scenario``'s ``hooks``) that keeps
    the events the phases are read from: the deposit's confirmation (the job starts),
    each result prepared for its check (the check is asked at once) and each verdict."""

    WANTED = ("tx-deposit-confirmed", "prepare", "verdict")

    def __init__(self) -> None:
        self.events: list[tuple[int, str]] = []

    def __call__(self, world: Any) -> None:
        time_ms, label = world.loop.last_event()
        if label in self.WANTED:
            self.events.append((time_ms, label))

    def phases(self, submitted_ms: int) -> Phases | None:
        def at(label: str) -> list[float]:
            return [(t - submitted_ms) / 1000 for t, name in self.events if name == label]

        started, asked = at("tx-deposit-confirmed"), at("prepare")
        if not (started and asked):
            return None
        verdicts = [t for t in at("verdict") if t >= asked[0]]
        if not verdicts:
            return None
        return Phases(started[0], asked[0], verdicts[0], verdicts[-1])


def _metric(api_base: str, token: str, name: str, labels: dict[str, str] | None = None) -> float:
    text = httpx.get(api_base + "/metrics", headers={"Authorization": f"Bearer {token}"},
                     timeout=10).text  # fmt: skip
    total = 0.0
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v
                                           for k, v in (labels or {}).items()):  # fmt: skip
                total += sample.value
    return total


def real_run(args: argparse.Namespace, scene: Path, work: Path,
             fit: Callable[[str], Fit]) -> tuple[Figures, float, int, int, Fit, Phases | None]:  # fmt: skip
    """The job on a devnet: figures, the kill's offset from submission (s), RU per frame,
    the chain's gas price when the job ended (what the payees' redeem plans read), the
    mean of two fits made beside the devnet's running nodes, before the job and after, and
    the phases of the requester's journal."""
    adverts = {"advert_interval_s": ADVERT_INTERVAL_S}
    config = DevnetConfig(workers=args.workers, checkers=1)
    config = replace(config, node_settings={name: adverts for name, _ in config.roles()})
    with LocalDevnet(work / "net", config) as net:
        client = net.api("client")
        client.wait_until("/v1/network", lambda v: len(v) >= args.workers + 1, 60)
        before = fit("before the job")
        kill = f"worker1 killed after {args.kill_after} accepted" if args.kill_after else "no kill"
        print(f"real: {args.workers} workers + 1 checker, {args.frames} frames, {kill} ...",
              flush=True)  # fmt: skip
        submitted_ms = time.time() * 1000
        job = client.post("/v1/client/jobs", {
            "scene": str(scene), "frames": list(range(1, args.frames + 1)),
            "max_price_wei_per_frame": MAX_PRICE_WEI, "deadline_s": DEADLINE_S,
            "out_dir": str(work / "out"), "resolution": [args.width, args.height],
            "samples": args.samples,
        })  # fmt: skip
        job_id = job["job_id"]
        kill_s = -1.0
        if args.kill_after > 0:
            client.wait_until(f"/v1/client/jobs/{job_id}",
                              lambda j: j["frames_accepted"] >= args.kill_after, JOB_TIMEOUT_S)  # fmt: skip
            kill_s = time.time() - submitted_ms / 1000
            net.kill("worker1")
        final = client.wait_job(job_id, JOB_TIMEOUT_S)
        assert net.chain is not None
        gas_price_wei = int(net.chain.w3.eth.gas_price)  # as the payees' plans read it now
        killed = ("worker1",) if kill_s >= 0 else ()
        payees = [n for n in net.nodes if n != "client" and n not in killed]
        for name in payees:
            net.api(name).wait_until("/v1/roles", lambda r: r["payee"]["owed_wei"] == 0, 120)
        gas = sum(t["gas"] for t in client.get(f"/v1/client/jobs/{job_id}/transactions"))
        gas += sum(t["gas"] for n in payees for t in net.api(n).get("/v1/roles")["transactions"])
        journal = _read_journal(work / "net" / "client" / "node.sqlite3", submitted_ms)
        if args.json:  # the nodes' logs next to the figures: where the real time went
            logs = args.json.with_suffix(".logs")
            logs.mkdir(exist_ok=True)
            for name in net.nodes:
                log = work / "net" / name / "node.log"
                if log.exists():
                    (logs / f"{name}.log").write_text(log.read_text())
            (logs / "journal.txt").write_text("".join(
                f"{t:8.3f} {kind:<12} {peer.hex()[:16]}\n" for t, kind, peer in journal))  # fmt: skip
        base, token = client.base_url, client.token
        messages = _metric(base, token, "pictor_stream_messages_total")
        stream_bytes = _metric(base, token, "pictor_stream_bytes_total")
        print(f"  real: makespan {(final['finished_ms'] - submitted_ms) / 1000:.1f} s", flush=True)
        after = fit("after the job")
    frames = max(1, final["frames_accepted"])
    makespan_s = (final["finished_ms"] - submitted_ms) / 1000
    figures = Figures(makespan_s, frames * 3600 / makespan_s, messages / frames,
                      stream_bytes / frames, gas / frames, int(final["spent_wei"]))  # fmt: skip
    fields = {name: (value + getattr(after, name)) / 2 for name, value in asdict(before).items()}
    fitted = Fit(**{**fields, "k": before.k})
    phases = real_phases(journal)
    return figures, kill_s, int(final["ru_per_frame"]), gas_price_wei, fitted, phases


def _read_journal(db: Path, submitted_ms: float) -> list[tuple[float, str, bytes]]:
    """The requester's market journal as a timeline: seconds from submission, input, peer."""
    with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True)) as conn:
        rows = conn.execute("SELECT now_ms, kind, peer FROM market_journal ORDER BY now_ms, seq")
        return [((now - submitted_ms) / 1000, kind, bytes(peer)) for now, kind, peer in rows]


def sim_run(args: argparse.Namespace, fitted: Fit, kill_s: float, ru_per_frame: int,
            chain: dict[str, Any]) -> tuple[Figures, Phases | None]:  # fmt: skip
    market = role_settings(NodeConfig(Path("."), lease_s=DevnetConfig().lease_s)).market
    price_wei_per_ru = DevnetConfig().price_wei_per_ru
    first_job_s = 10.0
    raw: dict[str, Any] = {
        "scenario": {"name": "fidelity", "duration_s": first_job_s + DEADLINE_S,
                     "liveness_bound_s": DEADLINE_S + 60, "sample_interval_s": 60},
        "nodes": {"workers": args.workers, "checkers": 1, "requesters": 1},
        "network": {"regions": ["local"], "latency_ms": {"local-local": 1.0}, "jitter_ms": 0.5,
                    "bandwidth_mbit_s": 1000.0,
                    "advert_interval_s": ADVERT_INTERVAL_S},
        "rendering": {"gpu_classes": [{"name": "this-machine", "weight": 1.0,
                                       "score_ru_per_hour": ru_per_frame * 3600
                                       / fitted.frame_shared_s, "vram_mib": 65_536}],
                      "time_noise": 0.05, "failure_rate": 0.0, "job_setup_s": fitted.setup_s,
                      "challenge_start_s": fitted.challenge_start_s(args, ru_per_frame),
                      "preflight_s": fitted.preflight_s},
        "chain": {"block_time_s": 0.1, "confirmations": 0, "grace_s": 3600.0,
                  "gas_price_gwei": chain["gas_price_wei"] / 10**9,
                  **chain["gas"]},
        "churn": {"kill_workers_at_s": [first_job_s + kill_s] if kill_s >= 0 else []},
        "workload": {"jobs_per_hour": 1e-6, "first_job_s": first_job_s,
                     "frames_min": args.frames, "frames_max": args.frames,
                     "ru_per_frame_min": ru_per_frame, "ru_per_frame_max": ru_per_frame,
                     "resolution_x": args.width, "resolution_y": args.height,
                     "scene_vram_mib_max": 1024, "deadline_s": DEADLINE_S,
                     "price_wei_per_ru": price_wei_per_ru,
                     "max_price_factor": MAX_PRICE_WEI / (ru_per_frame * price_wei_per_ru)},
        # no budget_factor: the simulator's default escrow is the node's (protocol.market.quote)
        "verification": {"assurance": "normal", "checker_fee_bps": DEFAULT_CHECKER_FEE_BPS,
                         "tile_fraction": fitted.tile_fraction,
                         "check_overhead_s": fitted.check_overhead_s,
                         "prepare_s": fitted.prepare_s,
                         "challenge_judge_s": fitted.judge_s,
                         "checker_setup_s": max(0.0, fitted.first_check_s - fitted.check_s)},
        "market": {"lease_s": market.lease_ms / 1000,
                   "heartbeat_interval_s": market.heartbeat_interval_ms / 1000,
                   "bid_window_s": market.bid_window_ms / 1000,
                   "verify_timeout_s": market.verify_timeout_ms / 1000,
                   "max_attempts_per_frame": market.max_attempts_per_frame,
                   "max_tasks_per_worker": market.max_tasks_per_worker,
                   "min_task_timeout_s": market.min_task_timeout_ms / 1000,
                   "reannounce_interval_s": market.reannounce_interval_ms / 1000,
                   "trial_leases": market.trial_leases},
    }  # fmt: skip
    recorder = SimPhases()
    outcome = run_scenario(scenario_from_dict(raw), args.seed, hooks=[recorder])
    m = outcome.metrics
    job = next(iter(m.jobs.values()))
    frames = max(1, job.frames_accepted)
    assert job.finished_ms is not None, "the simulated job did not finish"
    makespan_s = (job.finished_ms - job.submitted_ms) / 1000
    s = outcome.summary
    figures = Figures(makespan_s, frames * 3600 / makespan_s, s["market_messages_per_frame"],
                      s["market_bytes_per_frame"], s["gas"] / frames,
                      m.paid_wei + m.fees_wei)  # fmt: skip
    return figures, recorder.phases(job.submitted_ms)


def compare(real: Figures, sim: Figures) -> dict[str, dict[str, float]]:
    rows = {}
    for name, r in asdict(real).items():
        s = asdict(sim)[name]
        rows[name] = {"real": r, "sim": s, "error": (s - r) / r if r else 0.0}
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--frames", type=int, default=12)
    parser.add_argument("--workers", type=int, default=3)
    parser.add_argument("--kill-after", type=int, default=1,
                        help="kill worker1 once this many frames are accepted (0: no kill)")
    parser.add_argument("--width", type=int, default=160)
    parser.add_argument("--height", type=int, default=120)
    parser.add_argument("--samples", type=int, default=16)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--json", type=Path, help="write the figures here")
    parser.add_argument("--reuse", type=Path,
                        help="a previous --json: simulate again against its fit and real run")
    args = parser.parse_args()
    started = time.perf_counter()
    if args.reuse:
        saved = json.loads(args.reuse.read_text())
        fitted, kill_s, ru = Fit(**saved["fit"]), saved["kill_s"], saved["ru_per_frame"]
        if "prepare_s" not in saved["fit"]:
            print("note: a fit from before prepare_s was measured: the requester's work "
                  "on each result is not modelled in this simulation", flush=True)  # fmt: skip
        chain = saved["chain"]
        real = Figures(**{k: v["real"] for k, v in saved["figures"].items()})
        real = Figures(**{**asdict(real), "spend_wei": int(real.spend_wei)})
        saved_phases = saved.get("phases", {}).get("real")  # absent before the phases were kept
        real_ph = Phases(**saved_phases) if saved_phases else None
    else:
        fitted, real, kill_s, ru, chain, real_ph = measure(args)
        if args.json:  # kept even if the simulation below fails: --reuse it
            rows = {k: {"real": v} for k, v in asdict(real).items()}
            args.json.write_text(json.dumps({"fit": asdict(fitted), "kill_s": kill_s,
                                             "ru_per_frame": ru, "chain": chain,
                                             "figures": rows,
                                             "phases": _phases_json(real_ph, None)},
                                            indent=2))  # fmt: skip
    print(f"  {f'worker1 killed at {kill_s:.1f} s' if kill_s >= 0 else 'no kill'}; simulating ...",
          flush=True)  # fmt: skip
    sim, sim_ph = sim_run(args, fitted, kill_s, ru, chain)
    rows = compare(real, sim)
    print(f"\n{'figure':<20}{'real':>16}{'simulated':>16}{'error':>9}")
    for name, row in rows.items():
        print(f"{name:<20}{row['real']:>16.6g}{row['sim']:>16.6g}{row['error']:>+9.1%}")
    if real_ph is None or sim_ph is None:
        print("\n(no phases: " + ("the saved run kept none" if real_ph is None else
              "the simulation asked no check after a prepared result (prepare_s 0: an "
              "old fit)") + ")")  # fmt: skip
    else:
        print(f"\n{'where the time went (s)':<56}{'real':>8}{'simulated':>11}{'diff':>8}")
        for (name, r), s in zip(real_ph.spans().items(), sim_ph.spans().values(), strict=True):
            print(f"{name:<56}{r:>8.2f}{s:>11.2f}{s - r:>+8.2f}")
    print(f"\n(wall {time.perf_counter() - started:.0f} s, start-up and fit included)")
    if args.json:
        args.json.write_text(json.dumps({"fit": asdict(fitted), "kill_s": kill_s,
                                         "ru_per_frame": ru, "chain": chain,
                                         "figures": rows, "phases": _phases_json(real_ph, sim_ph)},
                                        indent=2))  # fmt: skip


def _phases_json(real: Phases | None, sim: Phases | None) -> dict[str, Any]:
    return {"real": asdict(real) if real else None, "sim": asdict(sim) if sim else None}


def measure(
    args: argparse.Namespace,
) -> tuple[Fit, Figures, float, int, dict[str, Any], Phases | None]:
    """Fit, run the devnet, fit again: the model takes the mean of the two fits, so that a
    change in this machine's background load between the fit and the run weighs half.
    The chain: the gas of each escrow operation the simulator models, measured on the
    in-process EVM (bench/gas.py, as the node sends each), and the devnet's gas price."""
    with tempfile.TemporaryDirectory(prefix="pictor-fidelity-") as tmp:
        work = Path(tmp)
        work.chmod(0o755)  # the sandbox renders as nobody, inside
        scene = build_scene(work / "fidelity.blend", args.frames)
        print(f"devnet: {args.workers} workers + 1 checker ...", flush=True)

        def fit(when: str) -> Fit:
            return fit_in(args, scene, work / f"fit-{when.split()[0]}",
                          f"{when}, beside the devnet's nodes")

        real, kill_s, ru, gas_price_wei, fitted, phases = real_run(args, scene, work, fit)
        print(f"  real: {asdict(real)}", flush=True)
    chain = {"gas_price_wei": gas_price_wei, "gas": measure_modelled()}
    return fitted, real, kill_s, ru, chain, phases


if __name__ == "__main__":
    main()

"""Gossip benchmark: advert delivery and latency across N nodes, idle node cost.

Part 1 starts N real nodes (libp2p on loopback, one process), bootstrapped
from the first, waits until every node has every other node's advert, then
has every node publish ``--rounds`` signed CapacityAdverts ``--gap-ms`` apart
(staggered across nodes, or all at once with ``--burst``) and records, for
each (advert, receiving node), the time from publish to the receiver's gate
accepting it. Delivery rate = accepted / (adverts x (N - 1)). All N nodes
share one Python process, so these latencies are CPU-bound, not network-bound.

Part 2 runs N ``pictor node run`` processes (each its own CPU budget, as in
real life) advertising every ``--process-advert-s`` (default 5 s, 6x the
normal rate) and samples
per-advert latency through their APIs (millisecond wall clock, one host).

Part 3 starts one ``pictor node run`` process, lets it idle ``--idle-s``
seconds and reports its RSS and CPU time per minute.

    python bench/gossip.py [--nodes 10] [--rounds 15] [--gap-ms 2000]
                           [--process-s 30] [--idle-s 30]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import AsyncExitStack
from functools import partial
from pathlib import Path
from typing import Any

import httpx
import psutil
import trio

REPO = Path(__file__).resolve().parents[1]
SETTLE_S = 5.0
sys.path.insert(0, str(REPO))

from node.app.run import random_nonce, wall_ms
from node.config import NodeConfig
from node.net.libp2p_net import Libp2pSettings, open_libp2p_network
from node.net.port import Verdict
from node.runtime import Node
from node.store import open_store
from protocol import Envelope, NodeKey, encode_envelope
from protocol.topics import CAPACITY_TOPIC


async def _start_node(stack: AsyncExitStack, data_dir: Path, bootstrap: tuple[str, ...]) -> Node:
    key = NodeKey.generate()
    config = NodeConfig(
        data_dir=data_dir,
        listen_addrs=("/ip4/127.0.0.1/tcp/0",),
        bootstrap=bootstrap,
        mdns=False,
        api_port=0,
        advert_interval_s=3600.0,
    )
    network = await stack.enter_async_context(open_libp2p_network(key, Libp2pSettings()))
    store = await stack.enter_async_context(open_store(config.db_path))
    node = Node(config, key, b"\x33" * 32, network, store, wall_ms=wall_ms, nonce=random_nonce)
    nursery = await stack.enter_async_context(trio.open_nursery())
    await nursery.start(node.run)
    stack.callback(node.stop)
    return node


def _knows_all(node: Node, others: int) -> bool:
    return len(node.capacity) == others


def _observe(node: Node, arrivals: dict[bytes, list[float]]) -> None:
    """Record when this node's gate accepts each envelope (by digest)."""
    admit = node.gate.admit_gossip

    def timed_admit(forwarder: str, origin: str, data: bytes) -> tuple[Verdict, Envelope | None]:
        verdict, envelope = admit(forwarder, origin, data)
        if envelope is not None:
            arrivals.setdefault(envelope.digest, []).append(time.perf_counter())
        return verdict, envelope

    node.gate.admit_gossip = timed_admit  # type: ignore[method-assign]


async def delivery(
    n_nodes: int, rounds: int, gap_ms: float, burst: bool = False
) -> dict[str, float]:
    arrivals: dict[bytes, list[float]] = {}
    sent: dict[bytes, float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        async with AsyncExitStack() as stack:
            first = await _start_node(stack, Path(tmp) / "n0", ())
            boot = tuple(first.network.listen_addrs())
            nodes = [first] + [
                await _start_node(stack, Path(tmp) / f"n{i}", boot) for i in range(1, n_nodes)
            ]
            t0 = time.perf_counter()
            with trio.fail_after(60):
                for node in nodes:
                    await node.wait_until(partial(_knows_all, node, n_nodes - 1))
            converge_s = time.perf_counter() - t0
            await trio.sleep(SETTLE_S)  # let the start-up adverts drain first
            for node in nodes:
                _observe(node, arrivals)
            for _ in range(rounds):
                for node in nodes:
                    data = encode_envelope(
                        node.key, node.make_advert(), nonce=random_nonce(), now_ms=wall_ms()
                    )
                    sent[hashlib.sha256(data).digest()] = time.perf_counter()
                    await node.network.publish(CAPACITY_TOPIC, data)
                    # Staggered like real, unsynchronised nodes (--burst: all at once).
                    if not burst:
                        await trio.sleep(gap_ms / 1000 / n_nodes)
                if burst:
                    await trio.sleep(gap_ms / 1000)
            expected = len(sent) * (n_nodes - 1)
            with trio.move_on_after(10):  # let stragglers land; stop early when complete
                while sum(len(arrivals.get(d, [])) for d in sent) < expected:
                    await trio.sleep(0.05)
            links = sum(len(n.network.connected_peers()) for n in nodes) / n_nodes
    latencies_ms = sorted((t - sent[d]) * 1000 for d in sent for t in arrivals.get(d, []))
    q = statistics.quantiles(latencies_ms, n=100) if len(latencies_ms) > 1 else [0.0] * 99
    return {
        "nodes": n_nodes,
        "adverts": len(sent),
        "delivered": len(latencies_ms),
        "expected": expected,
        "delivery_pct": 100.0 * len(latencies_ms) / expected,
        "latency_p50_ms": q[49],
        "latency_p90_ms": q[89],
        "latency_p99_ms": q[98],
        "latency_max_ms": latencies_ms[-1] if latencies_ms else 0.0,
        "converge_s": converge_s,
        "mean_connections": links,
    }


def _spawn(
    data_dir: Path, *args: str, env: dict[str, str] | None = None
) -> subprocess.Popen[bytes]:
    """Start ``pictor node run`` (initialising ``data_dir`` first if needed)."""
    from node.cli.init_cmd import init

    if not (data_dir / "node.key").exists():
        init(data_dir)
    command = [
        sys.executable,
        "-c",
        "from node.cli.node_cmd import app; app(prog_name='pictor node')",
        "run",
        "--data-dir",
        str(data_dir),
        "--api-port",
        "0",
        "--no-mdns",
        "--listen",
        "/ip4/127.0.0.1/tcp/0",
        *args,
    ]
    return subprocess.Popen(
        command,
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        env={**os.environ, **(env or {})},
    )


def _ready(process: subprocess.Popen[bytes]) -> dict[str, Any]:
    assert process.stdout is not None
    return dict(json.loads(process.stdout.readline()))


def processes(n_nodes: int, run_s: float, advert_s: float) -> dict[str, float]:
    """N ``pictor node run`` processes advertising every ``advert_s``; hop
    latency from the adverts' own timestamps vs. the receivers' clocks (one
    host, millisecond resolution), sampled through each node's API."""
    env = {"PICTOR_ADVERT_INTERVAL_S": str(advert_s)}
    with tempfile.TemporaryDirectory() as tmp:
        procs = [_spawn(Path(tmp) / "p0", env=env)]
        try:
            first = _ready(procs[0])
            boot = first["addrs"][0]
            procs += [
                _spawn(Path(tmp) / f"p{i}", "--bootstrap", boot, env=env) for i in range(1, n_nodes)
            ]
            readies = [first] + [_ready(p) for p in procs[1:]]
            clients = []
            for i, ready in enumerate(readies):
                token = (Path(tmp) / f"p{i}" / "api.token").read_text().strip()
                clients.append(
                    httpx.Client(
                        base_url=ready["api"],
                        timeout=60,
                        headers={"Authorization": f"Bearer {token}"},
                    )
                )
            t0 = time.perf_counter()
            for client in clients:
                client.get("/v1/network", params={"min_peers": n_nodes - 1, "wait_s": 60})
            converge_s = time.perf_counter() - t0
            time.sleep(SETTLE_S)  # let the start-up adverts drain first
            start_ms = time.time_ns() // 1_000_000
            samples: dict[tuple[str, str, int], int] = {}
            deadline = time.perf_counter() + run_s
            while time.perf_counter() < deadline:
                for i, client in enumerate(clients):
                    for advert in client.get("/v1/network").json():
                        if advert["advert_timestamp_ms"] < start_ms:
                            continue
                        key = (str(i), advert["peer_id"], advert["advert_timestamp_ms"])
                        samples[key] = advert["received_ms"] - advert["advert_timestamp_ms"]
                time.sleep(advert_s / 4)
            rss_mib = sum(psutil.Process(p.pid).memory_info().rss for p in procs) / 2**20 / n_nodes
        finally:
            for process in procs:
                process.terminate()
            for process in procs:
                process.wait(timeout=30)
    latencies = sorted(samples.values())
    q = statistics.quantiles(latencies, n=100)
    return {
        "nodes": n_nodes,
        "samples": len(latencies),
        "converge_s": converge_s,
        "hop_p50_ms": q[49],
        "hop_p90_ms": q[89],
        "hop_p99_ms": q[98],
        "hop_max_ms": latencies[-1],
        "rss_mib_per_node": rss_mib,
    }


def idle_cost(idle_s: float) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        process = _spawn(Path(tmp) / "idle")
        try:
            _ready(process)
            proc = psutil.Process(process.pid)
            cpu0 = sum(proc.cpu_times()[:2])
            time.sleep(idle_s)
            cpu_s = sum(proc.cpu_times()[:2]) - cpu0
            rss_mib = proc.memory_info().rss / 2**20
        finally:
            process.terminate()
            process.wait(timeout=20)
    return {"idle_s": idle_s, "rss_mib": rss_mib, "cpu_s_per_min": cpu_s * 60 / idle_s}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--nodes", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--gap-ms", type=float, default=2000.0)
    parser.add_argument("--idle-s", type=float, default=30.0)
    parser.add_argument("--burst", action="store_true", help="all nodes publish at once")
    parser.add_argument("--process-advert-s", type=float, default=5.0)
    parser.add_argument(
        "--process-s", type=float, default=30.0, help="seconds of the N-process run (0 skips it)"
    )
    args = parser.parse_args()
    result = trio.run(delivery, args.nodes, args.rounds, args.gap_ms, args.burst)
    print(
        f"delivery   {result['delivered']}/{result['expected']} = {result['delivery_pct']:.2f} % "
        f"({result['adverts']} adverts, {result['nodes']} nodes, "
        f"{result['mean_connections']:.1f} connections/node, converged in {result['converge_s']:.2f} s)"
    )
    print(
        f"latency    p50 {result['latency_p50_ms']:.1f} ms  p90 {result['latency_p90_ms']:.1f} ms  "
        f"p99 {result['latency_p99_ms']:.1f} ms  max {result['latency_max_ms']:.1f} ms "
        "(publish -> accepted by the receiver's gate, any number of hops)"
    )
    procs = (
        processes(args.nodes, args.process_s, advert_s=args.process_advert_s)
        if args.process_s > 0
        else None
    )
    if procs:
        print(
            f"processes  {procs['nodes']} `pictor node run`, adverts every {args.process_advert_s:g} s, "
            f"{procs['samples']} samples: p50 {procs['hop_p50_ms']:.0f} ms  "
            f"p90 {procs['hop_p90_ms']:.0f} ms  p99 {procs['hop_p99_ms']:.0f} ms  "
            f"max {procs['hop_max_ms']:.0f} ms (ms clock), RSS {procs['rss_mib_per_node']:.0f} MiB/node"
        )
    if args.idle_s > 0:
        idle = idle_cost(args.idle_s)
        print(
            f"idle node  RSS {idle['rss_mib']:.0f} MiB, CPU {idle['cpu_s_per_min']:.2f} s per minute "
            f"(measured over {idle['idle_s']:.0f} s)"
        )
    print(
        json.dumps(
            {"delivery": result, "processes": procs, "idle": idle if args.idle_s > 0 else None}
        )
    )


if __name__ == "__main__":
    main()

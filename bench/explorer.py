"""Explorer web: requests/s and p99 latency under a loopback load generator.

    python bench/explorer.py [--seconds 10] [--clients 4] [--rounds 5] [--nodes 10000] [--frames 100000]

Builds an index of ``--nodes`` online nodes (1–2 GPUs each) and ``--frames``
frames (jobs of 100 frames; a third rendered, a third verified, a deposit per
job on chain), written directly into SQLite. The explorer's web app runs
in a separate process (hypercorn, trio worker); ``--clients`` threads with
keep-alive httpx clients hit each route for ``--seconds``, in interleaved
rounds so that background load on a shared machine affects every route alike.
The baseline in the same run is ``/healthz``: the same stack without the
index, i.e. the floor that the framework and the load generator set.
"""

from __future__ import annotations

import argparse
import json
import random
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]
sys.path.insert(0, str(_HERE.parent))

import httpx
import trio
from rich.console import Console
from rich.table import Table

from explorer.indexer.db import Tx, open_index
from explorer.indexer.schema import wei_key
from protocol import NodeKey

GPU_MODELS = ("NVIDIA H100", "RTX 4090", "RTX 3090", "A100", "L40S", "RTX 4080")
FRAMES_PER_JOB = 100


def _nodes(tx: Tx, count: int, now_ms: int, rng: random.Random) -> list[str]:
    ids = []
    for i in range(count):
        node = NodeKey(i.to_bytes(32, "big")).node_id.text
        ids.append(node)
        gpus = [rng.choice(GPU_MODELS) for _ in range(rng.randint(1, 2))]
        seen_ms = now_ms - rng.randint(0, 30_000)
        tx.execute(
            "INSERT INTO nodes VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
            (node, f"0x{i:040x}", "worker", "blender-3.4.1", json.dumps([{"model": g, "vram_mib": 24576} for g in gpus]),
             rng.randint(500, 5000), wei_key(rng.randint(10**11, 10**13)), "0", 1, "[]",
             now_ms - 86_400_000, seen_ms, 2880),
        )  # fmt: skip
        for slot, model in enumerate(gpus):
            tx.execute(
                "INSERT INTO node_gpus VALUES (?,?,?,?,?)", (node, slot, model, 24576, now_ms)
            )
    return ids


def _jobs(tx: Tx, frames: int, workers: list[str], now_ms: int, rng: random.Random) -> str:
    job_ids = []
    for j in range(frames // FRAMES_PER_JOB):
        job = f"{j:064x}"
        job_ids.append(job)
        tx.execute(
            "INSERT INTO jobs VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
            (job, workers[j % len(workers)], f"0x{j:040x}", "bafk", "blender-3.4.1", "cycles",
             "1920x1080", 128, FRAMES_PER_JOB, 10, "1000", str(10**18), now_ms + 3_600_000, "normal",
             "", "", now_ms - 600_000, now_ms - 600_000, None),
        )  # fmt: skip
        tx.execute(
            "INSERT INTO chain_events VALUES (?,?,?,?,?,?,?,?)",
            (j, 0, "Deposited", f"0x{j:064x}", job, f"0x{j:040x}", str(10**18), "{}"),
        )
        for frame in range(FRAMES_PER_JOB):
            worker = rng.choice(workers)
            state = ("open", "rendered", "accepted")[frame % 3]
            done_ms = now_ms - rng.randint(0, 7_200_000) if state != "open" else None
            tx.execute(
                "INSERT INTO frames VALUES (?,?,?,?,?,?,?,?,?)",
                (job, frame, state, worker if done_ms else None, None, None, 3000 if done_ms else None,
                 done_ms, now_ms),
            )  # fmt: skip
            if state == "accepted":
                tx.execute(
                    "INSERT INTO verdicts VALUES (?,?,?,?,?,?,?,?)",
                    (f"{j:032x}{frame:032x}", job, frame, worker, workers[0], 1, 4, done_ms),
                )
    return job_ids[len(job_ids) // 2]


async def build_index(path: Path, nodes: int, frames: int) -> str:
    """Write the synthetic index; return the id of a job in the middle of it."""
    rng, now_ms = random.Random(7), time.time_ns() // 1_000_000
    async with open_index(str(path), readers=1) as db:
        workers = await db.write(lambda tx: _nodes(tx, nodes, now_ms, rng))
        job = await db.write(lambda tx: _jobs(tx, frames, workers, now_ms, rng))
        await db.write(lambda tx: tx.execute("ANALYZE"))
    return job


async def serve(path: str, port: int) -> None:
    from explorer.service import serve_web, wall_ms
    from explorer.web.app import create_app
    from explorer.web.reader import WebSettings

    async with open_index(path) as db:
        app = create_app(db, WebSettings(), wall_ms)
        await serve_web(app, "127.0.0.1", port, trio.Event())


def pct(sorted_s: list[float], q: float) -> float:
    """The q-quantile of sorted seconds, in milliseconds."""
    return (
        sorted_s[min(len(sorted_s) - 1, int(q * len(sorted_s)))] * 1000
        if sorted_s
        else float("nan")
    )


def load(base: str, path: str, clients: int, seconds: float) -> tuple[list[float], int]:
    """Latencies (s) and non-200 count for ``path`` under ``clients`` threads for ``seconds``."""
    latencies: list[float] = []
    errors = [0]
    lock = threading.Lock()
    deadline = time.perf_counter() + seconds

    def client() -> None:
        mine, bad = [], 0
        with httpx.Client(base_url=base, timeout=10) as http:
            http.get(path)  # warm the connection
            while time.perf_counter() < deadline:
                t0 = time.perf_counter()
                status = http.get(path).status_code
                mine.append(time.perf_counter() - t0)
                bad += status != 200
        with lock:
            latencies.extend(mine)
            errors[0] += bad

    threads = [threading.Thread(target=client) for _ in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return latencies, errors[0]


async def in_process(
    path: str, routes: list[tuple[str, str]], count: int
) -> dict[str, list[float]]:
    """Sequential latencies (s) per route through ASGI, no sockets: the server-side cost."""
    from explorer.service import wall_ms
    from explorer.web.app import create_app
    from explorer.web.reader import WebSettings

    out: dict[str, list[float]] = {}
    async with open_index(path) as db:
        # No aggregate cache here: every request computes its page from the index.
        app = create_app(db, WebSettings(aggregate_ttl_s=0), wall_ms)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://bench") as http:
            for _, route in routes:
                await http.get(route)
                times = []
                for _ in range(count):
                    t0 = time.perf_counter()
                    (await http.get(route)).raise_for_status()
                    times.append(time.perf_counter() - t0)
                out[route] = sorted(times)
    return out


def wait_up(base: str, timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if httpx.get(base + "/healthz", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            time.sleep(0.2)
    raise SystemExit("explorer did not start")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=10.0, help="per route, all rounds")
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds per route")
    parser.add_argument("--nodes", type=int, default=10_000)
    parser.add_argument("--frames", type=int, default=100_000)
    parser.add_argument("--port", type=int, default=18_431)
    parser.add_argument("--serve", metavar="DB", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        trio.run(serve, args.serve, args.port)
        return
    console = Console()
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "bench.db"
        t0 = time.perf_counter()
        job = trio.run(build_index, db, args.nodes, args.frames)
        console.print(
            f"index: {args.nodes:,} nodes, {args.frames:,} frames in {time.perf_counter() - t0:.1f} s"
        )
        server = subprocess.Popen(
            [sys.executable, __file__, "--serve", str(db), "--port", str(args.port)]
        )
        base = f"http://127.0.0.1:{args.port}"
        try:
            wait_up(base)
            table = Table(
                title=f"explorer web, {args.clients} clients × {args.seconds:g} s, loopback"
            )
            for col in ("route", "req/s", "p50 ms", "p99 ms", "errors"):
                table.add_column(col, justify="right" if col != "route" else "left")
            routes = [("/healthz (baseline)", "/healthz"), ("overview page", "/"),
                      ("overview JSON", "/api/v1/overview"), ("job page", f"/jobs/{job}"),
                      ("job JSON", f"/api/v1/jobs/{job}"), ("node page", "/nodes/" + NodeKey(bytes(32)).node_id.text)]  # fmt: skip
            # Interleaved rounds, so background load on a shared machine hits every route alike.
            totals: dict[str, list[float]] = {path: [] for _, path in routes}
            errors: dict[str, int] = dict.fromkeys(totals, 0)
            for _ in range(args.rounds):
                for _, path in routes:
                    latencies, bad = load(base, path, args.clients, args.seconds / args.rounds)
                    totals[path] += latencies
                    errors[path] += bad
            for name, path in routes:
                lat = sorted(totals[path])
                rps = len(lat) / args.seconds
                table.add_row(
                    name,
                    f"{rps:,.0f}",
                    f"{pct(lat, 0.5):.1f}",
                    f"{pct(lat, 0.99):.1f}",
                    str(errors[path]),
                )
            console.print(table)
            server.terminate()
            server.wait(timeout=10)
            inner = trio.run(in_process, str(db), routes, 50)
            table = Table(
                title="server-side: one request at a time through ASGI, no cache, no socket"
            )
            for col in ("route", "p50 ms", "p99 ms"):
                table.add_column(col, justify="right" if col != "route" else "left")
            for name, path in routes:
                table.add_row(name, f"{pct(inner[path], 0.5):.1f}", f"{pct(inner[path], 0.99):.1f}")
            console.print(table)
        finally:
            server.terminate()
            server.wait(timeout=10)


if __name__ == "__main__":
    main()

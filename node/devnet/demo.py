"""The end-to-end demo: devnet up, render the reference animation, settle, tear down.

Used by ``pictor demo`` and ``bench/overhead.py``. Returns a summary dict (also
written as ``summary.json`` next to the frames).
"""

from __future__ import annotations

import json
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from node.cli.names import named, short_peer
from node.devnet.network import DevnetConfig, LocalDevnet
from node.devnet.scene import build_scene

PAYMENT_TIMEOUT_S = 120.0


@dataclass(frozen=True)
class DemoConfig:
    out_dir: Path
    frames: int = 8
    resolution: tuple[int, int] = (160, 120)
    samples: int = 16
    workers: int = 3
    checkers: int = 1
    max_price_wei_per_frame: int = 2 * 10**17
    timeout_s: float = 900.0


def run_demo(config: DemoConfig,
             on_change: Callable[[dict[str, Any], dict[str, str]], None] | None = None,
             on_stage: Callable[[str], None] = lambda _: None) -> dict[str, Any]:  # fmt: skip
    started_s = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="pictor-demo-") as tmp:
        base = Path(tmp)
        on_stage(f"generating a {config.frames}-frame scene")
        scene = build_scene(base / "demo.blend", config.frames)
        on_stage(f"starting anvil and {1 + config.workers + config.checkers} nodes")
        net_config = DevnetConfig(workers=config.workers, checkers=config.checkers)
        with LocalDevnet(base / "net", net_config) as net:
            client = net.api("client")
            peers = config.workers + config.checkers
            client.wait_until("/v1/network", lambda v: len(v) >= peers, 60)
            on_stage("submitting the job")
            submitted_s = time.monotonic()
            job = client.post("/v1/client/jobs", {
                "scene": str(scene), "frames": list(range(1, config.frames + 1)),
                "max_price_wei_per_frame": config.max_price_wei_per_frame,
                "out_dir": str(config.out_dir.resolve()), "resolution": list(config.resolution),
                "samples": config.samples,
            })  # fmt: skip
            node_ids = {n.name: n.node_id for n in net.nodes.values()}
            names = display_names(node_ids)
            watch = (lambda j: on_change(j, names)) if on_change else None
            final = client.wait_job(job["job_id"], config.timeout_s, watch)
            job_s = time.monotonic() - submitted_s
            on_stage("waiting for workers and checkers to redeem their vouchers on chain")
            payees = {n: net.api(n) for n in net.nodes if n != "client"}
            paid = wait_paid(payees, final["spent_wei"], PAYMENT_TIMEOUT_S)
            own_txs = client.get(f"/v1/client/jobs/{final['job_id']}/transactions")
            summary = build_summary(final, own_txs, paid, node_ids, job_s,
                                    time.monotonic() - started_s)  # fmt: skip
    (config.out_dir / "summary.json").write_text(json.dumps(summary, indent=2))
    return summary


def wait_paid(payees: dict[str, Any], spent_wei: int, timeout_s: float) -> dict[str, Any]:
    """Poll the payees until what they redeemed on chain adds up to what the job spent."""
    deadline = time.monotonic() + timeout_s
    while True:
        roles = {name: api.get("/v1/roles") for name, api in payees.items()}
        paid = sum(r["payee"]["paid_wei"] for r in roles.values() if r["payee"])
        if paid >= spent_wei or time.monotonic() > deadline:
            return roles
        time.sleep(0.5)


def display_names(node_ids: dict[str, str]) -> dict[str, str]:
    """Short peer id -> the demo's one name for that node (``worker1 …3Xk9aBcD``)."""
    return {short_peer(peer): named(role_name, peer) for role_name, peer in node_ids.items()}


def build_summary(job: dict[str, Any], client_txs: list[dict[str, Any]],
                  payees: dict[str, Any], node_ids: dict[str, str], job_s: float,
                  total_s: float) -> dict[str, Any]:  # fmt: skip
    """The demo's summary: each node named once, as ``worker1 …3Xk9aBcD`` (role, short peer
    id), with the full peer ids under ``peer_ids``; the client's transactions are this job's."""
    names = display_names(node_ids)

    def name(node: str) -> str:
        return names.get(short_peer(node), short_peer(node))

    by_role = {role_name: named(role_name, peer) for role_name, peer in node_ids.items()}
    txs = [{**t, "node": by_role.get("client", "client")} for t in client_txs]
    for role_name, roles in payees.items():
        txs += [{**t, "node": by_role.get(role_name, role_name)} for t in roles["transactions"]]
    redeems = [t for t in txs if t["what"].startswith("redeem")]
    frames = max(1, job["frames_accepted"])
    return {
        "job_id": job["job_id"],
        "outcome": job["outcome"],
        "frames_accepted": job["frames_accepted"],
        "frames_total": job["frames_total"],
        "job_wall_s": round(job_s, 2),
        "demo_wall_s": round(total_s, 2),
        "spent_wei": job["spent_wei"],
        "budget_wei": job["budget_wei"],
        "paid_on_chain_wei": sum(r["payee"]["paid_wei"] for r in payees.values() if r["payee"]),
        "workers": sorted(name(w) for w in job["workers"]),
        "blocklisted": sorted(name(w) for w in job["blocklisted"]),
        "reassigned": max(0, job["awards"] - job["frames_accepted"]),
        "rendered_by": {by_role.get(n, n): r["worker"]["rendered"]
                        for n, r in payees.items() if r["worker"]},
        "checked_by": {by_role.get(n, n): r["checker"]["checked"]
                       for n, r in payees.items() if r["checker"]},
        "peer_ids": {by_role[n]: peer for n, peer in node_ids.items()},
        "transactions": txs,
        "redeem_gas_per_frame": round(sum(t["gas"] for t in redeems) / frames),
        "out_dir": job["out_dir"],
    }

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


def run_demo(config: DemoConfig, on_change: Callable[[dict[str, Any]], None] | None = None,
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
            final = client.wait_job(job["job_id"], config.timeout_s, on_change)
            job_s = time.monotonic() - submitted_s
            on_stage("waiting for workers and checkers to redeem their vouchers on chain")
            payees = {n: net.api(n) for n in net.nodes if n != "client"}
            paid = wait_paid(payees, final["spent_wei"], PAYMENT_TIMEOUT_S)
            summary = build_summary(final, client.get("/v1/roles"), paid, job_s,
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


def build_summary(job: dict[str, Any], client_roles: dict[str, Any], payees: dict[str, Any],
                  job_s: float, total_s: float) -> dict[str, Any]:  # fmt: skip
    txs = list(client_roles["transactions"])
    for name, roles in payees.items():
        txs += [{**t, "node": name} for t in roles["transactions"]]
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
        "workers": job["workers"],
        "blocklisted": job["blocklisted"],
        "reassigned": max(0, job["awards"] - job["frames_accepted"]),
        "rendered_by": {n: r["worker"]["rendered"] for n, r in payees.items() if r["worker"]},
        "checked_by": {n: r["checker"]["checked"] for n, r in payees.items() if r["checker"]},
        "transactions": txs,
        "redeem_gas_per_frame": round(sum(t["gas"] for t in redeems) / frames),
        "out_dir": job["out_dir"],
    }

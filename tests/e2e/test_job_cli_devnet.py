"""The documented devnet recipe, as a newcomer types it: `pictor job submit` with no
--max-price on a devnet whose workers ask 0.1 ETH a frame (issue 19 item 1)."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest

from node.devnet.network import node_env, pictor_argv
from tests.e2e.conftest import JOB_TIMEOUT_S, needs_stack

pytestmark = [pytest.mark.slow, needs_stack]


def pictor(*args: str, timeout_s: float = JOB_TIMEOUT_S) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*pictor_argv(), *args], capture_output=True, text=True,
                          timeout=timeout_s, env=node_env(), stdin=subprocess.DEVNULL,
                          check=False)  # fmt: skip


def test_devnet_recipe_submits_at_a_proposed_price_and_finishes(
    devnet_factory: Any, scene: Path, tmp_path: Path
) -> None:
    net = devnet_factory(workers=1, checkers=1)
    client_dir = str(net.nodes["client"].data_dir)
    common = ["--resolution", "64x48", "--samples", "8", "--data-dir", client_dir]
    # Below every ask: submitted (the user insisted), and `job status` says why it stalls.
    low = pictor("job", "submit", str(scene), "--frames", "1", "--max-price", "0.02eth",
                 "--yes", "--no-wait", "--out", str(tmp_path / "low"), *common)  # fmt: skip
    assert low.returncode == 0, low.stdout + low.stderr
    assert "cheapest ask 0.1 ETH" in low.stdout
    low_id = low.stdout.split("submitted job ")[1].split()[0]
    status = pictor("job", "status", low_id[:8], "--data-dir", client_dir)
    assert status.returncode == 0, status.stdout + status.stderr
    assert "every ask is above your max price 0.02 ETH per frame: cheapest ask 0.1 ETH" in (
        status.stdout
    )
    # The recipe itself: no --max-price; without a terminal it needs --yes, and says so.
    refused = pictor("job", "submit", str(scene), "--frames", "1-2", *common)
    assert refused.returncode == 1 and "--yes" in refused.stderr
    done = pictor("job", "submit", str(scene), "--frames", "1-2", "--yes",
                  "--out", str(tmp_path / "out"), *common)  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert "max      0.11 ETH per frame (proposed" in done.stdout
    job_id = done.stdout.split("submitted job ")[1].split()[0]
    assert len(list((tmp_path / "out").glob("frame_*.png"))) == 2
    # The summary lists this job's deposit, not the first job's.
    txs = net.api("client").get(f"/v1/client/jobs/{job_id[:12]}/transactions")
    assert txs[0]["what"] == "deposit"  # then the lanes that secured the awards
    assert all(t["what"].startswith("open_lanes") for t in txs[1:]) and len(txs) >= 2
    low_txs = net.api("client").get(f"/v1/client/jobs/{low_id}/transactions")
    assert [t["what"] for t in low_txs] == ["deposit"] and low_txs[0]["tx"] != txs[0]["tx"]
    assert txs[0]["tx"] in done.stdout and low_txs[0]["tx"] not in done.stdout
    cancel = pictor("job", "cancel", low_id[:10], "--data-dir", client_dir)
    assert cancel.returncode == 0, cancel.stdout + cancel.stderr

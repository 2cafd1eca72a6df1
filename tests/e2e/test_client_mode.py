"""Client mode end to end: a job renders, is verified, paid on chain; failures recover."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from eth_utils import to_canonical_address

from ledger.client import EscrowClient
from ledger.tx import TxSender
from protocol.identity import NodeId
from tests.e2e.conftest import JOB_TIMEOUT_S, needs_stack, submit, wait_paid

pytestmark = [pytest.mark.slow, needs_stack]


def test_job_completes_verified_and_paid_on_chain(
    devnet_factory: Any, scene: Path, tmp_path: Path
) -> None:
    net = devnet_factory(workers=2, checkers=1)
    client = net.api("client")
    out = tmp_path / "out"
    job_id = submit(client, scene, out, 4)
    job = client.wait_job(job_id, JOB_TIMEOUT_S)
    assert job["outcome"] == "completed"
    assert sorted(p.name for p in out.glob("*.png")) == [f"frame_{i:04d}.png" for i in (1, 2, 3, 4)]
    payees = ["worker1", "worker2", "checker1"]
    wait_paid(net, payees, job["spent_wei"])
    assert net.api("checker1").get("/v1/roles")["checker"]["checked"] >= 4
    # Both fresh workers were challenged (trial leases are on by default): real Blender
    # renders the quarter-size challenge and the client's one-tile re-render matches it.
    roles = client.wait_until("/v1/roles", lambda r: r["challenges"]["judged"] >= 2, 120)
    assert roles["challenges"]["passed"] == 2 and roles["challenges"]["caught"] == 0
    # The public work record reached another node over real gossip: it knows the
    # workers' accepted frames without having asked for them (issue 16).
    adverts = net.api("checker1").wait_until(
        "/v1/network", lambda v: sum(e["record"]["accepted"] for e in v) >= 4, 30
    )
    assert sum(e["record"]["rejected"] for e in adverts) == 0
    # The chain agrees: what the escrow paid each payee is what the job owed it.
    assert net.chain is not None and net.info is not None
    escrow = EscrowClient(TxSender(net.chain.w3, net.chain.funded_keys[0]), net.info.escrow)
    requester = to_canonical_address(client.get("/v1/roles")["payment_address"])
    on_chain = 0
    for name in payees:
        address = to_canonical_address(net.api(name).get("/v1/roles")["payment_address"])
        on_chain += escrow.paid_wei(bytes.fromhex(job_id), address, requester)
        # every payee was paid out of its own lane, funded before its work
        assert escrow.lane(bytes.fromhex(job_id), address, requester).total_wei > 0
    assert on_chain == job["spent_wei"] > 0
    remaining = escrow.job(bytes.fromhex(job_id), requester).remaining_wei
    assert remaining == job["budget_wei"] - job["spent_wei"]


def test_worker_killed_mid_frame_lease_expires_and_job_completes(
    devnet_factory: Any, scene: Path, tmp_path: Path
) -> None:
    # worker1 hangs in its first frame (``stall``), so the render in flight that the
    # test waits for stays there until the kill: a real frame of this tiny scene can
    # start and finish between two polls (it did, one CI run in three).
    net = devnet_factory(workers=2, checkers=1, lease_s=6.0, adversaries={"worker1": "stall"})
    client = net.api("client")
    job_id = submit(client, scene, tmp_path / "out", 4)
    net.api("worker1").wait_until("/v1/roles", lambda r: r["worker"]["rendering"] > 0, 60)
    net.kill("worker1")  # a real SIGKILL while it holds the lease
    job = client.wait_job(job_id, JOB_TIMEOUT_S)
    assert job["outcome"] == "completed"
    assert job["awards"] > job["frames_accepted"]  # the killed worker's frame was re-awarded
    assert len(list((tmp_path / "out").glob("*.png"))) == 4
    wait_paid(net, ["worker2", "checker1"], job["spent_wei"] - worker1_earned(job, net))


def worker1_earned(job: dict[str, Any], net: Any) -> int:
    """What the job owes worker1 for frames it finished before it was killed (not redeemable:
    it is down)."""
    me = NodeId.from_text(net.nodes["worker1"].node_id).raw.hex()
    return sum(int(i["price_wei"]) for i in job["accepted"].values() if i["worker"] == me)


def test_cheating_worker_is_caught_unpaid_and_blocklisted(
    devnet_factory: Any, scene: Path, tmp_path: Path
) -> None:
    net = devnet_factory(workers=2, checkers=1, adversaries={"worker1": "wrong-seed"})
    client = net.api("client")
    job_id = submit(client, scene, tmp_path / "out", 4)
    job = client.wait_job(job_id, JOB_TIMEOUT_S)
    assert job["outcome"] == "completed"
    cheat = net.api("worker1").get("/v1/roles")
    if cheat["worker"]["rendered"] == 0:
        pytest.skip("the honest worker took every frame; nothing to catch this run")
    assert len(job["blocklisted"]) == 1
    assert all(info["worker"] == job["workers"][0] for info in job["accepted"].values())
    wait_paid(net, ["worker2", "checker1"], job["spent_wei"])
    assert net.api("worker1").get("/v1/roles")["payee"]["paid_wei"] == 0


def test_cancel_refunds_the_unspent_budget_after_the_grace_period(
    devnet_factory: Any, scene: Path, tmp_path: Path
) -> None:
    net = devnet_factory(workers=1, checkers=1)
    client = net.api("client")
    job_id = submit(client, scene, tmp_path / "out", 6, deadline_s=600)
    job = client.post(f"/v1/client/jobs/{job_id}/cancel")
    job = client.wait_job(job_id, JOB_TIMEOUT_S)
    assert job["outcome"] == "cancelled" and not job["refunded"]
    assert net.chain is not None and net.info is not None
    escrow = EscrowClient(TxSender(net.chain.w3, net.chain.funded_keys[0]), net.info.escrow)
    # The contract refunds only after deadline + grace, on its own clock: move it there.
    net.chain.advance_time(600 + escrow.grace_s() + 60)
    job = client.wait_until(f"/v1/client/jobs/{job_id}", lambda j: j["refunded"], 60)
    requester = to_canonical_address(client.get("/v1/roles")["payment_address"])
    state = escrow.job(bytes.fromhex(job_id), requester)
    assert state.refunded and state.remaining_wei == 0
    assert job["refund_wei"] == job["budget_wei"] - job["spent_wei"]
    wait_paid(net, ["worker1", "checker1"], job["spent_wei"])

"""Issue 13, problem 1 end to end: a requester tries the clawback; the worker is paid.

The client node runs the hidden adversary mode "clawback" (node/roles/
adversary.py): after the first accepted frame it moves every unallocated wei
of the job into a lane of its own second address, signs that address a
voucher for all the escrow still holds and redeems it, before it sends any
voucher. On the old escrow the worker's vouchers then reverted "over budget";
here, on anvil with real processes and Blender, the worker and the checker
are paid in full from the lanes opened before their work.

One frame: a check the clawback requester asks after the clawback finds its
checker's lane unfunded (the escrow holds nothing unallocated any more), and the
checker refuses it, so a job's frames whose checks went out after the attack stall
unchecked, as a free rider's would (docs/SIMULATIONS.md, "Clawback"). With three
frames this test relied on all three checks being asked before the first verdict;
since a requester keeps one request at a checker (docs/MARKET.md, "Checks wait for a
checker with room") they are asked one after the other.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from eth_utils.address import to_canonical_address

from ledger.client import EscrowClient
from ledger.tx import TxSender
from node.keyfile import read_payment_key_file
from node.roles.adversary import sock_puppet
from tests.e2e.conftest import JOB_TIMEOUT_S, needs_stack, submit, wait_paid

pytestmark = [pytest.mark.slow, needs_stack]


def test_clawback_leaves_the_honest_worker_paid_in_full_on_chain(
    devnet_factory: Any, scene: Path, tmp_path: Path
) -> None:
    net = devnet_factory(workers=1, checkers=1, adversaries={"client": "clawback"})
    client = net.api("client")
    job_id = submit(client, scene, tmp_path / "out", 1)
    job = client.wait_job(job_id, JOB_TIMEOUT_S)
    assert job["outcome"] == "completed"
    wait_paid(net, ["worker1", "checker1"], job["spent_wei"])
    assert net.chain is not None and net.info is not None
    escrow = EscrowClient(TxSender(net.chain.w3, net.chain.funded_keys[0]), net.info.escrow)
    requester = to_canonical_address(client.get("/v1/roles")["payment_address"])
    sock = sock_puppet(read_payment_key_file(net.nodes["client"].data_dir / "payment.key"))
    taken = escrow.paid_wei(bytes.fromhex(job_id), sock, requester)
    assert taken > 0  # the attack ran: it took what no lane held
    worker = to_canonical_address(net.api("worker1").get("/v1/roles")["payment_address"])
    earned = sum(int(i["price_wei"]) for i in job["accepted"].values())
    assert escrow.paid_wei(bytes.fromhex(job_id), worker, requester) == earned > 0
    assert taken + job["spent_wei"] <= job["budget_wei"]

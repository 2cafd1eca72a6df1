"""Issue 17 across processes: a lazy checker's signed pass of a plant costs it its stake.

``checker1`` runs the test-only adversary ``lazy`` (node/roles/adversary.py): it
answers every check "passed" without rendering, and signs the pass (``Verdict.
pass_sig``), as a real lazy checker must for its verdict to be taken. The client
plants at every check (``plant_rate_ppm`` 1,000,000): a perturbed copy of a
frame goes to a checker other than the real check's (node/roles/plants.py).
When the lazy checker passes one, the client strikes it and, on real
processes, anvil and Blender, claims its stake: the two other staked checkers
re-render the pass's own cells of the plant (Blender), find them wrong and sign;
``claim_pass`` locks the cap of the lazy checker's stake on chain. Once the
challenge window has passed on the chain's clock, the claim executes: the stake
is gone, the claimers are credited, and the job itself completed with every
frame accepted.
"""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path
from typing import Any

import pytest
from eth_utils import to_canonical_address

from ledger.client import CLAIM_EXECUTED, CLAIM_PENDING, EscrowClient
from ledger.tx import TxSender
from node.devnet.network import LocalDevnet
from node.roles.slasher import PASS, TABLES, Claim
from tests.e2e.conftest import JOB_TIMEOUT_S, needs_stack, submit

pytestmark = [pytest.mark.slow, needs_stack]
# Six frames, so the lazy checker surely gets a plant whatever the tie draws (it is the
# real checker of at most 2; tests/protocol/verification/test_choose_checker.py). With 4 it
# got none about one run in four, and no claim was made (CI of stop 26).
FRAMES = 6
CLAIM_TIMEOUT_S = 120.0  # the claimers' Blender re-renders and three transactions


def payment_address(net: LocalDevnet, name: str) -> bytes:
    return to_canonical_address(net.api(name).get("/v1/roles")["payment_address"])


def stored_pass_claims(net: LocalDevnet) -> list[Claim]:
    """The client's pass claims as its store keeps them (read-only)."""
    db = net.nodes["client"].data_dir / "node.sqlite3"
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
        rows = conn.execute(f"SELECT state, data FROM {TABLES[PASS]}").fetchall()
    return [Claim.unpack(state, bytes(data)) for state, data in rows]


def wait_claimed(net: LocalDevnet, accused: bytes) -> Claim:
    """Poll the client's store (bounded) until its claim on ``accused`` went out."""
    deadline = time.monotonic() + CLAIM_TIMEOUT_S
    while True:
        claims = [c for c in stored_pass_claims(net) if c.claim.worker == accused]
        if any(c.state == "claimed" for c in claims):
            return next(c for c in claims if c.state == "claimed")
        if time.monotonic() > deadline:
            raise TimeoutError(f"pass claims on the lazy checker: {[c.state for c in claims]}")
        time.sleep(0.5)


def test_a_lazy_checker_that_passes_a_plant_loses_its_stake(
    devnet_factory: Any, scene: Path, tmp_path: Path
) -> None:
    net = devnet_factory(workers=1, checkers=3, adversaries={"checker1": "lazy"},
                         node_settings={"client": {"plant_rate_ppm": 1_000_000}})  # fmt: skip
    client = net.api("client")
    job_id = submit(client, scene, tmp_path / "out", FRAMES)
    job = client.wait_job(job_id, JOB_TIMEOUT_S)
    assert job["outcome"] == "completed", job
    assert sorted(job["accepted"]) == [str(f) for f in range(1, FRAMES + 1)]

    assert net.chain is not None and net.info is not None
    outsider = EscrowClient(TxSender(net.chain.w3, net.chain.funded_keys[0]), net.info.escrow)
    lazy = payment_address(net, "checker1")
    honest = {payment_address(net, n) for n in ("checker2", "checker3")}
    staked_wei = outsider.checker_min_stake_wei()  # what every devnet checker staked
    cap_wei = outsider.slash_cap_wei()

    claim = wait_claimed(net, lazy)
    # What the nodes built is what the contract took: the claim holds the cap of the
    # lazy checker's stake, signed by honest checkers only, its pass published.
    assert claim.claim.amount_wei == cap_wei
    assert set(claim.claimers) <= honest and len(claim.claimers) >= outsider.fraud_terms().quorum
    state = outsider.claim(claim.claim.ref, lazy)
    assert (state.status, state.taken_wei) == (CLAIM_PENDING, cap_wei)
    assert outsider.stake_of(lazy).active_wei <= staked_wei - cap_wei
    assert outsider.claim_evidence(claim.claim.ref, lazy) is not None

    # Nobody answers a true claim; once the window has passed, anyone may execute it:
    # the claimers are credited out of the lazy checker's forfeit.
    credit_before = {a: outsider.credit_wei(a) for a in claim.claimers}
    net.chain.advance_time(outsider.challenge_s() + 60)
    outsider.send(outsider.calls.execute_slash(claim.claim, claim.claimers))
    assert outsider.claim(claim.claim.ref, lazy).status == CLAIM_EXECUTED
    gained = sum(outsider.credit_wei(a) - credit_before[a] for a in claim.claimers)
    assert 0 < gained <= cap_wei

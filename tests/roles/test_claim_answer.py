"""Issue 17: a false fraud claim is answered by the worker's node, which keeps its stake.

Real roles on the in-memory hub with the fake escrow (its claim_fraud and
answer_claim check the same signatures and rules the contract does, with
``ledger.fraud``). An honest worker delivers a frame; a colluding quorum of two
registered, staked checkers (keys of the test's own, no node behind them)
signs a false ``Fraud`` claim over the worker's signed result and opens it.
The worker's node sees the pending claim, asks the other checkers it knows to
re-check its result, gathers three ``Clean`` signatures (one more than the
claimers; a fourth checker signs too but is not registered, and is left out)
and answers within the window: the claim is cancelled, the worker's
stake is whole again, and the colluders lose what they locked.
"""

from __future__ import annotations

from pathlib import Path

import trio
from eth_account import Account

from ledger.client import CLAIM_ANSWERED, CLAIM_PENDING
from ledger.fraud import FraudClaim, order_signatures, result_ref, sign
from protocol.envelope import decode_envelope
from protocol.messages import CleanSignRequest, Result
from tests.roles.cluster import open_cluster

STAKE_WEI = 10**18


async def test_a_colluding_quorums_false_claim_is_answered(
    autojump_clock: trio.testing.MockClock, tmp_path: Path
) -> None:
    async with open_cluster(tmp_path) as cluster:
        escrow = cluster.escrow
        client = await cluster.add("client", "client")
        honest = await cluster.add("w1", "worker")
        escrow.stakes[honest.address] = STAKE_WEI
        checkers = []
        for i in range(1, 4):
            checkers.append(member := await cluster.add(f"c{i}", "checker"))
            escrow.register(member.address, STAKE_WEI)
        # Staked but not registered: it re-checks and signs, but the escrow would refuse an
        # answer with its signature, so the worker must leave it out.
        unregistered = await cluster.add("c4", "checker")
        escrow.stakes[unregistered.address] = STAKE_WEI
        colluders = [bytes(Account.create().key) for _ in range(2)]
        for key in colluders:
            escrow.register(bytes.fromhex(Account.from_key(key).address[2:]), STAKE_WEI)
        await cluster.settle("w1", 5)
        job_id = await cluster.submit("client", frames=1)
        job = client.live().requester.jobs[job_id]
        await job.done.wait()
        assert job.view.outcome == "completed"
        ((task_id, wire),) = job.results.items()
        result = decode_envelope(wire).message
        assert isinstance(result, Result) and result.result_sig is not None
        ref = result_ref(job.spec, job_id, task_id, result.frame, result.frame_cid)
        assert ref is not None

        # A stranger's re-check request about a result no claim names renders nothing.
        asked = CleanSignRequest(job_id, task_id, result.frame, honest.address, result.frame_cid)
        rechecks = checkers[0].live().checker.rechecks  # type: ignore[union-attr]
        await rechecks._recheck(honest.key.node_id.raw, asked)
        assert rechecks.rendered == 0 and rechecks.signed == 0

        # The colluders' false claim: any tiles, the cap, the worker's own result signature.
        claim = FraudClaim(ref, honest.address, b"\x07" * 32, escrow.terms.cap_wei)
        sigs = order_signatures(claim, [sign(claim, key) for key in colluders])
        escrow.claim_fraud(claim, result.result_sig, sigs)
        assert escrow.claims[(ref, honest.address)].status == CLAIM_PENDING
        assert escrow.stakes[honest.address] == STAKE_WEI - claim.amount_wei

        await escrow.wait_until(lambda: escrow.claims[(ref, honest.address)].status == CLAIM_ANSWERED)
        assert escrow.now_s() < escrow.claims[(ref, honest.address)].settle_at_s
        assert escrow.stakes[honest.address] == STAKE_WEI  # its stake is whole again
        for key in colluders:  # each colluder forfeits what it locked
            colluder = bytes.fromhex(Account.from_key(key).address[2:])
            assert escrow.stakes[colluder] == STAKE_WEI - claim.amount_wei
        assert escrow.credit[honest.address] >= claim.amount_wei  # half of both forfeits
        assert sum(c.live().checker.rechecks.signed for c in checkers) == 3  # type: ignore[union-attr]
        # one answer went out, and the escrow took it: the unregistered signer was left out
        assert [t.what for t in honest.chain.transactions].count("answer_claim") == 1  # type: ignore[union-attr]
        answerer = honest.live().worker.answerer  # type: ignore[union-attr]
        assert answerer.answered[(job_id, task_id)] == "answered"
        watch = honest.live().worker.claim_watch  # type: ignore[union-attr]
        await watch.wait_claim(job_id, task_id, "answered")

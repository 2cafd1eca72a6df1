"""``ChainLink``, the node's real ``ports.Chain``, against the escrow on anvil.

The role tests use the in-memory escrow; this is the proof that the adapter
they stand in for does the same against the contract: deposit, views, single
and batch redeem, refund after deadline + grace, a fraud claim and its
execution, and an outage that closes the link until the chain answers again.
"""

from __future__ import annotations

import os
import socket
from dataclasses import replace

import pytest
from eth_account import Account

from ledger import fraud
from ledger.client import CLAIM_ANSWERED, CLAIM_CONTESTED, CLAIM_EXECUTED, CLAIM_PENDING
from ledger.deploy import EscrowParams
from ledger.errors import ChainRevert, ChainUnreachable, LedgerError
from ledger.fraud import ResultRef
from ledger.voucher_book import Lane
from ledger.vouchers import Voucher, sign
from node.content.cid import cid_of_bytes
from node.roles.chain import ChainLink, ChainSettings
from protocol.fraud_evidence import claimed_pass, pack_evidence
from protocol.messages import Escrow, TileEvidence, Verdict
from protocol.slashing import tiles_commitment
from tests.ledger.conftest import (
    CHALLENGE_S,
    ETHER,
    GRACE_S,
    QUORUM,
    SLASH_CAP_WEI,
    Deployed,
    anvil_deployed,
)
from tests.protocol.vectors_samples import sample_spec

__all__ = ["anvil_deployed"]  # the fixture, imported for this module


@pytest.fixture
def anvil(anvil_deployed: Deployed) -> Deployed:
    snapshot = anvil_deployed.chain.snapshot()
    yield anvil_deployed  # type: ignore[misc]
    anvil_deployed.chain.revert(snapshot)


def link_for(dep: Deployed, key_index: int, url: str | None = None) -> ChainLink:
    settings = ChainSettings(url or str(dep.chain.rpc_url), dep.chain.chain_id, dep.escrow)
    return ChainLink(settings, dep.chain.funded_keys[key_index])


async def test_deposit_views_redeem_and_refund(anvil: Deployed) -> None:
    requester, worker, checker = link_for(anvil, 0), link_for(anvil, 1), link_for(anvil, 2)
    job_id = os.urandom(32)
    deadline_s = await requester.chain_time_s() + 3600
    await requester.deposit(job_id, 3 * ETHER, deadline_s)
    # the deposit's block time: after an earlier test's evm_increaseTime and a snapshot
    # revert, the latest block before it can be hours behind (failed once under xdist)
    deposited_s = await requester.chain_time_s()
    state = await requester.job(job_id)
    assert (state.requester, state.remaining_wei, state.deadline_s) == (
        requester.address, 3 * ETHER, deadline_s
    )
    assert not (await worker.secured(requester.address, job_id)).lane_wei
    # a top-up (the slasher's) moves the deadline, at most to the first deposit's minute
    # + MAX_JOB_S, and is listed as one
    latest_s = await requester.latest_deadline_s(job_id)
    max_job_s = EscrowParams().max_job_s  # as tests.ledger.conftest deploys it
    assert latest_s - deposited_s in range(max_job_s - 60, max_job_s + 1)
    with pytest.raises(ChainRevert, match="deadline too far"):
        await requester.top_up(job_id, 1, latest_s + 1)
    await requester.top_up(job_id, 1, deadline_s + 10)
    deadline_s += 10
    state = await requester.job(job_id)
    assert (state.remaining_wei, state.deadline_s) == (3 * ETHER + 1, deadline_s)
    await requester.open_lanes(job_id, [(worker.address, ETHER), (checker.address, ETHER // 10)])
    assert await requester.lanes(job_id, [worker.address, checker.address]) == {
        worker.address: ETHER, checker.address: ETHER // 10
    }
    secured = await worker.secured(requester.address, job_id)
    assert (secured.lane_wei, secured.redeem_until_s) == (ETHER, deadline_s + GRACE_S)
    assert await worker.grace_s() == GRACE_S
    assert await worker.gas_price_wei() > 0

    def voucher(payee: bytes, cumulative_wei: int) -> Voucher:
        unsigned = Voucher(requester.chain_id, requester.contract, requester.address, job_id,
                           payee, cumulative_wei)  # fmt: skip
        return sign(unsigned, anvil.chain.funded_keys[0])

    await worker.redeem([voucher(worker.address, ETHER // 2)])
    readings = await worker.readings([voucher(worker.address, ETHER)])
    assert list(readings.lanes.values()) == [Lane(ETHER, ETHER // 2)]
    assert readings.chain_time_s > 0 and readings.gas_price_wei > 0
    # beyond its lane a voucher pays what the lane holds; a stale entry is skipped
    batch = [voucher(worker.address, 2 * ETHER), voucher(checker.address, ETHER // 10),
             voucher(worker.address, ETHER // 2)]  # fmt: skip
    await worker.redeem(batch)
    assert (await requester.job(job_id)).remaining_wei == 3 * ETHER + 1 - ETHER - ETHER // 10
    with pytest.raises(ChainRevert, match="nothing owed"):
        await worker.redeem([voucher(worker.address, ETHER)])
    with pytest.raises(ChainRevert, match="grace not over"):
        await requester.refund(job_id)
    anvil.chain.advance_time(3600 + 10 + GRACE_S + 1)  # the top-up's 10 s
    await requester.refund(job_id)
    assert (await requester.job(job_id)).refunded
    assert [tx.what for tx in requester.transactions] == [
        "deposit", "top-up", "open_lanes×2", "refund"
    ]
    assert [tx.what for tx in worker.transactions] == ["redeem", "redeem_batch×3"]
    assert all(tx.job_ids == (job_id,) for tx in requester.transactions + worker.transactions)


async def test_an_unreachable_chain_is_a_ledger_error_and_the_link_reopens(
    anvil: Deployed,
) -> None:
    with socket.socket() as probe:  # a loopback port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    dead = link_for(anvil, 0, url=f"http://127.0.0.1:{port}")
    with pytest.raises(ChainUnreachable):
        await dead.chain_time_s()
    with pytest.raises(LedgerError):
        await dead.deposit(os.urandom(32), ETHER, 2**40)
    dead.settings = link_for(anvil, 0).settings  # the chain is back
    assert await dead.chain_time_s() > 0
    assert Account.from_key(anvil.chain.funded_keys[0]).address.lower() == "0x" + dead.address.hex()


async def test_unbonding_stake_is_still_takeable(anvil: Deployed) -> None:
    """What a claim could take, read as the escrow takes it (``protocol.slashing.
    takeable_wei``): a checker that asked to unbond all it staked has no active stake,
    but a claim on its passes still takes from the unbonding bucket."""
    reader, checker = link_for(anvil, 0), link_for(anvil, 3)
    await checker.send("stake", (), "stake", ETHER)
    assert await reader.takeable_of(checker.address) == ETHER
    await checker.send("unbond", (), "request_unbond", ETHER)
    assert await reader.stake_of(checker.address) == 0
    assert await reader.takeable_of(checker.address) == ETHER


async def test_fraud_claim_through_the_link(anvil: Deployed) -> None:
    """The requester node's chain calls for a fraud claim, on the real contract: terms,
    stake reads, claim_fraud with the worker's result signature, claim_state,
    execute_slash after the window (anvil's clock)."""
    requester, worker = link_for(anvil, 0), link_for(anvil, 1)
    checkers = [link_for(anvil, i) for i in (4, 5)]
    job_id = os.urandom(32)
    await requester.deposit(job_id, ETHER, await requester.chain_time_s() + 3600)
    await worker.send("stake", (), "stake", ETHER)
    for c in checkers:
        await c.send("stake", (), "stake", ETHER)
        await c.send("register", (), "register_checker")
    terms = await requester.fraud_terms()
    assert (terms.quorum, terms.cap_wei, terms.challenge_s) == (QUORUM, SLASH_CAP_WEI, CHALLENGE_S)
    assert await requester.stake_of(worker.address) == ETHER
    ref = ResultRef(requester.chain_id, requester.contract, requester.address, job_id,
                    os.urandom(32), 1, os.urandom(32))  # fmt: skip
    worker_sig = fraud.sign(ref, anvil.chain.funded_keys[1])
    claim = fraud.FraudClaim(ref, worker.address, tiles_commitment([os.urandom(32)]), terms.cap_wei)
    sigs = fraud.order_signatures(claim, [fraud.sign(claim, anvil.chain.funded_keys[i]) for i in (4, 5)])
    forged = fraud.sign(ref, anvil.chain.funded_keys[2])  # not the worker's own result
    with pytest.raises(ChainRevert, match="not the worker's result"):
        await requester.claim_fraud(claim, forged, sigs)
    await requester.claim_fraud(claim, worker_sig, sigs)
    state = await requester.claim_state(ref, worker.address)
    assert (state.status, state.taken_wei) == (CLAIM_PENDING, terms.cap_wei)
    assert await requester.stake_of(worker.address) == ETHER - terms.cap_wei
    claimers = fraud.signers(claim, sigs)
    with pytest.raises(ChainRevert, match="challenge window open"):
        await requester.execute_slash(claim, claimers)
    anvil.chain.advance_time(CHALLENGE_S + 1)
    await requester.execute_slash(claim, claimers)
    assert (await worker.claim_state(ref, worker.address)).status == CLAIM_EXECUTED


async def test_claim_answered_through_the_link(anvil: Deployed) -> None:
    """The worker node's chain calls for answering a claim, on the real contract: the
    claim's evidence from its FraudClaimed event, then answer_claim with one more
    Clean signature than there are claimers (what node.roles.answerer sends)."""
    requester, worker = link_for(anvil, 0), link_for(anvil, 1)
    job_id = os.urandom(32)
    await requester.deposit(job_id, ETHER, await requester.chain_time_s() + 3600)
    await worker.send("stake", (), "stake", ETHER)
    for i in range(4, 9):
        c = link_for(anvil, i)
        await c.send("stake", (), "stake", ETHER)
        await c.send("register", (), "register_checker")
    ref = ResultRef(requester.chain_id, requester.contract, requester.address, job_id,
                    os.urandom(32), 1, os.urandom(32))  # fmt: skip
    assert await worker.claim_evidence(ref, worker.address) is None
    keys = anvil.chain.funded_keys
    claim = fraud.FraudClaim(ref, worker.address, os.urandom(32), SLASH_CAP_WEI)
    sigs = fraud.order_signatures(claim, [fraud.sign(claim, keys[i]) for i in (4, 5)])
    await requester.claim_fraud(claim, fraud.sign(ref, keys[1]), sigs)
    evidence = await worker.claim_evidence(ref, worker.address)
    assert evidence is not None
    assert (evidence.tiles, list(evidence.claimers)) == (claim.tiles, fraud.signers(claim, sigs))
    answer = fraud.CleanAnswer(ref, worker.address, evidence.tiles)
    vote = answer.rung(evidence.claimers, 0)  # the answer: rung 0
    clean = fraud.order_signatures(vote, [fraud.sign(vote, keys[i]) for i in (6, 7, 8)])
    await worker.escalate(answer, evidence.claimers, (), clean)
    assert (await worker.claim_state(ref, worker.address)).status == CLAIM_CONTESTED
    ladder = await worker.claim_ladder(ref, worker.address)  # from ClaimContested
    assert ladder == (tuple(fraud.signers(vote, clean)),)
    with pytest.raises(ChainRevert, match="challenge window open"):
        await worker.settle_contest(answer, evidence.claimers, ladder)
    anvil.chain.advance_time(CHALLENGE_S + 1)
    await worker.settle_contest(answer, evidence.claimers, ladder)
    assert (await worker.claim_state(ref, worker.address)).status == CLAIM_ANSWERED
    assert await worker.stake_of(worker.address) == ETHER
    # still read once it stood: a slasher reopening the frame leaves its signers out
    assert await worker.claim_ladder(ref, worker.address) == ladder


async def test_a_claims_ladder_climbed_through_the_link(anvil: Deployed) -> None:
    """Both sides' chain calls on a contested claim, on the real contract: the accused's
    friends answer, the requester reads the ladder from the ClaimContested events and
    outnumbers the answer with a Fraud rung (the claimers signing again), and after its
    window settles: the claim executes and the friends lose what they locked."""
    requester, worker = link_for(anvil, 0), link_for(anvil, 1)
    job_id = os.urandom(32)
    await requester.deposit(job_id, ETHER, await requester.chain_time_s() + 3600)
    await worker.send("stake", (), "stake", ETHER)
    for i, stake in ((2, ETHER), (3, ETHER), (4, 2 * ETHER), (5, 2 * ETHER), (6, ETHER), (7, ETHER),
                     (8, ETHER)):  # fmt: skip
        c = link_for(anvil, i)
        await c.send("stake", (), "stake", stake)
        await c.send("register", (), "register_checker")
    ref = ResultRef(requester.chain_id, requester.contract, requester.address, job_id,
                    os.urandom(32), 1, os.urandom(32))  # fmt: skip
    keys = anvil.chain.funded_keys
    claim = fraud.FraudClaim(ref, worker.address, os.urandom(32), SLASH_CAP_WEI)
    sigs = fraud.order_signatures(claim, [fraud.sign(claim, keys[i]) for i in (4, 5)])
    await requester.claim_fraud(claim, fraud.sign(ref, keys[1]), sigs)
    answer = fraud.CleanAnswer(ref, worker.address, claim.tiles)
    claimers = fraud.signers(claim, sigs)
    votes = [answer.rung(claimers, 0), claim.rung(claimers, 1)]
    await worker.escalate(answer, claimers, (), fraud.order_signatures(
        votes[0], [fraud.sign(votes[0], keys[i]) for i in (6, 7, 8)]))  # fmt: skip
    ladder = await requester.claim_ladder(ref, worker.address)
    assert ladder is not None and len(ladder) == 1 and len(ladder[0]) == 3
    rung = fraud.order_signatures(votes[1], [fraud.sign(votes[1], keys[i]) for i in (2, 3, 4, 5)])
    await requester.escalate(claim, claimers, ladder, rung)
    ladder = await requester.claim_ladder(ref, worker.address)
    assert ladder is not None and [len(r) for r in ladder] == [3, 4]
    anvil.chain.advance_time(CHALLENGE_S + 1)
    await requester.settle_contest(claim, claimers, ladder)
    assert (await worker.claim_state(ref, worker.address)).status == CLAIM_EXECUTED
    assert await worker.stake_of(worker.address) == ETHER - SLASH_CAP_WEI
    for i in (6, 7, 8):  # the friends' answer cost them what they locked
        assert await worker.stake_of(link_for(anvil, i).address) == ETHER - SLASH_CAP_WEI


@pytest.mark.slow
async def test_the_pass_claim_a_node_builds_is_taken_by_the_contract(anvil: Deployed) -> None:
    """A missed plant's claim as the nodes build it, on the real contract: the checker's
    ``pass_sig`` (``sign_pass``, as the checker role signs every pass), the claimers'
    ``Fraud`` over ``checker_pass(...).claim(cap)`` (node.roles.pass_rechecks), and
    ``claim_pass`` through the link with the passing verdict as published evidence
    (node.roles.slasher); the accused reads its verdict back from the chain
    (``claimed_pass``, node.roles.rechecks), and after the window the cap is taken."""
    requester, checker = link_for(anvil, 0), link_for(anvil, 1)
    keys = anvil.chain.funded_keys
    job_id = os.urandom(32)
    await requester.deposit(job_id, ETHER, await requester.chain_time_s() + 3600)
    for i in (1, 4, 5):
        member = link_for(anvil, i)
        await member.send("stake", (), "stake", ETHER)
        await member.send("register", (), "register_checker")
    terms = await requester.fraud_terms()
    spec = replace(sample_spec(), requester_address=requester.address,
                   escrow=Escrow(requester.chain_id, requester.contract, bytes(32)))  # fmt: skip
    plant_cid = cid_of_bytes(b"a plant of frame 1")
    verdict = Verdict(job_id, os.urandom(32), 1, os.urandom(32), os.urandom(32), True,
                      os.urandom(32), (TileEvidence(0, 0, 16, 16, 99_000, 0),), "blender-3.4.1",
                      "cpu", (os.urandom(32),))  # fmt: skip
    verdict = replace(verdict, pass_sig=fraud.sign_pass(spec, verdict, plant_cid, keys[1]))
    assert verdict.pass_sig is not None
    signed = fraud.checker_pass(spec, verdict, plant_cid, checker.address)
    assert signed is not None
    claim = signed.claim(terms.cap_wei)
    sigs = fraud.order_signatures(claim, [fraud.sign(claim, keys[i]) for i in (4, 5)])
    await requester.claim_pass(signed, verdict.pass_sig, terms.cap_wei, sigs,
                               pack_evidence([verdict]))  # fmt: skip
    ref = signed.ref
    state = await checker.claim_state(ref, checker.address)
    assert (state.status, state.taken_wei) == (CLAIM_PENDING, terms.cap_wei)
    evidence = await checker.claim_evidence(ref, checker.address)
    assert evidence is not None
    assert claimed_pass(evidence.published, evidence.tiles, job_id, ref.task_id, 1) == verdict
    anvil.chain.advance_time(CHALLENGE_S + 1)
    await requester.execute_slash(claim, fraud.signers(claim, sigs))
    assert (await checker.claim_state(ref, checker.address)).status == CLAIM_EXECUTED
    assert await checker.stake_of(checker.address) == ETHER - terms.cap_wei

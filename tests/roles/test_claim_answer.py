"""Issue 17: a false fraud claim is answered by the worker's node, which keeps its stake.

Real roles on the in-memory hub with the fake escrow (its claim_fraud and
answer_claim check the same signatures and rules the contract does, with
``ledger.fraud``). An honest worker delivers a frame; a colluding quorum of two
registered, staked checkers (keys of the test's own, no node behind them)
signs a false ``Fraud`` claim over the worker's signed result and opens it.
The worker's node sees the pending claim, asks the other checkers it knows to
re-check its result, gathers three ``Clean`` signatures (one more than the
claimers; a fourth checker signs too but is not registered, and is left out)
and answers within the window, the answerers' stake locked; after the
answer's own window it closes it: the claim is cancelled, the worker's
stake is whole again, and the colluders lose what they locked.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
import trio
from eth_account import Account

from ledger.client import CLAIM_ANSWERED, CLAIM_CONTESTED, CLAIM_PENDING
from ledger.fraud import (
    FraudClaim,
    ResultRef,
    order_signatures,
    recover,
    result_ref,
    sign,
    signers,
)
from node.roles.claim_watch import POLL_S
from protocol.cid import cid_of_sha256
from protocol.envelope import decode_envelope
from protocol.errors import IllegalMessage
from protocol.fraud_evidence import pack_evidence
from protocol.market.records import verdict_digest_of
from protocol.messages import CleanSignRequest, FraudSignRequest, Result, TileEvidence, Verdict
from protocol.slashing import Rejection, tiles_commitment
from protocol.verification import DEFAULT_POLICY, Tile, select_tiles, tile_grid
from tests.roles.cluster import Member, open_cluster
from tests.roles.fakes import FakeFrames

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
        unregistered = [await cluster.add(f"c{i}", "checker") for i in (4, 5)]
        for member in unregistered:
            escrow.stakes[member.address] = STAKE_WEI
        colluders = [bytes(Account.create().key) for _ in range(2)]
        for key in colluders:
            escrow.register(bytes.fromhex(Account.from_key(key).address[2:]), STAKE_WEI)
        await cluster.settle("w1", 6)
        job_id = await cluster.submit("client", frames=1)
        job = client.live().requester.jobs[job_id]
        await job.done.wait()
        assert job.view.outcome == "completed"
        ((task_id, wire),) = job.results.items()
        result = decode_envelope(wire).message
        assert isinstance(result, Result) and result.result_sig is not None
        ref = result_ref(job.spec, job_id, task_id, result.frame, result.frame_cid)
        assert ref is not None

        # A stranger's re-check request about a result no claim names renders nothing, and
        # is scored against its sender (the worker reads its claims from the same chain).
        asked = CleanSignRequest(job_id, task_id, result.frame, honest.address, result.frame_cid)
        rechecks = checkers[0].live().checker.rechecks  # type: ignore[union-attr]
        await rechecks._recheck(honest.key.node_id.raw, asked)
        assert rechecks.rendered == 0 and rechecks.signed == 0
        assert rejected(checkers[0], honest) == {"recheck_unclaimed": 1}

        # The colluders' false claim: any tiles, the cap, the worker's own result signature.
        claim = FraudClaim(ref, honest.address, b"\x07" * 32, escrow.terms.cap_wei)
        sigs = order_signatures(claim, [sign(claim, key) for key in colluders])
        escrow.claim_fraud(claim, result.result_sig, sigs)
        assert escrow.claims[(ref, honest.address)].status == CLAIM_PENDING
        assert escrow.stakes[honest.address] == STAKE_WEI - claim.amount_wei

        settle_at_s = escrow.claims[(ref, honest.address)].settle_at_s
        await escrow.wait_until(lambda: escrow.claims[(ref, honest.address)].status == CLAIM_CONTESTED)
        assert escrow.now_s() < settle_at_s  # answered within the claim's window...
        # ...by the three registered checkers, whose stake the answer locks for its window
        assert escrow.ladders[(ref, honest.address)] == (tuple(sorted(c.address for c in checkers)),)
        assert all(escrow.locked[c.address] == claim.amount_wei for c in checkers)
        # Asked again for a later rung of the ladder, a checker signs that rung of this claim
        # from the outcome it remembers, without a second render; a rung the ladder is past
        # gets nothing, and an odd rung (the claim's side) is refused and scored.
        sent: list[tuple[int, bytes]] = []
        rechecks._answer = lambda _to, request, signature: sent.append((request.rung, signature))  # type: ignore[method-assign]
        rendered = rechecks.rendered
        for rung in (2, 0):
            await rechecks._recheck(honest.key.node_id.raw, replace(asked, rung=rung))
        del rechecks._answer
        assert rechecks.rendered == rendered and [r for r, _ in sent] == [2]
        vote = claim.answer.rung(signers(claim, sigs), 2)
        assert recover(vote, sent[0][1]) == checkers[0].address
        with pytest.raises(IllegalMessage, match="claim's side"):
            rechecks.receive(honest.key.node_id.raw, replace(asked, rung=1))
        await escrow.wait_until(lambda: escrow.claims[(ref, honest.address)].status == CLAIM_ANSWERED)
        assert escrow.stakes[honest.address] == STAKE_WEI  # its stake is whole again
        assert all(escrow.locked[c.address] == 0 for c in checkers)
        for key in colluders:  # each colluder forfeits what it locked
            colluder = bytes.fromhex(Account.from_key(key).address[2:])
            assert escrow.stakes[colluder] == STAKE_WEI - claim.amount_wei
        # a quarter of both forfeits (half burned, a quarter to its answerers)
        assert escrow.credit[honest.address] >= 2 * claim.amount_wei // 4
        assert sum(c.live().checker.rechecks.signed for c in checkers) == 3  # type: ignore[union-attr]
        # one answer went out, and the escrow took it: the unregistered signer was left out
        whats = [t.what for t in honest.chain.transactions]  # type: ignore[union-attr]
        assert (whats.count("escalate"), whats.count("settle_contest")) == (1, 1)
        answerer = honest.live().worker.answerer  # type: ignore[union-attr]
        assert await answerer.wait_ended(job_id, task_id) == "answer stood"
        watch = honest.live().worker.claim_watch  # type: ignore[union-attr]
        await watch.wait_claim(job_id, task_id, "answered")

        # The frame reopened (round 3): a requester lying about it asks a checker that did
        # not reject it to sign the next claim, with made-up rejecting verdicts. The checker
        # re-renders their cells, finds the frame right and signs nothing, ever; a first
        # claim (round 0) it is never asked to sign (node.roles.reclaim_rechecks).
        settings = job.spec.settings
        cell = tile_grid(settings.resolution_x, settings.resolution_y,
                         DEFAULT_POLICY.sampling.tile_px)[0]  # fmt: skip
        made_up = tuple(claimers_verdict(job_id, task_id, result.frame, cell, n) for n in (1, 2))
        reclaim = FraudSignRequest(
            job_id, task_id, result.frame, honest.address, result.frame_cid,
            tuple(verdict_digest_of(v) for v in made_up), escrow.terms.cap_wei,
            round=escrow.claims[(ref, honest.address)].answered_by, rejections=made_up,
        )  # fmt: skip
        picked = checkers[0].live().checker  # type: ignore[union-attr]
        requester_id = client.key.node_id.raw
        # (a checker that rejected a plant of the task judges the real frame as any pick:
        # refusing it as "another result than the one we rejected" scored the requester)
        picked._rejections[(job_id, task_id)] = Rejection(result.frame, "a plant's CID", bytes(32))
        with pytest.raises(IllegalMessage, match="first claim"):
            picked.on_fraud_sign_request(requester_id, replace(reclaim, round=0))
        sent_before = picked.reclaim_rechecks.signed
        for _ in range(2):  # asked again: no second render
            await picked.reclaim_rechecks._recheck(requester_id, reclaim)
        assert (picked.reclaim_rechecks.rendered, picked.reclaim_rechecks.signed) == (1, sent_before)
        # other made-up verdicts for the same round: refused and scored, never rendered
        other = replace(reclaim, verdict_digests=reclaim.verdict_digests[:1],
                        rejections=reclaim.rejections[:1])  # fmt: skip
        await picked.reclaim_rechecks._recheck(requester_id, other)
        assert picked.reclaim_rechecks.rendered == 1
        assert rejected(checkers[0], client)["reclaim_other_verdicts"] == 1
        # The escrow's claim id names no frame digest (the fake's key does): read as the
        # escrow does, another frame CID of the task is answered too, and the same verdicts
        # about a made-up frame must not have us render again (stop-29 review, HIGH).
        link = picked.reclaim_rechecks.ctx.chain
        by_digest = link.claim_state

        async def by_claim_id(asked: ResultRef, worker: bytes) -> object:
            return await by_digest(replace(asked, frame_digest=ref.frame_digest), worker)

        link.claim_state = by_claim_id
        made_up_frame = replace(reclaim, frame_cid=cid_of_sha256(bytes(range(32))))
        await picked.reclaim_rechecks._recheck(requester_id, made_up_frame)
        link.claim_state = by_digest
        assert picked.reclaim_rechecks.rendered == 1
        assert rejected(checkers[0], client)["reclaim_other_verdicts"] == 2

        # The frame reopens to a larger claim: four colluders, other tiles. A checker that
        # judged the first claim must judge this one again (its remembered outcome was for
        # the first claim's tiles: the stop-28 review's H1), and the answer (5 > 4) goes out.
        for member in unregistered:
            escrow.register(member.address, 0)
            checkers.append(member)
        more = [bytes(Account.create().key) for _ in range(2)]
        for key in more:
            escrow.register(bytes.fromhex(Account.from_key(key).address[2:]), STAKE_WEI)
        answered_by = escrow.claims[(ref, honest.address)].answered_by  # the claim's round
        again = FraudClaim(ref, honest.address, b"\x08" * 32, escrow.terms.cap_wei, answered_by)
        escrow.claim_fraud(again, result.result_sig, order_signatures(
            again, [sign(again, key) for key in [*colluders, *more]]))  # fmt: skip
        rendered = sum(c.live().checker.rechecks.rendered for c in checkers)  # type: ignore[union-attr]
        await escrow.wait_until(lambda: escrow.claims[(ref, honest.address)].status == CLAIM_CONTESTED)
        assert len(escrow.ladders[(ref, honest.address)][0]) == 5
        assert sum(c.live().checker.rechecks.rendered for c in checkers) >= rendered + 5  # type: ignore[union-attr]


def rejected(checker: Member, sender: Member) -> dict[str, int]:
    """What ``checker``'s node refused from ``sender``, by reason."""
    gate = checker.live().ctx.node.gate
    (view,) = [v for v in gate.scorer.view(0.0) if v.peer == sender.peer]
    return view.rejected


SECRET = bytes(range(32))  # every checker's draw, fixed so the test knows its cell


def claimers_verdict(job_id: bytes, task_id: bytes, frame: int, bad: Tile, n: int) -> Verdict:
    """A claimer's rejecting verdict: the bad cell, re-rendered and far off."""
    return Verdict(job_id, task_id, frame, bytes([n]) * 32, bytes(32), False, bytes([n]) * 32,
                   (TileEvidence(bad.x, bad.y, bad.width, bad.height, 9_000, 255),),
                   "fake", "fake", (bytes([n]) * 32,))  # fmt: skip


async def test_a_partial_fake_cannot_escape_a_true_claim_through_honest_answerers(
    autojump_clock: trio.testing.MockClock, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The attack: a worker fakes one cell of a frame; claimers found it and claimed. Honest
    answering checkers that re-rendered only cells of their own choice missed it and signed
    ``Clean``, so the cheat kept its stake (it did before the claim published its verdicts).
    Now each answerer re-renders the cells the claim's published verdicts name as well: the
    bad cell fails, nobody signs, and the claim stands. The answerers' own draw is fixed
    (SECRET) and the bad cell chosen outside it, so the test cannot pass by luck."""
    monkeypatch.setattr("node.roles.rechecks.new_secret", lambda: SECRET)
    width, height, tile_px = 64, 48, DEFAULT_POLICY.sampling.tile_px
    # an assurance-"none" job: its requester checks nothing, so the fake is delivered, and
    # an answerer's own draw is recheck_tiles = 1 cell, the one below
    (drawn,) = select_tiles(bytes(32), SECRET, width, height, 1, tile_px)
    bad = next(t for t in tile_grid(width, height, tile_px) if t != drawn)
    async with open_cluster(tmp_path) as cluster:
        escrow = cluster.escrow
        await cluster.add("client", "client")
        cheat = await cluster.add("w1", "worker", frames=FakeFrames(corrupt=(bad,)))
        escrow.stakes[cheat.address] = STAKE_WEI
        checkers = []
        for i in range(1, 4):
            checkers.append(member := await cluster.add(f"c{i}", "checker"))
            escrow.register(member.address, STAKE_WEI)
        claimer_keys = [bytes(Account.create().key) for _ in range(2)]
        for key in claimer_keys:
            escrow.register(bytes.fromhex(Account.from_key(key).address[2:]), STAKE_WEI)
        await cluster.settle("w1", 4)
        job_id = await cluster.submit("client", frames=1, assurance="none", resolution=(width, height))
        job = cluster.members["client"].live().requester.jobs[job_id]
        await job.done.wait()
        ((task_id, wire),) = job.results.items()
        result = decode_envelope(wire).message
        assert isinstance(result, Result) and result.result_sig is not None
        ref = result_ref(job.spec, job_id, task_id, result.frame, result.frame_cid)
        assert ref is not None

        # The claimers' true claim, its verdicts published with it (as the node's slasher does).
        verdicts = [claimers_verdict(job_id, task_id, result.frame, bad, n) for n in (1, 2)]
        tiles = tiles_commitment(verdict_digest_of(v) for v in verdicts)
        claim = FraudClaim(ref, cheat.address, tiles, escrow.terms.cap_wei)
        sigs = order_signatures(claim, [sign(claim, key) for key in claimer_keys])
        escrow.claim_fraud(claim, result.result_sig, sigs, pack_evidence(verdicts))
        state = escrow.claims[(ref, cheat.address)]
        # While it is pending, a request naming another frame file than the claimed one (the
        # claim binds the digest the worker signed) is refused and scored, never rendered.
        forged = CleanSignRequest(job_id, task_id, result.frame, cheat.address, cid_of_sha256(bytes(32)))
        first = checkers[0].live().checker.rechecks  # type: ignore[union-attr]
        await first._recheck(cheat.key.node_id.raw, forged)
        assert first.rendered == 0 and rejected(checkers[0], cheat) == {"recheck_unclaimed": 1}

        answerer = cheat.live().worker.answerer  # type: ignore[union-attr]
        how = await answerer.wait_ended(job_id, task_id)
        assert how.startswith("challenge window over") and escrow.now_s() >= state.settle_at_s
        rechecks = [c.live().checker.rechecks for c in checkers]  # type: ignore[union-attr]
        assert sum(r.rendered for r in rechecks) == 3  # each re-checked it once...
        assert sum(r.signed for r in rechecks) == 0  # ...and none signed
        assert escrow.claims[(ref, cheat.address)].status == CLAIM_PENDING
        escrow.execute_slash(claim, signers(claim, sigs))  # the claim stands
        assert escrow.stakes[cheat.address] == STAKE_WEI - claim.amount_wei


async def test_a_restarted_worker_still_answers_a_claim_on_a_result_signed_before(
    autojump_clock: trio.testing.MockClock, tmp_path: Path
) -> None:
    """The claim watch is stored: a worker restarted after it delivered a frame (a
    colluding quorum's claim comes while it was down, or just after) loads the results it
    signed and answers the claim. Before, the restarted watch was empty and the claim
    executed unanswered."""
    async with open_cluster(tmp_path) as cluster:
        escrow = cluster.escrow
        client = await cluster.add("client", "client")
        honest = await cluster.add("w1", "worker")
        escrow.stakes[honest.address] = STAKE_WEI
        for i in range(1, 4):
            escrow.register((await cluster.add(f"c{i}", "checker")).address, STAKE_WEI)
        colluders = [bytes(Account.create().key) for _ in range(2)]
        for key in colluders:
            escrow.register(bytes.fromhex(Account.from_key(key).address[2:]), STAKE_WEI)
        await cluster.settle("w1", 4)
        job_id = await cluster.submit("client", frames=1)
        job = client.live().requester.jobs[job_id]
        await job.done.wait()
        ((task_id, wire),) = job.results.items()
        result = decode_envelope(wire).message
        assert isinstance(result, Result) and result.result_sig is not None
        ref = result_ref(job.spec, job_id, task_id, result.frame, result.frame_cid)
        assert ref is not None

        await cluster.kill("w1")
        claim = FraudClaim(ref, honest.address, b"\x07" * 32, escrow.terms.cap_wei)
        escrow.claim_fraud(claim, result.result_sig,
                           order_signatures(claim, [sign(claim, key) for key in colluders]))  # fmt: skip
        honest = await cluster.restart("w1")
        watch = honest.live().worker.claim_watch  # type: ignore[union-attr]
        with trio.fail_after(2 * POLL_S):  # the restarted watch's first poll finds it
            await watch.wait_claim(job_id, task_id, "pending")
        await escrow.wait_until(lambda: escrow.claims[(ref, honest.address)].status == CLAIM_ANSWERED)
        assert escrow.stakes[honest.address] == STAKE_WEI

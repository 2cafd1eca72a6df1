"""Issue 17: the node slashes when a dispute upholds a rejection, and only then.

Real roles on the in-memory hub with the fake escrow (its claim_fraud and
execute_slash check the same signatures the contract does, with
``ledger.fraud``): a cheat renders with the wrong seed and disputes its
rejection; the dispute's checkers reject it too; the requester's node gathers
the rejecters' fraud signatures, claims the cheat's stake, survives a restart
during the challenge window and executes the claim after it. An honest worker
that a lying checker rejected wins its dispute and keeps its stake.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import trio
from eth_account import Account
from eth_account.signers.local import LocalAccount
from eth_utils.address import to_canonical_address

from ledger.client import CLAIM_ANSWERED, CLAIM_EXECUTED, CLAIM_PENDING, ClaimState
from ledger.fraud import CleanAnswer, FraudClaim, ResultRef, order_signatures, sign
from node.roles.slasher import DEBT_CHECK_S, EXECUTED, UNPAID, Claim, Slasher
from protocol import slashing as slashing_module
from protocol.envelope import decode_envelope
from protocol.errors import IllegalMessage
from protocol.fraud_evidence import claimed_verdicts
from protocol.messages import FraudSigned, FraudSignRequest, Result
from tests.roles.cluster import Cluster, Member, open_cluster
from tests.roles.fakes import FakeTiles

STAKE_WEI = 10**18


async def staked_checkers(cluster: Cluster, count: int, liar: bool = False) -> list[object]:
    out = []
    for i in range(1, count + 1):
        tiles = FakeTiles(lie=True) if liar and i == 1 else None
        member = await cluster.add(f"c{i}", "checker", tiles=tiles)
        cluster.escrow.register(member.address, STAKE_WEI)
        out.append(member)
    return out


async def cheat_and_three_checkers(
    cluster: Cluster, adversary: str = "wrong-seed-disputed"
) -> tuple[Member, Member]:
    """A client, a staked cheat that renders with the wrong seed and disputes (unless
    ``adversary`` is ``wrong-seed``), three staked checkers, settled: (client, cheat)."""
    client = await cluster.add("client", "client")
    cheat = await cluster.add("w1", "worker", adversary=adversary)
    cluster.escrow.stakes[cheat.address] = STAKE_WEI
    await staked_checkers(cluster, 3)
    await cluster.settle("client", 4)
    return client, cheat


async def test_an_upheld_dispute_is_claimed_and_executed_across_a_restart(
    autojump_clock: trio.testing.MockClock, tmp_path: Path
) -> None:
    """With the escrow's default quorum (the fake takes ``EscrowParams()``'s) and the
    market's default dispute, an upheld rejection carries enough rejecters to claim
    (with a quorum of 3 the claim was "impossible" and this test ran out of time).
    The cheat's own node tries to answer: the one checker that is no claimer
    re-renders its tiles, finds them wrong and signs nothing."""
    async with open_cluster(tmp_path) as cluster:
        await cluster.add("client", "client")
        cheat = await cluster.add("w1", "worker", adversary="wrong-seed-disputed")
        cluster.escrow.stakes[cheat.address] = STAKE_WEI
        await staked_checkers(cluster, 3)
        await cluster.settle("client", 4)
        job_id = await cluster.submit("client", frames=1)
        escrow = cluster.escrow
        await escrow.wait_until(lambda: any(s.status == CLAIM_PENDING for s in escrow.claims.values()))
        ((ref, worker), state) = next(iter(escrow.claims.items()))
        assert (ref.job_id, worker) == (job_id, cheat.address)
        assert escrow.stakes[cheat.address] == STAKE_WEI - escrow.terms.cap_wei  # held by the claim
        # The claim published the rejecting verdicts its tiles commit to: two (the default
        # quorum), each about this result, naming the cells an answerer must re-render.
        evidence = escrow.evidence(ref, worker)
        assert evidence is not None
        verdicts = claimed_verdicts(evidence.published, evidence.tiles, job_id, ref.task_id, ref.frame)
        assert verdicts is not None and len(verdicts) == 2
        assert all(v.tiles and not v.passed for v in verdicts)
        # The cheat's own node sees the claim against it (it could answer it now).
        watch = cheat.live().worker.claim_watch  # type: ignore[union-attr]
        assert watch is not None
        await watch.wait_claim(job_id, ref.task_id, "pending")
        # The requester restarts inside the challenge window: the stored claim goes on.
        await cluster.kill("client")
        client = await cluster.restart("client")
        await escrow.wait_until(lambda: escrow.claims[(ref, worker)].status == CLAIM_EXECUTED)
        assert escrow.now_s() >= state.settle_at_s
        requester = client.address
        assert escrow.credit[requester] >= escrow.terms.cap_wei // 4  # half is burned
        slasher = client.live().requester.slasher
        assert await slasher.wait_settled(job_id, ref.task_id) == EXECUTED
        await watch.wait_claim(job_id, ref.task_id, "executed")
        answerer = cheat.live().worker.answerer  # type: ignore[union-attr]
        how = await answerer.wait_ended(job_id, ref.task_id)  # it found nobody to sign
        assert how.startswith("challenge window over") or how == "claim upheld"
        assert sum(1 for t in client.chain.transactions if t.what == "execute_slash") == 1  # type: ignore[union-attr]


async def executed_holding_nothing(cluster: Cluster) -> tuple[Member, bytes, ResultRef, ClaimState]:
    """A client and a staked cheat whose stake is all locked behind claims it signed, and
    three staked checkers; the cheat's disputed frame is claimed, and the claim executed
    holding nothing: (cheat, job id, the claim's result, its state when executed)."""
    await cluster.add("client", "client")
    cheat = await cluster.add("w1", "worker", adversary="wrong-seed-disputed")
    escrow = cluster.escrow
    escrow.stakes[cheat.address] = STAKE_WEI
    escrow.locked[cheat.address] = STAKE_WEI
    await staked_checkers(cluster, 3)
    await cluster.settle("client", 4)
    job_id = await cluster.submit("client", frames=1)
    await escrow.wait_until(lambda: any(s.status == CLAIM_EXECUTED for s in escrow.claims.values()))
    ((ref, worker), state) = next(iter(escrow.claims.items()))
    assert worker == cheat.address
    return cheat, job_id, ref, state


async def test_a_claim_that_found_the_stake_held_collects_it_once_it_comes_back(
    autojump_clock: trio.testing.MockClock, tmp_path: Path
) -> None:
    """Stop 45's review: the cheat's stake was all locked behind claims it signed (or held
    by its friends' claims on junk it signed) when the honest claim opened and when it
    executed, so it took nothing; and the locks came back later. The claim stays owed
    (the escrow executes it again for what the accused holds then): the slasher reads the
    accused's stake every DEBT_CHECK_S and collects."""
    async with open_cluster(tmp_path) as cluster:
        cheat, job_id, ref, state = await executed_holding_nothing(cluster)
        escrow, worker = cluster.escrow, cheat.address
        assert (ref.job_id, state.taken_wei) == (job_id, 0)
        await trio.sleep(2 * DEBT_CHECK_S)  # mock time: owed, read every hour, nothing to take
        assert escrow.claims[(ref, worker)].taken_wei == 0
        escrow.locked[cheat.address] = 0  # its own claims settled: the stake is back
        await escrow.wait_until(lambda: escrow.claims[(ref, worker)].taken_wei == escrow.terms.cap_wei)
        assert escrow.stakes[cheat.address] == STAKE_WEI - escrow.terms.cap_wei
        client = cluster.members["client"]
        assert await client.live().requester.slasher.wait_settled(job_id, ref.task_id) == EXECUTED


async def test_an_owed_claim_not_worth_its_gas_is_left_unpaid_after_the_horizon(
    autojump_clock: trio.testing.MockClock, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Reviews of stop 45: a wei staked an hour made every owed claim send a collection
    that paid nothing (the requester's part of a wei is 0 against 180,000 gas), and a
    debt given up read as executed. The slasher sends none, and ends the claim ``unpaid``
    the escrow's DEBT_S after its window (90 days; three hours here, so that the
    cluster's mock time stays short)."""
    monkeypatch.setattr(slashing_module, "DEBT_S", 3 * DEBT_CHECK_S)
    async with open_cluster(tmp_path, limit_s=12 * 3600) as cluster:
        cheat, job_id, ref, state = await executed_holding_nothing(cluster)
        escrow, worker = cluster.escrow, cheat.address
        escrow.locked[cheat.address] = STAKE_WEI - 1  # a wei free: takeable, not worth it
        client = cluster.members["client"]
        slasher = client.live().requester.slasher
        assert await slasher.wait_settled(job_id, ref.task_id) == UNPAID
        assert escrow.now_s() > state.settle_at_s + 3 * DEBT_CHECK_S
        assert escrow.claims[(ref, worker)].taken_wei == 0
        sent = [t.what for t in client.chain.transactions]  # type: ignore[union-attr]
        assert sent.count("execute_slash") == 1  # the execution, no collection


async def test_a_cheat_that_never_disputes_is_claimed_through_the_requesters_confirmation(
    autojump_clock: trio.testing.MockClock, tmp_path: Path
) -> None:
    """``wrong-seed`` cheats and, knowing it, disputes nothing: before stop 36 only its
    own dispute could lead to a claim, and its stake was never touched. The requester
    now confirms the rejection itself (protocol.market.verifying: _confirmable)."""
    async with open_cluster(tmp_path) as cluster:
        _, cheat = await cheat_and_three_checkers(cluster, "wrong-seed")
        job_id = await cluster.submit("client", frames=1)
        escrow = cluster.escrow
        await escrow.wait_until(lambda: any(s.status == CLAIM_EXECUTED for s in escrow.claims.values()))
        ((ref, worker),) = escrow.claims
        assert (ref.job_id, worker) == (job_id, cheat.address)
        assert cheat.live().worker.machine.statistics().tasks_disputed == 0  # type: ignore[union-attr]
        assert escrow.stakes[cheat.address] == STAKE_WEI - escrow.terms.cap_wei


async def test_an_honest_worker_rejected_by_a_liar_keeps_its_stake(
    autojump_clock: trio.testing.MockClock, tmp_path: Path
) -> None:
    async with open_cluster(tmp_path) as cluster:
        await cluster.add("client", "client")
        honest = await cluster.add("w1", "worker")
        cluster.escrow.stakes[honest.address] = STAKE_WEI
        # three: a fresh worker's result meets two checkers at normal (stop 37), and a
        # rejection at the second check leaves one fresh checker for its dispute; the
        # first check's passer is asked too (JobMachine.dispute_fallback). Before, the
        # dispute could not be staffed, the lie stood and the job expired (CI, stop 37).
        checkers = await staked_checkers(cluster, 3, liar=True)
        await cluster.settle("client", 4)
        job_id = await cluster.submit("client", frames=3)
        job = cluster.members["client"].live().requester.jobs[job_id]
        await job.done.wait()
        assert job.view.outcome == "completed"
        assert checkers[0].kit.tiles.rendered >= 1  # type: ignore[attr-defined]  # the liar lied
        assert checkers[0].live().checker.fraud_signed == 0  # type: ignore[attr-defined]
        assert cluster.escrow.claims == {}
        assert cluster.escrow.stakes[honest.address] == STAKE_WEI


async def test_checkers_sign_no_claim_against_an_uninvolved_or_accepted_worker(
    autojump_clock: trio.testing.MockClock, tmp_path: Path
) -> None:
    """A requester that asks checkers to sign a fraud claim about a result they passed,
    or about a worker that never delivered it, gets nothing to claim with."""
    async with open_cluster(tmp_path) as cluster:
        client = await cluster.add("client", "client")
        honest = await cluster.add("w1", "worker")
        bystander = await cluster.add("w2", "client")  # staked, never works for this job
        cluster.escrow.stakes[honest.address] = cluster.escrow.stakes[bystander.address] = STAKE_WEI
        checkers = await staked_checkers(cluster, 3)
        await cluster.settle("client", 5)
        job_id = await cluster.submit("client", frames=2)
        job = client.live().requester.jobs[job_id]
        await job.done.wait()
        requester = client.key.node_id.raw
        for task_id, wire in job.results.items():
            result = decode_envelope(wire).message
            assert isinstance(result, Result)
            for worker in (honest.address, bystander.address):
                request = FraudSignRequest(job_id, task_id, result.frame, worker, result.frame_cid,
                                           (bytes(32),), 10**17)  # fmt: skip
                for c in checkers:
                    checker = c.live().checker
                    try:  # a task we rejected (another frame or worker than the request's)
                        queued = checker.on_fraud_sign_request(requester, request)  # type: ignore[union-attr]
                    except IllegalMessage:
                        continue
                    # not rejected by us: a re-check to overturn an answer, which no claim has
                    assert queued
                    await checker.overturn_rechecks._recheck(requester, request)  # type: ignore[union-attr]
                    (view,) = [v for v in c.live().ctx.node.gate.scorer.view(0.0)
                               if v.peer == client.peer]  # fmt: skip
                    assert view.rejected["overturn_unanswered"] >= 1  # scored, as before
        for c in checkers:
            checker = c.live().checker
            assert checker.fraud_signed == 0 and checker.overturn_rechecks.signed == 0  # type: ignore[union-attr]
            assert checker.overturn_rechecks.rendered == 0  # type: ignore[union-attr]
        assert cluster.escrow.claims == {}


def test_a_rejecter_signing_with_another_key_is_refused() -> None:
    """Review (issue 17): a rejecter's fraud signature counted whatever key made it, so
    one rejecter could sign with an unstaked key, complete the quorum, and have the
    escrow refuse the claim ("not a checker"): the cheat kept its stake. Only the key
    the job machine assigned the rejecter under counts now (``SlashDue.
    rejecter_addresses``), as for a pass claim's picked claimers."""
    rejecter_key, other_key = (Account.create() for _ in range(2))
    rejecter = b"\x0c" * 32  # its node id
    ref = ResultRef(31337, b"\x01" * 20, b"\x02" * 20, b"\x03" * 32, b"\x04" * 32, 1, b"\x05" * 32)
    claim = Claim(FraudClaim(ref, b"\x06" * 20, b"\x07" * 32, 10**17), b"", "", (rejecter,),
                  (b"\x08" * 32,), picked={rejecter: to_canonical_address(rejecter_key.address)})  # fmt: skip
    slasher = Slasher(None, lambda *_: None)  # type: ignore[arg-type]  # no I/O in this path
    slasher._running[claim.key] = claim

    def signed(key: LocalAccount) -> FraudSigned:
        return FraudSigned(ref.job_id, ref.task_id, sign(claim.claim, bytes(key.key)))

    with pytest.raises(IllegalMessage, match="another key"):
        slasher.on_fraud_signed(rejecter, signed(other_key))
    assert claim.sigs == {}
    slasher.on_fraud_signed(rejecter, signed(rejecter_key))
    assert list(claim.sigs) == [to_canonical_address(rejecter_key.address)]
    # A row stored before the addresses were kept reads back without them (any key, as then).
    assert Claim.unpack(claim.state, claim.pack()).picked == claim.picked


async def test_the_cheats_sybils_answer_and_the_requester_overturns_them(
    autojump_clock: trio.testing.MockClock, tmp_path: Path
) -> None:
    """Issue 17 (stop-26 review finding 3), a worker's result: the cheat's own staked
    sybils (keys of the test's) answer the dispute's true claim with one more Clean than
    it had claimers. The requester's slasher sees the claim contested and picks staked
    checkers that never saw the frame (three joined since); each re-renders the cells the
    claim's published verdicts name (node.roles.overturn_rechecks), finds them wrong and
    signs the claim's Fraud; with the claimers' own signatures that outnumbers the
    answer: the claim executes and each sybil loses the cap it locked. Before, the
    overturn could only count the dispute's rejecters, never more than the answer."""
    async with open_cluster(tmp_path) as cluster:
        client, cheat = await cheat_and_three_checkers(cluster)
        job_id = await cluster.submit("client", frames=1)
        escrow = cluster.escrow
        await escrow.wait_until(lambda: any(s.status == CLAIM_PENDING for s in escrow.claims.values()))
        ((ref, worker),) = list(escrow.claims)
        evidence = escrow.evidence(ref, worker)
        assert evidence is not None
        sybils = [bytes(Account.create().key) for _ in range(len(evidence.claimers) + 1)]
        for key in sybils:
            escrow.register(to_canonical_address(Account.from_key(key).address), STAKE_WEI)
        vote = CleanAnswer(ref, worker, evidence.tiles).rung(evidence.claimers, 0)
        escrow.answer_claim(vote, evidence.claimers,  # type: ignore[arg-type]
                            order_signatures(vote, [sign(vote, k) for k in sybils]))  # fmt: skip
        (answerers,) = escrow.ladders[(ref, worker)]
        newcomers = [await cluster.add(f"c{i}", "checker") for i in (4, 5, 6)]
        for member in newcomers:
            escrow.register(member.address, STAKE_WEI)
        await cluster.settle("client", 7)
        await escrow.wait_until(lambda: escrow.claims[(ref, worker)].status == CLAIM_EXECUTED)
        assert await client.live().requester.slasher.wait_settled(job_id, ref.task_id) == EXECUTED
        assert [t.what for t in client.chain.transactions].count("escalate") == 1  # type: ignore[union-attr]
        signed = sum(m.live().checker.overturn_rechecks.signed for m in newcomers)  # type: ignore[union-attr]
        assert signed >= 1  # the claimers alone never outnumber an answer
        for a in answerers:  # each sybil lost what its answer locked
            assert (escrow.stakes[a], escrow.locked.get(a, 0)) == (STAKE_WEI - escrow.terms.cap_wei, 0)
        assert escrow.stakes[cheat.address] == STAKE_WEI - escrow.terms.cap_wei
        assert escrow.conserved()


def friends_of(cluster: Cluster, n: int) -> list[bytes]:
    """``n`` keys of the cheat's friends: registered, staked checkers, no node behind them."""
    keys = [bytes(Account.create().key) for _ in range(n)]
    for key in keys:
        cluster.escrow.register(to_canonical_address(Account.from_key(key).address), STAKE_WEI)
    return keys


async def test_a_claim_the_cheats_friends_opened_first_is_waited_out_not_taken_for_ours(
    autojump_clock: trio.testing.MockClock, tmp_path: Path
) -> None:
    """This stop's review (M3): the escrow holds one claim per frame, and the cheat's
    friends may open theirs first (junk tiles, no evidence). The slasher read "already
    claimed" as its own claim sent before a restart and went on with its own claimers and
    tiles, which the escrow refused for good ("wrong claim") at every restart. It now
    checks whose claim it is, waits that one out, executes it once its window is over
    (anyone may) and ends: the cheat's stake is taken all the same."""
    async with open_cluster(tmp_path) as cluster:
        client, cheat = await cheat_and_three_checkers(cluster)
        escrow = cluster.escrow
        friends = friends_of(cluster, 2)
        slasher = client.live().requester.slasher
        submission = slasher._submission

        def friends_first(claim: Claim, ordered: list[bytes]) -> object:
            c = claim.claim
            junk = FraudClaim(c.ref, c.worker, b"\x07" * 32, c.amount_wei)
            if (c.ref, c.worker) not in escrow.claims:
                escrow.claim_fraud(junk, claim.worker_sig,
                                   order_signatures(junk, [sign(junk, k) for k in friends]))  # fmt: skip
            return submission(claim, ordered)

        slasher._submission = friends_first  # type: ignore[method-assign]
        job_id = await cluster.submit("client", frames=1)
        await escrow.wait_until(lambda: bool(escrow.claims))
        ((ref, worker),) = list(escrow.claims)
        assert await slasher.wait_settled(job_id, ref.task_id) == EXECUTED
        assert escrow.claims[(ref, worker)].status == CLAIM_EXECUTED
        assert escrow.stakes[cheat.address] == STAKE_WEI - escrow.terms.cap_wei
        whats = [t.what for t in client.chain.transactions]  # type: ignore[union-attr]
        assert whats.count("execute_slash") == 1  # ours was refused: "already claimed"


@pytest.mark.parametrize(("newcomers", "answerers_join"), [(0, False), (2, False), (2, True)])
async def test_a_frame_the_cheats_friends_claimed_and_answered_is_claimed_in_the_next_round_or_said_impossible(
    autojump_clock: trio.testing.MockClock, tmp_path: Path, newcomers: int, answerers_join: bool
) -> None:
    """Stop 28's review (HIGH): after the friends' claim is answered (by three friends of
    their own) the frame reopens, in a new round (``Fraud.round`` = 3): the slasher waited
    that claim out and then gave up at once, its signing deadline long past, with the
    honest claim dropped as "too few checkers signed". It now asks again from the new
    round, with a fresh deadline. A claim after an answer of 3 needs 4 signers, one more
    than the dispute's rejecters: the slasher picks staked checkers that did not check the
    frame, which re-render the rejecting verdicts' cells (node.roles.reclaim_rechecks),
    find them wrong and sign, and the claim takes the cheat's stake (before this stop it
    ended impossible, the rejecters alone too few). With no such checker about, the claim
    ends impossible and says why, never hung. Stop 29's review: the picks could include
    the answer's own signers (``answerers_join``: they run staked checker nodes too, five
    candidates for three picks); nobody with a position on the frame's last claim is
    picked now (``protocol.slashing.claim_positions``)."""
    async with open_cluster(tmp_path) as cluster:
        client, cheat = await cheat_and_three_checkers(cluster)
        escrow = cluster.escrow
        friends = friends_of(cluster, 5)
        slasher = client.live().requester.slasher
        submission = slasher._submission
        ends: list[str] = []
        joined: list[Member] = []  # staked checkers that join after the dispute: never saw the frame
        answerers: list[Member] = []  # the friends that answered the junk claim, as nodes
        picks: list[bytes] = []  # node ids the slasher picked
        barred: list[frozenset[bytes]] = []  # the addresses it told each pick to leave out
        pick_claimers = slasher._pick_claimers
        assert pick_claimers is not None

        async def recorded(exclude: frozenset[bytes], addresses: frozenset[bytes],
                           *args: Any) -> dict[bytes, bytes]:  # fmt: skip
            barred.append(addresses)
            picked = await pick_claimers(exclude, addresses, *args)
            picks.extend(picked)
            return picked

        slasher._pick_claimers = recorded

        def friends_first(claim: Claim, ordered: list[bytes]) -> object:
            c = claim.claim
            junk = FraudClaim(c.ref, c.worker, b"\x07" * 32, c.amount_wei)
            if (c.ref, c.worker) in escrow.claims:
                return submission(claim, ordered)
            escrow.claim_fraud(junk, claim.worker_sig,
                               order_signatures(junk, [sign(junk, k) for k in friends[:2]]))  # fmt: skip
            claimers = sorted(to_canonical_address(Account.from_key(k).address) for k in friends[:2])
            vote = junk.answer.rung(claimers, 0)
            escrow.answer_claim(vote, claimers, order_signatures(  # type: ignore[arg-type]
                vote, [sign(vote, k) for k in friends[2:]]))  # fmt: skip

            async def newcomers_join_then_submit() -> None:
                for i in range(4, 4 + newcomers):
                    joined.append(member := await cluster.add(f"c{i}", "checker"))
                    escrow.register(member.address, STAKE_WEI)
                for i, key in enumerate(friends[2:] if answerers_join else ()):
                    answerers.append(await cluster.add(f"f{i}", "checker", payment_key=key))
                await cluster.settle("client", 4 + newcomers + len(answerers))
                await submission(claim, ordered)()

            return newcomers_join_then_submit

        slasher._submission = friends_first  # type: ignore[method-assign]
        end = slasher._end

        async def noted(claim: Claim, state: str, why: str) -> None:
            ends.append(why)
            await end(claim, state, why)

        slasher._end = noted  # type: ignore[method-assign]
        job_id = await cluster.submit("client", frames=1)
        await escrow.wait_until(lambda: bool(escrow.claims))
        ((ref, worker),) = list(escrow.claims)
        if not newcomers:
            assert await slasher.wait_settled(job_id, ref.task_id) == "impossible"
            assert escrow.claims[(ref, worker)].status == CLAIM_ANSWERED  # we settled theirs
            assert escrow.claims[(ref, worker)].answered_by == 3
            assert ends == ["too few staked checkers for a claim after an answer of 3"]
            return
        assert await slasher.wait_settled(job_id, ref.task_id) == EXECUTED
        assert escrow.claims[(ref, worker)].status == CLAIM_EXECUTED
        assert escrow.stakes[cheat.address] == STAKE_WEI - escrow.terms.cap_wei
        signed = sum(m.live().checker.reclaim_rechecks.signed for m in joined)  # type: ignore[union-attr]
        assert signed >= 1  # the rejecters alone never make 4
        assert escrow.conserved()
        # every signer of the claim that reopened the frame (the junk claim's two and its
        # answer's three) left out of every pick, whether it runs a node or not
        positions = {to_canonical_address(Account.from_key(k).address) for k in friends}
        assert barred and all(positions <= b for b in barred)
        assert picks and not set(picks) & {m.key.node_id.raw for m in answerers}
        for friend in answerers:  # never asked: they answered the claim that reopened it
            assert friend.live().checker.reclaim_rechecks.rendered == 0  # type: ignore[union-attr]


@pytest.mark.parametrize("max_job_room_s", [None, 300])
async def test_a_dispute_upheld_near_the_end_of_the_claim_window_tops_up_the_job_to_claim(
    autojump_clock: trio.testing.MockClock, tmp_path: Path, max_job_room_s: int | None
) -> None:
    """Stop 27's review, finding 7: the escrow opens a claim through the job's deadline +
    grace, so a dispute upheld 100 s before it, its signatures 200 s in coming (slow
    signers, a slow chain), lost its claim ("claim window over") and the cheat kept its
    stake. The slasher now tops its job up by 1 wei with a later deadline when the window
    ends before a gather could be done (``protocol.slashing.claim_top_up_deadline_s``),
    and the claim executes. ``max_job_room_s``: the escrow's MAX_JOB_S leaves the job's
    deadline only that much room, less than the top-up asks: the slasher tops up to the
    furthest deadline it takes (the full top-up was refused, "deadline too far")."""
    async with open_cluster(tmp_path) as cluster:
        client, cheat = await cheat_and_three_checkers(cluster)
        escrow = cluster.escrow
        if max_job_room_s is not None:  # the job's first deposit is to the minute
            escrow.max_job_s = 1800 + 60 + max_job_room_s
        slasher = client.live().requester.slasher
        gather, submission = slasher._gather, slasher._submission

        async def late(claim: Claim) -> None:
            ref = claim.claim.ref
            job = escrow.jobs[(ref.requester, ref.job_id)]
            await trio.sleep(job.deadline_s + escrow.grace - 100 - escrow.now_s())
            await gather(claim)

        def slow(claim: Claim, ordered: list[bytes]) -> object:
            async def later() -> None:
                await trio.sleep(200)
                await submission(claim, ordered)()

            return later

        slasher._gather = late  # type: ignore[method-assign]
        slasher._submission = slow  # type: ignore[method-assign]
        job_id = await cluster.submit("client", frames=1, deadline_s=1800.0)
        while not any(key[0] == job_id for key in slasher.settled):
            await slasher._changed.wait()
        assert list(slasher.settled.values()) == [EXECUTED]
        assert escrow.stakes[cheat.address] == STAKE_WEI - escrow.terms.cap_wei
        whats = [t.what for t in client.chain.transactions]  # type: ignore[union-attr]
        assert whats.count("deposit") == 1  # the budget
        assert whats.count("top-up") == 1  # and the top-up that kept it open
        assert escrow.conserved()


async def test_a_claim_another_executed_after_the_window_ends_executed(
    autojump_clock: trio.testing.MockClock, tmp_path: Path
) -> None:
    """Stop 30's review: the frame's claim was executed by someone else (a rejecter may
    submit the same signatures itself) while ours gathered, and the job's claim window
    ended: the stake is taken, so our claim ends EXECUTED, not IMPOSSIBLE ("claim window
    over")."""
    async with open_cluster(tmp_path) as cluster:
        client, cheat = await cheat_and_three_checkers(cluster)
        escrow = cluster.escrow
        slasher = client.live().requester.slasher
        gather = slasher._gather

        async def after_another(claim: Claim) -> None:
            ref, worker = claim.claim.ref, claim.claim.worker
            job = escrow.jobs[(ref.requester, ref.job_id)]
            cap = escrow.terms.cap_wei
            escrow.claims[(ref, worker)] = ClaimState(cap, cap, escrow.now_s(), b"", CLAIM_EXECUTED)
            await trio.sleep(job.deadline_s + escrow.grace + 1 - escrow.now_s())
            await gather(claim)

        slasher._gather = after_another  # type: ignore[method-assign]
        job_id = await cluster.submit("client", frames=1, deadline_s=1800.0)
        while not any(key[0] == job_id for key in slasher.settled):
            await slasher._changed.wait()
        assert list(slasher.settled.values()) == [EXECUTED]
        whats = [t.what for t in client.chain.transactions]  # type: ignore[union-attr]
        assert "claim_fraud" not in whats and "top-up" not in whats
        assert escrow.stakes[cheat.address] == STAKE_WEI  # (the other claim is a stand-in)

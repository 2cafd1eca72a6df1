"""Issue 17: a checker that passes a plant of an escrowed job loses stake, and only then.

Real roles on the in-memory hub with the fake escrow (its ``claim_pass`` checks the
checker's own Pass signature and the claimers' Fraud ones as the contract does):
the requester plants every result; the lazy checker passes its plant with a signed
pass; the requester asks staked checkers to re-render the pass's cells of the plant,
claims with their signatures, survives a restart inside the challenge window and
takes the cap once it has passed. Honest claimers never sign against a pass whose
cells are right, and with too few staked checkers nothing is claimed.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import trio
from eth_account import Account

from ledger.client import CLAIM_ANSWERED, CLAIM_CONTESTED, CLAIM_EXECUTED, CLAIM_PENDING
from ledger.fraud import CleanAnswer, checker_pass, order_signatures, sign, sign_pass
from node.roles.slasher import EXECUTED, IMPOSSIBLE, PASS, RESEND_S, Claim
from protocol.envelope import decode_envelope
from protocol.fraud_evidence import claimed_pass, pack_evidence
from protocol.market import PassClaimDue, TaskState
from protocol.messages import FraudSigned, JobSpec, Result, TileEvidence, Verdict
from protocol.verification import DEFAULT_POLICY, select_tiles
from tests.roles.cluster import Cluster, Member, open_cluster

if TYPE_CHECKING:
    from node.roles.requester_job import RequesterJob

EVERY_RESULT = 1_000_000  # plant_rate_ppm: every checked result gets a plant
STAKE_WEI = 10**18


async def staked(cluster: Cluster, name: str, adversary: str | None = None) -> Member:
    extra = {} if adversary is None else {"adversary": adversary}
    member = await cluster.add(name, "checker", stake=False, **extra)  # exactly STAKE_WEI
    cluster.escrow.register(member.address, STAKE_WEI)
    return member


async def lazy_and_three_honest(cluster: Cluster) -> tuple[Member, Member, list[Member]]:
    """The client (planting every result), a worker, a staked lazy checker and three
    staked honest ones, settled: (client, lazy, honest)."""
    client = await cluster.add("client", "client", plant_rate_ppm=EVERY_RESULT)
    await cluster.add("w1", "worker")
    lazy = await staked(cluster, "lazy", "lazy")
    honest = [await staked(cluster, f"c{i}") for i in (1, 2, 3)]
    await cluster.settle("client", 5)
    return client, lazy, honest


async def claimed_without(cluster: Cluster, client: Member, lazy: Member, left: list[bytes]) -> None:
    """Run a 6-frame job: the lazy checker is claimed by a quorum, ``left[0]`` not in it."""
    await cluster.submit("client", frames=6)
    _, _, state = await pass_claim_settled(client)
    assert state != IMPOSSIBLE
    escrow = cluster.escrow
    ((ref, accused),) = [k for k in escrow.claims if k[1] == lazy.address][:1]
    evidence = escrow.evidence(ref, accused)
    assert evidence is not None and left[0] not in evidence.claimers
    assert len(evidence.claimers) >= escrow.terms.quorum


async def pass_claim_settled(client: Member) -> tuple[bytes, bytes, str]:
    """(job, task, final state) of the first pass claim that ended at ``client``."""
    slasher = client.live().requester.slasher
    while not (ended := [k for k in slasher.settled if k[2] == PASS]):
        await slasher._changed.wait()
    job_id, task_id, _ = ended[0]
    return job_id, task_id, slasher.settled[ended[0]]


async def one_frame(cluster: Cluster) -> tuple[RequesterJob, bytes, Result]:
    """The client's job of one frame, done: the job, its task and the accepted result."""
    job_id = await cluster.submit("client", frames=1)
    job = cluster.members["client"].live().requester.jobs[job_id]
    await job.done.wait()
    ((task_id, wire),) = job.results.items()
    result = decode_envelope(wire).message
    assert isinstance(result, Result)
    return job, task_id, result


async def test_a_lazy_checker_that_passes_a_plant_loses_the_cap_across_a_restart(
    autojump_clock: trio.testing.MockClock, tmp_path: Path
) -> None:
    async with open_cluster(tmp_path) as cluster:
        client, lazy, honest = await lazy_and_three_honest(cluster)
        job_id = await cluster.submit("client", frames=6)
        escrow = cluster.escrow
        await escrow.wait_until(lambda: any(w == lazy.address for _, w in escrow.claims))
        ((ref, accused), state) = next(iter(escrow.claims.items()))
        assert (ref.job_id, accused, state.status) == (job_id, lazy.address, CLAIM_PENDING)
        assert escrow.stakes[lazy.address] == STAKE_WEI - escrow.terms.cap_wei  # held
        # The claim published the lazy checker's own passing verdict: the cells it named.
        evidence = escrow.evidence(ref, accused)
        assert evidence is not None
        verdict = claimed_pass(evidence.published, evidence.tiles, job_id, ref.task_id, ref.frame)
        assert verdict is not None and verdict.passed and verdict.pass_sig is not None
        claimers = set(evidence.claimers)
        assert len(claimers) >= escrow.terms.quorum
        assert claimers <= {c.address for c in honest}  # never the accused nor the worker
        signed = sum(c.live().checker.pass_rechecks.signed for c in honest)  # type: ignore[union-attr]
        assert signed >= escrow.terms.quorum
        # The requester restarts inside the challenge window: the stored claim goes on.
        job = client.live().requester.jobs[job_id]
        await job.done.wait()
        await cluster.kill("client")
        client = await cluster.restart("client")
        await escrow.wait_until(lambda: escrow.claims[(ref, accused)].status == CLAIM_EXECUTED)
        assert escrow.now_s() >= state.settle_at_s
        assert escrow.stakes[lazy.address] == STAKE_WEI - escrow.terms.cap_wei  # taken for good
        assert escrow.credit[client.address] >= escrow.terms.cap_wei // 4  # half is burned
        assert (
            await client.live().requester.slasher.wait_settled(job_id, ref.task_id, PASS)
            == EXECUTED
        )
        assert sum(1 for t in client.chain.transactions if t.what == "claim_pass") == 1  # type: ignore[union-attr]
        assert sum(1 for t in client.chain.transactions if t.what == "execute_slash") == 1  # type: ignore[union-attr]
        assert all(escrow.stakes[c.address] == STAKE_WEI for c in honest)
        assert escrow.conserved()


async def test_too_few_staked_checkers_claim_nothing(
    autojump_clock: trio.testing.MockClock, tmp_path: Path
) -> None:
    """Two staked checkers besides the lazy one, below the escrow's quorum (three here: a
    fresh worker's result meets two checkers at normal, and its plant a third): the claim
    is impossible and nothing is locked; the strike and the withheld fee stay."""
    async with open_cluster(tmp_path) as cluster:
        cluster.escrow.terms = replace(cluster.escrow.terms, quorum=3)
        client = await cluster.add("client", "client", plant_rate_ppm=EVERY_RESULT)
        await cluster.add("w1", "worker")
        lazy = await staked(cluster, "lazy", "lazy")
        honest = [await staked(cluster, f"c{i}") for i in (1, 2)]
        await cluster.settle("client", 4)
        job_id = await cluster.submit("client", frames=4)
        claimed_job, _, final = await pass_claim_settled(client)
        assert (claimed_job, final) == (job_id, IMPOSSIBLE)
        role = client.live().requester
        assert lazy.key.node_id.raw in role.struck
        assert cluster.escrow.claims == {} and not any(cluster.escrow.locked.values())
        assert cluster.escrow.stakes[lazy.address] == STAKE_WEI
        assert all(c.live().checker.pass_rechecks.rendered == 0 for c in honest)  # type: ignore[union-attr]


async def test_a_lazy_checker_without_stake_costs_no_claimer_a_render(
    autojump_clock: trio.testing.MockClock, tmp_path: Path
) -> None:
    """Nothing to take: the claim is impossible before anyone is asked."""
    async with open_cluster(tmp_path) as cluster:
        # a requester that asks unstaked checkers too (not the default: checker_stake_wei)
        client = await cluster.add("client", "client", plant_rate_ppm=EVERY_RESULT,
                                   checker_stake_wei=0)  # fmt: skip
        await cluster.add("w1", "worker")
        lazy = await cluster.add("lazy", "checker", adversary="lazy", stake=False)
        cluster.escrow.checkers.add(lazy.address)  # registered, never staked
        honest = [await staked(cluster, f"c{i}") for i in (1, 2, 3)]
        await cluster.settle("client", 5)
        await cluster.submit("client", frames=6)
        _, _, final = await pass_claim_settled(client)
        assert final == IMPOSSIBLE and cluster.escrow.claims == {}
        assert all(c.live().checker.pass_rechecks.rendered == 0 for c in honest)  # type: ignore[union-attr]


async def test_a_lazy_checker_that_unbonded_is_still_claimed(
    autojump_clock: trio.testing.MockClock, tmp_path: Path
) -> None:
    """Review (this stop): the slasher asked whether the accused had *active* stake, so a
    checker that took checks while staked and then asked to unbond everything escaped
    every claim ("holds no stake"), though the escrow still takes unbonding stake. The
    claim now asks what the escrow could take (``protocol.slashing.takeable_wei``)."""
    async with open_cluster(tmp_path) as cluster:
        # asked while its stake was active; here its stake is all unbonding from the start
        await cluster.add("client", "client", plant_rate_ppm=EVERY_RESULT, checker_stake_wei=0)
        await cluster.add("w1", "worker")
        lazy = await cluster.add("lazy", "checker", adversary="lazy", stake=False)
        cluster.escrow.checkers.add(lazy.address)
        cluster.escrow.unbonding[lazy.address] = STAKE_WEI
        [await staked(cluster, f"c{i}") for i in (1, 2, 3)]
        await cluster.settle("client", 5)
        await cluster.submit("client", frames=6)
        escrow = cluster.escrow
        await escrow.wait_until(lambda: any(w == lazy.address for _, w in escrow.claims))
        assert escrow.unbonding[lazy.address] == STAKE_WEI - escrow.terms.cap_wei


async def test_a_lazy_checker_whose_stake_is_locked_behind_claims_it_signed_is_still_claimed(
    autojump_clock: trio.testing.MockClock, tmp_path: Path
) -> None:
    """Review of stop 45: the slasher and the claimers asked whether the accused held
    stake a claim could take *now*, so a checker that locked all of it behind claims it
    signed escaped every pass claim. Locked stake counts now (``stake_held_wei``): the
    claim opens holding nothing and is owed until the locks come back."""
    async with open_cluster(tmp_path) as cluster:
        await cluster.add("client", "client", plant_rate_ppm=EVERY_RESULT, checker_stake_wei=0)
        await cluster.add("w1", "worker")
        lazy = await cluster.add("lazy", "checker", adversary="lazy", stake=False)
        escrow = cluster.escrow
        escrow.checkers.add(lazy.address)
        escrow.stakes[lazy.address] = escrow.locked[lazy.address] = STAKE_WEI
        [await staked(cluster, f"c{i}") for i in (1, 2, 3)]
        await cluster.settle("client", 5)
        await cluster.submit("client", frames=6)
        await escrow.wait_until(lambda: any(w == lazy.address for _, w in escrow.claims))
        ((ref, accused),) = [k for k in escrow.claims if k[1] == lazy.address][:1]
        assert escrow.claims[(ref, accused)].taken_wei == 0  # owed: the locks hold it


async def test_a_checker_whose_stake_other_claims_hold_is_not_picked_to_sign(
    autojump_clock: trio.testing.MockClock, tmp_path: Path
) -> None:
    """Review (this stop): claimers were picked by active stake, but the escrow locks each
    signer's *free* stake and refuses the whole claim for one signer short of it ("stake
    at risk too low"), after every claimer had rendered. A checker whose stake other
    pending claims hold (an honest claimer's, for their 2-day window) is not picked now
    (``protocol.slashing.may_back_claim``), and the claim goes out with the others."""
    async with open_cluster(tmp_path) as cluster:
        await cluster.add("client", "client", plant_rate_ppm=EVERY_RESULT)
        await cluster.add("w1", "worker")
        lazy = await staked(cluster, "lazy", "lazy")
        honest = [await staked(cluster, f"c{i}") for i in (1, 2, 3)]
        escrow = cluster.escrow
        busy = honest[0]
        escrow.locked[busy.address] = STAKE_WEI  # all of it behind other claims
        await cluster.settle("client", 5)
        await cluster.submit("client", frames=6)
        await escrow.wait_until(lambda: any(w == lazy.address for _, w in escrow.claims))
        ((ref, accused),) = [k for k in escrow.claims if k[1] == lazy.address][:1]
        evidence = escrow.evidence(ref, accused)
        assert evidence is not None and busy.address not in evidence.claimers


async def test_picks_that_do_not_know_the_job_are_sent_its_announce(
    autojump_clock: trio.testing.MockClock, tmp_path: Path
) -> None:
    """Review (stop 26, finding 9): a checker knows a job only from its announce, so a
    pick that joined after it, or whose bounded map let it go, refused to re-render until
    the job's next re-announce (5 min, and none once every frame is awarded): the claim
    waited or ran out of signatures. The slasher now sends each pick the announce before
    its request. Here every staked checker forgets the job just before the picks are
    made, after the job had introduced itself to it: they sign in the first round."""
    async with open_cluster(tmp_path) as cluster:
        client, lazy, honest = await lazy_and_three_honest(cluster)
        slasher = client.live().requester.slasher
        pick = slasher._pick_claimers
        assert pick is not None
        picked_at: list[float] = []

        async def pick_from_forgetful(*args: Any) -> dict[bytes, bytes]:
            for job in client.live().requester.jobs.values():
                job._introduced.update(c.key.node_id.raw for c in honest)
            for c in honest:
                c.live().checker.specs.clear()  # type: ignore[union-attr]
            picked_at.append(trio.current_time())
            return await pick(*args)

        slasher._pick_claimers = pick_from_forgetful
        await cluster.submit("client", frames=6)
        escrow = cluster.escrow
        await escrow.wait_until(lambda: any(w == lazy.address for _, w in escrow.claims))
        assert trio.current_time() - picked_at[0] < RESEND_S  # the first round signed
        assert (await pass_claim_settled(client))[2] != IMPOSSIBLE


async def test_no_claim_is_started_once_the_escrows_window_for_the_job_closed(
    autojump_clock: trio.testing.MockClock, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The escrow refuses a claim past the job's deadline + grace ("claim window over",
    tests/ledger/test_claim_window.py); the slasher sees it before it asks anyone to
    re-render for a claim that cannot go out."""
    async with open_cluster(tmp_path) as cluster:
        client, _, honest = await lazy_and_three_honest(cluster)
        escrow, slasher = cluster.escrow, client.live().requester.slasher
        due = slasher.on_pass_claim_due
        clock = escrow.now_s

        def late(spec: JobSpec, claim_due: PassClaimDue) -> None:
            escrow.now_s = lambda: clock() + 30 * 24 * 3600  # the chain's clock, a month on
            due(spec, claim_due)

        slasher.on_pass_claim_due = late  # type: ignore[method-assign]
        await cluster.submit("client", frames=6)
        assert (await pass_claim_settled(client))[2] == IMPOSSIBLE
        whys = [getattr(r, "fields", {}).get("why") for r in caplog.records]
        assert "claim window over" in whys
        assert sum(c.live().checker.pass_rechecks.rendered for c in honest) == 0  # type: ignore[union-attr]
        assert not escrow.claims


async def test_a_signer_whose_stake_went_elsewhere_after_it_signed_is_left_out(
    autojump_clock: trio.testing.MockClock, tmp_path: Path
) -> None:
    """Review (stop 26): picks are read for free stake when picked, but one whose stake
    another claim locks (or that unbonds) before the claim goes out made the escrow
    refuse the whole claim ("stake at risk too low") after every claimer had rendered.
    The slasher reads its signers again before it submits, leaves out one that is short
    and waits for another's signature."""
    async with open_cluster(tmp_path) as cluster:
        client, lazy, honest = await lazy_and_three_honest(cluster)
        escrow, slasher = cluster.escrow, client.live().requester.slasher
        heard = slasher.on_fraud_signed
        short: list[bytes] = []

        def first_signer_busy_elsewhere(sender: bytes, signed: FraudSigned) -> None:
            heard(sender, signed)
            if not short:
                member = next(c for c in honest if c.key.node_id.raw == sender)
                short.append(member.address)
                escrow.locked[member.address] = STAKE_WEI  # all of it, by another claim

        slasher.on_fraud_signed = first_signer_busy_elsewhere  # type: ignore[method-assign]
        await claimed_without(cluster, client, lazy, short)


async def test_a_signer_whose_stake_moves_after_the_last_read_is_left_out_on_the_revert(
    autojump_clock: trio.testing.MockClock, tmp_path: Path
) -> None:
    """Review: between the slasher's read of its signers and the block, a pick (a friend
    of the accused) unbonds: the escrow reverts "stake at risk too low", and the claim
    ended 'impossible' for good. The revert now leaves that signer out too, and the
    gathering goes on."""
    async with open_cluster(tmp_path) as cluster:
        client, lazy, _ = await lazy_and_three_honest(cluster)
        escrow, slasher = cluster.escrow, client.live().requester.slasher
        read = slasher._leave_out_short
        moved: list[bytes] = []

        async def stake_moves_after_the_read(claim: Claim) -> bool:
            short = await read(claim)
            if not short and not moved:
                moved.append(next(iter(claim.sigs)))
                escrow.locked[moved[0]] = STAKE_WEI  # before the claim's block
            return short

        slasher._leave_out_short = stake_moves_after_the_read  # type: ignore[method-assign]
        await claimed_without(cluster, client, lazy, moved)


async def test_honest_claimers_never_sign_against_a_pass_whose_cells_are_right(
    autojump_clock: trio.testing.MockClock, tmp_path: Path
) -> None:
    """A requester that claims an honest checker's pass (here: of the worker's real
    frame, as if a plant had left that checker's cells unchanged) gets no signature:
    every claimer re-renders exactly those cells, finds them right and signs nothing."""
    async with open_cluster(tmp_path) as cluster:
        client = await cluster.add("client", "client")
        await cluster.add("w1", "worker")
        checkers = [await staked(cluster, f"c{i}") for i in (1, 2, 3, 4)]
        await cluster.settle("client", 5)
        role = client.live().requester
        job, task_id, result = await one_frame(cluster)
        served = job.frames.canonical[result.frame_cid]  # what checkers were served
        accused = checkers[0]
        settings, spec, task = job.spec.settings, job.spec, job.machine._tasks[task_id]
        secret = b"\x05" * 32
        cells = select_tiles(task.result_digest, secret, settings.resolution_x,
                             settings.resolution_y, 3, DEFAULT_POLICY.sampling.tile_px)  # fmt: skip
        verdict = Verdict(job.job_id, task_id, result.frame, task.worker, task.result_digest, True,
                          secret, tuple(TileEvidence(t.x, t.y, t.width, t.height, 99_000, 0)
                                        for t in cells),
                          spec.renderer_build, "cpu", tuple(bytes(32) for _ in cells))  # fmt: skip
        verdict = replace(verdict, pass_sig=sign_pass(spec, verdict, served, accused.payment_key))
        due = PassClaimDue(job.job_id, task_id, result.frame, served, accused.key.node_id.raw,
                           accused.address, verdict)  # fmt: skip
        role.slasher.on_pass_claim_due(spec, due)
        _, _, final = await pass_claim_settled(client)
        assert final == IMPOSSIBLE
        others = checkers[1:]
        assert sum(c.live().checker.pass_rechecks.rendered for c in others) >= 2  # type: ignore[union-attr]
        assert all(c.live().checker.pass_rechecks.signed == 0 for c in others)  # type: ignore[union-attr]
        assert cluster.escrow.claims == {}
        assert cluster.escrow.stakes[accused.address] == STAKE_WEI


async def test_an_honest_checker_answers_a_false_claim_against_its_pass(
    autojump_clock: trio.testing.MockClock, tmp_path: Path
) -> None:
    """Colluders (two staked accounts) claim an honest checker's signed pass of a right
    frame. The checker's node watches every pass it signs, sees the claim, and asks the
    other checkers to re-check: they re-render the pass's cells (its published verdict)
    of the frame, fetched from the accused, find them right and sign Clean; their larger
    quorum cancels the claim, and the checker's stake is whole again."""
    async with open_cluster(tmp_path) as cluster:
        await cluster.add("client", "client", plant_rate_ppm=0)
        await cluster.add("w1", "worker")
        checkers = [await staked(cluster, f"c{i}") for i in (1, 2, 3, 4)]
        sent: list[tuple[Member, Verdict]] = []
        for member in checkers:  # what each checker sends, to find a signed pass
            outbox = member.live().ctx.outbox

            def spy(to: bytes, message: object, m: Member = member, send=outbox.send) -> None:  # type: ignore[no-untyped-def]
                if isinstance(message, Verdict):
                    sent.append((m, message))
                send(to, message)

            outbox.send = spy  # type: ignore[method-assign]
        await cluster.settle("client", 5)
        job, task_id, result = await one_frame(cluster)
        job_id = job.job_id
        accused, verdict = next((m, v) for m, v in sent if v.passed and v.task_id == task_id)
        assert verdict.pass_sig is not None
        served = job.frames.canonical[result.frame_cid]
        signed = checker_pass(job.spec, verdict, served, accused.address)
        assert signed is not None
        escrow = cluster.escrow
        colluders = [Account.create().key for _ in range(escrow.terms.quorum)]
        for key in colluders:
            escrow.register(bytes.fromhex(Account.from_key(key).address[2:]), STAKE_WEI)
        claim = signed.claim(escrow.terms.cap_wei)
        sigs = order_signatures(claim, [sign(claim, key) for key in colluders])
        # every checker holds exactly the minimum: the claim's take drops the accused's flag
        escrow.checker_min_stake_wei = escrow.stakes[accused.address]
        escrow.claim_pass(
            signed, verdict.pass_sig, claim.amount_wei, sigs, pack_evidence([verdict])
        )
        key = (signed.ref, accused.address)
        assert escrow.claims[key].status == CLAIM_PENDING
        assert escrow.stakes[accused.address] == STAKE_WEI - claim.amount_wei
        assert accused.address not in escrow.checkers
        await escrow.wait_until(lambda: escrow.claims[key].status == CLAIM_ANSWERED)
        assert escrow.stakes[accused.address] == STAKE_WEI
        others = [c for c in checkers if c is not accused]
        assert sum(c.live().checker.rechecks.signed for c in others) > len(colluders)  # type: ignore[union-attr]
        defence = accused.live().checker.defence  # type: ignore[union-attr]
        assert await defence.answerer.wait_ended(job_id, task_id) == "answer stood"
        # the escrow does not restore the flag: the checker's node registers again, once
        await escrow.wait_until(lambda: accused.address in escrow.checkers)
        whats = [t.what for t in accused.chain.transactions]  # type: ignore[union-attr]
        assert whats.count("register_checker") == 1


def test_a_stored_pass_claim_keeps_its_kind_and_older_rows_read_as_fraud() -> None:
    from ledger.fraud import FraudClaim, ResultRef
    from node.roles.slasher import FRAUD, GATHERING, Claim
    from protocol.codec import packb, unpackb

    ref = ResultRef(1, b"\xe7" * 20, b"\x01" * 20, b"j" * 32, b"t" * 32, 3, b"d" * 32)
    claim = Claim(FraudClaim(ref, b"\x02" * 20, b"x" * 32, 10**17), b"s" * 65, "bafyplant",
                  (), (b"v" * 32,), kind=PASS, excluded=(b"a" * 32, b"w" * 32))  # fmt: skip
    back = Claim.unpack(GATHERING, claim.pack())
    assert (back.kind, back.excluded, back.claim, back.key) == (
        PASS, claim.excluded, claim.claim, (b"j" * 32, b"t" * 32, PASS)
    )  # fmt: skip
    older = packb(unpackb(claim.pack())[:17])  # a row stored before pass claims
    assert Claim.unpack(GATHERING, older).kind == FRAUD
    # The picks are kept (review: a pick asked before a restart that signed after it was
    # refused, "a fraud signature we did not ask for", and scored).
    claim.picked = {b"p" * 32: b"\x03" * 20, b"q" * 32: b"\x04" * 20}
    claim.rejecters = tuple(claim.picked)
    assert Claim.unpack(GATHERING, claim.pack()).picked == claim.picked


async def test_the_lazy_checkers_sybils_answer_and_the_requester_overturns_them(
    autojump_clock: trio.testing.MockClock, tmp_path: Path
) -> None:
    """Issue 17 (stop-26 review finding 3): the lazy checker's own staked sybils (keys of
    the test's, no node behind them) answer the true claim on its pass with one more
    Clean than it had claimers. The answer locks their stake; the requester's slasher
    sees the claim contested, picks more staked checkers (three joined since, knowing
    nothing of the job) to re-render the pass's cells, and with more Fraud signatures than
    the answer had, none an answerer, overturns it: the claim executes and each sybil
    loses the cap it locked. Before answers were bonded, the sybils took the claimers'."""
    async with open_cluster(tmp_path) as cluster:
        client, lazy, honest = await lazy_and_three_honest(cluster)
        job_id = await cluster.submit("client", frames=6)
        escrow = cluster.escrow
        await escrow.wait_until(lambda: any(w == lazy.address for _, w in escrow.claims))
        ((ref, accused),) = [k for k in escrow.claims if k[1] == lazy.address][:1]
        evidence = escrow.evidence(ref, accused)
        assert evidence is not None
        sybils = [bytes(Account.create().key) for _ in range(len(evidence.claimers) + 1)]
        for key in sybils:
            escrow.register(bytes.fromhex(Account.from_key(key).address[2:]), STAKE_WEI)
        vote = CleanAnswer(ref, accused, evidence.tiles).rung(evidence.claimers, 0)
        escrow.answer_claim(vote, evidence.claimers,  # type: ignore[arg-type]
                            order_signatures(vote, [sign(vote, k) for k in sybils]))  # fmt: skip
        assert escrow.claims[(ref, accused)].status == CLAIM_CONTESTED
        (answerers,) = escrow.ladders[(ref, accused)]
        for i in (4, 5, 6):  # enough honest checkers to outnumber the sybils, none of them asked yet
            await staked(cluster, f"c{i}")
        await cluster.settle("client", 8)
        await escrow.wait_until(lambda: escrow.claims[(ref, accused)].status == CLAIM_EXECUTED)
        slasher = client.live().requester.slasher
        assert await slasher.wait_settled(job_id, ref.task_id, PASS) == EXECUTED
        assert [t.what for t in client.chain.transactions].count("escalate") == 1  # type: ignore[union-attr]
        for a in answerers:  # each sybil lost what its answer locked
            assert (escrow.stakes[a], escrow.locked.get(a, 0)) == (STAKE_WEI - escrow.terms.cap_wei, 0)
            assert a not in escrow.credit
        assert escrow.stakes[lazy.address] == STAKE_WEI - escrow.terms.cap_wei
        assert all(escrow.locked.get(c.address, 0) == 0 for c in honest)
        assert escrow.conserved()


async def test_a_settled_jobs_announce_is_rebuilt_from_the_store_for_a_pick(
    autojump_clock: trio.testing.MockClock, tmp_path: Path
) -> None:
    """Review (stop 26, finding 8): after a restart a settled job is no longer among the
    requester's jobs, but its claims go on (stored) and their picks must learn the job
    from its announce; ``introduce`` sent nothing then. It now rebuilds the announce
    from the spec the store keeps."""
    async with open_cluster(tmp_path) as cluster:
        client, _, _ = await lazy_and_three_honest(cluster)
        job, _, _ = await one_frame(cluster)
        newcomer = await staked(cluster, "c4")
        requester = client.live().requester
        del requester.jobs[job.job_id]  # as after a restart, once the job settled
        assert job.job_id not in newcomer.live().checker.specs  # type: ignore[union-attr]
        await requester.introduce(job.job_id, newcomer.key.node_id.raw)
        await newcomer.live().ctx.node.wait_until(
            lambda: job.job_id in newcomer.live().checker.specs  # type: ignore[union-attr]
        )
        assert newcomer.live().checker.specs[job.job_id] == job.spec  # type: ignore[union-attr]
        await requester.introduce(b"\x00" * 32, newcomer.key.node_id.raw)  # unknown: nothing


async def test_a_pass_the_second_checker_contradicts_costs_its_checker_the_cap(
    autojump_clock: trio.testing.MockClock, tmp_path: Path
) -> None:
    """Stop 46: a fresh worker's wrong frame, no plants. A colluding checker (here the
    lazy one, asked first) passes it with a signed pass; the second checker renders and
    rejects it; the requester confirms the rejection (the pass is worth a claim) and, the
    dispute's majority upholding it, claims that pass as it would a missed plant: staked
    checkers re-render the passer's own cells of the frame it signed, find them wrong and
    sign, and the escrow takes the cap. Before, only a plant's miss was ever claimed, so a
    colluder lost nothing for a pass an honest checker exposed."""
    async with open_cluster(tmp_path) as cluster:
        client = await cluster.add("client", "client", plant_rate_ppm=0)
        await cluster.add("w1", "worker", adversary="wrong-seed")
        lazy = await staked(cluster, "lazy", "lazy")
        honest = [await staked(cluster, f"c{i}") for i in (1, 2, 3)]
        await cluster.settle("client", 5)
        role = client.live().requester
        # the lazy checker is the one given the fewest checks: it is asked first
        role._given["check"].update({c.key.node_id.raw: 1 for c in honest} | {lazy.key.node_id.raw: 0})
        job_id = await cluster.submit("client", frames=1)
        escrow = cluster.escrow
        await escrow.wait_until(lambda: any(w == lazy.address for _, w in escrow.claims))
        ((ref, accused),) = [k for k in escrow.claims if k[1] == lazy.address]
        assert ref.job_id == job_id
        task = role.jobs[job_id].machine._tasks[ref.task_id]
        # the rejection was confirmed by a dispute's majority first: one checker's is not enough
        assert task.state is TaskState.REJECTED and task.rejected_by != lazy.key.node_id.raw
        assert len(task.dispute_votes) >= 1 and not any(task.dispute_votes.values())
        evidence = escrow.evidence(ref, accused)
        assert evidence is not None
        verdict = claimed_pass(evidence.published, evidence.tiles, job_id, ref.task_id, ref.frame)
        assert verdict is not None and verdict.passed  # the lazy checker's own pass
        assert set(evidence.claimers) <= {c.address for c in honest}
        assert len(evidence.claimers) >= escrow.terms.quorum
        await escrow.wait_until(lambda: escrow.claims[(ref, accused)].status == CLAIM_EXECUTED)
        assert escrow.stakes[lazy.address] == STAKE_WEI - escrow.terms.cap_wei
        assert all(escrow.stakes[c.address] == STAKE_WEI for c in honest)
        assert escrow.conserved()


async def test_a_lying_second_checker_gets_no_honest_pass_claimed(
    autojump_clock: trio.testing.MockClock, tmp_path: Path
) -> None:
    """Review of stop 46: claimed at the rejection, one lying checker set staked checkers
    rendering against an honest pass, and showed that pass's signed verdict to every pick.
    Now only a dispute's majority upholding the rejection claims the pass: here the
    dispute overturns the lie, the frame is accepted and nobody re-renders for a claim."""
    async with open_cluster(tmp_path) as cluster:
        client = await cluster.add("client", "client", plant_rate_ppm=0)
        await cluster.add("w1", "worker")
        first = await staked(cluster, "c1")
        liar = await staked(cluster, "liar", "false-reject")
        others = [await staked(cluster, f"c{i}") for i in (2, 3, 4)]
        await cluster.settle("client", 6)
        role = client.live().requester
        given = {c.key.node_id.raw: 2 for c in others} | {first.key.node_id.raw: 0}
        role._given["check"].update(given | {liar.key.node_id.raw: 1})  # c1, then the liar
        job_id = await cluster.submit("client", frames=1)
        job = role.jobs[job_id]
        await job.done.wait()
        assert job.view.outcome == "completed"
        (task,) = [t for t in job.machine._tasks.values() if t.rejected_by]
        assert task.rejected_by == liar.key.node_id.raw and task.state is TaskState.OVERTURNED
        assert not [k for k in role.slasher.settled if k[2] == PASS]
        assert cluster.escrow.claims == {}
        for checker in (first, *others):
            assert checker.live().checker.pass_rechecks.rendered == 0  # type: ignore[union-attr]

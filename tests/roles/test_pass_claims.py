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

import trio

from ledger.client import CLAIM_EXECUTED, CLAIM_PENDING
from ledger.fraud import sign_pass
from node.roles.slasher import EXECUTED, IMPOSSIBLE, PASS
from protocol.envelope import decode_envelope
from protocol.fraud_evidence import claimed_pass
from protocol.market import PassClaimDue
from protocol.messages import Result, TileEvidence, Verdict
from protocol.verification import DEFAULT_POLICY, select_tiles
from tests.roles.cluster import Cluster, Member, open_cluster

EVERY_RESULT = 1_000_000  # plant_rate_ppm: every checked result gets a plant
STAKE_WEI = 10**18


async def staked(cluster: Cluster, name: str, adversary: str | None = None) -> Member:
    extra = {} if adversary is None else {"adversary": adversary}
    member = await cluster.add(name, "checker", **extra)
    cluster.escrow.register(member.address, STAKE_WEI)
    return member


async def pass_claim_settled(client: Member) -> tuple[bytes, bytes, str]:
    """(job, task, final state) of the first pass claim that ended at ``client``."""
    slasher = client.live().requester.slasher
    while not (ended := [k for k in slasher.settled if k[2] == PASS]):
        await slasher._changed.wait()
    job_id, task_id, _ = ended[0]
    return job_id, task_id, slasher.settled[ended[0]]


async def test_a_lazy_checker_that_passes_a_plant_loses_the_cap_across_a_restart(
    autojump_clock: trio.testing.MockClock, tmp_path: Path
) -> None:
    async with open_cluster(tmp_path) as cluster:
        client = await cluster.add("client", "client", plant_rate_ppm=EVERY_RESULT)
        await cluster.add("w1", "worker")
        lazy = await staked(cluster, "lazy", "lazy")
        honest = [await staked(cluster, f"c{i}") for i in (1, 2, 3)]
        await cluster.settle("client", 5)
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
        assert escrow.credit[client.address] >= escrow.terms.cap_wei // 2
        assert await client.live().requester.slasher.wait_settled(job_id, ref.task_id, PASS) == EXECUTED
        assert sum(1 for t in client.chain.transactions if t.what == "claim_pass") == 1  # type: ignore[union-attr]
        assert sum(1 for t in client.chain.transactions if t.what == "execute_slash") == 1  # type: ignore[union-attr]
        assert all(escrow.stakes[c.address] == STAKE_WEI for c in honest)
        assert escrow.conserved()


async def test_too_few_staked_checkers_claim_nothing(
    autojump_clock: trio.testing.MockClock, tmp_path: Path
) -> None:
    """One staked checker besides the lazy one, below the escrow's quorum: the claim is
    impossible and nothing is locked; the strike and the withheld fee stay."""
    async with open_cluster(tmp_path) as cluster:
        client = await cluster.add("client", "client", plant_rate_ppm=EVERY_RESULT)
        await cluster.add("w1", "worker")
        lazy = await staked(cluster, "lazy", "lazy")
        honest = await staked(cluster, "c1")
        await cluster.settle("client", 3)
        job_id = await cluster.submit("client", frames=4)
        assert cluster.escrow.terms.quorum > 1
        claimed_job, _, final = await pass_claim_settled(client)
        assert (claimed_job, final) == (job_id, IMPOSSIBLE)
        role = client.live().requester
        assert lazy.key.node_id.raw in role.struck
        assert cluster.escrow.claims == {} and not any(cluster.escrow.locked.values())
        assert cluster.escrow.stakes[lazy.address] == STAKE_WEI
        assert honest.live().checker.pass_rechecks.rendered == 0  # type: ignore[union-attr]


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
        job_id = await cluster.submit("client", frames=1)
        role = client.live().requester
        job = role.jobs[job_id]
        await job.done.wait()
        ((task_id, wire),) = job.results.items()
        result = decode_envelope(wire).message
        assert isinstance(result, Result)
        served = job.frames.canonical[result.frame_cid]  # what checkers were served
        accused = checkers[0]
        settings, spec, task = job.spec.settings, job.spec, job.machine._tasks[task_id]
        secret = b"\x05" * 32
        cells = select_tiles(task.result_digest, secret, settings.resolution_x,
                             settings.resolution_y, 3, DEFAULT_POLICY.sampling.tile_px)  # fmt: skip
        verdict = Verdict(job_id, task_id, result.frame, task.worker, task.result_digest, True,
                          secret, tuple(TileEvidence(t.x, t.y, t.width, t.height, 99_000, 0)
                                        for t in cells),
                          spec.renderer_build, "cpu", tuple(bytes(32) for _ in cells))  # fmt: skip
        verdict = replace(verdict, pass_sig=sign_pass(spec, verdict, served, accused.payment_key))
        due = PassClaimDue(job_id, task_id, result.frame, served, accused.key.node_id.raw,
                           accused.address, verdict)  # fmt: skip
        role.slasher.on_pass_claim_due(spec, due)
        _, _, final = await pass_claim_settled(client)
        assert final == IMPOSSIBLE
        others = checkers[1:]
        assert sum(c.live().checker.pass_rechecks.rendered for c in others) >= 2  # type: ignore[union-attr]
        assert all(c.live().checker.pass_rechecks.signed == 0 for c in others)  # type: ignore[union-attr]
        assert cluster.escrow.claims == {}
        assert cluster.escrow.stakes[accused.address] == STAKE_WEI

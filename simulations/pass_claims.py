"""Checker stake in the simulator: whom a requester asks, and a missed plant claimed.

As the node's requester (``node/roles/requester.py``): by default a checker is asked a
check or sent a plant only when its chain-confirmed stake covers what one claim of its
pass takes (``market.checker_stake_wei``, -1: the escrow's ``SLASH_CAP``); the decision
is the job machine's (``JobMachine.checker_qualifies``, fed the checker's stake first).

A checker that passes a plant of an escrowed job is claimed, as the node's claim of a
missed plant does (``Escrow.claim_pass``, docs/VERIFICATION.md "Claiming a checker's
pass on chain"): every cell of a plant is perturbed (``protocol.forced_errors``; the
simulator's frames have no transparent cells, which a node's plant leaves blank), so the
checker's own tiles are wrong wherever it looked (``plant_covers``, the job machine's
test before its ``PassClaimDue``: the simulator's checkers sign no passes, so its
machines emit none for plants; they do for a pass a dispute's majority showed false,
``claim_contradicted_pass``), and a quorum of other staked checkers
that re-render them signs. The claim is made only when the escrow could take it
(``protocol.slashing.claim_possible``: at least ``chain.slash_quorum`` other checkers
the node's rule lets it pick, ``protocol.slashing.may_pick_claimer``: not the accused nor
the requester, holding the cap, which each claim locks of its signers, and a cap more kept free); executed at once (not
modelled: an answer by the accused's sybils, docs/VERIFICATION.md), it takes ``min(SLASH_CAP, stake)`` of the checker, half burned, a
quarter to the claimers in equal parts and a quarter to the requester (``ChainModel.slash``,
``protocol.slashing.slash_split``). Not modelled:
the escrow's registration minimum for signers (``CHECKER_MIN_STAKE``, 1 ether by
default: the devnet's checkers hold it; a simulated checker counts as registered) and
the claimers' re-render cost (a check's,
against a share of 0.0125 ETH); claimers are taken fewest claims signed first (the
node's slasher picks at random), and nobody answers (the accused's sybils could).

A whitewashing lazy checker (``adversaries.lazy_checker_whitewash``) posts its stake
again for each fresh key once the claim took it: that stake is the capital it loses
when caught, counted in its profit (``simulations.accounts.stake_net``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from protocol.forced_errors import plant_covers
from protocol.market import JobMachine
from protocol.messages import Verdict
from protocol.slashing import SignerStanding, claim_possible, may_pick_claimer
from protocol.verification import DEFAULT_POLICY, cell_of
from simulations.scenario import PASS_CLAIM_STAKE, Scenario
from simulations.world import faked_from

if TYPE_CHECKING:
    from simulations.world import SimNode, World


def checker_stake_wei(s: Scenario) -> int:
    """The stake a requester asks of checkers (0: none), as the node resolves its setting."""
    setting = s.market.checker_stake_wei
    return s.chain.slash_cap_wei if setting == PASS_CLAIM_STAKE else setting


def asks(world: World, machine: JobMachine, checker: SimNode) -> bool:
    """Whether ``machine`` may ask ``checker``: its stake fed first, as the node's driver
    feeds what the chain confirms before an assignment."""
    if machine.pass_claim_wei or machine.config.min_stake_wei:
        machine.set_stake(checker.address, world.chain.stakes.get(checker.address, 0))
    return machine.checker_qualifies(checker.address)


def claim_missed_plant(
    world: World, requester: SimNode, job_id: bytes, checker: SimNode, verdict: Verdict | None
) -> None:
    """The requester claims ``checker``'s pass of its plant, ``verdict`` (see the module
    docstring), when every cell it names was perturbed (``plant_covers``, as the job
    machine asks before its ``PassClaimDue``)."""
    w = world.scenario.workload
    tile_px = DEFAULT_POLICY.sampling.tile_px
    if verdict is None or not plant_covers(verdict, w.resolution_x, w.resolution_y, tile_px):
        return
    _claim(world, requester, job_id, checker)


def claim_contradicted_pass(
    world: World, requester: SimNode, job_id: bytes, task_id: bytes, checker: SimNode,
    verdict: Verdict,
) -> None:  # fmt: skip
    """The machine's ``PassClaimDue`` for ``checker``'s pass of ``task_id``'s result, which
    a dispute's majority showed false (``VerifyDesk._contradicted_passes``): the claimers
    re-render the passer's own cells of the frame, and the claim goes through only when
    one of them is faked (the ground truth, ``simulations.world.faked_from``); an honest
    pass whose cells missed a partial fake gets no signature (its claimers' renders are
    not modelled). The machine emits it for the simulator's unsigned passes too (it
    leaves signatures to its driver); the node claims the signed ones, all it takes."""
    w = world.scenario.workload
    tile_px = DEFAULT_POLICY.sampling.tile_px
    cells = -(-w.resolution_x // tile_px) * -(-w.resolution_y // tile_px)
    kind = world.result_kind.get(task_id, "honest")
    first = faked_from(kind, world.scenario.adversaries.partial_fraction, cells)
    if any(cell_of(t, w.resolution_x, tile_px) >= first for t in verdict.tiles):
        world.metrics.pass_claims_contradicted += _claim(world, requester, job_id, checker)


def _claim(world: World, requester: SimNode, job_id: bytes, checker: SimNode) -> bool:
    """Claim ``checker``'s pass for the cap, when a quorum of claimers can sign it."""
    cap_wei, quorum = world.scenario.chain.slash_cap_wei, world.scenario.chain.slash_quorum
    signed = world.metrics.pass_claims_signed
    barred = frozenset({checker.address, requester.address})

    def standing(c: SimNode) -> SignerStanding:  # every simulated checker is registered; the
        return SignerStanding(True, world.chain.stakes.get(c.address, 0), 0)  # claims settle at once

    others = sorted(
        (c for c in world.checkers
         if c.online and may_pick_claimer(c.address, standing(c), barred=barred, amount_wei=cap_wei)),
        key=lambda c: (signed.get(c.node_id, 0), c.node_id),
    )  # fmt: skip
    if not claim_possible(len(others), quorum):
        world.metrics.pass_claims_impossible += 1
        return False
    world.metrics.pass_claims += 1
    claimers = others[:quorum]
    for c in claimers:
        signed[c.node_id] = signed.get(c.node_id, 0) + 1
    stake_wei = world.scenario.nodes.checker_stake_wei
    whitewash = world.scenario.adversaries.lazy_checker_whitewash
    repost = whitewash and checker.behaviour == "lazy_checker"

    def taken(ok: bool) -> None:  # a fresh key brings its stake again
        if ok and repost:
            world.chain.stake(checker.address, max(0, stake_wei - world.chain.stakes[checker.address]))

    world.chain.slash(job_id, checker.address, [c.address for c in claimers], requester.address,
                      cap_wei, taken)  # fmt: skip
    return True

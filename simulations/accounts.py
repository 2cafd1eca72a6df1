"""Who gained and who lost in a run: the adversaries' accounts, in wei.

Every figure comes from the run's own books (docs/SIMULATIONS.md, Adversaries):

* a payee's *income* from a job is what its vouchers pay on chain: what was
  paid, or, while the job is not refunded, what the newest voucher it was sent
  still claims from its lane (``min(voucher, lane)``), whichever is more;
* a worker's *cost* is its finished renders valued at the honest ask (a cheat
  costs the share of a render it did: ``workers.WORK_TENTHS``); a checker's is
  its modelled check cost (``verification.check_cost_bps``);
* a requester *withholds* what its machine's books owe its payees
  (``RecordPayment``) minus their income: a free rider signs nothing, a
  clawback takes what the lanes leave it.

``attacker_nodes``: identities that are not honest (replaced sybils count
again). ``attacker_profit_wei``: over every such node that is not honest, income minus cost
(workers, checkers) or what it withheld (requesters). ``honest_margin_wei``:
what as many honest nodes of the same roles made in the same run (their mean),
so that a profit can be read against playing fair. ``honest_loss_wei``: pay
honest payees earned and do not get, plus what honest requesters paid for
accepted wrong or partial frames, plus their fees to lazy checkers and a lazy
pair's fees for the requests it answered without rendering (checks never made). A
worker's or checker's net includes the stake claims took from it (``slashed_wei`` in
all: fraud claims, claims of missed plants), a claimer's or requester's their shares
of it. Gas is
left out (the chain model does not book it per account).
"""

from __future__ import annotations

from collections import defaultdict

from simulations.world import World

HONEST = "honest"


def adversary_accounts(world: World) -> dict[str, int]:
    income = payee_income(world)
    metrics, by_address = world.metrics, world.by_address
    net: dict[bytes, int] = defaultdict(int)  # node id -> its net, by its role's rule
    honest_loss = metrics.bad_frames_paid_wei
    for (job_id, payee), owed in metrics.owed_wei.items():
        short = max(0, owed - income.get((job_id, payee), 0))
        job = world.chain.jobs.get(job_id)
        requester = by_address.get(job.requester) if job is not None else None
        if requester is not None:
            net[requester.node_id] += short
        node = by_address.get(payee)
        if node is not None and node.behaviour == HONEST:
            honest_loss += short
    for node in world.nodes:
        if node.role == "worker":
            net[node.node_id] += -metrics.work_cost_wei.get(node.node_id, 0)
        elif node.role == "checker":
            net[node.node_id] += -metrics.checker_cost_wei.get(node.node_id, 0)
            if node.behaviour == "lazy_checker":
                honest_loss += metrics.checker_fees_wei.get(node.node_id, 0)
            # a lazy pair's fees for requests it answered without rendering: no check made
            honest_loss += metrics.unrendered_fees_wei.get(node.node_id, 0)
    for (_, payee), paid in income.items():
        node = by_address.get(payee)
        if node is not None:
            net[node.node_id] += paid
    chain = world.chain
    for node_id, wei in stake_net(world).items():
        net[node_id] += wei
    honest: dict[str, list[int]] = defaultdict(list)
    attackers: dict[str, int] = defaultdict(int)
    profit = 0
    for node in world.nodes:
        if node.behaviour == HONEST:
            honest[node.role].append(net[node.node_id])
        else:
            attackers[node.role] += 1
            profit += net[node.node_id]
    margin = sum(count * sum(honest[role]) // max(1, len(honest[role]))
                 for role, count in attackers.items())  # fmt: skip
    return {
        "attacker_nodes": sum(attackers.values()),
        "attacker_profit_wei": profit,
        "honest_margin_wei": margin,
        "honest_loss_wei": honest_loss,
        "slashed_wei": sum(chain.slashed.values()),
    }


def stake_net(world: World) -> dict[bytes, int]:
    """Node id -> its shares of slashes (a claimer's, a requester's) minus the stake claims
    took from it (a worker's fraud, a checker's missed plant)."""
    net: dict[bytes, int] = defaultdict(int)
    for address, wei in world.chain.credits.items():
        if (node := world.by_address.get(address)) is not None:
            net[node.node_id] += wei
    for address, wei in world.chain.slashed.items():
        if (node := world.by_address.get(address)) is not None:
            net[node.node_id] -= wei
    return dict(net)


def payee_income(world: World) -> dict[tuple[bytes, bytes], int]:
    """(job, payee) -> what its vouchers pay on chain (see the module docstring)."""
    chain = world.chain
    newest: dict[tuple[bytes, bytes], int] = {}
    for job_id, payee, cumulative in chain.issued:
        key = (job_id, payee)
        if cumulative > newest.get(key, 0):
            newest[key] = cumulative
    out: dict[tuple[bytes, bytes], int] = {}
    for job_id, job in chain.jobs.items():
        for payee in job.lanes.keys() | job.paid_to.keys():
            paid = job.paid_to.get(payee, 0)
            claim = 0 if job.refunded else min(newest.get((job_id, payee), 0), job.lanes.get(payee, 0))
            out[(job_id, payee)] = max(paid, claim)
    return out

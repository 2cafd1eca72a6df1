"""Random operation sequences against the escrow on py-evm, checked against a model.

Every operation's outcome (pays, skips or reverts) is predicted by a small model
and compared; after every step the contract's native balance must equal
deposits + stakes − payouts − refunds − stake withdrawals − slashed-out (credit
withdrawals), and job budgets, lanes, stakes, locks and claims must match the model.
Fraud claims are opened, answered by a larger quorum (which an even larger quorum of
the claim's side outnumbers in turn) and settled for the last rung's side, or executed
after the window. Two
requesters use the same job ids (a squatter), vouchers are redeemed singly and
in batches (with stale, forged and duplicate entries, which are skipped), and
every lane always holds at least what its payee has not been paid.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule, run_state_machine_as_test

from ledger.client import (
    CLAIM_ANSWERED,
    CLAIM_CONTESTED,
    CLAIM_EXECUTED,
    CLAIM_PENDING,
    EscrowClient,
)
from ledger.errors import ChainRevert
from ledger.fraud import FraudClaim, ResultRef, order_signatures, sign
from tests.ledger.conftest import (
    CHALLENGE_S,
    CHECKER_MIN_STAKE_WEI,
    GRACE_S,
    SLASH_CAP_WEI,
    UNBONDING_S,
    Deployed,
    Env,
    make_env,
)

MILLI = 10**15
amounts = st.integers(min_value=0, max_value=50).map(lambda n: n * MILLI)
jobs = st.integers(min_value=0, max_value=2)
owners = st.integers(min_value=0, max_value=1)  # 0: the requester, 1: a squatter reusing ids
workers = st.integers(min_value=0, max_value=1)
frames = st.integers(min_value=0, max_value=1)
stakers = st.integers(min_value=0, max_value=3)
# A claim is taken only at the cap; other amounts are drawn to be refused.
claim_amounts = st.one_of(st.just(SLASH_CAP_WEI), amounts)
CHECKER_STAKE_WEI = CHECKER_MIN_STAKE_WEI + 2 * SLASH_CAP_WEI  # survives a lost claim
DEBT_S = 90 * 86400  # Escrow.DEBT_S: how long an executed claim short of its amount is owed
JobKey = tuple[int, bytes]  # (owner, job id)
ClaimKey = tuple[int, int, int]  # (job, worker, frame) of the requester's jobs
TILES = b"\x01" * 32


@dataclass
class ClaimModel:
    taken_wei: int
    amount_wei: int
    settle_at_s: int
    status: int = CLAIM_PENDING
    ladder: list[list[bytes]] = field(default_factory=list)  # each rung's signers, ascending
    from_unbonding_wei: int = 0  # the part of taken_wei from the unbonding bucket


@dataclass
class Model:
    inflow_wei: int = 0  # deposits + stakes
    outflow_wei: int = 0  # payouts + refunds + stake withdrawals + credit withdrawals
    remaining: dict[JobKey, int] = field(default_factory=dict)
    unallocated: dict[JobKey, int] = field(default_factory=dict)
    deadline: dict[JobKey, int] = field(default_factory=dict)
    refunded: set[JobKey] = field(default_factory=set)
    lane: dict[tuple[JobKey, bytes], int] = field(default_factory=dict)
    paid: dict[tuple[JobKey, bytes], int] = field(default_factory=dict)
    active: dict[bytes, int] = field(default_factory=dict)
    unbonding: dict[bytes, tuple[int, int]] = field(default_factory=dict)  # amount, unbond_at
    credit: dict[bytes, int] = field(default_factory=dict)
    locked: dict[bytes, int] = field(default_factory=dict)
    checker: set[bytes] = field(default_factory=set)
    claims: dict[ClaimKey, ClaimModel] = field(default_factory=dict)


class EscrowMachine(RuleBasedStateMachine):
    def __init__(self, dep: Deployed) -> None:
        super().__init__()
        self.dep = dep
        self.snapshot = dep.chain.snapshot()
        self.env: Env = make_env(dep)
        self.job_ids = [os.urandom(32) for _ in range(3)]
        self.model = Model()
        self.touched: set[JobKey] = set()  # jobs changed since the last check (reads are slow)
        # Checkers 0-1 claim, 2-4 (a larger quorum) answer, 0-1 with worker 2 and the
        # outsider (four) overturn an answer.
        self.extra = [self.env.workers[2], self.env.outsider]
        for checker in [*self.env.checkers, *self.extra]:
            checker.send(checker.calls.stake(CHECKER_STAKE_WEI))
            checker.send(checker.calls.register_checker())
            self.model.inflow_wei += CHECKER_STAKE_WEI
            self.model.active[checker.account] = CHECKER_STAKE_WEI
            self.model.checker.add(checker.account)
        # Start from open jobs with lanes and staked workers so that most operations can succeed.
        for job in range(3):
            self.deposit(0, job, 60 * MILLI)
            self.open_lanes(0, job, 20 * MILLI, 20 * MILLI)
        for worker in range(2):
            self.stake(worker, 20 * MILLI)

    def teardown(self) -> None:
        self.dep.chain.revert(self.snapshot)

    def next_block_s(self) -> int:
        return self.env.chain.timestamp_s() + 1  # py-evm mines each tx one second later

    def attempt(self, client: EscrowClient, call: object, expect_ok: bool) -> None:
        try:
            client.send(call)  # type: ignore[arg-type]
        except ChainRevert as exc:
            assert not expect_ok, f"unexpected revert: {exc.reason}"
            return
        assert expect_ok, "expected a revert"

    def owner(self, owner: int) -> EscrowClient:
        return [self.env.requester, self.env.outsider][owner]

    def live(self, key: JobKey) -> bool:
        m = self.model
        return (key in m.remaining and key not in m.refunded
                and self.next_block_s() <= m.deadline[key] + GRACE_S)  # fmt: skip

    @rule(owner=owners, job=jobs, amount_wei=amounts)
    def deposit(self, owner: int, job: int, amount_wei: int) -> None:
        m, key, client = self.model, (owner, self.job_ids[job]), self.owner(owner)
        deadline_s = max(m.deadline.get(key, 0), self.next_block_s() + 2000)
        # a top-up only while the job's vouchers pay (the claim window never reopens)
        ok = (amount_wei > 0 and key not in m.refunded
              and (key not in m.deadline or self.next_block_s() <= m.deadline[key] + GRACE_S))  # fmt: skip
        self.attempt(client, client.calls.deposit(key[1], amount_wei, deadline_s), ok)
        if ok:
            m.inflow_wei += amount_wei
            m.remaining[key] = m.remaining.get(key, 0) + amount_wei
            m.unallocated[key] = m.unallocated.get(key, 0) + amount_wei
            m.deadline[key] = deadline_s
            self.touched.add(key)

    @rule(owner=owners, job=jobs, first_wei=amounts, second_wei=amounts)
    def open_lanes(self, owner: int, job: int, first_wei: int, second_wei: int) -> None:
        m, key, client = self.model, (owner, self.job_ids[job]), self.owner(owner)
        payees = [w.account for w in self.env.workers[:2]]
        ok = self.live(key) and first_wei + second_wei <= m.unallocated[key]
        call = client.calls.open_lanes(key[1], zip(payees, [first_wei, second_wei], strict=True))
        self.attempt(client, call, ok)
        if ok:
            m.unallocated[key] -= first_wei + second_wei
            self.touched.add(key)
            for payee, amount_wei in zip(payees, [first_wei, second_wei], strict=True):
                m.lane[(key, payee)] = m.lane.get((key, payee), 0) + amount_wei

    def due(self, key: JobKey, payee: bytes, cumulative_wei: int) -> int:
        m = self.model
        if not self.live(key):
            return 0
        paid = m.paid.get((key, payee), 0)
        return max(0, min(cumulative_wei, m.lane.get((key, payee), 0)) - paid)

    def apply_redeem(self, key: JobKey, payee: bytes, amount_wei: int) -> None:
        m = self.model
        self.touched.add(key)
        m.outflow_wei += amount_wei
        m.remaining[key] -= amount_wei
        m.paid[(key, payee)] = m.paid.get((key, payee), 0) + amount_wei

    @rule(owner=owners, job=jobs, worker=workers, cumulative_wei=amounts)
    def redeem(self, owner: int, job: int, worker: int, cumulative_wei: int) -> None:
        key, payee = (owner, self.job_ids[job]), self.env.workers[worker]
        if cumulative_wei == 0:
            return
        due_wei = self.due(key, payee.account, cumulative_wei)
        voucher = self.env.voucher(key[1], payee, cumulative_wei, requester=self.owner(owner))
        self.attempt(self.env.outsider, self.env.outsider.calls.redeem(voucher), due_wei > 0)
        if due_wei > 0:
            self.apply_redeem(key, payee.account, due_wei)

    @rule(entries=st.lists(st.tuples(owners, jobs, workers, amounts, st.booleans()),
                           min_size=1, max_size=4))  # fmt: skip
    def redeem_batch(self, entries: list[tuple[int, int, int, int, bool]]) -> None:
        """Any mix of good, stale, forged and repeated entries: the batch never reverts."""
        batch = []
        for owner, job, worker, cumulative_wei, forged in entries:
            key, payee = (owner, self.job_ids[job]), self.env.workers[worker]
            signer = payee if forged else None
            batch.append(self.env.voucher(key[1], payee, cumulative_wei + 1, signer=signer,
                                          requester=self.owner(owner)))  # fmt: skip
            due_wei = 0 if forged else self.due(key, payee.account, cumulative_wei + 1)
            if due_wei > 0:
                self.apply_redeem(key, payee.account, due_wei)
        self.attempt(self.env.outsider, self.env.outsider.calls.redeem_batch(batch), True)

    @rule(owner=owners, job=jobs)
    def refund(self, owner: int, job: int) -> None:
        m, key = self.model, (owner, self.job_ids[job])
        ok = (key in m.remaining and key not in m.refunded
              and self.next_block_s() > m.deadline[key] + GRACE_S)  # fmt: skip
        call = self.env.outsider.calls.refund(key[1], self.owner(owner).account)
        self.attempt(self.env.outsider, call, ok)
        if ok:
            m.outflow_wei += m.remaining[key]
            m.remaining[key] = 0
            m.unallocated[key] = 0
            m.refunded.add(key)
            self.touched.add(key)

    @rule(worker=workers, amount_wei=amounts)
    def stake(self, worker: int, amount_wei: int) -> None:
        w = self.env.workers[worker]
        self.attempt(w, w.calls.stake(amount_wei), amount_wei > 0)
        self.model.inflow_wei += amount_wei
        self.model.active[w.account] = self.model.active.get(w.account, 0) + amount_wei

    def staker(self, who: int) -> EscrowClient:
        """Workers 0-1, then the two claiming checkers (whose locks bound what they unbond)."""
        return [*self.env.workers[:2], *self.env.checkers[:2]][who]

    @rule(who=stakers, amount_wei=amounts)
    def unbond(self, who: int, amount_wei: int) -> None:
        m, w = self.model, self.staker(who)
        ok = 0 < amount_wei <= m.active.get(w.account, 0) - m.locked.get(w.account, 0)
        self.attempt(w, w.calls.request_unbond(amount_wei), ok)
        if ok:
            m.active[w.account] -= amount_wei
            pending = m.unbonding.get(w.account, (0, 0))[0]
            m.unbonding[w.account] = (pending + amount_wei, self.next_block_s() + UNBONDING_S)
            self.sync_checker(w.account)

    @rule(who=stakers)
    def withdraw_stake(self, who: int) -> None:
        m, w = self.model, self.staker(who)
        amount_wei, unbond_at_s = m.unbonding.get(w.account, (0, 0))
        ok = amount_wei > 0 and self.next_block_s() >= unbond_at_s
        self.attempt(w, w.calls.withdraw_stake(), ok)
        if ok:
            m.outflow_wei += amount_wei
            m.unbonding[w.account] = (0, unbond_at_s)

    def claim_of(self, job: int, worker: int, frame: int, amount_wei: int) -> FraudClaim:
        ref = ResultRef(self.env.chain.chain_id, self.env.contract_bytes, self.env.requester.account,
                        self.job_ids[job], b"\x02" * 32, frame, b"\x03" * 32)  # fmt: skip
        return FraudClaim(ref, self.env.workers[worker].account, TILES, amount_wei)

    def can_sign(self, account: bytes, at_risk_wei: int) -> bool:
        m = self.model
        active = m.active.get(account, 0)
        # the amount at risk and a cap more free (stop 45; the amount is the cap)
        return (account in m.checker and active >= CHECKER_MIN_STAKE_WEI
                and active - m.locked.get(account, 0) >= at_risk_wei + SLASH_CAP_WEI)  # fmt: skip

    def sync_checker(self, account: bytes) -> None:
        if self.model.active.get(account, 0) < CHECKER_MIN_STAKE_WEI:
            self.model.checker.discard(account)

    def claimers(self) -> list[EscrowClient]:
        return self.env.checkers[:2]

    @rule(job=jobs, worker=workers, frame=frames, amount_wei=claim_amounts)
    def claim(self, job: int, worker: int, frame: int, amount_wei: int) -> None:
        m, w = self.model, self.env.workers[worker]
        claim = self.claim_of(job, worker, frame, amount_wei)
        key = self.env.key_of
        sigs = order_signatures(claim, [sign(claim, key(c)) for c in self.claimers()])
        pending, unbond_at_s = m.unbonding.get(w.account, (0, 0))
        from_active = min(amount_wei, m.active.get(w.account, 0) - m.locked.get(w.account, 0))
        from_unbonding = min(amount_wei - from_active, pending)
        # (an answered claim stays: two claimers never outnumber its three answerers; a
        # worker holding nothing is no refusal since stop 45: the claim is owed)
        ok = ((0, self.job_ids[job]) in m.remaining and (job, worker, frame) not in m.claims
              and self.next_block_s() <= m.deadline[(0, self.job_ids[job])] + GRACE_S  # window
              and amount_wei == SLASH_CAP_WEI
              and all(self.can_sign(c.account, amount_wei) for c in self.claimers()))  # fmt: skip
        call = self.env.outsider.calls.claim_fraud(claim, sign(claim.ref, key(w)), sigs)
        self.attempt(self.env.outsider, call, ok)
        if ok:
            m.active[w.account] -= from_active
            m.unbonding[w.account] = (pending - from_unbonding, unbond_at_s)
            for c in self.claimers():
                m.locked[c.account] = m.locked.get(c.account, 0) + amount_wei
            m.claims[(job, worker, frame)] = ClaimModel(
                from_active + from_unbonding, amount_wei, self.next_block_s() + CHALLENGE_S,
                from_unbonding_wei=from_unbonding,
            )

    def pending(self, job: int, worker: int, frame: int, status: int = CLAIM_PENDING) -> ClaimModel | None:
        c = self.model.claims.get((job, worker, frame))
        return c if c is not None and c.status == status else None

    @rule(job=jobs, worker=workers, frame=frames)
    def execute(self, job: int, worker: int, frame: int) -> None:
        # a pending claim, or an executed one again while owed (DEBT_S after its window)
        c = self.pending(job, worker, frame) or self.pending(job, worker, frame, CLAIM_EXECUTED)
        if c is not None and c.status == CLAIM_EXECUTED and self.next_block_s() > c.settle_at_s + DEBT_S:
            c = None
        claim = self.claim_of(job, worker, frame, c.amount_wei if c else 0)
        claimers = sorted(x.account for x in self.claimers())
        ok = c is not None and self.next_block_s() >= c.settle_at_s
        self.attempt(self.env.outsider, self.env.outsider.calls.execute_slash(claim, claimers), ok)
        if c is not None and ok:
            self.settle(c, worker, claimers)

    def settle(self, c: ClaimModel, worker: int, claimers: list[bytes]) -> None:
        """Escrow._settle: the last rung's side wins (the claim's, with no rung)."""
        m = self.model
        owed = c.status == CLAIM_EXECUTED  # collecting: positions settled the first time
        amount = 0 if owed else c.amount_wei
        # (a collection is execute_slash's, with no ladder: the claimers alone are paid)
        ladder = [] if owed else c.ladder
        fraud = [*claimers, *(a for i, rung in enumerate(ladder) if i % 2 for a in rung)]
        clean = [a for i, rung in enumerate(ladder) if i % 2 == 0 for a in rung]
        winners, losers = (fraud, clean) if len(ladder) % 2 == 0 else (clean, fraud)
        for a in losers:
            m.locked[a] -= amount
            m.active[a] -= amount
            self.sync_checker(a)
        for a in winners:
            m.locked[a] -= amount
        penalty, requester = amount * len(losers), self.env.requester.account
        if len(ladder) % 2 == 0:
            # what the worker holds now, up to the amount, besides what the claim held
            w = self.env.workers[worker].account
            pending, unbond_at_s = m.unbonding.get(w, (0, 0))
            more = min(c.amount_wei - c.taken_wei, m.active.get(w, 0) - m.locked.get(w, 0))
            later = min(c.amount_wei - c.taken_wei - more, pending)
            m.active[w] = m.active.get(w, 0) - more
            m.unbonding[w] = (pending - later, unbond_at_s)
            self.sync_checker(w)
            taken = (0 if owed else c.taken_wei) + more + later
            c.status, c.taken_wei = CLAIM_EXECUTED, c.taken_wei + more + later
            # half of the taken stake and of the forfeits burned (it stays in the escrow)
            kept, paid = taken - taken // 2, penalty // 2
            share = (kept // 2 + paid) // len(winners)
            m.credit[requester] = m.credit.get(requester, 0) + kept + paid - share * len(winners)
        else:
            c.status = CLAIM_ANSWERED
            w = self.env.workers[worker].account
            # each part back where it was taken from, the unbonding clock unchanged
            m.active[w] = m.active.get(w, 0) + c.taken_wei - c.from_unbonding_wei
            pending, unbond_at_s = m.unbonding.get(w, (0, 0))
            m.unbonding[w] = (pending + c.from_unbonding_wei, unbond_at_s)
            paid = penalty // 2  # half of the forfeits burned
            share = paid // 2 // len(winners)
            m.credit[w] = m.credit.get(w, 0) + paid - share * len(winners)
        for a in winners:
            m.credit[a] = m.credit.get(a, 0) + share

    def answerers(self) -> list[EscrowClient]:
        return self.env.checkers[2:5]

    @rule(job=jobs, worker=workers, frame=frames)
    def answer(self, job: int, worker: int, frame: int) -> None:
        c = self.pending(job, worker, frame)
        amount_wei = c.amount_wei if c else 0
        answer = self.claim_of(job, worker, frame, amount_wei).answer
        answerers = self.answerers()
        claimers = sorted(x.account for x in self.claimers())
        vote = answer.rung(claimers, 0)
        sigs = order_signatures(vote, [sign(vote, self.env.key_of(a)) for a in answerers])
        ok = (c is not None and self.next_block_s() < c.settle_at_s
              and all(self.can_sign(a.account, amount_wei) for a in answerers))  # fmt: skip
        self.attempt(self.env.outsider, self.env.outsider.calls.answer_claim(answer, claimers, sigs), ok)
        if c is not None and ok:
            self.rung(c, [a.account for a in answerers])

    def rung(self, c: ClaimModel, signers: list[bytes]) -> None:
        c.status, c.settle_at_s = CLAIM_CONTESTED, self.next_block_s() + CHALLENGE_S
        c.ladder.append(sorted(signers))
        for a in signers:
            self.model.locked[a] = self.model.locked.get(a, 0) + c.amount_wei

    @rule(job=jobs, worker=workers, frame=frames)
    def escalate(self, job: int, worker: int, frame: int) -> None:
        """The claim's side outnumbers the answer: the claimers again, worker 2, the outsider."""
        c = self.pending(job, worker, frame, CLAIM_CONTESTED)
        amount_wei = c.amount_wei if c else 0
        claim = self.claim_of(job, worker, frame, amount_wei)
        signers = [*self.claimers(), *self.extra]
        claimers = sorted(x.account for x in self.claimers())
        vote = claim.rung(claimers, 1)
        sigs = order_signatures(vote, [sign(vote, self.env.key_of(o)) for o in signers])
        ladder = c.ladder if c else [sorted(a.account for a in self.answerers())]
        ok = (c is not None and len(c.ladder) == 1 and self.next_block_s() < c.settle_at_s
              and all(self.can_sign(o.account, amount_wei) for o in signers))  # fmt: skip
        call = self.env.outsider.calls.escalate(claim, claimers, ladder, sigs)
        self.attempt(self.env.outsider, call, ok)
        if c is not None and ok:
            self.rung(c, [o.account for o in signers])

    @rule(job=jobs, worker=workers, frame=frames)
    def settle_contest(self, job: int, worker: int, frame: int) -> None:
        c = self.pending(job, worker, frame, CLAIM_CONTESTED)
        claim = self.claim_of(job, worker, frame, c.amount_wei if c else 0)
        claimers = sorted(x.account for x in self.claimers())
        ladder = c.ladder if c else [sorted(a.account for a in self.answerers())]
        ok = c is not None and self.next_block_s() >= c.settle_at_s
        self.attempt(self.env.outsider, self.env.outsider.calls.settle_contest(claim, claimers, ladder), ok)
        if c is not None and ok:
            self.settle(c, worker, claimers)

    @rule(who=st.integers(min_value=0, max_value=9))
    def withdraw_credit(self, who: int) -> None:
        client = [self.env.requester, *self.env.checkers, *self.env.workers[:2], *self.extra][who]
        owed = self.model.credit.get(client.account, 0)
        self.attempt(client, client.calls.withdraw_credit(), owed > 0)
        self.model.outflow_wei += owed
        self.model.credit[client.account] = 0

    @rule(seconds=st.sampled_from([1, 500, GRACE_S, 2000, UNBONDING_S]))
    def wait(self, seconds: int) -> None:
        self.env.chain.advance_time(seconds)

    @invariant()
    def escrow_is_conserved(self) -> None:
        m = self.model
        assert self.env.requester.balance_wei() == m.inflow_wei - m.outflow_wei

    @invariant()
    def state_matches_model(self) -> None:
        # Every job changed since the last check; untouched jobs cannot have moved
        # without the balance check above noticing the money.
        m, client = self.model, self.env.outsider
        touched, self.touched = self.touched, set()
        for key in touched:
            remaining_wei = m.remaining[key]
            job = client.job(key[1], self.owner(key[0]).account)
            assert (job.remaining_wei, job.unallocated_wei) == (remaining_wei, m.unallocated[key])
            unpaid_in_lanes = 0
            for w in self.env.workers[:2]:
                lane = client.lane(key[1], w.account, self.owner(key[0]).account)
                assert lane.paid_wei <= lane.total_wei
                if key not in m.refunded:
                    assert lane.total_wei == m.lane.get((key, w.account), 0)
                    assert lane.paid_wei == m.paid.get((key, w.account), 0)
                    unpaid_in_lanes += lane.total_wei - lane.paid_wei
            if key not in m.refunded:  # every lane's unpaid part is still in the job
                assert job.remaining_wei == job.unallocated_wei + unpaid_in_lanes
        for w in [*self.env.workers[:2], *self.env.checkers, *self.extra]:
            st_ = client.stake_of(w.account)
            assert st_.active_wei == self.model.active.get(w.account, 0)
            assert st_.unbonding_wei == self.model.unbonding.get(w.account, (0, 0))[0]
            assert st_.locked_wei == self.model.locked.get(w.account, 0)
        for c in [*self.env.checkers, *self.extra]:
            assert client.is_checker(c.account) == (c.account in self.model.checker)


def test_random_operations_conserve_escrow(embedded_deployed: Deployed) -> None:
    run_state_machine_as_test(
        lambda: EscrowMachine(embedded_deployed),
        settings=settings(
            max_examples=6,
            stateful_step_count=15,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow],
        ),
    )

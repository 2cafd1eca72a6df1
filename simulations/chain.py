"""Chain model: blocks, confirmations, gas, and the escrow's bookkeeping.

The escrow follows ``ledger/contracts/Escrow.vy``: ``deposit`` locks a job's
budget with a deadline, unallocated; ``open_lanes`` moves unallocated escrow
into payees' lanes (a lane only grows; lanes sum to at most the deposit, else
the whole transaction reverts); ``redeem(job, payee, cumulative)`` pays
``min(cumulative, lane)`` minus what that payee was already paid (the
contract's ``_due``), while ``block time <= deadline + grace``; ``refund``
returns the remainder (unallocated and unpaid lanes) to the requester strictly
after that, and no voucher pays afterwards. A transaction is included in the next
block and its callback runs after ``confirmations`` more blocks. Failed calls
(a revert) still burn gas, as on chain.

Voucher signatures are not EIP-712-signed here (a secp256k1 signature costs
about a millisecond of CPU per voucher): the model keeps the set of vouchers
each requester issued and refuses any other, which is what signature recovery
decides on chain.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from ledger.secured import NATIVE_TOKEN, Secured
from ledger.voucher_book import Lane
from protocol.slashing import slash_split
from simulations.loop import EventLoop
from simulations.scenario import Chain


@dataclass
class EscrowJob:
    requester: bytes
    deadline_ms: int
    deposited_wei: int = 0
    remaining_wei: int = 0
    paid_wei: int = 0
    refunded_wei: int = 0
    refunded: bool = False
    paid_to: dict[bytes, int] = field(default_factory=dict)  # payee -> cumulative paid
    lanes: dict[bytes, int] = field(default_factory=dict)  # payee -> lane total funded
    unallocated_wei: int = 0  # the part of remaining in no lane


@dataclass
class ChainStats:
    txs: int = 0
    reverts: int = 0
    gas: int = 0
    gas_wei: int = 0
    deposits: int = 0
    lane_txs: int = 0  # open_lanes transactions that funded
    redeems: int = 0  # vouchers paid
    redeem_txs: int = 0  # transactions that carried them (`redeem_batch` pays many)
    refunds: int = 0


Done = Callable[[bool], None]
DAY_MS = 86_400_000  # the escrow counts open lanes by UTC day (Escrow.LANE_EPOCH_S)


class ChainModel:
    def __init__(self, loop: EventLoop, config: Chain, start_ms: int = 0) -> None:
        self._loop = loop
        self.start_ms = start_ms  # epoch of loop time 0: block timestamps
        self._config = config
        self._block_ms = int(config.block_time_s * 1000)
        self.balances: dict[bytes, int] = {}
        self.jobs: dict[bytes, EscrowJob] = {}
        self.issued: set[tuple[bytes, bytes, int]] = set()  # (job, payee, cumulative)
        self.total_supply_wei = 0
        self.stats = ChainStats()
        self.touched: list[bytes] = []  # jobs changed since the invariant checker looked
        self.stakes: dict[bytes, int] = {}  # address -> active stake
        self.slashed: dict[bytes, int] = {}  # accused address -> stake taken by claims
        self.credits: dict[bytes, int] = {}  # address -> its shares of slashes (pull payments)
        self.burned_wei = 0  # the burned half of executed claims (the escrow keeps it, nobody's)
        # payee -> UTC day its job's claim window ends -> new lanes (Escrow.lanes_ending)
        self.lanes_ending: dict[bytes, dict[int, int]] = {}

    def mint(self, account: bytes, amount_wei: int) -> None:
        self.balances[account] = self.balances.get(account, 0) + amount_wei
        self.total_supply_wei += amount_wei

    def locked_wei(self) -> int:
        return sum(job.remaining_wei for job in self.jobs.values()) + sum(self.stakes.values())

    def _window_day(self, job: EscrowJob) -> int:
        """The UTC day a job's claim window (deadline + grace) ends, in block time."""
        return (self.start_ms + job.deadline_ms + int(self._config.grace_s * 1000)) // DAY_MS

    def open_lanes_of(self, payee: bytes) -> int:
        """``Escrow.open_lanes_of``: new lanes for ``payee`` whose job's window ends
        today or later (UTC days, block time)."""
        today = (self.start_ms + self._loop.now_ms) // DAY_MS
        return sum(n for day, n in self.lanes_ending.get(payee, {}).items() if day >= today)

    def stake(self, account: bytes, amount_wei: int) -> None:
        """``account`` holds ``amount_wei`` of active stake from the start (minted)."""
        self.stakes[account] = self.stakes.get(account, 0) + amount_wei
        self.total_supply_wei += amount_wei

    def slash(
        self, job_id: bytes, worker: bytes, claimers: list[bytes], requester: bytes,
        amount_wei: int, included: Done | None = None,
    ) -> None:  # fmt: skip
        """A fraud claim, executed (the challenge window is not modelled: nobody answers):
        up to ``amount_wei`` of the worker's stake, split as the escrow's ``execute_slash``
        splits it (``protocol.slashing.slash_split``: half burned, a quarter to the
        claimers in equal parts, the rest to the job's requester). ``worker`` is the accused: a
        worker (``claim_fraud``) or a checker (``claim_pass``); ``included(ok)`` runs once
        the claim is in a block."""

        def apply() -> bool:
            taken = min(amount_wei, self.stakes.get(worker, 0))
            if taken <= 0 or not claimers:
                return False  # nothing taken (on chain: a claim left owed; not modelled)
            self.stakes[worker] -= taken
            self.slashed[worker] = self.slashed.get(worker, 0) + taken
            split = slash_split(taken, len(claimers))
            self.burned_wei += split.burned_wei
            for claimer in claimers:
                self.credits[claimer] = self.credits.get(claimer, 0) + split.per_claimer_wei
                self.balances[claimer] = self.balances.get(claimer, 0) + split.per_claimer_wei
            rest = split.requester_wei
            self.credits[requester] = self.credits.get(requester, 0) + rest
            self.balances[requester] = self.balances.get(requester, 0) + rest
            return True

        self._submit(job_id, 0, apply, None, "tx-slash", included)

    # Transactions: included at the next block, confirmed `confirmations` later.
    def _submit(
        self, job_id: bytes | list[bytes], gas: int, apply: Callable[[], bool], done: Done | None,
        label: str, included: Done | None = None,
    ) -> None:
        now = self._loop.now_ms
        block_ms = (now // self._block_ms + 1) * self._block_ms
        confirm_ms = block_ms + self._config.confirmations * self._block_ms

        def include(_: object) -> None:
            ok = apply()
            self.touched.extend(job_id if isinstance(job_id, list) else [job_id])
            self.stats.txs += 1
            self.stats.gas += gas
            self.stats.gas_wei += int(gas * self._config.gas_price_gwei * 10**9)
            self.stats.reverts += not ok
            if included is not None:
                included(ok)
            if done is not None:
                self._loop.call_at(confirm_ms, lambda _: done(ok), None, f"{label}-confirmed")

        self._loop.call_at(block_ms, include, None, label)

    def deposit(
        self, requester: bytes, job_id: bytes, amount_wei: int, deadline_ms: int, done: Done | None
    ) -> None:
        def apply() -> bool:
            if self.balances.get(requester, 0) < amount_wei or job_id in self.jobs:
                return False
            self.balances[requester] -= amount_wei
            self.jobs[job_id] = EscrowJob(requester, deadline_ms, amount_wei, amount_wei,
                                          unallocated_wei=amount_wei)  # fmt: skip
            self.stats.deposits += 1
            return True

        self._submit(job_id, self._config.gas_deposit, apply, done, "tx-deposit")

    def open_lanes(
        self, sender: bytes, job_id: bytes, fundings: list[tuple[bytes, int]],
        included: Done | None = None,
    ) -> None:  # fmt: skip
        """Fund lanes (``(payee, wei)`` pairs) from the job's unallocated escrow, all or
        nothing; ``included(ok)`` runs once the transaction is in a block (the node sends
        what a funding secures once it is mined)."""

        def apply() -> bool:
            job = self.jobs.get(job_id)
            total = sum(amount for _, amount in fundings)
            if job is None or job.refunded or job.requester != sender:
                return False
            if self._loop.now_ms > job.deadline_ms + int(self._config.grace_s * 1000):
                return False  # "job expired"
            if total > job.unallocated_wei:
                return False  # "over budget", as the contract refuses
            for payee, amount in fundings:
                if amount > 0 and not job.lanes.get(payee):  # a new lane: counted
                    days = self.lanes_ending.setdefault(payee, {})
                    day = self._window_day(job)
                    days[day] = days.get(day, 0) + 1
                job.lanes[payee] = job.lanes.get(payee, 0) + amount
            job.unallocated_wei -= total
            self.stats.lane_txs += 1
            return True

        job = self.jobs.get(job_id)
        c = self._config

        def lane_gas(payee: bytes, amount: int) -> int:
            if job is None:
                return c.gas_lane_new
            if job.lanes.get(payee, 0) > 0 or amount == 0:  # a top-up; a zero funding
                return c.gas_lane_top_up  # writes no new slot (its lane stays new)
            counted = self.lanes_ending.get(payee, {}).get(self._window_day(job), 0)
            return c.gas_lane_counted if counted else c.gas_lane_new

        gas = c.gas_open_lanes + sum(lane_gas(payee, amount) for payee, amount in fundings)
        self._submit(job_id, gas, apply, None, "tx-lanes", included)

    def _pay(self, job_id: bytes, payee: bytes, cumulative_wei: int) -> bool:
        """One voucher as ``redeem`` pays it: up to the payee's lane, beyond what was paid."""
        job = self.jobs.get(job_id)
        if job is None or job.refunded or (job_id, payee, cumulative_wei) not in self.issued:
            return False
        if self._loop.now_ms > job.deadline_ms + int(self._config.grace_s * 1000):
            return False
        paid = job.paid_to.get(payee, 0)
        delta = min(cumulative_wei, job.lanes.get(payee, 0)) - paid
        if delta <= 0 or delta > job.remaining_wei:
            return False
        job.paid_to[payee] = paid + delta
        job.remaining_wei -= delta
        job.paid_wei += delta
        self.balances[payee] = self.balances.get(payee, 0) + delta
        self.stats.redeems += 1
        return True

    def redeem_batch(
        self, vouchers: list[tuple[bytes, bytes, int]], done: Done | None,
        included: Done | None = None,
    ) -> None:  # fmt: skip
        """``redeem`` for one voucher, ``redeem_batch`` for several: the contract skips a
        voucher that cannot pay and pays the others; ``done(ok)`` says whether any paid."""

        def apply() -> bool:
            self.stats.redeem_txs += 1
            paid = [self._pay(job_id, payee, cum) for job_id, payee, cum in vouchers]
            return any(paid)

        self._submit([v[0] for v in vouchers], self.redeem_gas(len(vouchers)), apply, done,
                     "tx-redeem", included)  # fmt: skip

    def redeem_gas(self, count: int) -> int:
        c = self._config
        return c.gas_redeem if count == 1 else c.gas_redeem + (count - 1) * c.gas_redeem_item

    def lane(self, job_id: bytes, payee: bytes) -> Lane | None:
        """What a payee's lane reads (total funded, paid). None: no such job."""
        job = self.jobs.get(job_id)
        if job is None:
            return None
        return Lane(job.lanes.get(payee, 0), job.paid_to.get(payee, 0))

    def secured(self, job_id: bytes, payee: bytes) -> Secured:
        """``Escrow.secured`` as a payee reads it before it works (chain time = epoch)."""
        job = self.jobs.get(job_id)
        if job is None:
            return Secured(False, NATIVE_TOKEN, 0, 0, False, 0, 0)
        until_s = (self.start_ms + job.deadline_ms) // 1000 + int(self._config.grace_s)
        return Secured(True, NATIVE_TOKEN, (self.start_ms + job.deadline_ms) // 1000, until_s,
                       job.refunded, job.lanes.get(payee, 0), job.paid_to.get(payee, 0))  # fmt: skip

    def redeem_by_ms(self, job_id: bytes) -> int | None:
        """The last block time a voucher of ``job_id`` still pays (deadline + grace)."""
        job = self.jobs.get(job_id)
        return None if job is None else job.deadline_ms + int(self._config.grace_s * 1000)

    def refund(self, job_id: bytes, done: Done | None) -> None:
        def apply() -> bool:
            job = self.jobs.get(job_id)
            if job is None or job.refunded:
                return False
            if self._loop.now_ms <= job.deadline_ms + int(self._config.grace_s * 1000):
                return False
            job.refunded = True
            job.refunded_wei = job.remaining_wei
            self.balances[job.requester] = self.balances.get(job.requester, 0) + job.remaining_wei
            job.remaining_wei = 0
            self.stats.refunds += 1
            return True

        self._submit(job_id, self._config.gas_refund, apply, done, "tx-refund")

    def refund_at_ms(self, job_id: bytes) -> int:
        """The first block time at which a refund of ``job_id`` can succeed."""
        job = self.jobs[job_id]
        return job.deadline_ms + int(self._config.grace_s * 1000) + 1

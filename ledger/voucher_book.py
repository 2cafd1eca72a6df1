"""A payee's vouchers and the plan of what to redeem, judged by the chain.

The book keeps, per (chain, escrow, requester, job, payee), only the latest
voucher (the largest cumulative), what the chain has paid so far and the
job's redeem-by time (deadline + grace, from the chain: a required input).
It stores plain values, so a node can persist it anywhere (``to_rows`` /
``from_rows``): SQLite, a file, memory.

``plan_redemptions`` is pure: given the entries, the lanes and paid amounts
just read from the chain (``EscrowClient.lanes_of``), the chain's time (the
latest block's timestamp, passed in: never a local clock) and the gas price,
it returns what to redeem and what the chain will pay for each (computed
before any await), and what is written off. A voucher pays
``min(cumulative, lane) - paid``.

When to redeem. A lane secures its pay until the job's redeem-by time (the
requester cannot take it back before), so waiting costs the payee nothing but
time, while every redeem costs gas: the book batches. A voucher goes out

* once its job is *over* (``mark_final``: its requester said so; no larger
  voucher will come) or within ``urgent_margin_s`` of its redeem-by time
  (chain time), as soon as it is worth more than its gas;
* before that, only when the batch is worth ``profit_factor`` (10,000) times
  its gas: a payee of a long job is paid along the way, but never gives more
  than 0.01 % of it to gas for being early.

What can no longer be paid (the job's redeem-by time has passed) is written
off with the reason.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from ledger.vouchers import Voucher

Key = tuple[int, bytes, bytes, bytes, bytes]  # (chain_id, contract, requester, job_id, payee)
MAX_JOBS_OVER = 1024  # jobs remembered as over (the oldest forgotten: then redeem-by decides)
Row = tuple[int, bytes, bytes, bytes, bytes, int, bytes, int, int]


@dataclass(frozen=True, slots=True)
class Lane:
    """A payee's lane of one job as the chain reports it."""

    total_wei: int  # allotted to the payee so far
    paid_wei: int  # paid to the payee so far


@dataclass(frozen=True, slots=True)
class RedeemPolicy:
    # Measured on Escrow.vy (bench/gas.py); used as estimates, not limits.
    gas_single: int = 60_000  # one `redeem`
    gas_batch_base: int = 30_000  # fixed part of `redeem_batch`
    gas_batch_item: int = 30_000  # each voucher in a batch
    profit_factor: int = 10_000  # job running, not urgent: redeem when owed > factor × gas
    urgent_margin_s: int = 3600  # this close to redeem-by, anything worth its gas goes
    max_batch: int = 64  # the contract's MAX_BATCH

    def batch_gas(self, count: int) -> int:
        return self.gas_single if count == 1 else self.gas_batch_base + self.gas_batch_item * count


@dataclass(slots=True)
class Entry:
    voucher: Voucher
    paid_wei: int  # as last read from the chain (or a Redeemed event)
    redeem_by_s: int  # deadline + grace of the job (chain time)
    final: bool = False  # the job is over: no larger voucher will come

    @property
    def owed_wei(self) -> int:
        return max(0, self.voucher.cumulative_wei - self.paid_wei)


@dataclass(frozen=True, slots=True)
class Redemption:
    voucher: Voucher
    amount_wei: int  # what the chain pays for it, given the lane read before planning


@dataclass(frozen=True, slots=True)
class WriteOff:
    voucher: Voucher
    unpaid_wei: int
    reason: str


@dataclass(slots=True)
class Plan:
    redeem: list[Redemption] = field(default_factory=list)
    written_off: list[WriteOff] = field(default_factory=list)

    @property
    def vouchers(self) -> list[Voucher]:
        return [r.voucher for r in self.redeem]

    @property
    def total_wei(self) -> int:
        return sum(r.amount_wei for r in self.redeem)


def payable_wei(cumulative_wei: int, lane: Lane) -> int:
    """What the contract pays for a voucher now: up to the lane, beyond what was paid."""
    return max(0, min(cumulative_wei, lane.total_wei) - lane.paid_wei)


def plan_redemptions(
    entries: Iterable[Entry],
    lanes: Mapping[Key, Lane],
    chain_time_s: int,
    gas_price_wei: int,
    policy: RedeemPolicy,
) -> Plan:
    """What to redeem now (largest first), and what is lost for good.

    Entries without a lane reading are left alone (the chain did not answer
    for them). Integer arithmetic only."""
    plan = Plan()
    item_cost_wei = gas_price_wei * policy.gas_batch_item
    candidates: list[tuple[Redemption, bool]] = []  # (redemption, urgent)
    for entry in entries:
        lane = lanes.get(entry.voucher.key())
        if lane is None:
            continue
        unpaid_wei = entry.voucher.cumulative_wei - lane.paid_wei
        if unpaid_wei <= 0:
            continue
        due_wei = payable_wei(entry.voucher.cumulative_wei, lane)
        if chain_time_s >= entry.redeem_by_s:
            reason = ("beyond the lane" if due_wei == 0 else
                      "not worth its gas" if due_wei <= item_cost_wei else "expired")  # fmt: skip
            plan.written_off.append(WriteOff(entry.voucher, unpaid_wei, reason))
            continue
        # no reason left to wait: the job is over, or its redeem-by time is near
        urgent = entry.final or entry.redeem_by_s - chain_time_s <= policy.urgent_margin_s
        factor = 1 if urgent else policy.profit_factor
        if due_wei > item_cost_wei * factor:
            candidates.append((Redemption(entry.voucher, due_wei), urgent))
    candidates.sort(key=lambda c: c[0].amount_wei, reverse=True)
    chosen = candidates[: policy.max_batch]
    if not chosen:
        return plan
    total_wei = sum(r.amount_wei for r, _ in chosen)
    cost_wei = gas_price_wei * policy.batch_gas(len(chosen))
    factor = 1 if any(urgent for _, urgent in chosen) else policy.profit_factor
    if total_wei > cost_wei * factor:
        plan.redeem = [r for r, _ in chosen]
    return plan


class VoucherBook:
    def __init__(self) -> None:
        self._entries: dict[Key, Entry] = {}
        self._over: dict[tuple[bytes, bytes], None] = {}  # (requester, job) said to be over

    def add(self, voucher: Voucher, redeem_by_s: int) -> bool:
        """Keep ``voucher`` if it raises the cumulative; caller verified its signature.

        ``redeem_by_s`` is the job's deadline + grace as the chain reports it
        (``EscrowClient.secured``); it only ever moves later, as deadlines do."""
        if redeem_by_s <= 0:
            raise ValueError("redeem_by_s must be the job's deadline + grace (chain time)")
        entry = self._entries.get(voucher.key())
        if entry is None:
            final = (voucher.requester, voucher.job_id) in self._over
            self._entries[voucher.key()] = Entry(voucher, 0, redeem_by_s, final)
            return True
        entry.redeem_by_s = max(entry.redeem_by_s, redeem_by_s)
        if voucher.cumulative_wei <= entry.voucher.cumulative_wei:
            return False
        entry.voucher = voucher
        return True

    def job_over(self, requester: bytes, job_id: bytes) -> bool:
        """The job is over (its requester said so, and the caller checked it was the
        requester): no larger voucher will come, so its vouchers — held now or arriving
        later, as a notice may overtake the last voucher — are redeemed once worth their
        gas. The last ``MAX_JOBS_OVER`` such jobs are remembered. True when a voucher of
        the job is held."""
        self._over.pop((requester, job_id), None)
        self._over[(requester, job_id)] = None  # the newest last
        if len(self._over) > MAX_JOBS_OVER:
            del self._over[next(iter(self._over))]
        return self.mark_final(requester, job_id)

    def mark_final(self, requester: bytes, job_id: bytes) -> bool:
        """The job is over: redeem the vouchers held now once they are worth their gas.
        True when a voucher of the job is held (``job_over`` also covers later ones)."""
        held = False
        for key, entry in self._entries.items():
            if key[2:4] == (requester, job_id):
                entry.final = held = True
        return held

    def mark_paid(self, key: Key, paid_total_wei: int) -> None:
        """Record a ``Redeemed`` event (its total paid); idempotent, never moves backwards."""
        entry = self._entries.get(key)
        if entry is not None:
            entry.paid_wei = max(entry.paid_wei, paid_total_wei)

    def latest(self, key: Key) -> Voucher | None:
        entry = self._entries.get(key)
        return entry.voucher if entry else None

    def redeem_by_s(self, key: Key) -> int | None:
        """The redeem-by time kept for ``key``'s lane, or None when no voucher is kept."""
        entry = self._entries.get(key)
        return entry.redeem_by_s if entry else None

    def owed_wei(self, key: Key) -> int:
        entry = self._entries.get(key)
        return entry.owed_wei if entry else 0

    def total_owed_wei(self) -> int:
        return sum(e.owed_wei for e in self._entries.values())

    def unsettled(self) -> list[Voucher]:
        """Vouchers the chain may still owe on: read their lanes before planning."""
        return [e.voucher for e in self._entries.values() if e.owed_wei > 0]

    def plan(self, lanes: Mapping[Key, Lane], chain_time_s: int, gas_price_wei: int,
             policy: RedeemPolicy) -> Plan:  # fmt: skip
        """Sync paid amounts to the chain's, then ``plan_redemptions``; written-off
        entries leave the book (the caller logs them)."""
        for key, lane in lanes.items():
            entry = self._entries.get(key)
            if entry is not None:
                entry.paid_wei = lane.paid_wei  # the chain is the truth, also after a reorg
        plan = plan_redemptions(self._entries.values(), lanes, chain_time_s, gas_price_wei, policy)
        for w in plan.written_off:
            del self._entries[w.voucher.key()]
        for key, entry in list(self._entries.items()):  # settled and over: nothing more comes
            if entry.owed_wei == 0 and chain_time_s >= entry.redeem_by_s:
                del self._entries[key]
        return plan

    def next_change_s(self, chain_time_s: int, policy: RedeemPolicy) -> int | None:
        """The next chain time at which ``plan`` may decide otherwise with the same lanes
        and gas price: an owed voucher's urgent margin begins, or its redeem-by passes.
        None when nothing is owed. A driver that cannot poll sleeps until then."""
        times = []
        for e in self._entries.values():
            if e.owed_wei == 0:
                continue
            urgent_s = e.redeem_by_s - policy.urgent_margin_s
            times.append(urgent_s if not e.final and urgent_s > chain_time_s else e.redeem_by_s)
        later = [t for t in times if t > chain_time_s]
        return min(later) if later else None

    def to_rows(self) -> list[Row]:
        return [
            (*key, e.voucher.cumulative_wei, e.voucher.signature, e.paid_wei, e.redeem_by_s)
            for key, e in self._entries.items()
        ]

    @classmethod
    def from_rows(cls, rows: Iterable[Row]) -> VoucherBook:
        book = cls()
        for chain_id, contract, requester, job_id, payee, cumulative_wei, signature, paid_wei, by_s in rows:
            voucher = Voucher(chain_id, contract, requester, job_id, payee, cumulative_wei, signature)
            book._entries[voucher.key()] = Entry(voucher, paid_wei, by_s)
        return book

"""A payee's vouchers and the decision when redeeming them is worth the gas.

The book keeps, per (chain, escrow, job, payee), only the latest voucher (the
largest cumulative) and what the chain has paid so far. It stores plain
values, so a node can persist it anywhere (``to_rows`` / ``from_rows``): SQLite,
a file, memory.

Redeeming costs gas whatever the amount, so small debts wait and are redeemed
together: a batch goes out when the total owed exceeds ``factor`` times its gas
cost at the current gas price. Vouchers whose job is about to leave the grace
period go out regardless — late is worth nothing.
"""

from __future__ import annotations

from dataclasses import dataclass

from ledger.vouchers import Voucher

Key = tuple[int, bytes, bytes, bytes]  # (chain_id, contract, job_id, payee)
Row = tuple[int, bytes, bytes, bytes, int, bytes, int, int]


@dataclass(frozen=True, slots=True)
class RedeemPolicy:
    # Measured on Escrow.vy (bench/gas.py); used as estimates, not limits.
    gas_single: int = 75_000  # one `redeem`
    gas_batch_base: int = 30_000  # fixed part of `redeem_batch`
    gas_batch_item: int = 45_000  # each voucher in a batch
    profit_factor: float = 10.0  # redeem when owed > factor × gas cost
    urgent_margin_s: int = 3600  # redeem regardless this long before the grace period ends
    max_batch: int = 64  # the contract's MAX_BATCH

    def batch_gas(self, count: int) -> int:
        return self.gas_single if count == 1 else self.gas_batch_base + self.gas_batch_item * count


@dataclass(slots=True)
class Entry:
    voucher: Voucher
    paid_wei: int = 0
    redeem_by_s: int = 0  # deadline + grace of the job; 0 = unknown

    @property
    def owed_wei(self) -> int:
        return max(0, self.voucher.cumulative_wei - self.paid_wei)


class VoucherBook:
    def __init__(self) -> None:
        self._entries: dict[Key, Entry] = {}

    def add(self, voucher: Voucher, redeem_by_s: int = 0) -> bool:
        """Keep ``voucher`` if it raises the cumulative; caller verified its signature."""
        entry = self._entries.get(voucher.key())
        if entry is None:
            self._entries[voucher.key()] = Entry(voucher, 0, redeem_by_s)
            return True
        if redeem_by_s:
            entry.redeem_by_s = redeem_by_s
        if voucher.cumulative_wei <= entry.voucher.cumulative_wei:
            return False
        entry.voucher = voucher
        return True

    def mark_paid(self, key: Key, cumulative_wei: int) -> None:
        """Record a ``Redeemed`` event; idempotent, and never moves backwards."""
        entry = self._entries.get(key)
        if entry is not None:
            entry.paid_wei = max(entry.paid_wei, cumulative_wei)

    def latest(self, key: Key) -> Voucher | None:
        entry = self._entries.get(key)
        return entry.voucher if entry else None

    def owed_wei(self, key: Key) -> int:
        entry = self._entries.get(key)
        return entry.owed_wei if entry else 0

    def total_owed_wei(self) -> int:
        return sum(e.owed_wei for e in self._entries.values())

    def choose_batch(self, gas_price_wei: int, now_s: int, policy: RedeemPolicy) -> list[Voucher]:
        """Vouchers to redeem now, largest first; empty when waiting is cheaper."""
        live = [e for e in self._entries.values() if e.owed_wei > 0]
        live = [e for e in live if not e.redeem_by_s or now_s <= e.redeem_by_s]
        live.sort(key=lambda e: e.owed_wei, reverse=True)
        item_cost_wei = gas_price_wei * policy.gas_batch_item * policy.profit_factor
        # A voucher joins when urgent or when it pays for its own marginal gas.
        chosen = [e for e in live if self._urgent(e, now_s, policy) or e.owed_wei > item_cost_wei]
        chosen = chosen[: policy.max_batch]
        if not chosen:
            return []
        total_wei = sum(e.owed_wei for e in chosen)
        cost_wei = gas_price_wei * policy.batch_gas(len(chosen))
        if any(self._urgent(e, now_s, policy) for e in chosen) or total_wei > cost_wei * policy.profit_factor:
            return [e.voucher for e in chosen]
        return []

    @staticmethod
    def _urgent(entry: Entry, now_s: int, policy: RedeemPolicy) -> bool:
        return bool(entry.redeem_by_s) and entry.redeem_by_s - now_s <= policy.urgent_margin_s

    def to_rows(self) -> list[Row]:
        return [
            (*key, e.voucher.cumulative_wei, e.voucher.signature, e.paid_wei, e.redeem_by_s)
            for key, e in self._entries.items()
        ]

    @classmethod
    def from_rows(cls, rows: list[Row]) -> VoucherBook:
        book = cls()
        for chain_id, contract, job_id, payee, cumulative_wei, signature, paid_wei, by_s in rows:
            voucher = Voucher(chain_id, contract, job_id, payee, cumulative_wei, signature)
            book._entries[voucher.key()] = Entry(voucher, paid_wei, by_s)
        return book

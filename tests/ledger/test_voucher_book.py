"""Keeping the latest voucher, and deciding when redeeming is worth the gas."""

from __future__ import annotations

from ledger.voucher_book import RedeemPolicy, VoucherBook
from ledger.vouchers import Voucher

GWEI = 10**9
POLICY = RedeemPolicy(gas_single=75_000, gas_batch_base=30_000, gas_batch_item=45_000,
                      profit_factor=10, urgent_margin_s=3600)  # fmt: skip


def voucher(job: int, payee: int, cumulative_wei: int) -> Voucher:
    return Voucher(1, b"\x01" * 20, bytes([job]) * 32, bytes([payee]) * 20, cumulative_wei, b"sig")


def test_only_a_larger_cumulative_supersedes() -> None:
    book = VoucherBook()
    assert book.add(voucher(1, 1, 100))
    assert not book.add(voucher(1, 1, 50))
    assert book.add(voucher(1, 1, 300))
    key = voucher(1, 1, 0).key()
    book.mark_paid(key, 100)
    book.mark_paid(key, 100)  # the same event twice
    assert book.owed_wei(key) == 200
    book.mark_paid(key, 50)  # an older event arriving late never un-pays
    assert book.owed_wei(key) == 200


def test_small_debts_wait_for_gas_to_be_worth_it() -> None:
    book = VoucherBook()
    gas_price_wei = 10 * GWEI
    book.add(voucher(1, 1, 1_000 * GWEI))  # far below 10 × 45k gas × 10 gwei
    assert book.choose_batch(gas_price_wei, now_s=0, policy=POLICY) == []
    big = voucher(2, 1, 10**17)
    book.add(big)
    assert book.choose_batch(gas_price_wei, now_s=0, policy=POLICY) == [big]
    assert book.choose_batch(gas_price_wei * 10**6, now_s=0, policy=POLICY) == []


def test_vouchers_near_expiry_go_out_regardless() -> None:
    book = VoucherBook()
    small = voucher(1, 1, 1_000 * GWEI)
    book.add(small, redeem_by_s=10_000)
    assert book.choose_batch(10 * GWEI, now_s=5_000, policy=POLICY) == []
    assert book.choose_batch(10 * GWEI, now_s=7_000, policy=POLICY) == [small]
    assert book.choose_batch(10 * GWEI, now_s=10_001, policy=POLICY) == []  # too late: dropped


def test_rows_round_trip() -> None:
    book = VoucherBook()
    book.add(voucher(1, 1, 500), redeem_by_s=99)
    book.mark_paid(voucher(1, 1, 0).key(), 200)
    again = VoucherBook.from_rows(book.to_rows())
    assert again.to_rows() == book.to_rows()
    assert again.total_owed_wei() == 300

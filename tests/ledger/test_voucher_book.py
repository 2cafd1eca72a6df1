"""Keeping the latest voucher, and planning redemptions against the chain's numbers."""

from __future__ import annotations

import pytest

from ledger.voucher_book import Lane, RedeemPolicy, VoucherBook, plan_redemptions
from ledger.vouchers import Voucher

GWEI = 10**9
POLICY = RedeemPolicy(gas_single=60_000, gas_batch_base=30_000, gas_batch_item=30_000,
                      profit_factor=10, urgent_margin_s=3600)  # fmt: skip
ITEM_COST = 10 * GWEI * 30_000  # one batch entry's gas at 10 gwei
REQUESTER = b"\x09" * 20


def voucher(job: int, payee: int, cumulative_wei: int) -> Voucher:
    return Voucher(1, b"\x01" * 20, REQUESTER, bytes([job]) * 32, bytes([payee]) * 20,
                   cumulative_wei, b"sig")  # fmt: skip


def key(job: int, payee: int = 1) -> tuple[int, bytes, bytes, bytes, bytes]:
    return voucher(job, payee, 1).key()


def test_only_a_larger_cumulative_supersedes() -> None:
    book = VoucherBook()
    assert book.add(voucher(1, 1, 100), redeem_by_s=10)
    assert not book.add(voucher(1, 1, 50), redeem_by_s=10)
    assert book.add(voucher(1, 1, 300), redeem_by_s=10)
    book.mark_paid(key(1), 100)
    book.mark_paid(key(1), 100)  # the same event twice
    assert book.owed_wei(key(1)) == 200
    book.mark_paid(key(1), 50)  # an older event arriving late never un-pays
    assert book.owed_wei(key(1)) == 200


def test_redeem_by_is_required() -> None:
    with pytest.raises(ValueError, match="deadline"):
        VoucherBook().add(voucher(1, 1, 100), redeem_by_s=0)


def test_small_debts_wait_for_gas_to_be_worth_it() -> None:
    book = VoucherBook()
    book.add(voucher(1, 1, 2 * ITEM_COST), redeem_by_s=100_000)  # worth its gas, not 10×
    lanes = {key(1): Lane(10**18, 0)}
    assert book.plan(lanes, 0, 10 * GWEI, POLICY).redeem == []
    big = voucher(2, 1, 10**17)
    book.add(big, redeem_by_s=100_000)
    lanes[key(2)] = Lane(10**18, 0)
    plan = book.plan(lanes, 0, 10 * GWEI, POLICY)
    assert plan.vouchers == [big] and plan.total_wei == 10**17
    assert book.plan(lanes, 0, 10 * GWEI * 10**6, POLICY).redeem == []


def test_near_redeem_by_everything_worth_its_gas_goes() -> None:
    book = VoucherBook()
    small = voucher(1, 1, 3 * ITEM_COST)  # worth a single redeem (2 items of gas)
    dust = voucher(2, 1, ITEM_COST // 2)
    book.add(small, redeem_by_s=10_000)
    book.add(dust, redeem_by_s=10_000)
    lanes = {key(1): Lane(10**18, 0), key(2): Lane(10**18, 0)}
    assert book.plan(lanes, 5_000, 10 * GWEI, POLICY).redeem == []
    assert book.plan(lanes, 7_000, 10 * GWEI, POLICY).vouchers == [small]
    plan = book.plan(lanes, 10_000, 10 * GWEI, POLICY)  # the chain's clock says: too late
    assert plan.redeem == []
    assert [(w.voucher, w.reason) for w in plan.written_off] == [(small, "expired"),
                                                                 (dust, "not worth its gas")]  # fmt: skip
    assert book.total_owed_wei() == 0  # written off: gone from the book


def test_chain_paid_amount_wins_over_the_local_record() -> None:
    """Someone else redeemed our voucher (or we restarted): the chain says so, the
    batch no longer carries it, and a newer voucher pays only the difference."""
    book = VoucherBook()
    book.add(voucher(1, 1, 10**17), redeem_by_s=100_000)
    book.add(voucher(2, 1, 10**17), redeem_by_s=100_000)
    lanes = {key(1): Lane(10**18, 10**17), key(2): Lane(10**18, 0)}
    plan = book.plan(lanes, 0, GWEI, POLICY)
    assert [v.job_id[0] for v in plan.vouchers] == [2]
    book.add(voucher(1, 1, 3 * 10**17), redeem_by_s=100_000)
    plan = book.plan(lanes, 0, GWEI, POLICY)
    assert {r.voucher.job_id[0]: r.amount_wei for r in plan.redeem} == {1: 2 * 10**17, 2: 10**17}


def test_amount_is_capped_by_the_lane() -> None:
    v = voucher(1, 1, 5 * 10**17)
    plan = plan_redemptions(
        [VoucherBook.from_rows([(*v.key(), v.cumulative_wei, b"sig", 0, 100)])._entries[v.key()]],
        {v.key(): Lane(2 * 10**17, 10**17)}, 0, GWEI, POLICY,
    )  # fmt: skip
    assert [r.amount_wei for r in plan.redeem] == [10**17]
    book = VoucherBook()
    book.add(v, redeem_by_s=100)
    plan = book.plan({v.key(): Lane(10**17, 10**17)}, 100, GWEI, POLICY)
    assert [(w.unpaid_wei, w.reason) for w in plan.written_off] == [(4 * 10**17, "beyond the lane")]


def test_vouchers_without_a_chain_reading_are_left_alone() -> None:
    book = VoucherBook()
    book.add(voucher(1, 1, 10**18), redeem_by_s=10)
    plan = book.plan({}, 20, GWEI, POLICY)
    assert plan.redeem == [] and plan.written_off == []
    assert book.total_owed_wei() == 10**18


def test_rows_round_trip() -> None:
    book = VoucherBook()
    book.add(voucher(1, 1, 500), redeem_by_s=99)
    book.mark_paid(key(1), 200)
    again = VoucherBook.from_rows(book.to_rows())
    assert again.to_rows() == book.to_rows()
    assert again.total_owed_wei() == 300


def test_a_job_over_notice_also_covers_a_voucher_that_arrives_after_it() -> None:
    """The requester's "job over" may overtake its last voucher on the network: the
    voucher arriving later is redeemed at once (worth its gas), not after 10,000×."""
    book = VoucherBook()
    owed = 3 * ITEM_COST  # worth its gas (60k single), far below profit_factor × gas
    lanes = {key(1): Lane(10**18, 0)}
    assert not book.job_over(REQUESTER, bytes([1]) * 32)  # nothing held yet
    book.add(voucher(1, 1, owed), redeem_by_s=100_000)
    assert book.plan(lanes, 0, 10 * GWEI, POLICY).vouchers == [voucher(1, 1, owed)]
    other = VoucherBook()  # without the notice the same voucher waits
    other.add(voucher(1, 1, owed), redeem_by_s=100_000)
    assert other.plan(lanes, 0, 10 * GWEI, POLICY).redeem == []


def test_jobs_over_are_remembered_within_a_bound() -> None:
    from ledger.voucher_book import MAX_JOBS_OVER

    lanes = {key(1): Lane(10**18, 0), key(2): Lane(10**18, 0)}
    book = VoucherBook()
    book.job_over(REQUESTER, bytes([1]) * 32)  # the oldest: forgotten below
    book.job_over(REQUESTER, bytes([2]) * 32)
    for n in range(MAX_JOBS_OVER - 1):
        book.job_over(b"\x07" * 20, n.to_bytes(32, "big"))
    assert len(book._over) == MAX_JOBS_OVER
    book.add(voucher(1, 1, 3 * ITEM_COST), redeem_by_s=100_000)
    book.add(voucher(2, 1, 3 * ITEM_COST), redeem_by_s=100_000)
    assert book.plan(lanes, 0, 10 * GWEI, POLICY).vouchers == [voucher(2, 1, 3 * ITEM_COST)]

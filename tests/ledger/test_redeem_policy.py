"""The payee's redeem policy against gas (issue 13): batch, yet never lose a voucher.

The demo's payees redeemed every 0.1 ETH voucher the moment it came (16 redeems
for 8 frames, ~51k gas each): a lane secures the pay until the redeem-by time,
so the book now waits for the job's end, the redeem-by time, or a batch worth
``profit_factor`` times its gas. Waiting must never cost a voucher that was
worth redeeming: whenever the payee plans at least once in the last
``urgent_margin_s`` before a job's redeem-by time, everything worth more than
the gas of redeeming it goes out in time.
"""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from ledger.voucher_book import Lane, RedeemPolicy, VoucherBook
from ledger.vouchers import Voucher

POLICY = RedeemPolicy()
REQUESTER = b"\x09" * 20
ME = b"\x01" * 20


def voucher(job: int, cumulative_wei: int) -> Voucher:
    return Voucher(1, b"\x02" * 20, REQUESTER, bytes([job]) * 32, ME, cumulative_wei, b"sig")


entries = st.lists(
    st.tuples(
        st.integers(1, 10**18),  # cumulative
        st.integers(0, 10**18),  # lane total
        st.integers(0, 10**18),  # paid already (capped by the lane below)
        st.integers(1, 20_000),  # redeem-by, chain seconds
        st.booleans(),  # the job is over
    ),
    min_size=1,
    max_size=20,
)


@settings(max_examples=300, deadline=None)
@given(
    entries=entries,
    gas_price_wei=st.integers(1, 10**12),
    gaps_s=st.lists(st.integers(1, POLICY.urgent_margin_s), min_size=1, max_size=60),
)
def test_no_voucher_worth_its_gas_expires(
    entries: list[tuple[int, int, int, int, bool]], gas_price_wei: int, gaps_s: list[int]
) -> None:
    book, lanes = VoucherBook(), {}
    for job, (cumulative_wei, lane_wei, paid_wei, redeem_by_s, over) in enumerate(entries):
        v = voucher(job, cumulative_wei)
        book.add(v, redeem_by_s)
        lanes[v.key()] = Lane(lane_wei, min(paid_wei, lane_wei))
        if over:
            book.mark_final(REQUESTER, v.job_id)
    single_cost_wei = gas_price_wei * POLICY.gas_single
    # The payee plans at chain times at most urgent_margin_s apart, until every
    # job's redeem-by time has passed.
    now_s, last_s = 0, max(e[3] for e in entries) + 1
    times = []
    for gap_s in gaps_s:
        times.append(now_s)
        now_s += gap_s
    times += list(range(now_s, last_s + POLICY.urgent_margin_s, POLICY.urgent_margin_s))
    for chain_time_s in times:
        plan = book.plan(lanes, chain_time_s, gas_price_wei, POLICY)
        assert (
            plan.total_wei > gas_price_wei * POLICY.batch_gas(len(plan.redeem)) or not plan.redeem
        )
        for r in plan.redeem:
            lane = lanes[r.voucher.key()]
            assert r.voucher.cumulative_wei > lane.paid_wei and chain_time_s < book_redeem_by(
                entries, r.voucher
            )
            lanes[r.voucher.key()] = Lane(lane.total_wei, lane.paid_wei + r.amount_wei)
        for w in plan.written_off:
            lane = lanes[w.voucher.key()]
            payable_wei = min(w.voucher.cumulative_wei, lane.total_wei) - lane.paid_wei
            assert payable_wei <= single_cost_wei, f"lost a voucher worth {payable_wei} wei"
    assert book.unsettled() == [] or all(
        min(v.cumulative_wei, lanes[v.key()].total_wei) - lanes[v.key()].paid_wei <= single_cost_wei
        for v in book.unsettled()
    )


def book_redeem_by(entries: list[tuple[int, int, int, int, bool]], v: Voucher) -> int:
    return entries[v.job_id[0]][3]


@settings(max_examples=300, deadline=None)
@given(
    amounts_wei=st.lists(st.integers(1, 10**18), min_size=1, max_size=20),
    gas_price_wei=st.integers(1, 10**11),
    chain_time_s=st.integers(0, 10**6),
)
def test_a_running_job_is_redeemed_early_only_when_gas_is_a_tiny_share(
    amounts_wei: list[int], gas_price_wei: int, chain_time_s: int
) -> None:
    book, lanes = VoucherBook(), {}
    redeem_by_s = chain_time_s + POLICY.urgent_margin_s + 1  # not urgent yet
    for job, amount_wei in enumerate(amounts_wei):
        v = voucher(job, amount_wei)
        book.add(v, redeem_by_s)
        lanes[v.key()] = Lane(amount_wei, 0)
    plan = book.plan(lanes, chain_time_s, gas_price_wei, POLICY)
    cost_wei = gas_price_wei * POLICY.batch_gas(len(plan.redeem))
    assert not plan.redeem or plan.total_wei > POLICY.profit_factor * cost_wei
    if sum(amounts_wei) <= POLICY.profit_factor * gas_price_wei * POLICY.gas_batch_item:
        assert plan.redeem == []  # every voucher waits for the job's end


def test_the_demo_pattern_waits_for_the_job_end_then_redeems_once() -> None:
    """Three 0.1 ETH frames for one worker at 1 gwei: nothing goes while the job runs
    (it used to be one redeem per voucher), everything in one redeem once it is over."""
    book, gas_price_wei = VoucherBook(), 10**9
    key = voucher(1, 1).key()
    lanes = {key: Lane(3 * 10**17, 0)}
    for frame in (1, 2, 3):
        book.add(voucher(1, frame * 10**17), redeem_by_s=10**6)
        assert book.plan(lanes, 1_000 + frame, gas_price_wei, POLICY).redeem == []
    assert book.mark_final(REQUESTER, bytes([1]) * 32)
    plan = book.plan(lanes, 1_010, gas_price_wei, POLICY)
    assert [r.amount_wei for r in plan.redeem] == [3 * 10**17]
    assert not book.mark_final(REQUESTER, bytes([2]) * 32)  # a job we hold nothing of

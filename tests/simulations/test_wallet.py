"""The simulated payee redeems as the node's does: ledger's VoucherBook and RedeemPolicy.

One voucher per (job, payee) lands on chain once the job is over, however many
vouchers came before; a "job over" notice that overtakes the last voucher still
counts; a payee that restarted without the notice redeems when the redeem-by time
draws near (the policy's urgent margin), never after it.
"""

from __future__ import annotations

from types import SimpleNamespace

from ledger.voucher_book import Lane, RedeemPolicy
from protocol.messages import Voucher
from simulations.chain import ChainModel
from simulations.loop import EventLoop
from simulations.scenario import Chain
from simulations.wallet import Wallet

REQUESTER, PAYEE, JOB = b"\x0a" * 20, b"\x0b" * 20, b"\x0c" * 32
DEADLINE_MS = 3_600_000
FRAME_WEI = 10**15  # far above a redeem's gas at 0.05 gwei, far below 10,000× of it


def world() -> SimpleNamespace:
    loop = EventLoop(seed=1)
    config = Chain()
    chain = ChainModel(loop, config)
    chain.mint(REQUESTER, 100 * FRAME_WEI)
    chain.deposit(REQUESTER, JOB, 10 * FRAME_WEI, DEADLINE_MS, None)
    loop.run_until(60_000)
    assert JOB in chain.jobs
    chain.open_lanes(REQUESTER, JOB, [(PAYEE, 10 * FRAME_WEI)])  # the payee's pay, secured
    loop.run_until(80_000)
    assert chain.lane(JOB, PAYEE) == Lane(10 * FRAME_WEI, 0)
    return SimpleNamespace(loop=loop, chain=chain, scenario=SimpleNamespace(chain=config))


def voucher(w: SimpleNamespace, frames: int) -> Voucher:
    cumulative = frames * FRAME_WEI
    w.chain.issued.add((JOB, PAYEE, cumulative))
    return Voucher(31337, b"\xe5" * 20, REQUESTER, JOB, PAYEE, cumulative, bytes(65))


def test_vouchers_of_a_running_job_wait_then_go_in_one_transaction_once_it_is_over() -> None:
    w = world()
    wallet = Wallet(w, {})  # type: ignore[arg-type]
    for frames in (1, 2, 3):
        wallet.receive(voucher(w, frames))
        w.loop.run_until(w.loop.now_ms + 60_000)
    assert w.chain.stats.redeem_txs == 0  # not worth 10,000× its gas yet
    wallet.job_over(REQUESTER, JOB)
    w.loop.run_until(w.loop.now_ms + 120_000)
    assert (w.chain.stats.redeem_txs, w.chain.stats.redeems) == (1, 1)
    assert w.chain.balances[PAYEE] == 3 * FRAME_WEI
    assert wallet.vouchers == {JOB: voucher(w, 3)}  # kept until redeem-by has passed


def test_a_notice_that_overtakes_the_last_voucher_still_counts() -> None:
    w = world()
    wallet = Wallet(w, {})  # type: ignore[arg-type]
    wallet.job_over(REQUESTER, JOB)
    wallet.receive(voucher(w, 2))
    w.loop.run_until(w.loop.now_ms + 120_000)
    assert w.chain.balances.get(PAYEE) == 2 * FRAME_WEI


def test_a_restarted_payee_without_the_notice_redeems_within_the_urgent_margin() -> None:
    w = world()
    persisted = {JOB: voucher(w, 4)}
    wallet = Wallet(w, persisted)  # type: ignore[arg-type]
    redeem_by_ms = w.chain.redeem_by_ms(JOB)
    urgent_ms = redeem_by_ms - RedeemPolicy().urgent_margin_s * 1000
    w.loop.run_until(urgent_ms - 1_000)
    assert w.chain.stats.redeem_txs == 0
    w.loop.run_until(redeem_by_ms)
    assert w.chain.balances.get(PAYEE) == 4 * FRAME_WEI
    assert wallet.alive


def test_a_dead_payee_redeems_nothing() -> None:
    w = world()
    wallet = Wallet(w, {})  # type: ignore[arg-type]
    wallet.receive(voucher(w, 1))
    wallet.alive = False
    wallet.job_over(REQUESTER, JOB)
    w.loop.run_until(w.loop.now_ms + 120_000)
    assert w.chain.stats.redeem_txs == 0

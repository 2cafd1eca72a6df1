"""A payee's wallet: the node's voucher book and redeem policy, on the chain model.

It keeps vouchers and decides when to redeem exactly as the node's payee
(``node/roles/chain.py``) does, with ledger's ``VoucherBook`` and
``RedeemPolicy``: a voucher goes out once its job is over (the requester's
"finished" notice, ``job_over``) or its redeem-by time is near, as soon as it
is worth its gas; before that only a batch worth ``profit_factor`` times its
gas goes; everything due at once leaves in one ``redeem_batch``. Before each
plan it reads the payee's lanes from the chain model (funded and paid, as the
node reads ``Escrow.lanes``: a voucher pays only up to its lane) and plans with
the chain's time, which is the loop's. Where the node polls every ``redeem_retry_s``, the wallet sleeps until
the book's next change (``VoucherBook.next_change_s``) or the next voucher.

``vouchers`` (job id -> newest voucher) is the node's persisted state: it
survives a crash and is planned again on restart; "job over" notices are not
persisted (as in the node: redeem-by then decides).
"""

from __future__ import annotations

from ledger.voucher_book import RedeemPolicy, VoucherBook
from protocol.messages import Voucher
from simulations.world import World


class Wallet:
    def __init__(self, world: World, vouchers: dict[bytes, Voucher]) -> None:
        self.world = world
        self.vouchers = vouchers
        self.alive = True
        self.book = VoucherBook()
        self.policy = RedeemPolicy()
        self._gas_price_wei = int(world.scenario.chain.gas_price_gwei * 10**9)
        self._in_flight = False  # one batch at a time, as the node awaits its transaction
        self._planned_ms: int | None = None  # the next plan's loop time
        for job_id in sorted(vouchers):
            self._add(vouchers[job_id])
        if vouchers:
            self._wake()

    def receive(self, voucher: Voucher) -> None:
        held = self.vouchers.get(voucher.job_id)
        if held is None or voucher.cumulative_wei > held.cumulative_wei:
            self.vouchers[voucher.job_id] = voucher
            self._add(voucher)
            self._wake()

    def job_over(self, requester_address: bytes, job_id: bytes) -> None:
        """The job's requester said it is over (the caller checked the sender)."""
        if self.book.job_over(requester_address, job_id):
            self._wake()

    def _add(self, voucher: Voucher) -> None:
        by_ms = self.world.chain.redeem_by_ms(voucher.job_id)
        if by_ms is not None:  # no such job on chain: nothing could pay it
            self.book.add(voucher, max(1, by_ms // 1000))

    def _wake(self, at_ms: int | None = None) -> None:
        loop = self.world.loop
        at_ms = loop.now_ms if at_ms is None else max(at_ms, loop.now_ms)
        if self._in_flight:
            return  # its confirmation plans again
        if self._planned_ms is not None and self._planned_ms <= at_ms:
            return
        self._planned_ms = at_ms
        loop.call_at(at_ms, self._plan, at_ms, "redeem-plan")

    def _plan(self, at_ms: int) -> None:
        if at_ms != self._planned_ms:
            return  # superseded by an earlier wake
        self._planned_ms = None
        if not self.alive or self._in_flight:
            return  # a restarted node plans from its persisted vouchers
        chain, now_s = self.world.chain, self.world.loop.now_ms // 1000
        lanes = {}
        for voucher in self.book.unsettled():
            lane = chain.lane(voucher.job_id, voucher.payee)
            if lane is not None:
                lanes[voucher.key()] = lane
        plan = self.book.plan(lanes, now_s, self._gas_price_wei, self.policy)
        for voucher in list(self.vouchers.values()):  # settled or written off: forgotten
            if self.book.latest(voucher.key()) is None:
                del self.vouchers[voucher.job_id]
        if plan.redeem:
            self._in_flight = True
            batch = [(v.job_id, v.payee, v.cumulative_wei) for v in plan.vouchers]
            chain.redeem_batch(batch, self._confirmed)
            return
        next_s = self.book.next_change_s(now_s, self.policy)
        if next_s is not None:
            self._wake(next_s * 1000)

    def _confirmed(self, ok: bool) -> None:
        self._in_flight = False
        if self.alive:
            self._wake()  # the chain's paid amounts are read again before the next plan

"""A payee's wallet: keeps the newest voucher per job and redeems it on chain.

Vouchers are cumulative, so only the newest per job matters; a payee waits
``chain.redeem_delay_s`` after a voucher before redeeming, which batches the
vouchers of a busy job into fewer transactions (and gas). The voucher dict is
the node's persisted state: it survives a crash and is redeemed on restart.
"""

from __future__ import annotations

from protocol.messages import Voucher
from simulations.world import World


class Wallet:
    def __init__(self, world: World, vouchers: dict[bytes, Voucher]) -> None:
        self.world = world
        self.vouchers = vouchers
        self.alive = True
        self._pending: set[bytes] = set()
        for job_id in sorted(vouchers):
            self._schedule(job_id)

    def receive(self, voucher: Voucher) -> None:
        held = self.vouchers.get(voucher.job_id)
        if held is None or voucher.cumulative_wei > held.cumulative_wei:
            self.vouchers[voucher.job_id] = voucher
            self._schedule(voucher.job_id)

    def _schedule(self, job_id: bytes) -> None:
        if job_id in self._pending:
            return
        self._pending.add(job_id)
        delay_ms = self.world.scenario.chain.redeem_delay_s * 1000
        self.world.loop.call_later(delay_ms, self._redeem, job_id, "redeem")

    def _redeem(self, job_id: bytes) -> None:
        if not self.alive:
            return  # the restarted node redeems from its persisted vouchers
        self._pending.discard(job_id)
        voucher = self.vouchers[job_id]
        self.world.chain.redeem(job_id, voucher.payee, voucher.cumulative_wei, None)

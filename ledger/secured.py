"""What a payee reads before it works: is its pay for a job secured on chain?

Pure (no web3), so the node's pay check (node/roles/paycheck.py) and the
simulator's workers (simulations/workers.py) take the same decision.
``ledger.client`` re-exports :class:`Secured`.
"""

from __future__ import annotations

from dataclasses import dataclass

REDEEM_MARGIN_S = 30  # after the job's deadline, time the payee wants left to redeem
NATIVE_TOKEN = bytes(20)


@dataclass(frozen=True, slots=True)
class Secured:
    """What a payee checks before it bids and before each frame (one call)."""

    exists: bool
    token: bytes
    deadline_s: int
    redeem_until_s: int  # deadline + grace: the last block time a voucher pays
    refunded: bool
    lane_wei: int
    paid_wei: int

    @property
    def secured_wei(self) -> int:
        """Pay the requester can no longer take back (0 once refunded)."""
        return 0 if self.refunded or not self.exists else self.lane_wei - self.paid_wei

    def problem(self, *, token: bytes, cumulative_wei: int, redeem_by_s: int) -> str | None:
        """None when vouchers totalling ``cumulative_wei`` for this job will pay in full
        if redeemed by ``redeem_by_s`` (chain time: when the work is done plus the time
        to redeem); otherwise why not. A worker asks before it bids and before each
        frame, with ``cumulative_wei`` its total after that frame."""
        if not self.exists:
            return "no such job on chain"
        if self.refunded:
            return "job refunded"
        if self.token != token:
            return "job pays in another token"
        if redeem_by_s > self.redeem_until_s:
            return f"vouchers stop paying at {self.redeem_until_s}, before {redeem_by_s}"
        if self.lane_wei < cumulative_wei:
            return f"{self.lane_wei} wei secured, {cumulative_wei} wei needed"
        return None

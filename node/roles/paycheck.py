"""Is my pay secured on chain? The check a worker and a checker make before they work.

Theory of operation. ``PayCheck.problem`` says why vouchers totalling
``cumulative_wei`` for a job might not pay, or None: the job must be escrowed
on our chain, exist for that requester, not be refunded, pay in the native
coin, keep paying ``REDEEM_MARGIN_S`` after the job's deadline, and our lane
must hold ``cumulative_wei`` (``ledger.client.Secured.problem`` decides). A
reading that secured enough stays true (a lane only grows, a deadline only
moves later, and no refund comes before deadline + grace), so it is kept and
the chain is read again only when the lane must have grown; an outage
meanwhile costs no work. Readings are kept for at most ``MAX_SECURED`` jobs.
"""

from __future__ import annotations

from collections.abc import Callable

from ledger.errors import LedgerError
from ledger.secured import NATIVE_TOKEN, REDEEM_MARGIN_S, Secured
from node.roles.ports import Chain
from protocol.messages import JobSpec

MAX_SECURED = 1024  # chain readings kept (jobs still known are kept first)


class PayCheck:
    def __init__(self, chain: Chain | None, known: Callable[[bytes], bool]) -> None:
        self.chain = chain
        self._known = known  # whether a job is still of interest (its reading is kept)
        self._secured: dict[bytes, Secured] = {}

    async def problem(self, spec: JobSpec, job_id: bytes, cumulative_wei: int) -> str | None:
        """Why vouchers totalling ``cumulative_wei`` for the job might not pay, or None."""
        chain = self.chain
        if chain is None:
            return None
        escrow = spec.escrow
        if escrow is None or (escrow.chain_id, escrow.contract) != (chain.chain_id, chain.contract):
            return "the job is not escrowed on our chain"
        redeem_by_s = spec.deadline_ms // 1000 + REDEEM_MARGIN_S

        def problem(secured: Secured) -> str | None:
            return secured.problem(token=NATIVE_TOKEN, cumulative_wei=cumulative_wei,
                                   redeem_by_s=redeem_by_s)  # fmt: skip

        cached = self._secured.get(job_id)
        if cached is not None and problem(cached) is None:
            return None
        try:
            secured = await chain.secured(spec.requester_address, job_id)
        except LedgerError as exc:
            return f"chain unreachable: {str(exc)[:100]}"
        if len(self._secured) >= MAX_SECURED:
            self._secured = {j: s for j, s in self._secured.items() if self._known(j)}
        if len(self._secured) < MAX_SECURED:
            self._secured[job_id] = secured
        return problem(secured)

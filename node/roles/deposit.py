"""Escrowing a job's budget exactly once, across outages, lost receipts and crashes.

The contract adds a deposit to an existing job (top-ups are a feature), so a
retried deposit whose first attempt was mined — the receipt lost in an
outage, or the node killed while waiting for it — would escrow a second
budget. Before every attempt the chain is asked whether this account's job
already exists; only this account can have made it (jobs are keyed by
requester and id, and the id is the hash of this node's own spec).

Left open: a deposit still pending in the mempool when the chain is asked
again is not seen, and the retry can then be mined beside it (the surplus is
not lost — it is refunded with the rest after deadline + grace). Closing it
needs the contract to refuse a deposit that does not expect the job's current
total, or the sender to reuse the pending transaction's nonce.
"""

from __future__ import annotations

import logging

import trio

from ledger.errors import ChainRevert, LedgerError, TxRejected
from node.log import log_event
from node.roles.ports import Chain
from protocol.messages import JobSpec

logger = logging.getLogger(__name__)
DEPOSIT_RETRY_S = 2.0
HINTS = {  # what to do about the escrow's refusals a user can cause
    "deadline too far": " (the escrow takes a deadline at most its MAX_JOB_S, 30 days by"
    " default, after the job's first deposit: submit with a shorter --deadline)",
    "deadline passed": " (the job's deadline is already past: submit with a later --deadline)",
}


class DepositRefused(Exception):
    """The escrow said no (the message says why): final, never retried."""


async def escrow_once(chain: Chain, spec: JobSpec, job_id: bytes) -> None:
    """Make sure this account's job ``job_id`` holds its budget; waits out outages."""
    while True:
        try:
            if (await chain.job(job_id)).exists:
                return  # deposited already (a lost receipt, or before a restart)
            await chain.deposit(job_id, spec.budget_wei, spec.deadline_ms // 1000)
            return
        except TxRejected as exc:  # the node refused it (nonce, fee): it never ran, retry
            log_event(logger, logging.WARNING, "deposit postponed", error=str(exc)[:200])
        except ChainRevert as exc:  # the contract said no: final
            raise DepositRefused(exc.reason + HINTS.get(exc.reason, "")) from None
        except LedgerError as exc:  # unreachable, or no receipt in time: ask again
            log_event(logger, logging.WARNING, "deposit postponed", error=str(exc)[:200])
        await trio.sleep(DEPOSIT_RETRY_S)

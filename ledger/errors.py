"""Typed errors of the ledger client.

Callers (node roles) treat them differently: a ``ChainRevert`` is final for
that call (the contract said no, with a reason); a ``ChainUnreachable`` is
transient — keep running, retry later; a ``ChainMismatch`` is a configuration
mistake and should stop the node with a clear message.
"""

from __future__ import annotations


class LedgerError(Exception):
    """Base of every error the ledger package raises."""


class ChainRevert(LedgerError):
    """The contract rejected the call; ``reason`` is its revert string."""

    def __init__(self, reason: str, *, tx_hash: bytes | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.tx_hash = tx_hash


class TxRejected(ChainRevert):
    """The node refused the signed transaction (nonce, funds, fee): it never ran,
    so its nonce may be unused and the counter must be refetched."""


class ChainUnreachable(LedgerError):
    """The RPC endpoint did not answer (or no receipt came in time). Retry later."""


class ChainMismatch(LedgerError):
    """The endpoint serves another chain than configured, or lacks the contract."""

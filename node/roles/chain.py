"""The node's link to the settlement chain, and the payee's voucher redemption.

Theory of operation. ``ChainLink`` opens lazily and reopens after an outage:
every call that fails with ``LedgerError`` leaves the link closed, and the
next call tries again. Nothing is lost meanwhile — a requester keeps its
deposit pending, a payee keeps its vouchers in the store and redeems them
once the chain answers (``Payee.run`` retries every ``retry_s``).

``Payee`` keeps a ``ledger.voucher_book.VoucherBook`` of vouchers received
(verified against the job's requester address first) and redeems what the
book's policy picks; every voucher is persisted before it is acknowledged.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from typing import TypeVar

import trio
from eth_account import Account
from web3.types import TxReceipt

from ledger.backends import connect
from ledger.client import Call, EscrowClient, JobState
from ledger.errors import LedgerError
from ledger.trio_client import TrioEscrow
from ledger.tx import TxSender
from ledger.voucher_book import RedeemPolicy, VoucherBook
from ledger.vouchers import VoucherError, verify
from node.log import log_event
from node.roles import persist
from node.roles.ports import Chain, ChainTx
from node.store import Store
from protocol.messages import Voucher

logger = logging.getLogger(__name__)
T = TypeVar("T")


@dataclass(frozen=True)
class ChainSettings:
    rpc_url: str
    chain_id: int
    escrow_address: str


class ChainLink:
    """One account's escrow client, (re)opened on demand: the node's ``ports.Chain``."""

    def __init__(self, settings: ChainSettings, payment_key: bytes) -> None:
        self.settings = settings
        self._key = payment_key
        self.address = bytes.fromhex(Account.from_key(payment_key).address[2:])
        self._escrow: TrioEscrow | None = None
        self._lock = trio.Lock()
        self.transactions: list[ChainTx] = []

    @property
    def chain_id(self) -> int:
        return self.settings.chain_id

    @property
    def contract(self) -> bytes:
        return bytes.fromhex(self.settings.escrow_address.removeprefix("0x"))

    async def escrow(self) -> TrioEscrow:
        async with self._lock:
            if self._escrow is None:
                self._escrow = await trio.to_thread.run_sync(self._open)
            return self._escrow

    def _open(self) -> TrioEscrow:
        w3 = connect(self.settings.rpc_url, self.settings.chain_id, timeout_s=5.0)
        client = EscrowClient(TxSender(w3, self._key), self.settings.escrow_address)
        return TrioEscrow(client, trio.CapacityLimiter(1))

    async def send(
        self, what: str, job_ids: tuple[bytes, ...], call_of: str, *args: object
    ) -> TxReceipt:
        """Send ``escrow.calls.<call_of>(*args)`` for ``job_ids``; ``LedgerError`` closes the link."""
        try:
            escrow = await self.escrow()
            call: Call = getattr(escrow.calls, call_of)(*args)
            receipt = await escrow.send(call)
        except LedgerError:
            self._escrow = None
            raise
        gas = int(receipt["gasUsed"])
        self.transactions.append(ChainTx(what, receipt["transactionHash"].hex(), gas, job_ids))
        log_event(logger, logging.INFO, "transaction", what=what, gas=gas)
        return receipt

    async def _read(self, fn: Callable[[EscrowClient], T]) -> T:
        """A view on the chain; any failure (web3 raises many kinds) is a ``LedgerError``."""
        try:
            escrow = await self.escrow()
            return await escrow.run(fn, escrow.client)
        except LedgerError:
            self._escrow = None
            raise
        except Exception as exc:
            self._escrow = None
            raise LedgerError(str(exc)[:300]) from exc

    async def deposit(self, job_id: bytes, budget_wei: int, deadline_s: int) -> None:
        await self.send("deposit", (job_id,), "deposit", job_id, budget_wei, deadline_s)

    async def refund(self, job_id: bytes) -> None:
        await self.send("refund", (job_id,), "refund", job_id)

    async def redeem(self, vouchers: Sequence[Voucher]) -> None:
        jobs = tuple(dict.fromkeys(v.job_id for v in vouchers))
        if len(vouchers) == 1:
            await self.send("redeem", jobs, "redeem", vouchers[0])
        else:
            await self.send(f"redeem_batch×{len(vouchers)}", jobs, "redeem_batch", list(vouchers))

    async def job(self, job_id: bytes) -> JobState:
        return await self._read(lambda client: client.job(job_id))

    async def grace_s(self) -> int:
        return await self._read(lambda client: client.grace_s())

    async def chain_time_s(self) -> int:
        return await self._read(lambda c: int(c.w3.eth.get_block("latest")["timestamp"]))

    async def gas_price_wei(self) -> int:
        return await self._read(lambda client: int(client.w3.eth.gas_price))


class Payee:
    """Vouchers this node earned (worker or checker), redeemed on chain."""

    def __init__(self, link: Chain, store: Store, policy: RedeemPolicy, retry_s: float) -> None:
        self.link = link
        self.store = store
        self.policy = policy
        self.retry_s = retry_s
        self.book = VoucherBook()
        self.paid_wei = 0
        self._wake = trio.Event()

    async def load(self) -> None:
        for row in await self.store.call(persist.load_vouchers):
            self.book.add(Voucher(*row))

    async def receive(self, voucher: Voucher, requester_address: bytes, payer: str) -> bool:
        try:
            verify(voucher, requester_address, chain_id=self.link.chain_id,
                   contract=self.link.contract)  # fmt: skip
        except VoucherError as exc:
            log_event(logger, logging.WARNING, "voucher refused", peer=payer, error=str(exc))
            return False
        if self.book.add(voucher):
            await self.store.call(partial(persist.save_voucher, payer=payer, v=voucher))
            self._wake.set()
        return True

    async def run(self) -> None:
        while True:
            try:
                await self.redeem_now()
            except LedgerError as exc:
                log_event(logger, logging.WARNING, "redeem postponed", error=str(exc))
            self._wake = trio.Event()
            with trio.move_on_after(self.retry_s):
                await self._wake.wait()

    async def redeem_now(self) -> None:
        if self.book.total_owed_wei() == 0:
            return
        gas_price_wei = await self.link.gas_price_wei()
        batch = self.book.choose_batch(gas_price_wei, int(trio.current_time()), self.policy)
        if not batch:
            return
        # What this batch pays, fixed before the await: a newer voucher for the same
        # account may arrive while the transaction is in flight.
        owed = [(v.key(), self.book.owed_wei(v.key()), v.cumulative_wei) for v in batch]
        await self.link.redeem(batch)
        for key, amount_wei, cumulative_wei in owed:
            self.paid_wei += amount_wei
            self.book.mark_paid(key, cumulative_wei)

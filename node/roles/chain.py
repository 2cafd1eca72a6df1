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
from ledger.client import (
    Call,
    ChainReadings,
    ClaimEvidence,
    ClaimState,
    EscrowClient,
    FraudTerms,
    JobState,
    Ladder,
    Secured,
)
from ledger.errors import LedgerError
from ledger.fraud import CheckerPass, CleanAnswer, FraudClaim, ResultRef
from ledger.trio_client import TrioEscrow
from ledger.tx import TxSender
from ledger.voucher_book import Key, RedeemPolicy, VoucherBook
from ledger.vouchers import VoucherError, verify
from node.log import log_event
from node.roles import persist
from node.roles.ports import Chain, ChainTx
from node.store import Store
from protocol.messages import Voucher
from protocol.slashing import SignerStanding, stake_held_wei, takeable_wei

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

    async def free_stake_wei(self) -> int:
        """This account's free active stake in the escrow (active, less what pending
        claims lock), as the chain has it now."""
        return (await self._read(lambda c: c.stake_of(self.address))).free_wei

    async def stake_of(self, account: bytes) -> int:
        return (await self._read(lambda c: c.stake_of(account))).active_wei

    async def free_stake_of(self, account: bytes) -> int:
        return (await self._read(lambda c: c.stake_of(account))).free_wei

    async def open_lanes_of(self, account: bytes) -> int:
        return await self._read(lambda c: c.open_lanes_of(account))

    async def signer_standing(self, account: bytes) -> SignerStanding:
        def read(c: EscrowClient) -> SignerStanding:
            state = c.stake_of(account)
            return SignerStanding(c.is_checker(account), state.active_wei, state.locked_wei)

        return await self._read(read)

    async def stake_held_of(self, account: bytes) -> int:
        state = await self._read(lambda c: c.stake_of(account))
        return stake_held_wei(state.active_wei, state.unbonding_wei)

    async def takeable_of(self, account: bytes) -> int:
        state = await self._read(lambda c: c.stake_of(account))
        return takeable_wei(state.active_wei, state.locked_wei, state.unbonding_wei)

    async def fraud_terms(self) -> FraudTerms:
        return await self._read(lambda c: c.fraud_terms())

    async def claim_fraud(
        self, claim: FraudClaim, worker_sig: bytes, ordered_sigs: Sequence[bytes],
        evidence: bytes = b"",
    ) -> None:  # fmt: skip
        await self.send("claim_fraud", (claim.ref.job_id,), "claim_fraud", claim, worker_sig,
                        list(ordered_sigs), evidence)  # fmt: skip

    async def claim_pass(
        self, signed_pass: CheckerPass, pass_sig: bytes, amount_wei: int,
        ordered_sigs: Sequence[bytes], evidence: bytes = b"",
    ) -> None:  # fmt: skip
        await self.send("claim_pass", (signed_pass.ref.job_id,), "claim_pass", signed_pass,
                        pass_sig, amount_wei, list(ordered_sigs), evidence)  # fmt: skip

    async def execute_slash(self, claim: FraudClaim, claimers: Sequence[bytes]) -> None:
        await self.send("execute_slash", (claim.ref.job_id,), "execute_slash", claim,
                        list(claimers))  # fmt: skip

    async def claim_state(self, ref: ResultRef, worker: bytes) -> ClaimState:
        return await self._read(lambda c: c.claim(ref, worker))

    async def is_checker(self, account: bytes) -> bool:
        return await self._read(lambda c: c.is_checker(account))

    async def claim_evidence(self, ref: ResultRef, worker: bytes) -> ClaimEvidence | None:
        return await self._read(lambda c: c.claim_evidence(ref, worker))

    async def claim_ladder(self, ref: ResultRef, worker: bytes) -> Ladder | None:
        return await self._read(lambda c: c.ladder(ref, worker))

    async def escalate(
        self, signed: CleanAnswer | FraudClaim, claimers: Sequence[bytes],
        ladder: Sequence[Sequence[bytes]], ordered_sigs: Sequence[bytes],
    ) -> None:  # fmt: skip
        await self.send("escalate", (signed.ref.job_id,), "escalate", signed, list(claimers),
                        [list(r) for r in ladder], list(ordered_sigs))  # fmt: skip

    async def settle_contest(
        self, signed: CleanAnswer | FraudClaim, claimers: Sequence[bytes],
        ladder: Sequence[Sequence[bytes]],
    ) -> None:  # fmt: skip
        await self.send("settle_contest", (signed.ref.job_id,), "settle_contest", signed,
                        list(claimers), [list(r) for r in ladder])  # fmt: skip

    async def checker_min_stake_wei(self) -> int:
        return await self._read(lambda c: c.checker_min_stake_wei())

    async def register_checker(self) -> None:
        await self.send("register_checker", (), "register_checker")

    async def deposit(self, job_id: bytes, budget_wei: int, deadline_s: int) -> None:
        await self.send("deposit", (job_id,), "deposit", job_id, budget_wei, deadline_s)

    async def top_up(self, job_id: bytes, amount_wei: int, deadline_s: int) -> None:
        await self.send("top-up", (job_id,), "deposit", job_id, amount_wei, deadline_s)

    async def latest_deadline_s(self, job_id: bytes) -> int:
        return await self._read(lambda c: c.job_created_s(job_id) + c.max_job_s())

    async def refund(self, job_id: bytes) -> None:
        await self.send("refund", (job_id,), "refund", job_id)

    async def open_lanes(self, job_id: bytes, fundings: Sequence[tuple[bytes, int]]) -> None:
        await self.send(f"open_lanes×{len(fundings)}", (job_id,), "open_lanes", job_id,
                        list(fundings))  # fmt: skip

    async def redeem(self, vouchers: Sequence[Voucher]) -> None:
        jobs = tuple(dict.fromkeys(v.job_id for v in vouchers))
        if len(vouchers) == 1:
            await self.send("redeem", jobs, "redeem", vouchers[0])
        else:
            await self.send(f"redeem_batch×{len(vouchers)}", jobs, "redeem_batch", list(vouchers))

    async def job(self, job_id: bytes) -> JobState:
        return await self._read(lambda client: client.job(job_id))

    async def lanes(self, job_id: bytes, payees: Sequence[bytes]) -> dict[bytes, int]:
        return await self._read(lambda client: {
            p: client.lane(job_id, p, self.address).total_wei for p in payees
        })  # fmt: skip

    async def secured(self, requester: bytes, job_id: bytes) -> Secured:
        return await self._read(lambda client: client.secured(requester, job_id))

    async def readings(self, vouchers: Sequence[Voucher]) -> ChainReadings:
        return await self._read(lambda client: client.readings(vouchers))

    async def grace_s(self) -> int:
        return await self._read(lambda client: client.grace_s())

    async def chain_time_s(self) -> int:
        return await self._read(lambda c: int(c.w3.eth.get_block("latest")["timestamp"]))

    async def gas_price_wei(self) -> int:
        return await self._read(lambda client: int(client.w3.eth.gas_price))


class Payee:
    """Vouchers this node earned (worker or checker), redeemed on chain.

    Each voucher is verified, then persisted with its job's redeem-by time
    (deadline + grace, read from the chain when the first voucher of a job
    arrives; while the chain does not answer it is kept as unknown and read
    before the next plan). Before each batch the payee reads the lanes, chain
    time and gas price (``Chain.readings``) and plans with
    ``VoucherBook.plan``: paid amounts are the chain's, each redemption's
    amount is fixed before the transaction is awaited, and vouchers that can
    no longer pay are logged as written off and dropped.
    """

    def __init__(self, link: Chain, store: Store, policy: RedeemPolicy, retry_s: float) -> None:
        self.link = link
        self.store = store
        self.policy = policy
        self.retry_s = retry_s
        self.book = VoucherBook()
        self._unknown: dict[Key, tuple[Voucher, str]] = {}  # redeem-by not read yet
        self._paid: dict[Key, int] = {}  # paid per lane: the chain's, plus our last redeem
        self._wake = trio.Event()
        # vouchers handed over without holding the sender's stream (offer: a checker's
        # fees, a restarted node's pay): a chain read and a store write each
        self._inbox, self._inbox_out = trio.open_memory_channel[tuple[Voucher, bytes, str]](256)

    def offer(self, voucher: Voucher, requester_address: bytes, payer: str) -> bool:
        """Queue ``voucher`` for :meth:`receive`; False when the queue is full (the
        sender tries again)."""
        try:
            self._inbox.send_nowait((voucher, requester_address, payer))
        except trio.WouldBlock:
            return False
        return True

    @property
    def paid_wei(self) -> int:
        """What the chain has paid this node for the vouchers it holds or held."""
        return sum(self._paid.values())

    def owed_wei(self) -> int:
        return self.book.total_owed_wei() + sum(v.cumulative_wei for v, _ in self._unknown.values())

    def job_over(self, requester_address: bytes, job_id: bytes) -> None:
        """The job's requester says the job is over (the caller checked it is): no
        larger voucher will come, so ours are redeemed once worth their gas."""
        if self.book.job_over(requester_address, job_id):
            self._wake.set()

    def voucher_wei(self, requester_address: bytes, job_id: bytes) -> int:
        """The largest cumulative amount a voucher of this job has promised us so far."""
        link = self.link
        key = (link.chain_id, link.contract, requester_address, job_id, link.address)
        voucher = self.book.latest(key) or self._unknown.get(key, (None, ""))[0]
        return 0 if voucher is None else voucher.cumulative_wei

    async def load(self) -> None:
        for row in await self.store.call(persist.load_vouchers):
            voucher = Voucher(*row[:7])
            payer, paid_wei, redeem_by_s = row[7:]
            if redeem_by_s > 0:
                self.book.add(voucher, redeem_by_s)
                self.book.mark_paid(voucher.key(), paid_wei)
                self._paid[voucher.key()] = paid_wei
            else:
                self._unknown[voucher.key()] = (voucher, payer)

    async def receive(self, voucher: Voucher, requester_address: bytes, payer: str) -> bool:
        try:
            verify(voucher, requester_address, chain_id=self.link.chain_id,
                   contract=self.link.contract)  # fmt: skip
        except VoucherError as exc:
            log_event(logger, logging.WARNING, "voucher refused", peer=payer, error=str(exc))
            return False
        if voucher.payee != self.link.address:  # its lane is someone else's (review, stop 38)
            log_event(logger, logging.WARNING, "voucher refused", peer=payer,
                      error="it pays another address")  # fmt: skip
            return False
        key = voucher.key()
        known = self.book.latest(key) or self._unknown.get(key, (None, ""))[0]
        if known is not None and known.cumulative_wei >= voucher.cumulative_wei:
            return True  # nothing new
        redeem_by_s = self.book.redeem_by_s(key)
        if redeem_by_s is None:
            try:
                redeem_by_s = (await self.link.secured(voucher.requester, voucher.job_id)).redeem_until_s
            except LedgerError:
                redeem_by_s = 0  # unknown: read again before the next plan
        await self._keep(voucher, payer, redeem_by_s)
        self._wake.set()
        return True

    async def _keep(self, voucher: Voucher, payer: str, redeem_by_s: int) -> None:
        """Hold ``voucher`` (redeem-by known: in the book; else until it is read), keep
        only the newest per lane whatever order concurrent receives finish in, and
        persist that newest one."""
        key = voucher.key()
        redeem_by_s = redeem_by_s or self.book.redeem_by_s(key) or 0
        waiting = self._unknown.pop(key, None)
        held = [voucher] + ([waiting[0]] if waiting else [])
        newest = max(held, key=lambda v: v.cumulative_wei)
        if redeem_by_s > 0:
            self.book.add(newest, redeem_by_s)  # final at once if the job is over
            newest = self.book.latest(key) or newest
        else:
            self._unknown[key] = (newest, payer)
        await self.store.call(partial(persist.save_voucher, payer=payer, v=newest,
                                      redeem_by_s=redeem_by_s))  # fmt: skip

    async def run(self) -> None:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self._take_offers)
            await self._redeem_loop()

    async def _take_offers(self) -> None:
        async for voucher, requester_address, payer in self._inbox_out:
            await self.receive(voucher, requester_address, payer)

    async def _redeem_loop(self) -> None:
        while True:
            try:
                await self.redeem_now()
            except LedgerError as exc:
                log_event(logger, logging.WARNING, "redeem postponed", error=str(exc))
            self._wake = trio.Event()
            with trio.move_on_after(self.retry_s):
                await self._wake.wait()

    async def redeem_now(self) -> None:
        for voucher, payer in list(self._unknown.values()):
            secured = await self.link.secured(voucher.requester, voucher.job_id)
            await self._keep(voucher, payer, secured.redeem_until_s)
        vouchers = self.book.unsettled()
        if not vouchers:
            return
        readings = await self.link.readings(vouchers)
        # Planned without an await: the amounts are fixed before the transaction.
        plan = self.book.plan(readings.lanes, readings.chain_time_s, readings.gas_price_wei,
                              self.policy)  # fmt: skip
        for key, lane in readings.lanes.items():
            self._paid[key] = lane.paid_wei
        for w in plan.written_off:
            log_event(logger, logging.WARNING, "voucher written off", job=w.voucher.job_id.hex()[:16],
                      unpaid_wei=w.unpaid_wei, reason=w.reason)  # fmt: skip
        await self.store.call(partial(persist.sync_vouchers, rows=self.book.to_rows(),
                                      gone=[w.voucher.key() for w in plan.written_off]))  # fmt: skip
        if not plan.redeem:
            return
        await self.link.redeem(plan.vouchers)
        for r in plan.redeem:
            key = r.voucher.key()
            paid_wei = readings.lanes[key].paid_wei + r.amount_wei
            self.book.mark_paid(key, paid_wei)
            self._paid[key] = paid_wei
        await self.store.call(partial(persist.sync_vouchers, rows=self.book.to_rows(), gone=[]))

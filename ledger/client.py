"""Synchronous escrow client: call builders, views and transacting methods.

``EscrowCalls`` turns domain values (vouchers, fraud claims, amounts) into
contract calls without sending anything; ``EscrowClient`` reads state and
sends those calls from one account through a ``TxSender``. The trio wrapper
reuses ``EscrowCalls`` and does its own nonce hand-out.

Jobs are keyed on chain by (requester, job id). Where a method takes
``requester=None`` it means this client's own account (the requester's view
of its own jobs).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, replace
from typing import Any

from eth_abi.abi import encode as abi_encode
from eth_typing import ChecksumAddress
from eth_utils.address import to_canonical_address
from web3 import Web3
from web3.contract import Contract
from web3.contract.contract import ContractFunction
from web3.types import TxReceipt

from ledger.artifacts import load_artifact
from ledger.errors import ChainMismatch
from ledger.fraud import CheckerPass, CleanAnswer, FraudClaim, ResultRef, claim_commit
from ledger.secured import Secured as Secured  # re-exported: callers import it from here
from ledger.tx import TxSender, with_retries
from ledger.voucher_book import Key, Lane
from ledger.vouchers import Voucher, split_signature
from protocol.fraud_evidence import find_evidence

NATIVE = "0x0000000000000000000000000000000000000000"
# blocks per eth_getLogs query: providers cap a query's range (as ledger/follower.py)
LOG_RANGE_BLOCKS = 2_000
EVIDENCE_CACHE = 1_024  # claims whose evidence EscrowClient.claim_evidence keeps


@dataclass(frozen=True, slots=True)
class Call:
    """A contract call plus the native value it carries, and bytes appended to its
    calldata after the ABI-encoded arguments (``tail``: a fraud claim's published
    evidence, ``protocol.fraud_evidence``; the contract ignores them)."""

    fn: ContractFunction
    value_wei: int = 0
    tail: bytes = b""


@dataclass(frozen=True, slots=True)
class JobState:
    requester: bytes  # 20 zero bytes: no such job
    token: bytes
    remaining_wei: int  # deposited, not yet paid or refunded (lanes included)
    deadline_s: int
    refunded: bool
    unallocated_wei: int = 0  # the part of remaining_wei in no lane

    @property
    def exists(self) -> bool:
        return self.requester != bytes(20)


@dataclass(frozen=True, slots=True)
class ChainReadings:
    """What ``VoucherBook.plan`` needs from the chain, read in one go before a batch."""

    lanes: dict[Key, Lane]
    chain_time_s: int  # the latest block's timestamp
    gas_price_wei: int


@dataclass(frozen=True, slots=True)
class StakeState:
    active_wei: int
    unbonding_wei: int
    unbond_at_s: int
    locked_wei: int = 0  # the part of active_wei backing pending fraud claims

    @property
    def free_wei(self) -> int:
        """Active stake that can be unbonded or put at risk behind a new claim."""
        return self.active_wei - self.locked_wei


CLAIM_NONE, CLAIM_PENDING, CLAIM_EXECUTED, CLAIM_ANSWERED, CLAIM_CONTESTED = 0, 1, 2, 3, 4


@dataclass(frozen=True, slots=True)
class ClaimState:
    taken_wei: int  # stake the claim has taken so far (held while pending, collected after)
    amount_wei: int  # stake each claimer has locked
    # pending: executable from then on, answerable strictly before; contested: the last
    # rung wins from then on, can be outnumbered strictly before
    settle_at_s: int
    commit: bytes
    status: int  # CLAIM_*
    answered_by: int = 0  # signers of the last rung: a new claim needs more than an answer's
    answer: bytes = b"\0" * 32  # ladder_commit(ladder): every rung's signers
    rungs: int = 0  # rungs on the claim's ladder (0: unanswered)
    # the part of taken_wei from the worker's unbonding bucket: an answer that stands
    # returns it there (its unbond_at unchanged), the rest to its active stake
    from_unbonding_wei: int = 0


@dataclass(frozen=True, slots=True)
class ClaimEvidence:
    """What an answer to a pending claim must name (``answer_claim``): the claim's
    ``tiles`` and its claimers (ascending), as its ``FraudClaimed`` event logged them."""

    tiles: bytes
    claimers: tuple[bytes, ...]
    # what the claim's transaction published after its arguments (protocol.fraud_evidence:
    # the rejecting verdicts ``tiles`` commits to; b"" when it published nothing)
    published: bytes = b""


Ladder = tuple[tuple[bytes, ...], ...]  # a contested claim's rungs: each one's signers, ascending


def ladder_commit(ladder: Sequence[Sequence[bytes]]) -> bytes:
    """The escrow's ``Claim.answer``: keccak256(abi_encode(ladder))."""
    rungs = [[Web3.to_checksum_address(a) for a in rung] for rung in ladder]
    return bytes(Web3.keccak(abi_encode(["address[][]"], [rungs])))


def _addresses(ladder: Sequence[Sequence[bytes]]) -> list[list[str]]:
    return [[Web3.to_checksum_address(a) for a in rung] for rung in ladder]


@dataclass(frozen=True, slots=True)
class FraudTerms:
    """The escrow's immutable slashing rules, as a claimer needs them."""

    quorum: int  # SLASH_QUORUM: signers a claim needs
    cap_wei: int  # SLASH_CAP: the most one claim (one frame) takes
    challenge_s: int  # CHALLENGE_S: the worker's time to answer


def voucher_arg(v: Voucher) -> tuple[Any, ...]:
    """The contract's ``Voucher`` struct for ``v``."""
    return (
        Web3.to_checksum_address(v.requester),
        v.job_id,
        Web3.to_checksum_address(v.payee),
        v.cumulative_wei,
        split_signature(v.signature),
    )


class EscrowCalls:
    def __init__(self, contract: Contract, account: bytes | None = None) -> None:
        self.contract = contract
        self.account = account  # the sender: default requester of refund / slash

    def _requester(self, requester: bytes | None) -> ChecksumAddress:
        who = requester if requester is not None else self.account
        if who is None:
            raise ValueError("requester needed: these calls have no sending account")
        return Web3.to_checksum_address(who)

    def deposit(self, job_id: bytes, amount_wei: int, deadline_s: int, token: str = NATIVE) -> Call:
        fn = self.contract.functions.deposit(job_id, deadline_s, token, amount_wei)
        return Call(fn, amount_wei if token == NATIVE else 0)

    def open_lanes(self, job_id: bytes, fundings: Iterable[tuple[bytes, int]]) -> Call:
        """Fund (open or top up) payees' lanes of the sender's job: (payee, amount) pairs."""
        args = [(Web3.to_checksum_address(payee), amount) for payee, amount in fundings]
        return Call(self.contract.functions.open_lanes(job_id, args))

    def redeem(self, v: Voucher) -> Call:
        return Call(self.contract.functions.redeem(*voucher_arg(v)))

    def redeem_batch(self, vouchers: Sequence[Voucher]) -> Call:
        return Call(self.contract.functions.redeem_batch([voucher_arg(v) for v in vouchers]))

    def refund(self, job_id: bytes, requester: bytes | None = None) -> Call:
        return Call(self.contract.functions.refund(self._requester(requester), job_id))

    def stake(self, amount_wei: int) -> Call:
        return Call(self.contract.functions.stake(), amount_wei)

    def request_unbond(self, amount_wei: int) -> Call:
        return Call(self.contract.functions.request_unbond(amount_wei))

    def withdraw_stake(self) -> Call:
        return Call(self.contract.functions.withdraw_stake())

    def register_checker(self) -> Call:
        return Call(self.contract.functions.register_checker())

    def claim_fraud(
        self, claim: FraudClaim, worker_signature: bytes, ordered_signatures: Sequence[bytes],
        evidence: bytes = b"",
    ) -> Call:  # fmt: skip
        """Open a fraud claim: the worker's own Result signature plus the claimers'; the
        ``evidence`` (``protocol.fraud_evidence.pack_evidence``) rides after the arguments."""
        sigs = [split_signature(s) for s in ordered_signatures]
        fn = self.contract.functions.claim_fraud(
            claim.ref.arg(), Web3.to_checksum_address(claim.worker),
            split_signature(worker_signature), claim.tiles, claim.amount_wei, sigs,
        )  # fmt: skip
        return Call(fn, tail=evidence)

    def claim_pass(
        self, signed_pass: CheckerPass, pass_signature: bytes, amount_wei: int,
        ordered_signatures: Sequence[bytes], evidence: bytes = b"",
    ) -> Call:  # fmt: skip
        """Open a claim against a checker's pass: its own Pass signature plus the claimers'
        over ``signed_pass.claim(amount_wei)``. Answered and executed as a fraud claim
        with the checker as the worker (``answer_claim``, ``execute_slash``,
        ``claim_evidence``)."""
        sigs = [split_signature(s) for s in ordered_signatures]
        fn = self.contract.functions.claim_pass(
            signed_pass.ref.arg(), Web3.to_checksum_address(signed_pass.checker),
            split_signature(pass_signature), signed_pass.tiles, amount_wei, sigs,
        )  # fmt: skip
        return Call(fn, tail=evidence)

    def answer_claim(
        self, answer: CleanAnswer, claimers: Sequence[bytes], ordered_signatures: Sequence[bytes]
    ) -> Call:
        """Contest a pending claim with a larger quorum's signatures over its rung 0 (each
        signer locks the claim's amount): the first rung, ``escalate`` with no ladder yet;
        ``claimers`` are the claim's signers in the claim's (ascending) order."""
        return self.escalate(answer, claimers, (), ordered_signatures)

    def escalate(
        self, signed: CleanAnswer | FraudClaim, claimers: Sequence[bytes],
        ladder: Sequence[Sequence[bytes]], ordered_signatures: Sequence[bytes],
    ) -> Call:  # fmt: skip
        """Outnumber the last rung of ``ladder`` (the claim's rungs so far): signatures over
        rung ``len(ladder)`` of this claim (``signed.rung(claimers, len(ladder))``: the
        accused's side on even rungs, the claim's on odd ones), ascending by signer."""
        sigs = [split_signature(s) for s in ordered_signatures]
        fn = self.contract.functions.escalate(
            signed.ref.arg(), Web3.to_checksum_address(signed.worker), signed.tiles,
            [Web3.to_checksum_address(c) for c in claimers], _addresses(ladder), sigs,
        )  # fmt: skip
        return Call(fn)

    def settle_contest(
        self, signed: CleanAnswer | FraudClaim, claimers: Sequence[bytes], ladder: Sequence[Sequence[bytes]]
    ) -> Call:
        """After the last rung's window: its side wins."""
        fn = self.contract.functions.settle_contest(
            signed.ref.arg(), Web3.to_checksum_address(signed.worker), signed.tiles,
            [Web3.to_checksum_address(c) for c in claimers], _addresses(ladder),
        )  # fmt: skip
        return Call(fn)

    def execute_slash(self, claim: FraudClaim, claimers: Sequence[bytes]) -> Call:
        fn = self.contract.functions.execute_slash(
            claim.ref.arg(), Web3.to_checksum_address(claim.worker), claim.tiles,
            [Web3.to_checksum_address(c) for c in claimers],
        )  # fmt: skip
        return Call(fn)

    def withdraw_credit(self) -> Call:
        return Call(self.contract.functions.withdraw_credit())


class EscrowClient:
    """One account's view of, and transactions against, one escrow contract."""

    def __init__(self, sender: TxSender, address: str) -> None:
        self.sender = sender
        self.w3 = sender.w3
        self.address: ChecksumAddress = Web3.to_checksum_address(address)
        if not with_retries(lambda: self.w3.eth.get_code(self.address), sender.config, "get_code"):
            raise ChainMismatch(f"no contract at {self.address} on chain {sender.chain_id}")
        self.contract = self.w3.eth.contract(
            address=self.address, abi=load_artifact("Escrow")["abi"]
        )
        self.calls = EscrowCalls(self.contract, self.account)
        # claim_evidence's finds, by (ref, worker, the claim's commitment): a claim's event
        # and calldata never change, and the answerer and every recheck request read them
        self._evidence: OrderedDict[tuple[ResultRef, bytes, bytes], ClaimEvidence] = OrderedDict()
        # and the claim's FraudClaimed events, by (ref without its frame digest, worker,
        # commitment), once one matched: whichever frame a request names, no log read
        self._claim_events: OrderedDict[tuple[ResultRef, bytes, bytes], list[tuple[bytes, tuple[bytes, ...], Any]]] = OrderedDict()
        # and those read before any matched, with the chain head they were read at
        self._unmatched_events: OrderedDict[tuple[ResultRef, bytes, bytes], tuple[list[tuple[bytes, tuple[bytes, ...], Any]], int]] = OrderedDict()
        self._evidence_lock = threading.Lock()  # called from worker threads (node.roles.chain)

    @property
    def account(self) -> bytes:
        return to_canonical_address(self.sender.address)

    def send(self, call: Call) -> TxReceipt:
        return self.sender.transact(call.fn, call.value_wei, call.tail)

    def _view(self, name: str, *args: Any) -> Any:
        fn = getattr(self.contract.functions, name)(*args)
        return with_retries(fn.call, self.sender.config, name)

    def _who(self, requester: bytes | None) -> ChecksumAddress:
        return Web3.to_checksum_address(requester if requester is not None else self.account)

    def job(self, job_id: bytes, requester: bytes | None = None) -> JobState:
        requester_, token, remaining, unallocated, deadline, refunded = self._view(
            "jobs", self._who(requester), job_id
        )
        return JobState(to_canonical_address(requester_), to_canonical_address(token),
                        remaining, deadline, refunded, unallocated)  # fmt: skip

    def job_created_s(self, job_id: bytes, requester: bytes | None = None) -> int:
        """The job's first deposit, to the minute (no deadline beyond it + MAX_JOB_S)."""
        return int(self._view("job_created", self._who(requester), job_id))

    def lane(self, job_id: bytes, payee: bytes, requester: bytes) -> Lane:
        total, paid = self._view("lanes", self._who(requester), job_id, self._who(payee))
        return Lane(int(total), int(paid))

    def paid_wei(self, job_id: bytes, payee: bytes, requester: bytes) -> int:
        """What (requester, job_id) has paid ``payee`` so far (the requester is part of
        the job's identity: a payee must name it)."""
        return int(self._view("paid", self._who(requester), job_id, self._who(payee)))

    def secured(self, requester: bytes, job_id: bytes, payee: bytes | None = None) -> Secured:
        """The chain's answer to "is my pay for this job secured?" (payee: this account)."""
        exists, token, deadline, until, refunded, lane, paid = self._view(
            "secured", self._who(requester), job_id, self._who(payee)
        )
        return Secured(bool(exists), to_canonical_address(token), int(deadline), int(until),
                       bool(refunded), int(lane), int(paid))  # fmt: skip

    def lanes_of(self, vouchers: Iterable[Voucher]) -> dict[Key, Lane]:
        """Chain-true lane and paid amount for each voucher's key, read just before a batch
        (vouchers for another chain or escrow are left out)."""
        return {
            v.key(): self.lane(v.job_id, v.payee, v.requester)
            for v in vouchers
            if v.chain_id == self.sender.chain_id and v.contract == bytes.fromhex(self.address[2:])
        }

    def readings(self, vouchers: Iterable[Voucher]) -> ChainReadings:
        """Lanes of ``vouchers``, chain time and gas price; blocking (run it on a thread,
        then plan in the caller's task: ``book.plan(r.lanes, r.chain_time_s, ...)``)."""
        return ChainReadings(self.lanes_of(vouchers), self.chain_time_s(), self.gas_price_wei())

    def chain_time_s(self) -> int:
        """The latest block's timestamp: the clock the contract judges deadlines by."""
        block = with_retries(lambda: self.w3.eth.get_block("latest"), self.sender.config, "block")
        return int(block["timestamp"])

    def gas_price_wei(self) -> int:
        return int(with_retries(lambda: self.w3.eth.gas_price, self.sender.config, "gas_price"))

    def stake_of(self, account: bytes | None = None) -> StakeState:
        """Stake of ``account`` (default: this client's account)."""
        active, unbonding, unbond_at, locked = self._view("stakes", self._who(account))
        return StakeState(int(active), int(unbonding), int(unbond_at), int(locked))

    def open_lanes_of(self, payee: bytes) -> int:
        """Lanes opened for ``payee`` (a new lane with funds, in any job of any requester)
        whose job's claim window (deadline + GRACE_S) ends today or later, in UTC days
        (``Escrow.open_lanes_of``): the jobs its stake backs at once."""
        return int(self._view("open_lanes_of", self._who(payee)))

    def claim(self, ref: ResultRef, worker: bytes) -> ClaimState:
        claim_id = self._view("claim_id", ref.arg(), Web3.to_checksum_address(worker))
        (taken, from_unbonding, amount, settle_at, commit, status, answered_by, answer,
         rungs) = self._view("claims", claim_id)
        return ClaimState(int(taken), int(amount), int(settle_at), bytes(commit), int(status),
                          int(answered_by), bytes(answer), int(rungs),
                          from_unbonding_wei=int(from_unbonding))  # fmt: skip

    def claim_evidence(self, ref: ResultRef, worker: bytes) -> ClaimEvidence | None:
        """The tiles and claimers of the claim on ``worker``'s result ``ref``, from its
        ``FraudClaimed`` event, checked against the claim's stored commitment (None: no
        claim, or no event that matches it), and the evidence its transaction published
        (``protocol.fraud_evidence.find_evidence``; judged by the reader). What was found
        is kept (``EVIDENCE_CACHE`` claims): the answerer and every re-check request for
        the claim ask again, and the search costs about log2(head) block reads. The logs are
        read from the claim's own block on, ``LOG_RANGE_BLOCKS`` at a time: the block
        is found by its timestamp (``settle_at − CHALLENGE_S``), since reading from
        block 0 is refused by providers that cap a query's range, and slow anyway."""
        state = self.claim(ref, worker)
        if state.status == 0:
            return None
        key = (ref, worker, state.commit)
        with self._evidence_lock:
            if (found := self._evidence.get(key)) is not None:
                self._evidence.move_to_end(key)
                return found
        found = self._find_evidence(ref, worker, state)
        if found is not None:
            with self._evidence_lock:
                self._evidence[key] = found
                while len(self._evidence) > EVIDENCE_CACHE:
                    self._evidence.popitem(last=False)
        return found

    def _find_evidence(
        self, ref: ResultRef, worker: bytes, state: ClaimState
    ) -> ClaimEvidence | None:
        """The claim's event whose commitment ``ref``'s frame matches (see claim_evidence).
        The events are kept once one matched, and then serve any frame asked about: a
        claim's id leaves the frame out, so requests naming one made-up frame after another
        each cost a binary search for the claim's block and its log reads (review of stop
        44). Until one matches, what was read stands while the chain's head stays where it
        was read (logs may lag the state: read again once the head moved)."""
        key = (replace(ref, frame_digest=bytes(32)), worker, state.commit)
        with self._evidence_lock:
            events = self._claim_events.get(key)
            unmatched = self._unmatched_events.get(key)
        kept = events is not None
        if events is None:
            # no match yet: what was read stands until the chain's head moves (a flood of
            # made-up frames before the first real one cost a search each; review)
            head = int(with_retries(lambda: self.w3.eth.block_number, self.sender.config, "block"))
            if unmatched is not None and unmatched[1] == head:
                events = unmatched[0]
            else:
                events = self._read_claim_events(ref, worker, state)
                with self._evidence_lock:
                    self._unmatched_events[key] = (events, head)
                    while len(self._unmatched_events) > EVIDENCE_CACHE:
                        self._unmatched_events.popitem(last=False)
        for tiles, claimers, tx in events:
            if claim_commit(ref.frame_digest, tiles, claimers) == state.commit:
                if not kept:  # kept for good once the claim's own event was among them:
                    # logs that lag the claim's state would otherwise hide it (review)
                    with self._evidence_lock:
                        self._claim_events[key] = events
                        self._unmatched_events.pop(key, None)
                        while len(self._claim_events) > EVIDENCE_CACHE:
                            self._claim_events.popitem(last=False)
                return ClaimEvidence(tiles, claimers, self._published(tx))
        return None

    def _read_claim_events(
        self, ref: ResultRef, worker: bytes, state: ClaimState
    ) -> list[tuple[bytes, tuple[bytes, ...], Any]]:
        """The binary search for the claim's block and the log reads: each FraudClaimed
        event's tiles, claimers and transaction hash."""
        # each rung moved settle_at on by at most one more window (rungs stay counted once
        # the ladder is settled: an answered claim's evidence is read for its reopening)
        windows = 1 + state.rungs
        from_s = state.settle_at_s - windows * self.challenge_s()
        return [(bytes(entry["args"]["tiles"]),
                 tuple(to_canonical_address(c) for c in entry["args"]["claimers"]),
                 entry["transactionHash"])
                for entry in self._claim_logs(self.contract.events.FraudClaimed, ref, worker, from_s)]  # fmt: skip

    def ladder(self, ref: ResultRef, worker: bytes) -> Ladder | None:
        """The rungs of the claim on ``worker``'s ``ref`` (each one's signers, ascending),
        contested or settled after an answer, from its ``ClaimContested`` events, checked
        against the claim's stored ``answer`` (None: never answered, or no events that
        match it)."""
        state = self.claim(ref, worker)
        if state.rungs == 0:
            return None
        from_s = state.settle_at_s - state.rungs * self.challenge_s()
        rungs: list[tuple[bytes, ...]] = []
        for entry in self._claim_logs(self.contract.events.ClaimContested, ref, worker, from_s):
            rung = int(entry["args"]["rung"])
            signers = tuple(to_canonical_address(a) for a in entry["args"]["signers"])
            rungs = [*rungs[:rung], signers]  # rung 0 again: a later claim's ladder
            if len(rungs) == state.rungs and ladder_commit(rungs) == state.answer:
                return tuple(rungs)
        return None

    def _claim_logs(self, event: Any, ref: ResultRef, worker: bytes, from_s: int) -> Iterator[Any]:
        """``event``'s logs of the claim on ``worker``'s ``ref`` from the first block at
        ``from_s`` on, ``LOG_RANGE_BLOCKS`` at a time."""
        claim_id = self._view("claim_id", ref.arg(), Web3.to_checksum_address(worker))
        head = int(with_retries(lambda: self.w3.eth.block_number, self.sender.config, "block"))
        first = self._first_block_at(from_s, head)
        while first <= head:
            last = min(head, first + LOG_RANGE_BLOCKS - 1)
            yield from with_retries(
                lambda a=first, b=last: event.get_logs(  # type: ignore[misc]
                    argument_filters={"claim_id": claim_id}, from_block=a, to_block=b
                ),
                self.sender.config, "get_logs",
            )  # fmt: skip
            first = last + 1

    def _block_time_s(self, number: int) -> int:
        block = with_retries(lambda: self.w3.eth.get_block(number), self.sender.config, "block")
        return int(block["timestamp"])

    def _first_block_at(self, timestamp_s: int, head: int) -> int:
        """The first block whose timestamp is at least ``timestamp_s`` (a binary search:
        block timestamps never decrease), or ``head``."""
        lo, hi = 0, head
        while lo < hi:
            mid = (lo + hi) // 2
            if self._block_time_s(mid) < timestamp_s:
                lo = mid + 1
            else:
                hi = mid
        return lo

    def _published(self, tx_hash: Any) -> bytes:
        """The evidence a claim's transaction carried after its arguments (b"": none)."""
        tx = with_retries(lambda: self.w3.eth.get_transaction(tx_hash), self.sender.config,
                          "get_transaction")  # fmt: skip
        return find_evidence(bytes(tx["input"]))

    def checker_min_stake_wei(self) -> int:
        return int(self._view("CHECKER_MIN_STAKE"))

    def slash_cap_wei(self) -> int:
        return int(self._view("SLASH_CAP"))

    def challenge_s(self) -> int:
        return int(self._view("CHALLENGE_S"))

    def max_job_s(self) -> int:
        """The furthest a job's deadline may lie after its first deposit (MAX_JOB_S)."""
        return int(self._view("MAX_JOB_S"))

    def fraud_terms(self) -> FraudTerms:
        return FraudTerms(int(self._view("SLASH_QUORUM")), self.slash_cap_wei(), self.challenge_s())

    def unbonding_s(self) -> int:
        return int(self._view("UNBONDING_S"))

    def credit_wei(self, account: bytes) -> int:
        return int(self._view("credit", Web3.to_checksum_address(account)))

    def is_checker(self, account: bytes) -> bool:
        return bool(self._view("is_checker", Web3.to_checksum_address(account)))

    def grace_s(self) -> int:
        return int(self._view("GRACE_S"))

    def coin_of_wei(self, account: bytes | None = None) -> int:
        """Native coin held by ``account`` (default: this client's account)."""
        who = self._who(account)
        return int(with_retries(lambda: self.w3.eth.get_balance(who), self.sender.config, "balance"))

    def balance_wei(self) -> int:
        return int(
            with_retries(
                lambda: self.w3.eth.get_balance(self.address), self.sender.config, "balance"
            )
        )

    # Transacting shorthands for synchronous callers.
    def deposit(
        self, job_id: bytes, amount_wei: int, deadline_s: int, token: str = NATIVE
    ) -> TxReceipt:
        return self.send(self.calls.deposit(job_id, amount_wei, deadline_s, token))

    def redeem(self, v: Voucher) -> TxReceipt:
        return self.send(self.calls.redeem(v))

    def open_lanes(self, job_id: bytes, fundings: Iterable[tuple[bytes, int]]) -> TxReceipt:
        return self.send(self.calls.open_lanes(job_id, fundings))

    def redeem_batch(self, vouchers: Sequence[Voucher]) -> TxReceipt:
        return self.send(self.calls.redeem_batch(vouchers))

    def refund(self, job_id: bytes, requester: bytes | None = None) -> TxReceipt:
        return self.send(self.calls.refund(job_id, requester))

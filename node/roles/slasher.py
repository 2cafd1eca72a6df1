"""The requester's fraud claims: gather the rejecters' signatures, claim, execute.

Theory of operation. A job machine emits ``SlashDue`` when a dispute's
majority rejected a signed result of an escrowed job (``protocol.slashing``
says why only then). The slasher turns it into an on-chain claim in three
stored steps (``fraud_claims``, store migration 6), so a restart resumes a
claim where it stood and never loses one in its challenge window:

* ``gathering``: each rejecting checker gets a ``FraudSignRequest`` (again
  every ``RESEND_S``); ``FraudSigned`` answers are kept when they recover to
  a distinct signer. With the escrow's quorum of them, ``claim_fraud`` goes out
  with the worker's own ``result_sig``, and the rejecting verdicts themselves
  after its arguments (``protocol.fraud_evidence``: the preimage of the claim's
  ``tiles``), so checkers asked to answer the claim re-check the tiles they name. Fewer rejecters than the quorum, no
  quorum within ``SIGN_WAIT_S``, or a claim the escrow refuses for good: the
  claim is ``impossible`` (logged; nothing was locked). A frame reopened by an
  answer that stood against its last claim (``Fraud.round`` above 0: the claim
  needs more signers than that answer, often more than the rejecters) is also
  asked of picked staked checkers, as a pass claim's are, with the rejecting
  verdicts in the request (``rejections``): each re-renders their cells and
  signs only if the frame fails (node.roles.reclaim_rechecks); too few staked
  checkers for the round, and the claim is ``impossible``.
* ``claimed``: the escrow holds the worker's stake until ``settle_at``; the
  slasher reads the claim every ``MAX_WAIT_S`` until the chain's clock passes
  it, then ``execute_slash``.
* ``overturning``: the accused answered (a larger quorum, each answerer's
  stake locked): the claim is contested, a ladder of rungs that alternate
  sides, each outnumbering the last within its window. The answer may be the
  accused's own sybils', so the slasher outnumbers each of the accused's
  (even) rungs with more signatures over the next rung of the same claim
  (``FraudSignRequest`` naming the rung and the claim's claimers; a signature
  counts on its own rung only, ``ledger.fraud.RungVote``), none by a signer of
  an even rung: the claimers are asked again (they sign while they hold
  another amount and a cap more free), and more staked checkers are picked as a pass
  claim's are while gathering (for a fraud claim they re-render the cells
  the claim's published verdicts name, node.roles.overturn_rechecks); then
  ``escalate``. Once the last rung's window is over, ``settle_contest``: its
  side wins.
* ``owed``: executed for less than its amount (the accused's stake was held by other
  claims, or locked behind claims it signed: docs/VERIFICATION.md, "What a cheat's
  friends can do to its stake"), or another claim used the frame up and is owed: the
  accused's stake is read every ``DEBT_CHECK_S`` and the claim executed again while the
  requester's part of what it would take beats the gas (``protocol.slashing.
  worth_collecting``), until it took its amount (``executed``) or the escrow's debt
  window is over (``protocol.slashing.debt_open``: ``unpaid``).
* ``executed``, ``unpaid`` or ``answered`` (the accused's answer stood): done.

A checker that passed a plant of an escrowed job and signed its pass
(``PassClaimDue``, ``protocol.market.plants``), or passed a worker's result that
another checker then rejected (``VerifyDesk._contradicted_passes``, since stop
46), is claimed the same way, kind ``pass`` (stored apart: ``pass_claims``, store
migration 8, since one task may see both a worker's and a checker's claim; one
pass claim a task: a task whose plant was missed and whose real pass was
contradicted too claims the first only): the claimers asked are not
the accused's fellow judges but staked checkers the requester picks while
gathering (``pick_claimers``: advertising the checker role, registered with the
escrow and holding two caps free by the chain (``may_pick_claimer``), never the accused nor the
task's worker), ``quorum + SPARE_CLAIMERS`` at first and ``SPARE_CLAIMERS``
more each resend, at most ``MAX_ASKED``. Each gets the job's announce first
(``introduce``: a pick may never have heard it, or have let it go) and then a
``FraudSignRequest`` carrying the passing verdict (node.roles.pass_rechecks
re-renders its cells)
and only a signature that recovers to the address it was picked under counts.
An accused without stake (nothing to take: no claimer renders for it) or
fewer staked checkers than the quorum at the start: ``impossible``, nothing
locked (the strike and the withheld fee stay, ``node.roles.plants``). With the
quorum, ``claim_pass`` goes out with the checker's own ``pass_sig`` and its
verdict as the published evidence; then ``claimed`` and ``executed`` as above.

A claim is not started once the escrow's claim window for its job has closed
(``protocol.slashing.claim_window_open``: the claimers would render for a claim
it refuses): ``impossible``.

Chain outages only postpone a step (``LedgerError``: retried after
``CHAIN_RETRY_S``). Signatures are not stored: a restart while gathering asks
the checkers again.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from contextlib import suppress
from dataclasses import dataclass, field, replace
from functools import partial
from typing import TypeVar

import trio

from ledger.client import (
    CLAIM_ANSWERED,
    CLAIM_CONTESTED,
    CLAIM_EXECUTED,
    CLAIM_NONE,
    CLAIM_PENDING,
    ClaimState,
    Ladder,
)
from ledger.errors import ChainRevert, LedgerError, TxRejected
from ledger.fraud import (
    CheckerPass,
    FraudClaim,
    ResultRef,
    RungVote,
    checker_pass,
    order_signatures,
    recover,
    result_ref,
    signers,
)
from node.log import log_event
from node.roles import persist
from node.roles.context import RoleContext
from protocol.codec import from_wire, packb, to_wire, unpackb
from protocol.errors import IllegalMessage
from protocol.fraud_evidence import pack_evidence
from protocol.market import PassClaimDue, SlashDue
from protocol.market.records import verdict_digest_of
from protocol.messages import MAX_CLAIMERS, FraudSigned, FraudSignRequest, JobSpec, Verdict
from protocol.slashing import (
    accused_climbs_next,
    accused_side,
    claim_needs,
    claim_positions,
    claim_possible,
    claim_top_up_deadline_s,
    claim_window_open,
    debt_open,
    dispute_checkers_for,
    may_pick_claimer,
    tiles_commitment,
    worth_collecting,
)

logger = logging.getLogger(__name__)
T = TypeVar("T")
GATHERING, CLAIMED, OVERTURNING, OWED, EXECUTED, UNPAID, ANSWERED, IMPOSSIBLE = (
    "gathering", "claimed", "overturning", "owed", "executed", "unpaid", "answered", "impossible",
)  # fmt: skip
FINAL = (EXECUTED, UNPAID, ANSWERED, IMPOSSIBLE)
FRAUD, PASS = "fraud", "pass"  # a worker's result, a checker's pass of a plant
TABLES = {FRAUD: "fraud_claims", PASS: "pass_claims"}
SPARE_CLAIMERS = 2  # asked beyond the quorum (one may be busy or gone)
MAX_ASKED = 2 * MAX_CLAIMERS  # checkers asked to sign one pass claim, over all resends
# exclude node ids, exclude addresses, the stake each needs, how many: node id -> address
PickClaimers = Callable[[frozenset[bytes], frozenset[bytes], int, int], Awaitable[dict[bytes, bytes]]]
# job id, checker: send that checker the job's announce (a pick may not know the job)
Introduce = Callable[[bytes, bytes], Awaitable[None]]
SIGN_WAIT_S = 600.0
# An executed claim that took less than its amount is owed: the accused's stake is read
# every DEBT_CHECK_S (well inside the escrow's unbonding delay, 7 days by default: stake
# that starts unbonding is still slashable) and collected while the escrow's debt window
# is open (protocol.slashing.debt_open; each owed claim costs a read an hour until then).
DEBT_CHECK_S = 3600.0
# what a collection (execute_slash on an owed claim) costs at most, in gas (bench/gas.py:
# 178,441 for a first execution with three claimers; a collection writes less)
COLLECT_GAS = 180_000
TOP_UP_WEI = 1  # a top-up that only moves the job's deadline (the escrow refuses 0)
INTRODUCE_S = 15.0  # the picks' announces, sent together, wait at most this
# the escrow's reverts that name one signer's state: it is left out, the rest go on
SIGNER_REVERTS = frozenset({"stake at risk too low", "not a checker"})
RESEND_S = 60.0
CHAIN_RETRY_S = 30.0
MAX_WAIT_S = 600.0  # the longest sleep before the chain's clock is read again


@dataclass
class Claim:
    claim: FraudClaim  # a pass claim's: ``CheckerPass.claim`` (the checker is the accused)
    worker_sig: bytes  # the accused's own: its Result signature, or its pass_sig
    frame_cid: str  # the frame judged (a pass claim's: the plant)
    rejecters: tuple[bytes, ...]  # checker node ids asked to sign (pass: picked while gathering)
    verdict_digests: tuple[bytes, ...]
    verdicts: tuple[Verdict, ...] = ()  # the preimage of ``claim.tiles``, published with it
    state: str = GATHERING
    claimers: tuple[bytes, ...] = ()  # signer addresses, ascending, once claimed
    settle_at_s: int = 0
    sigs: dict[bytes, bytes] = field(default_factory=dict)  # signer address -> signature
    kind: str = FRAUD
    excluded: tuple[bytes, ...] = ()  # node ids never asked (a pass claim's accused, worker)
    # node id -> the address whose signature alone counts for it: a pass claim's picked
    # claimers; a fraud claim's rejecters, as the job machine assigned them
    picked: dict[bytes, bytes] = field(default_factory=dict)
    # signer addresses left out before submitting (short of stake then; not stored)
    short: set[bytes] = field(default_factory=set)
    # signers of the contested claim's even rungs, while climbing its ladder (not
    # stored: read); never asked, never counted
    answerers: frozenset[bytes] = frozenset()
    # a reopened frame's: who holds a position on the claim that reopened it, never picked
    # (read once a round; not stored; None: not read yet). Their signatures still count:
    # the accused's friends may have reused a rejecter's Fraud signature in their junk claim
    last_positions: frozenset[bytes] | None = None
    # rung -> signer address -> signature, while climbing (not stored: asked again)
    votes: dict[int, dict[bytes, bytes]] = field(default_factory=dict)

    @property
    def key(self) -> tuple[bytes, bytes, str]:
        return (self.claim.ref.job_id, self.claim.ref.task_id, self.kind)

    def pack(self) -> bytes:
        r, c = self.claim.ref, self.claim
        return packb([r.chain_id, r.contract, r.requester, r.job_id, r.task_id, r.frame,
                      r.frame_digest, c.worker, c.tiles, c.amount_wei.to_bytes(32, "big"),
                      self.worker_sig, self.frame_cid, list(self.rejecters),
                      list(self.verdict_digests), list(self.claimers), self.settle_at_s,
                      [to_wire(v) for v in self.verdicts], self.kind, list(self.excluded),
                      [self.picked.get(r, b"") for r in self.rejecters]])  # fmt: skip

    @classmethod
    def unpack(cls, state: str, data: bytes) -> Claim:
        fields = unpackb(data)
        (chain_id, contract, requester, job_id, task_id, frame, digest, worker, tiles, amount,
         worker_sig, frame_cid, rejecters, digests, claimers, settle_at_s) = fields[:16]  # fmt: skip
        # rows stored before claims published their evidence have no verdicts (nor a kind)
        verdicts = tuple(from_wire(Verdict, v) for v in (fields[16] if len(fields) > 16 else ()))
        kind, excluded = (fields[17], tuple(fields[18])) if len(fields) > 18 else (FRAUD, ())
        # the addresses whose signatures count (a fraud claim's rejecters, a pass claim's
        # picks: kept, so that a pick asked before a restart that signs after it is heard;
        # rows stored before them have none)
        picked = {r: a for r, a in zip(rejecters, fields[19], strict=False) if a} if len(fields) > 19 else {}
        ref = ResultRef(chain_id, contract, requester, job_id, task_id, frame, digest)
        claim = FraudClaim(ref, worker, tiles, int.from_bytes(amount, "big"))
        return cls(claim, worker_sig, frame_cid, tuple(rejecters), tuple(digests), verdicts,
                   state, tuple(claimers), settle_at_s, kind=kind, excluded=excluded,
                   picked=picked)  # fmt: skip

    def request(self, rung: int | None = None) -> FraudSignRequest:
        """What each checker asked to sign gets (a pass claim's carries the pass): the claim,
        or with ``rung`` that rung of its ladder, naming the claim's claimers."""
        c = self.claim
        shown = self.verdicts[0] if self.kind == PASS else None
        claimers = self.claimers if rung is not None else ()
        # a reopened frame's claim is asked of picks too: they re-render the verdicts' cells
        rejections = self.verdicts if self.reopened and rung is None else ()
        return FraudSignRequest(c.ref.job_id, c.ref.task_id, c.ref.frame, c.worker,
                                self.frame_cid, self.verdict_digests, c.amount_wei, shown, rung,
                                claimers, c.round if rung is None else 0, rejections)  # fmt: skip

    @property
    def reopened(self) -> bool:
        """A worker's frame whose last claim an answer won (``Fraud.round`` above 0): its
        claim needs more signers than that answer, so staked checkers that did not
        reject it are picked too, and re-render the rejecting verdicts' cells."""
        return self.kind == FRAUD and self.claim.round > 0 and bool(self.verdicts)


@dataclass(frozen=True)
class Window:
    """What a gather reads once per resend: the chain's time, the job's claim window
    (``Secured.redeem_until_s``) and the frame's claim on the escrow."""

    now_s: int
    redeem_until_s: int
    state: ClaimState

    def open(self, challenge_s: int) -> bool:
        """Whether the escrow still opens a claim on the frame (``claim_window_open``: the
        job's window, or a reopened frame's one window more): past it, asking checkers to
        re-render and sign is work for a claim it refuses. While another claim holds the
        frame, its end decides (an answer reopens it)."""
        if self.state.status in (CLAIM_PENDING, CLAIM_CONTESTED):
            return True
        answered = self.state.settle_at_s if self.state.status == CLAIM_ANSWERED else None
        return claim_window_open(self.now_s, self.redeem_until_s, answered, challenge_s)


class Slasher:
    """One per requester role (see the module docstring)."""

    def __init__(
        self, ctx: RoleContext, spawn: Callable[..., None], pick_claimers: PickClaimers | None = None,
        introduce: Introduce | None = None,
    ) -> None:  # fmt: skip
        self.ctx = ctx
        self._spawn = spawn
        self._pick_claimers = pick_claimers
        self._introduce = introduce
        self._running: dict[tuple[bytes, bytes, str], Claim] = {}
        # owed claims collect one at a time, the accused's stake read inside: owed claims
        # on one cheat all saw its stake come back, and all but one took nothing for gas
        self._collecting = trio.Lock()
        self._changed = trio.Event()
        self.settled: dict[tuple[bytes, bytes, str], str] = {}  # final states reached here
        self._grace_s: int | None = None

    def on_slash_due(self, spec: JobSpec, due: SlashDue) -> None:
        """Carry out a machine's ``SlashDue`` (live or replayed: a stored claim wins)."""
        if self.ctx.chain is not None:
            self._spawn(self._start, spec, due)

    def on_pass_claim_due(self, spec: JobSpec, due: PassClaimDue) -> None:
        """Carry out a machine's ``PassClaimDue`` (live or replayed: a stored claim wins)."""
        if self.ctx.chain is not None and self._pick_claimers is not None:
            self._spawn(self._start_pass, spec, due)

    async def resume(self) -> None:
        """Continue every stored claim that has not ended (after a restart)."""
        for table in TABLES.values():
            rows = await self.ctx.node.store.call(partial(persist.open_claims, final=FINAL,
                                                          table=table))  # fmt: skip
            for state, data in rows:
                self._spawn(self._run, Claim.unpack(state, data))

    def on_fraud_signed(self, sender: bytes, signed: FraudSigned) -> None:
        gathering = [c for c in self._running.values() if c.state in (GATHERING, OVERTURNING)
                     and c.key[:2] == (signed.job_id, signed.task_id)]  # fmt: skip
        if not gathering:
            return  # late, or resent after the claim went out
        asked = [c for c in gathering if sender in c.rejecters]
        if not asked:
            raise IllegalMessage("a fraud signature we did not ask for", penalty=10)
        if signed.rung is not None and signed.rung % 2 == 0:
            raise IllegalMessage("a fraud signature for the accused's side", penalty=10)
        why, stale = "a fraud signature that does not recover", False
        for claim in asked:  # one task may have a worker's and a plant checker's claim
            message: FraudClaim | RungVote = claim.claim
            held = claim.sigs
            if signed.rung is not None:  # a place on a rung of its ladder
                if claim.state != OVERTURNING:
                    continue
                message = claim.claim.rung(claim.claimers, signed.rung)
                held = claim.votes.setdefault(signed.rung, {})
            elif signed.round != claim.claim.round:
                stale = True  # for a round the frame's claims are past (sent before we asked again)
                continue
            try:
                signer = recover(message, signed.signature)
            except Exception:  # eth_keys raises several types for bad bytes
                continue
            if signer in (claim.claim.worker, claim.claim.ref.requester):
                why = "a fraud signature by the accused or the requester"
            elif signer in claim.answerers:
                return None  # answered the claim: it cannot overturn its own answer
            elif (claim.kind == PASS or claim.picked) and claim.picked.get(sender) != signer:
                # another key's signature would count toward the quorum, and the escrow
                # would then refuse the claim ("not a checker"): one rejecter could spoil it
                why = "a fraud signature by another key than the one the checker was assigned"
            elif signer in claim.short:
                return None  # left out for want of stake; its resend changes nothing
            else:
                held[signer] = signed.signature
                return self._notify()
        if stale:
            return None
        raise IllegalMessage(why, penalty=10)

    async def wait_settled(self, job_id: bytes, task_id: bytes, kind: str = FRAUD) -> str:
        """Wait for the claim of ``kind`` on (job, task) to end here; its final state."""
        while (job_id, task_id, kind) not in self.settled:
            await self._changed.wait()
        return self.settled[(job_id, task_id, kind)]

    def _notify(self) -> None:
        self._changed.set()
        self._changed = trio.Event()

    async def _start(self, spec: JobSpec, due: SlashDue) -> None:
        chain = self.ctx.chain
        assert chain is not None
        ref = result_ref(spec, due.job_id, due.task_id, due.frame, due.frame_cid)
        if ref is None:
            return
        terms = await self._chain(chain.fraud_terms)
        tiles = tiles_commitment(due.verdict_digests)
        picked = {r: a for r, a in zip(due.rejecters, due.rejecter_addresses, strict=False) if a}
        claim = Claim(FraudClaim(ref, due.worker_address, tiles, terms.cap_wei), due.result_sig,
                      due.frame_cid, due.rejecters, due.verdict_digests, due.verdicts,
                      picked=picked)  # fmt: skip
        if not claim_possible(len(due.rejecters), terms.quorum):
            claim.state = IMPOSSIBLE
            log_event(logger, logging.WARNING, "fraud claim impossible", frame=due.frame,
                      rejecters=len(due.rejecters), quorum=terms.quorum,
                      dispute_checkers_needed=dispute_checkers_for(terms.quorum))  # fmt: skip
        if await self._save(claim, only_new=True) and claim.state == GATHERING:
            await self._run(claim)

    async def _start_pass(self, spec: JobSpec, due: PassClaimDue) -> None:
        chain = self.ctx.chain
        assert chain is not None
        verdict = due.verdict
        # what the checker signed it judged (the Pass its pass_sig is over), claimed
        signed = checker_pass(spec, verdict, due.frame_cid, due.checker_address)
        if signed is None or verdict.pass_sig is None:
            return
        terms = await self._chain(chain.fraud_terms)
        claim = Claim(signed.claim(terms.cap_wei), verdict.pass_sig, due.frame_cid, (),
                      (verdict_digest_of(verdict),), (verdict,), kind=PASS,
                      excluded=(due.checker, verdict.worker))  # fmt: skip
        if await self._save(claim, only_new=True):
            await self._run(claim)

    async def _run(self, claim: Claim) -> None:
        if claim.key in self._running:
            return
        self._running[claim.key] = claim
        try:
            if claim.state == GATHERING:
                await self._gather(claim)
            if claim.state in (CLAIMED, OVERTURNING):
                await self._execute(claim)
            if claim.state == OWED:
                await self._collect(claim)
        finally:
            del self._running[claim.key]
        if claim.state in FINAL:
            self.settled[claim.key] = claim.state
            self._notify()

    async def _gather(self, claim: Claim) -> None:
        chain = self.ctx.chain
        assert chain is not None
        terms = await self._chain(chain.fraud_terms)
        c = claim.claim
        request = claim.request()
        give_up_at = trio.current_time() + SIGN_WAIT_S
        while True:
            if await self._new_round(claim):  # the signers have SIGN_WAIT_S from the new ask
                give_up_at = trio.current_time() + SIGN_WAIT_S
            c, request = claim.claim, claim.request()
            # a claim after an answer needs more signers than that answer had: a frame's
            # first claim is the dispute's rejecters' alone (nobody else rejected it), a
            # reopened frame's is also asked of picked staked checkers (reclaim_rechecks)
            need = claim_needs(terms.quorum, c.round)
            if need is None:
                return await self._end(claim, IMPOSSIBLE, f"no claim can outnumber an answer "
                                                           f"of {c.round}")  # fmt: skip
            picks = claim.reopened and self._pick_claimers is not None
            if claim.kind == FRAUD and not picks and not claim_possible(len(claim.rejecters), need):
                return await self._end(claim, IMPOSSIBLE, f"fewer rejecters than a claim after "
                                                           f"an answer of {c.round} needs")  # fmt: skip
            while len(claim.sigs) < need:
                window = await self._read_window(claim)
                if window.state.status == CLAIM_EXECUTED:  # final: the frame's stake is taken
                    return await self._adopt(claim, "another claim took the stake")
                if not window.open(terms.challenge_s):
                    return await self._end(claim, IMPOSSIBLE, "claim window over")
                if trio.current_time() >= give_up_at:
                    short = picks and not claim_possible(len(claim.rejecters), need)
                    return await self._end(claim, IMPOSSIBLE, f"too few staked checkers for a claim "
                                           f"after an answer of {c.round}" if short
                                           else "too few checkers signed")  # fmt: skip
                await self._keep_window_open(claim, window)  # (not for a claim that ends here)
                if claim.kind == PASS:
                    if not claim.picked and not await self._chain(partial(chain.stake_held_of, c.worker)):
                        return await self._end(claim, IMPOSSIBLE, "the checker holds no stake")
                    await self._pick(claim, need, terms.cap_wei)
                    if not claim_possible(len(claim.picked), need):  # picks only grow
                        return await self._end(claim, IMPOSSIBLE, "too few staked checkers")
                elif picks:  # the rejecters, and enough picks that the claim may go out
                    # (too few staked checkers about now: picked again at each resend, since
                    # one may be reconnecting or its chain read failed, until ``give_up_at``)
                    # none of them holds a position on the frame's last claim (its
                    # answerers are the accused's side; read once a round: it is settled)
                    if claim.last_positions is None:
                        claim.last_positions = await self._last_claim_positions(claim, window.state)
                    more = max(0, need - len(claim.rejecters)) + SPARE_CLAIMERS
                    if claim.last_positions is not None and await self._pick(
                        claim, need, terms.cap_wei, more
                    ):
                        await self._save(claim)  # a pick that signs after a restart is heard
                for checker in claim.rejecters:
                    self.ctx.outbox.send(checker, request)
                with trio.move_on_after(RESEND_S):
                    while len(claim.sigs) < need:
                        await self._changed.wait()
            if await self._leave_out_short(claim):
                continue
            if await self._new_round(claim):  # another claim's answer moved it while we gathered
                give_up_at = trio.current_time() + SIGN_WAIT_S
                continue
            ordered = order_signatures(c, claim.sigs.values())[: MAX_CLAIMERS - 1]  # escrow's bound
            try:
                await self._chain(self._submission(claim, ordered))
            except ChainRevert as exc:
                # a signer's stake moved between our read and the block (it unbonded, or
                # another claim locked it): leave it out and gather on, as before a read
                if exc.reason in SIGNER_REVERTS and await self._leave_out_short(claim):
                    continue
                if exc.reason != "already claimed":
                    return await self._end(claim, IMPOSSIBLE, f"escrow refused: {exc.reason}")
                # ours, sent before a restart; or another claim holds the frame (the
                # accused's friends may claim it first): wait for that one to end
                if not await self._ours(claim, ordered):
                    status = await self._foreign_claim_ended(claim)
                    if status == CLAIM_EXECUTED:
                        return await self._adopt(claim, "another claim took the stake")
                    # answered: claim again, in the next round (more signers than answered)
                    give_up_at = trio.current_time() + SIGN_WAIT_S
                    continue
            break
        state = await self._chain(partial(chain.claim_state, c.ref, c.worker))
        claim.claimers, claim.settle_at_s = tuple(signers(c, ordered)), state.settle_at_s
        claim.state = CLAIMED
        await self._save(claim)
        log_event(logger, logging.INFO, "fraud claimed", frame=c.ref.frame, worker=c.worker.hex(),
                  amount_wei=state.taken_wei, settle_at_s=state.settle_at_s, kind=claim.kind)  # fmt: skip

    async def _new_round(self, claim: Claim) -> bool:
        """Bring the claim to the round its signers must sign now (``Fraud.round``: the
        size of the answer that ended the frame's last claim, 0 for its first); whether it
        moved, and so the signatures gathered before count for nothing and are asked again.
        While another claim holds the frame the round stays: it moves when that one ends."""
        chain, c = self.ctx.chain, claim.claim
        assert chain is not None
        state = await self._chain(partial(chain.claim_state, c.ref, c.worker))
        if state.status not in (CLAIM_NONE, CLAIM_ANSWERED) or state.answered_by == c.round:
            return False
        claim.claim = replace(c, round=state.answered_by)
        claim.sigs.clear()
        claim.last_positions = None  # another claim's: read again
        log_event(logger, logging.INFO, "fraud claim: a new round on the frame",
                  frame=c.ref.frame, round=state.answered_by, kind=claim.kind)  # fmt: skip
        return True

    async def _ours(self, claim: Claim, ordered: list[bytes]) -> bool:
        """Whether the claim the escrow holds on our frame is the one we send (its tiles
        and claimers are ours): after a restart it may be; the accused's friends' is not."""
        chain, c = self.ctx.chain, claim.claim
        assert chain is not None
        evidence = await self._chain(partial(chain.claim_evidence, c.ref, c.worker))
        return (evidence is not None and evidence.tiles == c.tiles
                and set(evidence.claimers) <= set(signers(c, claim.sigs.values())))  # fmt: skip

    async def _foreign_claim_ended(self, claim: Claim) -> int:
        """Wait until another claim on our frame has ended; its final status."""
        chain, c = self.ctx.chain, claim.claim
        assert chain is not None
        log_event(logger, logging.WARNING, "another claim holds the frame: waiting for it",
                  frame=c.ref.frame, kind=claim.kind)  # fmt: skip
        while True:
            state = await self._chain(partial(chain.claim_state, c.ref, c.worker))
            if state.status not in (CLAIM_PENDING, CLAIM_CONTESTED):
                return state.status
            now_s = await self._chain(chain.chain_time_s)
            if now_s >= state.settle_at_s:  # its window is over: settle it (anyone may)
                with suppress(ChainRevert, LedgerError):
                    await self._settle_foreign(claim, state.status)
                # (not settled: its evidence may not be ours to read, a claim on another
                # digest of the frame; a log search each 30 s would be for nothing)
                await trio.sleep(MAX_WAIT_S)
                continue
            await trio.sleep(min(MAX_WAIT_S, max(state.settle_at_s - now_s, CHAIN_RETRY_S)))

    async def _settle_foreign(self, claim: Claim, status: int) -> None:
        chain, c = self.ctx.chain, claim.claim
        assert chain is not None
        evidence = await chain.claim_evidence(c.ref, c.worker)
        if evidence is None:
            return
        theirs = FraudClaim(c.ref, c.worker, evidence.tiles, c.amount_wei)
        if status == CLAIM_PENDING:
            return await chain.execute_slash(theirs, evidence.claimers)
        ladder = await chain.claim_ladder(c.ref, c.worker)
        if ladder is not None:
            await chain.settle_contest(theirs, evidence.claimers, ladder)

    def _submission(self, claim: Claim, ordered: list[bytes]) -> Callable[[], Awaitable[None]]:
        """The claim transaction with the ``ordered`` signatures and the verdicts its tiles
        commit to, published."""
        chain, c = self.ctx.chain, claim.claim
        assert chain is not None
        evidence = pack_evidence(claim.verdicts)
        if not evidence:  # answerers then re-check tiles of their own choice only
            log_event(logger, logging.WARNING, "fraud claim without published evidence",
                      frame=c.ref.frame, verdicts=len(claim.verdicts))  # fmt: skip
        if claim.kind == PASS:
            signed = CheckerPass(c.ref, c.worker, c.tiles)
            return partial(chain.claim_pass, signed, claim.worker_sig, c.amount_wei, ordered,
                           evidence)  # fmt: skip
        return partial(chain.claim_fraud, c, claim.worker_sig, ordered, evidence)

    async def _leave_out_short(self, claim: Claim, sigs: dict[bytes, bytes] | None = None) -> bool:
        """Read every signer again just before the claim goes out, and leave out (for this
        claim: ``claim.short``) one the escrow would refuse the whole claim for: no longer
        registered, or short of free stake for ``amount`` (another claim locked it, or
        it unbonded, since it was picked: ``protocol.slashing.may_back_claim``). Whether
        any was left out: the caller then waits for more signatures."""
        chain, c = self.ctx.chain, claim.claim
        assert chain is not None
        sigs = claim.sigs if sigs is None else sigs  # the claim's, or a rung's
        barred = frozenset({c.worker, c.ref.requester}) | claim.answerers
        short = [
            signer for signer in list(sigs)
            if not may_pick_claimer(signer, await self._chain(partial(chain.signer_standing, signer)),
                                    barred=barred, amount_wei=c.amount_wei)
        ]  # fmt: skip
        for signer in short:
            del sigs[signer]
            claim.short.add(signer)
            log_event(logger, logging.WARNING, "claim signer left out: short of stake",
                      signer=signer.hex(), frame=claim.claim.ref.frame, kind=claim.kind)  # fmt: skip
        return bool(short)

    async def _read_window(self, claim: Claim) -> Window:
        """The chain's time, the job's claim window and the frame's claim, read once per
        resend for the window's decisions (``Window``)."""
        chain, c = self.ctx.chain, claim.claim
        assert chain is not None
        secured = await self._chain(partial(chain.secured, c.ref.requester, c.ref.job_id))
        state = await self._chain(partial(chain.claim_state, c.ref, c.worker))
        return Window(await self._chain(chain.chain_time_s), secured.redeem_until_s, state)

    async def _keep_window_open(self, claim: Claim, window: Window) -> None:
        """Top up our job (``TOP_UP_WEI``) to push its deadline when its claim window
        ends before a gather starting now could be done (``claim_top_up_deadline_s``:
        ``SIGN_WAIT_S`` and a resend): a dispute upheld near deadline + grace lost its
        claim. The workers' claim watches read the deadline again before they let a result
        go. The deadline goes no further than the escrow's MAX_JOB_S allows. A refused
        top-up (a refund) is logged; the claim goes on while the window lasts."""
        chain, ref = self.ctx.chain, claim.claim.ref
        assert chain is not None
        if ref.requester != chain.address:
            return  # not our job: only its requester may top it up
        if self._grace_s is None:  # the escrow's, fixed at its deployment: read once
            self._grace_s = await self._chain(chain.grace_s)
        grace_s = self._grace_s
        open_for_s = int(SIGN_WAIT_S + RESEND_S)
        if claim_top_up_deadline_s(window.now_s, window.redeem_until_s, grace_s,
                                   open_for_s) is None:  # fmt: skip
            return
        latest_s = await self._chain(partial(chain.latest_deadline_s, ref.job_id))
        deadline_s = claim_top_up_deadline_s(window.now_s, window.redeem_until_s, grace_s,
                                             open_for_s, latest_s)  # fmt: skip
        if deadline_s is None:
            log_event(logger, logging.WARNING, "claim window not extended: the job's "
                      "deadline is at the escrow's MAX_JOB_S", frame=ref.frame)  # fmt: skip
            return
        try:
            await self._chain(partial(chain.top_up, ref.job_id, TOP_UP_WEI, deadline_s))
        except ChainRevert as exc:
            log_event(logger, logging.WARNING, "claim window not extended: the escrow refused "
                      "the top-up", reason=exc.reason, frame=ref.frame)  # fmt: skip
            return
        log_event(logger, logging.INFO, "job topped up to keep its claim window open",
                  frame=ref.frame, deadline_s=deadline_s, kind=claim.kind)  # fmt: skip

    async def _last_claim_positions(
        self, claim: Claim, state: ClaimState
    ) -> frozenset[bytes] | None:
        """Who holds a position on the answered claim that reopened our frame
        (``claim_positions``; ``state``: the frame's claim, just read): never picked. None
        while the chain's logs are behind its state, or the frame moved on (the next
        resend reads again)."""
        chain, c = self.ctx.chain, claim.claim
        assert chain is not None
        if state.status != CLAIM_ANSWERED or state.answered_by != c.round:
            return None
        evidence = await self._chain(partial(chain.claim_evidence, c.ref, c.worker))
        ladder = await self._chain(partial(chain.claim_ladder, c.ref, c.worker))
        if evidence is None or ladder is None:
            log_event(logger, logging.INFO, "reopened claim: the last claim's signers not "
                      "read yet; no picks this time", frame=c.ref.frame)  # fmt: skip
            return None
        return claim_positions(evidence.claimers, ladder)

    async def _pick(self, claim: Claim, quorum: int, cap_wei: int, more: int | None = None) -> bool:
        """Pick more checkers to sign a pass claim: ``quorum + SPARE_CLAIMERS`` at first,
        ``SPARE_CLAIMERS`` more on each resend (or ``more``), ``MAX_ASKED`` in all. Whether
        any was picked."""
        assert self._pick_claimers is not None
        if more is None:
            more = quorum + SPARE_CLAIMERS if not claim.picked else SPARE_CLAIMERS
        want = min(more, MAX_ASKED - len(claim.picked))
        if want <= 0:
            return False
        c = claim.claim
        picked = await self._pick_claimers(
            frozenset(claim.excluded) | frozenset(claim.picked),
            frozenset({c.worker, c.ref.requester}) | claim.answerers
            | (claim.last_positions or frozenset()), cap_wei, want,
        )  # fmt: skip
        claim.picked.update(picked)
        claim.rejecters = tuple(dict.fromkeys((*claim.rejecters, *picked)))  # a fraud claim's first
        if self._introduce is not None and picked:  # it re-renders the job's plant: it must know it
            with trio.move_on_after(INTRODUCE_S):  # one unreachable pick must not hold the rest
                async with trio.open_nursery() as nursery:
                    for checker in picked:
                        nursery.start_soon(self._introduce, c.ref.job_id, checker)
        return bool(picked)

    async def _execute(self, claim: Claim) -> None:
        """Wait out the claim's window and execute it; climb its ladder once answered."""
        chain = self.ctx.chain
        assert chain is not None
        c = claim.claim
        while True:
            state = await self._chain(partial(chain.claim_state, c.ref, c.worker))
            if state.status == CLAIM_CONTESTED:
                return await self._contest(claim)
            if state.status != CLAIM_PENDING:
                return await self._settled(claim, state.status)
            now_s = await self._chain(chain.chain_time_s)
            if now_s >= state.settle_at_s:
                break
            await trio.sleep(min(MAX_WAIT_S, state.settle_at_s - now_s))
        try:
            await self._chain(partial(chain.execute_slash, c, claim.claimers))
        except ChainRevert:
            state = await self._chain(partial(chain.claim_state, c.ref, c.worker))
            if state.status == CLAIM_PENDING:
                raise  # a bug of ours: the task fails loudly, the claim stays stored
            if state.status == CLAIM_CONTESTED:  # answered in the last block
                return await self._contest(claim)
            return await self._settled(claim, state.status)
        await self._executed(claim, "stake taken")

    async def _settled(self, claim: Claim, status: int) -> None:
        if status == CLAIM_EXECUTED:
            return await self._executed(claim, "settled by someone else")
        await self._end(claim, ANSWERED if status == CLAIM_ANSWERED else IMPOSSIBLE,
                        "settled by someone else")  # fmt: skip

    async def _executed(self, claim: Claim, why: str) -> None:
        """Executed: done, or owed when it took less than its amount (the accused's stake
        was held by other claims, or locked behind claims it signed, when it opened and
        when it was executed: docs/VERIFICATION.md, "What a cheat's friends can do to its
        stake"); ``_collect`` then takes the rest once the accused holds stake."""
        chain, c = self.ctx.chain, claim.claim
        assert chain is not None
        state = await self._chain(partial(chain.claim_state, c.ref, c.worker))
        if state.taken_wei >= state.amount_wei:
            return await self._end(claim, EXECUTED, why)
        await self._end(claim, OWED, f"{why}: {state.taken_wei} of {state.amount_wei} wei taken")

    async def _adopt(self, claim: Claim, why: str) -> None:
        """Another claim on our frame executed (the frame is used up): done, unless it is
        owed; then we collect it as ours, since a collection pays the job's requester (us)
        a quarter: the accused's friends that claimed the frame first while its stake was
        held would not (review of stop 45)."""
        chain, c = self.ctx.chain, claim.claim
        assert chain is not None
        state = await self._chain(partial(chain.claim_state, c.ref, c.worker))
        if state.taken_wei >= state.amount_wei:
            return await self._end(claim, EXECUTED, why)
        evidence = await self._chain(partial(chain.claim_evidence, c.ref, c.worker))
        if evidence is None:  # a claim on another digest of the frame (ids leave it out)
            return await self._end(claim, UNPAID, f"{why}, owed, on a frame digest not ours: "
                                                  f"{state.taken_wei} of {state.amount_wei} wei")  # fmt: skip
        claim.claim = replace(c, tiles=evidence.tiles)  # its tiles and claimers: its commitment
        claim.claimers, claim.settle_at_s = tuple(evidence.claimers), state.settle_at_s
        await self._end(claim, OWED, f"{why}: {state.taken_wei} of {state.amount_wei} wei taken")

    async def _collect(self, claim: Claim) -> None:
        """Execute an owed claim again whenever the accused holds stake a claim takes (free
        or unbonding), until it took its amount or the escrow's debt window is over."""
        chain, c = self.ctx.chain, claim.claim
        assert chain is not None
        tried: int | None = None  # what the claim held when we last executed it
        while True:
            state = await self._chain(partial(chain.claim_state, c.ref, c.worker))
            if state.taken_wei >= state.amount_wei:
                return await self._end(claim, EXECUTED, "owed stake collected")
            # (the chain's settle_at: a contested claim's is its last rung's)
            if not debt_open(await self._chain(chain.chain_time_s), state.settle_at_s):
                return await self._end(claim, UNPAID, f"owed stake left: {state.taken_wei} of "
                                                       f"{state.amount_wei} wei taken")  # fmt: skip
            async with self._collecting:
                # (once per reading that moved: an execution that took nothing waits)
                takeable = 0 if state.taken_wei == tried else await self._chain(
                    partial(chain.takeable_of, c.worker))  # fmt: skip
                gas_wei = COLLECT_GAS * await self._chain(chain.gas_price_wei) if takeable else 0
                if worth_collecting(takeable, state.amount_wei - state.taken_wei,
                                    max(1, len(claim.claimers)), gas_wei):  # fmt: skip
                    tried = state.taken_wei
                    try:
                        await self._chain(partial(chain.execute_slash, c, claim.claimers))
                        continue  # read what it took
                    except ChainRevert as exc:
                        log_event(logger, logging.WARNING, "owed stake not collected",
                                  reason=exc.reason)  # fmt: skip
            await trio.sleep(DEBT_CHECK_S)
            tried = None

    async def _contest(self, claim: Claim) -> None:
        """The accused answered: outnumber each of the accused's (even) rungs of the
        claim's ladder within its window, with signatures over the next rung of the same
        claim by checkers on none of the accused's rungs; settle once the last rung's
        window is over (see the module docstring)."""
        chain = self.ctx.chain
        assert chain is not None
        c = claim.claim
        if claim.state != OVERTURNING:
            claim.state = OVERTURNING
            await self._save(claim)
            log_event(logger, logging.WARNING, "fraud claim answered: climbing its ladder",
                      frame=c.ref.frame, kind=claim.kind)  # fmt: skip
        while True:
            state = await self._chain(partial(chain.claim_state, c.ref, c.worker))
            if state.status == CLAIM_EXECUTED:
                return await self._executed(claim, "contest settled")
            if state.status != CLAIM_CONTESTED:
                return await self._end(claim, ANSWERED, "contest settled")
            ladder = await self._chain(partial(chain.claim_ladder, c.ref, c.worker))
            now_s = await self._chain(chain.chain_time_s)
            if ladder is None:  # the chain's logs behind its state: read again later
                await trio.sleep(CHAIN_RETRY_S)
            elif now_s >= state.settle_at_s:
                try:
                    await self._chain(partial(chain.settle_contest, c, claim.claimers, ladder))
                except ChainRevert as exc:  # settled by another meanwhile: the status says
                    log_event(logger, logging.INFO, "contest not settled by us", reason=exc.reason)
                    await trio.sleep(CHAIN_RETRY_S)
            elif accused_climbs_next(ladder):  # the last rung is ours: wait for its window
                await trio.sleep(min(MAX_WAIT_S, state.settle_at_s - now_s))
            elif not await self._rung(claim, ladder, state.settle_at_s):
                # refused (a rung came first: read again soon) or too few signed (the window
                # ends): either way the chain is read again within CHAIN_RETRY_S
                await trio.sleep(min(CHAIN_RETRY_S, max(0, state.settle_at_s - now_s)))

    async def _rung(self, claim: Claim, ladder: Ladder, settle_at_s: int) -> bool:
        """Gather more signatures over the next rung than the last (the accused's) rung of
        ``ladder`` has, by checkers on none of the accused's rungs (the claimers asked
        again, more picked), and send the rung; whether it went out."""
        chain = self.ctx.chain
        assert chain is not None
        c = claim.claim
        claim.answerers = accused_side(ladder)
        want, rung = len(ladder[-1]) + 1, len(ladder)
        terms = await self._chain(chain.fraud_terms)
        request, vote = claim.request(rung), c.rung(claim.claimers, rung)
        sigs = claim.votes.setdefault(rung, {})
        while want <= MAX_CLAIMERS:
            now_s = await self._chain(chain.chain_time_s)
            if now_s >= settle_at_s:
                return False
            for signer in claim.answerers & sigs.keys():
                del sigs[signer]
            if len(sigs) >= want:
                if await self._leave_out_short(claim, sigs):
                    continue
                ordered = order_signatures(vote, sigs.values())[:MAX_CLAIMERS]
                try:
                    await self._chain(partial(chain.escalate, c, claim.claimers, ladder, ordered))
                except ChainRevert as exc:
                    if exc.reason in SIGNER_REVERTS and await self._leave_out_short(claim, sigs):
                        continue
                    log_event(logger, logging.WARNING, "claim rung refused", reason=exc.reason)
                    return False
                log_event(logger, logging.INFO, "claim rung sent", frame=c.ref.frame,
                          signers=len(ordered), rung=len(ladder), kind=claim.kind)  # fmt: skip
                return True
            if self._pick_claimers is not None:  # a fraud claim's picks re-render the claimed cells
                await self._pick(claim, want, terms.cap_wei, want - len(sigs) + SPARE_CLAIMERS)
            for checker in claim.rejecters:
                self.ctx.outbox.send(checker, request)
            with trio.move_on_after(min(RESEND_S, settle_at_s - now_s)):
                while len(sigs) < want:
                    await self._changed.wait()
        return False

    async def _end(self, claim: Claim, state: str, why: str) -> None:
        claim.state = state
        await self._save(claim)
        level = logging.INFO if state in (EXECUTED, OWED) else logging.WARNING  # UNPAID warns
        log_event(logger, level, f"fraud claim {state}", frame=claim.claim.ref.frame, why=why,
                  kind=claim.kind)  # fmt: skip

    async def _save(self, claim: Claim, *, only_new: bool = False) -> bool:
        job_id, task_id, _ = claim.key
        saved: bool = await self.ctx.node.store.call(partial(
            persist.save_claim, job_id=job_id, task_id=task_id, state=claim.state,
            data=claim.pack(), now_ms=self.ctx.clock.now_ms(), only_new=only_new,
            table=TABLES[claim.kind],
        ))  # fmt: skip
        return saved

    async def _chain(self, fn: Callable[[], Awaitable[T]]) -> T:
        """``fn()`` until the chain answers; a revert is the caller's to judge."""
        while True:
            try:
                return await fn()
            except ChainRevert as exc:
                if not isinstance(exc, TxRejected):  # never ran: nonce or fee, try again
                    raise
                log_event(logger, logging.WARNING, "fraud claim postponed", error=str(exc)[:200])
                await trio.sleep(CHAIN_RETRY_S)
            except LedgerError as exc:
                log_event(logger, logging.WARNING, "fraud claim postponed", error=str(exc)[:200])
                await trio.sleep(CHAIN_RETRY_S)

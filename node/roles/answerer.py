"""A worker answers a false fraud claim against its result before the window ends.

(A checker answers a claim against its signed pass the same way: the escrow's
``claim_pass`` accuses it as a fraud claim accuses a worker, and the node's one
watch, node.roles.claim_defence, hands either here. The frame the re-checkers
fetch from us is then the one we checked, and they compare with the tolerance.)

Theory of operation. The escrow holds a claimed worker's stake for the claim's
challenge window (``CHALLENGE_S``); within it, the worker contests the claim
with ``answer_claim``: signatures of MORE registered, staked checkers than
signed the claim, none of them a claimer, each over rung 0 of the claim's
ladder (``ledger.fraud.RungVote``: that claim, that rung).
When the worker's :class:`node.roles.claim_watch.ClaimWatch` sees a pending
claim on one of its results, it hands the result here and :meth:`Answerer.answer`:

1. reads the claim's evidence from the escrow (its ``tiles`` and claimers, from
   the ``FraudClaimed`` event, checked against the claim's commitment);
2. asks up to ``MAX_ASKED`` checkers it knows of (capacity adverts with the
   checker role), except the claimers and the job's requester: those the escrow
   would count as signers now, in an order drawn from its own randomness
   (:meth:`Answerer._checkers`), and more at each resend while it is short (a draw
   among the adverts not read yet), to re-check the result (``CleanSignRequest`` naming the rung; again every
   ``RESEND_S``).
   Each re-renders tiles of the frame, fetched from us, and signs only if they
   pass (``node.roles.rechecks``);
3. keeps each ``CleanSigned`` for an even rung that recovers (over that rung)
   to the payment address its sender advertises, a distinct signer that is no
   claimer, not us and not the requester. Once more of them than the
   claimers are registered with the claim's amount and a cap more free (read again before
   each attempt: ``protocol.slashing.may_pick_claimer``), it waits up to
   ``GATHER_S`` more for further signatures (never past ``LAST_CALL_S`` before
   the window ends, nor once every checker asked signed or it holds
   ``MAX_SIGNERS``): the answer is the first rung of the claim's ladder, which
   the claim's side may outnumber in turn, so the more signers the safer (16
   cannot be outnumbered). It then sends it (``answer_claim``: ``escalate``
   with no ladder; signatures ascending by signer); refused, it reads again;
4. gives up at the claim's ``settle_at`` (chain time): the claim then executes;
5. while the claim is contested, outnumbers each Fraud rung within its window
   the same way (asking again for the new rung: a signature counts on its own
   rung only, and a checker that passed the result signs the next without
   rendering again; never a signer of the claim's side), and once
   the last rung's window is over settles the contest (``settle_contest``):
   a last rung of ours and the stake returns. A contested claim the watch
   hands over (ours, after a restart) goes straight to this step.

Chain outages postpone a step (``LedgerError``: retried after ``CHAIN_RETRY_S``).
One answer runs per claim; its state is not stored, but the watch is: after a
restart the watch sees the claim pending again and the answer starts over (the
checkers keep the signatures they gave and send them again without
re-rendering). It needs nothing of the job but the requester's node id, which
the watch keeps.
"""

from __future__ import annotations

import logging
import secrets
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import replace
from functools import partial
from typing import TypeVar

import trio

from ledger.client import (
    CLAIM_ANSWERED,
    CLAIM_CONTESTED,
    CLAIM_EXECUTED,
    CLAIM_PENDING,
    ClaimState,
    Ladder,
)
from ledger.errors import ChainRevert, LedgerError
from ledger.fraud import CleanAnswer, ResultRef, claim_commit, order_signatures, recover
from node.log import log_event
from node.roles.common import raw_of
from node.roles.context import RoleContext
from protocol.cid import cid_of_sha256
from protocol.errors import IllegalMessage
from protocol.fraud_evidence import claimed_pass
from protocol.messages import CleanSigned, CleanSignRequest, Role
from protocol.slashing import accused_climbs_next, claim_side, may_pick_claimer

logger = logging.getLogger(__name__)
T = TypeVar("T")
MAX_ASKED = 32  # checkers asked per draw (a larger quorum needs at most 16)
MAX_STANDING_READS = 4 * MAX_ASKED  # escrow reads to find them (adverts are strangers')
# while short, each resend draws more (_gather): at most this many asked in all, each sent
# every resend, and this many adverts read for one claim (review: both only grew)
MAX_ASKED_IN_ALL = 4 * MAX_ASKED
MAX_READ_IN_ALL = 8 * MAX_STANDING_READS
MAX_ENDED = 1024  # ended answers remembered
RESEND_S = 60.0
CHAIN_RETRY_S = 30.0
MAX_WAIT_S = 600.0  # the longest wait before the chain's clock is read again
MAX_SIGNERS = 16  # the escrow's bound on an answer's signers: 16 cannot be overturned
GATHER_S = 600  # chain seconds an answer waits for more signers once it could go out
LAST_CALL_S = 300  # an answer goes out at least this long before the claim's window ends
# Reverts after which this rung cannot succeed (anything else: a signer the escrow did not
# count); the claim's state is read again
FINAL_REVERTS = ("no pending claim", "no contested claim", "challenge window over", "wrong claim",
                 "wrong ladder")  # fmt: skip
# how a claim ended, by its status
ENDED_BY_STATUS = {CLAIM_ANSWERED: "answer stood", CLAIM_EXECUTED: "claim upheld"}


class _Answer:
    def __init__(self, answer: CleanAnswer, claimers: tuple[bytes, ...], amount_wei: int,
                 asked: frozenset[bytes], requester: bytes) -> None:  # fmt: skip
        self.answer = answer
        self.claimers = claimers
        # the claim answered (the escrow's commit): another claim on the frame is another run
        self.commit = claim_commit(answer.ref.frame_digest, answer.tiles, claimers)
        self.amount_wei = amount_wei
        self.asked = asked  # checker node ids
        # everyone asked while answering this frame (a rebind changes ``asked``): a
        # signature in flight from one asked before is dropped, not scored
        self.ever_asked = set(asked)
        self.read: set[bytes] = set()  # adverts whose standing a draw of this answer read
        self.requester = requester  # the job's requester's node id: never asked
        # rung -> signer address -> signature (a signature counts on its own rung only)
        self.sigs: dict[int, dict[bytes, bytes]] = {}
        self.changed = trio.Event()


class Answerer:
    """One per worker role (see the module docstring)."""

    def __init__(self, ctx: RoleContext, device_class: Callable[[], str]) -> None:
        self.ctx = ctx
        self.device_class = device_class
        # (job, task, frame digest): one claim each (two frames signed for one task are two
        # claims, and answering one must not leave the other unanswered)
        self._running: dict[tuple[bytes, bytes, bytes], _Answer] = {}
        self._starting: set[tuple[bytes, bytes, bytes]] = set()  # reading the claim's evidence
        # (job, task) -> how its answer ended (the newest MAX_ENDED)
        self.answered: OrderedDict[tuple[bytes, bytes], str] = OrderedDict()
        self._ended = trio.Event()  # set (and replaced) whenever an answer ends

    def on_clean_signed(self, sender: bytes, signed: CleanSigned) -> None:
        runs = [r for k, r in self._running.items() if k[:2] == (signed.job_id, signed.task_id)]
        if not runs:
            return  # late: the claim was answered or its window ended
        runs = [r for r in runs if sender in r.ever_asked]
        if not runs:
            raise IllegalMessage("a clean signature we did not ask for", penalty=10)
        if signed.rung % 2:
            raise IllegalMessage("a clean signature for the claim's side of its ladder", penalty=10)
        # Only the key the checker advertises signs for it (a checker's other keys would grow
        # what we hold, and what we read from the chain before each rung, without bound),
        # and the claim it signs (one per frame digest) is the one that key recovers for.
        advertised = self._payment_address(sender)
        if advertised is None:
            return  # its advert lapsed since we asked: nothing to hold its signature to
        for run in runs:
            try:
                signer = recover(run.answer.rung(run.claimers, signed.rung), signed.signature)
            except Exception as exc:  # eth_keys raises several types for bad bytes
                raise IllegalMessage("a clean signature that does not recover", penalty=10) from exc
            if signer == advertised:
                break
        else:
            # not held, but not scored: an honest checker's signature for the claim we
            # answered a moment ago, or for one our chain reader has not seen replace it
            return
        ref = run.answer.ref
        if signer in run.claimers or signer in (run.answer.worker, ref.requester):
            raise IllegalMessage("a clean signature by a claimer, us or the requester", penalty=10)
        held = run.sigs.setdefault(signed.rung, {})
        if held.get(signer) != signed.signature:  # a resend of one we hold wakes nothing
            held[signer] = signed.signature
            run.changed.set()

    async def wait_ended(self, job_id: bytes, task_id: bytes) -> str:
        """Wait until the answer about (job, task) has ended; how it ended."""
        while (job_id, task_id) not in self.answered:
            await self._ended.wait()
        return self.answered[(job_id, task_id)]

    async def answer(self, ref: ResultRef, settle_at_s: int, requester: bytes) -> None:
        """Answer the pending claim on our result ``ref`` before ``settle_at_s``
        (``requester``: the node id of the job's requester, never asked)."""
        key = (ref.job_id, ref.task_id, ref.frame_digest)
        chain = self.ctx.chain
        if key in self._running or key in self._starting or chain is None:
            return
        self._starting.add(key)
        try:
            evidence = await self._chain(partial(chain.claim_evidence, ref, chain.address))
            state = await self._chain(partial(chain.claim_state, ref, chain.address))
        finally:
            self._starting.discard(key)
        if evidence is None or state.status not in (CLAIM_PENDING, CLAIM_CONTESTED):
            return self._end(key[:2], "no pending claim to answer")
        read: set[bytes] = set()
        asked = await self._checkers(set(evidence.claimers) | {ref.requester}, requester,
                                     state.amount_wei, read)  # fmt: skip
        run = _Answer(CleanAnswer(ref, chain.address, evidence.tiles), evidence.claimers,
                      state.amount_wei, frozenset(asked), requester)  # fmt: skip
        run.read = read
        # A claim on our pass (we checked the frame, another rendered it): its evidence is
        # our passing verdict, and the re-checkers compare with the tolerance.
        ours = claimed_pass(evidence.published, evidence.tiles, ref.job_id, ref.task_id, ref.frame)
        device_class = "" if ours is not None else self.device_class()
        request = CleanSignRequest(ref.job_id, ref.task_id, ref.frame, chain.address,
                                   cid_of_sha256(ref.frame_digest), device_class)  # fmt: skip
        self._running[key] = run
        try:
            await self._defend(run, request)
        finally:
            del self._running[key]  # ``answered`` says how, by (job, task)

    async def _defend(self, run: _Answer, request: CleanSignRequest) -> None:
        """Climb the claim's ladder until it is settled: answer a pending claim, outnumber
        each Fraud rung within its window, and settle once the last rung's window is over
        (whoever's it is: a rung of ours wins, and anyone's settling frees every lock)."""
        chain = self.ctx.chain
        assert chain is not None
        ref = run.answer.ref
        key = (ref.job_id, ref.task_id)
        while True:
            state = await self._chain(partial(chain.claim_state, ref, chain.address))
            ladder: Ladder = ()
            if state.status == CLAIM_CONTESTED:
                found = await self._chain(partial(chain.claim_ladder, ref, chain.address))
                if found is None:  # the chain's logs behind its state: read again later
                    await trio.sleep(CHAIN_RETRY_S)
                    continue
                ladder = found
            elif state.status != CLAIM_PENDING:
                return self._end(key, ENDED_BY_STATUS.get(state.status, f"claim status {state.status}"))
            if state.commit != run.commit and not await self._rebind(run, state):
                await trio.sleep(CHAIN_RETRY_S)  # the chain's logs behind its state
                continue
            now_s = await self._chain(chain.chain_time_s)
            if now_s >= state.settle_at_s:
                if not ladder:
                    return self._end(key, "challenge window over before a larger quorum signed")
                try:
                    await self._chain(partial(chain.settle_contest, run.answer, run.claimers, ladder))
                except ChainRevert as exc:  # settled by another meanwhile: the status says how
                    log_event(logger, logging.INFO, "contest not settled by us", reason=exc.reason)
                    await trio.sleep(CHAIN_RETRY_S)
                continue
            if not accused_climbs_next(ladder):  # the last rung is ours: wait for its window
                await trio.sleep(min(MAX_WAIT_S, state.settle_at_s - now_s))
                continue
            if not await self._gather(run, request, state.settle_at_s, ladder):
                # refused (a rung came first: read again soon) or nobody more to sign (the
                # window ends): either way the chain is read again within CHAIN_RETRY_S
                await trio.sleep(min(CHAIN_RETRY_S, max(0, state.settle_at_s - now_s)))

    async def _gather(self, run: _Answer, request: CleanSignRequest, settle_at_s: int,
                      ladder: Ladder) -> bool:  # fmt: skip
        """Gather signatures over rung ``len(ladder)`` and outnumber the last rung (the claim,
        while there is none) before ``settle_at_s``; whether a rung of ours went out."""
        chain = self.ctx.chain
        assert chain is not None
        key = (request.job_id, request.task_id)
        ref = run.answer.ref
        rung = len(ladder)
        request = replace(request, rung=rung)
        vote = run.answer.rung(run.claimers, rung)
        to_beat = len(ladder[-1]) if ladder else len(run.claimers)
        # the claim's side (the escrow refuses them here), us and the requester
        barred = claim_side(run.claimers, ladder) | {run.answer.worker, ref.requester}
        refused_with, retry_at_s = 0, 0  # the last rung the escrow refused: its size, retry time
        send_at_s: int | None = None  # once enough signed: when the rung goes out
        resend_at = trio.current_time()
        first_send = True
        while True:
            now_s = await self._chain(chain.chain_time_s)
            if now_s >= settle_at_s:
                return False
            good = await self._counted(run, rung, barred)
            if len(good) > to_beat and (len(good) > refused_with or now_s >= retry_at_s):
                if send_at_s is None:
                    send_at_s = min(now_s + GATHER_S, settle_at_s - LAST_CALL_S)
                if now_s >= send_at_s or len(good) >= min(MAX_SIGNERS, len(run.asked)):
                    ordered = order_signatures(vote, good)[:MAX_SIGNERS]
                    try:
                        await self._chain(partial(chain.escalate, run.answer, run.claimers, ladder, ordered))
                    except ChainRevert as exc:
                        if exc.reason in FINAL_REVERTS:
                            log_event(logger, logging.WARNING, "claim answer refused", reason=exc.reason)
                            return False
                        # a signer's state moved after our read: its next read leaves it
                        # out; the same count is tried again only after RESEND_S
                        refused_with, retry_at_s = len(good), now_s + int(RESEND_S)
                        log_event(logger, logging.WARNING, "claim answer refused; asking on",
                                  reason=exc.reason, signatures=len(good))  # fmt: skip
                    else:
                        log_event(logger, logging.INFO, "fraud claim answered", signers=len(ordered),
                                  rung=len(ladder), job=key[0].hex()[:16])  # fmt: skip
                        return True
            if trio.current_time() >= resend_at:  # on the timer, not on every signature
                read_before = len(run.read)
                if (len(good) <= to_beat and (not first_send or not run.asked)
                        and len(run.asked) < MAX_ASKED_IN_ALL and len(run.read) < MAX_READ_IN_ALL):
                    # not enough after a round (or nobody to ask): draw more among the
                    # adverts not read yet, MAX_STANDING_READS a round
                    more = await self._checkers(set(run.claimers) | {ref.requester}, run.requester,
                                                run.amount_wei, run.read)  # fmt: skip
                    run.asked |= frozenset(more)
                    run.ever_asked |= run.asked
                if not run.asked and len(run.read) == read_before:
                    return False  # nobody to ask, and no advert left to read
                # (a draw that read only unstaked adverts draws again next round: one
                # round's 128 reads of a flood missed both staked checkers 7 % of the time)
                for checker in run.asked:
                    self.ctx.outbox.send(checker, request)
                first_send = False
                resend_at = trio.current_time() + RESEND_S
            run.changed = trio.Event()
            wait_s = min(RESEND_S, MAX_WAIT_S, settle_at_s - now_s)
            if send_at_s is not None and send_at_s > now_s:
                wait_s = min(wait_s, send_at_s - now_s)
            if retry_at_s > now_s:
                wait_s = min(wait_s, retry_at_s - now_s)
            with trio.move_on_after(max(wait_s, 1)):
                await run.changed.wait()

    async def _rebind(self, run: _Answer, state: ClaimState) -> bool:
        """The claim we answered ended and another opened on the frame before we read it
        again (the watch hands a frame once per status): answer that one, from its own
        evidence, with signatures over it alone, by signers holding its amount and a cap more free, asking
        the checkers its claimers are not. False while its evidence is not logged."""
        chain = self.ctx.chain
        assert chain is not None
        ref = run.answer.ref
        evidence = await self._chain(partial(chain.claim_evidence, ref, chain.address))
        commit = state.commit
        if evidence is None or claim_commit(ref.frame_digest, evidence.tiles, evidence.claimers) != commit:
            return False
        run.answer = CleanAnswer(ref, run.answer.worker, evidence.tiles)
        run.claimers, run.commit, run.amount_wei = evidence.claimers, commit, state.amount_wei
        # the old claim's claimers may re-check this one; this one's own may not answer it
        run.read = set()  # another claim, other claimers: every advert may answer it
        run.asked = frozenset(await self._checkers(set(evidence.claimers) | {ref.requester},
                                                   run.requester, state.amount_wei, run.read))  # fmt: skip
        run.ever_asked |= run.asked
        run.sigs.clear()
        log_event(logger, logging.WARNING, "another claim on the frame: answering it",
                  job=ref.job_id.hex()[:16], claimers=len(evidence.claimers))  # fmt: skip
        return True

    async def _counted(self, run: _Answer, rung: int, barred: frozenset[bytes]) -> list[bytes]:
        """The signatures for ``rung`` the escrow would count now: by registered checkers holding the
        claim's amount and a cap more free (read again each time: an earlier rung of ours, or any other
        claim, may have locked it; ``protocol.slashing.may_pick_claimer``), none in ``barred``."""
        chain = self.ctx.chain
        assert chain is not None
        good = []
        for signer, sig in list(run.sigs.get(rung, {}).items()):
            standing = await self._chain(partial(chain.signer_standing, signer))
            if may_pick_claimer(signer, standing, barred=barred, amount_wei=run.amount_wei):
                good.append(sig)
        return good

    def _payment_address(self, node_id: bytes) -> bytes | None:
        """The payment address ``node_id`` advertises (None: no advert of it)."""
        for peer, seen in self.ctx.node.capacity.items():
            if raw_of(peer) == node_id:
                return seen.advert.payment.address
        return None

    async def _checkers(
        self, excluded: Iterable[bytes], requester: bytes, amount_wei: int,
        read: set[bytes] | None = None,
    ) -> list[bytes]:  # fmt: skip
        """Up to ``MAX_ASKED`` checkers to ask, bar the claimers, the requester and us: among
        the adverts with the checker role, in an order drawn from this node's own
        randomness, those the escrow would count as signers now (registered, the claim's
        amount and a cap more free: ``protocol.slashing.may_pick_claimer``), reading at most
        ``MAX_STANDING_READS`` standings. Adverts cost nothing and node ids can be ground:
        the first 32 by node id, staked or not, were a framing requester's to fill with
        identities that never sign (review of stop 44), and the claim then stood.
        ``read``: node ids read for this answer before, skipped, and those read now are
        added (the answer widens its draw at each resend: a flood of fresh adverts
        otherwise hid the staked checkers from one draw of 128)."""
        excluded = set(excluded)
        me = self.ctx.node.key.node_id.raw
        skip = set() if read is None else read
        out: dict[bytes, bytes] = {}  # node id -> payment address
        for peer, seen in self.ctx.node.capacity.items():
            node_id = raw_of(peer)
            if Role.CHECKER not in seen.advert.roles or node_id in (me, requester) or node_id in skip:
                continue
            if seen.advert.payment.address not in excluded:
                out[node_id] = seen.advert.payment.address
        order = sorted(out)
        secrets.SystemRandom().shuffle(order)
        chain = self.ctx.chain
        assert chain is not None
        picked: list[bytes] = []
        for node_id in order[:MAX_STANDING_READS]:
            if read is not None:
                read.add(node_id)
            standing = await self._chain(partial(chain.signer_standing, out[node_id]))
            if may_pick_claimer(out[node_id], standing, barred=excluded, amount_wei=amount_wei):
                picked.append(node_id)
                if len(picked) == MAX_ASKED:
                    break
        return picked

    def _end(self, key: tuple[bytes, bytes], how: str) -> None:
        self.answered[key] = how
        while len(self.answered) > MAX_ENDED:
            self.answered.popitem(last=False)
        self._ended.set()
        self._ended = trio.Event()
        level = logging.INFO if how == "answer stood" else logging.WARNING
        log_event(logger, level, "fraud claim answer", job=key[0].hex()[:16], how=how)

    async def _chain(self, fn: Callable[[], Awaitable[T]]) -> T:
        """``fn()`` until the chain answers; a revert is the caller's to judge."""
        while True:
            try:
                return await fn()
            except ChainRevert:
                raise
            except LedgerError as exc:
                log_event(logger, logging.WARNING, "claim answer postponed", error=str(exc)[:200])
                await trio.sleep(CHAIN_RETRY_S)

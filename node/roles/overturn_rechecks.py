"""A checker asked to overturn an answer to a fraud claim re-renders the claimed cells.

Theory of operation. A fraud claim on a worker's result is signed by the
checkers whose verdicts rejected it in a dispute. When the accused answers it
(``Escrow.answer_claim``: more signers than claimers, each answerer's stake
locked), the answer may be the accused's own sybils', and the claim's side
outnumbers it only with an odd rung of more signers than the answer had, none
a signer of an even rung (``Escrow.escalate``): more than the dispute's
rejecters. So the requester's slasher (node.roles.slasher) picks staked
checkers that did not check the frame and sends each a ``FraudSignRequest``
like a rejecter's; a checker without a rejection of its own for that task
hands it here (node.roles.checker).

The request names the rung (odd, not one the ladder is past). Before
anything is rendered the chain is read: the claim on that result by
that worker must be contested (the only state in which these signatures
count: a requester cannot have us render for a claim that does not exist or
was never answered; asking about one scores it, as a request about a frame
we did not reject always did), we must have signed none of its Clean rungs
and be neither the accused nor the requester, and ``protocol.fraud_evidence.may_sign_overturn`` must find the
claim's published rejecting verdicts, the request naming that very evidence,
and an amount within ``MAX_AT_RISK_WEI``. Then we fetch the scene and the frame
from the requester by CID (the digest the worker signed) and re-render every
grid cell those verdicts name plus ``protocol.slashing.recheck_tiles`` cells of
our own draw (as an answering checker does, node.roles.rechecks), compared
across hardware. Only when our verdict rejects the frame do we sign that
rung of that claim (``ledger.fraud.RungVote``) and send ``FraudSigned``; a
frame that passes gets no signature, ever. Asked again for a later rung, we
sign it without a second render. Queue, render and remembered outcomes are
:class:`node.roles.rechecks.RecheckQueue`'s.
"""

from __future__ import annotations

import logging

from ledger.client import CLAIM_CONTESTED, CLAIM_NONE, CLAIM_PENDING
from ledger.fraud import FraudClaim, sign
from node.log import log_event
from node.roles.common import peer_of
from node.roles.rechecks import NO_CLAIM_PENALTY, FraudRechecks
from node.verify.checker import new_secret
from protocol.errors import IllegalMessage
from protocol.fraud_evidence import claimed_cells, claimed_verdicts, may_sign_overturn
from protocol.messages import FraudSignRequest, JobSpec, Verdict, VerifyRequest
from protocol.slashing import accused_side, recheck_tiles
from protocol.verification import DEFAULT_POLICY

logger = logging.getLogger(__name__)
REFUSAL_PENALTY = 10  # as for a fraud claim we would not sign (node.roles.checker)


class OverturnRechecks(FraudRechecks):
    """Overturns of answers to fraud claims we are asked to sign (see the module docstring)."""

    def _vet(self, sender: bytes, spec: JobSpec, request: FraudSignRequest) -> None:
        why = ""
        if spec.requester != sender:
            why = "a fraud claim about a job we do not check for its sender"
        elif request.pass_verdict is not None:
            why = "a pass claim is no overturn"
        elif request.rung is None or request.rung % 2 == 0:
            why = "an overturn names an odd rung of the claim's ladder"
        elif self.ctx.chain is not None and self.ctx.chain.address == request.worker_address:
            why = "we are the accused"
        if why:
            raise IllegalMessage(f"overturn not signed: {why}", penalty=REFUSAL_PENALTY)

    async def _recheck(self, sender: bytes, request: FraudSignRequest) -> None:
        claimed, chain = await self._claimed(request), self.ctx.chain
        if claimed is None or chain is None or request.rung is None:
            return  # forgotten meanwhile
        spec, ref, state = claimed
        if state.status in (CLAIM_NONE, CLAIM_PENDING):
            # nothing was answered: a requester asking us to sign a claim about a frame we
            # did not reject (or our chain reader a block behind: a small penalty that decays)
            self.ctx.node.gate.refuse(peer_of(sender), IllegalMessage(
                "a fraud claim about a frame we did not reject, and no answer to overturn",
                penalty=NO_CLAIM_PENALTY), "overturn_unanswered")  # fmt: skip
            return
        if state.status != CLAIM_CONTESTED or request.rung < state.rungs:
            return  # overturned or closed meanwhile, or a rung it is past: nothing to sign
        evidence = await chain.claim_evidence(ref, request.worker_address)
        if evidence is None:
            return
        key = (request.job_id, request.task_id, request.worker_address, request.frame_cid, evidence.tiles)
        if self._done.get(key) is False:
            return  # refused before: no ladder read (a log scan) for it
        ladder = await chain.claim_ladder(ref, request.worker_address)
        if ladder is None:
            return
        # never sign for both sides
        if chain.address in accused_side(ladder) | {request.worker_address, ref.requester}:
            return self._remember(key, False)
        verdicts = claimed_verdicts(evidence.published, evidence.tiles, request.job_id,
                                    request.task_id, request.frame)  # fmt: skip
        # the amount the claim locks is the escrow's, whatever the request says
        why = may_sign_overturn(verdicts, evidence.tiles, request.verdict_digests,
                                state.amount_wei, self.max_at_risk_wei)  # fmt: skip
        if why or verdicts is None:
            log_event(logger, logging.INFO, "overturn not re-checked", frame=request.frame, why=why)
            return self._remember(key, False)
        if key not in self._done and not await self._rejects(sender, spec, request, verdicts,
                                                             evidence.tiles, state.amount_wei):  # fmt: skip
            return self._remember(key, False)
        self._remember(key, True)
        claim = FraudClaim(ref, request.worker_address, evidence.tiles, request.amount_wei)
        vote = claim.rung(evidence.claimers, request.rung)
        self._answer(sender, request, sign(vote, self.ctx.payment_key))

    async def _rejects(self, sender: bytes, spec: JobSpec, request: FraudSignRequest,
                       verdicts: tuple[Verdict, ...], tiles: bytes, amount_wei: int) -> bool:  # fmt: skip
        """Whether our re-render of the claimed cells (and our own draw) rejects the frame
        where the claim's published verdicts did."""
        settings = spec.settings
        required = claimed_cells(verdicts, settings.resolution_x, settings.resolution_y,
                                 DEFAULT_POLICY.sampling.tile_px)  # fmt: skip
        check = VerifyRequest(request.job_id, request.task_id, request.frame, sender, bytes(32),
                              request.frame_cid, spec.scene_cid, 0, recheck_tiles(spec),
                              new_secret(), "")  # fmt: skip
        ours = await self._render(sender, spec, check, required)
        why = "the scene failed its preflight" if ours is None else may_sign_overturn(
            verdicts, tiles, request.verdict_digests, amount_wei, self.max_at_risk_wei, ours,
        )  # fmt: skip
        log_event(logger, logging.INFO, "re-check to overturn an answer", frame=request.frame,
                  accused=request.worker_address.hex(), sign=not why, why=why)  # fmt: skip
        return not why

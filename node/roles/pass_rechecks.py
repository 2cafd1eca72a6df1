"""A checker asked to claim another checker's pass re-renders its cells, and signs if wrong.

Theory of operation. A requester whose plant a checker passed, with a signed
``Pass`` (``Verdict.pass_sig``), claims that checker's stake
(``Escrow.claim_pass``, node.roles.slasher) and asks staked checkers that are
neither the accused nor the worker to sign the claim: a ``FraudSignRequest``
carrying the passing verdict (``pass_verdict``). Before anything is queued
(:meth:`PassRechecks._vet`: a refusal is an ``IllegalMessage`` scored against the
sender), the request must come from the job's requester, and
``protocol.fraud_evidence.may_sign_pass`` must find a passing verdict about this
very task and frame, the claim's commitment that verdict alone, and an amount
within ``MAX_AT_RISK_WEI``, on no more cells than the job's check plan asks
(``recheck_tiles``: a requester cannot have us render whole frames for
nothing); the verdict's ``pass_sig`` must recover to the
accused's address over the ``Pass`` of the request's frame CID
(``ledger.fraud.pass_signer``), so the claim names a frame the accused signed
it judged; and we must not be the accused. Queued (bounded: ``QUEUE_LEN``, a
full queue answers "busy" and the requester asks again), each is rendered once
(:class:`node.roles.rechecks.RecheckQueue`, shared with the re-checks that
answer claims): unless the escrow already holds a claim on that pass or the accused holds no stake a claim takes now or once released (``protocol.slashing.stake_held_wei``, read
on chain: a requester must not have us render for a claim the escrow refuses), we
fetch the scene and the frame from the requester (by CID: what we judge is what the
accused signed it judged) and re-render exactly the verdict's cells (its revealed
``secret`` selects them for its ``result_digest``; they are also ``required``,
and a verdict whose cells are not its draw gives us more cells than its own,
which ``may_sign_pass`` refuses). The comparison is the cross-hardware one (we
do not know the worker's device class): a plant differs from any honest render
beyond it. Only when our re-render rejects those cells do we sign ``Fraud``
over ``CheckerPass.claim`` (the accused's own ``tiles``) and send
``FraudSigned``; a pass whose cells are right gets no signature, ever.

A request naming a ``rung`` (odd) asks for a place on that rung of the
claim's ladder once the accused answered (node.roles.slasher climbs it): the
claim must then be contested and not past that rung, and we sign the rung
(``ledger.fraud.RungVote`` of the claim the escrow logged) instead, without a
second render when we judged the pass before.
"""

from __future__ import annotations

import logging

from ledger.client import CLAIM_CONTESTED, CLAIM_EXECUTED, CLAIM_PENDING, ClaimEvidence
from ledger.fraud import FraudClaim, RungVote, checker_pass, pass_signer, sign
from node.log import log_event
from node.roles.rechecks import FraudRechecks
from protocol.errors import IllegalMessage
from protocol.fraud_evidence import may_sign_pass
from protocol.messages import FraudSignRequest, JobSpec, VerifyRequest
from protocol.slashing import accused_side, at_risk_refusal, recheck_tiles
from protocol.verification import Tile

logger = logging.getLogger(__name__)
REFUSAL_PENALTY = 10  # as for a fraud claim we would not sign (node.roles.checker)


class PassRechecks(FraudRechecks):
    """Claims against a checker's pass we are asked to sign (see the module docstring)."""

    def _vet(self, sender: bytes, spec: JobSpec, request: FraudSignRequest) -> None:
        if spec.requester != sender:
            raise IllegalMessage("a pass claim about a job we do not check for its sender")
        verdict, chain = request.pass_verdict, self.ctx.chain
        why = may_sign_pass(verdict, request.job_id, request.task_id, request.frame,
                            request.verdict_digests, request.amount_wei, self.max_at_risk_wei,
                            recheck_tiles(spec))  # fmt: skip
        if not why and chain is not None and chain.address == request.worker_address:
            why = "we are the accused"
        if not why and verdict is not None:
            signer = pass_signer(spec, verdict, request.frame_cid, request.worker_address)
            if signer != request.worker_address:
                why = "the accused did not sign this pass of that frame"
        if why:
            raise IllegalMessage(f"pass claim not signed: {why}", penalty=REFUSAL_PENALTY)

    async def _recheck(self, sender: bytes, request: FraudSignRequest) -> None:
        spec = self.specs.get(request.job_id)
        chain, verdict = self.ctx.chain, request.pass_verdict
        if spec is None or chain is None or verdict is None:
            return  # forgotten meanwhile
        signed = checker_pass(spec, verdict, request.frame_cid, request.worker_address)
        if signed is None:
            return
        # what we judge: that pass (its tiles commit to the verdict) of that frame
        key = (request.job_id, request.task_id, request.worker_address, request.frame_cid, signed.tiles)
        if self._done.get(key) is False:
            return
        state = await chain.claim_state(signed.ref, request.worker_address)
        evidence: ClaimEvidence | None = None
        if request.rung is not None:  # a rung of the contested claim, not past
            if state.status != CLAIM_CONTESTED or request.rung < state.rungs or request.rung % 2 == 0:
                return
            if at_risk_refusal(state.amount_wei, self.max_at_risk_wei):  # the escrow's amount
                return
            evidence = await chain.claim_evidence(signed.ref, request.worker_address)
            ladder = await chain.claim_ladder(signed.ref, request.worker_address)
            if evidence is None or ladder is None or chain.address in accused_side(ladder):
                return
        elif state.status in (CLAIM_PENDING, CLAIM_EXECUTED, CLAIM_CONTESTED):
            return  # claimed already (a requester resending after its claim went out)
        if key in self._done:  # judged before: the asked signature, no second render
            return self._sign(sender, request, signed.claim(request.amount_wei, request.round), evidence)
        # (a contested claim holds the accused's stake already: its overturn takes it)
        if state.status != CLAIM_CONTESTED and not await chain.stake_held_of(request.worker_address):
            # no stake a claim could ever collect: a requester naming a fresh, stakeless
            # key as the accused would have us render for nothing (review)
            log_event(logger, logging.INFO, "pass claim not re-checked: the accused holds no stake",
                      accused=request.worker_address.hex())  # fmt: skip
            return self._remember(key, False)
        check = VerifyRequest(request.job_id, request.task_id, request.frame, verdict.worker,
                              verdict.result_digest, request.frame_cid, spec.scene_cid, 0,
                              len(verdict.tiles), verdict.secret, "")  # fmt: skip
        cells = tuple(Tile(t.y, t.x, t.width, t.height) for t in verdict.tiles)
        ours = await self._render(sender, spec, check, cells)
        why = "the scene failed its preflight" if ours is None else may_sign_pass(
            verdict, request.job_id, request.task_id, request.frame, request.verdict_digests,
            request.amount_wei, self.max_at_risk_wei, recheck_tiles(spec), ours,
        )  # fmt: skip
        log_event(logger, logging.INFO, "re-check of a claimed pass", frame=request.frame,
                  accused=request.worker_address.hex(), sign=not why, why=why)  # fmt: skip
        if why:
            return self._remember(key, False)
        self._remember(key, True)
        self._sign(sender, request, signed.claim(request.amount_wei, request.round), evidence)

    def _sign(self, sender: bytes, request: FraudSignRequest, claim: FraudClaim,
              evidence: ClaimEvidence | None) -> None:  # fmt: skip
        """Sign the claim itself, or the asked rung of the escrow's (``evidence``)."""
        message: FraudClaim | RungVote = claim
        if request.rung is not None and evidence is not None:
            message = claim.rung(evidence.claimers, request.rung)
        self._answer(sender, request, sign(message, self.ctx.payment_key))

"""A checker asked to sign a reopened frame's claim it did not reject re-renders the cells.

Theory of operation. A frame's first fraud claim is signed by the checkers
whose verdicts rejected it in a dispute. When an answer stands against it
(the accused's sybils outnumbered the claimers, or the cheat's friends
opened and answered a junk claim of their own first), the escrow reopens the
frame to a claim of more signers than that answer had (``Escrow.claim_fraud``:
``len(sigs) > answered_by``), signed over the next round (``Fraud.round``):
often more than the dispute's rejecters. So the requester's slasher
(node.roles.slasher) picks staked checkers that did not check the frame, as it
does to overturn an answer, and sends each a ``FraudSignRequest`` with the
round and the rejecting verdicts themselves (``rejections``: the claim is not
on chain yet, so nothing published them); a checker without a rejection of its
own for that task hands it here (node.roles.checker).

Before it is queued, ``protocol.fraud_evidence.may_sign_reclaim`` must find the
request from the job's requester, of a round above 0, its verdicts the claim's
evidence (their digests are the request's ``verdict_digests``), each a rejection
of this very task and frame naming no more cells than a check of the job asks,
and an amount within ``MAX_AT_RISK_WEI``; we must not be the accused. Queued,
the chain is read before anything is rendered: the frame's last claim by that
worker must have been answered, by as many signers as the request's round (a
requester cannot have us render for a first claim, nor for a round the frame
is not in: asked about a frame no claim named, it is scored), and the amount
must be the escrow's cap (it refuses any other), and the frame's reopened window
(``protocol.slashing.claim_window_open``: one challenge window after the answer
stood, or the job's own) still open. Then we fetch the scene and
the frame from the requester by CID (the digest the worker signed) and
re-render every cell those verdicts name plus ``protocol.slashing.recheck_tiles``
cells of our own draw, compared across hardware. Only when our verdict rejects
the frame do we sign that claim's ``Fraud`` (``ledger.fraud.FraudClaim`` of
the round) and send ``FraudSigned``; a frame that passes gets no signature,
ever. Asked again (a resend, a later round), we sign without a second render.
Until the claim is on chain its verdicts and its frame are the requester's
word (the escrow's claim id names no frame digest, so any frame CID of the
task reads as answered), so we judge one frame and one set of verdicts per
round of a task's claims on an accused: another for a round we judged is
refused and scored, never rendered (rounds only grow, at most
``MAX_CLAIMERS`` of them, each after an answered claim on chain). A round the
slasher cannot fill (``MAX_CLAIMERS - 1`` or more: a claim has fewer than
``MAX_CLAIMERS`` signers) is refused before anything is queued.
Queue, render and remembered outcomes are :class:`node.roles.rechecks.RecheckQueue`'s.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Mapping

from ledger.client import CLAIM_ANSWERED, CLAIM_NONE
from ledger.fraud import FraudClaim, sign
from node.log import log_event
from node.roles.common import peer_of
from node.roles.context import RoleContext
from node.roles.overturn_rechecks import REFUSAL_PENALTY, OverturnRechecks
from node.roles.rechecks import MAX_REMEMBERED, NO_CLAIM_PENALTY
from node.roles.scene_gate import SceneGate
from protocol.errors import IllegalMessage
from protocol.fraud_evidence import may_sign_reclaim
from protocol.messages import FraudSignRequest, JobSpec
from protocol.slashing import claim_window_open, recheck_tiles, tiles_commitment

logger = logging.getLogger(__name__)


class ReclaimRechecks(OverturnRechecks):
    """Reopened frames' claims we are asked to sign (see the module docstring)."""

    def __init__(
        self, ctx: RoleContext, specs: Mapping[bytes, JobSpec], gate: SceneGate,
        max_at_risk_wei: int,
    ) -> None:  # fmt: skip
        super().__init__(ctx, specs, gate, max_at_risk_wei)
        # (job, task, accused, round) -> the frame CID and the claim's tiles we judged (bounded)
        self._judged: OrderedDict[tuple[bytes, bytes, bytes, int], tuple[str, bytes]] = OrderedDict()

    def _vet(self, sender: bytes, spec: JobSpec, request: FraudSignRequest) -> None:
        why = ""
        if spec.requester != sender:
            why = "a fraud claim about a job we do not check for its sender"
        elif request.pass_verdict is not None or request.rung is not None:
            why = "a pass claim or a rung is no reopened frame's claim"
        elif self.ctx.chain is not None and self.ctx.chain.address == request.worker_address:
            why = "we are the accused"
        else:
            why = may_sign_reclaim(request.rejections, request.job_id, request.task_id,
                                   request.frame, request.verdict_digests, request.round,
                                   request.amount_wei, self.max_at_risk_wei,
                                   recheck_tiles(spec))  # fmt: skip
        if why:
            raise IllegalMessage(f"reopened claim not signed: {why}", penalty=REFUSAL_PENALTY)

    async def _recheck(self, sender: bytes, request: FraudSignRequest) -> None:
        claimed, chain = await self._claimed(request), self.ctx.chain
        if claimed is None or chain is None:
            return  # forgotten meanwhile
        spec, ref, state = claimed
        if state.status == CLAIM_NONE:
            # no claim ever named the frame: a requester having us render for a first claim
            # (or our chain reader a block behind: a small penalty that decays)
            self.ctx.node.gate.refuse(peer_of(sender), IllegalMessage(
                "a reopened claim on a frame no claim named", penalty=NO_CLAIM_PENALTY),
                "reclaim_unclaimed")  # fmt: skip
            return
        if state.status != CLAIM_ANSWERED or state.answered_by != request.round:
            return  # claimed or moved on meanwhile: the requester asks again in its round
        terms = await chain.fraud_terms()
        if request.amount_wei != terms.cap_wei:
            return  # the escrow refuses any other amount: our signature would count nowhere
        secured = await chain.secured(ref.requester, ref.job_id)
        if not claim_window_open(await chain.chain_time_s(), secured.redeem_until_s,
                                 state.settle_at_s, terms.challenge_s):  # fmt: skip
            return  # the reopened frame's window is over: the escrow would refuse the claim
        tiles = tiles_commitment(request.verdict_digests)
        key = (request.job_id, request.task_id, request.worker_address, request.frame_cid, tiles)
        if self._done.get(key) is False:
            return  # refused before
        # The verdicts and the frame are the requester's word until the claim is on chain
        # (and the escrow's claim id names no frame digest: any frame CID of the task reads
        # as answered): one frame and one set of verdicts per round of a task's claims on
        # an accused, so made-up variants cannot have us render again and again (rounds
        # only grow, at most MAX_CLAIMERS of them, each after an answered claim).
        claim_key = (request.job_id, request.task_id, request.worker_address, request.round)
        judged = self._judged.setdefault(claim_key, (request.frame_cid, tiles))
        if judged != (request.frame_cid, tiles):
            self.ctx.node.gate.refuse(peer_of(sender), IllegalMessage(
                "another frame or other verdicts for a reopened claim we judged",
                penalty=REFUSAL_PENALTY), "reclaim_other_verdicts")  # fmt: skip
            return
        while len(self._judged) > MAX_REMEMBERED:
            self._judged.popitem(last=False)
        if key not in self._done and not await self._rejects(
            sender, spec, request, request.rejections, tiles, request.amount_wei
        ):
            return self._remember(key, False)
        self._remember(key, True)
        claim = FraudClaim(ref, request.worker_address, tiles, request.amount_wei, request.round)
        log_event(logger, logging.INFO, "reopened fraud claim signed", frame=request.frame,
                  accused=request.worker_address.hex(), round=request.round)  # fmt: skip
        self._answer(sender, request, sign(claim, self.ctx.payment_key))

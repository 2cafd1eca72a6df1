"""A fraud claim's published evidence: the rejecting verdicts its ``tiles`` commit to.

Theory of operation
-------------------
A claim's ``tiles`` is ``protocol.slashing.tiles_commitment`` of the rejecting
verdicts' body digests (``records.verdict_digest_of``), so the verdicts
themselves are the commitment's preimage. The requester's slasher appends them
(:func:`pack_evidence`) to the calldata of its ``claim_fraud`` transaction,
after the ABI-encoded arguments: the escrow ignores trailing calldata, so the
contract is unchanged, and every node reads them from the chain
(``ledger.client.EscrowClient.claim_evidence``), not from the worker, who could
leave out the verdicts that hurt it.

A checker asked to sign a rung of a worker's answer reads them with
:func:`claimed_tiles`: bounded bytes (``MAX_EVIDENCE_BYTES``, at most
``MAX_CLAIMERS`` verdicts of the schema's bounded size), decoded, their
commitment recomputed and compared with the claim's ``tiles``, each verdict
about this very task and frame and a rejection. Then it re-renders every grid
cell those verdicts name as well as its own random ones, and signs only if all
pass. Published evidence that is missing, oversized, malformed or does not
match the commitment is no evidence (``None``): the checker then re-checks
its own random cells, as it would for a claim with none. An honest slasher
always publishes, so only claimers that hide their evidence get the weaker
answer, and only a worker facing such claimers gains from it: it cannot
remove published evidence, and the calldata is the claimers' own.
"""

from __future__ import annotations

from collections.abc import Iterable

from protocol.codec import Limits, from_wire, packb, to_wire, unpackb
from protocol.errors import ProtocolError
from protocol.market.records import verdict_digest_of
from protocol.messages import MAX_CLAIMERS, Verdict
from protocol.slashing import at_risk_refusal, claim_needs, tiles_commitment
from protocol.verification import Tile, tile_grid

EVIDENCE_MAGIC = b"pictor/fraud-evidence/v1\x00"
# The most a slasher publishes and a reader decodes: three verdicts (the default
# dispute's rejecters) of the schema's 256 tiles each fit with room to spare.
MAX_EVIDENCE_BYTES = 64 * 1024
# A claim on a checker's pass is signed only when a re-rendered cell of the accused's is
# this far off: below the 55 dB a check passes (``VerificationPolicy.min_psnr_millidb``,
# with the tolerance: claimers compare across device classes) by a margin. Without it a
# requester that renders the accused's cells on the accused's device class could plant a
# frame at 55.01 dB there, which the honest checker passes and a claimer of another class,
# a level off in one value, reads at 54.99 dB and signs (review of stop 44): honest stake
# taken. With it, a framer must put a cell under 53 dB for the claimers, and the honest
# checker, rendering that very cell, reads it there too (the largest difference measured
# between device classes, 78.2 dB on a tile, moves a 55 dB cell by far less than 2 dB)
# and rejects it. Real plants (``protocol.forced_errors.perturb``: 4 pixels, 6 levels on
# each colour channel, of a 16 px cell, RGBA) read 51.9 dB or less in every cell it changes.
PASS_CLAIM_PSNR_MILLIDB = 53_000
_LIMITS = Limits(max_message_bytes=MAX_EVIDENCE_BYTES)  # the schema bounds each verdict


def pack_evidence(verdicts: Iterable[Verdict]) -> bytes:
    """The bytes a slasher appends to its ``claim_fraud`` calldata (b"" when they would
    exceed ``MAX_EVIDENCE_BYTES`` or name more than ``MAX_CLAIMERS`` verdicts: a reader
    would refuse them, so none are published)."""
    verdicts = list(verdicts)
    blob = EVIDENCE_MAGIC + packb([to_wire(v) for v in verdicts])
    if not verdicts or len(verdicts) > MAX_CLAIMERS or len(blob) > MAX_EVIDENCE_BYTES:
        return b""
    return blob


def find_evidence(calldata: bytes) -> bytes:
    """The evidence part of a ``claim_fraud`` transaction's input (b"": none), found by
    its magic prefix: whatever follows it is judged by :func:`claimed_tiles`."""
    at = calldata.find(EVIDENCE_MAGIC)
    return b"" if at < 0 else calldata[at : at + len(EVIDENCE_MAGIC) + MAX_EVIDENCE_BYTES + 1]


def _committed(blob: bytes, tiles: bytes) -> tuple[Verdict, ...] | None:
    """The published verdicts when their commitment is ``tiles`` (None: no evidence)."""
    if not blob.startswith(EVIDENCE_MAGIC) or len(blob) > len(EVIDENCE_MAGIC) + MAX_EVIDENCE_BYTES:
        return None
    try:
        raw = unpackb(blob[len(EVIDENCE_MAGIC) :], _LIMITS)
        if not isinstance(raw, list) or not 0 < len(raw) <= MAX_CLAIMERS:
            return None
        verdicts = tuple(from_wire(Verdict, item) for item in raw)
    except ProtocolError:
        return None
    if tiles_commitment(verdict_digest_of(v) for v in verdicts) != tiles:
        return None
    return verdicts


def claimed_verdicts(
    blob: bytes, tiles: bytes, job_id: bytes, task_id: bytes, frame: int
) -> tuple[Verdict, ...] | None:
    """The published verdicts when they are the claim's evidence: their commitment is
    ``tiles``, each rejects this job's task and frame. None otherwise."""
    verdicts = _committed(blob, tiles)
    if verdicts is None:
        return None
    if any((v.job_id, v.task_id, v.frame, v.passed) != (job_id, task_id, frame, False)
           for v in verdicts):  # fmt: skip
        return None
    return verdicts


def claimed_pass(
    blob: bytes, tiles: bytes, job_id: bytes, task_id: bytes, frame: int
) -> Verdict | None:
    """The evidence of a claim against a checker's pass (the escrow's ``claim_pass``):
    the checker's own passing verdict for this job's task and frame, alone, whose
    commitment is ``tiles`` (the ``tiles`` its ``Pass`` signature names:
    ``tiles_commitment`` of that verdict's body digest). Its tiles and committed
    digests are what an answering checker re-renders. None otherwise."""
    verdicts = _committed(blob, tiles)
    if verdicts is None or len(verdicts) != 1:
        return None
    (v,) = verdicts
    if (v.job_id, v.task_id, v.frame, v.passed) != (job_id, task_id, frame, True):
        return None
    return v


def claimed_cells(
    verdicts: Iterable[Verdict], width: int, height: int, tile_px: int
) -> tuple[Tile, ...]:
    """The grid cells the verdicts re-rendered (sorted, each once): what an answering
    checker must re-render too. A rectangle that is no cell of the frame's grid is
    left out (no honest verdict names one)."""
    grid = set(tile_grid(width, height, tile_px))
    named = {Tile(t.y, t.x, t.width, t.height) for v in verdicts for t in v.tiles}
    return tuple(sorted(named & grid))


def may_sign_pass(
    verdict: Verdict | None, job_id: bytes, task_id: bytes, frame: int,
    verdict_digests: Iterable[bytes], amount_wei: int, max_at_risk_wei: int,
    max_cells: int, ours: Verdict | None = None,
) -> str:  # fmt: skip
    """Why a checker must not sign a claim against another checker's pass (``Escrow.
    claim_pass``: ``Fraud`` with the passing checker as the accused) ("" when it may).

    Before its render (``ours`` None): ``verdict`` is a passing verdict about this job's
    task and frame, the claim's commitment is that verdict alone (``verdict_digests``:
    its body digest, so its ``tiles`` are the ones the accused's ``Pass`` signed), it
    names at most ``max_cells`` cells (``protocol.slashing.recheck_tiles``: the most a
    check of the job asks, so a requester cannot have us render a frame for nothing)
    and the amount is one we put at risk. After (``ours``: our verdict on the frame the
    claim names): we re-rendered exactly the accused's cells, and they are wrong.
    Whether the accused's ``Pass`` signature names that frame is the caller's to
    check (``ledger.fraud.pass_signer``: a signature is not the protocol's)."""
    if verdict is None or not verdict.passed or not verdict.tiles:
        return "the claim carries no passing verdict"
    if (verdict.job_id, verdict.task_id, verdict.frame) != (job_id, task_id, frame):
        return "the passing verdict is about another frame than the claim"
    if tuple(verdict_digests) != (verdict_digest_of(verdict),):
        return "the claim's evidence is not the passing verdict alone"
    if len(verdict.tiles) > max_cells:
        return "the passing verdict names more cells than a check of this job asks"
    why = at_risk_refusal(amount_wei, max_at_risk_wei)
    if why or ours is None:
        return why
    cells = {(t.x, t.y, t.width, t.height) for t in verdict.tiles}
    if {(t.x, t.y, t.width, t.height) for t in ours.tiles} != cells:
        return "we did not re-render exactly the accused's cells"
    if ours.passed:
        return "the accused's cells are right: its pass stands"
    if not clearly_wrong(ours):
        return "the accused's cells are off by less than a pass claim needs: its pass stands"
    return ""


def clearly_wrong(ours: Verdict) -> bool:
    """Whether our re-render of a checker's cells (``ours``) shows one off by more than
    another device class could render it (``PASS_CLAIM_PSNR_MILLIDB``): what a claim on
    its pass needs, and what an answer to that claim refuses."""
    return any(t.psnr_millidb < PASS_CLAIM_PSNR_MILLIDB for t in ours.tiles)


def may_sign_overturn(
    verdicts: tuple[Verdict, ...] | None, tiles: bytes, verdict_digests: Iterable[bytes],
    amount_wei: int, max_at_risk_wei: int, ours: Verdict | None = None,
) -> str:  # fmt: skip
    """Why a checker must not sign ``Fraud`` to overturn the accused's answer to a claim
    on a worker's result it did not check itself (the escrow's ``overturn_answer``: the
    claim's own signature, by more checkers than answered) ("" when it may).

    Before its render (``ours`` None): the claim published its rejecting verdicts
    (``verdicts``: :func:`claimed_verdicts` of the claim's transaction, about this very
    task and frame; None when they were hidden: nothing to re-render against), the
    request names the claim's own evidence (its ``verdict_digests`` commit to the
    claim's ``tiles``), and the amount is one we put at risk. After (``ours``: our
    verdict on the claimed frame, the claimers' cells among its tiles): it rejects the
    frame. Whether the claim is contested and we are none of its answerers, the
    accused or the requester is the caller's to read from the chain."""
    if not verdicts:
        return "the claim published no rejecting verdicts to re-check"
    if tiles_commitment(verdict_digests) != tiles:
        return "the request's evidence is not the claim's"
    return _at_risk_then_rejected(amount_wei, max_at_risk_wei, ours, "the answer stands")


def may_sign_reclaim(
    verdicts: tuple[Verdict, ...], job_id: bytes, task_id: bytes, frame: int,
    verdict_digests: Iterable[bytes], claim_round: int, amount_wei: int, max_at_risk_wei: int,
    max_cells: int, ours: Verdict | None = None,
) -> str:  # fmt: skip
    """Why a checker that did not reject a worker's result must not sign a claim on it
    (``Fraud`` of round ``claim_round``) that the requester brings after an answer stood
    against the frame's last claim ("" when it may).

    Only a reopened frame's claim (``claim_round`` above 0: the answer had that many
    signers, so the claim needs more, and the dispute's rejecters alone may be too few)
    is asked of checkers that did not reject it; a frame's first claim is its
    rejecters' alone. Before its render (``ours`` None): ``verdicts`` (the request's
    ``rejections``) are the claim's evidence, in order (their body digests are
    ``verdict_digests``, to which the claim's ``tiles`` commit), each rejects this
    very task and frame and names at most ``max_cells`` cells (``protocol.slashing.
    recheck_tiles``: what a check of the job renders, so a requester cannot have us
    render a frame for nothing), and the amount is one we put at risk. After (``ours``:
    our verdict on the frame, the verdicts' cells among its tiles): it rejects the
    frame. That the escrow's last claim on the frame was answered by ``claim_round``
    signers is the caller's to read from the chain."""
    if claim_round == 0:
        return "a frame's first claim is its dispute's rejecters' to sign"
    if claim_needs(0, claim_round) is None:
        return "no claim can have more signers than that round's answer"
    if not verdicts:
        return "the request carries no rejecting verdicts to re-check"
    if tuple(verdict_digest_of(v) for v in verdicts) != tuple(verdict_digests):
        return "the request's verdicts are not the claim's evidence"
    if any((v.job_id, v.task_id, v.frame, v.passed) != (job_id, task_id, frame, False)
           for v in verdicts):  # fmt: skip
        return "a verdict that does not reject this task's frame"
    if any(len(v.tiles) > max_cells for v in verdicts):
        return "a verdict names more cells than a check of this job asks"
    return _at_risk_then_rejected(amount_wei, max_at_risk_wei, ours, "the frame passes")


def _at_risk_then_rejected(amount_wei: int, max_at_risk_wei: int, ours: Verdict | None,
                           so: str) -> str:  # fmt: skip
    """A Fraud signature's last two conditions: the amount is one we put at risk, and
    (once rendered) our own verdict rejects the frame (``so``: what a pass means)."""
    why = at_risk_refusal(amount_wei, max_at_risk_wei)
    if why or ours is None:
        return why
    return f"the claimed cells are right: {so}" if ours.passed else ""

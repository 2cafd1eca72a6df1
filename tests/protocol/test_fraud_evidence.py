"""A claim's published evidence is used only when it is the claim's: refusals (issue 17).

An answering checker re-renders the cells a claim's published verdicts name;
evidence that does not commit to the claim's ``tiles``, is about another
result or is no rejection, is oversized or malformed, is refused (``None``):
the checker then re-checks its own cells only.
"""

from __future__ import annotations

from dataclasses import replace

from hypothesis import given
from hypothesis import strategies as st

from protocol.fraud_evidence import (
    EVIDENCE_MAGIC,
    MAX_EVIDENCE_BYTES,
    claimed_cells,
    claimed_pass,
    claimed_verdicts,
    find_evidence,
    may_sign_overturn,
    may_sign_reclaim,
    pack_evidence,
)
from protocol.market.records import verdict_digest_of
from protocol.messages import MAX_CLAIMERS, TileEvidence, Verdict
from protocol.slashing import tiles_commitment
from protocol.verification import Tile

JOB, TASK, FRAME = b"\x01" * 32, b"\x02" * 32, 3


def verdict(n: int, cells: tuple[tuple[int, int], ...] = ((0, 0), (16, 16))) -> Verdict:
    tiles = tuple(TileEvidence(x, y, 16, 16, 20_000, 200) for x, y in cells)
    return Verdict(JOB, TASK, FRAME, bytes([n]) * 32, b"\x05" * 32, False, bytes([n]) * 32,
                   tiles, "b", "d", tuple(bytes([n, i]) * 16 for i in range(len(tiles))))  # fmt: skip


def commitment(verdicts: list[Verdict]) -> bytes:
    return tiles_commitment(verdict_digest_of(v) for v in verdicts)


def test_the_claims_own_verdicts_are_taken_and_name_their_cells() -> None:
    verdicts = [verdict(1), verdict(2, ((16, 16), (32, 0)))]
    blob = pack_evidence(verdicts)
    calldata = b"\xab" * 300 + blob  # the ABI-encoded arguments come first
    assert find_evidence(calldata) == blob
    found = claimed_verdicts(find_evidence(calldata), commitment(verdicts), JOB, TASK, FRAME)
    assert found == tuple(verdicts)
    # each cell once, sorted; a rectangle that is no cell of a 48x32 frame's grid is left out
    odd = verdict(3, ((5, 5),))
    assert claimed_cells([*verdicts, odd], 48, 32, 16) == (
        Tile(0, 0, 16, 16), Tile(0, 32, 16, 16), Tile(16, 16, 16, 16),
    )  # fmt: skip


def test_evidence_that_is_not_the_claims_is_refused() -> None:
    verdicts = [verdict(1), verdict(2)]
    tiles = commitment(verdicts)
    blob = pack_evidence(verdicts)
    # another commitment: verdicts the claimers did not commit to (or one left out)
    assert claimed_verdicts(blob, commitment([verdicts[0]]), JOB, TASK, FRAME) is None
    assert claimed_verdicts(pack_evidence(verdicts[:1]), tiles, JOB, TASK, FRAME) is None
    # committed to, but about another task or frame, or a verdict that passed
    for other in (replace(verdicts[1], task_id=b"\x09" * 32), replace(verdicts[1], frame=4),
                  replace(verdicts[1], passed=True)):  # fmt: skip
        forged = [verdicts[0], other]
        assert claimed_verdicts(pack_evidence(forged), commitment(forged), JOB, TASK, FRAME) is None
    # asked about another result than the one the evidence names
    assert claimed_verdicts(blob, tiles, JOB, TASK, FRAME + 1) is None
    # nothing, no magic, truncated, oversized
    assert claimed_verdicts(b"", tiles, JOB, TASK, FRAME) is None
    assert claimed_verdicts(blob[len(EVIDENCE_MAGIC) :], tiles, JOB, TASK, FRAME) is None
    assert claimed_verdicts(blob[:-5], tiles, JOB, TASK, FRAME) is None
    assert claimed_verdicts(blob + b"\x00" * MAX_EVIDENCE_BYTES, tiles, JOB, TASK, FRAME) is None


def test_a_pass_claims_evidence_is_the_checkers_own_passing_verdict() -> None:
    """A claim against a checker's pass publishes that one passing verdict: its commitment
    is the tiles of the checker's Pass signature (ledger.fraud.checker_pass)."""
    passed = replace(verdict(1), passed=True)
    tiles = commitment([passed])
    assert claimed_pass(pack_evidence([passed]), tiles, JOB, TASK, FRAME) == passed
    assert claimed_verdicts(pack_evidence([passed]), tiles, JOB, TASK, FRAME) is None
    for other in (verdict(1), replace(passed, frame=4), replace(passed, task_id=b"\x09" * 32)):
        assert claimed_pass(pack_evidence([other]), commitment([other]), JOB, TASK, FRAME) is None
    two = [passed, replace(verdict(2), passed=True)]
    assert claimed_pass(pack_evidence(two), commitment(two), JOB, TASK, FRAME) is None
    assert claimed_pass(pack_evidence([passed]), commitment([verdict(1)]), JOB, TASK, FRAME) is None
    assert claimed_pass(b"", tiles, JOB, TASK, FRAME) is None


def test_a_slasher_publishes_nothing_a_reader_would_refuse() -> None:
    assert pack_evidence([]) == b""
    assert pack_evidence([verdict(1)] * (MAX_CLAIMERS + 1)) == b""
    big = verdict(1, tuple((16 * i, 0) for i in range(256)))
    assert pack_evidence([big] * 16) == b""  # over MAX_EVIDENCE_BYTES
    assert len(pack_evidence([big] * 3)) <= MAX_EVIDENCE_BYTES  # the default dispute's worst case


@given(st.binary(max_size=2048))
def test_arbitrary_published_bytes_never_raise(tail: bytes) -> None:
    blob = find_evidence(b"\x00" * 4 + EVIDENCE_MAGIC + tail)
    assert claimed_verdicts(blob, b"\x00" * 32, JOB, TASK, FRAME) is None


def test_an_overturn_is_signed_only_for_the_claims_published_cells_found_wrong() -> None:
    """``may_sign_overturn`` (node.roles.overturn_rechecks): a checker that did not check
    the frame signs the claim's Fraud only against the claim's own published verdicts,
    within what it puts at risk, and only once its own render rejects the frame."""
    verdicts = [verdict(1), verdict(2)]
    tiles = commitment(verdicts)
    digests = [verdict_digest_of(v) for v in verdicts]
    ok = dict(amount_wei=10, max_at_risk_wei=10)
    assert may_sign_overturn(tuple(verdicts), tiles, digests, **ok) == ""
    assert "no rejecting verdicts" in may_sign_overturn(None, tiles, digests, **ok)
    assert "not the claim's" in may_sign_overturn(tuple(verdicts), tiles, digests[:1], **ok)
    assert may_sign_overturn(tuple(verdicts), tiles, digests, amount_wei=11, max_at_risk_wei=10)
    rejects, passes = replace(verdicts[0], passed=False), replace(verdicts[0], passed=True)
    assert may_sign_overturn(tuple(verdicts), tiles, digests, **ok, ours=rejects) == ""
    assert "answer stands" in may_sign_overturn(tuple(verdicts), tiles, digests, **ok, ours=passes)


def test_a_reopened_frames_claim_is_signed_by_a_pick_only_for_the_verdicts_cells_found_wrong() -> None:
    """``may_sign_reclaim`` (node.roles.reclaim_rechecks): a checker that did not reject the
    frame signs a claim only in a round after an answer, against the request's verdicts
    when they are the claim's evidence (in order), each a rejection of this task's frame
    naming no more cells than a check asks, within what it puts at risk, and only once its
    own render rejects the frame."""
    verdicts = (verdict(1), verdict(2))
    digests = [verdict_digest_of(v) for v in verdicts]
    where = (JOB, TASK, FRAME)
    ok = dict(amount_wei=10, max_at_risk_wei=10, max_cells=2)

    def why(vs: tuple[Verdict, ...] = verdicts, ds: list[bytes] = digests, claim_round: int = 3,
            **kw: object) -> str:  # fmt: skip
        return may_sign_reclaim(vs, *where, ds, claim_round, **{**ok, **kw})  # type: ignore[arg-type]

    assert why() == ""
    assert "first claim" in why(claim_round=0)  # a frame's first claim: its rejecters' alone
    assert why(claim_round=MAX_CLAIMERS - 2) == ""
    assert "more signers" in why(claim_round=MAX_CLAIMERS - 1)  # the escrow's bound: 15 signers
    assert "no rejecting verdicts" in why((), [])
    assert "not the claim's evidence" in why(ds=digests[:1])
    assert "not the claim's evidence" in why(ds=digests[::-1])
    passing = replace(verdicts[0], passed=True)
    assert "does not reject" in why((passing, verdicts[1]), [verdict_digest_of(passing), digests[1]])
    other = replace(verdicts[0], frame=FRAME + 1)
    assert "does not reject" in why((other, verdicts[1]), [verdict_digest_of(other), digests[1]])
    assert "more cells" in why(max_cells=1)  # a requester cannot have us render a frame unpaid
    assert why(amount_wei=11)  # more than we put at risk
    rejects, passes = replace(verdicts[0], passed=False), replace(verdicts[0], passed=True)
    assert why(ours=rejects) == ""
    assert "frame passes" in why(ours=passes)  # an honest worker's frame: never signed

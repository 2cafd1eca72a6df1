"""A passing verdict of an escrowed job carries its checker's signed Pass (issue 17).

The attack: a lazy checker passes frames without rendering. With an escrow, a
signed ``Pass`` makes that pass claimable (``Escrow.claim_pass``): a staked quorum
that re-renders the checker's tiles takes its stake. So a lazy checker's best move
is to leave the signature out (or sign something no claim can use: another key,
other tiles, another frame). The requester's job machine refuses every such pass
like a verdict off the tile draw: scored (50 points), unpaid, the check asked
again after the verify timeout; the job completes on a signed pass. The crypto
is ``ledger.fraud``'s (``sign_pass`` / ``pass_signer``), the one the contract checks.
"""

from __future__ import annotations

import hashlib
from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger.fraud import checker_pass, pass_signer, sign, sign_pass
from protocol.cid import cid_of_sha256
from protocol.errors import IllegalMessage
from protocol.market import (
    CheckerFeeDue,
    FrameState,
    JobFinished,
    MarketConfig,
    PlantJudged,
    TaskState,
)
from protocol.market.records import verdict_digest_of
from protocol.messages import Escrow, Verdict, VerifyRequest
from tests.protocol.market.harness import MarketHarness, copy_of, eth_address, eth_key_for

ESCROW = Escrow(31337, b"\xee" * 20, b"\x01" * 32)
WINDOW_MS = MarketConfig().bid_window_ms
TIMEOUT_MS = MarketConfig().verify_timeout_ms
NO_PLANTS = MarketConfig(plant_rate_ppm=0)


def frame_cid(task_id: bytes) -> str:
    """A real CID (a Pass names the sha2-256 inside it)."""
    return cid_of_sha256(hashlib.sha256(b"frame of " + task_id).digest())


def signing(**kwargs: object) -> MarketHarness:
    """An escrowed job whose requester checks pass signatures and whose checkers sign
    their passes; every result delivered and waiting for its check."""
    options: dict[str, object] = {"frames": (1,), "escrow": ESCROW, "market": NO_PLANTS,
                                  "pass_signer": pass_signer, "pass_sign": sign_pass,
                                  "strict": False, **kwargs}  # fmt: skip
    harness = MarketHarness(**options)  # type: ignore[arg-type]
    harness.start()
    harness.advance(WINDOW_MS)
    for task_id in list(harness.renders):
        harness.finish_render(task_id, cid=frame_cid(task_id))
    return harness


def fees_to(harness: MarketHarness, checker: bytes) -> int:
    return sum(c.fee_wei for c in harness.commands(CheckerFeeDue) if c.checker == checker)  # type: ignore[union-attr]


def refusals(harness: MarketHarness, checker: bytes) -> list[IllegalMessage]:
    return [e for s, e in harness.rejected if s == checker and isinstance(e, IllegalMessage)]


def forged(harness: MarketHarness, checker: bytes, request: VerifyRequest, how: str) -> Verdict:
    """``checker``'s passing verdict with a pass signature no claim could use."""
    honest = harness.make_verdict(checker, request, True)
    key = harness.checker_keys[checker]
    if how == "unsigned":
        return replace(honest, pass_sig=None)
    if how == "garbage":
        return replace(honest, pass_sig=b"\x01" * 65)
    if how == "another key":  # signed by a key that is not the assigned payment address
        return replace(honest, pass_sig=sign_pass(harness.spec, honest, request.frame_cid,
                                                  eth_key_for("someone else")))  # fmt: skip
    if how == "other tiles":  # the checker's key, over a verdict with other commitments
        other = replace(honest, tile_digests=tuple(bytes(32) for _ in honest.tile_digests))
        return replace(honest, pass_sig=sign_pass(harness.spec, other, request.frame_cid, key))
    if how == "other frame":  # the checker's key, over another frame's digest
        other_cid = cid_of_sha256(hashlib.sha256(b"not the frame judged").digest())
        return replace(honest, pass_sig=sign_pass(harness.spec, honest, other_cid, key))
    if how == "names another checker":  # a Pass naming someone else's address
        named = checker_pass(harness.spec, honest, request.frame_cid, eth_address(eth_key_for("x")))
        assert named is not None
        return replace(honest, pass_sig=sign(named, key))
    raise AssertionError(how)


FORGERIES = ["unsigned", "garbage", "another key", "other tiles", "other frame",
             "names another checker"]  # fmt: skip


@pytest.mark.parametrize("how", FORGERIES)
def test_a_pass_without_the_checkers_signature_is_refused_unpaid_and_asked_again(how: str) -> None:
    harness = signing()
    (task_id,) = harness.verifications
    lazy, request = harness.verifications.pop(task_id)
    harness.send(lazy, harness.requester, forged(harness, lazy, request, how))
    harness.pump()
    (refused,) = refusals(harness, lazy)
    assert "pass_sig" in str(refused) and refused.penalty == 50  # scored as off the draw
    assert harness.job.task_state(task_id) is TaskState.VERIFYING  # nothing accepted
    assert fees_to(harness, lazy) == 0
    harness.advance(TIMEOUT_MS)  # the check is asked again, as for any refused verdict
    again, _ = harness.verifications[task_id]
    assert again != lazy
    harness.verdict(task_id, passed=True)  # a signed pass
    assert harness.job.task_state(task_id) is TaskState.ACCEPTED
    assert fees_to(harness, lazy) == 0 and fees_to(harness, again) == request.fee_wei
    assert harness.commands(JobFinished)


def test_a_signed_pass_is_taken_and_its_signature_names_the_checker() -> None:
    harness = signing()
    (task_id,) = harness.verifications
    checker, request = harness.verifications[task_id]
    harness.verdict(task_id, passed=True)
    assert harness.rejected == []
    assert harness.job.task_state(task_id) is TaskState.ACCEPTED
    assert fees_to(harness, checker) == request.fee_wei
    ((_, verdict),) = harness.verdicts
    address = harness.checker_addresses[checker]
    assert pass_signer(harness.spec, verdict, request.frame_cid, address) == address


def test_a_rejection_needs_no_signature() -> None:
    harness = signing()
    (task_id,) = harness.verifications
    checker, request = harness.verifications[task_id]
    harness.verdict(task_id, passed=False)
    ((_, verdict),) = harness.verdicts
    assert verdict.pass_sig is None and harness.rejected == []
    assert harness.job.task_state(task_id) is TaskState.REJECTED
    assert fees_to(harness, checker) == request.fee_wei


def test_a_job_without_escrow_takes_an_unsigned_pass() -> None:
    harness = signing(escrow=None, pass_sign=None)
    (task_id,) = harness.verifications
    harness.verdict(task_id, passed=True)
    assert harness.rejected == []
    assert harness.job.task_state(task_id) is TaskState.ACCEPTED


def test_an_unsigned_pass_of_a_plant_is_refused_and_a_signed_one_is_a_claimable_miss() -> None:
    harness = signing(market=MarketConfig(plant_rate_ppm=1_000_000), checkers=3,
                      check_secret=b"\x42" * 32)  # fmt: skip
    (task_id,) = harness.verifications
    lazy, request = harness.plants[task_id]
    harness.send(lazy, harness.requester, forged(harness, lazy, request, "unsigned"))
    harness.pump()
    assert [e.penalty for e in refusals(harness, lazy)] == [50]
    assert harness.commands(PlantJudged) == [] and harness.job.plant_open(task_id)
    harness.plant_verdict(task_id, passed=True)  # signed, over the plant's own CID
    (judged,) = harness.commands(PlantJudged)
    assert isinstance(judged, PlantJudged) and judged.missed and judged.checker == lazy
    ((_, verdict),) = [(c, v) for c, v in harness.verdicts if c == lazy]
    address = harness.checker_addresses[lazy]
    assert pass_signer(harness.spec, verdict, request.frame_cid, address) == address
    assert fees_to(harness, lazy) == 0


def test_an_unsigned_pass_in_a_dispute_is_refused_and_does_not_vote() -> None:
    harness = signing(checkers=4)
    (task_id,) = harness.verifications
    harness.verdict(task_id, passed=False)
    harness.dispute(task_id)
    assert harness.job.task_state(task_id) is TaskState.DISPUTED
    lazy, request = harness.dispute_requests[0]
    harness.send(lazy, harness.requester, forged(harness, lazy, request, "unsigned"))
    harness.pump()
    assert [e.penalty for e in refusals(harness, lazy)] == [50]
    assert fees_to(harness, lazy) == 0
    harness.dispute_verdict(0, True)  # now signed: its vote counts
    harness.dispute_verdict(1, True)
    assert harness.job.task_state(task_id) is TaskState.OVERTURNED
    assert harness.job.frame_states() == {1: FrameState.ACCEPTED}


def test_a_second_checks_pass_must_be_signed_too() -> None:
    from protocol.messages import Assurance

    harness = signing(assurance=Assurance.HIGH, checkers=3)
    (task_id,) = harness.verifications
    harness.verdict(task_id, passed=True)  # the first of two (a fresh worker at HIGH)
    assert harness.job.task_state(task_id) is TaskState.VERIFYING
    second, request = harness.verifications.pop(task_id)
    harness.send(second, harness.requester, forged(harness, second, request, "unsigned"))
    harness.pump()
    assert [e.penalty for e in refusals(harness, second)] == [50]
    assert harness.job.task_state(task_id) is TaskState.VERIFYING


# ---- the digest rule and the signature, for any verdict ----

digests = st.binary(min_size=32, max_size=32)
verdicts = st.builds(
    Verdict, job_id=digests, task_id=digests, frame=st.integers(0, 10**6), worker=digests,
    result_digest=digests, passed=st.just(True), secret=digests, tiles=st.just(()),
    checker_build=st.just("b"), checker_device_class=st.just("d"),
    tile_digests=st.lists(digests, max_size=4).map(tuple),
)  # fmt: skip
SPEC = signing().spec
KEY = eth_key_for("checker")
ADDRESS = eth_address(KEY)
CID = cid_of_sha256(bytes(range(32)))


@settings(max_examples=25, deadline=None)
@given(verdicts, st.binary(min_size=65, max_size=65))
def test_a_verdicts_body_digest_leaves_its_pass_signature_out(v: Verdict, sig: bytes) -> None:
    assert verdict_digest_of(replace(v, pass_sig=sig)) == verdict_digest_of(v)


@settings(max_examples=10, deadline=None)
@given(verdicts, digests)
def test_a_pass_signature_recovers_to_its_checker_only_for_its_own_verdict(
    v: Verdict, other: bytes
) -> None:
    signed = replace(v, pass_sig=sign_pass(SPEC, v, CID, KEY))
    assert pass_signer(SPEC, signed, CID, ADDRESS) == ADDRESS
    moved = replace(signed, tile_digests=(*v.tile_digests, other))  # another commitment
    assert pass_signer(SPEC, moved, CID, ADDRESS) != ADDRESS
    assert pass_signer(SPEC, replace(signed, passed=False), CID, ADDRESS) is None


def test_a_pass_must_name_the_copy_the_checker_was_served() -> None:
    """The node serves checkers its own copy of the frame (node.roles.plants): the
    request names it, and so must the pass; one over the worker's CID is refused."""
    harness = signing(serve_copies=True)
    (task_id,) = harness.verifications
    checker, request = harness.verifications.pop(task_id)
    worker_cid = frame_cid(task_id)
    assert request.frame_cid == copy_of(worker_cid) != worker_cid
    honest = harness.make_verdict(checker, request, True)
    key = harness.checker_keys[checker]
    harness.send(checker, harness.requester,
                 replace(honest, pass_sig=sign_pass(harness.spec, honest, worker_cid, key)))  # fmt: skip
    harness.pump()
    assert [e.penalty for e in refusals(harness, checker)] == [50]
    harness.send(checker, harness.requester, honest)  # over the copy it was sent
    harness.pump()
    assert harness.job.task_state(task_id) is TaskState.ACCEPTED

"""Claims against a checker's signed pass (``claim_pass``), on the real contract.

The evidence of a checker's involvement is its own ``Pass`` signature over the frame it
judged and ``tiles``, its commitment to its own tiles; claimers sign ``Fraud`` with the
checker as the accused and the SAME ``tiles``. From there the claim is a fraud claim:
answered by a larger quorum's ``Clean``, executed after the window. The attacks: a
quorum claiming other tiles than the checker signed, an uninvolved checker, a pass over
another frame, a requester framing an honest checker with a colluding quorum."""

from __future__ import annotations

import os
from dataclasses import replace

from eth_utils.crypto import keccak

from ledger.client import CLAIM_ANSWERED, CLAIM_EXECUTED, CLAIM_PENDING, EscrowClient
from ledger.fraud import (
    CheckerPass,
    FraudClaim,
    ResultRef,
    checker_pass,
    result_ref,
    sign,
    signable,
)
from node.content.cid import cid_of_bytes
from protocol.fraud_evidence import claimed_pass, pack_evidence
from protocol.market.records import verdict_digest_of
from protocol.messages import job_id_of
from protocol.slashing import answer_split, slash_split, tiles_commitment
from tests.ledger.conftest import (
    CHALLENGE_S,
    CHECKER_MIN_STAKE_WEI,
    ETHER,
    SLASH_CAP_WEI,
    Env,
)
from tests.ledger.test_stake_slash import (
    SIGNER_STAKE_WEI,
    TILES,
    ordered,
    register,
    rejecting_verdict,
    result_of,
    reverts,
    signed,
    stand,
)
from tests.protocol.vectors_samples import CAROL, sample_spec, task_id_of

CHECKER_TILES = bytes([0xC7]) * 32  # the accused checker's commitment to its own tiles


def plant_of(env: Env, job_id: bytes, frame: int = 1) -> ResultRef:
    """The frame the checker judged: a plant shares the job, task and frame of a real
    result and differs in its digest."""
    return result_of(env, job_id, frame, content=b"plant")


def staked_checker(env: Env, stake_wei: int = 2 * ETHER) -> EscrowClient:
    """The accused: a registered checker with stake (a worker client's key: the env has
    five checker keys, and the framing test needs them all as claimers and answerers)."""
    checker = env.workers[1]
    register([checker], stake_wei)
    return checker


def job(env: Env) -> bytes:
    job_id = os.urandom(32)
    env.requester.deposit(job_id, ETHER, env.deadline_in(3600))
    return job_id


def signed_pass(env: Env, ref: ResultRef, checker: EscrowClient,
                tiles: bytes = CHECKER_TILES) -> tuple[CheckerPass, bytes]:  # fmt: skip
    judged = CheckerPass(ref, checker.account, tiles)
    return judged, sign(judged, env.key_of(checker))


def open_pass_claim(env: Env, judged: CheckerPass, pass_sig: bytes, claimers: list[EscrowClient],
                    amount_wei: int = SLASH_CAP_WEI, evidence: bytes = b"") -> FraudClaim:  # fmt: skip
    claim = judged.claim(amount_wei)
    env.outsider.send(env.outsider.calls.claim_pass(judged, pass_sig, amount_wei,
                                                    signed(env, claim, claimers), evidence))  # fmt: skip
    return claim


def test_a_wrong_pass_is_claimed_and_executed(env: Env) -> None:
    """The lazy checker's stake pays: half burned, a quarter to the requester, a quarter
    to the claimers."""
    checker = staked_checker(env, CHECKER_MIN_STAKE_WEI)
    register(env.checkers[:2])
    ref = plant_of(env, job(env))
    # the checker's passing verdict of the plant: its Pass commits to it, claimers publish it
    passed = replace(rejecting_verdict(ref, 0), passed=True)
    tiles = tiles_commitment([verdict_digest_of(passed)])
    judged, pass_sig = signed_pass(env, ref, checker, tiles)
    blob = pack_evidence([passed])
    claim = open_pass_claim(env, judged, pass_sig, env.checkers[:2], evidence=blob)
    assert checker.stake_of().active_wei == CHECKER_MIN_STAKE_WEI - SLASH_CAP_WEI
    assert not checker.is_checker(checker.account)  # under the minimum now
    state = env.outsider.claim(ref, checker.account)
    assert (state.status, state.taken_wei) == (CLAIM_PENDING, SLASH_CAP_WEI)
    evidence = env.outsider.claim_evidence(ref, checker.account)  # the accused's node reads this
    claimers = ordered(env.checkers[:2])
    assert evidence is not None
    assert (evidence.tiles, list(evidence.claimers), evidence.published) == (tiles, claimers, blob)
    found = claimed_pass(evidence.published, evidence.tiles, ref.job_id, ref.task_id, ref.frame)
    assert found == passed  # the tiles and digests an answering checker re-renders
    reverts("already claimed", open_pass_claim, env, judged, pass_sig, env.checkers[:2])
    env.chain.advance_time(CHALLENGE_S)
    env.outsider.send(env.outsider.calls.execute_slash(claim, claimers))
    assert env.outsider.claim(ref, checker.account).status == CLAIM_EXECUTED
    split = slash_split(SLASH_CAP_WEI, 2)  # half burned
    assert env.requester.credit_wei(env.requester.account) == split.requester_wei
    for c in env.checkers[:2]:
        assert c.credit_wei(c.account) == split.per_claimer_wei
        assert c.stake_of().locked_wei == 0


def test_claimers_cannot_claim_other_tiles_than_the_pass_signed(env_fast: Env) -> None:
    """An honest checker whose sampled tiles matched is never slashed for a fake elsewhere
    in the frame: the claim must name the tiles of its own Pass signature."""
    env = env_fast
    checker = staked_checker(env)
    register(env.checkers[:2])
    ref = plant_of(env, job(env))
    judged, pass_sig = signed_pass(env, ref, checker)
    elsewhere = CheckerPass(ref, checker.account, TILES)  # the claimers' own tiles
    send, calls = env.outsider.send, env.outsider.calls
    quorum_elsewhere = signed(env, elsewhere.claim(SLASH_CAP_WEI), env.checkers[:2])
    # their tiles with the checker's signature over its own tiles
    reverts("not the checker's pass", send,
            calls.claim_pass(elsewhere, pass_sig, SLASH_CAP_WEI, quorum_elsewhere))  # fmt: skip
    # the checker's tiles in the call, the claimers' signatures over theirs
    reverts("not a checker", send,
            calls.claim_pass(judged, pass_sig, SLASH_CAP_WEI, quorum_elsewhere))  # fmt: skip
    # nor over another amount than the call names, nor another than the cap
    other_amount = signed(env, judged.claim(SLASH_CAP_WEI // 2), env.checkers[:2])
    reverts("not a checker", send, calls.claim_pass(judged, pass_sig, SLASH_CAP_WEI, other_amount))
    reverts("amount is not the cap", open_pass_claim, env, judged, pass_sig, env.checkers[:2],
            SLASH_CAP_WEI + 1)  # fmt: skip
    assert checker.stake_of().active_wei == 2 * ETHER
    open_pass_claim(env, judged, pass_sig, env.checkers[:2])  # at its own tiles it can


def test_an_uninvolved_checker_cannot_be_claimed(env_fast: Env) -> None:
    """Without the checker's Pass signature over this frame and these tiles, no claim: not
    forged by anyone else, not its pass of another frame, digest or job, not its other
    signatures (a Result it delivered, a Clean it signed) over the same frame."""
    env = env_fast
    checker = staked_checker(env)
    register(env.checkers[:2])
    job_id = job(env)
    ref = plant_of(env, job_id)
    judged = CheckerPass(ref, checker.account, CHECKER_TILES)
    send, calls = env.outsider.send, env.outsider.calls
    quorum = signed(env, judged.claim(SLASH_CAP_WEI), env.checkers[:2])

    def refused(pass_sig: bytes) -> None:
        reverts("not the checker's pass", send, calls.claim_pass(judged, pass_sig, SLASH_CAP_WEI, quorum))

    for forger in (env.checkers[0], env.requester, env.workers[0]):
        refused(sign(judged, env.key_of(forger)))
    other_job = job(env)
    for other in (plant_of(env, job_id, frame=2), result_of(env, job_id, content=b"the real one"),
                  plant_of(env, other_job)):  # fmt: skip
        refused(signed_pass(env, other, checker)[1])
    refused(signed_pass(env, ref, checker, TILES)[1])  # its pass of this frame at other tiles
    refused(sign(ref, env.key_of(checker)))  # a Result over the frame
    refused(sign(judged.claim(SLASH_CAP_WEI).answer.rung([], 0), env.key_of(checker)))  # a rung vote
    reverts("zero checker", send, calls.claim_pass(
        CheckerPass(ref, bytes(20), CHECKER_TILES), sign(judged, env.key_of(checker)),
        SLASH_CAP_WEI, quorum))  # fmt: skip
    assert checker.stake_of().active_wei == 2 * ETHER


def test_a_framed_honest_checker_is_answered_by_a_larger_quorum(env_fast: Env) -> None:
    """The requester's framing (a worker signs R = T − δ, the "plant" is P = R + δ = T, the
    honest checker rightly passes T): no honest claimer signs, so the requester needs a
    colluding quorum, and that quorum loses its stake to a larger one that re-rendered
    the checker's tiles and found T right. The requester and the accused sign on no side."""
    env = env_fast
    checker = staked_checker(env)
    liars, honest = env.checkers[:2], env.checkers[2:5]
    register(liars)
    register(honest)
    ref = plant_of(env, job(env))
    judged, pass_sig = signed_pass(env, ref, checker)
    send, calls = env.outsider.send, env.outsider.calls
    claim = judged.claim(SLASH_CAP_WEI)
    for accomplice in (checker, env.requester):
        if accomplice is env.requester:
            register([env.requester])
        reverts("worker cannot sign" if accomplice is checker else "requester cannot sign", send,
                calls.claim_pass(judged, pass_sig, SLASH_CAP_WEI,
                                 signed(env, claim, [liars[0], accomplice])))  # fmt: skip
    open_pass_claim(env, judged, pass_sig, liars)
    evidence = checker.claim_evidence(ref, checker.account)
    assert evidence is not None and evidence.tiles == CHECKER_TILES
    answer, claimers = claim.answer, list(evidence.claimers)
    assert answer.worker == checker.account  # the answer names the accused checker
    vote = answer.rung(claimers, 0)
    for accomplice, reason in ((checker, "worker cannot sign"), (env.requester, "requester cannot sign"),
                               (liars[0], "signed for the other side")):  # fmt: skip
        reverts(reason, send, calls.answer_claim(answer, claimers,
                                                 signed(env, vote, [*honest[:2], accomplice])))  # fmt: skip
    reverts("quorum not larger", send, calls.answer_claim(answer, claimers, signed(env, vote, honest[:2])))
    send(calls.answer_claim(answer, claimers, signed(env, vote, honest)))
    stand(env, answer, claimers, ordered(honest))
    assert env.outsider.claim(ref, checker.account).status == CLAIM_ANSWERED
    assert checker.stake_of().active_wei == 2 * ETHER
    penalty = 2 * SLASH_CAP_WEI
    for liar in liars:
        assert liar.stake_of().active_wei == SIGNER_STAKE_WEI - SLASH_CAP_WEI
    split = answer_split(penalty, 3)  # half of the liars' forfeit burned
    assert [h.credit_wei(h.account) for h in honest] == [split.per_answerer_wei] * 3
    assert checker.credit_wei(checker.account) == split.accused_wei


def test_a_claim_on_a_checker_without_stake_holds_nothing(env_fast: Env) -> None:
    """The claim opens holding nothing (a debt, as a worker's claim is: test_stake_slash.py
    -k debt shows the collection)."""
    env = env_fast
    register(env.checkers[:2])
    lazy = env.workers[0]  # signed a pass, never staked
    judged, pass_sig = signed_pass(env, plant_of(env, job(env)), lazy)
    open_pass_claim(env, judged, pass_sig, env.checkers[:2])
    assert env.outsider.claim(judged.ref, lazy.account).taken_wei == 0


def test_worker_and_checker_claims_on_one_frame(env_fast: Env) -> None:
    """The worker's claim and its checker's are distinct claims on the same result; a node
    that both delivered and passed a frame answers for it once (one id per accused)."""
    env = env_fast
    worker, checker = env.workers[0], staked_checker(env)
    worker.send(worker.calls.stake(ETHER))
    register(env.checkers[:2])
    ref = result_of(env, job(env))
    fraud = FraudClaim(ref, worker.account, TILES, SLASH_CAP_WEI)
    env.outsider.send(env.outsider.calls.claim_fraud(
        fraud, sign(ref, env.key_of(worker)), signed(env, fraud, env.checkers[:2])))  # fmt: skip
    open_pass_claim(env, *signed_pass(env, ref, checker), env.checkers[:2])
    assert env.outsider.claim(ref, worker.account).taken_wei == SLASH_CAP_WEI
    assert env.outsider.claim(ref, checker.account).taken_wei == SLASH_CAP_WEI
    reverts("already claimed", open_pass_claim, env, *signed_pass(env, ref, worker),
            env.checkers[:2])  # fmt: skip


def test_pass_digest_matches_the_contract(env_fast: Env) -> None:
    """ledger.fraud's Pass hashes exactly as Escrow.vy does."""
    env = env_fast
    judged = CheckerPass(result_of(env, os.urandom(32), frame=7), env.workers[1].account, TILES)
    msg = signable(judged)
    local = keccak(b"\x19" + msg.version + msg.header + msg.body)
    fns, checker = env.outsider.contract.functions, env.chain.w3.to_checksum_address(judged.checker)
    assert fns.pass_digest(judged.ref.arg(), checker, TILES).call() == local
    assert local != keccak(b"\x19" + (m := signable(judged.claim(1))).version + m.header + m.body)


def test_checker_pass_commits_to_the_checkers_passing_verdict() -> None:
    """What a checker's node will sign for a passing verdict (ledger.fraud.checker_pass):
    the frame it judged and the commitment to that verdict, whose body names its tiles and
    committed digests; nothing for a rejection or a job without escrow."""
    spec = sample_spec()
    job_id = job_id_of(spec)
    task_id, cid = task_id_of(job_id, 1), cid_of_bytes(b"a plant's bytes")
    ref = result_ref(spec, job_id, task_id, 1, cid)
    assert ref is not None
    passed = replace(rejecting_verdict(ref, 0), passed=True)
    expected = CheckerPass(ref, CAROL.address, tiles_commitment([verdict_digest_of(passed)]))
    assert checker_pass(spec, passed, cid, CAROL.address) == expected
    assert checker_pass(spec, replace(passed, passed=False), cid, CAROL.address) is None
    assert checker_pass(replace(spec, escrow=None), passed, cid, CAROL.address) is None

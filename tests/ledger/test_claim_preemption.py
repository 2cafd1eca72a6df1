"""The accused's friends cannot use up the one claim a frame allows (issue 17).

One claim per (job, accused, task, frame) is what caps a frame's slash, so whoever opens
it first decides what the frame costs. Two ways a lazy checker's (or a cheating
worker's) friends, registered and staked checkers, used it up before the requester's
honest claimers: a claim for 1 wei, executed (the accused lost 1 wei and the frame was
claimed), and a claim answered by more friends (the claimers' forfeit went to the
accused and the answerers: the coalition lost nothing, and the frame could never be
claimed again). Both failed before: a claim now asks the whole SLASH_CAP, and a frame
whose claim was answered can be claimed again by a quorum larger than the answer's."""

from __future__ import annotations

from dataclasses import replace

from eth_account import Account

from ledger.client import CLAIM_ANSWERED, CLAIM_PENDING, EscrowClient
from ledger.fraud import FraudClaim, order_signatures, sign
from ledger.tx import TxSender
from tests.ledger.conftest import CHECKER_MIN_STAKE_WEI, ETHER, FAST_TX, SLASH_CAP_WEI, Env
from tests.ledger.test_pass_claims import (
    job,
    open_pass_claim,
    plant_of,
    signed_pass,
    staked_checker,
)
from tests.ledger.test_stake_slash import ordered, register, reverts, signed, stand


def fresh_checkers(env: Env, n: int) -> tuple[list[EscrowClient], list[bytes]]:
    """``n`` more registered checkers (the env has five), each with the minimum plus a cap,
    and their keys."""
    w3, funder = env.chain.w3, env.requester.sender.address
    clients, keys = [], [bytes(Account.create().key) for _ in range(n)]
    for key in keys:
        w3.eth.send_transaction({"from": funder, "to": Account.from_key(key).address,
                                 "value": 3 * ETHER})  # fmt: skip
        clients.append(EscrowClient(TxSender(w3, key, FAST_TX), env.escrow))
    register(clients, CHECKER_MIN_STAKE_WEI + SLASH_CAP_WEI)
    return clients, keys


def test_a_claim_asks_the_whole_cap(env_fast: Env) -> None:
    """Friends claiming a lazy pass for 1 wei would have made the frame cost 1 wei."""
    env = env_fast
    checker, friends = staked_checker(env), env.checkers[:2]
    register(friends)
    judged, pass_sig = signed_pass(env, plant_of(env, job(env)), checker)
    for amount_wei in (1, SLASH_CAP_WEI - 1, SLASH_CAP_WEI + 1):
        reverts("amount is not the cap", open_pass_claim, env, judged, pass_sig, friends, amount_wei)
    # the same for a worker's claim
    worker = env.workers[0]
    worker.send(worker.calls.stake(ETHER))
    ref = plant_of(env, job(env))
    tiny = FraudClaim(ref, worker.account, bytes(32), 1)
    reverts("amount is not the cap", env.outsider.send, env.outsider.calls.claim_fraud(
        tiny, sign(ref, env.key_of(worker)), signed(env, tiny, friends)))  # fmt: skip
    open_pass_claim(env, judged, pass_sig, friends)
    assert env.outsider.claim(judged.ref, checker.account).taken_wei == SLASH_CAP_WEI


def test_an_answered_claim_leaves_the_frame_to_a_larger_quorum(env_fast: Env) -> None:
    """Two friends claim the lazy pass, three friends answer: the coalition's forfeit stays
    in the coalition. The honest claim that follows needs more signers than the answer
    had, and a new answer more than that."""
    env = env_fast
    checker = staked_checker(env)
    friends = env.checkers[:5]
    register(friends, CHECKER_MIN_STAKE_WEI + SLASH_CAP_WEI)
    honest, keys = fresh_checkers(env, 4)
    judged, pass_sig = signed_pass(env, plant_of(env, job(env)), checker)
    claim = open_pass_claim(env, judged, pass_sig, friends[:2])
    send, calls = env.outsider.send, env.outsider.calls
    send(calls.answer_claim(claim.answer, ordered(friends[:2]),
                            signed(env, claim.answer.rung(ordered(friends[:2]), 0), friends[2:])))  # fmt: skip
    stand(env, claim.answer, ordered(friends[:2]), ordered(friends[2:]))
    assert env.outsider.claim(judged.ref, checker.account).status == CLAIM_ANSWERED

    def honest_claim(n: int) -> object:
        this_round = replace(claim, round=3)  # after the friends' answer of 3
        sigs = order_signatures(this_round, [sign(this_round, k) for k in keys[:n]])
        return send(calls.claim_pass(judged, pass_sig, SLASH_CAP_WEI, sigs))

    reverts("answered by a quorum as large", honest_claim, 3)
    honest_claim(4)
    state = env.outsider.claim(judged.ref, checker.account)
    assert (state.status, state.taken_wei) == (CLAIM_PENDING, SLASH_CAP_WEI)
    evidence = env.outsider.claim_evidence(judged.ref, checker.account)
    assert evidence is not None and list(evidence.claimers) == ordered(honest)  # the new claim
    reverts("already claimed", open_pass_claim, env, judged, pass_sig, friends[:2])
    # the friends' next answer must outnumber the four: they have three left unlocked
    reverts("quorum not larger", send, calls.answer_claim(
        claim.answer, ordered(honest), signed(env, claim.answer.rung(ordered(honest), 0), friends[2:])))  # fmt: skip


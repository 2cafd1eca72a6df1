"""A Result of an escrowed job carries its worker's payment-key signature (issue 17).

The requester checks ``result_sig`` against the payee address the worker bid
with before it verifies anything: without it no fraud claim could name the
result, so a cheat could never be slashed. A result without a valid signature
is a failed attempt (the frame goes to another worker, the worker is judged).
The crypto is ``ledger.fraud``'s, the one definition the contract checks.
"""

from __future__ import annotations

import hashlib

from ledger.fraud import result_ref, result_signer, sign
from protocol.market import FrameState, MarketConfig, RequestVerification, TaskState, WorkerJudged
from protocol.market.commands import Send
from protocol.messages import Escrow, LeaseRevoked, Result
from protocol.reputation import Judgement
from tests.protocol.market.harness import MarketHarness, eth_key_for

ESCROW = Escrow(31337, b"\xee" * 20, b"\x01" * 32)
WINDOW_MS = MarketConfig().bid_window_ms


def cid_of(data: bytes) -> str:
    from node.content.cid import cid_of_bytes

    return cid_of_bytes(data)


def escrowed(**kwargs: object) -> MarketHarness:
    harness = MarketHarness(escrow=ESCROW, result_signer=result_signer, **kwargs)  # type: ignore[arg-type]
    harness.start()
    harness.advance(WINDOW_MS)
    return harness


def signature(harness: MarketHarness, task_id: bytes, cid: str, key: bytes) -> bytes:
    frame = next(a.frame for _, a in harness.awards() if a.task_id == task_id)
    ref = result_ref(harness.spec, harness.job_id, task_id, frame, cid)
    assert ref is not None
    return sign(ref, key)


def own_key(harness: MarketHarness, task_id: bytes) -> bytes:
    return harness.payment_keys[harness.renders[task_id]]


def judged(harness: MarketHarness) -> list[Judgement]:
    return [c.judgement for c in harness.commands(WorkerJudged)]  # type: ignore[union-attr]


def test_a_result_signed_by_the_payees_key_is_verified() -> None:
    harness = escrowed(frames=(1,))
    (task_id,) = harness.renders
    cid = cid_of(b"frame one")
    harness.finish_render(task_id, cid=cid, result_sig=signature(harness, task_id, cid,
                                                                 own_key(harness, task_id)))
    assert harness.job.task_state(task_id) is TaskState.VERIFYING
    assert len(harness.commands(RequestVerification)) == 1
    assert judged(harness) == []


def test_a_result_without_a_valid_signature_is_a_failed_attempt() -> None:
    """Unsigned, signed by someone else, signed for another frame digest or another task,
    or signed over a CID that is not ours: each is refused before any check is paid."""
    harness = escrowed(frames=(1, 2, 3, 4, 5), worker_prices_wei_per_ru=(100, 110, 120, 130, 140))
    tasks = list(harness.renders)
    cid = cid_of(b"the frame")
    other_key = eth_key_for("not a worker")
    bad_sigs = [
        None,
        signature(harness, tasks[1], cid, other_key),
        signature(harness, tasks[2], cid_of(b"another frame"), own_key(harness, tasks[2])),
        signature(harness, tasks[0], cid, own_key(harness, tasks[3])),  # task 0's, wrong task
    ]
    for task_id, sig in zip(tasks[:4], bad_sigs, strict=True):
        harness.finish_render(task_id, cid=cid, result_sig=sig)
        assert harness.job.task_state(task_id) is TaskState.REJECTED
    harness.finish_render(tasks[4], cid="bafkreiframe",
                          result_sig=b"\x01" * 65)  # not a CID the contract could name
    assert harness.job.task_state(tasks[4]) is TaskState.REJECTED
    assert harness.commands(RequestVerification) == []
    assert judged(harness) == [Judgement.FAILED] * 5
    # each worker is told why (no verdict to dispute), so it stops counting the refused
    # result as owed: it declined every later award as unpaid for (a job stalled)
    told = [c for c in harness.log if isinstance(c.command, Send)
            and isinstance(c.command.message, LeaseRevoked)]  # fmt: skip
    assert [(c.command.message.task_id, c.command.message.verdict_digest) for c in told] == [
        (t, None) for t in tasks
    ]
    assert all("result refused" in c.command.message.reason for c in told)
    for task_id in tasks:
        worker = harness.workers[harness.job._tasks[task_id].worker]
        # (a frame it renders now, awarded since, is all it counts)
        assert worker.pay_needed_wei(harness.job_id) == worker.in_flight_wei(harness.job_id)
    # every frame went back to pending and on to another worker
    assert all(s is not FrameState.FAILED for s in harness.job.frame_states().values())


def test_a_job_without_escrow_takes_unsigned_results() -> None:
    harness = MarketHarness(frames=(1,), result_signer=result_signer)
    harness.start()
    harness.advance(WINDOW_MS)
    (task_id,) = harness.renders
    harness.finish_render(task_id)
    assert harness.job.task_state(task_id) is TaskState.VERIFYING


def test_the_signature_recovers_to_the_signer_only_for_its_own_result() -> None:
    harness = escrowed(frames=(1,))
    (task_id,) = harness.renders
    key = own_key(harness, task_id)
    cid = cid_of(b"x")
    sig = signature(harness, task_id, cid, key)
    result = Result(harness.job_id, task_id, 1, cid, 1, 1, "b", "d", sig)
    address = result_signer(harness.spec, result)
    assert address is not None and address in harness.payee_owner
    for other in (Result(harness.job_id, task_id, 2, cid, 1, 1, "b", "d", sig),
                  Result(harness.job_id, hashlib.sha256(b"t").digest(), 1, cid, 1, 1, "b", "d", sig),
                  Result(harness.job_id, task_id, 1, cid, 1, 1, "b", "d", sig[:64] + b"\x05")):  # fmt: skip
        assert result_signer(harness.spec, other) != address

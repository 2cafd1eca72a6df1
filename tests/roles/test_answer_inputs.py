"""What a worker's answerer takes from the network: only Clean signatures it asked for,
by signers the escrow would count (no claimer, not the worker, not the requester)."""

from __future__ import annotations

import os
from collections.abc import Awaitable, Callable
from types import SimpleNamespace

import pytest
import trio
from eth_account import Account

from ledger.client import CLAIM_PENDING, ClaimEvidence, ClaimState
from ledger.fraud import CleanAnswer, FraudClaim, ResultRef, claim_commit, sign
from node.roles.answerer import MAX_ASKED, MAX_STANDING_READS, Answerer, _Answer
from protocol.errors import IllegalMessage
from protocol.identity import NodeId
from protocol.messages import CleanSigned, CleanSignRequest, Role
from protocol.slashing import SignerStanding


def key_and_address() -> tuple[bytes, bytes]:
    account = Account.create()
    return bytes(account.key), bytes.fromhex(account.address[2:])


async def test_only_asked_checkers_that_may_answer_count() -> None:
    (_, requester), (_, worker) = key_and_address(), key_and_address()
    claimer_key, claimer = key_and_address()
    honest_key, _ = key_and_address()
    ref = ResultRef(31337, b"\xe7" * 20, requester, os.urandom(32), os.urandom(32), 1, os.urandom(32))
    answer = CleanAnswer(ref, worker, os.urandom(32))
    answerer = Answerer(SimpleNamespace(), lambda: "")  # type: ignore[arg-type]
    asked, stranger, asked_claimer = b"\x01" * 32, b"\x02" * 32, b"\x03" * 32
    honest = bytes.fromhex(Account.from_key(honest_key).address[2:])
    adverts = {asked: honest, asked_claimer: claimer}  # node id -> advertised payment address
    answerer._payment_address = adverts.get  # type: ignore[method-assign]
    run = _Answer(answer, (claimer,), 10**17, frozenset({asked, asked_claimer}), b"\x09" * 32)
    answerer._running[(ref.job_id, ref.task_id)] = run

    vote = answer.rung((claimer,), 0)

    def signed(key: bytes, message: object = vote, rung: int = 0) -> CleanSigned:
        return CleanSigned(ref.job_id, ref.task_id, sign(message, key), rung)  # type: ignore[arg-type]

    with pytest.raises(IllegalMessage, match="did not ask"):
        answerer.on_clean_signed(stranger, signed(honest_key))
    with pytest.raises(IllegalMessage, match="claimer"):
        answerer.on_clean_signed(asked_claimer, signed(claimer_key))
    answerer.on_clean_signed(asked, signed(claimer_key))  # not the asked one's key: not held
    with pytest.raises(IllegalMessage, match="does not recover"):
        answerer.on_clean_signed(asked, CleanSigned(ref.job_id, ref.task_id, b"\xff" * 65))
    with pytest.raises(IllegalMessage, match="claim's side"):  # an odd rung is the claim's
        answerer.on_clean_signed(asked, signed(honest_key, answer.rung((claimer,), 1), 1))
    # A Fraud signature, or one for another rung than it names, recovers to someone else
    # than the asked checker: never held (a checker's other keys would grow what we hold).
    fraud = FraudClaim(ref, worker, answer.tiles, 10**17)
    for stray in (signed(honest_key, fraud), signed(honest_key, answer.rung((claimer,), 2))):
        answerer.on_clean_signed(asked, stray)
    assert run.sigs == {}
    answerer.on_clean_signed(asked, signed(honest_key))
    answerer.on_clean_signed(asked, signed(honest_key, answer.rung((claimer,), 2), 2))
    assert run.sigs[0] == {honest: signed(honest_key).signature}
    assert list(run.sigs[2]) == [honest]  # each rung's own
    answerer.on_clean_signed(asked, CleanSigned(os.urandom(32), ref.task_id, b"\xff" * 65))  # late


async def well_staked(_address: bytes) -> SignerStanding:
    return SignerStanding(True, 10**18, 0)


def checker_adverts(addresses: dict[NodeId, bytes]) -> dict[str, SimpleNamespace]:
    return {node.text: SimpleNamespace(advert=SimpleNamespace(
        roles=(Role.CHECKER,), payment=SimpleNamespace(address=address)))
        for node, address in addresses.items()}  # fmt: skip


async def test_an_answer_asks_checkers_the_escrow_counts_in_an_order_nobody_can_choose() -> None:
    """Review of stop 44: the answer asked the first 32 checker adverts by node id, staked
    or not. A framing requester grinds 32 ids that sort first (a leading zero byte: about
    8,000 keys) and advertises them as checkers that never sign: the worker asked no
    honest checker and a bare quorum's false claim stood. Now the answerer asks checkers
    the escrow would count as signers (registered, the amount free), in an order drawn
    from its own randomness."""
    honest = {NodeId(bytes([1 + i]) + os.urandom(31)): os.urandom(20) for i in range(40)}
    ground = {NodeId(b"\x00" + os.urandom(31)): os.urandom(20) for _ in range(MAX_ASKED)}
    staked = set(honest.values())

    async def standing(address: bytes) -> SignerStanding:  # the sybils: adverts, no stake
        return SignerStanding(address in staked, 10**18 if address in staked else 0, 0)

    def answerer_with(read: Callable[[bytes], Awaitable[SignerStanding]]) -> Answerer:
        ctx = SimpleNamespace(
            chain=SimpleNamespace(signer_standing=read),
            node=SimpleNamespace(capacity=checker_adverts({**honest, **ground}),
                                 key=SimpleNamespace(node_id=NodeId(b"\xff" * 32))),
        )  # fmt: skip
        return Answerer(ctx, lambda: "")  # type: ignore[arg-type]

    asked = await answerer_with(standing)._checkers(set(), b"\x01" * 32, 10**17)
    assert len(asked) == MAX_ASKED and set(asked) <= {n.raw for n in honest}
    # staked sybils too: a draw of 32 among 72, not the 32 that sort first
    asked = await answerer_with(well_staked)._checkers(set(), b"\x01" * 32, 10**17)
    assert len(asked) == MAX_ASKED and not set(asked) <= {n.raw for n in ground}


async def test_an_answers_draws_read_each_advert_once_until_the_staked_ones_are_found() -> None:
    """Second review of stop 44: thousands of fresh adverts beside 20 staked checkers left
    one draw of 128 standings with 0-3 of them. Each resend draws again among the adverts
    not read yet, so the staked ones are all found within adverts / 128 rounds."""
    staked = {NodeId(os.urandom(32)): os.urandom(20) for _ in range(20)}
    flood = {NodeId(os.urandom(32)): os.urandom(20) for _ in range(1_000)}
    reads: list[bytes] = []

    async def standing(address: bytes) -> SignerStanding:
        reads.append(address)
        ok = address in set(staked.values())
        return SignerStanding(ok, 10**18 if ok else 0, 0)

    ctx = SimpleNamespace(
        chain=SimpleNamespace(signer_standing=standing),
        node=SimpleNamespace(capacity=checker_adverts({**staked, **flood}),
                             key=SimpleNamespace(node_id=NodeId(b"\xff" * 32))),
    )  # fmt: skip
    answerer = Answerer(ctx, lambda: "")  # type: ignore[arg-type]
    read: set[bytes] = set()
    found: set[bytes] = set()
    for _ in range(-(-1_020 // MAX_STANDING_READS)):
        found |= set(await answerer._checkers(set(), b"\x01" * 32, 10**17, read))
    assert found == {n.raw for n in staked} and len(reads) == len(set(reads)) == 1_020
    assert await answerer._checkers(set(), b"\x01" * 32, 10**17, read) == []  # all read


async def test_an_answer_draws_again_each_round_until_enough_staked_checkers_sign(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """The gather widens its draw at each resend while the answer is short: the staked
    checkers, absent from the first draw among a flood of fresh adverts, are asked in a
    later round, sign, and the answer goes out (with one draw for good, never)."""
    (_, requester), (_, worker), (_, claimer) = key_and_address(), key_and_address(), key_and_address()
    ref = ResultRef(31337, b"\xe7" * 20, requester, os.urandom(32), os.urandom(32), 1, os.urandom(32))
    answer = CleanAnswer(ref, worker, os.urandom(32))
    honest = {NodeId(os.urandom(32)): key_and_address() for _ in range(2)}
    flood = {NodeId(os.urandom(32)): os.urandom(20) for _ in range(300)}
    staked = {address for _, address in honest.values()}
    capacity = checker_adverts(flood)
    sent: list[object] = []

    async def standing(address: bytes) -> SignerStanding:
        return SignerStanding(address in staked, 10**18 if address in staked else 0, 0)

    async def escalate(*args: object) -> None:
        sent.append(args)

    async def chain_time_s() -> int:
        return 10**9 + int(trio.current_time())

    def send(to: bytes, request: object) -> None:
        for node, (key, _) in honest.items():
            if node.raw == to:  # an honest checker re-checks, passes, signs
                answerer.on_clean_signed(to, CleanSigned(ref.job_id, ref.task_id,
                                                         sign(answer.rung((claimer,), 0), key), 0))  # fmt: skip

    ctx = SimpleNamespace(
        chain=SimpleNamespace(signer_standing=standing, escalate=escalate, chain_time_s=chain_time_s),
        node=SimpleNamespace(capacity=capacity, key=SimpleNamespace(node_id=NodeId(b"\xff" * 32))),
        outbox=SimpleNamespace(send=send),
    )  # fmt: skip
    answerer = Answerer(ctx, lambda: "")  # type: ignore[arg-type]
    read: set[bytes] = set()
    first = await answerer._checkers({claimer, requester}, b"\x09" * 32, 10**17, read)
    assert first == []  # the flood alone: nobody to ask
    capacity.update(checker_adverts({node: address for node, (_, address) in honest.items()}))
    run = _Answer(answer, (claimer,), 10**17, frozenset(first), b"\x09" * 32)
    run.read = read
    answerer._running[(ref.job_id, ref.task_id, ref.frame_digest)] = run
    request = CleanSignRequest(ref.job_id, ref.task_id, 1, worker, "bafkframe", "")
    with trio.fail_after(5 * 60):  # mock time: a few rounds of RESEND_S
        assert await answerer._gather(run, request, 10**9 + 2 * 86_400, ())
    assert len(sent) == 1 and run.read >= {n.raw for n in honest}


async def test_an_answer_rebound_to_the_claim_that_replaced_it_asks_and_counts_for_that_claim() -> None:
    """The claim the worker answered ended and a larger one (other claimers, a larger
    amount) opened on the frame before its answerer read the chain again: the answerer
    answers the new claim, asks the first claim's claimers too (they may re-check this
    one) but not the new claim's, and counts only signers holding the new amount free."""
    (_, requester), (_, worker) = key_and_address(), key_and_address()
    ref = ResultRef(31337, b"\xe7" * 20, requester, os.urandom(32), os.urandom(32), 1, os.urandom(32))
    nodes = {name: NodeId(bytes([i]) * 32) for i, name in enumerate("xyzr", start=1)}
    keys, pay = {}, {}
    for name in "xyzr":
        keys[name], pay[name] = key_and_address()
    pay["r"] = requester
    adverts = {nodes[n].text: SimpleNamespace(advert=SimpleNamespace(
        roles=(Role.CHECKER,), payment=SimpleNamespace(address=pay[n]))) for n in "xyzr"}  # fmt: skip
    new_tiles, new_claimers = os.urandom(32), (pay["y"],)
    commit = claim_commit(ref.frame_digest, new_tiles, new_claimers)

    async def claim_evidence(_ref: ResultRef, _worker: bytes) -> ClaimEvidence:
        return ClaimEvidence(new_tiles, new_claimers)

    ctx = SimpleNamespace(
        chain=SimpleNamespace(address=worker, claim_evidence=claim_evidence,
                              signer_standing=well_staked),
        node=SimpleNamespace(capacity=adverts, key=SimpleNamespace(node_id=NodeId(b"\x0f" * 32))),
    )  # fmt: skip
    answerer = Answerer(ctx, lambda: "")  # type: ignore[arg-type]
    first = (pay["x"],)
    asked = frozenset(await answerer._checkers(set(first) | {requester}, nodes["r"].raw, 10**17))
    assert asked == {nodes["y"].raw, nodes["z"].raw}  # not the claimer, not the requester
    run = _Answer(CleanAnswer(ref, worker, os.urandom(32)), first, 10**17, asked, nodes["r"].raw)
    run.sigs[0] = {pay["z"]: b"\x01" * 65}
    state = ClaimState(10**17, 3 * 10**17, 10**6, commit, CLAIM_PENDING)
    assert await answerer._rebind(run, state)
    assert (run.claimers, run.commit, run.answer.tiles) == (new_claimers, commit, new_tiles)
    assert run.amount_wei == 3 * 10**17  # signers must hold the new claim's amount free
    assert run.asked == {nodes["x"].raw, nodes["z"].raw}
    assert run.sigs == {}  # signatures over the old claim count on no rung of the new one
    # y, asked for the old claim and now a claimer, answers late, over the old claim:
    # dropped, not scored (stop-29 review); the new claim's rung it must not sign
    answerer._running[(ref.job_id, ref.task_id, ref.frame_digest)] = run
    answerer._payment_address = {nodes[n].raw: pay[n] for n in "xyz"}.get  # type: ignore[method-assign]
    old_vote = CleanAnswer(ref, worker, os.urandom(32)).rung(first, 0)
    y_key = keys["y"]
    answerer.on_clean_signed(nodes["y"].raw, CleanSigned(ref.job_id, ref.task_id, sign(old_vote, y_key)))
    with pytest.raises(IllegalMessage, match="claimer"):
        answerer.on_clean_signed(nodes["y"].raw, CleanSigned(
            ref.job_id, ref.task_id, sign(run.answer.rung(run.claimers, 0), y_key)))  # fmt: skip
    assert run.sigs == {}
    # evidence that is not the state's claim (the chain's logs behind it): no rebind
    assert not await answerer._rebind(run, ClaimState(10**17, 10**17, 10**6, os.urandom(32), CLAIM_PENDING))

"""Gas per escrow operation and per paid frame, measured on the in-process EVM.

    python -m bench.gas     (as a script, bench/protocol.py would shadow the protocol package)

A job of F frames split over W workers costs one deposit, the lanes (one
`open_lanes` transaction for all W workers per funding round), one voucher
redeem per worker (a single `redeem` for one worker, one `redeem_batch` for
several) and one refund; the per-frame figure divides that by F and compares it
with paying each frame by its own transfer (~63,000 gas, the baseline in
docs/LEDGER.md). Figures are receipts' gasUsed (including the 21,000 base and
calldata). Payees are accounts that already hold coin (workers pay gas).
"""

from __future__ import annotations

import os

from ledger.backends import EmbeddedChain, embedded
from ledger.client import EscrowClient
from ledger.deploy import EscrowParams, deploy_escrow
from ledger.fraud import CheckerPass, FraudClaim, ResultRef, order_signatures
from ledger.fraud import sign as sign_typed
from ledger.tx import TxSender
from ledger.vouchers import Voucher, sign

BASELINE_GAS_PER_FRAME = 63_000
ETHER = 10**18
GRACE_S = 600
GENESIS_S = 4_102_448_400  # 2100-01-01 01:00 UTC: the per-frame table's jobs end that day


class Bench:
    def __init__(self, chain: EmbeddedChain) -> None:
        self.chain = chain
        deployer = TxSender(chain.w3, chain.funded_keys[0])
        self.escrow = deploy_escrow(deployer, EscrowParams(grace_s=GRACE_S, slash_quorum=3))
        self.clients = [EscrowClient(TxSender(chain.w3, k), self.escrow) for k in chain.funded_keys]
        self.requester = self.clients[0]

    def key_of(self, client: EscrowClient) -> bytes:
        return self.chain.funded_keys[self.clients.index(client)]

    def claim(self, job_id: bytes, worker: EscrowClient, frame: int) -> FraudClaim:
        ref = ResultRef(self.chain.chain_id, bytes.fromhex(self.escrow[2:]), self.requester.account,
                        job_id, b"\x01" * 32, frame, b"\x02" * 32)  # fmt: skip
        return FraudClaim(ref, worker.account, b"\x03" * 32, ETHER // 10)

    def voucher(self, job_id: bytes, payee: EscrowClient, cumulative_wei: int) -> Voucher:
        unsigned = Voucher(self.chain.chain_id, bytes.fromhex(self.escrow[2:]),
                           self.requester.account, job_id, payee.account, cumulative_wei)  # fmt: skip
        return sign(unsigned, self.chain.funded_keys[0])

    def new_job(self, budget_wei: int = 10 * ETHER) -> tuple[bytes, int, int]:
        job_id, deadline_s = os.urandom(32), self.chain.timestamp_s() + 3600
        gas = self.requester.deposit(job_id, budget_wei, deadline_s)["gasUsed"]
        return job_id, deadline_s, gas

    def refund_gas(self, job_id: bytes, deadline_s: int) -> int:
        self.chain.advance_time(deadline_s + GRACE_S + 1 - self.chain.timestamp_s())
        return int(self.requester.refund(job_id)["gasUsed"])

    def job_gas(self, frames: int, workers: int, rounds: int = 1) -> int:
        """Total gas of one job: deposit, lanes funded in ``rounds`` transactions
        (each covering every worker), paying every worker, refund of the rest."""
        job_id, deadline_s, gas = self.new_job()
        payees = self.clients[1 : workers + 1]
        per_worker_wei = ETHER // 1000 * (frames // workers)
        for _ in range(rounds):
            fundings = [(p.account, per_worker_wei // rounds) for p in payees]
            gas += self.requester.open_lanes(job_id, fundings)["gasUsed"]
        vouchers = [self.voucher(job_id, p, per_worker_wei) for p in payees]
        submitter = self.clients[-1]
        if workers == 1:
            gas += submitter.redeem(vouchers[0])["gasUsed"]
        else:
            gas += submitter.redeem_batch(vouchers)["gasUsed"]
        return gas + self.refund_gas(job_id, deadline_s)


def per_operation(b: Bench) -> dict[str, int]:
    gas: dict[str, int] = {}
    job_id, deadline_s, gas["deposit (native, new job)"] = b.new_job()
    gas["deposit (top-up)"] = b.requester.deposit(job_id, ETHER, deadline_s)["gasUsed"]
    worker, other = b.clients[1], b.clients[-1]
    lane = [(worker.account, 3 * ETHER)]
    gas["open_lanes, 1 new lane"] = b.requester.open_lanes(job_id, lane)["gasUsed"]
    gas["open_lanes, top up 1 lane"] = b.requester.open_lanes(job_id, lane)["gasUsed"]
    ten = [(p.account, ETHER // 10) for p in b.clients[2:12]]
    gas["open_lanes, 10 new lanes (total)"] = b.requester.open_lanes(job_id, ten)["gasUsed"]
    # The same payees in a second job whose window ends the same day: each new lane adds
    # to a count its payee already has that day (Escrow.open_lanes_of), a cheaper write.
    again = os.urandom(32)
    b.requester.deposit(again, 10 * ETHER, deadline_s)
    gas["open_lanes, 10 new, payees counted"] = b.requester.open_lanes(again, ten)["gasUsed"]
    gas["open_lanes, top up 10 lanes (total)"] = b.requester.open_lanes(job_id, ten)["gasUsed"]
    gas["redeem (first voucher of a payee)"] = other.redeem(b.voucher(job_id, worker, ETHER))["gasUsed"]
    gas["redeem (later voucher, same payee)"] = other.redeem(b.voucher(job_id, worker, 2 * ETHER))["gasUsed"]
    batch = [b.voucher(job_id, p, ETHER // 10) for p in b.clients[2:12]]
    gas["redeem_batch of 10 (total)"] = other.redeem_batch(batch)["gasUsed"]
    gas["redeem_batch of 10, all skipped (total)"] = other.redeem_batch(batch)["gasUsed"]
    gas["refund"] = b.refund_gas(job_id, deadline_s)
    gas["stake"] = worker.send(worker.calls.stake(2 * ETHER))["gasUsed"]
    checkers = b.clients[8:15]  # 3 claim, 4 answer (2 ether: a lost answer leaves the minimum)
    for c in checkers:
        c.send(c.calls.stake(2 * ETHER))
        gas["register_checker"] = c.send(c.calls.register_checker())["gasUsed"]
    gas["request_unbond"] = worker.send(worker.calls.request_unbond(ETHER // 2))["gasUsed"]
    job_id, _, _ = b.new_job()
    claimers, answerers = checkers[:3], checkers[3:]
    for frame in (0, 1):  # frame 0 is executed, frame 1 answered
        claim = b.claim(job_id, worker, frame)
        sigs = order_signatures(claim, [sign_typed(claim, b.key_of(c)) for c in claimers])
        worker_sig = sign_typed(claim.ref, b.key_of(worker))
        receipt = other.send(other.calls.claim_fraud(claim, worker_sig, sigs))
        gas["claim_fraud (quorum of 3)"] = receipt["gasUsed"]
    answer = b.claim(job_id, worker, 1).answer
    claimer_addrs = sorted(c.account for c in claimers)
    vote = answer.rung(claimer_addrs, 0)
    sigs = order_signatures(vote, [sign_typed(vote, b.key_of(c)) for c in answerers])
    call = other.calls.answer_claim(answer, claimer_addrs, sigs)
    gas["answer_claim (quorum of 4)"] = other.send(call)["gasUsed"]
    answerer_addrs = sorted(c.account for c in answerers)
    b.chain.advance_time(2 * 24 * 3600)
    call = other.calls.execute_slash(b.claim(job_id, worker, 0), claimer_addrs)
    gas["execute_slash (quorum of 3)"] = other.send(call)["gasUsed"]
    call = other.calls.settle_contest(answer, claimer_addrs, [answerer_addrs])
    gas["settle_contest, answer of 4 stood"] = other.send(call)["gasUsed"]
    # An answer outnumbered: the three claimers sign again with two more checkers.
    more = b.clients[17:19]
    for c in more:
        c.send(c.calls.stake(ETHER))
        c.send(c.calls.register_checker())
    job_id, _, _ = b.new_job()
    claim = b.claim(job_id, worker, 4)
    sigs = order_signatures(claim, [sign_typed(claim, b.key_of(c)) for c in claimers])
    other.send(other.calls.claim_fraud(claim, sign_typed(claim.ref, b.key_of(worker)), sigs))
    votes = [claim.answer.rung(claimer_addrs, 0), claim.rung(claimer_addrs, 1)]
    sigs = order_signatures(votes[0], [sign_typed(votes[0], b.key_of(c)) for c in answerers])
    other.send(other.calls.answer_claim(claim.answer, claimer_addrs, sigs))
    sigs = order_signatures(votes[1], [sign_typed(votes[1], b.key_of(c)) for c in [*claimers, *more]])
    rung = sorted(c.account for c in [*claimers, *more])
    call = other.calls.escalate(claim, claimer_addrs, [answerer_addrs], sigs)
    gas["escalate, Fraud rung of 5 over 4"] = other.send(call)["gasUsed"]
    b.chain.advance_time(2 * 24 * 3600)
    call = other.calls.settle_contest(claim, claimer_addrs, [answerer_addrs, rung])
    gas["settle_contest, upheld (3, 4, 5)"] = other.send(call)["gasUsed"]
    # Claims on a checker's passes of frames 2 and 3, signed by three checkers that still
    # hold the minimum; like claim_fraud's figure, the second one's (claimers' locks and
    # the accused's stake already non-zero).
    accused = b.clients[15]
    accused.send(accused.calls.stake(ETHER))
    job_id, _, _ = b.new_job()  # a claim opens only inside the job's window (deadline + grace)
    for frame in (2, 3):
        signed_pass = CheckerPass(b.claim(job_id, accused, frame).ref, accused.account, b"\x03" * 32)
        pass_claim = signed_pass.claim(ETHER // 10)
        sigs = order_signatures(pass_claim, [sign_typed(pass_claim, b.key_of(c)) for c in answerers[:3]])
        call = other.calls.claim_pass(signed_pass, sign_typed(signed_pass, b.key_of(accused)),
                                      pass_claim.amount_wei, sigs)  # fmt: skip
        gas["claim_pass (quorum of 3)"] = other.send(call)["gasUsed"]
    gas["withdraw_credit"] = answerers[0].send(answerers[0].calls.withdraw_credit())["gasUsed"]
    b.chain.advance_time(7 * 24 * 3600)
    gas["withdraw_stake"] = worker.send(worker.calls.withdraw_stake())["gasUsed"]
    return gas


def modelled(b: Bench) -> dict[str, int]:
    """The gas of each escrow operation the simulator models (simulations.scenario.Chain's
    ``gas_*`` fields), each sent as the node sends it: a payee redeems its own vouchers
    (its account is then warm: 2,500 gas less than a third party's redeem)."""
    job_id, deadline_s, deposit = b.new_job()
    payees = b.clients[1:4]
    one = b.requester.open_lanes(job_id, [(payees[0].account, ETHER)])["gasUsed"]
    two = b.requester.open_lanes(job_id, [(p.account, ETHER) for p in payees[1:3]])["gasUsed"]
    top_up = b.requester.open_lanes(job_id, [(payees[0].account, ETHER)])["gasUsed"]
    again = os.urandom(32)  # the same deadline: the payees' lanes end the same day
    b.requester.deposit(again, 10 * ETHER, deadline_s)
    counted = b.requester.open_lanes(again, [(p.account, ETHER) for p in payees[1:3]])["gasUsed"]
    payee = payees[0]
    redeem = payee.redeem(b.voucher(job_id, payee, ETHER // 10))["gasUsed"]
    others = [b.new_job()[0] for _ in range(5)]
    for other in others:
        b.requester.open_lanes(other, [(payee.account, ETHER)])
    pair = payee.redeem_batch([b.voucher(j, payee, ETHER // 10) for j in others[:2]])["gasUsed"]
    triple = payee.redeem_batch([b.voucher(j, payee, ETHER // 10) for j in others[2:]])["gasUsed"]
    # a further voucher of a batch; the batch's fixed cost beyond a single redeem's (2,620
    # gas) is not modelled: simulations.chain charges a redeem plus each further voucher
    return {"gas_deposit": deposit, "gas_open_lanes": 2 * one - two, "gas_lane_new": two - one,
            "gas_lane_top_up": top_up - (2 * one - two),
            "gas_lane_counted": (counted - (2 * one - two)) // 2, "gas_redeem": redeem,
            "gas_redeem_item": triple - pair, "gas_refund": b.refund_gas(job_id, deadline_s)}  # fmt: skip


def measure_modelled() -> dict[str, int]:
    """:func:`modelled` on a fresh in-process chain."""
    with embedded(accounts=5) as chain:
        return modelled(Bench(chain))


def main() -> None:
    with embedded(accounts=19) as chain:
        bench = Bench(chain)
        print("gas per operation (Escrow.vy, py-evm, Prague rules)")
        for name, gas in per_operation(bench).items():
            print(f"  {name:<40} {gas:>9,}")
        print()
        print(f"amortised gas per paid frame (deposit + payouts + refund) / frames;"
              f" baseline {BASELINE_GAS_PER_FRAME:,} gas per frame transfer; payees fresh,"
              f" then again (their lanes already counted that day: Escrow.open_lanes_of)")  # fmt: skip
        print(f"  {'frames':>6} {'workers':>7} {'lane txs':>8} {'job gas':>10} {'gas/frame':>10}"
              f" {'vs baseline':>12} {'again/frame':>12}")  # fmt: skip
    for frames_per_worker, rounds in ((1, 1), (10, 1), (100, 1), (100, 10), (1000, 1)):
        for workers in (1, 10):
            frames = frames_per_worker * workers
            # fresh payees (none counted yet), at a fixed hour: a job near midnight would
            # count its lanes on another day than the first job's (Escrow.open_lanes_of)
            with embedded(accounts=12, genesis_timestamp_s=GENESIS_S) as chain:
                bench = Bench(chain)
                total = bench.job_gas(frames, workers, rounds)
                again = bench.job_gas(frames, workers, rounds)
            per_frame = total / frames
            ratio = per_frame / BASELINE_GAS_PER_FRAME
            print(f"  {frames:>6} {workers:>7} {rounds:>8} {total:>10,} {per_frame:>10,.0f}"
                  f" {ratio:>11.3f}x {again / frames:>12,.0f}")  # fmt: skip

if __name__ == "__main__":
    main()

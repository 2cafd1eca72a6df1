"""Safety invariants, checked after every event of the safety phase (VOPR).

The world reports what the real machines decided (a frame accepted, a payment
recorded) as it carries out their commands; each report is checked on the
spot against the simulator's own ledger of the truth, and the chain's escrow
is re-added after every event that touched it. A failure is kept until the
loop's after-event hook raises it with the seed and the trace tail.

* nothing paid twice: a frame is accepted at most once per job, and a payee's
  cumulative voucher never exceeds the price of the frames accepted from it;
* escrow conserved: for every job, deposited = paid + refunded + remaining,
  remaining >= 0, and all balances plus all locked budgets equal what was
  minted;
* no frame from a known cheater accepted: once a job's machine has rejected
  a worker's result on a checker's failing verdict, no later frame of that
  worker is accepted for that job (``scenario.known_cheater_invariant``; the
  count is always in the metrics as ``frames_from_known_cheaters``); and a
  worker the machine blocklisted gets no further award in that job — unless a
  dispute's majority struck that rejection (the machine then clears the worker,
  and so does this check: :meth:`Invariants.rejection_struck`);
* budgets respected: what a job pays never exceeds its budget, and no frame is
  paid more than the job's price cap.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from simulations.chain import ChainModel
from simulations.loop import EventLoop
from simulations.metrics import Metrics


@dataclass
class JobBook:
    budget_wei: int
    max_price_wei_per_frame: int
    accepted: dict[int, bytes] = field(default_factory=dict)  # frame -> worker payee
    owed_wei: dict[bytes, int] = field(default_factory=dict)  # payee -> accepted prices
    cumulative_wei: dict[bytes, int] = field(default_factory=dict)  # payee -> last voucher


class Invariants:
    # Below this many accounts + jobs the whole escrow is re-added after every
    # event; above it, the jobs a transaction touched are checked after each
    # event and the global sum every GLOBAL_EVERY_TXS transactions (and at the end).
    GLOBAL_EVERY_EVENT_MAX = 512
    GLOBAL_EVERY_TXS = 500

    def __init__(self, chain: ChainModel, metrics: Metrics, strict_cheaters: bool) -> None:
        self._chain = chain
        self._metrics = metrics
        self._strict_cheaters = strict_cheaters
        self.blocklisted: dict[bytes, set[bytes]] = {}  # job id -> workers
        self.books: dict[bytes, JobBook] = {}
        # job id -> workers caught cheating -> rejections standing against them
        self.known_cheaters: dict[bytes, dict[bytes, int]] = {}
        self._failures: list[str] = []
        self._last_txs = 0

    def fail(self, what: str) -> None:
        self._failures.append(what)

    def open_job(self, job_id: bytes, budget_wei: int, max_price_wei_per_frame: int) -> None:
        self.books[job_id] = JobBook(budget_wei, max_price_wei_per_frame)

    def cheater_seen(self, job_id: bytes, worker: bytes) -> None:
        seen = self.known_cheaters.setdefault(job_id, {})
        seen[worker] = seen.get(worker, 0) + 1

    def rejection_struck(self, job_id: bytes, worker: bytes, still_blocklisted: bool) -> None:
        """A dispute's majority passed a result the machine had rejected."""
        seen = self.known_cheaters.get(job_id, {})
        if seen.get(worker, 0) > 1:
            seen[worker] -= 1
        else:
            seen.pop(worker, None)
        if not still_blocklisted:
            self.blocklisted.get(job_id, set()).discard(worker)

    def worker_blocklisted(self, job_id: bytes, worker: bytes) -> None:
        self.blocklisted.setdefault(job_id, set()).add(worker)

    def award_sent(self, job_id: bytes, frame: int, worker: bytes) -> None:
        if worker in self.blocklisted.get(job_id, ()):
            self.fail(f"job {job_id.hex()[:12]} frame {frame} awarded to blocklisted worker "
                      f"{worker.hex()[:12]}")  # fmt: skip

    def fee_due(self, job_id: bytes, payee: bytes, fee_wei: int) -> None:
        book = self.books[job_id]
        book.owed_wei[payee] = book.owed_wei.get(payee, 0) + fee_wei

    def frame_accepted(
        self, job_id: bytes, frame: int, worker: bytes, payee: bytes, price_wei: int
    ) -> None:
        book = self.books[job_id]
        if frame in book.accepted:
            self.fail(f"job {job_id.hex()[:12]} frame {frame} accepted twice")
        if worker in self.known_cheaters.get(job_id, ()):
            self._metrics.frames_from_known_cheaters += 1
        if self._strict_cheaters and worker in self.known_cheaters.get(job_id, ()):
            self.fail(
                f"job {job_id.hex()[:12]} frame {frame} accepted from known cheater "
                f"{worker.hex()[:12]}"
            )
        if price_wei > book.max_price_wei_per_frame:
            self.fail(f"job {job_id.hex()[:12]} frame {frame} priced {price_wei} over the cap")
        book.accepted[frame] = payee
        book.owed_wei[payee] = book.owed_wei.get(payee, 0) + price_wei

    def payment_recorded(self, job_id: bytes, payee: bytes, cumulative_wei: int) -> None:
        book = self.books[job_id]
        last = book.cumulative_wei.get(payee, 0)
        if cumulative_wei < last:
            self.fail(f"job {job_id.hex()[:12]}: voucher for {payee.hex()[:12]} went down")
        if cumulative_wei > book.owed_wei.get(payee, 0):
            self.fail(
                f"job {job_id.hex()[:12]}: {payee.hex()[:12]} paid {cumulative_wei} wei "
                f"for frames worth {book.owed_wei.get(payee, 0)} (paid twice?)"
            )
        book.cumulative_wei[payee] = cumulative_wei
        total = sum(book.cumulative_wei.values())
        if total > book.budget_wei:
            self.fail(
                f"job {job_id.hex()[:12]}: vouchers total {total} over budget {book.budget_wei}"
            )

    def check_chain(self, every_job: bool) -> None:
        """Escrow equations of the touched jobs (or all), then the global sum."""
        chain = self._chain
        self._check_jobs(list(chain.jobs) if every_job else chain.touched)
        held = sum(chain.balances.values()) + chain.locked_wei() + chain.burned_wei
        if held != chain.total_supply_wei:
            self.fail(f"escrow not conserved: {held} wei held, {chain.total_supply_wei} minted")

    def _check_jobs(self, job_ids: list[bytes]) -> None:
        chain = self._chain
        for job_id in job_ids:
            job = chain.jobs.get(job_id)
            if job is not None and (job.remaining_wei < 0 or (
                job.deposited_wei != job.paid_wei + job.refunded_wei + job.remaining_wei
            )):  # fmt: skip
                self.fail(f"escrow of job {job_id.hex()[:12]} not conserved: {job}")
        chain.touched = []

    def after_event(self, loop: EventLoop) -> None:
        """The loop's hook: check what this event touched, raise the first failure."""
        chain = self._chain
        if len(chain.balances) + len(chain.jobs) <= self.GLOBAL_EVERY_EVENT_MAX:
            self.check_chain(every_job=True)
        elif chain.touched:
            if chain.stats.txs - self._last_txs >= self.GLOBAL_EVERY_TXS:
                self._last_txs = chain.stats.txs
                self.check_chain(every_job=True)
            else:
                self._check_jobs(chain.touched)
        self.raise_first(loop)

    def raise_first(self, loop: EventLoop) -> None:
        if self._failures:
            what = self._failures[0]
            self._failures.clear()
            raise loop.violation(what)

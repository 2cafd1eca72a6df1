"""The node's defence against claims on what its payment key signed: one per node.

A worker's signed results (``Result.result_sig``, node.roles.worker) and a
checker's signed passes (``Verdict.pass_sig``, node.roles.checker: the escrow's
``claim_pass`` accuses the checker as a fraud claim accuses a worker) are both
claims against this node's payment address, answered the same way. So one
:class:`node.roles.claim_watch.ClaimWatch` watches every signed ref of either
role and one :class:`node.roles.answerer.Answerer` answers any pending claim
it sees (a node with both roles running two watches would load each other's
stored rows and answer one claim twice). Built by ``run_roles`` for a node with
a chain and the worker or checker role. A checker whose answer stood registers
as a checker again when the claim had dropped its flag (the escrow does not
restore it: docs/LEDGER.md) and it holds the minimum again.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING

import trio

from ledger.errors import LedgerError
from ledger.fraud import ResultRef
from node.log import log_event
from node.roles.answerer import Answerer
from node.roles.claim_watch import ClaimWatch
from node.roles.context import RoleContext
from protocol.messages import JobSpec

if TYPE_CHECKING:
    from trio_typing import TaskStatus

logger = logging.getLogger(__name__)


class ClaimDefence:
    def __init__(self, ctx: RoleContext, device_class: Callable[[], str],
                 checker: bool = False) -> None:  # fmt: skip
        self.ctx = ctx
        self.checker = checker  # the node checks: a claim it won must not leave it unregistered
        self.answerer = Answerer(ctx, device_class)
        self.watch = None if ctx.chain is None else ClaimWatch(
            ctx.chain, ctx.node.store, ctx.clock.now_ms, self._answer
        )  # fmt: skip
        self._nursery: trio.Nursery | None = None

    def takes_signed_work(self, spec: JobSpec) -> bool:
        """Whether we may sign for ``spec``'s job (a result, a pass): not while the watch is
        full for an escrowed job (what we sign must stay watched, node.roles.claim_watch)."""
        return spec.escrow is None or self.watch is None or not self.watch.full

    def watch_signed(self, ref: ResultRef, requester: bytes) -> None:
        """Watch ``ref`` (a result or a pass we signed, of ``requester``'s job) for claims."""
        if self.watch is not None:
            self.watch.watch(ref, requester)

    def note_payer(self, job_id: bytes, requester: bytes, address: bytes) -> None:
        """``requester`` (paid from ``address``) owes us for ``job_id``: kept across a
        restart (node.roles.claim_watch.ClaimWatch.note_payer); nothing without a chain."""
        if self.watch is not None:
            self.watch.note_payer(job_id, requester, address)

    def payer_of(self, job_id: bytes) -> tuple[bytes, bytes] | None:
        """(requester node id, payment address) of an escrowed job we signed work in
        (node.roles.claim_watch.ClaimWatch.payer_of); None without a chain."""
        return None if self.watch is None else self.watch.payer_of(job_id)

    async def run(self, *, task_status: TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            if self.watch is not None:
                await nursery.start(self.watch.run)  # the stored watch loaded first
            task_status.started()
            await trio.sleep_forever()

    def _answer(self, ref: ResultRef, settle_at_s: int, requester: bytes) -> None:
        """A claim on what we signed is pending: answer it (node.roles.answerer)."""
        if self._nursery is not None:
            self._nursery.start_soon(self._answer_then_register, ref, settle_at_s, requester)

    async def _answer_then_register(self, ref: ResultRef, settle_at_s: int, requester: bytes) -> None:
        await self.answerer.answer(ref, settle_at_s, requester)
        if self.checker and self.answerer.answered.get((ref.job_id, ref.task_id)) == "answer stood":
            await self._register_again()

    async def _register_again(self) -> None:
        """A claim that took our stake under the checker minimum dropped our checker flag,
        and the escrow does not restore it when our answer stands (docs/LEDGER.md): once
        we hold the minimum again, register again, or no requester could pick us."""
        chain, me = self.ctx.chain, self.ctx.payment_address
        if chain is None:
            return
        try:
            if await chain.is_checker(me):
                return
            minimum = await chain.checker_min_stake_wei()
            if await chain.stake_of(me) < minimum:
                log_event(logger, logging.WARNING, "checker not registered again: stake under "
                          "the minimum", minimum_wei=minimum)  # fmt: skip
                return
            await chain.register_checker()
        except LedgerError as exc:  # a revert included: `pictor doctor` says what to do
            log_event(logger, logging.WARNING, "checker not registered again", error=str(exc)[:200])
            return
        log_event(logger, logging.INFO, "registered as a checker again after a claim we won")

"""A requester's vouchers, delivered until each payee acknowledges the latest one.

Theory of operation. A voucher is cumulative per (job, payee): only the newest
one matters, and a payee that never receives it is never paid for what it
covers. The outbox retries a send a few times over seconds and then drops it,
which leases and timeouts cover for every other message but not for pay: a
payee behind NAT whose relay died lost every voucher sent meanwhile, and the
job's last voucher was never sent again (tests/netns/test_nat_job.py failed on
this under load).

``VoucherPost`` keeps one slot per (job, payee) holding its newest voucher, and
one task per slot that sends it until the payee's node acknowledges it. A send
that is not delivered is tried again after ``retry_s``, doubling to
``retry_max_s``, or at once when that node is heard from (a message from it means
a path to it exists again: on libp2p, its own connection), at most once per
``retry_s``. A newer voucher
replaces the one in its slot; an acknowledged one whose slot holds nothing newer
ends the slot's task. A refusal is final (the payee's node does not take it; the
requester's restart re-sends). A slot is dropped once its job's vouchers stop
paying (deadline + the escrow's grace). State is bounded by the payees of the
node's open jobs: one slot and one task each.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import trio

from ledger.errors import LedgerError
from node.log import log_event
from node.roles.common import Delivery, peer_of
from protocol.messages import Message, Voucher

logger = logging.getLogger(__name__)
RETRY_S = 5.0
RETRY_MAX_S = 300.0


@dataclass
class _Slot:
    to: bytes  # the payee's node
    voucher: Voucher  # the newest for (job, payee)
    deadline_s: int  # the job's deadline (wall seconds)
    wake: trio.Event = field(default_factory=trio.Event)
    tried_s: float = float("-inf")  # trio time the last send ended


class VoucherPost:
    def __init__(
        self,
        post: Callable[[bytes, Message], Awaitable[Delivery]],
        spawn: Callable[..., None],
        now_s: Callable[[], float],
        grace_s: Callable[[], Awaitable[int]] | None,
        retry_s: float = RETRY_S,
        retry_max_s: float = RETRY_MAX_S,
    ) -> None:
        self._post = post
        self._spawn = spawn
        self._now_s = now_s
        self._grace_s = grace_s  # the escrow's; None without a chain (nothing expires)
        self._grace: int | None = None
        self._retry_s = retry_s
        self._retry_max_s = retry_max_s
        self._slots: dict[tuple[bytes, bytes], _Slot] = {}

    def put(self, to: bytes, voucher: Voucher, deadline_s: int) -> None:
        """Deliver ``voucher`` to node ``to`` (or a newer one for its lane) until it is
        acknowledged; an older one than its slot holds changes nothing."""
        key = (voucher.job_id, voucher.payee)
        slot = self._slots.get(key)
        if slot is None:
            self._slots[key] = slot = _Slot(to, voucher, deadline_s)
            self._spawn(self._deliver, key, slot)
            return
        if voucher.cumulative_wei > slot.voucher.cumulative_wei:
            slot.voucher, slot.to = voucher, to
            slot.wake.set()

    def heard_from(self, node: bytes) -> None:
        """A message from ``node`` arrived: a path to it exists, so try its vouchers now,
        at most once per ``retry_s`` (a payee's heartbeats must not undo the backoff)."""
        now_s = trio.current_time()
        for slot in self._slots.values():
            if slot.to == node and now_s - slot.tried_s >= self._retry_s:
                slot.wake.set()

    def waiting(self) -> int:
        """Vouchers not yet acknowledged."""
        return len(self._slots)

    async def _deliver(self, key: tuple[bytes, bytes], slot: _Slot) -> None:
        delay_s = self._retry_s
        try:
            while True:
                slot.wake = trio.Event()
                sent = slot.voucher
                outcome = await self._post(slot.to, sent)
                slot.tried_s = trio.current_time()
                if outcome is Delivery.ACKED:
                    if slot.voucher is sent:
                        return
                    delay_s = self._retry_s
                    continue  # a newer one came meanwhile
                if outcome is Delivery.REFUSED:
                    return  # logged by the outbox; final
                if await self._expired(slot):
                    log_event(logger, logging.WARNING, "voucher given up: it no longer pays",
                              peer=peer_of(slot.to), job=key[0].hex()[:16],
                              cumulative_wei=slot.voucher.cumulative_wei)  # fmt: skip
                    return
                log_event(logger, logging.INFO, "voucher to be sent again", peer=peer_of(slot.to),
                          job=key[0].hex()[:16], in_s=delay_s)  # fmt: skip
                with trio.move_on_after(delay_s):
                    await slot.wake.wait()
                delay_s = min(delay_s * 2, self._retry_max_s)
        finally:
            if self._slots.get(key) is slot:
                del self._slots[key]

    async def _expired(self, slot: _Slot) -> bool:
        if self._grace_s is None:
            return False
        if self._grace is None:
            try:
                self._grace = await self._grace_s()
            except LedgerError:
                return False  # unknown for now: keep trying
        return self._now_s() > slot.deadline_s + self._grace

"""The requester's voucher post: the newest voucher per lane, sent until acknowledged."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import trio
import trio.testing

from ledger.errors import ChainUnreachable
from node.roles.common import Delivery
from node.roles.voucher_post import VoucherPost
from protocol.messages import Message, Voucher

JOB = b"\x01" * 32
NODE, OTHER = b"\x0a" * 32, b"\x0b" * 32
PAYEE = b"\xaa" * 20
GRACE_S = 3600


def voucher(wei: int, payee: bytes = PAYEE) -> Voucher:
    return Voucher(1, b"\xcc" * 20, b"\xdd" * 20, JOB, payee, wei, b"")


class Payee:
    """A payee's node reached through ``answer`` (what each send ends as)."""

    def __init__(self, answer: Callable[[int], Delivery]) -> None:
        self.answer = answer
        self.tries: list[tuple[float, int]] = []  # (time, cumulative wei)
        self.acked: list[int] = []
        self.hold: trio.Event | None = None  # a send waits for it when set

    async def post(self, to: bytes, message: Message) -> Delivery:
        assert isinstance(message, Voucher)
        self.tries.append((trio.current_time(), message.cumulative_wei))
        if self.hold is not None:
            await self.hold.wait()
        outcome = self.answer(len(self.tries))
        if outcome is Delivery.ACKED:
            self.acked.append(message.cumulative_wei)
        return outcome


async def grace() -> int:
    await trio.lowlevel.checkpoint()
    return GRACE_S


def lost_until(n: int) -> Callable[[int], Delivery]:
    return lambda tries: Delivery.ACKED if tries > n else Delivery.LOST


class Tasks:
    """The post's spawn: says when every task it started has ended."""

    def __init__(self, nursery: trio.Nursery) -> None:
        self.nursery = nursery
        self.running = 0
        self.idle = trio.Event()

    def spawn(self, fn: Callable[..., Awaitable[None]], *args: object) -> None:
        async def run() -> None:
            try:
                await fn(*args)
            finally:
                self.running -= 1
                if self.running == 0:
                    self.idle.set()

        self.running += 1
        self.idle = trio.Event()
        self.nursery.start_soon(run)


async def run_post(
    payee: Payee, test: Callable[[VoucherPost, Tasks], Awaitable[None]],
    grace_s: Callable[[], Awaitable[int]] = grace,
) -> None:  # fmt: skip
    async with trio.open_nursery() as nursery:
        tasks = Tasks(nursery)
        post = VoucherPost(payee.post, tasks.spawn, trio.current_time, grace_s,
                           retry_s=5.0, retry_max_s=40.0)  # fmt: skip
        await test(post, tasks)
        nursery.cancel_scope.cancel()


async def test_a_lost_voucher_is_sent_again_with_backoff_until_acknowledged(
    autojump_clock: trio.testing.MockClock,
) -> None:
    payee = Payee(lost_until(5))

    async def test(post: VoucherPost, tasks: Tasks) -> None:
        post.put(NODE, voucher(100), deadline_s=10**6)
        await tasks.idle.wait()
        gaps = [round(b - a) for (a, _), (b, _) in zip(payee.tries, payee.tries[1:], strict=False)]
        assert gaps == [5, 10, 20, 40, 40]  # doubling to the cap
        assert payee.acked == [100]

    await run_post(payee, test)


async def test_a_newer_voucher_replaces_the_one_in_flight_and_only_the_newest_stays(
    autojump_clock: trio.testing.MockClock,
) -> None:
    payee = Payee(lambda tries: Delivery.ACKED)

    async def test(post: VoucherPost, tasks: Tasks) -> None:
        payee.hold = trio.Event()
        post.put(NODE, voucher(100), deadline_s=10**6)
        await trio.testing.wait_all_tasks_blocked()
        post.put(NODE, voucher(300), deadline_s=10**6)
        post.put(NODE, voucher(200), deadline_s=10**6)  # older than the slot's: ignored
        payee.hold.set()
        await trio.testing.wait_all_tasks_blocked()
        assert payee.acked == [100, 300] and post.waiting() == 0

    await run_post(payee, test)


async def test_hearing_from_the_payee_sends_at_once_and_a_refusal_is_final(
    autojump_clock: trio.testing.MockClock,
) -> None:
    payee = Payee(lost_until(2))

    async def test(post: VoucherPost, tasks: Tasks) -> None:
        start = trio.current_time()
        post.put(NODE, voucher(100), deadline_s=10**6)
        await trio.sleep(1)
        post.heard_from(NODE)  # 1 s after a lost try: the backoff stands (retry_s is 5)
        await trio.testing.wait_all_tasks_blocked()
        assert len(payee.tries) == 1
        await trio.sleep(4.5)  # the backoff's own retry at 5 s, lost too: next in 10 s
        assert len(payee.tries) == 2
        await trio.sleep(6)
        post.heard_from(OTHER)  # another node: nothing changes
        await trio.testing.wait_all_tasks_blocked()
        assert len(payee.tries) == 2
        post.heard_from(NODE)  # 6.5 s after the last try, 3.5 s before the backoff's: now
        await trio.testing.wait_all_tasks_blocked()
        assert len(payee.tries) == 3 and payee.acked == [100]
        assert payee.tries[2][0] - start == 11.5
        payee.answer = lambda tries: Delivery.REFUSED
        post.put(NODE, voucher(200, b"\xbb" * 20), deadline_s=10**6)
        await trio.testing.wait_all_tasks_blocked()
        assert len(payee.tries) == 4 and post.waiting() == 0  # not tried again

    await run_post(payee, test)


async def test_a_voucher_is_given_up_once_it_no_longer_pays(
    autojump_clock: trio.testing.MockClock,
) -> None:
    payee = Payee(lambda tries: Delivery.LOST)

    async def test(post: VoucherPost, tasks: Tasks) -> None:
        deadline_s = int(trio.current_time()) + 100
        post.put(NODE, voucher(100), deadline_s=deadline_s)
        await tasks.idle.wait()
        assert post.waiting() == 0
        last_try = payee.tries[-1][0]
        assert deadline_s + GRACE_S < last_try <= deadline_s + GRACE_S + 40
        assert payee.acked == []

    await run_post(payee, test)


async def test_without_the_grace_it_keeps_trying(autojump_clock: trio.testing.MockClock) -> None:
    payee = Payee(lambda tries: Delivery.LOST)

    async def unreachable() -> int:
        raise ChainUnreachable("no chain")

    async def test(post: VoucherPost, tasks: Tasks) -> None:
        post.put(NODE, voucher(100), deadline_s=0)
        with trio.move_on_after(1000):
            await tasks.idle.wait()
        assert post.waiting() == 1 and len(payee.tries) > 20

    await run_post(payee, test, unreachable)

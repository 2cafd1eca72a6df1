"""The checker's count of promised fees (node.roles.checker._pay_problem): a verdict it
sent a verify timeout after its request arrived counted 0 (protocol.verification.
fee_promised), so a later request of the same task and tile secret must have its fee
secured anew (second review of stop 39: it was taken as counted already)."""

from __future__ import annotations

import trio

from node.roles.checker import CheckerRole


class _PayCheck:
    def __init__(self) -> None:
        self.asked: list[int] = []

    async def problem(self, spec: object, job_id: bytes, cumulative_wei: int) -> None:
        self.asked.append(cumulative_wei)


class _Request:
    job_id = b"j" * 32
    task_id = b"t" * 32
    tile_secret = b"s" * 32
    fee_wei = 50


def _asked(answered: dict[bytes, int]) -> list[int]:
    role = object.__new__(CheckerRole)
    role.payee = None
    role._pay_check = _PayCheck()  # type: ignore[assignment]
    role._answered = {_Request.job_id: answered}
    trio.run(role._pay_problem, object(), _Request())
    return role._pay_check.asked  # type: ignore[attr-defined,no-any-return]


def test_a_reask_after_a_late_uncounted_verdict_has_its_fee_secured() -> None:
    key = _Request.task_id + _Request.tile_secret
    assert _asked({b"other": 100, key: 0}) == [150]


def test_a_reask_after_a_counted_verdict_is_not_counted_twice() -> None:
    key = _Request.task_id + _Request.tile_secret
    assert _asked({b"other": 100, key: 50}) == [150]
    assert _asked({b"other": 100}) == [150]

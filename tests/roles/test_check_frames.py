"""The requester's fetch of a worker's frame for its checks (node.roles.plants
``CheckFrames``): one fetch of a CID at a time, other CIDs beside it. Review of stop 44: one
lock for the whole job let a worker trickling its frame (1-byte chunks, each just inside
the request timeout) hold the checks of every other result in the job."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import trio

from node.roles.plants import CheckFrames


async def test_a_slow_frame_holds_up_no_other_frame(
    autojump_clock: trio.testing.MockClock, tmp_path: Path
) -> None:
    release = trio.Event()
    fetched: list[str] = []

    async def fetch_from(_worker: bytes, cid: str) -> Path:
        if cid == "slow":
            await release.wait()  # a trickle: hours
        fetched.append(cid)
        return tmp_path / cid

    frames = CheckFrames(SimpleNamespace(ctx=SimpleNamespace(fetch_from=fetch_from)))  # type: ignore[arg-type]
    done: dict[str, Any] = {}

    async def fetch(cid: str) -> None:
        done[cid] = await frames._fetch(b"w" * 32, cid)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(fetch, "slow")
        nursery.start_soon(fetch, "slow")  # the same CID waits for the first
        await trio.testing.wait_all_tasks_blocked()
        with trio.fail_after(1):
            await fetch("fast")
        assert fetched == ["fast"] and "slow" not in done
        release.set()
    assert fetched == ["fast", "slow", "slow"] and not frames._fetching  # locks dropped

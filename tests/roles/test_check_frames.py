"""The requester prepares its job's frames for checks (node.roles.plants ``CheckFrames``)
through ``RoleContext.fetch_from``:
one fetch of a CID at a time, other CIDs beside it. Review of stop 44: ``CheckFrames``
held one lock for the whole job around it, so a worker trickling its frame (1-byte chunks,
each just inside the request timeout) held the checks of every other result in the job."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import trio

import node.roles.context as context
from node.roles.context import RoleContext
from node.roles.plants import CheckFrames


async def test_a_slow_frame_holds_up_no_other_frame(
    autojump_clock: trio.testing.MockClock, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    release = trio.Event()
    fetched: list[str] = []
    held: set[str] = set()

    async def fetch(cid: str, _sources: Any, _store: Any, _config: Any) -> None:
        if cid == "slow":
            await release.wait()  # a trickle: hours
        fetched.append(cid)
        (tmp_path / cid).write_bytes(b"not an image: served as delivered")
        held.add(cid)

    monkeypatch.setattr(context, "fetch", fetch)
    monkeypatch.setattr(context, "_peer_source", lambda node, peer: None)
    ctx = object.__new__(RoleContext)  # what fetch_from reads of it
    ctx.content = SimpleNamespace(has=held.__contains__, path_of=lambda cid: tmp_path / cid)  # type: ignore[assignment]
    ctx._fetching = {}
    ctx.node = SimpleNamespace()  # type: ignore[assignment]
    frames = CheckFrames(SimpleNamespace(ctx=ctx))  # type: ignore[arg-type]

    async with trio.open_nursery() as nursery:
        nursery.start_soon(frames.prepare, b"w" * 32, "slow")
        nursery.start_soon(frames.prepare, b"v" * 32, "slow")  # the same CID waits for the first
        await trio.testing.wait_all_tasks_blocked()
        with trio.fail_after(1):
            await frames.prepare(b"u" * 32, "fast")
        assert fetched == ["fast"] and "fast" in frames.canonical and "slow" not in frames.canonical
        release.set()
    assert fetched == ["fast", "slow"] and not ctx._fetching  # fetched once; nothing held
    assert frames.served("slow") == "slow"

"""Two colluding checkers cannot tell a plant from a real check by when it came.

The attack (docs/VERIFICATION.md, "Which request is the plant"): two checker identities
run by one owner compare notes, and when both are asked about one task, the later of
their two requests is answered "passed" without rendering. Until stop 42 a task's plant
always went a few milliseconds ahead of its first real check, and a further check came
only after a verdict: the later request was never the plant, so the pair skipped renders
at no risk. Now the plant goes with a drawn check of the plan, picked with it and sent
in a drawn order (protocol.forced_errors.plant_timing, node.roles.plants.CheckFrames),
so the later request is the plant about as often as not, and the pair is caught.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import trio

import node.roles.checker as checker_module
from node.roles import persist
from node.roles.adversary import lazy_verdict
from node.roles.checker import CheckerRole
from protocol.messages import VerifyRequest
from tests.roles.cluster import open_cluster
from tests.roles.fakes import FakeTiles

FRAMES = 24  # each task: a plant and two real checks over three checkers


async def test_a_pair_passing_the_later_of_its_requests_unrendered_is_caught(
    autojump_clock: trio.testing.MockClock, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Three checkers, two of them one owner's: every result is planted, so each task's
    plant and its two real checks take all three, and the pair holds two of them. The
    pair renders the earlier of its two requests and passes the later one unrendered.
    It is caught passing a plant (stop 41's order: never), and each task's plant was
    journalled the moment the real check it went with was, ahead of it or after it."""
    colluders: dict[int, str] = {}  # id of a colluder's renderer -> its name
    arrivals: dict[bytes, list[str]] = {}  # task id -> the pair's requests, in arrival order
    skipped: list[str] = []
    honest_verify = checker_module.verify_result

    async def pair_verify(tiles: Any, request: VerifyRequest, **kwargs: Any) -> Any:
        me = colluders.get(id(tiles))
        order = arrivals.get(request.task_id, [])
        if me is not None and me in order and order.index(me) > 0:  # my partner's came first
            skipped.append(me)
            return await lazy_verdict(request, kwargs["frame_image"], _spec_of(request))
        return await honest_verify(tiles, request, **kwargs)

    specs: dict[bytes, Any] = {}

    def _spec_of(request: VerifyRequest) -> Any:
        return specs[request.job_id]

    monkeypatch.setattr(checker_module, "verify_result", pair_verify)
    async with open_cluster(tmp_path) as cluster:
        client = await cluster.add("client", "client", checks_per_checker=1,
                                   plant_rate_ppm=1_000_000)  # fmt: skip
        for i in (1, 2):
            await cluster.add(f"w{i}", "worker")
        pair = {}
        for name in ("a", "b", "honest"):
            tiles = FakeTiles(delay_s=10.0)
            member = await cluster.add(name, "checker", tiles=tiles)
            if name != "honest":
                colluders[id(tiles)] = name
                pair[name] = member
        for name, member in pair.items():  # the pair's shared notebook: who was asked when
            role = member.live().checker
            assert isinstance(role, CheckerRole)
            specs_of_role = role.specs

            def noting(sender: bytes, request: VerifyRequest, role: CheckerRole = role,
                       name: str = name, known: Any = specs_of_role) -> bool:  # fmt: skip
                arrivals.setdefault(request.task_id, []).append(name)
                if request.job_id in known:
                    specs[request.job_id] = known[request.job_id]
                return type(role).receive(role, sender, request)

            role.receive = noting  # type: ignore[method-assign]
        await cluster.settle("client", 5)
        job_id = await cluster.submit("client", frames=FRAMES)
        role = client.live().requester
        job = role.jobs[job_id]
        await job.done.wait()
        assert job.view.outcome == "completed"
        assert skipped  # the pair did skip renders
        caught = {pair[name].key.node_id.raw for name in pair} & role.struck
        assert caught  # one of them passed a plant it took for the real check
        assert set(job.machine.plant_misses) <= caught
        journal = await client.live().ctx.node.store.call(
            lambda conn: persist.read_journal(conn, job_id=job_id.hex())
        )
        asks = [(kind, data[:32], at_ms) for kind, _, data, at_ms in journal
                if kind in ("plant", "assign")]  # fmt: skip
        orders = set()
        for i, (kind, task_id, at_ms) in enumerate(asks):
            if kind != "plant":
                continue
            # the real check it went with: its task's nearest ask, journalled the same moment
            mine = [(abs(j - i), j) for j, ask in enumerate(asks) if ask[:2] == ("assign", task_id)]
            _, j = min(mine)
            assert asks[j][2] == at_ms
            orders.add(j > i)  # True: the plant went ahead of it
        assert orders  # plants went (before the pair's first miss left two checkers)

"""Two colluding checkers asked about one task can tell its plant from its real frame.

Known and open (docs/VERIFICATION.md, "What two colluding checkers can tell"): a plant is
the task's real frame with specks added in every cell, so two identities of one owner that
both get a request about a task compare the two frames they are served. Where they differ
the plant is the brighter (``protocol.forced_errors.perturb`` adds ``PLANT_DELTA`` unless
a pixel would overflow), so the pair renders the plant, rejects it and passes the real
frame unrendered; two requests naming one frame are both real and both passed unrendered.
Plants never catch such a pair. This test plays it and stays an expected failure until
plants stop telling (``strict``: it fails the run the day it passes).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import trio

import node.roles.checker as checker_module
from node.roles.adversary import lazy_verdict
from node.roles.checker import CheckerRole
from node.verify.images import load_image
from protocol.messages import VerifyRequest
from tests.roles.cluster import open_cluster
from tests.roles.fakes import FakeTiles

FRAMES = 24  # each task: a plant and two real checks over three checkers


@pytest.mark.xfail(strict=True, reason="a pair comparing its two frames tells the plant (open)")
async def test_a_pair_comparing_its_frames_is_caught_by_a_plant(
    autojump_clock: trio.testing.MockClock, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    colluders: dict[int, str] = {}  # id of a colluder's renderer -> its name
    served: dict[bytes, dict[str, tuple[str, Path]]] = {}  # task -> colluder -> (CID, frame)
    specs: dict[bytes, Any] = {}
    skipped: list[str] = []
    honest_verify = checker_module.verify_result

    async def pair_verify(tiles: Any, request: VerifyRequest, **kwargs: Any) -> Any:
        me = colluders.get(id(tiles))
        if me is None:
            return await honest_verify(tiles, request, **kwargs)
        frame: Path = kwargs["frame_image"]
        mine = served.setdefault(request.task_id, {})
        mine[me] = (request.frame_cid, frame)
        partner = [seen for name, seen in mine.items() if name != me]
        if partner:
            (cid, other), = partner
            if cid == request.frame_cid:
                real = True  # one frame for both requests: two real checks
            else:  # the plant is the brighter where they differ
                a = load_image(frame).astype(np.int64)
                b = load_image(other).astype(np.int64)
                real = int((a - b).sum()) < 0
            if real:
                skipped.append(me)
                return await lazy_verdict(request, frame, specs[request.job_id])
        return await honest_verify(tiles, request, **kwargs)

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
                role = member.live().checker
                assert isinstance(role, CheckerRole)

                def noting(sender: bytes, request: VerifyRequest, role: CheckerRole = role) -> bool:
                    if request.job_id in role.specs:
                        specs[request.job_id] = role.specs[request.job_id]
                    return type(role).receive(role, sender, request)

                role.receive = noting  # type: ignore[method-assign]
        await cluster.settle("client", 5)
        job_id = await cluster.submit("client", frames=FRAMES)
        role = client.live().requester
        job = role.jobs[job_id]
        await job.done.wait()
        assert job.view.outcome == "completed"
        assert skipped  # the pair did skip renders (else the test shows nothing)
        caught = {pair[name].key.node_id.raw for name in pair} & role.struck
        assert caught  # it passed a plant: never, since it can tell them

"""Real nodes and the requester's tile secret (issue 17): a checker that draws its own
secret, as checkers did before ``VerifyRequest.tile_secret``, has every verdict refused
and scored; nothing crashes, and the job completes on the honest checker's verdicts."""

from __future__ import annotations

import hashlib
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import trio

from node.roles import checker as checker_module
from protocol.messages import VerifyRequest
from tests.roles.cluster import Member, open_cluster
from tests.roles.test_job_flow import all_paid


def refusals(of: Member, by: Member) -> dict[str, int]:
    gate = by.live().ctx.node.gate
    views = [v for v in gate.scorer.view(0.0) if v.peer == of.peer]
    return views[0].rejected if views else {}


async def test_a_checker_drawing_its_own_tile_secret_is_refused_and_the_job_completes(
    autojump_clock: trio.testing.MockClock, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = checker_module.verify_result
    old: list[Member] = []
    drew = 0

    async def own_draw(renderer: Any, request: VerifyRequest, **kwargs: Any) -> Any:
        """The old checker: it renders honestly, on cells of a secret it drew itself."""
        nonlocal drew
        if old and renderer is old[0].live().ctx.render.tiles:
            drew += 1
            own = hashlib.sha256(b"own draw %d" % drew).digest()
            request = replace(request, tile_secret=own)
        return await real(renderer, request, **kwargs)

    monkeypatch.setattr(checker_module, "verify_result", own_draw)
    async with open_cluster(tmp_path) as cluster:
        client = await cluster.add("client", "client")
        await cluster.add("w1", "worker")
        old.append(await cluster.add("old", "checker"))
        honest = await cluster.add("c1", "checker")
        await cluster.settle("client", 3)
        job_id = await cluster.submit("client", frames=3)
        job = client.live().requester.jobs[job_id]
        await job.done.wait()
        assert job.view.outcome == "completed"
        assert drew >= 1  # the old checker was asked, and answered with its own draw
        # each verdict that reached the requester was refused and scored (50 points; two
        # close together ban it, PROTOCOL.md §9, and its later verdicts go nowhere)
        refused = refusals(old[0], client)
        assert set(refused) == {"illegal_message"} and 1 <= refused["illegal_message"] <= drew
        assert not refusals(honest, client)
        owed = await all_paid(cluster, "client", job_id)
        assert owed.get(old[0].address, 0) == 0  # no refused verdict is paid
        assert owed[honest.address] > 0

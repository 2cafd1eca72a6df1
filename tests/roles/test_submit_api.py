"""POST /v1/client/jobs says what `pictor job submit` warns of: a job at ``high`` whose
frames need two checkers, submitted with one checker about, waits for a second; the API
used to accept it without a word (stop 34's review)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import trio
from fastapi import FastAPI

from node.api.jobs_routes import add_job_routes
from tests.roles.cluster import open_cluster
from tests.roles.fakes import write_scene

TOKEN = "token"


async def test_the_api_warns_of_a_job_that_needs_more_checkers_than_advertise(
    autojump_clock: trio.testing.MockClock, tmp_path: Path
) -> None:
    async with open_cluster(tmp_path) as cluster:
        client = await cluster.add("client", "client")
        await cluster.add("w1", "worker")
        await cluster.add("c1", "checker")
        await cluster.settle("client", 2)
        app = FastAPI()
        add_job_routes(app, client.live(), TOKEN)
        scene = write_scene(tmp_path / "scene.json")
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://node") as http:

            async def submit(assurance: str) -> dict[str, Any]:
                body = {"scene": str(scene), "frames": [1], "max_price_wei_per_frame": 10**14,
                        "out_dir": str(tmp_path / assurance), "assurance": assurance}  # fmt: skip
                response = await http.post("/v1/client/jobs", json=body,
                                           headers={"Authorization": f"Bearer {TOKEN}"})  # fmt: skip
                assert response.status_code == 200, response.text
                return response.json()  # type: ignore[no-any-return]

            (short,) = (await submit("normal"))["warnings"]  # one checker for a new worker
            assert "asks 2 different checkers of a new worker's frame and 1 advertise(s)" in short
            assert "accepted on 1 checker's pass" in short
            (warning,) = (await submit("high"))["warnings"]
            assert "asks 2 different checkers of a frame and 1 advertise(s)" in warning
            assert (await submit("none"))["warnings"] == []

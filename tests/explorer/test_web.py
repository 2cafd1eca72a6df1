"""Pages and the JSON API over an index: content, search, and 4xx (never 5xx) for junk."""

from __future__ import annotations

import httpx
import pytest

from explorer.indexer.db import IndexDb
from protocol import NodeKey
from tests.explorer import factory as f
from tests.explorer.conftest import put

JUNK = [
    "x",
    "12D3KooWnope",
    "0x" + "g" * 64,
    "a" * 63,
    "%00",
    "%E2%80%AE",
    "..%2F..%2Fetc%2Fpasswd",
    "1" * 500,
    "'; DROP TABLE nodes; --",
    "<script>alert(1)</script>",
    "0x" + "1" * 41,
]
ID_ENDPOINTS = ["/nodes/{}", "/jobs/{}", "/tx/{}", "/address/{}"]


@pytest.fixture
async def seeded(index: IndexDb) -> dict[str, str]:
    worker, requester, checker = (NodeKey.generate() for _ in range(3))
    announce = f.job(requester, frames=2)
    await put(
        index,
        f.envelope(worker, f.advert(worker, gpus=("RTX 4090",))),
        f.envelope(requester, announce),
        f.envelope(requester, f.work_record(worker, checker, announce.job_id, 1)),
    )
    return {"worker": worker.node_id.text, "job": announce.job_id.hex()}


async def test_overview_page_and_json(client: httpx.AsyncClient, seeded: dict[str, str]) -> None:
    page = await client.get("/")
    assert page.status_code == 200
    assert 'data-live="nodes_online"' in page.text and "RTX 4090" in page.text
    assert "<svg" in page.text  # inline charts, no external script
    data = (await client.get("/api/v1/overview")).json()
    assert data["nodes_online"] == 1 and data["jobs_running"] == 1


async def test_node_and_job_pages(client: httpx.AsyncClient, seeded: dict[str, str]) -> None:
    node = await client.get(f"/nodes/{seeded['worker']}")
    assert node.status_code == 200 and seeded["worker"] in node.text
    assert (await client.get(f"/api/v1/nodes/{seeded['worker']}")).json()["frames_rendered"] == 1
    job = await client.get(f"/jobs/{seeded['job']}")
    assert job.status_code == 200 and "accepted" in job.text
    api = (await client.get(f"/api/v1/jobs/{seeded['job']}")).json()
    assert api["frames_by_state"] == {"accepted": 1, "open": 1}
    for path in (
        "/nodes",
        "/jobs",
        "/checkers",
        "/api/v1/checkers",
        "/api/v1/nodes",
        "/api/v1/jobs",
    ):
        assert (await client.get(path)).status_code == 200, path
    assert (
        (await client.get("/charts/nodes_online.svg"))
        .headers["content-type"]
        .startswith("image/svg")
    )


async def test_search_redirects_to_the_page(
    client: httpx.AsyncClient, seeded: dict[str, str]
) -> None:
    for term, where in (
        (seeded["worker"], "/nodes/"),
        (seeded["job"], "/jobs/"),
        ("0x" + seeded["job"].upper(), "/jobs/"),
    ):
        r = await client.get("/search", params={"q": term})
        assert r.status_code == 303 and r.headers["location"].startswith(where), term
    assert (await client.get("/api/v1/search", params={"q": seeded["job"]})).json()[
        "url"
    ] == f"/jobs/{seeded['job']}"
    missing = await client.get("/search", params={"q": NodeKey.generate().node_id.text})
    assert missing.status_code == 404 and "Not found" in missing.text
    bad = await client.get("/search", params={"q": "hello"})
    assert bad.status_code == 400 and "Bad request" in bad.text


async def test_unknown_ids_are_404_pages(client: httpx.AsyncClient, seeded: dict[str, str]) -> None:
    unknown = {
        "/nodes/{}": NodeKey.generate().node_id.text,
        "/jobs/{}": "ab" * 32,
        "/tx/{}": "0x" + "cd" * 32,
        "/address/{}": "0x" + "ef" * 20,
    }
    for pattern, value in unknown.items():
        page = await client.get(pattern.format(value))
        assert page.status_code == 404 and 'data-status="404"' in page.text, pattern
        api = await client.get("/api/v1" + pattern.format(value))
        assert api.status_code == 404 and api.json()["error"] == "Not found"


@pytest.mark.parametrize("junk", JUNK)
async def test_junk_ids_are_4xx_never_5xx(client: httpx.AsyncClient, junk: str) -> None:
    for pattern in ID_ENDPOINTS:
        for prefix in ("", "/api/v1"):
            r = await client.get(prefix + pattern.format(junk))
            assert 400 <= r.status_code < 500, (prefix + pattern, junk, r.status_code)
    for path in ("/search", "/api/v1/search"):
        r = await client.get(path, params={"q": junk})
        assert 400 <= r.status_code < 500, (path, junk)
    for path in ("/api/v1/nodes", "/api/v1/jobs", "/nodes", "/jobs"):
        r = await client.get(path, params={"offset": junk})
        assert r.status_code == 400, (path, junk)


async def test_every_openapi_get_survives_junk(client: httpx.AsyncClient) -> None:
    spec = (await client.get("/openapi.json")).json()
    paths = spec["paths"]
    assert all(set(ops) == {"get"} for ops in paths.values())  # read-only API
    assert len(paths) >= 10
    for path in paths:
        for junk in ("zz", "-1", "%ff%fe"):
            url = path.replace("{", "").replace("}", "")
            for name in ("node_id", "job_id", "tx_hash", "address"):
                url = url.replace(name, junk)
            r = await client.get(url, params={"offset": junk, "hours": junk, "q": junk})
            assert r.status_code < 500, (url, r.status_code)


async def test_no_write_methods(client: httpx.AsyncClient) -> None:
    for method in ("POST", "PUT", "DELETE", "PATCH"):
        r = await client.request(method, "/api/v1/overview")
        assert r.status_code == 405


async def test_peer_text_is_escaped(client: httpx.AsyncClient, index: IndexDb) -> None:
    key = NodeKey.generate()
    await put(index, f.envelope(key, f.advert(key, gpus=("<script>alert(1)</script>",))))
    for path in ("/", f"/nodes/{key.node_id.text}"):
        text = (await client.get(path)).text
        assert (
            "<script>alert(1)</script>" not in text
            and "&lt;script&gt;alert(1)&lt;/script&gt;" in text
        )

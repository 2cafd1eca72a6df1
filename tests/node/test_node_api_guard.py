"""The local API refuses before it parses (issue 14 B item 6).

Attack run against main: the JSON body was parsed before the token was
checked, bodies had no size limit (two 200 MB bodies: +200 MB RSS), a deeply
nested body segfaulted the node (the chain libraries raise the recursion
limit to 100,000), and ten numeric edge cases in ``job submit`` gave 500.
"""

from __future__ import annotations

import math
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import trio
from node_helpers import make_config

from node.api.guard import MAX_BODY_BYTES, MAX_JSON_DEPTH, BodyTooDeep, json_depth
from node.app.run import run_node
from node.cli.init_cmd import init
from node.keyfile import read_secret_file

JOBS = "/v1/client/jobs"


def test_json_depth_ignores_brackets_in_strings() -> None:
    assert json_depth(b'{"a": [1, {"b": "[[[[[[\\"[[[[[[[["}]}', 3) == 3
    with pytest.raises(BodyTooDeep):
        json_depth(b"[" * 5 + b"]" * 5, 4)
    assert json_depth(b"[]" * 10_000, 1) == 1  # wide is fine, deep is not


async def test_api_refuses_before_parsing(tmp_path: Path) -> None:
    init(tmp_path)
    config = make_config(tmp_path)
    token = read_secret_file(config.api_token_path)
    stop = trio.Event()
    async with trio.open_nursery() as nursery:
        running = await nursery.start(run_node, config, stop)
        assert sys.getrecursionlimit() >= 10_000  # the chain libraries are loaded
        auth = {"Authorization": f"Bearer {token}"}
        async with httpx.AsyncClient(base_url=running.api_url, timeout=30) as client:
            big = b"[" + b"1," * MAX_BODY_BYTES + b"1]"
            response = await client.post(JOBS, content=big)
            assert response.status_code == 401  # no token: the body is never read
            response = await client.post(JOBS, content=big, headers=auth)
            assert response.status_code == 413
            assert response.headers["connection"] == "close"  # the body was left unread
            response = await client.post(JOBS, content=_chunks(big), headers=auth)
            assert response.status_code == 413  # no Content-Length: counted while read
            # Told, the client does not send the next request on a connection the server
            # drops (it did, and a loaded CI box saw "Server disconnected").
            assert response.headers["connection"] == "close"
            deep = b"[" * 200_000 + b"]" * 200_000
            response = await client.post(JOBS, content=deep, headers=auth)
            assert response.status_code == 400
            assert f"deeper than {MAX_JSON_DEPTH}" in response.json()["detail"]
            for change in _EDGE_CASES:
                body = {"scene": str(tmp_path / "none.blend"), "frames": [1, 2],
                        "max_price_wei_per_frame": 10**12, "out_dir": str(tmp_path)}  # fmt: skip
                body.update(change)
                response = await client.post(
                    JOBS, content=_json(body), headers={**auth, "content-type": "application/json"}
                )
                assert response.status_code == 422, (change, response.text)
            assert (await client.get("/v1/status", headers=auth)).status_code == 200
        stop.set()


_EDGE_CASES: list[dict[str, Any]] = [
    {"deadline_s": math.nan},
    {"deadline_s": math.inf},
    {"deadline_s": -math.inf},
    {"frames": [-5]},
    {"frames": [2**40]},
    {"frames": [3, 3]},
    {"resolution": [10**9, 10]},
    {"samples": 2**62},
    {"max_price_wei_per_frame": 2**300},
    {"max_price_wei_per_frame": 2**256 - 1},  # fits, but the budget for two frames does not
]


def _json(body: dict[str, Any]) -> bytes:
    import json

    return json.dumps(body).encode()  # NaN and Infinity as Python writes them


async def _chunks(data: bytes) -> AsyncIterator[bytes]:
    for start in range(0, len(data), 1 << 16):
        yield data[start : start + (1 << 16)]

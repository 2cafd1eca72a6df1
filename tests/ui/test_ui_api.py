"""The dashboard's routes on a real node (in process, loopback): who may call what, and
what each bound does when a caller pushes against it."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import trio
from typer.testing import CliRunner

from node.api.guard import ApiGuard, BodyOverLimit
from node.app.run import run_node
from node.cli.init_cmd import init
from node.cli.main import app as cli
from node.config import NodeConfig
from node.keyfile import read_secret_file
from node.ui.routes import CSP
from node.ui.snapshot import UiLimits
from node.ui.uploads import UploadDir, UploadRefused

BLEND = b"BLENDER-v304REND" + bytes(2000)


def config_for(data_dir: Path) -> NodeConfig:
    init(data_dir)
    return NodeConfig(data_dir=data_dir, listen_addrs=("/ip4/127.0.0.1/tcp/0",), mdns=False,
                      api_port=0, shutdown_grace_s=2.0)  # fmt: skip


async def test_page_is_public_and_everything_else_needs_the_token(tmp_path: Path) -> None:
    config = config_for(tmp_path)
    token = read_secret_file(config.api_token_path)
    stop = trio.Event()
    async with trio.open_nursery() as nursery:
        running = await nursery.start(run_node, config, stop)
        async with httpx.AsyncClient(base_url=running.api_url, timeout=30) as client:
            page = await client.get("/ui/")
            assert page.status_code == 200 and "Pictor" in page.text
            assert page.headers["content-security-policy"] == CSP
            assert token not in page.text
            assert "http" not in page.text  # nothing from elsewhere (no CDN)
            for asset in ("/ui/app.js", "/ui/app.css"):
                served = await client.get(asset)
                assert served.status_code == 200 and "http" not in served.text
            assert (await client.get("/ui")).headers["location"] == "/ui/"
            for path in ("/v1/ui/state", "/v1/ui/events", "/v1/ui/jobs/ab/frames/1",
                         "/v1/ui/jobs/ab/frames.zip"):  # fmt: skip
                assert (await client.get(path)).status_code == 401, path
            unread = await client.post("/v1/ui/scenes", content=BLEND * 1000)
            assert unread.status_code == 401  # before the body is read
            auth = {"Authorization": f"Bearer {token}"}
            state = (await client.get("/v1/ui/state", headers=auth)).json()
            assert state["node"]["peer_id"] == running.node.node_id
            assert state["jobs"] == [] and state["worker"] is None and state["checker"] is None
            assert state["earnings"] is None  # no chain, no payee
        stop.set()


async def test_uploads_are_checked_bounded_and_cross_site_posts_refused(tmp_path: Path) -> None:
    config = config_for(tmp_path)
    auth = {"Authorization": f"Bearer {read_secret_file(config.api_token_path)}"}
    stop = trio.Event()
    async with trio.open_nursery() as nursery:
        running = await nursery.start(run_node, config, stop)
        url = running.api_url
        async with httpx.AsyncClient(base_url=url, timeout=30, headers=auth) as client:
            evil = await client.post("/v1/ui/scenes", content=BLEND,
                                     headers={"Origin": "http://evil.example"})  # fmt: skip
            assert evil.status_code == 403
            rebound = await client.get(
                "/ui/", headers={"Host": f"evil.example:{url.rsplit(':', 1)[1]}"}
            )
            assert rebound.status_code == 403  # a DNS name rebound to 127.0.0.1 gets nothing
            assert (
                await client.get("/v1/ui/state", headers={"Host": "localhost"})
            ).status_code == 200
            cancel = await client.post("/v1/client/jobs/00/cancel",
                                       headers={"Origin": "http://127.0.0.1.evil.example"})  # fmt: skip
            assert cancel.status_code == 403
            not_blend = await client.post("/v1/ui/scenes", content=b"#!/bin/sh\nrm -rf /\n")
            assert not_blend.status_code == 422 and "not a .blend" in not_blend.text
            # refused part way: the rest is left unread, so the connection is not reused
            part = await client.post("/v1/ui/scenes", content=b"#!/bin/sh\n" + bytes(256 << 10))
            assert part.status_code == 422 and part.headers["connection"] == "close"
            chunked = await client.post("/v1/ui/scenes", content=_chunks(BLEND))
            assert chunked.status_code == 411  # a length is declared, or nothing is read
            ok = await client.post("/v1/ui/scenes?name=../../etc/passwd x.blend", content=BLEND,
                                   headers={"Origin": url})  # same origin passes  # fmt: skip
            assert ok.status_code == 200, ok.text
            saved = ok.json()
            assert saved["name"] == "passwd x.blend" and saved["size_bytes"] == len(BLEND)
            assert Path(saved["scene"]).parent == tmp_path / "ui" / "scenes"
            assert Path(saved["scene"]).read_bytes() == BLEND
            for i in range(UiLimits().keep_uploads + 3):  # more scenes than are kept
                r = await client.post("/v1/ui/scenes", content=BLEND + bytes([i]))
                assert r.status_code == 200
            assert len(list((tmp_path / "ui" / "scenes").iterdir())) == UiLimits().keep_uploads
            quote = await client.post("/v1/ui/quote", json={"scene": saved["scene"], "frames": 0})
            assert quote.status_code == 422  # at least one frame
        stop.set()


async def test_event_streams_are_bounded_and_give_their_slot_back(tmp_path: Path) -> None:
    config = config_for(tmp_path)
    auth = {"Authorization": f"Bearer {read_secret_file(config.api_token_path)}"}
    limit = UiLimits().max_streams
    stop = trio.Event()
    async with trio.open_nursery() as nursery:
        running = await nursery.start(run_node, config, stop)
        async with httpx.AsyncClient(base_url=running.api_url, timeout=30, headers=auth) as client:

            async def first_document() -> dict[str, Any]:
                async with client.stream("GET", "/v1/ui/events") as stream:
                    assert stream.status_code == 200
                    assert stream.headers["content-type"].startswith("text/event-stream")
                    async for line in stream.aiter_lines():
                        if line.startswith("data: "):
                            doc: dict[str, Any] = json.loads(line[6:])
                            return doc
                raise AssertionError("the stream ended without a document")

            opened, held = [], trio.Event()
            async with trio.open_nursery() as streams:
                for _ in range(limit):
                    ready = trio.Event()
                    opened.append(ready)
                    streams.start_soon(_hold_stream, client, ready, held)
                for ready in opened:
                    await ready.wait()
                refused = await client.get("/v1/ui/events")
                assert refused.status_code == 429
                held.set()  # every holder closes its stream
            # closed streams gave their slots back (a tab closed must not lock the page out)
            with trio.fail_after(10):
                while True:
                    try:
                        doc = await first_document()
                        break
                    except AssertionError:
                        # the server sees the closed streams once its I/O is polled
                        await trio.testing.wait_all_tasks_blocked(cushion=0.01)
            assert doc["node"]["peer_id"] == running.node.node_id
        stop.set()


async def _hold_stream(client: httpx.AsyncClient, ready: trio.Event, done: trio.Event) -> None:
    async with client.stream("GET", "/v1/ui/events") as stream:
        assert stream.status_code == 200
        ready.set()
        await done.wait()


async def _chunks(data: bytes) -> AsyncIterator[bytes]:
    yield data[:100]
    yield data[100:]


async def test_upload_dir_refuses_oversize_and_a_second_upload_at_once(tmp_path: Path) -> None:
    uploads = UploadDir(tmp_path / "scenes", max_bytes=1000, keep=2)

    async def body(*parts: bytes) -> AsyncIterator[bytes]:
        for part in parts:
            yield part

    with pytest.raises(UploadRefused) as too_big:
        await uploads.save("a.blend", body(BLEND[:600], BLEND[600:1200]))
    assert too_big.value.status == 413
    assert list((tmp_path / "scenes").iterdir()) == []  # the partial file is gone
    gate = trio.Event()

    async def slow() -> AsyncIterator[bytes]:
        yield BLEND[:10]
        await gate.wait()

    async with trio.open_nursery() as nursery:
        nursery.start_soon(uploads.save, "slow.blend", slow())
        await trio.testing.wait_all_tasks_blocked()
        with pytest.raises(UploadRefused) as busy:
            await uploads.save("b.blend", body(BLEND[:10]))
        assert busy.value.status == 429
        gate.set()
    saved = await uploads.save("c.blend", body(b"\x28\xb5\x2f\xfd" + bytes(10)))  # zstd .blend
    assert saved.path.exists()


async def test_guard_counts_a_streamed_body_against_what_it_declared() -> None:
    """A client that sends more than its Content-Length never gets past the count."""
    seen: list[int] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        size = 0
        try:
            while True:
                message = await receive()
                size += len(message.get("body", b""))
                if not message.get("more_body"):
                    break
        except BodyOverLimit:
            seen.append(-1)
            return
        seen.append(size)

    guard = ApiGuard(app, "t", streamed={"/up": 10})
    messages = [{"type": "http.request", "body": b"x" * 8, "more_body": True},
                {"type": "http.request", "body": b"x" * 8, "more_body": False}]  # fmt: skip

    async def receive() -> dict[str, Any]:
        return messages.pop(0)

    sent: list[dict[str, Any]] = []

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    headers = [(b"authorization", b"Bearer t"), (b"content-length", b"10")]
    scope = {"type": "http", "method": "POST", "path": "/up", "headers": headers}
    await guard(scope, receive, send)
    assert seen == [-1]
    scope["headers"] = [(b"authorization", b"Bearer t"), (b"content-length", b"11")]
    await guard(scope, receive, send)
    assert sent[0]["status"] == 413 and seen == [-1]  # refused before the app ran


async def test_pictor_ui_prints_a_login_link_with_the_token_in_the_fragment(tmp_path: Path) -> None:
    config = config_for(tmp_path)
    token = read_secret_file(config.api_token_path)
    runner = CliRunner()
    down = await trio.to_thread.run_sync(
        lambda: runner.invoke(cli, ["ui", "--data-dir", str(tmp_path)])
    )
    assert down.exit_code == 1 and "pictor node run" in down.output  # the next command to run
    stop = trio.Event()
    async with trio.open_nursery() as nursery:
        running = await nursery.start(run_node, config, stop)
        result = await trio.to_thread.run_sync(
            lambda: runner.invoke(cli, ["ui", "--data-dir", str(tmp_path)])
        )
        assert result.exit_code == 0, result.output
        assert f"{running.api_url}/ui/#token={token}" in result.output
        stop.set()

"""Local API: bearer auth (401 without/with a bad token), views, metrics, OpenAPI."""

from __future__ import annotations

from pathlib import Path

import httpx
import trio
from node_helpers import make_config
from typer.testing import CliRunner

from node.app.run import run_node
from node.cli.init_cmd import init
from node.cli.main import app
from node.keyfile import read_secret_file


async def test_api_auth_views_metrics(tmp_path: Path) -> None:
    init(tmp_path)
    config = make_config(tmp_path)
    token = read_secret_file(config.api_token_path)
    stop = trio.Event()
    async with trio.open_nursery() as nursery:
        running = await nursery.start(run_node, config, stop)
        assert config.api_addr_path.read_text().strip() == running.api_url
        async with httpx.AsyncClient(base_url=running.api_url) as client:
            assert (await client.get("/v1/status")).status_code == 401
            bad = {"Authorization": "Bearer nope"}
            assert (await client.get("/v1/peers", headers=bad)).status_code == 401
            assert (await client.get("/metrics", headers=bad)).status_code == 401
            auth = {"Authorization": f"Bearer {token}"}
            status = (await client.get("/v1/status", headers=auth)).json()
            assert status["node_id"] == running.node.node_id
            assert status["connected_peers"] == 0
            for path in ("/v1/peers", "/v1/network", "/v1/jobs", "/v1/tasks", "/v1/results"):
                response = await client.get(path, headers=auth)
                assert response.status_code == 200, path
                assert response.json() == []
            metrics = (await client.get("/metrics", headers=auth)).text
            assert "pictor_peers 0.0" in metrics
            assert "# HELP pictor_messages_rejected_total Refused inbound messages" in metrics
            openapi = (await client.get("/openapi.json")).json()
            assert "/v1/network" in openapi["paths"]
            for cdn_page in ("/docs", "/redoc"):  # they load Swagger UI / ReDoc from a CDN
                assert (await client.get(cdn_page)).status_code in (401, 404)
        stop.set()
    assert not config.api_addr_path.exists()
    assert token not in (tmp_path / "config.toml").read_text()


async def test_cli_tables_over_the_api(tmp_path: Path) -> None:
    init(tmp_path)
    config = make_config(tmp_path)
    stop = trio.Event()
    runner = CliRunner()

    def cli(*args: str) -> str:
        result = runner.invoke(app, [*args, "--data-dir", str(tmp_path)], env={"COLUMNS": "250"})
        assert result.exit_code == 0, result.output
        return result.output

    async with trio.open_nursery() as nursery:
        running = await nursery.start(run_node, config, stop)
        # The CLI is synchronous (httpx): run it off the trio thread serving the API.
        status = await trio.to_thread.run_sync(cli, "status")
        assert running.node.node_id in status
        running.node.scorer.penalize("12D3KooWhostile", 30, "bad_signature", trio.current_time())
        peers = await trio.to_thread.run_sync(cli, "peers")
        assert "12D3KooWhostile" in peers
        assert "bad_signature=1" in peers
        network = await trio.to_thread.run_sync(cli, "network")
        assert "free" in network  # table header; no peers yet
        stop.set()


def test_status_shows_work_and_earnings_in_exact_eth() -> None:
    from node.cli.status_cmd import _work_rows

    roles = {"worker": {"rendered": 7, "rendering": 1}, "checker": {"checked": 3},
             "payee": {"paid_wei": 1_760_000_000_000_000_000, "owed_wei": 1}}  # fmt: skip
    assert _work_rows(roles) == [
        ("frames rendered", "7"), ("frames checked", "3"),
        ("earned (paid on chain)", "1.76 ETH"), ("owed (vouchers held)", "0.000000000000000001 ETH"),
    ]  # fmt: skip
    unpaid = _work_rows({"worker": {"rendered": 0, "rendering": 0}, "checker": None, "payee": None})
    assert unpaid[-1][0] == "earned" and "no chain" in unpaid[-1][1]
    assert _work_rows(None) == []

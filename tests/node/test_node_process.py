"""``pictor node run`` as real OS processes: discovery across processes, graceful
SIGTERM, SIGKILL crash recovery, CLI error messages."""

from __future__ import annotations

import json
import signal
import sqlite3
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import trio
from typer.testing import CliRunner, Result

from node.cli.init_cmd import init
from node.cli.main import app
from node.keyfile import read_secret_file

REPO = Path(__file__).resolve().parents[2]
# `pictor node` without importing every other command group (web3 etc.): seconds saved.
PICTOR_NODE = [
    sys.executable,
    "-c",
    "from node.cli.node_cmd import app; app(prog_name='pictor node')",
]


@dataclass
class NodeProcess:
    process: trio.Process
    data_dir: Path
    node_id: str
    api: str
    addrs: list[str]

    async def get(self, path: str, timeout_s: float = 30) -> Any:
        token = read_secret_file(self.data_dir / "api.token")
        async with httpx.AsyncClient(base_url=self.api, timeout=timeout_s) as client:
            response = await client.get(path, headers={"Authorization": f"Bearer {token}"})
            response.raise_for_status()
            return response.json()

    async def network(self, min_peers: int) -> set[str]:
        adverts = await self.get(f"/v1/network?min_peers={min_peers}&wait_s=25")
        return {a["peer_id"] for a in adverts}


async def _read_ready_line(process: trio.Process) -> dict[str, Any]:
    buffer = b""
    assert process.stdout is not None
    while b"\n" not in buffer:
        chunk = await process.stdout.receive_some(4096)
        assert chunk, "node exited before it was ready"
        buffer += chunk
    return dict(json.loads(buffer.split(b"\n", 1)[0]))


@asynccontextmanager
async def node_process(data_dir: Path, *args: str) -> AsyncIterator[NodeProcess]:
    if not (data_dir / "node.key").exists():
        init(data_dir)
    command = [
        *PICTOR_NODE,
        "run",
        "--data-dir",
        str(data_dir),
        "--api-port",
        "0",
        "--no-mdns",
        "--listen",
        "/ip4/127.0.0.1/tcp/0",
        *args,
    ]
    process = await trio.lowlevel.open_process(command, cwd=REPO, stdout=subprocess.PIPE)
    try:
        with trio.fail_after(30):
            ready = await _read_ready_line(process)
        yield NodeProcess(process, data_dir, ready["node_id"], ready["api"], ready["addrs"])
    finally:
        if process.returncode is None:
            process.kill()
        await process.wait()


async def _terminate(node: NodeProcess) -> int:
    node.process.send_signal(signal.SIGTERM)
    with trio.fail_after(15):
        return await node.process.wait()


@pytest.mark.slow
async def test_processes_discover_each_other_survive_sigkill_and_stop_cleanly(
    tmp_path: Path,
) -> None:
    async with (
        node_process(tmp_path / "a") as a,
        node_process(tmp_path / "b", "--bootstrap", a.addrs[0]) as b,
        node_process(tmp_path / "c", "--bootstrap", a.addrs[0], "--worker") as c,
    ):
        assert await a.network(2) == {b.node_id, c.node_id}
        assert await b.network(2) == {a.node_id, c.node_id}
        assert await c.network(2) == {a.node_id, b.node_id}

        # SIGKILL c mid-flight; its store must open consistent and keep what it learnt.
        c.process.kill()
        await c.process.wait()
        db = sqlite3.connect(tmp_path / "c" / "node.sqlite3")
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        known = {row[0] for row in db.execute("SELECT peer_id FROM peers WHERE advert IS NOT NULL")}
        assert {a.node_id, b.node_id} <= known
        db.close()

        # Restart without --bootstrap: it redials the peers persisted in its store.
        async with node_process(tmp_path / "c") as c2:
            assert c2.node_id == c.node_id
            assert await c2.network(2) == {a.node_id, b.node_id}
            assert await _terminate(c2) == 0
            assert not (tmp_path / "c" / "api.addr").exists()
        assert await _terminate(b) == 0
        assert await _terminate(a) == 0


def _cli(*args: str) -> Result:
    # In-process: a subprocess would spend seconds importing every command group.
    return CliRunner().invoke(app, list(args), env={"COLUMNS": "200"})


def test_cli_errors_say_what_to_do(tmp_path: Path) -> None:
    missing = _cli("node", "run", "--data-dir", str(tmp_path / "none"))
    assert missing.exit_code == 2
    assert "pictor init --data-dir" in missing.stderr
    init(tmp_path)
    (tmp_path / "config.toml").write_text("api_port = 'high'\n")
    bad = _cli("node", "run", "--data-dir", str(tmp_path))
    assert bad.exit_code == 2
    assert "bad value 'high' for 'api_port'" in bad.stderr
    (tmp_path / "config.toml").write_text("api_port = 1\n")  # nothing listens there
    down = _cli("status", "--data-dir", str(tmp_path))
    assert down.exit_code == 1
    assert "node not running at http://127.0.0.1:1" in down.stderr
    assert "pictor node run" in down.stderr
    (tmp_path / "node.key").chmod(0o644)
    exposed = _cli("node", "run", "--data-dir", str(tmp_path), "--api-port", "0")
    assert exposed.exit_code == 2
    assert "chmod 600" in exposed.stderr

"""`pictor devnet up` leaves a running network behind; `down` stops every process of it."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from node.cli.devnet import _alive
from node.devnet.api import NodeApi
from node.devnet.network import node_env, pictor_argv
from tests.e2e.conftest import needs_stack

pytestmark = [pytest.mark.slow, needs_stack]


def test_devnet_up_then_down(tmp_path: Path) -> None:
    base = tmp_path / "devnet"
    up = subprocess.run([*pictor_argv(), "devnet", "up", "--workers", "1", "--checkers", "1",
                         "--dir", str(base)], capture_output=True, text=True, timeout=180,
                        env=node_env(), check=False)  # fmt: skip
    assert up.returncode == 0, up.stdout + up.stderr
    # the copy-paste command is one line even when stdout is a pipe (rich wrapped it at 80)
    client_dir = str(base / "client")
    (line,) = [ln for ln in up.stdout.splitlines() if "pictor job submit" in ln]
    assert line.strip().endswith(f"--data-dir {client_dir}"), up.stdout
    state = json.loads((base / "devnet.json").read_text())
    assert set(state["nodes"]) == {"client", "worker1", "checker1"}
    status = NodeApi.for_data_dir(Path(state["nodes"]["client"]["data_dir"])).get("/v1/status")
    assert status["node_id"] == state["nodes"]["client"]["node_id"]
    pids = [n["pid"] for n in state["nodes"].values()] + [state["supervisor_pid"]]
    assert all(_alive(pid) for pid in pids)
    down = subprocess.run([*pictor_argv(), "devnet", "down", "--dir", str(base)],
                          capture_output=True, text=True, timeout=90, env=node_env(), check=False)  # fmt: skip
    assert down.returncode == 0, down.stdout + down.stderr
    assert not any(_alive(pid) for pid in pids)
    assert not (base / "devnet.json").exists()

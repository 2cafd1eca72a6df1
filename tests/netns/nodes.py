"""Real ``pictor coordinator run`` / ``pictor node run`` processes inside the harness's namespaces."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from node.cli.init_cmd import init
from node.devnet.api import NodeApi
from node.keyfile import read_secret_file
from tests.netns.harness import Host

COORDINATOR_PORT = 4001
_CLI = "from node.cli.{module} import app; app(prog_name='pictor {name}')"


@dataclass
class Running:
    host: Host
    process: subprocess.Popen[str]
    data_dir: Path
    node_id: str
    api_url: str
    addrs: list[str]

    def api(self) -> NodeApi:
        return NodeApi(self.api_url, read_secret_file(self.data_dir / "api.token"))

    def get(self, path: str) -> Any:
        return self.host.call(self.api().get, path)

    def wait_until(self, path: str, predicate: Any, timeout_s: float = 60) -> Any:
        return self.host.call(self.api().wait_until, path, predicate, timeout_s)


def _start(host: Host, argv: list[str], data_dir: Path, env: dict[str, str]) -> Running:
    if not (data_dir / "node.key").exists():
        init(data_dir)
    data_dir.mkdir(parents=True, exist_ok=True)
    log = (data_dir / "node.log").open("a")  # what went wrong, for the failing test's reader
    process = host.popen(argv, stdout=subprocess.PIPE, stderr=log, text=True, env=env)
    log.close()
    assert process.stdout is not None
    line = process.stdout.readline()  # the ready line, or "" when it died first
    if not line:
        raise RuntimeError(f"{argv[3:5]} exited before it was ready: rc={process.wait()}, "
                           f"see {data_dir / 'node.log'}")  # fmt: skip
    ready = json.loads(line)
    return Running(host, process, data_dir, ready["node_id"], ready["api"], ready["addrs"])


def start_coordinator(
    host: Host, data_dir: Path, env: dict[str, str], port: int = COORDINATOR_PORT, *flags: str
) -> Running:
    argv = [sys.executable, "-c", _CLI.format(module="coordinator_cmd", name="coordinator"),
            "run", "--data-dir", str(data_dir), "--api-port", "0",
            "--listen", f"/ip4/{host.ip}/tcp/{port}", *flags]  # fmt: skip
    return _start(host, argv, data_dir, env)


def start_node(
    host: Host, data_dir: Path, env: dict[str, str], bootstrap: str | None, *flags: str
) -> Running:
    """``pictor node run`` in ``host``; ``bootstrap`` None: the data dir's config says."""
    argv = [sys.executable, "-c", _CLI.format(module="node_cmd", name="node"),
            "run", "--data-dir", str(data_dir), "--api-port", "0", "--no-mdns",
            "--listen", "/ip4/0.0.0.0/tcp/4001", *flags]  # fmt: skip
    if bootstrap is not None:
        argv += ["--bootstrap", bootstrap]
    return _start(host, argv, data_dir, env)

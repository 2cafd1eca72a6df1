"""``LocalDevnet``: anvil with the escrow deployed, plus N ``pictor node run`` processes.

Every node gets its own data directory (keys from ``pictor init``; its payment
key replaced by one of anvil's funded dev keys), listens on loopback with an
ephemeral port, dials the first node, and settles on the local chain. Nodes
are real OS processes, so tests can kill one (SIGKILL) and restart it on the
same data directory. The dev keys are anvil's public mnemonic: never use them
on a real chain.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from ledger.anvil import AnvilChain
from ledger.deploy import EscrowParams
from ledger.devnet import Devnet, bring_up, stake_checker
from node.devnet.api import NodeApi
from node.keyfile import write_payment_key_file

READY_TIMEOUT_S = 60.0


def node_env() -> dict[str, str]:
    """The environment for node processes: no ``PICTOR_*`` variables, which a node
    would read as config (and refuse when unknown); each node's config.toml rules."""
    return {k: v for k, v in os.environ.items() if not k.startswith("PICTOR_")}


def pictor_argv() -> list[str]:
    script = Path(sys.executable).with_name("pictor")
    return [str(script)] if script.exists() else [shutil.which("pictor") or "pictor"]


@dataclass
class DevnetNode:
    name: str
    data_dir: Path
    roles: tuple[str, ...]
    process: subprocess.Popen[str] | None = None
    api: NodeApi | None = None
    addrs: list[str] = field(default_factory=list)
    node_id: str = ""

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process else None


@dataclass(frozen=True)
class DevnetConfig:
    workers: int = 3
    checkers: int = 1
    lease_s: float = 20.0
    # 0.1 ETH a frame (its scenes are 1 RU: protocol.cost): fees clear the redeem policy's gas bar
    price_wei_per_ru: int = 10**17
    render_threads: int = 0
    adversaries: dict[str, str] = field(default_factory=dict)  # node name -> mode
    # node name -> config.toml settings over the devnet's own (a test's plant rate, ...)
    node_settings: dict[str, dict[str, Any]] = field(default_factory=dict)
    # Given anvil's URL, the URL nodes dial for the chain (a test puts a proxy there).
    rpc_route: Callable[[str], str] | None = None
    grace_s: int = 3600

    def roles(self) -> list[tuple[str, tuple[str, ...]]]:
        """Each node's name and roles, in the order they start."""
        names: list[tuple[str, tuple[str, ...]]] = [("client", ("client",))]
        names += [(f"worker{i + 1}", ("worker",)) for i in range(self.workers)]
        names += [(f"checker{i + 1}", ("checker",)) for i in range(self.checkers)]
        return names


class LocalDevnet:
    def __init__(self, base_dir: Path, config: DevnetConfig) -> None:
        self.base_dir = base_dir
        self.config = config
        self.chain: AnvilChain | None = None
        self.info: Devnet | None = None
        self.nodes: dict[str, DevnetNode] = {}
        self.node_rpc_url = ""

    def __enter__(self) -> LocalDevnet:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> None:
        self.base_dir.mkdir(parents=True, exist_ok=True)
        accounts = 2 + self.config.workers + self.config.checkers
        self.chain, self.info = bring_up(EscrowParams(grace_s=self.config.grace_s), accounts)
        route = self.config.rpc_route
        self.node_rpc_url = route(self.info.rpc_url) if route else self.info.rpc_url
        names = self.config.roles()
        try:
            for index, (name, roles) in enumerate(names):
                if "checker" in roles:
                    assert self.info is not None
                    stake_checker(self.chain, self.info.escrow, self.chain.funded_keys[index + 1])
                node = self._prepare(name, roles, self.chain.funded_keys[index + 1])
                self.nodes[name] = node
                self.launch(name)
        except BaseException:
            self.stop()
            raise

    def _prepare(self, name: str, roles: tuple[str, ...], payment_key: bytes) -> DevnetNode:
        data_dir = self.base_dir / name
        subprocess.run([*pictor_argv(), "init", "--data-dir", str(data_dir)],
                       check=True, capture_output=True, env=node_env())  # fmt: skip
        (data_dir / "payment.key").unlink()
        write_payment_key_file(data_dir / "payment.key", payment_key)
        assert self.info is not None
        settings: dict[str, Any] = {
            "listen_addrs": ["/ip4/127.0.0.1/tcp/0"], "api_port": 0, "mdns": False,
            "roles": list(roles), "advert_interval_s": 2.0, "chain_rpc_url": self.node_rpc_url,
            "chain_id": self.info.chain_id, "escrow_address": self.info.escrow,
            "price_wei_per_ru": self.config.price_wei_per_ru, "lease_s": self.config.lease_s,
            "render_threads": self.config.render_threads, "log_json": True,
        }  # fmt: skip
        if mode := self.config.adversaries.get(name):
            settings["adversary"] = mode
        settings.update(self.config.node_settings.get(name, {}))
        (data_dir / "config.toml").write_text(
            "".join(f"{k} = {json.dumps(v)}\n" for k, v in settings.items())
        )
        return DevnetNode(name, data_dir, roles)

    def launch(self, name: str) -> DevnetNode:
        """Start (or restart) node ``name`` and wait for its ready line."""
        node = self.nodes[name]
        argv = [*pictor_argv(), "node", "run", "--data-dir", str(node.data_dir)]
        # Dial a running peer: the first node for a fresh start, any live one on a restart.
        peers = [n for n in self.nodes.values() if n is not node and n.addrs and n.running]
        if peers:
            argv += ["--bootstrap", peers[0].addrs[0]]
        log: IO[str] = (node.data_dir / "node.log").open("a")
        node.process = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=log, text=True,
                                        start_new_session=True, env=node_env())  # fmt: skip
        ready = _read_ready(node.process)
        node.addrs, node.node_id = ready["addrs"], ready["node_id"]
        node.api = NodeApi.for_data_dir(node.data_dir)
        return node

    def kill(self, name: str, sig: int = signal.SIGKILL) -> None:
        node = self.nodes[name]
        if node.process is not None and node.process.poll() is None:
            os.killpg(node.process.pid, sig)
            node.process.wait(timeout=30)

    def stop(self) -> None:
        for node in self.nodes.values():
            if node.process is not None and node.process.poll() is None:
                node.process.send_signal(signal.SIGTERM)
        for node in self.nodes.values():
            if node.process is not None:
                try:
                    node.process.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    os.killpg(node.process.pid, signal.SIGKILL)
                    node.process.wait()
        if self.chain is not None:
            self.chain.close()
            self.chain = None

    def api(self, name: str) -> NodeApi:
        api = self.nodes[name].api
        assert api is not None, f"{name} is not running"
        return api

    def state(self) -> dict[str, Any]:
        assert self.info is not None
        return {
            "rpc_url": self.info.rpc_url, "chain_id": self.info.chain_id,
            "escrow": self.info.escrow,
            "nodes": {n.name: {"data_dir": str(n.data_dir), "roles": list(n.roles), "pid": n.pid,
                               "api": n.api.base_url if n.api else None, "node_id": n.node_id}
                      for n in self.nodes.values()},
        }  # fmt: skip


def _read_ready(process: subprocess.Popen[str]) -> dict[str, Any]:
    assert process.stdout is not None
    for line in process.stdout:
        if line.startswith("{"):
            info: dict[str, Any] = json.loads(line)
            if info.get("event") == "ready":
                return info
    raise RuntimeError(f"node exited (code {process.wait()}) before it was ready; see node.log")

"""A verified, paid job between nodes behind three different NATs, relayed by two
coordinators; one coordinator is killed mid-job and the job still completes.

Requester behind NAT 1, worker behind NAT 2, checker behind NAT 3: no two of them
can dial each other, so every market message and every byte of scene and frames
starts through a relay; DCUtR hole punching (on by default) then connects them
directly. The chain (anvil, on this machine's loopback) is reached at the public
namespace's address through a forwarder.
"""

from __future__ import annotations

import json
import shutil
import signal
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from eth_utils import to_canonical_address

from ledger.anvil import AnvilChain, find_anvil
from ledger.client import EscrowClient
from ledger.deploy import EscrowParams
from ledger.devnet import Devnet, bring_up, stake_checker
from ledger.tx import TxSender
from node.cli.init_cmd import init
from node.devnet.network import node_env
from node.devnet.scene import build_scene
from node.keyfile import write_payment_key_file
from tests.netns.harness import PUBLIC_IP, Internet, forward
from tests.netns.nodes import Running, start_coordinator, start_node

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        shutil.which("blender") is None or find_anvil() is None, reason="needs blender and anvil"
    ),
]
JOB_TIMEOUT_S = 240.0
RPC_PORT = 8545


@pytest.fixture
def chain() -> Iterator[tuple[AnvilChain, Devnet]]:
    anvil, info = bring_up(EscrowParams(grace_s=3600), accounts=5)
    try:
        yield anvil, info
    finally:
        anvil.close()


def _configure(data_dir: Path, roles: list[str], key: bytes, info: Devnet, boot: list[str]) -> None:
    init(data_dir)
    (data_dir / "payment.key").unlink()
    write_payment_key_file(data_dir / "payment.key", key)
    settings: dict[str, Any] = {
        "roles": roles, "bootstrap": boot, "reachability": "private", "advert_interval_s": 2.0,
        "chain_rpc_url": f"http://{PUBLIC_IP}:{RPC_PORT}", "chain_id": info.chain_id,
        "escrow_address": info.escrow, "price_wei_per_ru": 10**16, "lease_s": 20.0,
    }  # fmt: skip
    (data_dir / "config.toml").write_text(
        "".join(f"{k} = {json.dumps(v)}\n" for k, v in settings.items())
    )


def _seen(adverts: list[dict[str, Any]], *peers: str) -> bool:
    return set(peers) <= {a["peer_id"] for a in adverts}


def test_job_across_three_nats_is_paid_and_outlives_a_coordinator(
    internet: Internet, chain: tuple[AnvilChain, Devnet], tmp_path: Path
) -> None:
    anvil, info = chain
    public = internet.public
    assert public is not None and anvil.rpc_url is not None
    listener = public.call(socket.create_server, (public.ip, RPC_PORT))
    forward(listener, ("127.0.0.1", int(anvil.rpc_url.rsplit(":", 1)[1])))
    scene = build_scene(tmp_path / "scene.blend", 4)
    env = node_env()
    coordinators = [start_coordinator(public, tmp_path / f"c{i}", env, 4001 + i) for i in (0, 1)]
    boot = [next(a for a in c.addrs if public.ip in a) for c in coordinators]
    homes = [internet.add_home() for _ in range(3)]
    nodes: dict[str, Running] = {}
    for index, (name, home) in enumerate(zip(("client", "worker", "checker"), homes, strict=True)):
        _configure(tmp_path / name, [name], anvil.funded_keys[index + 1], info, boot)
        if name == "checker":  # requesters ask only checkers whose stake covers a pass claim
            stake_checker(anvil, info.escrow, anvil.funded_keys[index + 1])
        nodes[name] = start_node(home, tmp_path / name, env, None)
    client, worker, checker = nodes["client"], nodes["worker"], nodes["checker"]
    client.wait_until("/v1/network", lambda v: _seen(v, worker.node_id, checker.node_id), 90)

    out = tmp_path / "out"
    job_id = client.host.call(client.api().post, "/v1/client/jobs", {
        "scene": str(scene), "frames": [1, 2, 3, 4], "max_price_wei_per_frame": 2 * 10**17,
        "out_dir": str(out), "resolution": [64, 48], "samples": 8,
    })["job_id"]  # fmt: skip
    started = client.wait_until(f"/v1/client/jobs/{job_id}",
                                lambda j: j["frames_accepted"] >= 1, JOB_TIMEOUT_S)  # fmt: skip
    coordinators[0].process.send_signal(signal.SIGKILL)
    coordinators[0].process.wait(timeout=10)
    assert started["outcome"] is None and started["frames_accepted"] < 4  # killed mid-job

    job = client.host.call(client.api().wait_job, job_id, JOB_TIMEOUT_S)
    assert job["outcome"] == "completed"
    assert sorted(p.name for p in out.glob("*.png")) == [f"frame_{i:04d}.png" for i in (1, 2, 3, 4)]
    for payee in (worker, checker):
        payee.wait_until("/v1/roles", lambda r: r["payee"]["owed_wei"] == 0, JOB_TIMEOUT_S)
    escrow = EscrowClient(TxSender(anvil.w3, anvil.funded_keys[0]), info.escrow)
    requester = to_canonical_address(client.get("/v1/roles")["payment_address"])
    on_chain = sum(
        escrow.paid_wei(bytes.fromhex(job_id),
                        to_canonical_address(p.get("/v1/roles")["payment_address"]), requester)
        for p in (worker, checker)
    )  # fmt: skip
    assert on_chain == job["spent_wei"] > 0
    # The nodes dropped the dead relay's address and kept the live one's.
    dead = coordinators[0].node_id
    for node in nodes.values():
        node.wait_until("/v1/status", lambda s: s["listen_addrs"] and not [
            a for a in s["listen_addrs"] if dead in a], 30)  # fmt: skip

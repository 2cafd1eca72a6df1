"""A worker started alone says it is unreachable and unpaid, and how to fix each (issue 19 item 8)."""

from __future__ import annotations

from pathlib import Path

from node.cli.node_cmd import standalone_warnings
from node.config import NodeConfig
from protocol.messages import Role


def test_lone_worker_without_chain_is_told_it_is_unreachable_and_unpaid(tmp_path: Path) -> None:
    lone = NodeConfig(tmp_path, roles=(Role.WORKER,), mdns=False)
    warnings = standalone_warnings(lone)
    assert len(warnings) == 2
    assert "this node dials nobody" in warnings[0] and "--bootstrap" in warnings[0]
    assert "not paid" in warnings[1] and "chain_rpc_url" in warnings[1]
    lan = standalone_warnings(NodeConfig(tmp_path, roles=(Role.WORKER,), mdns=True))
    assert "only nodes on this LAN that mDNS finds" in lan[0]
    local = NodeConfig(tmp_path, roles=(Role.CHECKER,), listen_addrs=("/ip4/127.0.0.1/tcp/0",))
    assert any("loopback only" in w for w in standalone_warnings(local))


def test_connected_paid_worker_and_a_client_get_no_warning(tmp_path: Path) -> None:
    ready = NodeConfig(tmp_path, roles=(Role.WORKER,), bootstrap=("/ip4/192.0.2.1/tcp/4001/p2p/x",),
                       chain_rpc_url="http://127.0.0.1:8545")  # fmt: skip
    assert standalone_warnings(ready) == []
    assert standalone_warnings(NodeConfig(tmp_path, roles=(Role.CLIENT,))) == []

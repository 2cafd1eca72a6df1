"""Reachability across NAT, measured in network namespaces (root; see tests/netns/harness.py).

    sudo .venv/bin/python bench/reach.py [--attempts 20] [--mib 16]

Builds a public namespace with a ``pictor coordinator run`` process and two
homes behind nft masquerade routers, then measures, printing one JSON object:

* ``first_advert_s``: from starting node B (behind NAT 2, reachability auto)
  to node A (behind NAT 1) holding B's advert with a relay address;
* ``autonat``: what a node behind NAT hears from py-libp2p 0.8.1's stock
  AutoNAT server and from the coordinator's ``DialBackAutoNAT``;
* ``hole_punch``: DCUtR attempts between fresh hosts behind the two NATs and
  how many ended with a direct connection;
* ``relay_mib_s`` / ``direct_mib_s``: one stream of ``--mib`` MiB from home 2
  to home 1 through the relay, and from home 2 to a host in the public
  namespace (direct, through NAT 2 only); ``quic_mib_s``: the same direct
  path over py-libp2p's QUIC instead of TCP;
* ``dht_find_s``: a fresh host behind NAT 2 that knows only the coordinator
  finds node A (behind NAT 1, private) through the DHT — rendezvous, then
  peer routing — and connects to its relay address.
"""

from __future__ import annotations

import argparse
import json
import os
import queue
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import trio

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from libp2p.host.autonat import AutoNATService

from node.net.libp2p_net import Libp2pNetwork, Libp2pSettings, open_libp2p_network
from node.net.port import ByteStream
from node.net.reachability import DialBackAutoNAT, ask_reachability
from node.net.relay import is_circuit
from protocol import NodeKey
from tests.netns.harness import Host, Internet, unavailable_reason
from tests.netns.nodes import start_coordinator, start_node

SINK = "/pictor-bench/sink/1"
CHUNK = 1 << 16


def first_advert_s(net: Internet, tmp: Path, boot: str) -> float:
    env = dict(os.environ)
    home_a, home_b = net.homes
    a = start_node(home_a, tmp / "a", env, boot, "--reachability", "private")
    started = time.monotonic()
    b = start_node(home_b, tmp / "b", env, boot)

    def b_with_circuit(adverts: list[dict[str, Any]]) -> bool:
        return any(x["peer_id"] == b.node_id and any(is_circuit(s) for s in x["addrs"])
                   for x in adverts)  # fmt: skip

    a.wait_until("/v1/network", b_with_circuit, 120)
    took = time.monotonic() - started
    for running in (a, b):
        running.process.terminate()
        running.process.wait(timeout=15)
    return round(took, 2)


def run_pair(
    server_host: Host,
    server: Callable[[queue.Queue[Any], threading.Event], Any],
    client_host: Host,
    client: Callable[[queue.Queue[Any]], Any],
) -> Any:
    """``server`` (async, in its namespace) hands what the client needs through a queue
    and runs until ``stop``; ``client`` (async, in its namespace) returns the result."""
    handoff: queue.Queue[Any] = queue.Queue()
    stop = threading.Event()
    errors: list[BaseException] = []

    def serve() -> None:
        try:
            server_host.call(trio.run, server, handoff, stop)
        except BaseException as exc:  # reported by the caller
            errors.append(exc)
            handoff.put(None)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        return client_host.call(trio.run, client, handoff)
    finally:
        stop.set()
        thread.join(60)
        if errors:
            raise errors[0]


async def _until(stop: threading.Event) -> None:
    await trio.to_thread.run_sync(stop.wait)


def _settings(listen: str, hole_punch: bool = False, quic: bool = False) -> Libp2pSettings:
    return Libp2pSettings(listen_addrs=(listen,), hole_punch=hole_punch, quic=quic)


def autonat(net: Internet) -> dict[str, str | None]:
    """What a host behind NAT 1 is told by a stock and by the coordinator's AutoNAT server."""
    assert net.public is not None
    ip = net.public.ip

    async def servers(handoff: queue.Queue[Any], stop: threading.Event) -> None:
        async with (
            open_libp2p_network(NodeKey.generate(), _settings(f"/ip4/{ip}/tcp/4101")) as stock,
            open_libp2p_network(NodeKey.generate(), _settings(f"/ip4/{ip}/tcp/4102")) as fixed,
        ):
            AutoNATService(stock.host)
            DialBackAutoNAT(fixed.host)
            handoff.put({"stock": stock.listen_addrs()[-1], "fixed": fixed.listen_addrs()[-1]})
            await _until(stop)

    async def client(handoff: queue.Queue[Any]) -> dict[str, str | None]:
        addrs = await trio.to_thread.run_sync(handoff.get)
        results: dict[str, str | None] = {}
        async with open_libp2p_network(
            NodeKey.generate(), _settings("/ip4/0.0.0.0/tcp/4103")
        ) as me:
            for name, addr in addrs.items():
                peer = await me.connect(addr)
                with trio.move_on_after(5):  # identify's observed address comes after connect
                    while not me.host._observed_addr_manager.addrs(min_observers=1):
                        await trio.sleep(0.05)
                results[name] = await ask_reachability(me.host, peer)
        return results

    return dict(run_pair(net.public, servers, net.homes[0], client))


async def _sink(peer: str, stream: ByteStream) -> None:
    total = 0
    while chunk := await stream.receive_some(CHUNK):
        total += len(chunk)
    await stream.send_all(total.to_bytes(8, "big"))
    await stream.aclose()


async def _send(network: Libp2pNetwork, peer: str, mib: int) -> float:
    """MiB/s of one stream of ``mib`` MiB to ``peer``, counted when the sink has it all."""
    stream = await network.open_stream(peer, SINK)
    block = os.urandom(CHUNK)
    started = trio.current_time()
    for _ in range(mib * (1 << 20) // CHUNK):
        await stream.send_all(block)
    await stream._stream.close_write()  # type: ignore[attr-defined]  # the sink answers (QUIC: close() closes both ways)
    answer = b""
    while len(answer) < 8 and (chunk := await stream.receive_some(8)):
        answer += chunk
    assert int.from_bytes(answer, "big") == mib << 20
    return mib / (trio.current_time() - started)


def throughput(net: Internet, boot: str, mib: int, relayed: bool, quic: bool = False) -> float:
    """Home 2 sends ``mib`` MiB to home 1 through the relay, or to the public namespace."""
    assert net.public is not None
    server_host = net.homes[0] if relayed else net.public
    listen = "/ip4/0.0.0.0/tcp/4201" if relayed else f"/ip4/{net.public.ip}/tcp/4201"

    async def server(handoff: queue.Queue[Any], stop: threading.Event) -> None:
        async with open_libp2p_network(NodeKey.generate(), _settings(listen, quic=quic)) as me:
            me.set_stream_handler(SINK, _sink)
            addrs = [a for a in me.listen_addrs() if ("/quic-v1/" in a) == quic]
            addr = await me.relaying.reserve(boot) if relayed else addrs[-1]  # type: ignore[union-attr]
            handoff.put((addr, me.local_peer))
            await _until(stop)

    async def client(handoff: queue.Queue[Any]) -> float:
        addr, peer = await trio.to_thread.run_sync(handoff.get)
        settings = _settings("/ip4/0.0.0.0/tcp/0", quic=quic)
        async with open_libp2p_network(NodeKey.generate(), settings) as me:
            await me.connect(addr)
            return round(await _send(me, peer, mib), 1)

    return float(run_pair(server_host, server, net.homes[1], client))


def hole_punch(net: Internet, boot: str, attempts: int, wait_s: float = 10.0) -> dict[str, Any]:
    """Fresh hosts behind NAT 1 and 2, relayed connection, then DCUtR; direct within wait_s?"""

    async def server(handoff: queue.Queue[Any], stop: threading.Event) -> None:
        for i in range(attempts):
            settings = _settings(f"/ip4/0.0.0.0/tcp/{4300 + i}", hole_punch=True)
            async with open_libp2p_network(NodeKey.generate(), settings) as me:
                assert me.relaying is not None
                handoff.put((await me.relaying.reserve(boot), me.local_peer))
                await trio.to_thread.run_sync(handoff.join)  # the client's attempt is over
            if stop.is_set():
                return

    async def client(handoff: queue.Queue[Any]) -> dict[str, Any]:
        direct, seconds = 0, []
        for i in range(attempts):
            circuit, peer = await trio.to_thread.run_sync(handoff.get)
            settings = _settings(f"/ip4/0.0.0.0/tcp/{4400 + i}", hole_punch=True)
            async with open_libp2p_network(NodeKey.generate(), settings) as me:
                assert me.relaying is not None
                started = trio.current_time()
                await me.connect(circuit)
                with trio.move_on_after(wait_s):
                    await me.relaying.hole_punch(peer)
                    while peer not in me.relaying.direct_peers():
                        await trio.sleep(0.1)
                if peer in me.relaying.direct_peers():
                    direct += 1
                    seconds.append(round(trio.current_time() - started, 2))
            handoff.task_done()
        return {"attempts": attempts, "direct": direct, "seconds_to_direct": seconds}

    return dict(run_pair(net.homes[0], server, net.homes[1], client))


def dht_find_s(net: Internet, tmp: Path, boot: str) -> float:
    """A node behind NAT 1 found by a host behind NAT 2 through the DHT alone."""
    from node.config import load_config
    from tests.netns.test_dht import _seek

    home_a, home_b = net.homes
    a = start_node(home_a, tmp / "dht-a", dict(os.environ), boot, "--reachability", "private")
    try:
        started = time.monotonic()
        found, routed, relayed = home_b.call_in_process(
            _seek, boot, a.node_id, load_config(tmp / "dht-a").chain_id
        )
        assert found and routed and relayed
        return round(time.monotonic() - started, 2)
    finally:
        a.process.terminate()
        a.process.wait(timeout=15)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--attempts", type=int, default=20)
    parser.add_argument("--mib", type=int, default=16)
    parser.add_argument("--skip-punch", action="store_true", help="no hole-punch attempts")
    args = parser.parse_args()
    reason = unavailable_reason()
    if reason:
        sys.exit(f"cannot run: {reason}")
    with tempfile.TemporaryDirectory() as tmp, Internet() as net:
        assert net.public is not None
        net.add_home()
        net.add_home()
        # Every hole-punch attempt is a fresh host reserving from the same home (one IP).
        coordinator = start_coordinator(net.public, Path(tmp) / "coordinator", dict(os.environ),
                                        4001, "--reservations-per-ip", "64")  # fmt: skip
        boot = next(a for a in coordinator.addrs if net.public.ip in a)
        out: dict[str, Any] = {"autonat": autonat(net)}
        if not args.skip_punch:
            out["hole_punch"] = hole_punch(net, boot, args.attempts)
        out["relay_mib_s"] = throughput(net, boot, args.mib, relayed=True)
        out["direct_mib_s"] = throughput(net, boot, args.mib, relayed=False)
        out["quic_mib_s"] = throughput(net, boot, args.mib, relayed=False, quic=True)
        out["dht_find_s"] = dht_find_s(net, Path(tmp), boot)
        out["first_advert_s"] = first_advert_s(net, Path(tmp), boot)
        print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()

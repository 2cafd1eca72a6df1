"""Silent streams cannot starve honest requests (issue 14 B item 4).

The attack run against main: fresh identities opened streams and sent
nothing; they held all 64 shared request slots and 62 % of an honest peer's
content requests were refused.
"""

from __future__ import annotations

from pathlib import Path

import trio
import trio.testing
from node_helpers import make_advert, make_config, running_node, wall_ms

from node.net.memory import MemoryHub
from node.net.port import NetworkError
from node.net.reqresp import InboundLimiter, ReqRespLimits, request, serve_requests
from protocol import Envelope, NodeKey, encode_envelope
from protocol.topics import MARKET_PROTOCOL

PROTOCOL = "/t/1"


async def _hold_silent_streams(  # type: ignore[no-untyped-def]
    net, server: str, count: int, rtt_s: float, opened: list[int], all_open: trio.Event, protocol
) -> None:
    """Keep ``count`` silent streams open to ``server``, reopening each one it closes."""

    async def hold() -> None:
        while True:
            try:
                stream = await net.open_stream(server, protocol)
            except NetworkError:
                return  # refused outright: banned
            opened[0] -= 1
            if opened[0] == 0:
                all_open.set()
            try:
                while await stream.receive_some(1024):
                    pass
            except trio.BrokenResourceError:
                pass
            await trio.sleep(rtt_s)  # reopening costs a round trip on a real network

    async with trio.open_nursery() as nursery:
        for _ in range(count):
            nursery.start_soon(hold)


async def test_fifty_identities_with_silent_streams_do_not_starve_requests() -> None:
    limits = ReqRespLimits(timeout_s=5)  # defaults: the attack run's setting
    limiter = InboundLimiter(limits)
    timeouts: list[str] = []

    async def echo(peer: str, data: bytes) -> bytes:
        await trio.sleep(0.001)
        return data

    hub = MemoryHub()
    async with hub.open("server") as server, hub.open("honest") as honest:
        server.set_stream_handler(
            PROTOCOL, serve_requests(echo, limits, lambda p, e: timeouts.append(p), limiter)
        )
        await honest.connect("/memory/server/p2p/server")
        answered = await _attack_and_ask(hub, 50, honest, lambda i: b"%d" % i, "server", limits)
        assert answered >= 198, limiter.statistics()  # >= 99 %
        assert "honest" not in timeouts


async def test_node_bans_stream_hoarders_and_keeps_answering(tmp_path: Path) -> None:
    hub = MemoryHub()
    key, honest_key = NodeKey.generate(), NodeKey.generate()
    config = make_config(tmp_path, peer_burst=1000)
    async with (
        hub.open(key.node_id.text) as net,
        hub.open(honest_key.node_id.text) as honest,
        running_node(config, net, key) as node,
    ):
        # Four times more silent streams than the node keeps pending reads for.
        node.limits = ReqRespLimits(timeout_s=5, max_pending_reads=64)

        async def market(envelope: Envelope) -> bytes:
            return b"ok"

        node.set_market_handler(market)
        net.set_stream_handler(
            MARKET_PROTOCOL, serve_requests(node._on_request, node.limits, node.on_bad_frame)
        )
        await honest.connect(net.listen_addrs()[0])

        def ask(i: int) -> bytes:
            advert = make_advert(honest_key)
            return encode_envelope(honest_key, advert, nonce=10**6 + i, now_ms=wall_ms())

        answered = await _attack_and_ask(
            hub, 100, honest, ask, node.node_id, node.limits, expect=b"ok", protocol=MARKET_PROTOCOL
        )
        assert answered >= 198
        assert len(node.banned) >= 90  # the hoarders, displaced again and again
        assert honest.local_peer not in node.banned


async def _attack_and_ask(  # type: ignore[no-untyped-def]
    hub, identities, honest, make_request, server, limits, expect=None, protocol=PROTOCOL
) -> int:
    opened, all_open = [4 * identities], trio.Event()
    async with trio.open_nursery() as attack:
        for i in range(identities):
            evil = await attack.start(_open_attacker, hub, f"evil-{i}", server)
            attack.start_soon(
                _hold_silent_streams, evil, server, 4, 0.002, opened, all_open, protocol
            )
        with trio.fail_after(10):
            await all_open.wait()
        answered = 0
        for i in range(200):
            body = make_request(i)
            try:
                reply = await request(honest, server, protocol, body, limits)
                answered += reply == (body if expect is None else expect)
            except NetworkError:
                pass
        attack.cancel_scope.cancel()
    return answered


async def _open_attacker(  # type: ignore[no-untyped-def]
    hub: MemoryHub, name: str, server: str, *, task_status=trio.TASK_STATUS_IGNORED
) -> None:
    async with hub.open(name) as net:
        await net.connect(f"/memory/{server}/p2p/{server}")
        task_status.started(net)
        await trio.sleep_forever()


def test_limiter_displaces_the_hoarder_on_a_shared_ip() -> None:
    limiter = InboundLimiter(ReqRespLimits(max_pending_per_ip=8, max_pending_per_peer=4))
    honest_key, honest = limiter.start_read("honest", "127.0.0.1")  # the oldest read on the IP
    for i in range(200):  # three attackers on the same address, reopening
        limiter.start_read(f"evil-{i % 3}", "127.0.0.1")
    assert not honest.displaced
    assert limiter.statistics()["pending"] == 8
    limiter.end_read(honest_key)


async def test_our_own_slow_handler_is_not_the_askers_fault(autojump_clock: trio.abc.Clock) -> None:
    """A handler that outlives the deadline (the requester's chain read of a bidder's stake
    hanging, a busy store) closes the stream unanswered; it used to charge the honest asker
    25 points (``timeout``) each time, so four slow reads banned it (docs/PROTOCOL.md §6)."""
    blamed: list[str] = []
    limits = ReqRespLimits(timeout_s=2)

    async def slow(_peer: str, _data: bytes) -> bytes:
        await trio.sleep(5)
        return b"late"

    hub = MemoryHub()
    async with hub.open("server") as server, hub.open("asker") as asker:
        server.set_stream_handler(PROTOCOL, serve_requests(slow, limits, lambda p, e: blamed.append(e.reason)))
        await asker.connect("/memory/server/p2p/server")
        stream = await asker.open_stream("server", PROTOCOL)
        await stream.send_all(b"\x00\x00\x00\x01x")
        assert await stream.receive_some() == b""  # closed unanswered at the deadline
    assert blamed == []


async def test_a_peer_that_does_not_read_its_response_is_blamed(
    autojump_clock: trio.abc.Clock,
) -> None:
    """The response write blocking past the deadline is the asker's doing: ``timeout``."""
    blamed: list[str] = []
    limits = ReqRespLimits(timeout_s=2)

    async def big(_peer: str, _data: bytes) -> bytes:
        return bytes(8 << 20)

    client, server_side = trio.testing.lockstep_stream_pair()
    serve = serve_requests(big, limits, lambda p, e: blamed.append(e.reason))
    async with trio.open_nursery() as nursery:
        nursery.start_soon(serve, "asker", server_side)
        await client.send_all(b"\x00\x00\x00\x01x")  # then never reads
    assert blamed == ["timeout"]

"""The coordinator's relay and AutoNAT services against strangers (loopback).

On loopback every peer has the same IP, which is what a flood of fresh
identities from one machine looks like.
"""

from __future__ import annotations

from typing import Any

import multiaddr
import trio
from libp2p.host.autonat.autonat import AUTONAT_PROTOCOL_ID
from libp2p.host.autonat.pb.autonat_pb2 import Message
from libp2p.peer.id import ID
from libp2p.peer.peerinfo import info_from_p2p_addr
from libp2p.relay.circuit_v2.pb.circuit_pb2 import HopMessage
from libp2p.relay.circuit_v2.protocol import PROTOCOL_ID as HOP_PROTOCOL
from libp2p.relay.circuit_v2.protocol_buffer import StatusCode
from libp2p.relay.circuit_v2.utils import read_delimited_msg, write_delimited_msg
from libp2p.utils.varint import encode_varint_prefixed, read_varint_prefixed_bytes_limited

from node.net.libp2p_net import Libp2pSettings, build_host, open_libp2p_network
from node.net.reachability import MAX_DIAL_BACK_ADDRS, DialBackAutoNAT
from node.net.relay import RelayHopLimits
from protocol import NodeKey

LOOPBACK = multiaddr.Multiaddr("/ip4/127.0.0.1/tcp/0")


async def _reserve(host: Any, relay: Any, named: ID | None = None) -> int:
    stream = await host.new_stream(relay, [HOP_PROTOCOL])
    request = HopMessage(type=HopMessage.RESERVE)
    if named is not None:
        request.peer.id = named.to_bytes()
    await write_delimited_msg(stream, request)
    with trio.fail_after(10):
        reply = await read_delimited_msg(stream, HopMessage)
    await stream.close()
    return int(reply.status)


async def _stranger_reserves(target: str, statuses: list[int]) -> None:
    host = build_host(NodeKey.generate(), Libp2pSettings())
    info = info_from_p2p_addr(multiaddr.Multiaddr(target))
    async with host.run([LOOPBACK]):
        await host.connect(info)
        statuses.append(await _reserve(host, info.peer_id))


async def test_fresh_identities_from_one_ip_hold_a_few_relay_slots_not_all() -> None:
    hop = RelayHopLimits(max_reservations=16, reservations_per_ip=4)
    async with open_libp2p_network(NodeKey.generate(), Libp2pSettings(relay_hop=hop)) as relay:
        assert relay.relaying is not None
        target = relay.listen_addrs()[0]
        statuses: list[int] = []
        async with trio.open_nursery() as nursery:
            for _ in range(10):
                nursery.start_soon(_stranger_reserves, target, statuses)
        assert sorted(statuses).count(StatusCode.OK) == 4
        assert statuses.count(StatusCode.RESOURCE_LIMIT_EXCEEDED) == 6
        assert len(relay.relaying.protocol.resource_manager._reservations) == 4  # 12 left


async def test_a_relay_slot_is_only_granted_in_the_askers_own_name() -> None:
    hop = RelayHopLimits(max_reservations=16)
    async with open_libp2p_network(NodeKey.generate(), Libp2pSettings(relay_hop=hop)) as relay:
        assert relay.relaying is not None
        manager = relay.relaying.protocol.resource_manager
        host = build_host(NodeKey.generate(), Libp2pSettings())
        info = info_from_p2p_addr(multiaddr.Multiaddr(relay.listen_addrs()[0]))
        victims = [build_host(NodeKey.generate(), Libp2pSettings()).get_id() for _ in range(3)]
        async with host.run([LOOPBACK]):
            await host.connect(info)
            for victim in victims:  # one connection, slots in three other peers' names
                assert await _reserve(host, info.peer_id, victim) == StatusCode.PERMISSION_DENIED
            assert not any(manager.has_reservation(v) for v in victims)
            assert await _reserve(host, info.peer_id, host.get_id()) == StatusCode.OK


async def _ask(host: Any, server: ID, addrs: list[bytes], *, silent: bool = False) -> Any:
    stream = await host.new_stream(server, [AUTONAT_PROTOCOL_ID])
    if silent:
        return stream
    request = Message(type=Message.DIAL)
    request.dial.peer.id = host.get_id().to_bytes()
    request.dial.peer.addrs.extend(addrs)
    await stream.write(encode_varint_prefixed(request.SerializeToString()))
    with trio.fail_after(30):
        reply = Message()
        reply.ParseFromString(await read_varint_prefixed_bytes_limited(stream, 1 << 16))
    return reply.dialResponse


async def test_autonat_serves_a_bounded_number_of_requests_and_dial_backs() -> None:
    async with open_libp2p_network(NodeKey.generate(), Libp2pSettings()) as server:
        autonat = DialBackAutoNAT(server.host, max_active=8, per_ip=2)
        swarm: Any = server.host.get_network()
        dialled: list[object] = []
        dial_addr = swarm.dial_addr

        async def counting_dial(addr: Any, peer: Any) -> Any:
            dialled.append(addr)
            return await dial_addr(addr, peer)

        swarm.dial_addr = counting_dial
        host = build_host(NodeKey.generate(), Libp2pSettings())
        info = info_from_p2p_addr(multiaddr.Multiaddr(server.listen_addrs()[0]))
        async with host.run([LOOPBACK]):
            await host.connect(info)
            # 50 ports at the asker's own IP, none listening: py-libp2p dials them all.
            ports = [multiaddr.Multiaddr(f"/ip4/127.0.0.1/tcp/{p}").to_bytes() for p in range(9, 59)]
            answer = await _ask(host, info.peer_id, ports)
            assert answer.status == Message.E_DIAL_ERROR
            assert len(dialled) == MAX_DIAL_BACK_ADDRS
            # Two silent requests hold this IP's share; the third is refused at once.
            held = [await _ask(host, info.peer_id, [], silent=True) for _ in range(2)]
            with trio.fail_after(5):
                answer = await _ask(host, info.peer_id, ports)
            assert answer.status == Message.E_DIAL_REFUSED and autonat.refused == 1
            for stream in held:
                await stream.close()

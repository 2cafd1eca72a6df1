"""The Kademlia DHT on loopback: bounded against strangers, rendezvous and peer routing."""

from __future__ import annotations

import multiaddr
import trio
import varint
from libp2p.crypto.ed25519 import create_new_key_pair
from libp2p.custom_types import TProtocol
from libp2p.kad_dht.common import PROTOCOL_ID
from libp2p.kad_dht.pb.kademlia_pb2 import Message, Record
from libp2p.peer.id import ID
from libp2p.peer.peerinfo import PeerInfo, info_from_p2p_addr

from node.net.dht import network_key, peer_key
from node.net.dht_store import SENDER, BoundedProviderStore, DhtLimits, DhtRefused
from node.net.libp2p_net import Libp2pSettings, build_host, open_libp2p_network
from node.net.reachability import keep_reachable
from node.net.relay import RelayHopLimits, is_circuit
from node.net.rendezvous import run_rendezvous
from protocol import NodeKey

SMALL = DhtLimits(
    max_value_bytes=256,
    max_values=20,
    values_per_peer=2,
    values_per_ip=1000,  # loopback: every peer has the same IP (per-IP bounds: unit tests)
    max_provider_records=40,
    max_provider_keys=30,
    providers_per_key=16,
    providers_per_key_per_ip=1000,
    provider_records_per_peer=3,
    provider_records_per_ip=1000,
    streams_per_ip=1000,
    stream_s=2.0,
)
SERVER = Libp2pSettings(dht="server", dht_limits=SMALL)
CLIENT = Libp2pSettings(dht="client")


def _frame(message: Message) -> bytes:
    data = message.SerializeToString()
    return bytes(varint.encode(len(data))) + data


async def _flood_from_a_fresh_identity(target: str, n: int) -> None:
    """One stranger: ``n`` ADD_PROVIDERs for fresh keys and ``n`` PUT_VALUEs, one too big."""
    host = build_host(NodeKey.generate(), Libp2pSettings())
    info = info_from_p2p_addr(multiaddr.Multiaddr(target))
    me = host.get_id()
    addrs = [multiaddr.Multiaddr(f"/ip4/203.0.113.{i}/tcp/4001").to_bytes() for i in range(40)]
    async with host.run([multiaddr.Multiaddr("/ip4/127.0.0.1/tcp/0")]):
        await host.connect(info)
        for i in range(n):
            provide = Message(type=Message.MessageType.ADD_PROVIDER, key=f"/p/{me}/{i}".encode())
            peer = provide.providerPeers.add()
            peer.id = me.to_bytes()
            peer.addrs.extend(addrs)  # 40 addresses: a dial-reflection list
            size = 4096 if i == 0 else 64
            key = f"/v/{me}/{i}".encode()
            put = Message(type=Message.MessageType.PUT_VALUE, key=key)
            put.record.CopyFrom(Record(key=key, value=b"x" * size))
            for message in (provide, put):
                try:
                    stream = await host.new_stream(info.peer_id, [TProtocol(PROTOCOL_ID)])
                    await stream.write(_frame(message))
                    with trio.move_on_after(5):
                        await stream.read(1)
                    await stream.close()
                except Exception:
                    pass  # refused and reset: what a bound looks like from outside


async def test_a_flood_of_fresh_identities_stays_within_the_dht_bounds() -> None:
    async with (
        open_libp2p_network(NodeKey.generate(), SERVER) as server,
        open_libp2p_network(NodeKey.generate(), CLIENT) as honest,
    ):
        dht = server.dht
        assert dht is not None and honest.dht is not None
        target = server.listen_addrs()[0]
        await honest.connect(target)
        with trio.fail_after(20):
            assert await honest.dht.join([server.local_peer]) == 1
            assert await honest.dht.provide_addrs(network_key(1), ["/ip4/198.51.100.7/tcp/4001"])
        with trio.fail_after(120):
            async with trio.open_nursery() as nursery:
                for _ in range(16):  # 16 identities x 5 keys: 80 records and 80 values asked
                    nursery.start_soon(_flood_from_a_fresh_identity, target, 5)
        store = dht.provider_store
        assert isinstance(store, BoundedProviderStore)
        assert store.size() <= SMALL.max_provider_records
        assert len(store.providers) <= SMALL.max_provider_keys
        for records in store.providers.values():
            for record in records.values():
                assert len(record.addresses) <= SMALL.provider_addrs
        assert dht.value_store.size() <= SMALL.max_values
        assert all(len(r.value) <= SMALL.max_value_bytes for r, _ in dht.value_store.store.values())
        per_peer: dict[str, int] = {}
        for records in store.providers.values():
            for peer in records:
                per_peer[peer] = per_peer.get(peer, 0) + 1
        assert max(per_peer.values()) <= SMALL.provider_records_per_peer
        # Refused, not evicted: the honest record published first is still served.
        with trio.fail_after(20):
            found = await honest.dht.providers_of(network_key(1))
        assert found == {}  # a node never lists itself...
        async with open_libp2p_network(NodeKey.generate(), CLIENT) as other:
            assert other.dht is not None
            await other.connect(target)
            with trio.fail_after(20):
                await other.dht.join([server.local_peer])
                found = await other.dht.providers_of(network_key(1))
        assert found == {honest.local_peer: [f"/ip4/198.51.100.7/tcp/4001/p2p/{honest.local_peer}"]}


async def test_silent_dht_streams_hold_two_slots_per_peer_for_a_bounded_time() -> None:
    async with (
        open_libp2p_network(NodeKey.generate(), SERVER) as server,
        open_libp2p_network(NodeKey.generate(), CLIENT) as honest,
    ):
        dht = server.dht
        assert dht is not None and honest.dht is not None
        target = server.listen_addrs()[0]
        attacker = build_host(NodeKey.generate(), Libp2pSettings())
        info = info_from_p2p_addr(multiaddr.Multiaddr(target))
        async with attacker.run([multiaddr.Multiaddr("/ip4/127.0.0.1/tcp/0")]):
            await attacker.connect(info)
            silent = []
            for _ in range(20):  # py-libp2p serves 12 at once and waits on each forever
                try:
                    silent.append(await attacker.new_stream(info.peer_id, [TProtocol(PROTOCOL_ID)]))
                except Exception:
                    pass  # reset by the server before the negotiation finished
            await honest.connect(target)
            with trio.fail_after(10):  # answered while the attacker still holds its two
                await honest.dht.join([server.local_peer])
                assert await honest.dht.provide_addrs(b"k" * 32, ["/ip4/198.51.100.7/tcp/1"]) == 1
            with trio.fail_after(SMALL.stream_s + 5):  # and the two are cut after stream_s
                for stream in silent:
                    try:
                        while await stream.read(1):
                            pass
                    except Exception:
                        pass
            assert dht.refused_streams >= 18


def test_per_ip_and_per_key_bounds_hold_for_any_number_of_identities() -> None:
    limits = DhtLimits(provider_records_per_ip=50, providers_per_key_per_ip=4)
    host = build_host(NodeKey.generate(), Libp2pSettings())
    store = BoundedProviderStore(host, None, limits)
    addr = multiaddr.Multiaddr("/ip4/198.51.100.1/tcp/1")
    refused = 0
    for i in range(2000):  # 2,000 fresh identities behind one IP
        peer = _fresh_id()
        token = SENDER.set((peer.to_base58(), "198.51.100.1"))
        try:
            store.add_provider(network_key(1) if i % 2 else b"key%d" % i, PeerInfo(peer, [addr]))
        except DhtRefused:
            refused += 1
        finally:
            SENDER.reset(token)
    assert store.size() == 50 and refused == 1950
    assert len(store.providers[network_key(1)]) == 4
    token = SENDER.set((_fresh_id().to_base58(), "192.0.2.9"))  # another IP still gets in
    try:
        store.add_provider(network_key(1), PeerInfo(_fresh_id(), [addr]))
    finally:
        SENDER.reset(token)
    assert len(store.providers[network_key(1)]) == 5


def _fresh_id() -> ID:
    return ID.from_pubkey(create_new_key_pair().public_key)


async def test_a_nated_node_is_found_by_rendezvous_and_by_peer_routing() -> None:
    hop = Libp2pSettings(relay_hop=RelayHopLimits(max_reservations=4), dht="server")
    async with (
        open_libp2p_network(NodeKey.generate(), hop) as coordinator,
        open_libp2p_network(NodeKey.generate(), CLIENT) as private,
        open_libp2p_network(NodeKey.generate(), CLIENT) as seeker,
        trio.open_nursery() as nursery,
    ):
        assert private.relaying is not None and private.dht and seeker.dht
        reserved = trio.Event()
        nursery.start_soon(keep_reachable, private, private.relaying, coordinator.listen_addrs(),
                           "private", lambda: private.listen_addrs() and reserved.set())  # fmt: skip
        with trio.fail_after(20):
            await reserved.wait()
        found_by_private: list[list[str]] = []
        nursery.start_soon(
            run_rendezvous, private.dht, private.local_peer, private.listen_addrs,
            private.connected_peers, found_by_private.append, network_key(7),
        )  # fmt: skip
        # The seeker knows only the coordinator: no bootstrap list names the private node.
        await seeker.connect(coordinator.listen_addrs()[0])
        candidates: list[list[str]] = []
        got = trio.Event()

        def add(addrs: list[str]) -> None:
            candidates.append(addrs)
            got.set()

        nursery.start_soon(run_rendezvous, seeker.dht, seeker.local_peer, seeker.listen_addrs,
                           seeker.connected_peers, add, network_key(7))  # fmt: skip
        with trio.fail_after(30):
            await got.wait()
        by_peer = {a.rsplit("/p2p/", 1)[1] for addrs in candidates for a in addrs}
        assert private.local_peer in by_peer
        with trio.fail_after(20):
            addrs = await seeker.dht.find_peer_addrs(private.local_peer)
        assert addrs and all(is_circuit(a) for a in addrs), addrs
        with trio.fail_after(20):
            assert await seeker.connect(addrs[0]) == private.local_peer
        assert peer_key(private.local_peer) != peer_key(seeker.local_peer)
        nursery.cancel_scope.cancel()

"""Circuit relay v2 for the node: reach peers behind NAT through a relay.

Theory of operation. py-libp2p 0.8.1 ships the relay pieces but does not wire
them into the host: ``host.connect`` drops ``/p2p-circuit`` addresses, nothing
reserves a slot, and nothing puts relay addresses in what a node advertises.
``Relaying`` does the wiring:

* it always serves the STOP side (accept a circuit a relay opens to us), and
  the HOP side (be a relay) only when given ``RelayHopLimits`` — the
  coordinator does that;
* ``reserve(relay_addr)`` dials the relay, reserves a slot (py-libp2p refreshes
  it before it expires) and remembers the circuit address
  ``<relay addr>/p2p-circuit/p2p/<us>`` that others dial to reach us;
* ``dial(addr)`` opens a relayed connection to a ``/p2p-circuit`` address; the
  swarm then treats it like any other connection (gossip, streams);
* with ``hole_punch``, py-libp2p's DCUtR service tries to replace relayed
  connections by direct ones (see docs/NODE.md for what was measured). DCUtR
  makes us dial addresses a peer names, so ``GuardedDCUtR`` keeps it from
  being a dial-reflection tool (issue 14 B): it dials only public IP
  addresses (no loopback, private, link-local, multicast or unspecified one,
  no DNS name), at most ``MAX_PUNCH_ADDRS`` of a peer's, and answers at most
  ``PUNCH_BURST`` hole punches at once, then one every ``1 / PUNCH_RATE_PER_S``
  seconds, whoever asks.

The relay only carries bytes of a Noise session between the two ends: it can
drop or delay them, never read, forge or alter a message.
"""

from __future__ import annotations

import contextlib
import ipaddress
import logging
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from typing import Any

import multiaddr
import trio
from libp2p.peer.id import ID
from libp2p.peer.peerinfo import info_from_p2p_addr
from libp2p.relay.circuit_v2.config import RelayConfig, RelayRole
from libp2p.relay.circuit_v2.dcutr import DCUtRProtocol
from libp2p.relay.circuit_v2.pb.circuit_pb2 import HopMessage
from libp2p.relay.circuit_v2.protocol import PROTOCOL_ID as HOP_PROTOCOL
from libp2p.relay.circuit_v2.protocol import CircuitV2Protocol
from libp2p.relay.circuit_v2.protocol_buffer import StatusCode, to_proto_status
from libp2p.relay.circuit_v2.resources import RelayLimits
from libp2p.relay.circuit_v2.transport import CircuitV2Transport
from libp2p.relay.circuit_v2.utils import write_delimited_msg
from libp2p.tools.anyio_service import background_trio_service

from node.net.port import NetworkError

logger = logging.getLogger(__name__)
CIRCUIT = "/p2p-circuit"
MAX_PUNCH_ADDRS = 4
PUNCH_RATE_PER_S = 0.5
PUNCH_BURST = 4.0


def punchable(addr: Any) -> bool:
    """Whether a hole punch may dial ``addr`` (a Multiaddr): a public IP with tcp or udp."""
    parts = str(addr).split("/")
    if len(parts) < 5 or parts[1] not in ("ip4", "ip6") or parts[3] not in ("tcp", "udp"):
        return False
    try:
        ip = ipaddress.ip_address(parts[2])
    except ValueError:
        return False
    return not (ip.is_private or ip.is_loopback or ip.is_link_local or ip.is_multicast
                or ip.is_unspecified or ip.is_reserved)  # fmt: skip


class GuardedDCUtR(DCUtRProtocol):
    """py-libp2p's DCUtR, dialling only public addresses and at a bounded rate."""

    def __init__(self, host: Any) -> None:
        super().__init__(host)
        self._tokens = PUNCH_BURST
        self._tokens_at_s = trio.current_time()

    def _take_token(self) -> bool:
        now_s = trio.current_time()
        refill = (now_s - self._tokens_at_s) * PUNCH_RATE_PER_S
        self._tokens = min(PUNCH_BURST, self._tokens + refill)
        self._tokens_at_s = now_s
        if self._tokens < 1.0:
            return False
        self._tokens -= 1.0
        return True

    async def _handle_dcutr_stream(self, stream: Any) -> None:
        if not self._take_token():
            with contextlib.suppress(Exception):
                await stream.reset()
            return
        await super()._handle_dcutr_stream(stream)

    def _decode_observed_addrs(self, addr_bytes: list[bytes]) -> list[Any]:
        decoded = super()._decode_observed_addrs(addr_bytes[: 4 * MAX_PUNCH_ADDRS])
        return [a for a in decoded if punchable(a)][:MAX_PUNCH_ADDRS]

    async def _dial_peer(self, peer_id: Any, addr: Any, *args: Any, **kwargs: Any) -> None:
        # The library's own dial swallows its failures; a refusal does the same.
        if punchable(addr):  # not e.g. a listen address from identify: 0.0.0.0, 127.0.0.1
            await super()._dial_peer(peer_id, addr, *args, **kwargs)

    async def _spam_udp_for_hole_punch(self, addr: Any, stop: trio.Event) -> None:
        if punchable(addr):
            await super()._spam_udp_for_hole_punch(addr, stop)


@dataclass(frozen=True)
class RelayHopLimits:
    """What a relay (hop) grants: bounded, since any stranger may ask.

    ``max_reservations`` caps the peers holding a slot at once (each slot lasts
    ``reservation_ttl_s`` unless refreshed); a circuit carries at most
    ``circuit_bytes`` in both directions together and lives at most
    ``circuit_s``; a reserved peer is the end of at most ``circuits_per_peer``
    circuits at once. Peers at one IP address hold at most
    ``reservations_per_ip`` slots (``BoundedHop``), so fresh identities from
    one machine cannot take every slot from honest nodes.
    """

    max_reservations: int = 256
    circuits_per_peer: int = 16
    circuit_bytes: int = 256 << 20
    circuit_s: int = 3600
    reservation_ttl_s: int = 900
    reservations_per_ip: int = 8

    def libp2p(self) -> RelayLimits:
        return RelayLimits(
            duration=self.circuit_s,
            data=self.circuit_bytes,
            max_circuit_conns=self.circuits_per_peer,
            max_reservations=self.max_reservations,
            reservation_ttl=self.reservation_ttl_s,
        )


def _remote_ip(stream: Any) -> str | None:
    try:
        address = stream.get_remote_address()
    except Exception:  # a relayed or closing stream may not know it
        return None
    return str(address[0]) if address else None


class BoundedHop(CircuitV2Protocol):
    """py-libp2p's relay, granting a slot only to the asking peer and a few per IP.

    py-libp2p 0.8.1 reserves for whatever peer id the RESERVE message names
    (one connection could take every slot, in anybody's name) and counts
    slots in total only.
    """

    def __init__(self, host: Any, hop: RelayHopLimits) -> None:
        super().__init__(host, limits=hop.libp2p(), allow_hop=True)
        self.reservations_per_ip = hop.reservations_per_ip
        self._ip_of: dict[Any, str | None] = {}  # reserved peer -> the IP it reserved from
        self._pending: list[str] = []
        self.refused = 0

    def _holders_at(self, ip: str) -> int:
        held = self.resource_manager._reservations
        for peer in [p for p in self._ip_of if p not in held]:
            del self._ip_of[peer]  # expired or released: the library dropped it
        return sum(1 for at in self._ip_of.values() if at == ip) + self._pending.count(ip)

    async def _handle_reserve(self, stream: Any, msg: Any) -> None:
        peer = stream.muxed_conn.peer_id
        ip = _remote_ip(stream)
        named = ID(msg.peer.id) if msg.HasField("peer") and msg.peer.id else peer
        status = None
        if named != peer:
            status = StatusCode.PERMISSION_DENIED
        elif not self.resource_manager.has_reservation(peer) and ip is not None:
            if self._holders_at(ip) >= self.reservations_per_ip:
                status = StatusCode.RESOURCE_LIMIT_EXCEEDED
        if status is not None:
            self.refused += 1
            with contextlib.suppress(Exception):
                await write_delimited_msg(
                    stream, HopMessage(type=HopMessage.STATUS, status=to_proto_status(status))
                )
            return
        fresh = not self.resource_manager.has_reservation(peer)
        if fresh and ip is not None:
            self._pending.append(ip)  # counted while the library answers (it awaits)
        try:
            await super()._handle_reserve(stream, msg)
        finally:
            if fresh and ip is not None:
                self._pending.remove(ip)
        if self.resource_manager.has_reservation(peer):
            self._ip_of.setdefault(peer, ip)


def is_circuit(addr: str) -> bool:
    return CIRCUIT + "/" in addr


def is_relayed(conn: Any) -> bool:
    """Whether a swarm connection runs over a relay."""
    try:
        return any(CIRCUIT in str(a) for a in conn.get_transport_addresses())
    except Exception:  # a connection closing under us has no addresses left
        return False


class Relaying:
    def __init__(self, host: Any, hop: RelayHopLimits | None, hole_punch: bool) -> None:
        self.host = host
        self.hop = hop
        limits = (hop or RelayHopLimits()).libp2p()
        self.protocol = (
            BoundedHop(host, hop) if hop is not None else CircuitV2Protocol(host, limits=limits)
        )
        # STOP only: CLIENT would make py-libp2p reserve a slot at the relay on
        # every dial through it (a dialler needs none; only the dialled end does).
        config = RelayConfig(roles=RelayRole.STOP, limits=limits)
        self.transport = CircuitV2Transport(host, self.protocol, config)
        self.dcutr = GuardedDCUtR(host) if hole_punch else None
        self._circuits: dict[str, str] = {}  # relay peer -> our circuit address there
        self._nursery: trio.Nursery | None = None

    def circuit_addrs(self) -> list[str]:
        return list(self._circuits.values())

    def relays(self) -> list[str]:
        return list(self._circuits)

    async def reserve(self, relay_addr: str, timeout_s: float = 20.0) -> str:
        """Reserve a slot at the relay ``relay_addr`` (with /p2p/); returns our circuit address."""
        assert self._nursery is not None, "Relaying is not running"
        try:
            info = info_from_p2p_addr(multiaddr.Multiaddr(relay_addr))
        except Exception as exc:
            raise NetworkError(f"not a relay multiaddr with /p2p/: {relay_addr}") from exc
        try:
            with trio.fail_after(timeout_s):
                await self.host.connect(info)
                stream = await self.host.new_stream(info.peer_id, [HOP_PROTOCOL])
                try:
                    ok = await self.transport.reserve(stream, info.peer_id, self._nursery)
                finally:
                    await stream.close()
        except Exception as exc:  # the library raises a zoo of types
            raise NetworkError(f"reservation at {relay_addr} failed: {exc!r}") from exc
        if not ok:
            raise NetworkError(f"relay {relay_addr} refused a reservation")
        relay = info.peer_id.to_base58()
        circuit = f"{relay_addr}{CIRCUIT}/p2p/{self.host.get_id().to_base58()}"
        self._circuits[relay] = circuit
        return circuit

    def forget(self, relay: str) -> None:
        self._circuits.pop(relay, None)

    async def dial(self, addr: str) -> str:
        """Open a relayed connection to ``addr`` (``.../p2p-circuit/p2p/<peer>``)."""
        try:
            maddr = multiaddr.Multiaddr(addr)
            peer = ID.from_base58(addr.rsplit("/p2p/", 1)[1])
        except Exception as exc:
            raise NetworkError(f"not a circuit multiaddr: {addr}") from exc
        if self.host.get_network().get_connections(peer):
            return str(peer.to_base58())
        try:
            await self.transport.dial(maddr)
        except Exception as exc:
            raise NetworkError(f"relayed dial {addr} failed: {exc!r}") from exc
        return str(peer.to_base58())

    def direct_peers(self) -> set[str]:
        """Peers with at least one connection that is not relayed."""
        network = self.host.get_network()
        return {
            peer.to_base58()
            for peer, conns in network.get_connections_map().items()
            if any(not is_relayed(c) for c in conns)
        }

    async def hole_punch(self, peer: str) -> bool:
        """Ask DCUtR to turn the relayed connection to ``peer`` into a direct one."""
        if self.dcutr is None:
            return False
        try:
            return bool(await self.dcutr.initiate_hole_punch(ID.from_base58(peer)))
        except Exception as exc:
            logger.debug("hole punch to %s failed: %r", peer, exc)
            return False


@asynccontextmanager
async def run_relaying(relaying: Relaying) -> AsyncIterator[Relaying]:
    async with AsyncExitStack() as stack:
        await stack.enter_async_context(background_trio_service(relaying.protocol))
        await relaying.protocol.event_started.wait()
        if relaying.dcutr is not None:
            await stack.enter_async_context(background_trio_service(relaying.dcutr))
            await relaying.dcutr.event_started.wait()
        nursery = await stack.enter_async_context(trio.open_nursery())
        relaying._nursery = nursery
        try:
            yield relaying
        finally:
            nursery.cancel_scope.cancel()

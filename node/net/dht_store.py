"""Bounded stores for py-libp2p's Kademlia DHT: what a stranger can put in it.

py-libp2p 0.8.1's DHT server keeps what any peer sends: up to 50,000 values
of up to 1 MiB each (with an O(n) eviction scan on every put once full), and
provider records for an unbounded number of keys, each record with as many
addresses as fit in a 4 MiB message, for 48 h. Its only per-peer check is
10 ADD_PROVIDERs per 10 s per peer id — and a peer id is free.

These stores replace the library's (``node.net.dht.BoundedDHT`` swaps them
in) and refuse, rather than evict, past ``DhtLimits``: records per peer and
per IP address, records in total, value size, providers per key (and per IP
for one key), addresses per provider record, and a provider lifetime short
enough that what a flood left behind is gone within ``provider_ttl_s``.
A refusal raises ``DhtRefused``: the library's handler resets the stream
of a refused PUT_VALUE, and skips a refused provider record (it still echoes
the ADD_PROVIDER, so a provider cannot tell that a server refused it). The sender is read from ``SENDER``, which
``BoundedDHT.handle_stream`` sets for the task serving each inbound stream.
"""

from __future__ import annotations

import contextvars
import time
from collections import Counter
from dataclasses import dataclass
from typing import Any

from libp2p.kad_dht.provider_store import ProviderRecord, ProviderStore
from libp2p.kad_dht.value_store import ValueStore
from libp2p.peer.peerinfo import PeerInfo

# (peer id, remote IP or None) of the inbound DHT stream being served; None for our own calls.
SENDER: contextvars.ContextVar[tuple[str, str | None] | None] = contextvars.ContextVar(
    "pictor_dht_sender", default=None
)


class DhtRefused(ValueError):
    """A stranger's record was refused by a bound (the stream is reset)."""


@dataclass(frozen=True)
class DhtLimits:
    max_value_bytes: int = 2048
    max_values: int = 4096
    values_per_peer: int = 8
    values_per_ip: int = 64
    max_provider_records: int = 8192
    max_provider_keys: int = 4096
    providers_per_key: int = 64
    providers_per_key_per_ip: int = 4
    provider_records_per_peer: int = 8
    provider_records_per_ip: int = 64
    provider_addrs: int = 4
    provider_addr_bytes: int = 256
    provider_ttl_s: float = 1800.0
    # Inbound streams (``BoundedDHT.handle_stream``).
    streams_per_peer: int = 2
    streams_per_ip: int = 6
    stream_s: float = 10.0


def _decrement(counter: Counter[Any], name: Any) -> None:
    counter[name] -= 1
    if counter[name] <= 0:
        del counter[name]


class BoundedValueStore(ValueStore):
    def __init__(self, host: Any, local_peer_id: Any, limits: DhtLimits) -> None:
        super().__init__(host=host, local_peer_id=local_peer_id, persist_path=None)
        self.limits = limits
        self._owners: dict[bytes, tuple[str, str | None]] = {}
        self._per_peer: Counter[str] = Counter()
        self._per_ip: Counter[str] = Counter()

    def _sync(self) -> None:
        """Forget owners of keys the library removed itself (expiry, bad signature)."""
        for key in [k for k in self._owners if k not in self.store]:
            self._disown(key)

    def _disown(self, key: bytes) -> None:
        owner = self._owners.pop(key, None)
        if owner is not None:
            _decrement(self._per_peer, owner[0])
            if owner[1] is not None:
                _decrement(self._per_ip, owner[1])

    def _over(self, peer: str, ip: str | None, key: bytes) -> str | None:
        limits = self.limits
        if key in self.store and self._owners.get(key, (None,))[0] == peer:
            return None  # replacing its own record adds nothing
        if len(self.store) >= limits.max_values and key not in self.store:
            return "value store full"
        if self._per_peer[peer] >= limits.values_per_peer:
            return "values per peer"
        if ip is not None and self._per_ip[ip] >= limits.values_per_ip:
            return "values per IP"
        return None

    def put_record(self, key: bytes, record: Any) -> None:
        if len(record.value) > self.limits.max_value_bytes:
            raise DhtRefused(f"value of {len(record.value)} bytes")
        sender = SENDER.get()
        if sender is None:  # our own lookups caching what they found: total bound only
            if len(self.store) >= self.limits.max_values and key not in self.store:
                self._sync()
                if len(self.store) >= self.limits.max_values:
                    raise DhtRefused("value store full")
            super().put_record(key, record)
            return
        peer, ip = sender
        reason = self._over(peer, ip, key)
        if reason is not None:
            self._sync()
            reason = self._over(peer, ip, key)
            if reason is not None:
                raise DhtRefused(reason)
        self._disown(key)
        super().put_record(key, record)
        self._owners[key] = (peer, ip)
        self._per_peer[peer] += 1
        if ip is not None:
            self._per_ip[ip] += 1

    def remove(self, key: bytes) -> bool:
        self._disown(key)
        return bool(super().remove(key))


class BoundedProviderStore(ProviderStore):
    """Provider records with per-peer, per-IP and total bounds and a short lifetime."""

    def __init__(self, host: Any, peer_routing: Any, limits: DhtLimits) -> None:
        super().__init__(host=host, peer_routing=peer_routing, persist_path=None)
        self.limits = limits
        self._ips: dict[tuple[bytes, str], str | None] = {}
        self._per_peer: Counter[str] = Counter()
        self._per_ip: Counter[str] = Counter()
        self._per_key_ip: Counter[tuple[bytes, str]] = Counter()
        self.records = 0
        self._swept_at = 0.0

    def _drop(self, key: bytes, peer: str) -> None:
        records = self.providers.get(key)
        if records is None or records.pop(peer, None) is None:
            return
        if not records:
            del self.providers[key]
        self.records -= 1
        ip = self._ips.pop((key, peer), None)
        _decrement(self._per_peer, peer)
        if ip is not None:
            _decrement(self._per_ip, ip)
            _decrement(self._per_key_ip, (key, ip))

    def _refusal(self, key: bytes, peer: str, ip: str | None) -> str | None:
        limits = self.limits
        records = self.providers.get(key)
        if records is None and len(self.providers) >= limits.max_provider_keys:
            return "provider keys"
        if records is not None and len(records) >= limits.providers_per_key:
            return "providers per key"
        if self.records >= limits.max_provider_records:
            return "provider records"
        if self._per_peer[peer] >= limits.provider_records_per_peer:
            return "provider records per peer"
        if ip is not None:
            if self._per_ip[ip] >= limits.provider_records_per_ip:
                return "provider records per IP"
            if self._per_key_ip[(key, ip)] >= limits.providers_per_key_per_ip:
                return "providers per key per IP"
        return None

    def add_provider(self, key: bytes, provider: PeerInfo) -> None:
        sender = SENDER.get()
        peer = str(provider.peer_id)
        ip = sender[1] if sender is not None else None
        addrs = [a for a in provider.addrs if len(a.to_bytes()) <= self.limits.provider_addr_bytes]
        addrs = addrs[: self.limits.provider_addrs]
        if not addrs:
            raise DhtRefused("provider record without a usable address")
        now = time.time()
        if peer in self.providers.get(key, {}):
            self._drop(key, peer)  # a refresh: re-added below with the new addresses
        else:
            self.cleanup_expired_at(now, only_when_full=True)
            reason = self._refusal(key, peer, ip)
            if reason is not None:
                raise DhtRefused(reason)
        self.providers.setdefault(key, {})[peer] = ProviderRecord(
            PeerInfo(provider.peer_id, addrs), now
        )
        self.records += 1
        self._ips[(key, peer)] = ip
        self._per_peer[peer] += 1
        if ip is not None:
            self._per_ip[ip] += 1
            self._per_key_ip[(key, ip)] += 1

    def get_providers(self, key: bytes) -> list[PeerInfo]:
        now = time.time()
        records = self.providers.get(key, {})
        for peer in [
            p for p, r in records.items() if now - r.timestamp > self.limits.provider_ttl_s
        ]:
            self._drop(key, peer)
        return [PeerInfo(r.peer_id, r.addresses) for r in self.providers.get(key, {}).values()]

    def cleanup_expired(self) -> None:
        self.cleanup_expired_at(time.time())

    def cleanup_expired_at(self, now: float, *, only_when_full: bool = False) -> None:
        full = self.records >= self.limits.max_provider_records or (
            len(self.providers) >= self.limits.max_provider_keys
        )
        if only_when_full and (not full or now - self._swept_at < 1.0):
            return  # a flood at the bound costs one sweep a second, not one per message
        self._swept_at = now
        ttl = self.limits.provider_ttl_s
        expired = [(k, p) for k, records in self.providers.items()
                   for p, r in records.items() if now - r.timestamp > ttl]  # fmt: skip
        for key, peer in expired:
            self._drop(key, peer)

    def size(self) -> int:
        return self.records

"""Discovery: backoff policy, redial until a peer appears, banned peers skipped."""

from __future__ import annotations

import itertools

import trio
import trio.testing

from node.net.discovery import Discovery, redial_delay_s
from node.net.memory import MemoryHub


def test_backoff_doubles_and_caps() -> None:
    assert [redial_delay_s(n, max_s=10) for n in range(1, 7)] == [1, 2, 4, 8, 10, 10]


class _MemoryStore:
    """The slice of ``Store`` discovery uses, without threads: trio's autojump
    clock would otherwise jump while a database call runs on a worker thread."""

    def __init__(self) -> None:
        self.peers: dict[str, dict[str, object]] = {}

    async def list_peers(self) -> list[dict[str, object]]:
        return list(self.peers.values())

    async def upsert_peer(self, peer_id: str, addrs: list[str], now_ms: int) -> None:
        row = self.peers.setdefault(peer_id, {"peer_id": peer_id, "addrs": [], "failures": 0})
        row["addrs"] = addrs or row["addrs"]

    async def record_dial(self, peer_id: str, ok: bool, now_ms: int) -> None:
        pass


async def test_redials_with_backoff_until_peer_appears(
    autojump_clock: trio.testing.MockClock,
) -> None:
    hub = MemoryHub()
    store = _MemoryStore()
    async with hub.open("me") as me:
        dials: list[float] = []
        connect = me.connect

        async def counting_connect(addr: str) -> str:
            dials.append(trio.current_time())
            return await connect(addr)

        me.connect = counting_connect  # type: ignore[method-assign]
        banned = {"bad"}
        discovery = Discovery(
            me,
            store,  # type: ignore[arg-type]
            max_backoff_s=8,
            is_banned=banned.__contains__,
            wall_ms=lambda: 0,
        )
        discovery.add_candidate(["/memory/later/p2p/later", "/memory/bad/p2p/bad"])
        async with trio.open_nursery() as nursery:
            await nursery.start(discovery.run)
            await trio.sleep(20)  # autojump clock: virtual 0, 1, 3, 7, 15 s dials fail
            assert len(dials) == 5
            gaps = [round(b - a) for a, b in itertools.pairwise(dials)]
            assert gaps == [1, 2, 4, 8]
            async with hub.open("later"):
                await trio.sleep(10)  # autojump clock: next try at 23 s succeeds
                assert me.connected_peers() == ["later"]
                nursery.cancel_scope.cancel()
    assert store.peers["later"]["addrs"] == ["/memory/later"]
    assert "bad" not in store.peers  # banned: never dialled


def test_only_plausible_addresses() -> None:
    from node.net.discovery import plausible_addr

    peer = "/p2p/12D3KooWabc"
    good = ["/ip4/127.0.0.1/tcp/4001", "/ip6/::1/udp/4001/quic-v1", "/dns4/example.org/tcp/1"]
    bad = [
        "/ip4/0.0.0.0/tcp/4001",
        "/ip4/224.0.0.1/tcp/4001",
        "/ip4/255.255.255.255/tcp/4001",
        "/ip4/127.0.0.1/tcp/0",
        "/ip4/127.0.0.1/tcp/70000",
        "/ip4/::1/tcp/1",
        "/ip4/127.0.0.1/sctp/1",
        "/unix/tmp/sock",
    ]
    assert all(plausible_addr(a + peer) for a in good)
    assert not any(plausible_addr(a + peer) for a in bad)
    assert not plausible_addr("/ip4/127.0.0.1/tcp/4001")  # no peer id


async def test_advertised_strangers_are_dialled_slowly_and_forgotten(
    autojump_clock: trio.testing.MockClock,
) -> None:
    from node.net.discovery import DialPolicy

    hub = MemoryHub()
    store = _MemoryStore()
    async with hub.open("me") as me:
        dials: list[float] = []
        connect = me.connect

        async def counting_connect(addr: str) -> str:
            dials.append(trio.current_time())
            return await connect(addr)

        me.connect = counting_connect  # type: ignore[method-assign]
        policy = DialPolicy(max_candidates=50, dial_rate_per_s=1.0, dial_burst=8)
        discovery = Discovery(
            me,
            store,  # type: ignore[arg-type]
            max_backoff_s=8,
            is_banned=lambda _: False,
            wall_ms=lambda: 0,
            policy=policy,
        )
        for i in range(1000):  # a thousand fresh identities advertise
            peer = f"x{i}"
            victim = "/ip4/127.0.0.1/tcp/9/p2p/victim"
            discovery.add_advertised(
                peer, (victim, *[f"/memory/{peer}/{n}/p2p/{peer}" for n in range(9)])
            )
        candidates = discovery.candidates()
        assert len(candidates) == 50 and "victim" not in candidates
        assert all(len(addrs) == policy.max_addrs_per_peer for addrs in candidates.values())
        async with trio.open_nursery() as nursery:
            await nursery.start(discovery.run)
            await trio.sleep(60)
            nursery.cancel_scope.cancel()
        # Whatever the adverts say: the burst, then one dial a second.
        assert discovery.dials <= 8 + 60
        per_second = [sum(1 for t in dials if s <= t < s + 1) for s in range(10, 60)]
        assert max(per_second) <= 2 * policy.max_addrs_per_peer
        assert len(discovery.candidates()) < 50  # three failures and an advertised peer is gone
        assert store.peers == {}  # strangers that never answered leave no rows

"""A network of real nodes and role drivers on the in-memory hub, with fake ports.

``Cluster`` starts members (``Node`` + ``run_roles``) that share one
``MemoryHub`` and one ``FakeEscrow``; each has its own data directory and
SQLite store, so a member can be killed (its tasks cancelled mid-step, like a
SIGKILL between two store transactions) and restarted from the same directory
with the same keys. Time is trio's mock clock: the wall clock of every node and
the escrow's block time are derived from it.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import trio
from eth_account import Account

from node.config import NodeConfig
from node.net.memory import MemoryHub
from node.roles import persist
from node.roles.ports import RenderKit
from node.roles.service import RolePorts, Roles, run_roles
from node.roles.submit import SubmitRequest, submit
from node.runtime import Node, SeenAdvert
from node.store import open_store
from protocol import NodeKey, PaymentBinding, encode_envelope
from protocol.messages import CapacityAdvert, Role
from tests.roles.fakes import FakeChain, FakeEscrow, FakeFrames, FakeTiles, fake_kit, write_scene

ROLE_NAMES = {"worker": Role.WORKER, "checker": Role.CHECKER, "client": Role.CLIENT}
PRICE_WEI_PER_RU = 10**13  # x 1 RU per frame (the fake scenes are tiny) = 1e13 wei per frame


@dataclass
class Member:
    name: str
    key: NodeKey
    payment_key: bytes
    data_dir: Path
    roles_wanted: tuple[Role, ...]
    kit: RenderKit
    chain: FakeChain | None
    overrides: dict[str, Any] = field(default_factory=dict)
    node: Node | None = None
    roles: Roles | None = None
    scope: trio.CancelScope | None = None
    stopped: trio.Event = field(default_factory=trio.Event)

    @property
    def address(self) -> bytes:
        return bytes.fromhex(Account.from_key(self.payment_key).address[2:])

    @property
    def peer(self) -> str:
        return self.key.node_id.text

    def live(self) -> Roles:
        assert self.roles is not None, f"{self.name} is not running"
        return self.roles

    async def journal(self, job_id: bytes) -> list[tuple[str, bytes, bytes, int]]:
        """This member's market journal of ``job_id``: (kind, peer, data, now_ms), in order."""
        return await self.live().ctx.node.store.call(
            partial(persist.read_journal, job_id=job_id.hex())
        )


class Cluster:
    def __init__(self, nursery: trio.Nursery, root: Path) -> None:
        self.nursery = nursery
        self.root = root
        self.hub = MemoryHub()
        self.base_ms = time.time_ns() // 1_000_000
        self.escrow = FakeEscrow(lambda: self.wall_ms() // 1000)
        self.members: dict[str, Member] = {}
        self._nonces = itertools.count(1)

    def wall_ms(self) -> int:
        return self.base_ms + int(trio.current_time() * 1000)

    async def add(
        self, name: str, *roles: str, chain: bool = True, frames: FakeFrames | None = None,
        tiles: FakeTiles | None = None, stake: bool = True, payment_key: bytes | None = None,
        **config: Any,
    ) -> Member:  # fmt: skip
        """A member playing ``roles``; a checker on the chain holds what a claim of its
        pass takes (a requester asks no other by default) unless ``stake`` is False.
        ``payment_key``: its chain account's (a fresh one by default)."""
        key = NodeKey.generate()
        payment_key = payment_key or bytes(Account.create().key)
        address = bytes.fromhex(Account.from_key(payment_key).address[2:])
        member = Member(
            name, key, bytes(payment_key), self.root / name,
            tuple(ROLE_NAMES[r] for r in roles), fake_kit(frames, tiles),
            FakeChain(self.escrow, address) if chain else None, config,
        )  # fmt: skip
        if chain and "checker" in roles and stake:  # as the devnet does: what a pass claim takes
            self.escrow.stakes[address] = self.escrow.stakes.get(address, 0) + self.escrow.terms.cap_wei
        self.members[name] = member
        await self.start(member)
        return member

    async def start(self, member: Member) -> None:
        member.stopped = trio.Event()
        await self.nursery.start(self._run, member)
        for other in self.members.values():
            if other is not member and other.node is not None:
                await member.live().ctx.node.network.connect(f"/memory/{other.peer}/p2p/{other.peer}")

    async def _run(self, member: Member, *, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
        values: dict[str, Any] = {
            "listen_addrs": (), "mdns": False, "api_port": 0, "advert_interval_s": 5.0,
            "shutdown_grace_s": 1.0, "roles": member.roles_wanted, "lease_s": 20.0,
            "price_wei_per_ru": PRICE_WEI_PER_RU, **member.overrides,
        }  # fmt: skip
        config = NodeConfig(data_dir=member.data_dir, **values)
        try:
            with trio.CancelScope() as member.scope:
                async with self.hub.open(member.peer) as net, \
                        open_store(config.db_path, inline=True) as store:  # autojump: see Store
                    async with trio.open_nursery() as nursery:
                        node = Node(config, member.key, member.payment_key, net, store,
                                    wall_ms=self.wall_ms, nonce=partial(next, self._nonces))  # fmt: skip
                        await nursery.start(node.run)
                        ports = RolePorts(member.kit, member.chain)
                        member.node = node
                        member.roles = await nursery.start(
                            partial(run_roles, node, config, member.payment_key, ports=ports)
                        )
                        task_status.started()
        finally:
            member.node = member.roles = None
            member.stopped.set()

    async def kill(self, name: str) -> None:
        member = self.members[name]
        assert member.scope is not None
        member.scope.cancel()
        await member.stopped.wait()

    async def restart(self, name: str) -> Member:
        member = self.members[name]
        await self.start(member)
        return member

    async def settle(self, name: str, peers: int) -> None:
        """Wait until ``name`` holds adverts from ``peers`` other members."""
        node = self.members[name].live().ctx.node
        await node.wait_until(lambda: len(node.capacity) >= peers)

    async def submit(
        self, client: str, frames: int = 4, *, max_price_wei: int = 2 * 10**14,
        deadline_s: float = 3600.0, assurance: str = "normal", **scene: Any,
    ) -> bytes:  # fmt: skip
        member = self.members[client]
        scene_path = write_scene(self.root / f"{client}-scene-{len(self.members)}.json", **scene)
        job = await submit(member.live(), SubmitRequest(
            scene=scene_path, frames=tuple(range(1, frames + 1)),
            max_price_wei_per_frame=max_price_wei, deadline_s=deadline_s,
            out_dir=self.root / f"{client}-out", assurance=assurance,
        ))  # fmt: skip
        return job.job_id


@asynccontextmanager
async def open_cluster(root: Path, limit_s: float = 4 * 3600) -> AsyncIterator[Cluster]:
    """``limit_s`` of mock time: a test that would wait forever fails instead."""
    with trio.fail_after(limit_s):
        async with trio.open_nursery() as nursery:
            cluster = Cluster(nursery, root)
            try:
                yield cluster
            finally:
                nursery.cancel_scope.cancel()


async def stranger(
    heard_by: Member, key: NodeKey | None = None, payment_key: bytes | None = None
) -> tuple[bytes, bytes]:
    """A node no cluster member runs, advertised to ``heard_by`` (kept in its store too, as
    a heard advert is: it survives a restart) with a payment address its advert binds
    (docs/PROTOCOL.md §8.1: both keys sign): its bids name that address, whose stake a
    requester then reads; ``key``: that node's (again: its advert now binds a fresh
    address, or ``payment_key``'s). (node id, payment address)"""
    key, payment_key = key or NodeKey.generate(), payment_key or bytes(Account.create().key)
    advert = CapacityAdvert((Role.WORKER,), (), (), 0, 0, 0,
                            PaymentBinding.create(key, payment_key), (), 1)  # fmt: skip
    node = heard_by.live().ctx.node
    now_ms = int(time.time() * 1000)
    node.capacity[key.node_id.text] = SeenAdvert(advert, now_ms, now_ms)
    envelope = encode_envelope(key, advert, nonce=1, now_ms=now_ms)
    await node.store.save_advert(key.node_id.text, envelope, [], now_ms)
    node._notify()  # as a gossiped advert wakes what waits on the node
    return key.node_id.raw, bytes.fromhex(Account.from_key(payment_key).address[2:])


async def client_with_checker(cluster: Cluster, **config: Any) -> Member:
    """A client (``config``: its settings, a minimum stake say) and one checker it may ask
    (registered with the escrow), adverts heard."""
    client = await cluster.add("client", "client", **config)
    checker = await cluster.add("c1", "checker")
    cluster.escrow.register(checker.address, max(10**18, config.get("min_stake_wei", 0)))
    await cluster.settle("client", 1)
    return client

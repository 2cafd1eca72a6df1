"""The reference node the conformance peer talks to (the harness side: uses node/).

A ``Node`` with its roles on a real py-libp2p host, requester role only (no
renderer), and the few handles the test needs to see what the node did.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import trio

from node.app.run import libp2p_settings
from node.config import NodeConfig
from node.net.libp2p_net import open_libp2p_network
from node.roles.service import Roles, run_roles
from node.runtime import Node
from node.store import open_store
from protocol import NodeKey
from protocol.messages import Assurance, JobSpec, RenderSettings, job_id_of

PAYMENT_KEY = b"\x22" * 32


def wall_ms() -> int:
    return time.time_ns() // 1_000_000


@dataclass
class Requester:
    node: Node
    roles: Roles
    out_dir: Path

    @property
    def addr(self) -> str:
        return self.node.network.listen_addrs()[0]

    def knows(self, peer: str) -> bool:
        return peer in self.node.capacity

    async def wait_for_advert(self, peer: str, timeout_s: float) -> None:
        with trio.move_on_after(timeout_s):
            await self.node.wait_until(lambda: self.knows(peer))

    async def start_job(self, scene: bytes, build: str, assurance: str) -> bytes:
        ctx = self.roles.ctx
        cid = ctx.content.put_bytes(scene)
        now = ctx.clock.now_ms()
        spec = JobSpec(
            requester=ctx.me, requester_address=ctx.payment_address, scene_cid=cid,
            scene_size_bytes=len(scene), renderer_build=build,
            settings=RenderSettings("CYCLES", 64, 64, 1, 0, "PNG_RGBA8"), frames=(1,),
            ru_per_frame=10, max_price_wei_per_frame=10**15, budget_wei=10**15,
            deadline_ms=now + 3_600_000, assurance=Assurance(assurance), checker_fee_bps=0,
            escrow=None, created_ms=now,
        )  # fmt: skip
        job_id = job_id_of(spec)
        await self.roles.requester.start_job(spec, job_id, self.out_dir)
        return job_id

    async def wait_for_frame(self, data: bytes) -> None:
        path = self.out_dir / "frame_0001.png"
        job = next(iter(self.roles.requester.jobs.values()))
        while not (path.exists() and path.read_bytes() == data):
            await job.wait_changed()

    async def wait_for_verifying(self, frames: int) -> None:
        job = next(iter(self.roles.requester.jobs.values()))
        while job.machine.statistics().frames_verifying != frames:
            await job.wait_changed()

    def refusals(self) -> dict[str, dict[str, int]]:
        return {
            v.peer: v.rejected for v in self.node.scorer.view(trio.current_time()) if v.rejected
        }


@asynccontextmanager
async def running_requester(tmp_path: Path) -> AsyncIterator[Requester]:
    config = NodeConfig(data_dir=tmp_path / "node", listen_addrs=("/ip4/127.0.0.1/tcp/0",),
                        mdns=False, api_port=0)  # fmt: skip
    key, nonces = NodeKey.generate(), itertools.count(1)
    async with (
        open_libp2p_network(key, libp2p_settings(config)) as network,
        open_store(config.db_path) as store,
        trio.open_nursery() as nursery,
    ):
        node = Node(config, key, PAYMENT_KEY, network, store, wall_ms=wall_ms,
                    nonce=lambda: next(nonces))  # fmt: skip
        await nursery.start(node.run)
        roles = await nursery.start(run_roles, node, config, PAYMENT_KEY)
        try:
            yield Requester(node, roles, tmp_path / "out")
        finally:
            roles.stop()
            node.stop()

"""What a node's role drivers are built from: one frozen settings record and the live parts."""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass, field, replace
from pathlib import Path

import trio

from node.config import PASS_CLAIM_STAKE
from node.content.net import content_limits
from node.content.source import ChunkSource
from node.content.store import ContentStore
from node.content.transfer import TransferConfig, fetch
from node.net.reqresp import ReqRespLimits
from node.roles.common import MarketClock, Outbox, peer_of
from node.roles.ports import Chain, RenderKit
from node.runtime import Node
from protocol.market import MarketConfig

ADVERSARY_MODES = ("", "wrong-seed", "wrong-seed-disputed", "clawback", "unsigned-result", "lazy", "stall")  # test-only behaviours, never on by default


@dataclass(frozen=True)
class RoleSettings:
    price_wei_per_ru: int = 10**12
    market: MarketConfig = field(default_factory=MarketConfig)
    redeem_retry_s: float = 2.0
    adversary: str = ""
    # As a requester with a chain: the stake checkers must hold (NodeConfig.checker_stake_wei;
    # PASS_CLAIM_STAKE: the escrow's SLASH_CAP, node.roles.requester resolves it)
    checker_stake_wei: int = PASS_CLAIM_STAKE


@dataclass
class RoleContext:
    node: Node
    clock: MarketClock
    outbox: Outbox
    content: ContentStore
    chain: Chain | None
    render: RenderKit
    payment_key: bytes
    payment_address: bytes
    settings: RoleSettings
    work_root: Path
    # CID -> the fetch in progress: two roles (a task and a capacity challenge) that
    # want one scene at once fetch it once (two fetches would share one partial file).
    _fetching: dict[str, trio.Event] = field(default_factory=dict)

    @property
    def me(self) -> bytes:
        return self.node.key.node_id.raw

    async def fetch_from(
        self, node_id: bytes, cid: str, *also: bytes, max_bytes: int | None = None
    ) -> Path:
        """Bring ``cid`` from ``node_id`` — or, failing it, from any of ``also`` — into the
        content store (verified against the CID) and return its path; ``max_bytes``
        refuses larger content (default: the transfer's own limit)."""
        while not self.content.has(cid) and cid in self._fetching:
            await self._fetching[cid].wait()  # then ours, if theirs failed
        if not self.content.has(cid):
            sources: list[ChunkSource] = [
                _peer_source(self.node, peer_of(n)) for n in dict.fromkeys((node_id, *also))
            ]
            done = self._fetching[cid] = trio.Event()
            try:
                config = TransferConfig()
                if max_bytes is not None:
                    config = replace(config, max_content_bytes=max_bytes)
                await fetch(cid, sources, self.content, config)
            finally:
                del self._fetching[cid]
                done.set()
        return self.content.path_of(cid)


def _peer_source(node: Node, peer: str) -> ChunkSource:
    from node.content.net import PeerChunkSource

    limits: ReqRespLimits = content_limits(TransferConfig().max_chunk_bytes)
    return PeerChunkSource(node.network, peer, limits)


def make_work_root(data_dir: Path) -> Path:
    """A render scratch folder the sandbox user can traverse (it may run as ``nobody``)."""
    root = Path(tempfile.mkdtemp(prefix="pictor-work-"))
    os.chmod(root, 0o711)
    return root

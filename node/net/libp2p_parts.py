"""py-libp2p 0.8.1 parts the node adjusts (why: ``node.net.libp2p_net``'s docstring)."""

from __future__ import annotations

import contextlib
from typing import Any

from libp2p.peer.id import ID
from libp2p.peer.peerstore import PeerStore
from libp2p.pubsub.pubsub import Pubsub


class ResizingQueues(dict[Any, Any]):
    """Pubsub's per-peer outbound queues, resized as pubsub creates them.

    py-libp2p builds each ``RpcQueue()`` with a hard-coded 32 entries and no
    hook; a burst of publishes larger than that is dropped for that peer.
    """

    def __init__(self, max_len: int) -> None:
        super().__init__()
        self._max_len = max_len

    def __setitem__(self, peer: Any, queue: Any) -> None:
        queue._queue.max_size = self._max_len
        super().__setitem__(peer, queue)


class PinnedPeerStore(PeerStore):
    """A ``PeerStore`` whose eviction never removes the pinned peers (our own key)."""

    def __init__(self, pinned: set[ID] | None = None) -> None:
        super().__init__()
        self.pinned: set[ID] = pinned or set()

    def _enforce_peer_limit(self) -> None:
        held = {p: self.peer_data_map.pop(p) for p in self.pinned if p in self.peer_data_map}
        self.max_peers -= len(held)
        try:
            super()._enforce_peer_limit()
        finally:
            self.max_peers += len(held)
            self.peer_data_map.update(held)

    def clear_peerdata(self, peer_id: ID) -> None:
        if peer_id not in self.pinned:
            super().clear_peerdata(peer_id)


class TunedPubsub(Pubsub):
    def notify_subscriptions(self, publish_message: Any) -> None:
        # Delivered already by the topic validator (see module docstring).
        return

    async def _teardown_if_connected(self, peer_id: ID) -> None:
        # py-libp2p 0.8.1 runs this when a peer is blacklisted (banned) and does
        # ``del self.peers[peer_id]`` after awaiting the stream's reset; when the
        # peer hangs up meanwhile, its dead-peer handler has removed it already,
        # and the KeyError stopped pubsub's service and with it the node.
        stream = self.peers.get(peer_id)
        if stream is not None:
            with contextlib.suppress(Exception):
                await stream.reset()
            self.peers.pop(peer_id, None)
        self._forget_all_subscriptions(peer_id)

"""The node's banned peers: each ban ends after ``ban_s``, and there are at most ``limit``.

Theory of operation. A peer whose score reaches the ban threshold is banned: the
runtime disconnects it and the network layer blocks it (no gossip taken, no
connection kept, no dial). The block used to last until the node restarted and
the set of banned peers only grew: a flood of fresh identities, each banned in
turn, grew it without bound (one test bans 90 stream hoarders) and an honest
peer banned once stayed shut out past the ``ban_s`` that docs/PROTOCOL.md §9
promises. Now every ban has its end, bans end in the order they began (one
``ban_s`` for all), and past ``limit`` the oldest ban ends early: a flood of
identities costs at most ``limit`` entries, and it can only shorten the bans of
its own older identities or of peers banned before it.
"""

from __future__ import annotations

from collections import OrderedDict

MAX_BANNED = 16_384


class Bans:
    def __init__(self, ban_s: float, limit: int = MAX_BANNED) -> None:
        self.ban_s = ban_s
        self.limit = limit
        self._until: OrderedDict[str, float] = OrderedDict()  # peer -> end, oldest first

    def __contains__(self, peer: object) -> bool:
        return peer in self._until

    def __len__(self) -> int:
        return len(self._until)

    def add(self, peer: str, now_s: float) -> list[str]:
        """Ban ``peer`` from ``now_s``; returns the bans ended early to stay in ``limit``."""
        self._until.pop(peer, None)
        self._until[peer] = now_s + self.ban_s
        ended = []
        while len(self._until) > self.limit:
            ended.append(self._until.popitem(last=False)[0])
        return ended

    def next_end_s(self) -> float | None:
        """When the oldest ban ends (None: nobody is banned)."""
        return next(iter(self._until.values()), None)

    def expire(self, now_s: float) -> list[str]:
        """End every ban due by ``now_s``; returns those peers."""
        ended = []
        while self._until and next(iter(self._until.values())) <= now_s:
            ended.append(self._until.popitem(last=False)[0])
        return ended

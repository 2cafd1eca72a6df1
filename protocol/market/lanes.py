"""How much of a job's escrow the requester moves into each payee's lane, and when.

Theory of operation
-------------------
The escrow pays a payee only out of its *lane* (docs/LEDGER.md), and a worker
renders only what its lane secures, so the requester funds lanes before it
sends the awards (and checker assignments) they secure. Funding costs a
transaction, so a lane is funded in chunks: when an award round or an
assignment leaves a payee's lane below what it *needs* (owed so far plus its
in-flight tasks, this round's included), the lane is topped up to that need
plus a chunk of further work (for a worker: its share of the frames still
pending; for a checker: its share of the frames not yet settled), and not
touched again while it still covers the need. A lone worker's lane is thus
funded about once per job.

Money in a lane beyond its payee's need (*slack*) can only ever go to that
payee, so the machine treats it as spent for everyone else: awards come out of
``budget − committed − Σ slack`` (a bidder may also use its own slack),
chunks never eat into what the pending frames' checker fees need, and lanes
never sum past the budget (the escrow would refuse: "over budget").
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field


@dataclass
class LaneBook:
    budget_wei: int
    lanes_wei: dict[bytes, int] = field(default_factory=dict)  # funded total per payee

    @property
    def total_wei(self) -> int:
        return sum(self.lanes_wei.values())

    def can_cover(self, address: bytes, need_wei: int) -> bool:
        """Whether ``address``'s lane holds ``need_wei`` or can still be funded to it."""
        lane_wei = self.lanes_wei.get(address, 0)
        return need_wei - lane_wei <= self.budget_wei - self.total_wei

    def slack(self, needs: Mapping[bytes, int]) -> dict[bytes, int]:
        """Per payee, what its lane holds beyond its need."""
        return {a: max(0, lane - needs.get(a, 0)) for a, lane in self.lanes_wei.items()}

    def top_up(
        self, needs: Mapping[bytes, int], chunks: Mapping[bytes, int], spare_wei: int
    ) -> tuple[tuple[bytes, int], ...]:
        """Fund every payee of ``chunks`` whose lane is below its need: to the need plus
        its chunk, chunks together at most ``spare_wei``, all lanes at most the budget.
        Returns the (payee, amount) fundings, in the order of ``chunks``."""
        room_wei = self.budget_wei - self.total_wei
        fundings: list[tuple[bytes, int]] = []
        for address, chunk_wei in chunks.items():
            lane_wei, need_wei = self.lanes_wei.get(address, 0), needs.get(address, 0)
            if lane_wei >= need_wei:
                continue
            extra_wei = max(0, min(chunk_wei, spare_wei))
            amount_wei = min(need_wei - lane_wei + extra_wei, room_wei)
            if amount_wei <= 0:
                continue
            spare_wei -= extra_wei
            room_wei -= amount_wei
            self.lanes_wei[address] = lane_wei + amount_wei
            fundings.append((address, amount_wei))
        return tuple(fundings)

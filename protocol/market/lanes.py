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

Slack is also money the job can lose: a payee that stops (blocklisted after a
rejection, gone) keeps it until the refund after the deadline, and the frames it
was meant for find no budget. So a chunk is at most the payee's *credit*: what it
has earned in this job, or for a worker the frames the requester's own checks
accepted of it before (``WorkerRecord.own_accepted``; not the public record's
counts, which puppets can pad for each other), at its price, whichever is more.
A fresh worker's lane thus grows with its accepted work, about doubling at each
top-up (a lone worker takes 1 + log2(frames) fundings: 40 frames, 7), and one the
requester knows is funded for its share at once.
Before, with bids at the cap, one fresh identity blocklisted after its first
result stranded its whole share and the job expired short by exactly that share
(3 frames and 3 workers: 2 done; 20 and 4: 15 done;
tests/protocol/market/test_lane_credit.py). The price of the attempt in flight
is still stranded by a worker that stops: the escrow has room for that
(protocol.market.quote.budget_wei's retries).
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
        self,
        needs: Mapping[bytes, int],
        chunks: Mapping[bytes, int],
        spare_wei: int,
        credits: Mapping[bytes, int],
    ) -> tuple[tuple[bytes, int], ...]:
        """Fund every payee of ``chunks`` whose lane is below its need: to the need plus
        its chunk, each chunk at most its payee's credit, chunks together at most
        ``spare_wei``, all lanes at most the budget. Returns the (payee, amount)
        fundings, in the order of ``chunks``."""
        room_wei = self.budget_wei - self.total_wei
        fundings: list[tuple[bytes, int]] = []
        for address, chunk_wei in chunks.items():
            lane_wei, need_wei = self.lanes_wei.get(address, 0), needs.get(address, 0)
            if lane_wei >= need_wei:
                continue
            extra_wei = max(0, min(chunk_wei, spare_wei, credits.get(address, 0)))
            amount_wei = min(need_wei - lane_wei + extra_wei, room_wei)
            if amount_wei <= 0:
                continue
            spare_wei -= extra_wei
            room_wei -= amount_wei
            self.lanes_wei[address] = lane_wei + amount_wei
            fundings.append((address, amount_wei))
        return tuple(fundings)

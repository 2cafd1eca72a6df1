"""The requester's side of forced errors: frames served to checkers, plants, strikes.

Theory of operation. A checker fetches every frame it judges from the
requester, never from the worker, and always as the requester's canonical
re-encoding (:mod:`node.verify.plant`): a real frame and a plant come from the
same node, in the same encoding, under CIDs the worker has never held, so
neither the content source nor the file tells them apart (the worker cannot be
asked "do you hold this CID?" to sort them). :meth:`CheckFrames.prepare` makes
the canonical copy before a check is assigned; :meth:`CheckFrames.served` is its
CID, which the assignment gives the job machine (journalled with it): the
``VerifyRequest`` names it, and so does the checker's signed pass
(``Verdict.pass_sig``), which the machine checks against it.

A ``RequestPlant`` from the job machine (:mod:`protocol.market.plants`) is
carried out by :meth:`CheckFrames.plant`: the worker's frame perturbed with the
machine's key and stored, a checker chosen that is neither the worker nor on
the task, and the assignment journalled (``plant`` entry) so a replay decides
the same. The plant's checker is picked before the task's real checker: the
real check waits for it while the plant is made (:meth:`CheckFrames.picked_first`,
at most ``PLANT_WAIT_S``) and, when the plant waits for a checker with room, waits
for room behind it (:meth:`CheckFrames.plant_ahead`; journalled as ``waits``, so
not counted towards ``verify_attempts``), so a checker cannot dodge plants by
taking real checks first (protocol.market.plants). A plant of a result decided or
abandoned meanwhile is not sent, and its checker gets the job's announce first, as
a real check's does. The work record of a task with an open plant is held back until the
plant is decided (:meth:`CheckFrames.holding`, ``JobRecord.flush``): a lazy checker waiting for the
public record to see which frame the worker really delivered would otherwise
learn that its request was a plant before it answered.

The plant goes only if the machine's draw is below the chosen checker's
probation rate (``protocol.forced_errors.plant_goes``, with the plants of ours it
rejected: :attr:`RequesterRole.tested`, at most ``MAX_TESTED`` checkers, in
memory: after a restart every checker is on probation again, which costs
plants, never a missed test; the journals' replay of open jobs counts theirs
again). The frame is fetched and perturbed only for a plant that goes.

A checker whose verdict passed a plant (``PlantJudged.missed``) is struck:
this requester never asks it again (:attr:`CheckFrames.struck`, rebuilt from
the journals of open jobs on restart), its fee for the plant is withheld by
the machine, and the miss is logged with the verdict's digest.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import trio

from node.log import log_event
from node.verify.images import ImageError
from node.verify.plant import canonical_png, plant_png
from protocol.forced_errors import cells_bitmap, cells_of_bitmap, plant_goes
from protocol.market import Command, JobState, PlantJudged, RequestPlant, TaskState
from protocol.verification import DEFAULT_POLICY, Tile, tile_grid

if TYPE_CHECKING:

    from node.roles.requester_job import RequesterJob

logger = logging.getLogger(__name__)
MAX_CHECK_FRAMES = 4_096  # worker CID -> canonical CID, per job (oldest forgotten)
MAX_TESTED = 100_000  # checkers whose rejected plants we count (as MAX_WORKER_RECORDS)
PLANT_WAIT_S = 30.0  # how long a real check waits for its task's plant to pick a checker


class CheckFrames:
    """One job's frames as checkers see them (see the module docstring)."""

    def __init__(self, job: RequesterJob) -> None:
        self.job = job
        self.canonical: dict[str, str] = {}  # the worker's frame CID -> the copy checkers get
        self._planting: set[bytes] = set()  # task ids whose plant is being made
        # task ids whose plant has not picked its checker yet (their real check waits for
        # it: picked_first), and of those, the plants waiting for a checker with room
        self._picks_first: set[bytes] = set()
        self._waiting_room: set[bytes] = set()

    async def prepare(self, worker: bytes, frame_cid: str) -> None:
        """Make the canonical copy of the worker's frame (no-op when made already)."""
        if frame_cid in self.canonical:
            return
        ctx = self.job.ctx
        # one fetch of a CID at a time, others beside it (RoleContext.fetch_from): a lock
        # for the whole job let a worker trickling its frame hold every check of the job
        # (review of stop 44)
        path = await ctx.fetch_from(worker, frame_cid)
        try:
            data = canonical_png(path)  # on the loop, as the checker decodes (a frame: ms)
        except ImageError:
            # Not an image: served as delivered, for the checker to reject (a plant is
            # never made of one, and any lazy pass of it is provably wrong to anyone).
            self._remember(frame_cid, frame_cid)
            return
        self._remember(frame_cid, ctx.content.put_bytes(data))

    def _remember(self, frame_cid: str, served: str) -> None:
        self.canonical[frame_cid] = served
        if len(self.canonical) > MAX_CHECK_FRAMES:
            del self.canonical[next(iter(self.canonical))]

    def served(self, frame_cid: str) -> str:
        """The CID checkers get the worker's frame ``frame_cid`` under: its canonical copy
        once :meth:`prepare` made it (the frame itself when it is not an image)."""
        return self.canonical.get(frame_cid, frame_cid)

    def expect(self, c: RequestPlant) -> None:
        """A ``RequestPlant`` came: until its checker is picked the task's real check
        waits (:meth:`picked_first`, :meth:`plant_ahead`). Called before :meth:`plant`
        is spawned."""
        self._planting.add(c.task_id)
        self._picks_first.add(c.task_id)

    async def picked_first(self, task_id: bytes) -> None:
        """Wait while the plant of ``task_id``, if one is being made, has not picked its
        checker, so that the real check is picked second, never the other way round
        (protocol.market.plants: plants reach a checker in proportion to the checks it
        takes, whatever its speed); at most ``PLANT_WAIT_S``. A plant that waits for a
        checker with room ends this wait at once: the real check then waits for room
        too, told to the machine (``RequesterJob._wait_for_room``: ``waits``, not counted
        towards ``verify_attempts``), and :meth:`plant_ahead` keeps it behind the plant.
        (Waiting here instead, untold to the machine, each verify timeout counted an ask and
        the result was abandoned and rendered again: review of stop 41.)"""
        job = self.job
        with trio.move_on_after(PLANT_WAIT_S):
            while task_id in self._picks_first and task_id not in self._waiting_room:
                await job.wait_changed()

    def plant_ahead(self, task_id: bytes) -> bool:
        """Whether the plant of ``task_id`` waits for a checker with room and has not
        picked yet: the real check has no room until it has (the first place to free is
        the plant's; racing for it, the real check won it now and then)."""
        return task_id in self._waiting_room

    async def plant(self, c: RequestPlant) -> None:
        """Carry out a ``RequestPlant``: make and store the plant, pick, journal, send."""
        self.expect(c)
        try:
            await self._plant(c)
        finally:
            self._picks_first.discard(c.task_id)
            self._waiting_room.discard(c.task_id)
            self._planting.discard(c.task_id)
            job = self.job
            job.notify()  # the real check waiting behind it (picked_first, plant_ahead)
            job.record.flush(job.ctx.node.record, job.live, self.holding)

    async def _plant(self, c: RequestPlant) -> None:
        job = self.job
        if not await job.feed_checker_stake():
            return  # what a checker must hold is not known: no plant
        await job.feed_checker_stakes(c.worker)  # picked first: nobody read them for this task
        def qualifies(node: bytes) -> bool:  # the stake a checker needs, as for a real check
            address = job.role.address_of(node)
            return address is not None and job.machine.checker_qualifies(address)

        def exclude() -> frozenset[bytes]:  # the worker, the task's checkers, its refused
            # ones, and a real check's pick not journalled yet (a plant that waited for room)
            return (c.exclude | job.machine.checkers_excluded(c.task_id)
                    | job.machine.checkers_refused(c.task_id) | job.assigning(c.task_id))  # fmt: skip

        spare = len(job.role.checker_candidates(c.worker, exclude(), qualifies))
        if not job.machine.plant_spares_checks(c.task_id, spare):
            return  # the result's own checks need every checker about
        cap = job.machine.config.checks_per_checker

        def verifying() -> bool:  # a plant of a decided or abandoned result is not sent
            machine = job.machine
            return machine.state is JobState.OPEN and machine.task_state(c.task_id) is TaskState.VERIFYING

        def room() -> bool:  # as a real check, a plant waits for a checker with room
            candidates = job.role.checker_candidates(c.worker, exclude(), qualifies)
            return not verifying() or not candidates or bool(job.role.with_room(candidates, cap))

        # the plant first, whoever gets it: a checker's place is held from its pick to the
        # journalled ask, never across the frame's fetch (second review of stop 40)
        path = await self.job.ctx.fetch_from(c.worker, c.frame_cid)
        tile_px = DEFAULT_POLICY.sampling.tile_px
        settings = job.machine.spec.settings
        size = (settings.resolution_x, settings.resolution_y)
        try:
            data, blank = plant_png(path, c.key, tile_px, size)
        except ImageError:
            return  # the real check rejects the frame (unreadable, another size)
        if blank == frozenset(tile_grid(settings.resolution_x, settings.resolution_y, tile_px)):
            return  # nothing visible to change
        plant_cid = job.ctx.content.put_bytes(data)
        if not room():
            self._waiting_room.add(c.task_id)
            job.notify()  # the real check stops waiting in picked_first: it waits for room
            while not room():
                await job.room_or_stale(room)
        if not verifying():
            return
        checker = job.role.pick_checker(c.worker, exclude(), qualifies, "plant", room=cap)
        if checker is None:
            return
        with job.role.holding_room(checker):  # until the plant's ask is journalled
            await self._send_plant(c, job, checker, plant_cid, blank)

    async def _send_plant(
        self, c: RequestPlant, job: RequesterJob, checker: bytes, plant_cid: str,
        blank: frozenset[Tile],
    ) -> None:  # fmt: skip
        tested = job.role.tested.get(checker, 0)
        if not plant_goes(c.position, tested, job.machine.config.plant_rate_ppm):
            return  # probation: this checker's rate is below the machine's draw
        address = job.role.address_of(checker)
        if address is None:
            return
        # Introduced as a real check's checker is: a checker that knows the job only from
        # a direct announce refused a plant as "unknown job", at no cost (review of stop 41)
        await job.introduce(checker)
        settings = job.machine.spec.settings
        bits = cells_bitmap(blank, settings.resolution_x, settings.resolution_y,
                            DEFAULT_POLICY.sampling.tile_px)  # fmt: skip
        entry = c.task_id + address + plant_cid.encode() + b"\n" + bits
        await job.step("plant", checker, entry, job.ctx.clock.now_ms())

    def judged(self, c: PlantJudged) -> None:
        """A plant's verdict: a miss strikes its checker with this requester."""
        if c.void:  # it looked only where the plant changed nothing: no test either way
            return
        if not c.missed:  # probation: a checker we know gets fewer plants
            role = self.job.role
            if len(role.tested) >= MAX_TESTED and c.checker not in role.tested:
                role.tested.clear()  # strangers' ids stay bounded; probation starts again
            role.tested[c.checker] = role.tested.get(c.checker, 0) + 1
        if c.missed:
            self.job.role.struck.add(c.checker)
            log_event(logger, logging.WARNING, "checker passed a plant", checker=c.checker.hex()[:16],
                      task=c.task_id.hex()[:16], verdict=c.verdict_digest.hex()[:16])  # fmt: skip

    def holding(self, task_id: bytes) -> bool:
        """Whether the task's public record must wait: its plant is being made or is
        out without a verdict (``JobRecord.flush`` keeps it until then)."""
        return task_id in self._planting or self.job.machine.plant_open(task_id)


def apply_plant_entry(job: RequesterJob, checker: bytes, data: bytes, now_ms: int) -> list[Command]:
    """A journalled ``plant`` entry: task id (32), payment address (20), plant CID, and
    since stop 45 a newline and the bitmap of the plant's blank cells
    (``protocol.forced_errors.cells_bitmap``; an older entry has none: its plant changed
    every cell)."""
    task_id, address = data[:32], data[32:52]
    cid, _, bits = data[52:].partition(b"\n")
    blank: frozenset[Tile] = frozenset()
    if bits:
        settings = job.machine.spec.settings
        blank = cells_of_bitmap(bits, settings.resolution_x, settings.resolution_y,
                                DEFAULT_POLICY.sampling.tile_px)  # fmt: skip
    return job.machine.assign_plant(task_id, checker, cid.decode(), now_ms, address, blank)

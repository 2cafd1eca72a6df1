"""The worker's side of a capacity challenge: render the derived frame, answer by CID.

Theory of operation. A requester may challenge a bidder (node.roles.challenger)
with a ``CapacityChallenge`` that names only an id and the job; what to render
is derived from them (``protocol.challenge.challenge_of``: the job's scene at a
quarter of its pixels, seeded by the id). We answer only the requester of a job
we bid on, once per job, and one challenge at a time: a stranger cannot buy
free renders with challenges, and a requester gets at most one small frame per
job from us unpaid. The scene passes our own preflight first, as for a task.
The answer is timed by the challenger, not by us: we render as soon as we can.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Callable, Mapping
from pathlib import Path

import trio

from node.log import log_event
from node.roles.context import RoleContext
from node.roles.scene_gate import SceneGate
from protocol.challenge import challenge_of
from protocol.errors import IllegalMessage
from protocol.messages import CapacityChallenge, ChallengeAnswer, JobSpec

logger = logging.getLogger(__name__)
MAX_ANSWERED = 4096  # jobs whose challenge we answered (oldest forgotten)


class ChallengeAnswerer:
    def __init__(
        self, ctx: RoleContext, specs: Mapping[bytes, JobSpec], bid_on: Callable[[bytes], bool],
        identity: tuple[str, str], scene_gate: SceneGate,
    ) -> None:  # fmt: skip
        self.ctx = ctx
        self.specs = specs
        self.bid_on = bid_on
        self.build, self.device_class = identity
        self.scene_gate = scene_gate
        self._answered: OrderedDict[bytes, None] = OrderedDict()  # job ids
        self._busy = False
        self.answered = 0

    def receive(self, sender: bytes, challenge: CapacityChallenge, nursery: trio.Nursery) -> None:
        """Start answering; raises ``IllegalMessage`` for a challenge we never invited."""
        spec = self.specs.get(challenge.job_id)
        if spec is None or spec.requester != sender or not self.bid_on(challenge.job_id):
            raise IllegalMessage("a capacity challenge for a job we did not bid on to its sender")
        if challenge.job_id in self._answered:
            raise IllegalMessage("a second capacity challenge for one job", penalty=10)
        if self._busy:
            return  # one at a time: the challenger times out and we stay on trial frames
        self._answered[challenge.job_id] = None
        while len(self._answered) > MAX_ANSWERED:
            self._answered.popitem(last=False)
        self._busy = True
        nursery.start_soon(self._answer, sender, spec, challenge)

    async def _answer(self, sender: bytes, spec: JobSpec, message: CapacityChallenge) -> None:
        try:
            challenge = challenge_of(spec, message.job_id, message.challenge_id)
            scene = await self.ctx.fetch_from(sender, spec.scene_cid)
            refusal = await self.scene_gate.refusal(scene, spec.scene_cid, spec.settings,
                                                    spec.ru_per_frame)  # fmt: skip
            if refusal is not None:
                return  # logged by the gate; no answer
            out_dir = self.ctx.work_root / f"challenge-{message.challenge_id.hex()[:16]}"
            outputs = await self.ctx.render.frames.render_frames(
                scene, challenge.settings, [challenge.frame], out_dir
            )
            path: Path = outputs[0].path
            cid = await trio.to_thread.run_sync(self.ctx.content.put_file, path)
            size = path.stat().st_size
            path.unlink(missing_ok=True)
        except Exception as exc:  # no answer: the challenger's timeout fails the challenge
            log_event(logger, logging.WARNING, "capacity challenge not answered",
                      error=f"{type(exc).__name__}: {exc}"[:200])  # fmt: skip
            return
        finally:
            self._busy = False
        self.answered += 1
        answer = ChallengeAnswer(message.challenge_id, message.job_id, cid, size, self.build,
                                 self.device_class)  # fmt: skip
        self.ctx.outbox.send(sender, answer)

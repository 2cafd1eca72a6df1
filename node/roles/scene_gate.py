"""Workers' and checkers' own preflight: every scene is inspected before it renders.

Theory of operation. The requester's client runs preflight before it
announces a job, but a modified client skips it, so a worker never trusts
that: before its first frame of a job it inspects the scene itself (the same
sandboxed inspection, ``RenderKit.inspect``) and applies the same rules
(:func:`node.render.preflight.refusals`). A refused scene is declined with a
typed reason (``AwardDeclined``: ``scene refused: <why>``, see
``WorkerMachine.refuse_scene``) and logged; nothing of it is rendered. A
checker asked to verify a frame of a refused scene sends no verdict.

The worker also checks the job's price: the render units it announces must be
at least what :mod:`protocol.cost` gives for the scene at the job's settings
(an under-priced job would pay below the worker's ask per unit of work).

An inspection costs a Blender start (about a second): its result is kept per
scene CID, at most ``MAX_SCENES`` of them (the oldest go first), and concurrent
awards of one scene wait for the one inspection in flight. A scene Blender
cannot even open for inspection is refused too.

Once a worker with a measured benchmark (score and reference probe) accepts a
scene it probes it (:mod:`node.render.probe`, once per scene and settings):
the measured complexity goes to ``WorkerMachine.scene_measured``, which declines the frame
when it would end after the job's deadline.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import trio

from node.log import log_event
from node.render.base import RenderError
from node.render.preflight import job_ru, light_paths, refusals
from node.render.probe import Probe
from node.roles.ports import SceneInspector, SceneProbe
from protocol.messages import JobSpec, RenderSettings

logger = logging.getLogger(__name__)
MAX_SCENES = 256


@dataclass
class _Inspection:
    done: trio.Event
    facts: dict[str, Any] | None = None
    error: str = ""


class SceneGate:
    """Why a worker refuses a job's scene, or None (see the module docstring)."""

    def __init__(self, inspect: SceneInspector, probe: SceneProbe | None = None) -> None:
        self._inspect = inspect
        self._probe = probe
        self._scenes: dict[str, _Inspection] = {}
        self._probes: dict[tuple[str, RenderSettings], Probe] = {}

    async def refusal(
        self, scene: Path, cid: str, settings: RenderSettings, ru_per_frame: int
    ) -> str | None:
        """Why the scene ``cid`` (stored at ``scene``) is refused for a job pinning
        ``settings`` and announcing ``ru_per_frame``; None when it is not."""
        while True:
            entry = self._scenes.get(cid)
            if entry is None:
                entry = await self._run(scene, cid)
                break
            await entry.done.wait()
            if entry.facts is not None or entry.error:
                break  # else the inspection was cancelled: try again
        why: str | None = f"inspection failed: {entry.error}"
        if entry.facts is not None:
            why = "; ".join(refusals(entry.facts, settings)) or None
            ru = job_ru(entry.facts, settings)
            if why is None and ru > ru_per_frame:  # priced below its work: paid below our ask
                why = (f"the job announces {ru_per_frame} RU per frame, but its scene at "
                       f"its settings is {ru} RU (protocol.cost)")  # fmt: skip
        if why is not None:
            log_event(logger, logging.WARNING, "scene refused", scene=cid[:24],
                      reason=why[:300])  # fmt: skip
        return why

    async def complexity_permille(
        self, scene: Path, spec: JobSpec, frame: int, reference_probe_ms: int
    ) -> int | None:
        """What a probe render measures of an accepted scene (``protocol.cost``), once per
        scene and settings; None when this kit cannot probe or the probe failed."""
        entry = self._scenes.get(spec.scene_cid)
        if self._probe is None or entry is None or entry.facts is None:
            return None
        key = (spec.scene_cid, spec.settings)
        if key not in self._probes:
            try:
                probe = await self._probe(scene, spec.settings, light_paths(entry.facts), frame)
            except RenderError as exc:
                log_event(logger, logging.WARNING, "probe render failed", error=str(exc)[:200])
                return None
            while len(self._probes) >= MAX_SCENES:
                del self._probes[next(iter(self._probes))]
            self._probes[key] = probe
            log_event(logger, logging.INFO, "scene probed", scene=spec.scene_cid[:24],
                      probe_ms=probe.render_ms,
                      complexity_permille=probe.complexity_permille(reference_probe_ms))  # fmt: skip
        return self._probes[key].complexity_permille(reference_probe_ms)

    async def _run(self, scene: Path, cid: str) -> _Inspection:
        while len(self._scenes) >= MAX_SCENES:
            del self._scenes[next(iter(self._scenes))]
        entry = self._scenes[cid] = _Inspection(trio.Event())
        try:
            entry.facts = await self._inspect(scene)
        except RenderError as exc:
            entry.error = str(exc)[:200]
        except BaseException:
            self._scenes.pop(cid, None)  # cancelled: the next award inspects again
            raise
        finally:
            entry.done.set()
        return entry

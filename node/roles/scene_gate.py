"""Workers' and checkers' own preflight: every scene is inspected before it renders.

Theory of operation. The requester's client runs preflight before it
announces a job, but a modified client skips it, so a worker never trusts
that: before its first frame of a job it inspects the scene itself (the same
sandboxed inspection, ``RenderKit.inspect``) and applies the same rules
(:func:`node.render.preflight.refusals`). A refused scene is declined with a
typed reason (``AwardDeclined``: ``scene refused: <why>``, see
``WorkerMachine.refuse_scene``) and logged; nothing of it is rendered. A
checker asked to verify a frame of a refused scene sends no verdict.

An inspection costs a Blender start (about a second): its result is kept per
scene CID, at most ``MAX_SCENES`` of them (the oldest go first), and concurrent
awards of one scene wait for the one inspection in flight. A scene Blender
cannot even open for inspection is refused too.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import trio

from node.log import log_event
from node.render.base import RenderError
from node.render.preflight import refusals
from node.roles.ports import SceneInspector

logger = logging.getLogger(__name__)
MAX_SCENES = 256


@dataclass
class _Inspection:
    done: trio.Event
    facts: dict[str, Any] | None = None
    error: str = ""


class SceneGate:
    """Why a worker refuses a job's scene, or None (see the module docstring)."""

    def __init__(self, inspect: SceneInspector) -> None:
        self._inspect = inspect
        self._scenes: dict[str, _Inspection] = {}

    async def refusal(self, scene: Path, cid: str) -> str | None:
        """Why the scene ``cid`` (stored at ``scene``) is refused; None when it is not."""
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
            why = "; ".join(refusals(entry.facts)) or None
        if why is not None:
            log_event(logger, logging.WARNING, "scene refused", scene=cid[:24],
                      reason=why[:300])  # fmt: skip
        return why

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

"""The ``--settings JOB.json`` file of ``pictor verify``.

Accepted shapes (all keys optional; what is missing is read from the scene):

    {"engine": "CYCLES", "resolution_x": 64, "resolution_y": 48,
     "samples": 8, "seed": 7, "output_format": "PNG_RGBA8"}

or a job spec with those fields under ``"settings"`` and the job's
``"renderer_build"`` (e.g. ``"blender-3.4.1"``) beside them. The worker's
declared ``"worker_build"`` and ``"worker_device_class"`` (from its Result)
select exact comparison when they equal the checker's; without them the
PSNR tolerance is used.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from node.render.base import RendererIdentity
from protocol.messages import RenderSettings

_SETTING_KEYS = tuple(f.name for f in fields(RenderSettings))


class SettingsError(Exception):
    """The settings file is unusable; the message says which key and why."""


@dataclass(frozen=True)
class JobSettings:
    overrides: dict[str, Any]  # RenderSettings fields given by the file
    job_build: str | None
    worker: RendererIdentity | None

    def complete(self) -> bool:
        return all(k in self.overrides for k in _SETTING_KEYS)

    def resolve(self, scene: RenderSettings | None) -> RenderSettings:
        base = {} if scene is None else {k: getattr(scene, k) for k in _SETTING_KEYS}
        values = {"output_format": "PNG_RGBA8", **base, **self.overrides}
        try:
            return RenderSettings(**values)
        except TypeError as exc:
            raise SettingsError(f"settings incomplete: {exc}") from None


NO_SETTINGS = JobSettings({}, None, None)


def read_job_settings(path: Path) -> JobSettings:
    try:
        doc = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise SettingsError(f"{path}: cannot read JSON settings ({exc})") from None
    if not isinstance(doc, dict):
        raise SettingsError(f"{path}: expected a JSON object")
    inner = doc.get("settings", doc)
    if not isinstance(inner, dict):
        raise SettingsError(f"{path}: 'settings' must be an object")
    overrides = {k: inner[k] for k in _SETTING_KEYS if k in inner}
    for key, value in overrides.items():
        want = str if key in ("engine", "output_format") else int
        if type(value) is not want:
            raise SettingsError(f"{path}: {key} must be {want.__name__}, not {value!r:.40}")
        if isinstance(value, int) and value < (0 if key == "seed" else 1):
            raise SettingsError(f"{path}: {key} out of range: {value}")
    job_build = doc.get("renderer_build")
    worker_build = doc.get("worker_build", job_build)
    device = doc.get("worker_device_class")
    worker = None
    if isinstance(worker_build, str) and isinstance(device, str):
        worker = RendererIdentity(worker_build, device)
    return JobSettings(overrides, job_build if isinstance(job_build, str) else None, worker)

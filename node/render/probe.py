"""The probe render: how heavy a scene is on this machine, measured in a second or two.

``protocol.cost`` prices a frame from its resolution, samples and light paths;
what it cannot see (geometry, shaders, lights) a worker measures when it
accepts a scene: one frame of the job at ``protocol.cost.probe_settings``
(the job's aspect ratio at about 120 x 90, at most 16 samples), rendered by
the same backend and sandbox as the job's frames. The renderer's own time for
that frame (start-up and scene load excluded, as for the benchmark) per unit
of work, against the same machine's probe of the reference scene (measured by
``pictor benchmark``), is the scene's ``complexity_permille``.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, replace
from pathlib import Path

from node.render.base import FrameRenderer
from protocol.cost import LightPaths, complexity_permille, frame_work, probe_settings
from protocol.messages import RenderSettings


@dataclass(frozen=True)
class Probe:
    render_ms: int  # the renderer's own time for the probe frame
    work: int  # protocol.cost.frame_work of the probe's settings

    def complexity_permille(self, reference_probe_ms: int) -> int:
        """Against this machine's probe of the reference scene (``BenchmarkResult.probe_ms``)."""
        return complexity_permille(self.render_ms, self.work, reference_probe_ms)


def probe_of(settings: RenderSettings) -> RenderSettings:
    x, y, samples = probe_settings(settings.resolution_x, settings.resolution_y, settings.samples)
    return replace(settings, resolution_x=x, resolution_y=y, samples=samples)


async def probe_render(
    renderer: FrameRenderer,
    scene: Path,
    settings: RenderSettings,
    paths: LightPaths,
    frame: int,
    work_root: Path | None,
) -> Probe:
    """Render ``frame`` of ``scene`` at the probe's size and time it; raises ``RenderError``."""
    small = probe_of(settings)
    with tempfile.TemporaryDirectory(dir=work_root, prefix="pictor-probe-") as tmp:
        (output,) = await renderer.render_frames(scene, small, [frame], Path(tmp))
    work = frame_work(small.resolution_x, small.resolution_y, small.samples, paths)
    return Probe(max(1, round(output.render_s * 1000)), work)

"""One cost model: render units per frame, how long a frame takes a worker, what is absurd.

Theory of operation
-------------------
**1 render unit (RU)** is the work of one reference frame: the reference scene
(``node/render/reference_scene.py``) at 320 x 240, 32 samples, Cycles, with
the job pins and Blender's default light paths (12 bounces). A worker's
benchmark score is how many reference frames it renders per hour.

Path tracing costs about the same per camera sample per pixel, and each bounce
a path may take adds roughly one more ray and light sample. So a frame's work
is estimated from the job's resolution and samples and the scene's light
paths, relative to the reference frame::

    ru_per_frame = ceil(pixels x samples x path_weight(bounces)
                        / (320 x 240 x 32 x path_weight(12)))        (at least 1)

where ``path_weight(b) = PATH_BASE + b``: the camera ray, its first hit and
light samples weigh ``PATH_BASE`` bounce units (measured, see below), each
bounce a path may take one more. ``bounces`` is what a path may take at most
(:func:`effective_bounces`). This is the one number ``pictor scene check``
prints, the job spec announces (``JobSpec.ru_per_frame``), the budget and the
workers' asks are priced from (``price_wei_per_ru x ru_per_frame``), and the
bids' ETAs and deadlines are judged by.

Scene content (geometry, shaders, lights) is what the formula cannot see: a
worker measures it with a short probe render when it accepts a scene (in
``node/``) and hands the result in as ``complexity_permille`` — the probe's
time per unit of work against its probe of the reference scene
(:func:`complexity_permille`) — to :func:`frame_time_ms`, which it compares with the time left before the job's
deadline (:func:`finishes_in_time`). The probe only moves a worker's own
decisions, never the job's price, so every party computes the same RU.

:func:`settings_problem` refuses absurd settings (a frame of more than
``MAX_RU_PER_FRAME``) with a message that says how far off they are.

Integers only (RU, permille, milliseconds): every party must get the same
numbers.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

REFERENCE_PIXEL_SAMPLES = 320 * 240 * 32
REFERENCE_BOUNCES = 12  # Blender's default max_bounces, which the reference scene keeps
# The path weight of a path that may not bounce, in bounce units. Measured on the reference
# scene (320x240, 32 samples, best of 2 frames, loaded 2-core box): 0 bounces 4.88 s,
# 2 bounces 4.92 s, 12 bounces 6.21 s, so a path that may not bounce costs about 79 % of one
# that may bounce 12 times; 36 / (36 + 12) = 75 %. Open scenes lose most paths early; a closed
# room pays more per bounce, which a worker's probe render measures (complexity_permille).
PATH_BASE = 36
MAX_BOUNCES = 1024  # Cycles' own upper limit
# A frame above this is refused: about 20 h on a worker that scores 50,000 RU/h, months on a
# CPU (this repository's 2-core box scores about 485 RU/h).
MAX_RU_PER_FRAME = 1_000_000
PERMILLE = 1000


@dataclass(frozen=True)
class LightPaths:
    """The scene's light-path limits (Cycles ``max_bounces`` and the per-kind caps)."""

    max_bounces: int = REFERENCE_BOUNCES
    diffuse: int = 4
    glossy: int = 4
    transmission: int = 12
    volume: int = 0


REFERENCE_PATHS = LightPaths()


def effective_bounces(paths: LightPaths) -> int:
    """Bounces a path may take at most: the total cap, or the largest per-kind cap below it."""
    kinds = max(paths.diffuse, paths.glossy, paths.transmission, paths.volume)
    return max(0, min(paths.max_bounces, kinds, MAX_BOUNCES))


def path_weight(paths: LightPaths) -> int:
    return PATH_BASE + effective_bounces(paths)


def frame_work(resolution_x: int, resolution_y: int, samples: int, paths: LightPaths) -> int:
    """Pixels x samples x path weight: the numerator of the RU formula."""
    if resolution_x < 1 or resolution_y < 1 or samples < 1:
        raise ValueError("resolution and samples must be >= 1")
    return resolution_x * resolution_y * samples * path_weight(paths)


REFERENCE_WORK = REFERENCE_PIXEL_SAMPLES * path_weight(REFERENCE_PATHS)


def ru_per_frame(resolution_x: int, resolution_y: int, samples: int, paths: LightPaths) -> int:
    """Render units of one frame (see the module docstring); at least 1, rounded up."""
    work = frame_work(resolution_x, resolution_y, samples, paths)
    return max(1, -(-work // REFERENCE_WORK))


def settings_problem(
    resolution_x: int, resolution_y: int, samples: int, paths: LightPaths
) -> str | None:
    """Why these settings are absurd for the network, or None."""
    ru = ru_per_frame(resolution_x, resolution_y, samples, paths)
    if ru <= MAX_RU_PER_FRAME:
        return None
    return (
        f"{resolution_x}x{resolution_y} at {samples} samples with {effective_bounces(paths)} "
        f"bounces is about {ru:,} RU per frame, {ru // MAX_RU_PER_FRAME:,} times the "
        f"{MAX_RU_PER_FRAME:,} RU a frame may be (a reference frame, 320x240 at 32 samples, "
        "is 1 RU): lower the resolution or the samples"
    )


def frame_time_ms(ru: int, score_ru_per_hour: int, complexity_permille: int = PERMILLE) -> int:
    """How long a worker scoring ``score_ru_per_hour`` takes for a frame of ``ru`` RU,
    scaled by what its probe measured of the scene (1000 = as the formula predicts)."""
    return work_time_ms(ru * REFERENCE_WORK, score_ru_per_hour, complexity_permille)


def work_time_ms(work: int, score_ru_per_hour: int, complexity_permille: int = PERMILLE) -> int:
    """:func:`frame_time_ms` of :func:`frame_work` units, before rounding to whole RU."""
    if score_ru_per_hour < 1 or complexity_permille < 1:
        raise ValueError("score_ru_per_hour and complexity_permille must be >= 1")
    return -(-work * 3_600_000 * complexity_permille
             // (REFERENCE_WORK * score_ru_per_hour * PERMILLE))  # fmt: skip


PROBE_PIXELS = 120 * 90  # a probe render's size: about 1/7 of the reference frame's pixels
PROBE_SAMPLES = 16


def probe_settings(resolution_x: int, resolution_y: int, samples: int) -> tuple[int, int, int]:
    """The small render a worker measures a scene with: the job's aspect ratio at about
    ``PROBE_PIXELS`` pixels, at most ``PROBE_SAMPLES`` samples (never more than the job)."""
    if resolution_x < 1 or resolution_y < 1 or samples < 1:
        raise ValueError("resolution and samples must be >= 1")
    scale_sq = resolution_x * resolution_y
    x = max(
        1, min(resolution_x, math.isqrt(PROBE_PIXELS * resolution_x * resolution_x // scale_sq))
    )
    y = max(1, min(resolution_y, PROBE_PIXELS // x))
    return x, y, min(samples, PROBE_SAMPLES)


REFERENCE_PROBE = probe_settings(320, 240, 32)  # (120, 90, 16): the reference frame's probe
REFERENCE_PROBE_WORK = frame_work(*REFERENCE_PROBE, REFERENCE_PATHS)


def complexity_permille(probe_ms: int, probe_work: int, reference_probe_ms: int) -> int:
    """A worker's probe of a scene (``probe_work``: :func:`frame_work` of its settings) took
    ``probe_ms``; the same worker's probe of the reference scene (at :data:`REFERENCE_PROBE`,
    measured with its benchmark) took ``reference_probe_ms``. The scene's cost per unit of
    work against the reference's, in permille (at least 1).

    Comparing two probes, not a probe with the formula: a probe is small, so the fixed part
    of a frame (scene sync, BVH build, kernel warm-up) is most of its time — measured here,
    a reference probe took 1.03 s where the benchmark's per-RU time predicts 0.43 s — and
    that part cancels between two probes of similar size."""
    if probe_work < 1 or reference_probe_ms < 1:
        raise ValueError("probe_work and reference_probe_ms must be >= 1")
    return max(1, probe_ms * REFERENCE_PROBE_WORK * PERMILLE // (reference_probe_ms * probe_work))


# A tile check's re-render of one tile, as a share of its frame's render time (parts per
# million): the tile's share of the frame's pixels. Measured with the checker as it now runs
# (docs/RENDERING.md, "One pin, one frame set, one kept sync per check": one setup per check,
# the scene kept synced between tiles): at 640 x 360, 64 samples, a steady 24-tile check took
# 0.48 s of CPU against 15 s for the frame, 0.08 s of it at 1 sample (what is not path
# tracing), so the tiles' own path tracing, 24 x 256 of 230,400 pixels = 2.7 % of the frame,
# is most of a check; what is left is fixed per check, not per tile (the simulator's
# ``verification.check_overhead_s``). The old figure here, 7 % of a frame for a 32 px tile
# at 320 x 240 scaled to 16 px (1.75 % a tile at any resolution), was one Blender process
# per tile, whose start-up and scene load it counted once per tile: 16x the measured cost at
# 640 x 360, which overloaded the simulated checkers (docs/SIMULATIONS.md, Findings).


def tile_cost_ppm(tile_px: int, width: int, height: int) -> int:
    """One ``tile_px`` tile's re-render cost as parts per million of a ``width`` x ``height``
    frame: its share of the frame's pixels (>= 1)."""
    if tile_px < 1 or width < 1 or height < 1:
        raise ValueError("tile_px, width and height must be >= 1")
    return max(1, min(1_000_000, tile_px * tile_px * 1_000_000 // (width * height)))


def finishes_in_time(now_ms: int, deadline_ms: int, frame_ms: int) -> bool:
    """Whether a frame started now and taking ``frame_ms`` ends by the deadline."""
    return now_ms + frame_ms <= deadline_ms

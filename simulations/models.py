"""Rendering, workload and churn models: what the world does to the protocol.

These produce the inputs the real machines react to — how long a frame takes
on a given card, whether it fails or runs out of VRAM, when jobs arrive and
what they ask for, when nodes come and go. None of them decides anything the
protocol decides (bidding, awarding, leases, payment); that is protocol/'s job.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from simulations.scenario import GpuClass, Rendering, Workload

MS_PER_HOUR = 3_600_000


@dataclass(frozen=True)
class RenderOutcome:
    duration_ms: int
    ok: bool
    reason: str = ""  # FailureReason value when not ok


def draw_gpu(rng: random.Random, config: Rendering) -> GpuClass:
    weights = [g.weight for g in config.gpu_classes]
    return rng.choices(config.gpu_classes, weights)[0]


def render_outcome(
    rng: random.Random, config: Rendering, gpu: GpuClass, ru: int, scene_vram_mib: int
) -> RenderOutcome:
    """How a frame of ``ru`` render units goes on ``gpu``."""
    if scene_vram_mib > gpu.vram_mib:
        # Fails fast: the scene does not even load on this card.
        return RenderOutcome(5_000 + rng.randrange(5_000), False, "out_of_memory")
    noise = 1 + config.time_noise * (2 * rng.random() - 1)
    duration_ms = max(1, int(ru / gpu.score_ru_per_hour * MS_PER_HOUR * noise))
    if rng.random() < config.failure_rate:
        return RenderOutcome(int(duration_ms * rng.random()) + 1, False, "render_error")
    return RenderOutcome(duration_ms, True)


@dataclass(frozen=True)
class JobDraw:
    """One arriving job, before it becomes a real ``JobSpec``."""

    frames: int
    ru_per_frame: int
    scene_vram_mib: int
    deadline_ms: int  # relative to arrival
    max_price_wei_per_frame: int
    budget_wei: int  # 0: the node's escrow for the job's assurance, set at submit


def draw_job(rng: random.Random, config: Workload) -> JobDraw:
    frames = rng.randint(config.frames_min, config.frames_max)
    ru = rng.randint(config.ru_per_frame_min, config.ru_per_frame_max)
    vram = rng.randint(min(1024, config.scene_vram_mib_max), config.scene_vram_mib_max)
    cap = int(ru * config.price_wei_per_ru * config.max_price_factor)
    budget = int(frames * cap * config.budget_factor)  # 0 (the node's escrow) unless a factor is set
    return JobDraw(frames, ru, vram, int(config.deadline_s * 1000), cap, budget)


def next_arrival_ms(rng: random.Random, per_hour: float) -> int | None:
    """Poisson process: exponential gaps. None when the rate is zero."""
    if per_hour <= 0:
        return None
    return max(1, int(rng.expovariate(per_hour) * MS_PER_HOUR))

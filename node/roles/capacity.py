"""What a node's CapacityAdvert offers: GPUs (NVML), renderer build, benchmark score.

The probe and the score are read once when the roles start. The score comes
from the benchmark cache only: measuring it takes a minute of rendering, which
a node must not spend on every start, so a node without one advertises 0 and
logs how to get a score (`pictor benchmark`). Requesters then treat it as an
unknown, slow machine rather than trusting a number nobody measured.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

import trio

from node.log import log_event
from node.render.benchmark import REFERENCE_VERSION, load_cache
from node.render.gpu import advert_gpus, probe_gpus
from node.runtime import OwnCapacity

logger = logging.getLogger(__name__)


def cached_score(data_dir: Path, build: str, device_class: str) -> int:
    return cached_benchmark(data_dir, build, device_class)[0]


def cached_benchmark(data_dir: Path, build: str, device_class: str) -> tuple[int, int]:
    """(score in RU/h, the reference probe's ms) from the cache; 0 for what is not there."""
    entry = load_cache(data_dir).get(f"{build}/{device_class}/v{REFERENCE_VERSION}")
    try:
        return (int(entry["score_ru_per_hour"]), int(entry.get("probe_ms", 0))) if entry else (0, 0)
    except (AttributeError, KeyError, TypeError, ValueError):
        return 0, 0


async def probe_capacity(
    data_dir: Path,
    build: str,
    device_class: str,
    price_wei_per_ru: int,
    free_slots: Callable[[], int],
) -> OwnCapacity:
    """``free_slots``: the worker role's, or ``lambda: 0`` on a node that does not render."""
    probe = await trio.to_thread.run_sync(probe_gpus)
    score = await trio.to_thread.run_sync(cached_score, data_dir, build, device_class)
    log_event(logger, logging.INFO, "capacity", gpus=len(probe.gpus), gpu_detail=probe.detail,
              build=build, device_class=device_class, score_ru_per_hour=score)  # fmt: skip
    if score == 0:
        log_event(logger, logging.WARNING, "no benchmark score yet: run `pictor benchmark` "
                  "so requesters can size work for this node")  # fmt: skip

    return OwnCapacity(
        gpus=advert_gpus(probe),
        renderer_builds=(build,),
        score_ru_per_hour=score,
        price_wei_per_ru=price_wei_per_ru,
        free_slots=free_slots,
        device_class=device_class,
    )

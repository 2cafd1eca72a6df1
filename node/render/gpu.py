"""GPU probe over NVML (``nvidia-ml-py``), with a clean CPU-only state.

Kept free of trio and of the rest of the node (stdlib + ``pynvml`` + the
protocol's ``GpuInfo`` only when asked for adverts) so ``scripts/device_probe.py``
can run it alone on a GPU machine that has nothing else installed.

Every per-GPU reading that a board may not support (power on some cards,
temperature in some VMs) is read on its own: one ``NotSupported`` leaves that
field ``None`` instead of losing the GPU.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import asdict, dataclass
from types import ModuleType
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from protocol.messages import GpuInfo

T = TypeVar("T")
_MIB = 1 << 20


@dataclass(frozen=True)
class GpuStatus:
    index: int
    model: str
    uuid: str | None
    vram_mib: int
    vram_used_mib: int | None
    compute_capability: str | None  # "9.0"
    device_class: str  # "cuda-sm90": what a job pins and checkers group by
    utilization_pct: int | None
    temperature_c: int | None
    power_w: float | None
    power_limit_w: float | None


@dataclass(frozen=True)
class GpuProbe:
    available: bool
    detail: str  # "2 NVIDIA GPUs" or why there are none ("no NVIDIA driver (NVML missing)")
    driver_version: str | None
    cuda_driver_version: str | None  # "12.4"
    nvml_version: str | None
    gpus: tuple[GpuStatus, ...]

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


def _optional(fn: Callable[[], T], nvml: ModuleType) -> T | None:
    try:
        return fn()
    except nvml.NVMLError:
        return None


def _text(value: str | bytes) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _one_gpu(nvml: ModuleType, index: int) -> GpuStatus:
    handle = nvml.nvmlDeviceGetHandleByIndex(index)
    memory = nvml.nvmlDeviceGetMemoryInfo(handle)
    capability = _optional(lambda: nvml.nvmlDeviceGetCudaComputeCapability(handle), nvml)
    cc_text = f"{capability[0]}.{capability[1]}" if capability else None
    device_class = f"cuda-sm{capability[0]}{capability[1]}" if capability else "cuda"
    power_mw = _optional(lambda: nvml.nvmlDeviceGetPowerUsage(handle), nvml)
    limit_mw = _optional(lambda: nvml.nvmlDeviceGetEnforcedPowerLimit(handle), nvml)
    util = _optional(lambda: nvml.nvmlDeviceGetUtilizationRates(handle), nvml)
    temp = _optional(lambda: nvml.nvmlDeviceGetTemperature(handle, nvml.NVML_TEMPERATURE_GPU), nvml)
    uuid = _optional(lambda: nvml.nvmlDeviceGetUUID(handle), nvml)
    return GpuStatus(
        index=index,
        model=_text(nvml.nvmlDeviceGetName(handle))[:64],
        uuid=_text(uuid) if uuid else None,
        vram_mib=int(memory.total) // _MIB,
        vram_used_mib=int(memory.used) // _MIB,
        compute_capability=cc_text,
        device_class=device_class,
        utilization_pct=int(util.gpu) if util is not None else None,
        temperature_c=int(temp) if temp is not None else None,
        power_w=power_mw / 1000 if power_mw is not None else None,
        power_limit_w=limit_mw / 1000 if limit_mw is not None else None,
    )


def _load_nvml() -> ModuleType | None:
    try:
        return importlib.import_module("pynvml")
    except ImportError:
        return None


def probe_gpus(nvml: ModuleType | None = None) -> GpuProbe:
    """Read every NVIDIA GPU; never raises for a machine without them."""
    nvml = nvml or _load_nvml()
    if nvml is None:
        return GpuProbe(False, "nvidia-ml-py not installed", None, None, None, ())
    try:
        nvml.nvmlInit()
    except nvml.NVMLError_LibraryNotFound:
        return GpuProbe(False, "no NVIDIA driver (NVML library not found)", None, None, None, ())
    except nvml.NVMLError as exc:
        return GpuProbe(False, f"NVML failed to start: {exc}", None, None, None, ())
    try:
        count = nvml.nvmlDeviceGetCount()
        gpus = tuple(_one_gpu(nvml, i) for i in range(count))
        cuda = _optional(nvml.nvmlSystemGetCudaDriverVersion, nvml)
        return GpuProbe(
            available=count > 0,
            detail=f"{count} NVIDIA GPU{'s' if count != 1 else ''}",
            driver_version=_text(nvml.nvmlSystemGetDriverVersion()),
            cuda_driver_version=f"{cuda // 1000}.{cuda % 1000 // 10}" if cuda else None,
            nvml_version=_optional(lambda: _text(nvml.nvmlSystemGetNVMLVersion()), nvml),
            gpus=gpus,
        )
    finally:
        nvml.nvmlShutdown()


def advert_gpus(probe: GpuProbe) -> tuple[GpuInfo, ...]:
    """The probe as ``protocol.messages.GpuInfo`` entries for the CapacityAdvert."""
    # Imported here: the device probe script runs this module without the protocol's deps.
    from protocol.messages import GpuInfo

    return tuple(GpuInfo(model=g.model, vram_mib=g.vram_mib) for g in probe.gpus[:16])

"""Degraded states: no NVIDIA driver, no Docker engine; and the probe's mapping to adverts."""

from __future__ import annotations

import types
from pathlib import Path
from typing import Any

import pytest

from node.render.base import Region
from node.render.device import cpu_device_class
from node.render.docker_backend import (
    DockerBlenderBackend,
    DockerConfig,
    DockerUnavailable,
    docker_status,
)
from node.render.gpu import advert_gpus, probe_gpus
from protocol.messages import GpuInfo, RenderSettings


def test_nvml_missing_is_a_clean_cpu_only_state() -> None:
    pynvml = pytest.importorskip("pynvml")
    try:
        pynvml.nvmlInit()
    except pynvml.NVMLError_LibraryNotFound:
        pass
    else:
        pynvml.nvmlShutdown()
        pytest.skip("this machine has an NVIDIA driver")
    probe = probe_gpus()
    assert not probe.available and probe.gpus == ()
    assert "NVML library not found" in probe.detail
    assert advert_gpus(probe) == ()


class _NotSupported(Exception):
    pass


def _fake_nvml() -> types.ModuleType:
    """Enough of pynvml to describe one H100 whose power reading is not supported."""
    nvml = types.ModuleType("fake_pynvml")
    nvml.NVMLError = _NotSupported  # type: ignore[attr-defined]
    nvml.NVMLError_LibraryNotFound = type("LNF", (_NotSupported,), {})  # type: ignore[attr-defined]
    nvml.NVML_TEMPERATURE_GPU = 0  # type: ignore[attr-defined]
    calls: dict[str, Any] = {
        "nvmlInit": lambda: None,
        "nvmlShutdown": lambda: None,
        "nvmlDeviceGetCount": lambda: 1,
        "nvmlDeviceGetHandleByIndex": lambda i: f"h{i}",
        "nvmlDeviceGetName": lambda h: b"NVIDIA H100 80GB HBM3",
        "nvmlDeviceGetUUID": lambda h: "GPU-1",
        "nvmlDeviceGetMemoryInfo": lambda h: types.SimpleNamespace(
            total=81559 << 20, used=480 << 20
        ),
        "nvmlDeviceGetCudaComputeCapability": lambda h: (9, 0),
        "nvmlDeviceGetPowerUsage": lambda h: (_ for _ in ()).throw(_NotSupported()),
        "nvmlDeviceGetEnforcedPowerLimit": lambda h: 700000,
        "nvmlDeviceGetUtilizationRates": lambda h: types.SimpleNamespace(gpu=87, memory=40),
        "nvmlDeviceGetTemperature": lambda h, sensor: 61,
        "nvmlSystemGetDriverVersion": lambda: "580.159.04",
        "nvmlSystemGetCudaDriverVersion": lambda: 13000,
        "nvmlSystemGetNVMLVersion": lambda: "13.580.159.04",
    }
    for name, fn in calls.items():
        setattr(nvml, name, fn)
    return nvml


def test_probe_reads_gpus_and_maps_to_advert() -> None:
    probe = probe_gpus(_fake_nvml())
    assert probe.available and probe.cuda_driver_version == "13.0"
    (gpu,) = probe.gpus
    assert gpu.device_class == "cuda-sm90" and gpu.vram_mib == 81559
    assert gpu.power_w is None and gpu.power_limit_w == 700.0  # unsupported reading -> None
    assert gpu.temperature_c == 61 and gpu.utilization_pct == 87
    assert advert_gpus(probe) == (GpuInfo(model="NVIDIA H100 80GB HBM3", vram_mib=81559),)
    assert probe.as_json()["gpus"][0]["model"] == "NVIDIA H100 80GB HBM3"


def test_docker_missing_is_a_clear_state(tmp_path: Path) -> None:
    status = docker_status()
    if status.available:
        pytest.skip("a Docker engine is reachable here")
    assert status.detail.startswith("no Docker engine")


async def test_docker_backend_refuses_without_engine(tmp_path: Path) -> None:
    import docker.errors

    def no_engine() -> Any:
        raise docker.errors.DockerException("Error while fetching server API version")

    backend = DockerBlenderBackend(DockerConfig(), factory=no_engine)
    assert not backend.status.available
    settings = RenderSettings("CYCLES", 64, 48, 4, 0, "PNG_RGBA8")
    scene = tmp_path / "s.blend"
    scene.write_bytes(b"x")
    with pytest.raises(DockerUnavailable, match="no Docker engine"):
        await backend.render_frames(scene, settings, [1], tmp_path / "out")
    with pytest.raises(DockerUnavailable):
        await backend.render_region(scene, settings, 1, Region(0, 0, 8, 8), tmp_path / "out")


def test_docker_container_is_locked_down(tmp_path: Path) -> None:
    class FakeClient:
        def version(self) -> dict[str, str]:
            return {"Version": "27.0"}

    backend = DockerBlenderBackend(DockerConfig(device="OPTIX"), factory=FakeClient)
    assert backend.status.available and "27.0" in backend.status.detail
    kwargs = backend._run_kwargs(tmp_path)
    assert kwargs["network_disabled"] is True and kwargs["cap_drop"] == ["ALL"]
    assert kwargs["read_only"] is True and "no-new-privileges" in kwargs["security_opt"]
    assert kwargs["device_requests"][0].capabilities == [["gpu"]]


def test_cpu_device_class_from_flags(tmp_path: Path) -> None:
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("processor: 0\nflags\t\t: fpu sse2 sse4_1 avx\n")
    assert cpu_device_class(cpuinfo) in (
        "cpu-x86_64-avx",
        f"cpu-{__import__('platform').machine().lower()}",
    )

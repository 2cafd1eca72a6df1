"""The Cycles device a node renders with: the NVML probe proposes, Blender disposes."""

from __future__ import annotations

import shutil

import pytest

from node.render.device_choice import blender_gpu_backends, choose_device
from node.render.gpu import GpuProbe, GpuStatus

H100 = GpuStatus(0, "NVIDIA H100 80GB HBM3", None, 81559, 0, "9.0", "cuda-sm90",
                 None, None, None, None)  # fmt: skip
WITH_GPU = GpuProbe(True, "1 NVIDIA GPU", "580.159.04", "13.0", None, (H100,))
NO_GPU = GpuProbe(False, "no NVIDIA driver (NVML library not found)", None, None, None, ())


def _never() -> frozenset[str]:
    raise AssertionError("Blender asked although there is no GPU")


@pytest.mark.parametrize(
    ("usable", "device"),
    [({"OPTIX", "CUDA"}, "OPTIX"), ({"CUDA"}, "CUDA"), (set(), "CPU")],
)
def test_auto_prefers_optix_then_cuda_when_blender_can_use_them(
    usable: set[str], device: str
) -> None:
    chosen, why = choose_device("auto", lambda: WITH_GPU, lambda: frozenset(usable))
    assert chosen == device and "H100" in why


def test_auto_without_a_gpu_renders_on_the_cpu_without_asking_blender() -> None:
    assert choose_device("auto", lambda: NO_GPU, _never) == ("CPU", f"no GPU: {NO_GPU.detail}")


def test_an_explicit_device_is_taken_as_given() -> None:
    assert choose_device("CUDA", lambda: NO_GPU, _never)[0] == "CUDA"


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("blender") is None, reason="blender not installed")
def test_this_blender_lists_no_gpu_backend_on_a_machine_without_one() -> None:
    assert blender_gpu_backends() == frozenset()

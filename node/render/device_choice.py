"""Which Cycles device a node renders with: the NVML probe proposes, Blender disposes.

``render_device = "auto"`` (the default) asks NVML (:mod:`node.render.gpu`)
for NVIDIA GPUs; with one, it asks this Blender build which GPU backends it
can actually use (Debian's Blender is built without CUDA and OptiX, for one)
and takes OptiX, then CUDA; otherwise, or when neither works, the CPU. An
explicit ``CPU``, ``CUDA`` or ``OPTIX`` is taken as given (identify() fails
loudly when the GPU is missing). The device decides the renderer's device
class (``optix-sm90``, ``cpu-x86_64-avx2``), which checkers compare by.
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable

from node.render.gpu import GpuProbe, probe_gpus

PREFERRED = ("OPTIX", "CUDA")
_LINE = "PICTOR_GPU "
_EXPR = (
    "import bpy\n"
    "prefs = bpy.context.preferences.addons['cycles'].preferences\n"
    "for kind in ('OPTIX', 'CUDA'):\n"
    "    try:\n"
    "        prefs.compute_device_type = kind\n"
    "    except TypeError:\n"
    "        continue\n"
    "    prefs.get_devices()\n"
    "    if any(d.type == kind for d in prefs.devices):\n"
    "        print('PICTOR_GPU ' + kind, flush=True)\n"
)


def blender_gpu_backends(executable: str = "blender") -> frozenset[str]:
    """The GPU backends this Blender lists a device for. Runs Blender without a scene
    (nothing untrusted), so outside the render sandbox."""
    argv = [executable, "-b", "--factory-startup", "--python-exit-code", "1",
            "--python-expr", _EXPR]  # fmt: skip
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=120, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return frozenset()
    found = (line[len(_LINE) :].strip() for line in done.stdout.splitlines())
    return frozenset(kind for kind in found if kind in PREFERRED)


def choose_device(
    setting: str,
    probe: Callable[[], GpuProbe] = probe_gpus,
    backends: Callable[[], frozenset[str]] = blender_gpu_backends,
) -> tuple[str, str]:
    """``(device, why)``: the Cycles device to render with and the reason, for the log."""
    if setting != "auto":
        return setting, f"render_device = {setting}"
    found = probe()
    if not found.gpus:
        return "CPU", f"no GPU: {found.detail}"
    usable = backends()
    for kind in PREFERRED:
        if kind in usable:
            return kind, f"{found.gpus[0].model}: Blender renders on it with {kind}"
    return "CPU", f"{found.gpus[0].model} found, but this Blender has no CUDA or OptiX"

"""Docker backend: the same Blender renders inside a container, via the docker SDK.

Used where a worker wants a stronger wall than our process sandbox: the
container gets the render's work directory at ``/work`` and nothing else, no
network (``network_disabled``), no capabilities, no new privileges, a read-only
root, memory and process limits, and the GPUs by ``device_requests`` when the
job renders on one. The SDK is synchronous, so every call runs in a worker
thread; a cancelled render kills and removes its container.

Where no engine is reachable, :func:`docker_status` says so (``docker.from_env``
raises ``DockerException``) and the backend refuses with ``DockerUnavailable``
instead of failing half-way.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import trio

from node.render.base import FrameOutput, ProgressFn, Region, RendererIdentity, RenderError
from node.render.blender import (
    LineParser,
    blender_argv,
    blender_border,
    collect_frames,
    job_document,
    prepare_workdir,
)
from protocol.messages import RenderSettings

_IN_CONTAINER = Path("/work")


class DockerUnavailable(RenderError):
    """No Docker engine is reachable from this node."""


@dataclass(frozen=True)
class DockerStatus:
    available: bool
    detail: str  # engine version, or why there is none


@dataclass(frozen=True)
class DockerConfig:
    image: str = "pictor/blender:3.4.1"  # any image with ``blender`` on its PATH
    build: str = "blender-3.4.1"  # what the image holds; checked by ``identify``
    device: str = "CPU"  # or CUDA / OPTIX: then all GPUs are passed through
    mem_limit: str = "16g"
    pids_limit: int = 4096
    wall_s: float = 3600.0
    work_root: Path | None = None


ClientFactory = Callable[[], Any]


def _default_factory() -> Any:
    import docker

    return docker.from_env(timeout=10)


def docker_status(factory: ClientFactory = _default_factory) -> DockerStatus:
    import docker.errors

    try:
        client = factory()
        version = client.version().get("Version", "?")
    except docker.errors.DockerException as exc:
        return DockerStatus(False, f"no Docker engine: {exc}")
    return DockerStatus(True, f"docker engine {version}")


class DockerBlenderBackend:
    def __init__(self, config: DockerConfig, factory: ClientFactory = _default_factory) -> None:
        self.config = config
        self._factory = factory
        self.status = docker_status(factory)

    @property
    def name(self) -> str:
        return "docker-blender"

    def _client(self) -> Any:
        if not self.status.available:
            raise DockerUnavailable(self.status.detail)
        return self._factory()

    async def identify(self) -> RendererIdentity:
        client = self._client()
        raw = await trio.to_thread.run_sync(
            lambda: client.containers.run(
                self.config.image, ["blender", "-b", "--version"], remove=True,
                network_disabled=True,
            )
        )  # fmt: skip
        version = raw.decode("utf-8", "replace").split("\n", 1)[0].replace("Blender ", "")
        device = "cpu-container" if self.config.device == "CPU" else self.config.device.lower()
        return RendererIdentity(f"blender-{version.strip()}", device)

    async def render_frames(
        self,
        scene: Path,
        settings: RenderSettings,
        frames: Sequence[int],
        out_dir: Path,
        progress: ProgressFn | None = None,
    ) -> list[FrameOutput]:
        return await self._render(scene, settings, frames, None, out_dir, progress)

    async def render_region(
        self, scene: Path, settings: RenderSettings, frame: int, region: Region, out_dir: Path
    ) -> FrameOutput:
        border = blender_border(region, settings.resolution_x, settings.resolution_y)
        return (await self._render(scene, settings, [frame], border, out_dir, None))[0]

    def _run_kwargs(self, workdir: Path) -> dict[str, Any]:
        import docker.types

        kwargs: dict[str, Any] = {
            "volumes": {str(workdir): {"bind": str(_IN_CONTAINER), "mode": "rw"}},
            "working_dir": str(_IN_CONTAINER),
            "environment": {"HOME": str(_IN_CONTAINER), "LANG": "C.UTF-8"},
            "user": f"{os.getuid()}:{os.getgid()}",
            "network_disabled": True,
            "cap_drop": ["ALL"],
            "security_opt": ["no-new-privileges"],
            "read_only": True,
            "tmpfs": {"/tmp": "size=1g"},
            "mem_limit": self.config.mem_limit,
            "pids_limit": self.config.pids_limit,
            "detach": True,
        }
        if self.config.device != "CPU":
            kwargs["device_requests"] = [
                docker.types.DeviceRequest(count=-1, capabilities=[["gpu"]])
            ]
        return kwargs

    async def _render(
        self,
        scene: Path,
        settings: RenderSettings,
        frames: Sequence[int],
        border: tuple[float, float, float, float] | None,
        out_dir: Path,
        progress: ProgressFn | None,
    ) -> list[FrameOutput]:
        client = self._client()
        with tempfile.TemporaryDirectory(dir=self.config.work_root, prefix="pictor-") as tmp:
            workdir = Path(tmp)
            doc = job_document(settings, frames, _IN_CONTAINER / "out", self.config.device, border)
            prepare_workdir(workdir, scene, doc)
            argv = blender_argv("blender", _IN_CONTAINER, 0)
            container = await trio.to_thread.run_sync(
                lambda: client.containers.run(self.config.image, argv, **self._run_kwargs(workdir))
            )
            try:
                # The installed trio stubs predate ``abandon_on_cancel``; trio has it.
                run_sync: Any = trio.to_thread.run_sync
                with trio.fail_after(self.config.wall_s):
                    status = await run_sync(container.wait, abandon_on_cancel=True)
                logs = await trio.to_thread.run_sync(container.logs)
            except trio.TooSlowError:
                raise RenderError(f"container timed out after {self.config.wall_s:.0f} s") from None
            finally:
                with trio.CancelScope(shield=True):
                    await trio.to_thread.run_sync(lambda: container.remove(force=True))
            parser = LineParser(progress)
            lines = logs.decode("utf-8", "replace").splitlines()
            for line in lines:
                parser(line)
            code = int(status.get("StatusCode", -1))
            return collect_frames(code, "\n".join(lines[-60:]), parser, frames, workdir, out_dir)

"""The renderer interface every backend implements, and the types it speaks.

A backend turns (scene file, pinned settings, frames) into PNG files. It is not
Blender-shaped: POV-Ray implements the same calls. Regions are pixel
rectangles with the origin at the *top-left* (image convention, as a PNG is
stored); a backend converts to its own convention (Blender's border is
normalised with the origin at the bottom-left).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from protocol.messages import RenderSettings

# Output formats a job may pin. 8-bit RGBA is the default: half the bytes of
# 16-bit to store and transfer for every frame and every checker tile, and the
# measured gap between honest cross-CPU renders (≈ 83 dB PSNR) and cheats
# (28–38 dB) is far wider than 8-bit quantisation can blur. 16-bit is there for
# artists who grade their frames afterwards.
OUTPUT_FORMATS = {"PNG_RGBA8": "8", "PNG_RGBA16": "16"}

ProgressFn = Callable[[int, float], None]  # (frame, fraction of that frame done, 0..1)


class RenderError(Exception):
    """A render failed (bad scene, crash, timeout); ``tail`` holds the renderer's last output."""

    def __init__(self, message: str, tail: str = "") -> None:
        super().__init__(message)
        self.tail = tail


@dataclass(frozen=True)
class Region:
    """Pixels ``x0 <= x < x1``, ``y0 <= y < y1``; origin top-left."""

    x0: int
    y0: int
    x1: int
    y1: int

    def check_inside(self, width: int, height: int) -> None:
        if not (0 <= self.x0 < self.x1 <= width and 0 <= self.y0 < self.y1 <= height):
            raise ValueError(f"region {self} outside a {width}x{height} frame")

    @property
    def width(self) -> int:
        return self.x1 - self.x0

    @property
    def height(self) -> int:
        return self.y1 - self.y0


@dataclass(frozen=True)
class FrameOutput:
    frame: int
    path: Path
    render_s: float  # the renderer's own time for this frame, start-up excluded


@dataclass(frozen=True)
class RendererIdentity:
    """What a worker advertises and a job pins: the exact build and the device class."""

    build: str  # e.g. "blender-3.4.1", "povray-3.7.0.10"
    device_class: str  # e.g. "cpu-x86_64-avx2", "cuda-sm90"


class FrameRenderer(Protocol):
    """Whole frames: what a worker role needs of a backend."""

    async def identify(self) -> RendererIdentity:
        """Which build and device this backend renders with (cached after the first call)."""
        ...

    async def render_frames(
        self,
        scene: Path,
        settings: RenderSettings,
        frames: Sequence[int],
        out_dir: Path,
        progress: ProgressFn | None = None,
    ) -> list[FrameOutput]:
        """Render whole frames into ``out_dir``; raises ``RenderError``."""
        ...


class Renderer(FrameRenderer, Protocol):
    """A backend: whole frames, regions of a frame, and its name."""

    @property
    def name(self) -> str: ...

    async def render_region(
        self,
        scene: Path,
        settings: RenderSettings,
        frame: int,
        region: Region,
        out_dir: Path,
    ) -> FrameOutput:
        """Render only ``region`` of ``frame``; the PNG is the region's size."""
        ...

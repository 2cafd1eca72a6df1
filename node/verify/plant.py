"""The requester's copies of frames for checkers: canonical re-encodings and plants.

A checker must not tell a plant (protocol.forced_errors) from a real result by
its file: a plant written by Pillow next to a real frame written by Blender
would differ in PNG chunks, compression and metadata. So the requester serves
checkers **every** frame re-encoded here, the same way: decoded by Pillow,
pixels kept exactly (the mode too: RGB stays RGB, 16-bit greyscale stays
16-bit), written as PNG with fixed settings and no metadata. A real frame is
re-encoded as is; a plant is the same frame with :func:`protocol.forced_errors.perturb`
applied first. Pixels a checker compares are unchanged by the re-encoding
(``node.verify.images.load_image`` of either file gives the same array).
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from node.verify.images import MAX_PIXELS, ImageError
from protocol.forced_errors import blank_cells, perturb
from protocol.verification import Tile

KEPT_MODES = ("RGB", "RGBA", "L", "I;16")  # Blender's PNG outputs decode to these
PNG_SETTINGS = {"format": "PNG", "compress_level": 6, "optimize": False}


def _decode(path: Path) -> Image.Image:
    img: Image.Image
    try:
        img = Image.open(path)
        if img.width * img.height > MAX_PIXELS:
            raise ImageError(f"{path}: {img.width}x{img.height} is larger than any job allows")
        img.load()
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise ImageError(f"{path}: not a readable image ({type(exc).__name__})") from None
    if img.mode not in KEPT_MODES:
        img = img.convert("RGBA")
    return img


def _encode(pixels: np.ndarray) -> bytes:
    """PNG of ``pixels``; the mode follows from shape and dtype (each of KEPT_MODES
    round-trips: HxW uint8 L, HxWx3 RGB, HxWx4 RGBA, HxW uint16 I;16)."""
    out = io.BytesIO()
    Image.fromarray(pixels).save(out, **PNG_SETTINGS)  # type: ignore[arg-type]
    return out.getvalue()


def canonical_png(path: Path) -> bytes:
    """``path``'s pixels as the PNG every checker is served (raises ``ImageError``)."""
    img = _decode(path)
    return _encode(np.asarray(img))


def plant_png(
    path: Path, key: bytes, tile_px: int, size: tuple[int, int] | None = None
) -> tuple[bytes, frozenset[Tile]]:
    """A plant of ``path``: every ``tile_px`` cell but the blank ones (nothing visible
    to change: ``protocol.forced_errors.blank_cells``) perturbed with ``key``, encoded
    exactly as :func:`canonical_png` encodes a real frame; and those blank cells. A frame
    of another ``size`` (width, height) than asked raises ``ImageError``."""
    img = _decode(path)
    if size is not None and img.size != size:
        raise ImageError(f"{path}: {img.width}x{img.height}, not the job's {size[0]}x{size[1]}")
    pixels = np.asarray(img)
    return _encode(perturb(pixels, key, tile_px)), blank_cells(pixels, tile_px)

"""Reading frame images into arrays the comparison can use.

Pillow decodes; we only normalise. Both sides of a comparison go through
:func:`as_comparable`, so a worker's RGB PNG and the checker's RGBA tile are
compared on the same channels (opaque alpha is added, never invented detail).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import numpy.typing as npt
from PIL import Image, UnidentifiedImageError

Pixels = npt.NDArray[np.uint8] | npt.NDArray[np.uint16]

# Decoding is bounded: a hostile "image" must not make the checker allocate GBs.
MAX_PIXELS = 16_384 * 16_384


class ImageError(Exception):
    """The file is not a usable frame image; the message says what to do."""


def load_image(path: Path) -> Pixels:
    """H x W x 4 array (RGBA), uint8, or uint16 for 16-bit greyscale PNGs."""
    try:
        with Image.open(path) as img:
            if img.width * img.height > MAX_PIXELS:
                raise ImageError(f"{path}: {img.width}x{img.height} is larger than any job allows")
            img.load()
            return as_comparable(img)
    except FileNotFoundError:
        raise ImageError(f"{path}: no such file") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise ImageError(
            f"{path}: not a readable image ({type(exc).__name__}: {exc}); "
            "pass the PNG the worker delivered"
        ) from None


def as_comparable(img: Image.Image) -> Pixels:
    if img.mode in ("I;16", "I;16B", "I;16L", "I"):
        return np.asarray(img, dtype=np.uint16)[:, :, None]
    if img.mode != "RGBA":
        img = img.convert("RGBA")
    return np.asarray(img, dtype=np.uint8)


def save_png(path: Path, pixels: Pixels) -> None:
    """Write an array as PNG (benchmarks and tests build tampered frames with it)."""
    if pixels.ndim == 3 and pixels.shape[2] == 1:
        pixels = pixels[:, :, 0]
    Image.fromarray(pixels).save(path, format="PNG")

"""The frames checkers are served: canonical copies keep pixels, plants fail real checks.

The Blender half: an honest checker (exact and cross-build rules) rejects a plant
of a real frame and accepts the canonical copy of the real one, and the tile
digests it commits to are those of the true pixels, so a lazy checker's
commitment (the plant's own tiles) is contradicted by any re-render.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from node.verify.checker import check_frame
from node.verify.images import load_image
from node.verify.plant import canonical_png, plant_png
from protocol.verification import DEFAULT_POLICY, tile_digest, tile_grid
from tests.verify.conftest import CachingRenderer, World
from tests.verify.test_checker_blender import BUILD, SETTINGS, _worker

KEY = hashlib.sha256(b"plant key").digest()
TILE_PX = DEFAULT_POLICY.sampling.tile_px


@pytest.mark.parametrize("mode", ["RGB", "RGBA", "L", "I;16"])
def test_canonical_copies_keep_pixels_and_mode_and_plants_share_the_encoding(
    tmp_path: Path, mode: str
) -> None:
    rng = np.random.default_rng(3)
    if mode == "I;16":
        pixels = rng.integers(0, 65_536, size=(37, 50), dtype=np.uint16)
    else:
        channels = {"RGB": 3, "RGBA": 4, "L": 1}[mode]
        pixels = rng.integers(0, 256, size=(37, 50, channels), dtype=np.uint8).squeeze()
    original = tmp_path / "frame.png"
    Image.fromarray(pixels).save(original, compress_level=1)
    canonical = tmp_path / "canonical.png"
    canonical.write_bytes(canonical_png(original))
    assert np.array_equal(load_image(canonical), load_image(original))
    with Image.open(canonical) as img:
        assert img.mode == mode and not img.text  # type: ignore[attr-defined]
    # idempotent: re-encoding the copy gives the same bytes (the same CID)
    assert canonical_png(canonical) == canonical.read_bytes()
    plant = tmp_path / "plant.png"
    plant.write_bytes(plant_png(original, KEY, TILE_PX)[0])
    with Image.open(plant) as img:
        assert img.mode == mode and not img.text  # type: ignore[attr-defined]
    assert canonical_png(plant) == plant.read_bytes()  # same encoder, same settings
    real, planted = load_image(canonical), load_image(plant)
    for cell in tile_grid(50, 37, TILE_PX):
        rows, cols = slice(cell.y, cell.y + cell.height), slice(cell.x, cell.x + cell.width)
        assert not np.array_equal(real[rows, cols], planted[rows, cols]), cell


@pytest.mark.parametrize("same", [True, False], ids=["exact", "tolerance"])
async def test_an_honest_checker_rejects_a_plant_of_a_real_frame(
    world: World, caching_renderer: CachingRenderer, tmp_path: Path, same: bool
) -> None:
    honest = world.honest[1]
    canonical, plant = tmp_path / "canonical.png", tmp_path / "plant.png"
    canonical.write_bytes(canonical_png(honest))
    plant.write_bytes(plant_png(honest, KEY, TILE_PX)[0])
    digest, secret = hashlib.sha256(b"result").digest(), hashlib.sha256(b"secret").digest()
    outcomes = {}
    for name, path in (("real", canonical), ("plant", plant)):
        outcomes[name] = await check_frame(
            caching_renderer, world.scene, SETTINGS, 1, load_image(path), result_digest=digest,
            k=6, worker=await _worker(caching_renderer, same), job_build=BUILD, secret=secret,
        )  # fmt: skip
    assert outcomes["real"].accepted and not outcomes["plant"].accepted
    assert all(not c.passed for c in outcomes["plant"].checks)  # every tile, not just one
    # The honest commitment is the true pixels' digest, whichever frame it was shown;
    # a lazy checker committing to the plant's own tiles is contradicted by re-rendering.
    truth, planted = load_image(honest), load_image(plant)
    for check in outcomes["plant"].checks:
        e = check.evidence
        rows, cols = slice(e.y, e.y + e.height), slice(e.x, e.x + e.width)
        assert check.digest == tile_digest(truth[rows, cols])
        assert check.digest != tile_digest(planted[rows, cols])

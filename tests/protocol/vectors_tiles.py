"""Tile-selection vectors (``docs/vectors/tiles.json``): which cells a checker must
re-render for a request, and how the reference requester draws ``tile_secret``.

A second implementation checks its ``select_tiles`` against ``selections`` (a verdict's
tiles must be exactly these, ``docs/PROTOCOL.md`` §6.1) and, if it wants to draw tile
secrets the reference's way, its derivation against ``tile_secrets``.
"""

from __future__ import annotations

import hashlib
from typing import Any

from protocol.tile_secret import TILE_SECRET_DOMAIN, CheckKind, request_tile_secret
from protocol.verification import TILE_DOMAIN, select_tiles


def _h(label: str) -> bytes:
    return hashlib.sha256(label.encode()).digest()


# (width, height, k): a 320x240 frame (300 cells) with a fresh worker's 24 and a trusted
# worker's 4; cropped edge cells (100x50); k above the cell count (all cells, sorted)
_SHAPES = ((320, 240, 24), (320, 240, 4), (100, 50, 5), (40, 20, 10), (1920, 1080, 48))


def tile_vectors() -> dict[str, Any]:
    selections = []
    for i, (width, height, k) in enumerate(_SHAPES):
        result_digest, secret = _h(f"result {i}"), _h(f"tile secret {i}")
        tiles = select_tiles(result_digest, secret, width, height, k, 16)
        selections.append({
            "width": width, "height": height, "tile_px": 16, "k": k,
            "result_digest": result_digest.hex(), "tile_secret": secret.hex(),
            "seed": hashlib.sha256(TILE_DOMAIN + result_digest + secret).hexdigest(),
            "tiles": [[t.x, t.y, t.width, t.height] for t in tiles],
        })  # fmt: skip
    secrets = []
    for kind in CheckKind:
        parts = (_h("check secret"), _h("task"), _h("result"), _h(f"checker {kind.value}"))
        secrets.append({
            "check_secret": parts[0].hex(), "task_id": parts[1].hex(),
            "result_digest": parts[2].hex(), "checker": parts[3].hex(), "kind": kind.value,
            "tile_secret": request_tile_secret(*parts, kind).hex(),
        })  # fmt: skip
    return {
        "tiles_domain": TILE_DOMAIN.hex(),
        "tile_secret_domain": TILE_SECRET_DOMAIN.hex(),
        "selections": selections,
        "tile_secrets": secrets,
    }

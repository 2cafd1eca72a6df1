"""Forced errors (after Truebit): the requester plants known-bad results for checkers.

Theory of operation
-------------------
A checker is paid per verdict, and nothing else ever tests it: a lazy checker
that answers "passed" without rendering keeps its fee (the verifier's
dilemma). So the requester sometimes sends a checker a *plant*: the same
``VerifyRequest`` it sends for a real result (same job, task, frame, worker,
result digest and tile count) but naming a frame the requester made by
perturbing the real frame's pixels in **every** grid cell but the blank ones,
where nothing is visible under a transparent film (:func:`perturb`,
:func:`blank_cells`). Whatever changed tiles the checker's secret picks, an
honest re-render differs from the plant beyond the comparison policy
(:func:`perturb`'s guarantee), so an honest checker always rejects a plant
whose draw hit a changed cell, and a "passed" verdict on one is a miss
(:func:`plant_missed`); a pass that saw only blank cells is neither.

What the checker must not be able to see is which requests are plants; the
node serves every frame to checkers itself, re-encoded the same way
(``node/verify/plant.py``, docs/VERIFICATION.md "Forced errors"). Which results
get a plant is drawn like the check plan: from the requester's per-job secret
and the result digest (:func:`should_plant`), so nobody else can predict it and
a replay decides the same. The rate is the requester's (``plant_rate_ppm``).

Probation (:func:`plant_rate_ppm`): the rate a requester applies to a plant
depends on how well it knows the chosen checker. A checker it has seen reject
``tested`` of its plants gets plants at ``max(base, PPM // (2 + PROBATION_STEP
* tested))``: one check in two while untested, one in six after one rejected
plant, then the base rate (10 % by default). With a flat rate a lazy newcomer
collected about ``1 / rate`` fees from each requester before its first plant,
more than its strike cost it (an honest check's render costs 62 % of its fee in
the simulator, so an honest checker keeps 38 %); on probation it collects about
two. A longer probation (``PPM // (2 + tested)``, 8 plants to the base) took
about as much from lazy checkers in the simulator (within the noise of 4
seeds) and cost requesters 1.7 times as much
(docs/VERIFICATION.md "Forced errors"): a lazy checker is caught by its first
plant, and a strategic one waits out any probation, so the base rate, not the
probation, prices it. The machine draws once per result at the highest rate
(:func:`should_plant` with ``plant_rate_ppm(0, base)``) and the driver, having
chosen the plant's checker, keeps the plant only if the same draw is also below
that checker's rate (:func:`plant_kept`): the draw is uniform, so a plant goes
to a checker at exactly its rate, and a replay decides the same.

Why a miss is safe to punish: the perturbation is keyed by the requester's
secret (:func:`plant_key`), drawn after the worker signed its result, so a
worker cannot have pre-compensated it; an honest render of any changed cell
differs from the plant by at least ``PLANT_DELTA`` on ``PLANT_PIXELS_PER_CELL``
pixels (blank cells, :func:`blank_cells`, are the frame's own).
"""

from __future__ import annotations

import hashlib

import numpy as np
import numpy.typing as npt

from protocol.errors import LocalProtocolError
from protocol.messages import Verdict
from protocol.verification import Tile, _uniform_below, tile_grid

PLANT_DOMAIN = b"pictor/verify/plant/v1\x00"
PLANT_KEY_DOMAIN = b"pictor/verify/plant-key/v1\x00"
PLANT_PIXELS_PER_CELL = 4  # pixels changed per cell but the blank ones (fewer: small edge cells)
PLANT_DELTA = 6  # levels (8-bit; 16-bit images: x257) added or subtracted per colour channel
PPM = 1_000_000
PROBATION_STEP = 4  # plant rates 1/2, 1/6, 1/10, ... for 0, 1, 2, ... plants rejected

# PLANT_DELTA and PLANT_PIXELS_PER_CELL against the 55 dB tolerance: a full 16 px RGBA
# cell holds 1,024 samples; 4 pixels x 3 colour channels x 6^2 = 432 squared levels
# give MSE 0.42 and PSNR 51.9 dB < 55; smaller cells and greyscale read lower. Exact
# comparison (same build and device class) rejects any change.


def plant_draw(check_secret: bytes, result_digest: bytes) -> bytes:
    if len(check_secret) != 32 or len(result_digest) != 32:
        raise LocalProtocolError("check_secret and result_digest must be 32 bytes each")
    return hashlib.sha256(PLANT_DOMAIN + check_secret + result_digest).digest()


def plant_position(check_secret: bytes, result_digest: bytes) -> int:
    """The result's uniform 64-bit draw that :func:`should_plant` and :func:`plant_kept` read."""
    return int.from_bytes(plant_draw(check_secret, result_digest)[:8], "big")


def plant_kept(position: int, rate_ppm: int) -> bool:
    """Whether a result whose draw is ``position`` gets a plant at ``rate_ppm``."""
    if not 0 <= rate_ppm <= PPM:
        raise LocalProtocolError("rate_ppm must be within 0..1,000,000")
    if not 0 <= position < 2**64:
        raise LocalProtocolError("a plant draw is 64 bits")
    return position * PPM < rate_ppm * 2**64


def should_plant(check_secret: bytes, result_digest: bytes, rate_ppm: int) -> bool:
    """Whether this result also gets a plant (``rate_ppm`` in millionths; integer maths)."""
    return plant_kept(plant_position(check_secret, result_digest), rate_ppm)


def plant_rate_ppm(tested: int, base_ppm: int) -> int:
    """The plant rate for a checker the requester has seen reject ``tested`` of its
    plants: ``max(base_ppm, PPM // (2 + PROBATION_STEP * tested))`` (probation, module
    docstring);
    0 when plants are off (``base_ppm`` 0). Never above ``plant_rate_ppm(0, base)``,
    the rate the machine draws at, which a driver's :func:`plant_kept` narrows."""
    if not 0 <= base_ppm <= PPM or tested < 0:
        raise LocalProtocolError("base_ppm must be within 0..1,000,000 and tested >= 0")
    if base_ppm == 0:
        return 0
    return max(base_ppm, PPM // (2 + PROBATION_STEP * tested))


def plant_goes(position: int, tested: int, base_ppm: int) -> bool:
    """The driver's decision on a ``RequestPlant`` (draw ``position``) once it chose a
    checker that rejected ``tested`` of its plants: send the plant or drop it. Node and
    simulator both call this; the choice of the checker is ``choose_checker``'s, so
    every checker is offered its share of plant draws and keeps its own rate of them."""
    return plant_kept(position, plant_rate_ppm(tested, base_ppm))


def plant_key(check_secret: bytes, result_digest: bytes) -> bytes:
    """The secret that places the perturbation (revealed only with a miss's evidence)."""
    return hashlib.sha256(PLANT_KEY_DOMAIN + plant_draw(check_secret, result_digest)).digest()


def _planted(view: npt.NDArray[np.generic], cell: Tile) -> list[int] | None:
    """The pixels of ``cell`` (row-major indices within it) a plant picks among, or None
    for a blank cell: one with fewer visible pixels (alpha above 0 in an RGBA image;
    every pixel otherwise) than :func:`perturb` changes (``min(PLANT_PIXELS_PER_CELL,
    area)``). Four specks in a full cell read 51.9 dB, under the 53 dB a pass claim
    needs (``protocol.fraud_evidence.PASS_CLAIM_PSNR_MILLIDB``); three read 53.1 dB. The
    opaque pixels when there are enough: an edge pixel of low alpha leaves less margin
    against a cross-device render's noise (review of stop 45)."""
    area = cell.width * cell.height
    need = min(PLANT_PIXELS_PER_CELL, area)
    if view.shape[2] != 4:
        return list(range(area))
    window = view[cell.y : cell.y + cell.height, cell.x : cell.x + cell.width, 3]
    alpha = np.asarray(window, np.int64).reshape(-1)
    visible = np.flatnonzero(alpha > 0)
    if len(visible) < need:
        return None
    opaque = np.flatnonzero(alpha == int(np.iinfo(view.dtype).max))  # type: ignore[type-var]
    return [int(i) for i in (opaque if len(opaque) >= need else visible)]


def _as_3d(pixels: npt.NDArray[np.generic]) -> npt.NDArray[np.generic]:
    if pixels.dtype not in (np.uint8, np.uint16) or pixels.ndim not in (2, 3):
        raise LocalProtocolError("a plant is made from a 2-D or 3-D uint8/uint16 image")
    return pixels if pixels.ndim == 3 else pixels[:, :, None]


def blank_cells(pixels: npt.NDArray[np.generic], tile_px: int) -> frozenset[Tile]:
    """The cells of the ``tile_px`` grid that :func:`perturb` leaves alone: in an RGBA
    image, those with fewer visible pixels (alpha above 0) than it changes; none in an
    image without alpha. A pass of a plant is a miss, and a claim, only where the
    checker's cells were changed (:func:`plant_missed`, :func:`plant_covers`)."""
    view = _as_3d(pixels)
    height, width = pixels.shape[:2]
    return frozenset(c for c in tile_grid(width, height, tile_px) if _planted(view, c) is None)


def perturb(pixels: npt.NDArray[np.generic], key: bytes, tile_px: int) -> npt.NDArray[np.generic]:
    """A copy of ``pixels`` (HxW or HxWxC, uint8/uint16) changed in every ``tile_px``
    cell of the grid but the blank ones (:func:`blank_cells`): ``min(PLANT_PIXELS_PER_CELL,
    cell pixels)`` distinct visible pixels chosen by ``key`` get ``PLANT_DELTA`` levels
    up or down (whichever stays in range) on each colour channel. Alpha is left alone
    (a changed alpha would tell), and so are pixels under alpha 0: a renderer writes 0
    or 1 there, and a speck of 6 under alpha 0 told a lone lazy checker the plant with
    no render (review of stop 44; measured on Blender 3.4.1 frames with a transparent
    film, Cycles and EEVEE: every colour under alpha 0 is 0 or 1, and a plant put 6 or
    more on 67-68 such pixels of a 96x64 frame, tests/verify/test_plant_alpha.py)."""
    view_in = _as_3d(pixels)
    if len(key) != 32:
        raise LocalProtocolError("the plant key is 32 bytes")
    height, width = pixels.shape[:2]
    out = pixels.copy()
    view = out if out.ndim == 3 else out[:, :, None]
    channels = view.shape[2]
    colour = range(min(3, channels)) if channels in (3, 4) else range(channels)
    peak = int(np.iinfo(pixels.dtype).max)  # type: ignore[type-var]
    delta = PLANT_DELTA * (257 if pixels.dtype == np.uint16 else 1)
    counter = 0
    for cell in tile_grid(width, height, tile_px):
        candidates = _planted(view_in, cell)
        if candidates is None:
            continue  # blank: nothing a renderer would show there to change
        chosen: set[int] = set()
        while len(chosen) < min(PLANT_PIXELS_PER_CELL, cell.width * cell.height):
            pick, counter = _uniform_below(key, counter, len(candidates))
            chosen.add(candidates[pick])
        for index in sorted(chosen):
            y, x = cell.y + index // cell.width, cell.x + index % cell.width
            for c in colour:
                value = int(view[y, x, c])
                view[y, x, c] = value + delta if value + delta <= peak else value - delta
    return out


def _cells_of(verdict: Verdict) -> list[Tile]:
    return [Tile(t.y, t.x, t.width, t.height) for t in verdict.tiles]


def plant_missed(verdict: Verdict, blank: frozenset[Tile] = frozenset()) -> bool:
    """A verdict on a plant that passes it where the plant changed a cell: the checker
    did not look (or lied).

    Every changed cell of a plant differs from any honest render beyond the policy, so
    an honest checker's verdict on a plant always fails where one of its cells was
    changed; a pass whose cells were all ``blank`` (:func:`blank_cells`: nothing there
    to change) is no miss, and no evidence either way."""
    return verdict.passed and any(cell not in blank for cell in _cells_of(verdict))


def plant_covers(
    verdict: Verdict, width: int, height: int, tile_px: int, blank: frozenset[Tile] = frozenset()
) -> bool:
    """Whether every cell ``verdict`` names is a cell :func:`perturb` changed (a cell of
    the frame's ``tile_px`` grid, not ``blank``). Only then can a pass of the plant be
    claimed against its checker's stake: its own cells were all wrong, so claimers
    re-rendering exactly them find it. A verdict naming another rectangle (the machine
    refuses one off its draw anyway) might have looked where nothing changed."""
    grid = set(tile_grid(width, height, tile_px)) - blank
    return bool(verdict.tiles) and all(cell in grid for cell in _cells_of(verdict))


def cells_bitmap(cells: frozenset[Tile], width: int, height: int, tile_px: int) -> bytes:
    """``cells`` as a bitmap over the ``tile_px`` grid in row-major order (a journal's
    record of a plant's blank cells); :func:`cells_of_bitmap` reads it back."""
    grid = list(tile_grid(width, height, tile_px))
    bits = bytearray((len(grid) + 7) // 8)
    for i, cell in enumerate(grid):
        if cell in cells:
            bits[i // 8] |= 1 << (i % 8)
    return bytes(bits)


def cells_of_bitmap(bits: bytes, width: int, height: int, tile_px: int) -> frozenset[Tile]:
    grid = list(tile_grid(width, height, tile_px))
    if len(bits) != (len(grid) + 7) // 8:
        raise LocalProtocolError("a cell bitmap of another grid")
    return frozenset(c for i, c in enumerate(grid) if bits[i // 8] >> (i % 8) & 1)

"""select_tiles draws its cells without building the whole grid: the same cells as the
grid-swapping Fisher-Yates it replaced (the vectors pin it too)."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from protocol.verification import _uniform_below, select_tiles, tile_grid, tile_seed


def grid_swapping(digest: bytes, secret: bytes, w: int, h: int, k: int, px: int) -> tuple:  # type: ignore[type-arg]
    seed = tile_seed(digest, secret)
    cells = list(tile_grid(w, h, px))
    take = min(k, len(cells))
    counter = 0
    for i in range(take):
        j, counter = _uniform_below(seed, counter, len(cells) - i)
        cells[i], cells[i + j] = cells[i + j], cells[i]
    return tuple(sorted(cells[:take]))


@settings(max_examples=300, deadline=None)
@given(
    digest=st.binary(min_size=32, max_size=32),
    secret=st.binary(min_size=32, max_size=32),
    w=st.integers(1, 700),
    h=st.integers(1, 400),
    k=st.integers(0, 300),
    px=st.sampled_from([1, 7, 16, 64]),
)
def test_the_sparse_draw_picks_what_the_grid_swapping_picked(
    digest: bytes, secret: bytes, w: int, h: int, k: int, px: int
) -> None:
    assert select_tiles(digest, secret, w, h, k, px) == grid_swapping(digest, secret, w, h, k, px)

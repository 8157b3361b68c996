"""Tiles of an N × M divergence matrix: how many rows and columns are worked on at once.

A tile's working set is ``bytes_per_entry`` per (i, j) entry — the temporaries of the product
route, or of the broadcast pair route, which holds d×d arrays for every pair of a tile. The
plan keeps it under ``max_memory`` (or takes ``block`` as given), preferring whole rows of Q so
that each row tile streams over the columns once.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import NamedTuple

import numpy as np

from gaussdiv.errors import GaussianError

#: The default bound on one tile's working set, in bytes.
DEFAULT_MAX_MEMORY = 256 * 2**20

#: Columns per tile when the budget allows: long enough for GEMM-rate products, short enough
#: to keep a row tile's temporaries in cache-friendly sizes.
PREFERRED_COLUMNS = 2048


class Tiling(NamedTuple):
    """Row and column tile sizes for an n × m matrix."""

    n: int
    m: int
    rows: int
    cols: int

    def row_blocks(self) -> Iterator[tuple[int, int]]:
        """(start, stop) of each row tile."""
        return _blocks(self.n, self.rows)

    def col_blocks(self) -> Iterator[tuple[int, int]]:
        """(start, stop) of each column tile."""
        return _blocks(self.m, self.cols)


def plan(n: int, m: int, bytes_per_entry: int, *, block: int | tuple[int, int] | None,
         max_memory: int | None, square: bool = False) -> Tiling:
    """The tiling of an n × m matrix.

    ``block``: an int (square tiles) or (rows, cols), used as given (clipped to n, m);
    otherwise tiles of at most ``max_memory`` bytes (default :data:`DEFAULT_MAX_MEMORY`) of
    working set. ``square``: equal row and column tiles (a matrix computed on one triangle).
    GaussianError for a block that is not a positive integer, or a budget that does not hold
    one entry's working set.
    """
    if block is not None:
        rows, cols = _block(block)
        if square:
            rows = cols = min(rows, cols)
        return Tiling(n, m, max(1, min(rows, n)), max(1, min(cols, m)))
    budget = DEFAULT_MAX_MEMORY if max_memory is None else _positive(max_memory, "max_memory")
    entries = budget // bytes_per_entry
    if entries < 1:
        raise GaussianError(
            f"max_memory={budget} bytes is too small for one row of a tile: one entry needs "
            f"{bytes_per_entry} bytes of working set here; raise max_memory or pass block=")
    cols = max(1, min(m, PREFERRED_COLUMNS, entries))
    rows = max(1, min(n, entries // cols))
    if square:
        rows = cols = max(1, min(rows, cols, math.isqrt(entries)) if rows < n or cols < m
                          else min(rows, cols))
    return Tiling(n, m, rows, cols)


def _block(block: int | tuple[int, int]) -> tuple[int, int]:
    if isinstance(block, tuple | list) and len(block) == 2:
        return _positive(block[0], "block[0]"), _positive(block[1], "block[1]")
    if isinstance(block, tuple | list):
        raise GaussianError(f"block must be an int or a pair (rows, cols), got {block!r}")
    size = _positive(block, "block")
    return size, size


def _positive(value: object, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
        raise GaussianError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


def _blocks(total: int, size: int) -> Iterator[tuple[int, int]]:
    for start in range(0, total, size):
        yield start, min(total, start + size)

"""The two ways a tile (rows i of P, columns j of Q) of a divergence matrix is computed.

- :class:`ProductRoute`, for KL (and Jeffreys as KL both ways): packed moments once per
  Gaussian, one GEMM per tile, each entry gated on its rounding bound
  (:mod:`gaussdiv.matrices.product`), and the flagged entries recomputed by the single-pair
  function on just those pairs, so every entry has its accuracy and identical pairs give 0.
- :class:`BroadcastRoute`, for every other divergence, any callable, and traced arrays: the
  divergence itself on the tile's pairs broadcast, D(P[i₀:i₁, None], Q[None, j₀:j₁]).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from gaussdiv.gaussian import Gaussian
from gaussdiv.matrices.moments import Moments, column_moments, row_moments, uses_diagonal_layout
from gaussdiv.matrices.product import ProductTile, product_tile, unkept
from gaussdiv.structures import DiagonalCovariance, Factored

Divergence = Callable[..., Any]


def broadcast_entry_bytes(p: Gaussian, q: Gaussian, itemsize: int) -> int:
    """Working set of one pair on the broadcast route (and of one recomputed pair): for two
    diagonal structures a few d-vectors; otherwise the d×d temporaries of a dense pair (both
    factors broadcast, the whitened product, the exact route's difference and its
    eigendecomposition), with room to spare."""
    d = p.dim
    if isinstance(p.cov, DiagonalCovariance) and isinstance(q.cov, DiagonalCovariance):
        return (16 * d + 64) * itemsize
    return (16 * d * d + 32 * d + 64) * itemsize


def product_entry_bytes(itemsize: int) -> int:
    """Working set of one entry on the product route: the value, its float32 magnitude, the
    scaled magnitude, the mask, the error bound (top-k) and the other direction (Jeffreys)."""
    return 2 * (itemsize + 4 + 8 + 1 + 8)


class BroadcastRoute:
    """D(P_i, Q_j) for a tile by the divergence on the broadcast pairs (exact by itself)."""

    def __init__(self, function: Divergence, p: Gaussian, q: Gaussian,
                 options: dict[str, Any]) -> None:
        self.function, self.p, self.q, self.options = function, p, q, options

    def tile(self, r0: int, r1: int, c0: int, c1: int) -> Any:
        rows = self.p[r0:r1].reshape(r1 - r0, 1)
        cols = self.q[c0:c1].reshape(1, c1 - c0)
        return self.function(rows, cols, **self.options)


class ProductRoute:
    """KL(P_i‖Q_j) for tiles of a flat P (n,) against a flat Q (m,), by packed moments.

    ``center`` is the point both sides' means are taken from (any common point; the mean of
    all means keeps the moments small). Row moments are built per row tile (the latest kept),
    column moments once per column tile and kept, so memory is O((tile rows + m)·K).
    """

    def __init__(self, kl: Divergence, p: Gaussian, q: Gaussian, center: Any,
                 exact_chunk: int) -> None:
        self.kl, self.p, self.q, self.center = kl, p, q, center
        for g in (p, q):  # cached on the whole batch, so that tiles and gathers inherit them
            if isinstance(g.cov, Factored):
                g.cov.backward_error  # noqa: B018 (a cached property)
        self.dtype = np.promote_types(p.cov.dtype, q.cov.dtype)
        self.diagonal = uses_diagonal_layout(q)
        self.exact_chunk = exact_chunk
        self._rows: tuple[tuple[int, int], Moments] | None = None
        self._cols: dict[tuple[int, int], Moments] = {}

    def rows(self, r0: int, r1: int) -> Moments:
        if self._rows is None or self._rows[0] != (r0, r1):
            self._rows = ((r0, r1), row_moments(self.p[r0:r1], self.center, self.diagonal))
        return self._rows[1]

    def cols(self, c0: int, c1: int) -> Moments:
        if (c0, c1) not in self._cols:
            self._cols[(c0, c1)] = column_moments(self.q[c0:c1], self.center, self.diagonal)
        return self._cols[(c0, c1)]

    def fast(self, r0: int, r1: int, c0: int, c1: int, out: Any = None) -> ProductTile:
        """The product tile: values (into ``out`` if given), which are kept, and their
        bounds."""
        return product_tile(self.p.ops, self.rows(r0, r1), self.cols(c0, c1), self.dtype, out)

    def tile(self, r0: int, r1: int, c0: int, c1: int, out: Any = None) -> Any:
        """KL for the tile, every entry to the single-pair accuracy (written into ``out``, a
        NumPy block of the result, when given)."""
        fast = self.fast(r0, r1, c0, c1, out)
        if fast.kept.all():  # the usual case
            return fast.value
        ii, jj = unkept(fast.kept)
        exact = self.exact(r0 + ii, c0 + jj)
        return put(self.p.ops, fast.value, ii * (c1 - c0) + jj, exact)

    def exact(self, i: np.ndarray, j: np.ndarray) -> Any:
        """KL(P_i‖Q_j) by the single-pair function for the listed pairs (flat indices)."""
        return gathered_pairs(self.kl, self.p, self.q, i, j, self.exact_chunk, {})


def gathered_pairs(function: Divergence, p: Gaussian, q: Gaussian, i: np.ndarray,
                   j: np.ndarray, chunk: int, options: dict[str, Any]) -> Any:
    """``function(p[i], q[j])`` for index arrays i, j (k,), in chunks of at most ``chunk``."""
    ops = p.ops
    like = p.mean
    parts = []
    for start in range(0, i.size, chunk):
        rows = ops.index_array(i[start:start + chunk], like=like)
        cols = ops.index_array(j[start:start + chunk], like=like)
        parts.append(function(p[rows], q[cols], **options))
    return parts[0] if len(parts) == 1 else ops.xp.concatenate(parts)


def put(ops: Any, tile: Any, flat: np.ndarray, values: Any) -> Any:
    """``tile`` with ``values`` written at the flat positions ``flat`` (in place on NumPy, whose
    tiles are fresh products; a differentiable scatter elsewhere)."""
    if isinstance(tile, np.ndarray):
        tile.reshape(-1)[flat] = values
        return tile
    flat_tile = tile.reshape(-1)
    index = ops.index_array(flat, like=flat_tile)
    return ops.scatter(flat_tile, index, ops.cast_like(values, flat_tile)).reshape(tile.shape)

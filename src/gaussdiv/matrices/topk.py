"""``gaussdiv.pairwise_topk``: the k nearest (or farthest) Q_j of every P_i, streamed over tiles.

Memory is O(N·k + one tile): per row tile, the k best so far are merged with each column tile.
On the product route (KL) an entry the product does not resolve (P_i ≈ Q_j, see
:mod:`gaussdiv.matrices.product`) enters with the most favourable value its error bound allows
and is recomputed by the single-pair function only when that would put it among the row's k
best — when its rank could depend on it.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from gaussdiv.divergences.kl import kl
from gaussdiv.divergences.wasserstein import wasserstein
from gaussdiv.errors import GaussianError
from gaussdiv.gaussian import Gaussian, entry_point, refuse_semidefinite, result_dtype
from gaussdiv.matrices.matrix import (
    Divergence,
    common_center,
    exact_chunk,
    flat_pair,
    resolve,
    traced,
)
from gaussdiv.matrices.product import unkept
from gaussdiv.matrices.routes import (
    BroadcastRoute,
    ProductRoute,
    broadcast_entry_bytes,
    gathered_pairs,
    product_entry_bytes,
)
from gaussdiv.matrices.tiles import plan
from gaussdiv.types import Array


@entry_point(semidefinite=True)
def pairwise_topk(divergence: Divergence | str, P: Gaussian, Q: Gaussian | None, k: int, *,
                  largest: bool = False, block: int | tuple[int, int] | None = None,
                  max_memory: int | None = None, **options: Any) -> tuple[Array, Array]:
    """The k nearest (or farthest) Q_j of every P_i, by a divergence, without the full matrix.

    For every i, the k smallest (``largest=True``: largest) values of D[i, j] =
    divergence(P_i, Q_j) over j, and their indices j, streamed over the tiles of
    :func:`pairwise`: memory O(N·k + one tile), never N × M.

    Args:
        divergence: as for :func:`gaussdiv.pairwise` (a function or its name).
        P: Gaussians of batch shape B₁.
        Q: Gaussians of batch shape B₂ (indices count over its flattened batch); P when None.
        k: how many per P_i, 1 ≤ k ≤ the number of Q's.
        largest: the k largest instead of the k smallest.
        block: as for :func:`gaussdiv.pairwise`.
        max_memory: as for :func:`gaussdiv.pairwise`.
        **options: passed to the divergence, as for :func:`gaussdiv.pairwise`.

    Returns:
        ``(indices, values)``, each of shape B₁ + (k,), best first: ``indices`` int64 into Q's
        flattened batch (ties in index order), ``values`` the divergence of each chosen pair by
        the single-pair function, in P's framework (differentiable where it is).

    Raises:
        GaussianError: k is not an integer from 1 to the number of Q's; and as for
            :func:`gaussdiv.pairwise` (an unknown name, a bad ``block`` or ``max_memory``, the
            divergence's own option errors).
        TypeError: P or Q is not a Gaussian, or ``divergence`` is neither a function nor a
            string.
        BackendMismatchError: P and Q hold arrays of different frameworks.
        DimensionMismatchError: P and Q have different d (or differently named coordinates).

    Cost: that of :func:`gaussdiv.pairwise` on the same pairs (KL by the product route), plus
    a partial sort per tile row and N·k single-pair evaluations for ``values``.

    Entries are ranked by values accurate to 2⁹u relative (exact where the product route's
    bound does not resolve them); pairs closer than that may come in either order.

    Examples:
        >>> import numpy as np, gaussdiv
        >>> P = gaussdiv.Gaussian(np.array([[0.0], [1.0], [3.0]]), np.ones((3, 1, 1)))
        >>> indices, values = gaussdiv.pairwise_topk("kl", P, None, 2)
        >>> indices  # each P_i itself first (KL 0), then its nearest other
        array([[0, 1],
               [1, 0],
               [2, 1]])
        >>> values  # (μᵢ − μⱼ)²/2
        array([[0. , 0.5],
               [0. , 0.5],
               [0. , 2. ]])
    """
    function = resolve(divergence)
    if function is not wasserstein:
        refuse_semidefinite(f"pairwise_topk({function.__name__})", (("P", P), ("Q", Q)))
    p, q, _ = flat_pair(P, Q)
    n, m = p.batch_shape[0], q.batch_shape[0]
    if isinstance(k, bool) or not isinstance(k, int | np.integer) or not 1 <= k <= m:
        raise GaussianError(f"k must be an integer from 1 to the number of Q's ({m}), got {k!r}")
    k = int(k)
    ops = p.ops
    dtype = np.promote_types(p.cov.dtype, q.cov.dtype)
    chunk = exact_chunk(p, q, dtype, max_memory)
    product = function is kl and not options and not traced(p, q)
    if product:
        tiling = plan(n, m, product_entry_bytes(dtype.itemsize), block=block,
                      max_memory=max_memory)
        route: Any = ProductRoute(kl, p, q, common_center(p, q), chunk)
    else:
        tiling = plan(n, m, broadcast_entry_bytes(p, q, dtype.itemsize), block=block,
                      max_memory=max_memory)
        route = BroadcastRoute(function, p, q, options)
    sign = -1.0 if largest else 1.0  # rank by sign·value, smallest first
    indices = np.empty((n, k), np.int64)
    for r0, r1 in tiling.row_blocks():
        best = np.full((r1 - r0, 0), np.inf)
        where = np.empty((r1 - r0, 0), np.int64)
        for c0, c1 in tiling.col_blocks():
            if product:
                keys, columns = _product_best(route, r0, r1, c0, c1, best, where, k, sign)
            else:
                tile = route.tile(r0, r1, c0, c1)
                plain = np.asarray(ops.to_numpy(ops.stop_gradient(tile)), np.float64)
                keys, columns = _smallest(sign * plain, c0, k)
            best, where = _merge(best, where, keys, columns, k)
        indices[r0:r1] = where
    rows = np.repeat(np.arange(n), k)
    values = gathered_pairs(function, p, q, rows, indices.reshape(-1), chunk, options)
    values = ops.result(values.reshape(*P.batch_shape, k), result_dtype(P, P if Q is None else Q))
    return ops.index_array(indices.reshape(*P.batch_shape, k), like=p.mean), values


def _product_best(route: ProductRoute, r0: int, r1: int, c0: int, c1: int, best: np.ndarray,
                  where: np.ndarray, k: int, sign: float) -> tuple[np.ndarray, np.ndarray]:
    """The k smallest sign·KL of a product tile per row, and their columns, exact where it
    matters: an entry the product does not resolve enters with the most favourable value its
    bound allows, and is recomputed by the single-pair function only if it is then among the
    row's k best (with those found so far); repeated until every one chosen is resolved."""
    fast = route.fast(r0, r1, c0, c1)
    keys = fast.plain if sign > 0 else -fast.plain  # a fresh array on NumPy too: edited below
    pending = ~fast.kept
    ii, jj = unkept(fast.kept)
    if ii.size:
        with np.errstate(invalid="ignore"):
            hopeful = sign * fast.plain[ii, jj] - fast.error(ii, jj)
        hopeful[np.isnan(hopeful)] = -np.inf
        keys[ii, jj] = np.maximum(hopeful, 0.0) if sign > 0 else hopeful  # KL ≥ 0
    ops = route.p.ops
    while True:
        tile_keys, columns = _smallest(keys, c0, k)
        if not ii.size:
            return tile_keys, columns
        _, chosen = _merge(best, where, tile_keys, columns, k)
        local = chosen - c0
        inside = (local >= 0) & (local < c1 - c0)
        rows = np.nonzero(inside)[0]
        cols = local[inside]
        unresolved = pending[rows, cols]
        if not unresolved.any():
            return tile_keys, columns
        rows, cols = rows[unresolved], cols[unresolved]
        exact = route.exact(r0 + rows, c0 + cols)
        keys[rows, cols] = sign * np.asarray(ops.to_numpy(ops.stop_gradient(exact)), np.float64)
        pending[rows, cols] = False


def _smallest(keys: np.ndarray, c0: int, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The k smallest keys of each row of a tile (all when it has ≤ k columns) and their
    columns (offset by c0); among keys tied at the k-th, the lowest columns."""
    c = keys.shape[1]
    if c <= k:
        return keys, np.broadcast_to(np.arange(c0, c0 + c), keys.shape)
    part = np.argpartition(keys, k - 1, axis=1)[:, :k]
    chosen = np.take_along_axis(keys, part, 1)
    kth = chosen.max(1)
    crowded = np.nonzero(np.count_nonzero(keys <= kth[:, None], axis=1) > k)[0]
    for i in crowded:  # ties at the k-th: argpartition picks arbitrary ones; take the first
        part[i] = np.argsort(keys[i], kind="stable")[:k]
        chosen[i] = keys[i, part[i]]
    return chosen, part + c0


def _merge(best: np.ndarray, where: np.ndarray, keys: np.ndarray, columns: np.ndarray,
           k: int) -> tuple[np.ndarray, np.ndarray]:
    """The k smallest of two per-row candidate lists, sorted (ties by column)."""
    keys = np.concatenate([best, keys], 1)
    columns = np.concatenate([where, columns], 1)
    order = np.lexsort((columns, keys), axis=1)[:, :k]
    return np.take_along_axis(keys, order, 1), np.take_along_axis(columns, order, 1)

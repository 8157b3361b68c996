"""``gaussdiv.pairwise``: the matrix of a divergence between every P_i and every Q_j.

Computed in tiles (:mod:`gaussdiv.matrices.tiles`), so memory is the output plus one tile's
working set, never N × M × d × d. KL and Jeffreys take the product route (one GEMM of packed
per-Gaussian moments per tile; entries whose rounding bound is not small against their value
recomputed by the single-pair function), every other divergence the broadcast route
(:mod:`gaussdiv.matrices.routes`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from gaussdiv.divergences.jeffreys import jeffreys
from gaussdiv.divergences.kl import kl
from gaussdiv.divergences.renyi import bhattacharyya, bhattacharyya_coefficient, hellinger, renyi
from gaussdiv.divergences.wasserstein import wasserstein
from gaussdiv.errors import GaussianError
from gaussdiv.gaussian import (
    Gaussian,
    check_gaussian,
    check_same_space,
    entry_point,
    refuse_semidefinite,
    result_dtype,
)
from gaussdiv.matrices.routes import (
    BroadcastRoute,
    ProductRoute,
    broadcast_entry_bytes,
    product_entry_bytes,
)
from gaussdiv.matrices.tiles import DEFAULT_MAX_MEMORY, Tiling, plan
from gaussdiv.types import Array

Divergence = Callable[..., Any]

#: The divergences by name (``pairwise("hellinger", P)``).
DIVERGENCES: dict[str, Divergence] = {
    "kl": kl, "jeffreys": jeffreys, "renyi": renyi, "bhattacharyya": bhattacharyya,
    "bhattacharyya_coefficient": bhattacharyya_coefficient, "hellinger": hellinger,
    "wasserstein": wasserstein,
}

#: D(P, Q) = D(Q, P): with Q omitted, one triangle is computed and mirrored.
SYMMETRIC = (jeffreys, bhattacharyya, bhattacharyya_coefficient, hellinger, wasserstein)


@entry_point(semidefinite=True)
def pairwise(divergence: Divergence | str, P: Gaussian, Q: Gaussian | None = None, *,
             block: int | tuple[int, int] | None = None, max_memory: int | None = None,
             **options: Any) -> Array:
    """The matrix D[i, j] = divergence(P_i, Q_j) over every P_i and every Q_j.

    Each entry is the single-pair value (e.g. eq. (23) for KL), computed in tiles so that
    memory is the output plus one tile's working set, never N × M × d × d.

    Args:
        divergence: ``gaussdiv.kl``, ``jeffreys``, ``renyi`` (with ``alpha=``),
            ``bhattacharyya``, ``bhattacharyya_coefficient``, ``hellinger``, ``wasserstein``
            (``squared=``), or their names; any function (p, q, **options) → batch values of
            the library's kind works through the broadcast route.
        P: Gaussians of batch shape B₁ (any structure and framework).
        Q: Gaussians of batch shape B₂, same d and framework; P itself when omitted (then a
            symmetric divergence is computed on one triangle and mirrored: exactly
            symmetric).
        block: tile size, an int or (rows, cols); by default chosen from ``max_memory``.
        max_memory: bytes of working set per tile (default 256 MiB); the output comes on top.
        **options: passed to the divergence (``alpha=0.5``).

    Returns:
        Array of shape B₁ + B₂ (the batch shapes concatenated, not broadcast) in P's framework
        and the pair's dtype (a NumPy array for NumPy inputs); entries ≥ 0 (the Bhattacharyya
        coefficient in [0, 1]).

    Raises:
        TypeError: P or Q is not a Gaussian (nor a torch / SciPy normal), or ``divergence`` is
            neither a function nor a string.
        GaussianError: an unknown divergence name; ``block`` is not a positive integer or a
            pair of them; ``max_memory`` is not a positive integer or cannot hold one entry's
            working set; an option the divergence refuses (e.g. ``alpha`` ≤ 0).
        BackendMismatchError: P and Q hold arrays of different frameworks.
        DimensionMismatchError: P and Q have different d (or differently named coordinates).
        NotPositiveDefiniteError: raised by the divergence when a covariance is numerically
            singular in the dtype.

    Cost: KL with dense covariances is one Cholesky (cached) and one d×d inverse, corrected
    for the factor's backward error, per Q_j, then one GEMM of (N × K)·(K × M),
    K = d(d+1)/2 + d + 2, plus one float32 GEMM for the rounding bounds; K = 2d + 2 when Q is
    diagonal. Jeffreys is KL both ways. The entries that cancel (P_i ≈ Q_j) are recomputed by
    ``kl`` on just those pairs. Other divergences cost their single-pair price per entry
    (O(d³) for dense pairs). Measured: 2000 × 2000 at d = 16 in 2.55× one bare GEMM of the
    packed moments, 237× faster than broadcasting ``kl`` (benchmarks/RESULTS.md, section 8).

    Accuracy: every entry within 2⁹u (5.7e-14 in float64) of the single-pair function, or
    recomputed by it; identical pairs give exactly 0. Measured: 5.2e-15 worst relative error
    (identical and near-identical pairs included; κ up to 10⁸ in tests/test_pairwise.py).

    Examples:
        >>> import numpy as np, gaussdiv
        >>> P = gaussdiv.Gaussian(np.array([[0.0], [1.0], [3.0]]), np.ones((3, 1, 1)))
        >>> gaussdiv.pairwise(gaussdiv.kl, P)  # unit variances: (μᵢ − μⱼ)²/2
        array([[0. , 0.5, 4.5],
               [0.5, 0. , 2. ],
               [4.5, 2. , 0. ]])
        >>> Q = gaussdiv.Gaussian(np.zeros((2, 1)), np.ones((2, 1, 1)))
        >>> gaussdiv.pairwise("renyi", P, Q, alpha=0.5).shape
        (3, 2)
    """
    function = resolve(divergence)
    if function is not wasserstein:
        refuse_semidefinite(f"pairwise({function.__name__})", (("P", P), ("Q", Q)))
    p, q, shape = flat_pair(P, Q)
    symmetric = Q is None and function in SYMMETRIC
    ops = p.ops
    n, m = p.batch_shape[0], q.batch_shape[0]
    dtype = np.promote_types(p.cov.dtype, q.cov.dtype)
    if n == 0 or m == 0:
        return ops.result(ops.asarray(np.zeros((n, m)), dtype, like=p.mean).reshape(shape),
                          result_dtype(P, P if Q is None else Q))
    if function in (kl, jeffreys) and not options and not traced(p, q):
        tiling = plan(n, m, product_entry_bytes(dtype.itemsize), block=block,
                      max_memory=max_memory, square=symmetric)
        chunk = exact_chunk(p, q, dtype, max_memory)
        center = common_center(p, q)
        forward = ProductRoute(kl, p, q, center, chunk)
        if function is kl:
            tile = forward.tile
            direct = dtype == np.dtype(p.cov.dtype) == np.dtype(q.cov.dtype)
        else:
            backward = ProductRoute(kl, q, p, center, chunk)

            def tile(r0: int, r1: int, c0: int, c1: int) -> Any:
                return forward.tile(r0, r1, c0, c1) + \
                    ops.matrix_transpose(backward.tile(c0, c1, r0, r1))

            direct = False
    else:
        tiling = plan(n, m, broadcast_entry_bytes(p, q, dtype.itemsize), block=block,
                      max_memory=max_memory, square=symmetric)
        tile = BroadcastRoute(function, p, q, options).tile
        direct = False
    out = assemble(ops, tiling, tile, symmetric, dtype, like=p.mean, direct=direct)
    return ops.result(out.reshape(shape), result_dtype(P, P if Q is None else Q))


def resolve(divergence: Divergence | str) -> Divergence:
    """The divergence function for a function or a name of :data:`DIVERGENCES`."""
    if isinstance(divergence, str):
        try:
            return DIVERGENCES[divergence.strip().lower()]
        except KeyError:
            raise GaussianError(f"unknown divergence {divergence!r}; one of "
                                f"{', '.join(DIVERGENCES)} (or the function itself)") from None
    if not callable(divergence):
        raise TypeError(f"divergence must be a function such as gaussdiv.kl or its name, got "
                        f"{type(divergence).__name__}")
    return divergence


def flat_pair(P: Gaussian, Q: Gaussian | None) -> tuple[Gaussian, Gaussian, tuple[int, ...]]:
    """P and Q (P when None) flattened to one batch axis each, and the output shape B₁ + B₂;
    errors naming P and Q when they cannot meet."""
    check_gaussian(P, "P")
    if Q is None:
        Q = P
    check_gaussian(Q, "Q")
    check_same_space(P, Q, ("P", "Q"))
    p = P.reshape(-1)
    q = p if Q is P else Q.reshape(-1)
    return p, q, P.batch_shape + Q.batch_shape


def traced(p: Gaussian, q: Gaussian) -> bool:
    """Whether any input is traced (jax.jit, torch.func): no host reads, so no product route."""
    ops = p.ops
    return any(ops.is_traced(g.mean) or ops.is_traced(g.cov.device_array) for g in (p, q))


def common_center(p: Gaussian, q: Gaussian) -> Any:
    """The mean of all the means (d,), without gradient: any common point gives the same KL."""
    ops = p.ops
    with ops.no_grad():
        total = ops.sum(ops.stop_gradient(p.mean), 0) + ops.sum(ops.stop_gradient(q.mean), 0)
        return total / (p.batch_shape[0] + q.batch_shape[0])


def exact_chunk(p: Gaussian, q: Gaussian, dtype: np.dtype, max_memory: int | None) -> int:
    """Pairs per call of the single-pair function on flagged entries."""
    budget = DEFAULT_MAX_MEMORY if max_memory is None else max_memory
    return max(1, budget // broadcast_entry_bytes(p, q, dtype.itemsize))


def assemble(ops: Any, tiling: Tiling, tile: Callable[..., Any], symmetric: bool,
             dtype: np.dtype, like: Any, direct: bool = False) -> Any:
    """The n × m matrix from its tiles; with ``symmetric``, tiles on and above the diagonal
    only (square tiles), mirrored, the diagonal tiles from their upper triangles. ``direct``:
    ``tile`` takes ``out=`` and writes full-width NumPy tiles into the result itself."""
    xp = ops.xp
    on_numpy = isinstance(like, np.ndarray)
    out = np.empty((tiling.n, tiling.m), dtype) if on_numpy else None
    tiles: dict[tuple[int, int], Any] = {}
    for r0, r1 in tiling.row_blocks():
        for c0, c1 in tiling.col_blocks():
            if symmetric and c0 < r0:
                continue
            if on_numpy and direct and c0 == 0 and c1 == tiling.m:
                tile(r0, r1, c0, c1, out=out[r0:r1])  # rows of the result: contiguous
                continue
            value = tile(r0, r1, c0, c1)
            if symmetric and c0 == r0:
                value = upper_mirrored(ops, value)
            if on_numpy:
                out[r0:r1, c0:c1] = value
                if symmetric and c0 > r0:
                    out[c0:c1, r0:r1] = value.T
            else:
                tiles[(r0, c0)] = value
                if symmetric and c0 > r0:
                    tiles[(c0, r0)] = ops.matrix_transpose(value)
    if on_numpy:
        return out
    rows = [xp.concatenate([tiles[(r0, c0)] for c0, _ in tiling.col_blocks()], 1)
            for r0, _ in tiling.row_blocks()]
    return xp.concatenate(rows, 0)


def upper_mirrored(ops: Any, value: Any) -> Any:
    """A square tile with its strict lower triangle replaced by the upper one's mirror."""
    xp = ops.xp
    return xp.triu(value) + ops.matrix_transpose(xp.triu(value, 1))

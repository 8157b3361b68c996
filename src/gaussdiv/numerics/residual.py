"""Cheap residuals for first-order corrections, at BLAS speed (3 products).

They let callers correct for a factorisation's or a solve's own rounding: LAPACK's Cholesky
factor L̂ of A is the exact factor of A − (A − L̂L̂ᵀ), and a triangular solve's X̂ solves
T X = B − (B − T X̂) exactly; knowing those residuals to a few digits corrects the results to
first order. Where a residual must be accurate to the last bit (a double-double product whose
low part is the result, as in the exact pair routes), use
:func:`gaussdiv.numerics.error_free.product_residual` instead (≈ 3× the cost).
"""

from __future__ import annotations

from typing import Any

import numpy as np


def rough_product_residual(ops: Any, c: Any, a: Any, b: Any) -> Any:
    """C − A B, accurate to ≈ 2⁻²⁰ relative even where C ≈ A B, at the cost of 3 BLAS products;
    None when the framework has no float64 to compute in (JAX without x64).

    Each row of A and column of B is split as hi + lo, hi rounded to k = ⌊(53 − log₂ n)/2⌋ bits
    on a grid of its own scale (an exact operation), so every product of hi parts is an integer
    below 2^(2k) on a common grid and hi_A·hi_B is exact in float64, in any summation order.
    Then C − A B = ((C − hi·hi) − (hi·lo + lo·hi)) − lo·lo, where the first difference is exact
    to rounding of a ≈ 2⁻ᵏ-small quantity. float32 inputs are computed in float64.
    """
    dtype = ops.numpy_dtype(c)
    if dtype == np.float32:
        wide = [ops.widen(v) for v in (c, a, b)]
        if wide[0] is None:
            return None
        return ops.cast_like(wide[0] - wide[1] @ wide[2], c)
    if dtype != np.float64:
        return None
    n = a.shape[-1]
    bits = (53 - int(np.ceil(np.log2(max(n, 2))))) // 2
    a_hi, a_lo = _split(ops, a, -1, bits)
    b_hi, b_lo = _split(ops, b, -2, bits)
    return ((c - a_hi @ b_hi) - (a_hi @ b_lo + a_lo @ b_hi)) - a_lo @ b_lo


def _split(ops: Any, x: Any, axis: int, bits: int) -> tuple[Any, Any]:
    """x = hi + lo exactly, hi on the grid 2^(e − bits) of its row (axis −1) or column."""
    xp = ops.xp
    largest = ops.max_abs(x, axis)
    exponent = xp.frexp(largest)[1]
    scale = xp.ldexp(xp.ones_like(largest), exponent - bits)
    hi = xp.round(x / scale) * scale
    return hi, x - hi


def cholesky_residual(ops: Any, a: Any, factor: Any) -> Any:
    """A − L̂L̂ᵀ for the computed factor L̂ of A (see :func:`rough_product_residual`)."""
    return rough_product_residual(ops, a, factor, ops.matrix_transpose(factor))


def solve_triangular_refined(ops: Any, t: Any, b: Any, lower: bool) -> Any:
    """T⁻¹B plus one step of iterative refinement with the residual of
    :func:`rough_product_residual`, which removes the solve's own backward error (≈ u·cond(T)).

    Used where X's relative accuracy is the result's (the whitened difference of two nearly
    equal covariances).
    """
    x = ops.solve_triangular(t, b, lower)
    residual = rough_product_residual(ops, b, t, x)
    if residual is None:
        return x
    return x + ops.solve_triangular(t, residual, lower)

"""Log-densities and the log-ratio ln p(x)/q(x) (eqs. 4, 8–10 of docs/derivation.md)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from gaussdiv.backends import broadcast_shapes, framework_of
from gaussdiv.errors import BackendMismatchError, DimensionMismatchError, DtypeError, ShapeError
from gaussdiv.gaussian import Gaussian, check_gaussian, check_pair, entry_point
from gaussdiv.types import Array, ArrayLike
from gaussdiv.validation import check_dtype, check_finite, check_vector

_LOG_2PI = math.log(2 * math.pi)


@entry_point
def log_prob(p: Gaussian, x: ArrayLike) -> Array:
    """The log-density of P at points x, eq. (8) (eq. (4) in logarithms):

        ln p(x) = ln N(x; μ, Σ) = −½ (d ln 2π + ln|Σ| + (x−μ)ᵀΣ⁻¹(x−μ)).

    Where the solve overflows inside (∞ − ∞ for x − μ near the float range), the quadratic
    form is recomputed for x − μ scaled by a power of two and scaled back, so the result is
    −∞ only when the value itself is beyond the range.

    Args:
        p: the Gaussian N(μ, Σ), batch shape B, dimension d.
        x: points of shape (..., d) (an array of P's framework, or anything ``numpy.asarray``
            reads); the leading shape ``x.shape[:-1]`` broadcasts with B.

    Returns:
        Array of shape broadcast(x.shape[:-1], B) in P's framework and dtype (x is cast to it);
        a NumPy scalar for one point of an unbatched NumPy Gaussian. Any real value (a density
        can exceed 1).

    Raises:
        TypeError: p is not a Gaussian (nor a torch / SciPy normal, which is converted).
        BackendMismatchError: x is an array of another framework than P's.
        DtypeError: x is complex, boolean or not numeric, or has entries beyond the range of
            P's dtype.
        NonFiniteError: x has a NaN or infinite entry.
        DimensionMismatchError: x's last axis is not d.
        ShapeError: x is a scalar or ragged, or its leading shape does not broadcast with B.

    Cost: ln|Σ| once, then one whitening per point: O(d²) for a dense Σ (its Cholesky factor,
    O(d³), is cached on the Gaussian), O(d) diagonal, O(d k) low-rank of rank k (after an
    O(d k²) factorisation), O(d (m₁ + m₂)) for a Kronecker product of m₁×m₁ and m₂×m₂ factors.

    Examples:
        >>> import numpy as np, gaussdiv
        >>> p = gaussdiv.Gaussian(np.zeros(2), np.eye(2))
        >>> round(float(gaussdiv.log_prob(p, [0.0, 0.0])), 6)  # −½ (2 ln 2π) = −ln 2π
        -1.837877
        >>> np.round(gaussdiv.log_prob(p, np.array([[0.0, 0.0], [1.0, 1.0]])), 6)  # −ln 2π − 1
        array([-1.837877, -2.837877])
    """
    check_gaussian(p, "p")
    x = _points(x, p)
    ops = p.cov.ops
    with np.errstate(all="ignore"):  # a variance below the float range is a result, not a warning
        dx = x - p.mean
        quad = p.cov.mahalanobis(dx)
        overflowed = ops.xp.isnan(quad)  # a solve whose entries overflowed: ∞ − ∞ inside
        if ops.is_traced(quad) or bool(ops.to_numpy(overflowed).any()):
            quad = ops.when_any(overflowed, lambda: ops.xp.where(
                overflowed, _rescaled_quadratic(p, dx), quad), quad)
        value = -0.5 * (p.dim * _LOG_2PI + p.cov.logdet() + quad)
    return ops.result(value, p.dtype)


def _rescaled_quadratic(p: Gaussian, dx: Any) -> Any:
    """(x−μ)ᵀΣ⁻¹(x−μ) computed for dx scaled by 2⁻ᵉ (2ᵉ ~ max |dx|) and scaled back: no
    overflow inside the solve; the product overflows to +∞ only if the value itself does."""
    ops = p.cov.ops
    xp = ops.xp
    exponent = xp.frexp(ops.stop_gradient(ops.max_abs(dx, -1)))[1]
    unit = xp.ldexp(xp.ones_like(dx[..., :1]), -exponent)
    back = xp.ldexp(xp.ones_like(dx[..., 0]), exponent[..., 0])
    return (p.cov.mahalanobis(dx * unit) * back) * back


@entry_point
def log_ratio(p: Gaussian, q: Gaussian, x: ArrayLike) -> Array:
    """The log density ratio of P to Q at points x, eq. (10) = (8) − (9):

        ln p(x)/q(x) = ½ ln|Σ₂|/|Σ₁| + ½ [(x−μ₂)ᵀΣ₂⁻¹(x−μ₂) − (x−μ₁)ᵀΣ₁⁻¹(x−μ₁)].

    The 2π terms cancel exactly and are never formed. Where both quadratic forms overflow
    (x ~ 1e160: ∞ − ∞), they are recomputed for the deviations scaled by one power of two per
    point, 2⁻ᵉ with 2ᵉ ~ max |x − μ|, and their difference scaled back: the result is then the
    difference's own value, or ±∞ only when that overflows too. Its mean under P is KL(P‖Q),
    eq. (11).

    Args:
        p: P = N(μ₁, Σ₁), batch shape B₁, dimension d.
        q: Q = N(μ₂, Σ₂), batch shape B₂ (broadcasts with B₁), same d and framework.
        x: points of shape (..., d); the leading shape broadcasts with broadcast(B₁, B₂).

    Returns:
        Array of shape broadcast(x.shape[:-1], B₁, B₂) in the pair's framework, in their dtype
        (the wider one when they differ); a NumPy scalar for one point of an unbatched NumPy
        pair. Any real value; exactly 0 where P and Q are one Gaussian.

    Raises:
        TypeError: p or q is not a Gaussian (nor a torch / SciPy normal).
        BackendMismatchError: p, q or x hold arrays of different frameworks.
        DimensionMismatchError: p and q have different d (or differently named coordinates),
            or x's last axis is not d.
        ShapeError: B₁ and B₂ do not broadcast, or x is a scalar, ragged, or its leading
            shape does not broadcast with theirs.
        DtypeError: x is complex, boolean or not numeric, or beyond the range of the dtype.
        NonFiniteError: x has a NaN or infinite entry.

    Cost: two whitenings per point, each as in :func:`log_prob` for its structure.

    Examples:
        >>> import numpy as np, gaussdiv
        >>> p = gaussdiv.Gaussian(np.zeros(1), np.eye(1))
        >>> q = gaussdiv.Gaussian(np.ones(1), np.eye(1))
        >>> gaussdiv.log_ratio(p, q, [[0.0], [1.0]])  # ½ [(x − 1)² − x²] = ½ − x
        array([ 0.5, -0.5])
    """
    check_pair(p, q)
    x = _points(x, p, q)
    ops = p.cov.ops
    xp = ops.xp
    with np.errstate(all="ignore"):
        # each quadratic form in its own Gaussian's dtype (torch does not promote in solves)
        dq, dp = ops.cast_like(x - q.mean, q.mean), ops.cast_like(x - p.mean, p.mean)
        # combined in the wider dtype: torch lets a dimensioned float32 operand decide the
        # dtype against a 0-d float64 one (an unbatched Q against a batched P)
        wider = dq if np.promote_types(q.cov.dtype, p.cov.dtype) == q.cov.dtype else dp

        def widened(v: Any) -> Any:
            return ops.cast_like(v, wider)

        quad = widened(q.cov.mahalanobis(dq)) - widened(p.cov.mahalanobis(dp))
        overflowed = xp.isnan(quad)  # finite inputs: only ∞ − ∞ gives NaN here

        def rescaled() -> Any:
            largest = ops.stop_gradient(xp.maximum(ops.max_abs(dq, -1), ops.max_abs(dp, -1)))
            exponent = xp.frexp(largest)[1]
            unit = xp.ldexp(xp.ones_like(largest), -exponent)
            scaled = widened(q.cov.mahalanobis(dq * ops.cast_like(unit, dq))) - \
                widened(p.cov.mahalanobis(dp * ops.cast_like(unit, dp)))
            back = xp.ldexp(xp.ones_like(largest), exponent)[..., 0]
            return xp.where(overflowed, (scaled * back) * back, quad)

        if ops.is_traced(quad) or bool(ops.to_numpy(overflowed).any()):
            quad = ops.when_any(overflowed, rescaled, quad)
        value = 0.5 * ((widened(q.cov.logdet()) - widened(p.cov.logdet())) + quad)
    return p.cov.ops.result(value, p.dtype if p.dtype == q.dtype else value.dtype)


def _points(x: Any, p: Gaussian, q: Gaussian | None = None) -> Any:
    """Validate points x (..., d) and bring them to the Gaussians' framework, dtype and device."""
    ops = p.cov.ops
    framework = framework_of(x)
    if framework is not None and framework is not ops:
        raise BackendMismatchError(
            f"x is a {framework.name} array but the Gaussian holds {ops.name} arrays")
    check_dtype(x, "x", ops)
    check_finite(x, "x", ops)  # before the cast, so an overflow is not mistaken for an inf
    dtype = p.cov.dtype if q is None else np.promote_types(p.cov.dtype, q.cov.dtype)
    if not ops.is_traced(x):
        largest = float(np.max(np.abs(ops.to_numpy(x)), initial=0.0))
        top = float(np.finfo(dtype).max)  # compared as Python floats: no cast to overflow
        if largest > top:
            raise DtypeError(f"x has entries up to {largest:.3g}, beyond the range of the "
                             f"Gaussian's {dtype} (max {top:.3g})")
    x = ops.asarray(x, dtype, like=p.mean)
    if len(x.shape) == 0:
        raise ShapeError("x must have shape (..., d); got a scalar")
    check_vector(x, "x")
    if x.shape[-1] != p.dim:
        raise DimensionMismatchError(
            f"x has points of dimension {x.shape[-1]} (shape {tuple(x.shape)}) but the Gaussian "
            f"has d={p.dim}")
    batch = p.batch_shape if q is None else broadcast_shapes(p.batch_shape, q.batch_shape)
    try:
        broadcast_shapes(tuple(x.shape[:-1]), batch)
    except ValueError:
        raise ShapeError(f"x has leading shape {tuple(x.shape[:-1])}, which does not broadcast "
                         f"with the batch shape {batch}") from None
    return x

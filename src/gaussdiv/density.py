"""Log-densities and the log-ratio ln p(x)/q(x) (eqs. 4, 8–10 of docs/derivation.md)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from gaussdiv.backends import broadcast_shapes, framework_of
from gaussdiv.errors import BackendMismatchError, DimensionMismatchError, DtypeError, ShapeError
from gaussdiv.gaussian import Gaussian, check_gaussian, check_pair, entry_point
from gaussdiv.validation import check_dtype, check_finite, check_vector

_LOG_2PI = math.log(2 * math.pi)


@entry_point
def log_prob(p: Gaussian, x: Any) -> Any:
    """ln N(x; μ, Σ) = −½ (d ln 2π + ln|Σ| + (x−μ)ᵀΣ⁻¹(x−μ))   (eq. 8).

    Args:
        p: batch shape B.
        x: points of shape (..., d); the leading shape broadcasts with B.

    Returns:
        Array of shape broadcast(x.shape[:-1], B). Cost: one triangular solve per point.
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
def log_ratio(p: Gaussian, q: Gaussian, x: Any) -> Any:
    """ln p(x)/q(x) = ½ ln|Σ₂|/|Σ₁| + ½ [(x−μ₂)ᵀΣ₂⁻¹(x−μ₂) − (x−μ₁)ᵀΣ₁⁻¹(x−μ₁)]   (eq. 10).

    The 2π terms cancel exactly and are never formed. Where both quadratic forms overflow
    (x ~ 1e160: ∞ − ∞), they are recomputed for the deviations scaled by one power of two per
    point, 2⁻ᵉ with 2ᵉ ~ max |x − μ|, and their difference scaled back: the result is then the
    difference's own value, or ±∞ only when that overflows too. Shapes as in :func:`log_prob`.
    """
    check_pair(p, q)
    x = _points(x, p, q)
    ops = p.cov.ops
    xp = ops.xp
    with np.errstate(all="ignore"):
        # each quadratic form in its own Gaussian's dtype (torch does not promote in solves)
        dq, dp = ops.cast_like(x - q.mean, q.mean), ops.cast_like(x - p.mean, p.mean)
        quad = q.cov.mahalanobis(dq) - p.cov.mahalanobis(dp)
        overflowed = xp.isnan(quad)  # finite inputs: only ∞ − ∞ gives NaN here

        def rescaled() -> Any:
            largest = ops.stop_gradient(xp.maximum(ops.max_abs(dq, -1), ops.max_abs(dp, -1)))
            exponent = xp.frexp(largest)[1]
            unit = xp.ldexp(xp.ones_like(largest), -exponent)
            scaled = q.cov.mahalanobis(dq * ops.cast_like(unit, dq)) - \
                p.cov.mahalanobis(dp * ops.cast_like(unit, dp))
            back = xp.ldexp(xp.ones_like(largest), exponent)[..., 0]
            return xp.where(overflowed, (scaled * back) * back, quad)

        if ops.is_traced(quad) or bool(ops.to_numpy(overflowed).any()):
            quad = ops.when_any(overflowed, rescaled, quad)
        value = 0.5 * ((q.cov.logdet() - p.cov.logdet()) + quad)
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
        if largest > np.finfo(dtype).max:
            raise DtypeError(f"x has entries up to {largest:.3g}, beyond the range of the "
                             f"Gaussian's {dtype} (max {np.finfo(dtype).max:.3g})")
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

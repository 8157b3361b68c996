"""KL divergence, cross-entropy and entropy of Gaussians in closed form.

For P = N(μ₁, Σ₁) and Q = N(μ₂, Σ₂) in d dimensions (eq. 23 of the first derivation note):

    KL(P‖Q) = ½ ( ln|Σ₂|/|Σ₁| + tr(Σ₂⁻¹Σ₁) + (μ₁−μ₂)ᵀΣ₂⁻¹(μ₁−μ₂) − d )
            = ½ ( excess + mahalanobis ),

where excess = tr(Σ₂⁻¹Σ₁) − d + ln|Σ₂|/|Σ₁| = Σᵢ (λᵢ − 1 − ln λᵢ) ≥ 0 over the eigenvalues λᵢ
of Σ₂⁻¹Σ₁ is evaluated without cancellation (see :func:`gaussdiv.pairs.matrix_terms`).
The cross-entropy and entropy of the second note satisfy KL(P‖Q) = H_P(Q) − H_P(P).
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import numpy as np

from gaussdiv._backend import broadcast_shapes
from gaussdiv.diagonal import DiagonalCovariance, diagonal_kl
from gaussdiv.errors import (
    BackendMismatchError,
    DimensionMismatchError,
    NotPositiveDefiniteError,
    ShapeError,
)
from gaussdiv.gaussian import Gaussian, check_gaussian
from gaussdiv.pairs import matrix_terms

_LOG_2PI = math.log(2 * math.pi)


class KLTerms(NamedTuple):
    """The pieces of KL(P‖Q) as in eq. (23), each of shape (*batch).

    Attributes:
        logdet_ratio: ln(|Σ₂| / |Σ₁|).
        trace: tr(Σ₂⁻¹Σ₁).
        mahalanobis: (μ₁−μ₂)ᵀ Σ₂⁻¹ (μ₁−μ₂).
        dim: d.
        kl: KL(P‖Q), computed without cancellation. Equal to
            ½(logdet_ratio + trace + mahalanobis − dim) up to the rounding of that sum, which
            loses every digit when P ≈ Q; ``kl`` does not.
    """

    logdet_ratio: Any
    trace: Any
    mahalanobis: Any
    dim: int
    kl: Any


def kl_terms(p: Gaussian, q: Gaussian) -> KLTerms:
    """KL(P‖Q) together with its three terms (log-determinant ratio, trace, Mahalanobis).

    Cost: that of :func:`kl` (one pair routine and one triangular solve for the means).
    """
    _check_pair(p, q)
    matrix, mahalanobis, kl_value = _kl_parts(p, q)
    _check_valid(kl_value, p, q)
    return KLTerms(
        logdet_ratio=_result(matrix.logdet_ratio, p, q),
        trace=_result(matrix.trace, p, q),
        mahalanobis=_result(mahalanobis, p, q),
        dim=p.dim,
        kl=_result(kl_value, p, q),
    )


def kl(p: Gaussian, q: Gaussian) -> Any:
    """KL(P‖Q) = E_P[ln p(X)/q(X)], in closed form, exact to the last few digits.

    Args:
        p: N(μ₁, Σ₁), batch shape B₁.
        q: N(μ₂, Σ₂), batch shape B₂ broadcastable with B₁; same d.

    Returns:
        Array of shape broadcast(B₁, B₂) (a NumPy scalar for one pair), ≥ 0, exactly 0 when P
        and Q are given by identical arrays.

    Cost (dense Σ): two Cholesky factors (cached on the Gaussians), one triangular solve with a
    d×d right-hand side, O(d³); plus an eigendecomposition of a d×d matrix for pairs so close
    that the textbook terms cancel. Structured covariances: see gaussdiv.pairs.
    """
    _check_pair(p, q)
    if isinstance(p.cov, DiagonalCovariance) and isinstance(q.cov, DiagonalCovariance):
        value, flagged = diagonal_kl(p.mean, p.cov, q.mean, q.cov)
    else:
        value, flagged = _kl_parts(p, q)[2], True
    if flagged:
        _check_valid(value, p, q)
    return _result(value, p, q)


def _kl_parts(p: Gaussian, q: Gaussian) -> tuple[Any, Any, Any]:
    """(MatrixTerms, Mahalanobis term, KL) before broadcasting to the result."""
    mahalanobis = q.cov.mahalanobis(p.mean - q.mean)
    matrix = matrix_terms(p.cov, q.cov, offset=mahalanobis)
    return matrix, mahalanobis, 0.5 * (matrix.excess + mahalanobis)


def entropy(p: Gaussian) -> Any:
    """Differential entropy H(P) = H_P(P) = ½ (d (1 + ln 2π) + ln|Σ|), shape (*batch)."""
    check_gaussian(p, "p")
    return _result(0.5 * (p.dim * (1 + _LOG_2PI) + p.cov.logdet()), p)


def cross_entropy(p: Gaussian, q: Gaussian) -> Any:
    """Cross-entropy H_P(Q) = −E_P[ln q(X)] = H(P) + KL(P‖Q), shape broadcast(B₁, B₂).

    Written as entropy plus the cancellation-free KL, which equals the direct form
    ½ (d ln 2π + ln|Σ₂| + tr(Σ₂⁻¹Σ₁) + (μ₁−μ₂)ᵀΣ₂⁻¹(μ₁−μ₂)) and rounds only once.
    """
    _check_pair(p, q)
    return _result(entropy(p) + kl(p, q), p, q)


def _check_pair(p: Gaussian, q: Gaussian) -> None:
    check_gaussian(p, "p")
    check_gaussian(q, "q")
    if p.cov.ops is not q.cov.ops:
        raise BackendMismatchError(
            f"p holds {p.cov.ops.name} arrays and q holds {q.cov.ops.name} arrays; "
            "build both from one framework")
    if p.dim != q.dim:
        raise DimensionMismatchError(
            f"p and q live in different dimensions: p has d={p.dim}, q has d={q.dim}")
    try:
        broadcast_shapes(p.batch_shape, q.batch_shape)
    except ValueError:
        raise ShapeError(
            f"batch shapes of p {p.batch_shape} and q {q.batch_shape} do not broadcast") from None


def _check_valid(value: Any, p: Gaussian, q: Gaussian) -> None:
    """Never return a negative or NaN KL: that only happens when an input is numerically
    singular beyond what the factorisation caught; say which one."""
    ops = p.cov.ops
    if ops.is_traced(value) or ops.min_value(value) >= 0:
        return
    conditions = {name: _condition_number(g) for name, g in (("p", p), ("q", q))}
    worst = max(conditions, key=lambda k: conditions[k])
    given = getattr(g_worst := {"p": p, "q": q}[worst].cov, "side", "covariance")
    what = "precision" if given == "precision" else "covariance"
    raise NotPositiveDefiniteError(
        f"{worst}'s {what} is numerically singular: condition number "
        f"{conditions[worst]:.3g} exceeds what {np.dtype(g_worst.dtype).name} resolves "
        f"(1/eps = {1 / np.finfo(g_worst.dtype).eps:.3g}), so KL is undefined in this precision "
        "(add jitter to the diagonal or use a shrinkage estimate)")


def _condition_number(g: Gaussian) -> float:
    dense = np.asarray(g.cov.ops.to_numpy(g.cov.dense()), dtype=np.float64)
    eig = np.linalg.eigvalsh(dense)
    smallest, largest = eig[..., 0], np.abs(eig[..., -1])
    if np.any(smallest <= largest * np.finfo(float).eps):
        return float("inf")
    return float(np.max(largest / smallest))


def _result(value: Any, p: Gaussian, q: Gaussian | None = None) -> Any:
    """``value`` broadcast to the batch shape of p (and q), in the result dtype.

    The result dtype is the Gaussians' (half precision comes back as given); for a pair of
    different dtypes, the wider compute dtype. A 0-d NumPy result becomes a NumPy scalar.
    """
    ops = p.cov.ops
    shape = p.batch_shape if q is None else broadcast_shapes(p.batch_shape, q.batch_shape)
    dtype = p.dtype
    if q is not None and q.dtype != p.dtype:
        dtype = ops.framework_dtype(np.promote_types(p.cov.dtype, q.cov.dtype))
    if tuple(value.shape) != shape:
        value = ops.xp.broadcast_to(value, shape)
    return ops.result(value, dtype)

"""KL's covariance part for any two structures: one rule per kind of pair, no pair table.

- Same structure: that structure's own ``pair_terms`` (exact, cheapest).
- One side dense: both as dense (the partner is already O(d²)).
- Otherwise (diagonal, low-rank, Kronecker mixed): tr(Σ₂⁻¹Σ₁) from what each side knows —
  a diagonal or low-rank Σ₂ needs only diag(Σ₁) and Σ₁Y for k columns Y; a diagonal or low-rank
  Σ₁ = WWᵀ + diag(v) needs only diag(Σ₂⁻¹) and k Mahalanobis products — and the log-ratio from
  each side's log-determinant. Nothing is expanded to d×d.

Where the fast sum cancels (P ≈ Q across structures) :func:`refine_by_difference` recomputes
the excess from the dense whitened difference when d ≤ :data:`DENSE_REFINE_MAX_DIM`.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from gaussdiv._numerics import excess_log1p
from gaussdiv._validation import cholesky_checked
from gaussdiv.covariance import Covariance, MatrixTerms, refine_cancelled
from gaussdiv.dense import DenseCovariance
from gaussdiv.diagonal import DiagonalCovariance
from gaussdiv.errors import DimensionMismatchError
from gaussdiv.lowrank import LowRankCovariance

#: Largest d for which a cancelling structured pair is re-evaluated densely (O(d³), O(d²) memory).
DENSE_REFINE_MAX_DIM = 2048
_SPECTRAL_MIN_EIGENVALUE = 0.5


def matrix_terms(cov_p: Covariance, cov_q: Covariance, offset: Any = 0) -> MatrixTerms:
    """The covariance part of KL(P‖Q): tr(Σ₂⁻¹Σ₁), ln|Σ₂|/|Σ₁| and their excess over d.

    ``offset``: the Mahalanobis term the excess is added to (see refine_cancelled).
    """
    if cov_p.dim != cov_q.dim:
        raise DimensionMismatchError(
            f"covariances of different dimension: {cov_p.dim} and {cov_q.dim}")
    if type(cov_p) is type(cov_q):
        return type(cov_p).pair_terms(cov_p, cov_q, offset)
    if isinstance(cov_p, DenseCovariance) or isinstance(cov_q, DenseCovariance):
        return DenseCovariance.pair_terms(cov_p.to_dense_covariance(),
                                          cov_q.to_dense_covariance(), offset)
    trace = _mixed_trace(cov_p, cov_q)
    logdet_ratio = cov_q.logdet() - cov_p.logdet()
    return refine_by_difference(cov_p, cov_q, trace, logdet_ratio, offset)


def _mixed_trace(cov_p: Covariance, cov_q: Covariance) -> Any:
    """tr(Σ₂⁻¹Σ₁) for two different non-dense structures."""
    if isinstance(cov_q, DiagonalCovariance | LowRankCovariance):
        return cov_q.trace_solve(cov_p)
    # Σ₂ is Kronecker, so Σ₁ = diag(v) + WWᵀ (W absent for a diagonal Σ₁):
    # tr(Σ₂⁻¹Σ₁) = Σᵢ (Σ₂⁻¹)ᵢᵢ vᵢ + Σⱼ wⱼᵀ Σ₂⁻¹ wⱼ.
    ops = cov_q.ops
    low_rank = isinstance(cov_p, LowRankCovariance)
    var = cov_p.var if low_rank else cov_p.diagonal()
    total = ops.sum(cov_q.inverse_diagonal() * var, -1)
    if low_rank:
        total = total + ops.sum(cov_q.mahalanobis(ops.xp.moveaxis(cov_p.factor, -1, 0)), 0)
    return total


def refine_by_difference(cov_p: Covariance, cov_q: Covariance, trace: Any,
                         logdet_ratio: Any, offset: Any = 0) -> MatrixTerms:
    """Fast terms, re-evaluated from the dense whitened difference where they cancel.

    Used for pairs of different structures (two of one structure have exact routes of their
    own); their difference exists only densely. The re-evaluation costs O(d³) and runs only for
    the cancelling batch elements, and only for d ≤ DENSE_REFINE_MAX_DIM — above that the fast
    value stands (documented accuracy loss for near-identical mixed-structure pairs of very
    high dimension).
    """
    d = cov_p.dim

    def spectral(mask: np.ndarray, fast: Any) -> Any:
        if d > DENSE_REFINE_MAX_DIM:
            return fast
        ops = cov_q.ops
        diff = cov_p.dense() - cov_q.dense()
        ref = cholesky_checked(ops.take(cov_q.dense(), mask, 2), "cov", ops)
        half = ops.solve_triangular(ref, ops.take(diff, mask, 2), lower=True)
        e = ops.solve_triangular(ref, ops.matrix_transpose(half), lower=True)
        eps = ops.eigvalsh(0.5 * (e + ops.matrix_transpose(e)))
        trusted = 1 + eps[..., 0] >= _SPECTRAL_MIN_EIGENVALUE
        return ops.xp.where(trusted, ops.sum(excess_log1p(eps, ops.xp), -1), fast)

    return refine_cancelled(trace, logdet_ratio, d, spectral, offset)

"""Diagonal covariances Σ = diag(v), given as variances, standard deviations or log-variances.

An isotropic covariance v·I is the same structure with one stored value per batch element, and
the standard normal's I is that with v = 1: memory O(batch), never O(d).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from gaussdiv._backend import ArrayContext, backend_of, context_of
from gaussdiv._numerics import excess_log1p
from gaussdiv._validation import (
    check_dtype,
    check_finite,
    check_positive,
    check_vector,
)
from gaussdiv.covariance import (
    CANCELLATION_RATIO,
    Covariance,
    MatrixTerms,
    refine_excess,
    refine_where,
)
from gaussdiv.dense import DenseCovariance
from gaussdiv.errors import ShapeError

Kind = Literal["var", "std", "logvar"]


@dataclass(frozen=True, eq=False, repr=False)
class DiagonalCovariance(Covariance):
    """Σ = diag(v) with v held as given: ``kind`` is "var" (v), "std" (√v) or "logvar" (ln v).

    ``param`` has shape (*batch, d), or (*batch, 1) for an isotropic covariance, which
    broadcasts over the ``dim`` coordinates.
    """

    kind: Kind
    param: Any
    size: int


    @classmethod
    def from_param(cls, param: Any, kind: Kind, dim: int | None = None, *,
                   ctx: ArrayContext | None = None) -> DiagonalCovariance:
        """Validate ``param`` (*batch, d) — or (*batch, 1) with ``dim`` given — of this kind.

        ``ctx``: the constructor's context, whose inputs had their dtypes checked already.
        """
        if ctx is None:
            ctx = context_of(param)
            check_dtype(param, kind, ctx.ops)
        ops = ctx.ops
        param = ctx.freeze(param)
        check_vector(param, kind)
        if dim is None:
            dim = int(param.shape[-1])
        elif param.shape[-1] not in (1, dim):
            raise ShapeError(f"{kind} must have shape (..., {dim}) or (..., 1); "
                             f"got {tuple(param.shape)}")
        check_finite(param, kind, ops)
        if kind != "logvar":
            check_positive(param, kind, ops, "entries (a variance must be > 0)")
        return cls(kind, param, int(dim))

    @property
    def ops(self) -> Any:
        return backend_of(self.param)

    @property
    def dim(self) -> int:
        return self.size

    @property
    def batch_shape(self) -> tuple[int, ...]:
        return tuple(self.param.shape[:-1])

    @property
    def dtype(self) -> Any:
        return self.ops.numpy_dtype(self.param)

    @property
    def isotropic(self) -> bool:
        return self.param.shape[-1] == 1 and self.size != 1

    def __repr__(self) -> str:
        what = "isotropic" if self.isotropic else "diagonal"
        return (f"DiagonalCovariance({what}, given as {self.kind}, d={self.dim}, "
                f"batch_shape={self.batch_shape}, dtype={self.dtype})")

    def var(self) -> Any:
        """The variances v, shape (*batch, d) or (*batch, 1)."""
        if self.kind == "var":
            return self.param
        if self.kind == "std":
            return self.param * self.param
        return self.ops.xp.exp(self.param)

    def std(self) -> Any:
        """The standard deviations √v, shape (*batch, d) or (*batch, 1)."""
        if self.kind == "std":
            return self.param
        if self.kind == "var":
            return self.ops.xp.sqrt(self.param)
        return self.ops.xp.exp(0.5 * self.param)

    def log_var(self) -> Any:
        """ln v, exact when given as log-variances."""
        if self.kind == "logvar":
            return self.param
        if self.kind == "std":
            return 2 * self.ops.xp.log(self.param)
        return self.ops.xp.log(self.param)

    def logdet(self) -> Any:
        return sum_over_dim(self.log_var(), self.size, self.ops)

    def mahalanobis(self, x: Any) -> Any:
        if self.kind == "var":
            return self.ops.sum(x * x / self.param, -1)
        w = x / self.std()
        return self.ops.sum(w * w, -1)

    def trace_solve(self, other: Covariance) -> Any:
        """tr(Σ⁻¹ Σ_other) = Σᵢ diag(Σ_other)ᵢ / vᵢ, for any structure of Σ_other. O(d)."""
        return self.ops.sum(self.inverse_diagonal() * other.diagonal(), -1)

    def color(self, z: Any) -> Any:
        return self.std() * z

    def diagonal(self) -> Any:
        return self._full(self.var())

    def inverse_diagonal(self) -> Any:
        if self.kind == "logvar":
            return self._full(self.ops.xp.exp(-self.param))
        return self._full(1 / self.var())

    def matmul(self, x: Any) -> Any:
        return self.var()[..., None] * x

    def dense(self) -> Any:
        ops = self.ops
        return self.diagonal()[..., None] * ops.eye(self.size, self.dtype, like=self.param)

    def to_dense_covariance(self) -> DenseCovariance:
        """diag(v) with both its exact matrix and its exact factor diag(√v) (nothing to check).

        Paired with a covariance given as a factor, the factor difference is taken (exact for
        N(0, I)); with one given as a matrix, the matrix difference.
        """
        ops = self.ops
        eye = ops.eye(self.size, self.dtype, like=self.param)
        return DenseCovariance("covariance", self.dense(), self._full(self.std())[..., None] * eye,
                               factor_given=True)

    @staticmethod
    def pair_terms(cov_p: DiagonalCovariance, cov_q: DiagonalCovariance,
                   offset: Any = 0) -> MatrixTerms:
        """Exact in O(d): the eigenvalues of Σ₂⁻¹Σ₁ are the ratios λᵢ = v₁ᵢ / v₂ᵢ.

        The excess Σ εᵢ − Σ ln λᵢ (see :func:`eigenvalue_terms`) is summed directly, with an
        error of a few u · Σ (|εᵢ| + |ln λᵢ|); batch elements where that is more than 1/8 of
        the KL are recomputed with the series of :func:`excess_log1p` (P ≈ Q).
        """
        ops = cov_p.ops
        d = cov_p.dim
        eps, log_lam = eigenvalue_terms(cov_p, cov_q)
        eps_sum, log_sum = sum_over_dim(eps, d, ops), sum_over_dim(log_lam, d, ops)
        fast = eps_sum - log_sum
        magnitude = fast + 2 * sum_over_dim(ops.xp.abs(log_lam), d, ops)  # ≥ Σ |εᵢ| + |ln λᵢ|

        def series(mask: np.ndarray, _fast: Any) -> Any:
            return series_excess(eps, log_lam, mask, d, ops)

        return MatrixTerms(
            trace=d + eps_sum,
            logdet_ratio=-log_sum,
            excess=refine_excess(fast, magnitude, series, offset),
        )

    def inverse_var(self) -> Any:
        """1/v, shape (*batch, d) or (*batch, 1)."""
        if self.kind == "logvar":
            return self.ops.xp.exp(-self.param)
        if self.kind == "std":
            return 1 / (self.param * self.param)
        return 1 / self.param

    def _full(self, x: Any) -> Any:
        return self.ops.xp.broadcast_to(x, (*x.shape[:-1], self.size))


def sum_over_dim(x: Any, d: int, ops: Any) -> Any:
    """Σ over the last axis of length d, where a length-1 axis stands for d equal entries."""
    if x.shape[-1] == 1 and d != 1:
        return d * x[..., 0]
    return ops.sum(x, -1)


def eigenvalue_terms(cov_p: DiagonalCovariance, cov_q: DiagonalCovariance) -> tuple[Any, Any]:
    """(εᵢ, ln λᵢ) for the eigenvalues λᵢ = v₁ᵢ / v₂ᵢ of Σ₂⁻¹Σ₁, εᵢ = λᵢ − 1.

    εᵢ is formed from the parameters as given, so it keeps its digits when P ≈ Q:
    (v₁ − v₂)/v₂ for variances, (s₁ − s₂)(s₁ + s₂)/s₂² for standard deviations,
    expm1(ℓ₁ − ℓ₂) for log-variances; and ln λᵢ comes from ratios or log-variance differences,
    so log-variances from −700 to +700 neither overflow nor lose λ. A log-variance against a
    variance works in log space too (exact against N(0, I), whose ln v = 0; elsewhere ln v
    rounds, an absolute error ≈ eps·|ln v| in εᵢ). Shapes broadcast(*batch, d or 1).
    """
    xp = cov_p.ops.xp
    if "logvar" in (cov_p.kind, cov_q.kind):
        log_lam = cov_p.log_var() - cov_q.log_var()
        return xp.expm1(log_lam), log_lam
    if cov_p.kind == cov_q.kind == "std":
        s1, s2 = cov_p.param, cov_q.param
        return (s1 - s2) * (s1 + s2) / (s2 * s2), 2 * xp.log(s1 / s2)
    v1, v2 = cov_p.var(), cov_q.var()
    return (v1 - v2) / v2, xp.log(v1 / v2)


def series_excess(eps: Any, log_lam: Any, mask: np.ndarray, d: int, ops: Any) -> Any:
    """Σᵢ εᵢ − ln λᵢ to full relative accuracy for the batch elements selected by ``mask``."""
    excess = excess_log1p(ops.take(eps, mask, 1), ops.xp, log_ratio=ops.take(log_lam, mask, 1))
    return sum_over_dim(excess, d, ops)


# refine_excess's test fast + offset < r (fast + 2 Σ|ln λᵢ| + offset), solved for the KL sum.
_CANCELS_BELOW = 2 * CANCELLATION_RATIO / (1 - CANCELLATION_RATIO)


def diagonal_kl(mean_p: Any, cov_p: DiagonalCovariance, mean_q: Any,
                cov_q: DiagonalCovariance) -> tuple[Any, bool]:
    """KL(P‖Q) for two diagonal Gaussians in one pass, shape broadcast(*batch); and whether
    some element was flagged (it may then be NaN or negative: the caller checks).

        2 KL = Σᵢ (εᵢ − ln λᵢ + (μ₁ᵢ − μ₂ᵢ)² / v₂ᵢ),   λᵢ = v₁ᵢ/v₂ᵢ = 1 + εᵢ,

    summed directly: the VAE's hot path, a dozen elementwise operations. The sum's rounding
    error is a few u · Σ (|εᵢ| + |ln λᵢ|) ≤ u (2 KL + 2 Σ |ln λᵢ|); elements where that could
    exceed 1/8 of the KL (P ≈ Q) get the excess again from the series of :func:`excess_log1p`.
    Unflagged elements are ≥ 0 by that very test, so only flagged ones (P ≈ Q, or NaN from an
    overflow) need a validity check. Equal to ½ (pair_terms(...).excess + mahalanobis) in exact
    arithmetic.
    """
    ops = cov_p.ops
    d = cov_p.dim
    eps, log_lam = eigenvalue_terms(cov_p, cov_q)
    diff = mean_p - mean_q
    mahalanobis = diff * diff * cov_q.inverse_var()
    total = ops.sum((eps - log_lam) + mahalanobis, -1)
    flagged = ~(total >= _CANCELS_BELOW * sum_over_dim(ops.xp.abs(log_lam), d, ops))

    def series(mask: np.ndarray, _fast: Any) -> Any:
        return (series_excess(eps, log_lam, mask, d, ops)
                + ops.sum(ops.take(mahalanobis, mask, 1), -1))

    refined = refine_where(total, flagged, series)
    return 0.5 * refined, refined is not total

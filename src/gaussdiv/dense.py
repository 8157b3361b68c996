"""Full covariances, held as the user gave them: Σ, its Cholesky factor, Λ = Σ⁻¹, or Λ's factor."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import numpy as np

from gaussdiv._backend import ArrayContext, backend_of, context_of
from gaussdiv._numerics import excess_log1p
from gaussdiv._validation import (
    check_dtype,
    check_finite,
    check_lower_triangular,
    check_square,
    check_symmetric,
    cholesky_checked,
)
from gaussdiv.covariance import Covariance, MatrixTerms, refine_cancelled

Side = Literal["covariance", "precision"]

# The spectral route is exact for eigenvalues λ = 1 + ε of Σ₂⁻¹Σ₁ well above 0; below this the
# log-determinant route is more accurate (and the excess is then ≥ λ − 1 − ln λ ≈ 0.19).
_SPECTRAL_MIN_EIGENVALUE = 0.5


@dataclass(frozen=True, eq=False, repr=False)
class DenseCovariance(Covariance):
    """A full covariance Σ (*batch, d, d), described on the covariance or the precision side.

    ``side`` says whether the stored objects describe Σ ("covariance") or Λ = Σ⁻¹
    ("precision"); ``matrix`` is the user's matrix if one was given, and ``factor`` the lower
    Cholesky factor of that side's matrix (given, or computed once here). Keeping the user's
    exact input lets the pair routine subtract like from like when P ≈ Q.
    """

    side: Side
    matrix: Any
    factor: Any
    factor_given: bool

    name: ClassVar[str] = "dense"

    @classmethod
    def from_matrix(cls, matrix: Any, side: Side = "covariance", *, name: str = "cov",
                    ctx: ArrayContext | None = None) -> DenseCovariance:
        """Validate a symmetric positive definite matrix and factor it once."""
        ctx = ctx or context_of(matrix)
        ops = ctx.ops
        check_dtype(matrix, name, ops)
        matrix = ctx.freeze(matrix)
        check_square(matrix, name)
        check_finite(matrix, name, ops)
        check_symmetric(matrix, name, ops)
        factor = cholesky_checked(matrix, name, ops)
        return cls(side, matrix, factor, factor_given=False)

    @classmethod
    def from_factor(cls, factor: Any, side: Side = "covariance", *, name: str = "scale_tril",
                    ctx: ArrayContext | None = None) -> DenseCovariance:
        """Validate a lower-triangular factor with positive diagonal (Σ or Λ = factor·factorᵀ)."""
        ctx = ctx or context_of(factor)
        ops = ctx.ops
        check_dtype(factor, name, ops)
        factor = ctx.freeze(factor)
        check_square(factor, name)
        check_finite(factor, name, ops)
        check_lower_triangular(factor, name, ops)
        return cls(side, None, factor, factor_given=True)

    @property
    def ops(self) -> Any:
        return backend_of(self.factor)

    @property
    def dim(self) -> int:
        return int(self.factor.shape[-1])

    @property
    def batch_shape(self) -> tuple[int, ...]:
        return tuple(self.factor.shape[:-2])

    @property
    def dtype(self) -> Any:
        return self.ops.numpy_dtype(self.factor)

    def __repr__(self) -> str:
        given = "factor" if self.factor_given else "matrix"
        return (f"DenseCovariance(side={self.side!r}, given={given}, d={self.dim}, "
                f"batch_shape={self.batch_shape}, dtype={self.dtype})")

    def logdet(self) -> Any:
        ops = self.ops
        half = ops.sum(ops.xp.log(ops.diagonal(self.factor)), -1)
        return 2 * half if self.side == "covariance" else -2 * half

    def whiten(self, x: Any) -> Any:
        """W x with W Σ Wᵀ = I: L⁻¹x on the covariance side, Rᵀx on the precision side."""
        ops = self.ops
        if self.side == "covariance":
            return ops.solve_triangular(self.factor, x[..., None], lower=True)[..., 0]
        return (ops.matrix_transpose(self.factor) @ x[..., None])[..., 0]

    def mahalanobis(self, x: Any) -> Any:
        w = self.whiten(x)
        return self.ops.sum(w * w, -1)

    def color(self, z: Any) -> Any:
        ops = self.ops
        if self.side == "covariance":
            return (self.factor @ z[..., None])[..., 0]
        upper = ops.matrix_transpose(self.factor)
        return ops.solve_triangular(upper, z[..., None], lower=False)[..., 0]

    def diagonal(self) -> Any:
        if self.side == "covariance":
            return self._side_diagonal()
        return self._side_inverse_diagonal()

    def inverse_diagonal(self) -> Any:
        if self.side == "covariance":
            return self._side_inverse_diagonal()
        return self._side_diagonal()

    def matmul(self, x: Any) -> Any:
        ops = self.ops
        if self.side == "covariance":
            if self.matrix is not None:
                return self.matrix @ x
            return self.factor @ (ops.matrix_transpose(self.factor) @ x)
        half = ops.solve_triangular(self.factor, x, lower=True)  # R⁻¹X
        return ops.solve_triangular(ops.matrix_transpose(self.factor), half, lower=False)

    def dense(self) -> Any:
        ops = self.ops
        if self.side == "covariance":
            return side_matrix(self)
        inv_factor = self._inverse_factor()  # R⁻¹
        return ops.matrix_transpose(inv_factor) @ inv_factor  # Σ = R⁻ᵀR⁻¹

    def to_dense_covariance(self) -> DenseCovariance:
        return self

    def on_covariance_side(self) -> DenseCovariance:
        """The same Σ described by Σ itself (factorised anew when given as a precision)."""
        if self.side == "covariance":
            return self
        return DenseCovariance.from_matrix(self.dense(), "covariance", name="cov",
                                           ctx=ArrayContext(self.ops, self.dtype, self.factor))

    @staticmethod
    def pair_terms(cov_p: DenseCovariance, cov_q: DenseCovariance) -> MatrixTerms:
        """Covariance part of KL for two dense covariances. Cost O(d³) per pair.

        The fast route computes B = L₂⁻¹L₁, tr(Σ₂⁻¹Σ₁) = ‖B‖²_F and ln|Σ₂|/|Σ₁| =
        2 Σᵢ ln(L₂,ᵢᵢ / L₁,ᵢᵢ) (ratios before logs, so no overflow at any scale). Where those
        terms cancel (P ≈ Q) it switches, per batch element, to the spectral route:
        E = L₂⁻¹(Σ₁ − Σ₂)L₂⁻ᵀ with eigenvalues εᵢ and excess Σᵢ εᵢ − ln(1 + εᵢ), where the
        difference is taken on the user's own inputs (matrices or factors) before whitening.
        Two precisions Λ use the identity excess(Σ₁‖Σ₂) = excess(Λ₂‖Λ₁).
        """
        if cov_p.side != cov_q.side:
            cov_p, cov_q = cov_p.on_covariance_side(), cov_q.on_covariance_side()
        if cov_p.side == "covariance":
            return _dense_terms(first=cov_p, ref=cov_q)
        return _dense_terms(first=cov_q, ref=cov_p)

    def _side_diagonal(self) -> Any:
        ops = self.ops
        if self.matrix is not None:
            return ops.diagonal(self.matrix)
        return ops.sum(self.factor * self.factor, -1)

    def _side_inverse_diagonal(self) -> Any:
        inv_factor = self._inverse_factor()
        return self.ops.sum(inv_factor * inv_factor, -2)

    def _inverse_factor(self) -> Any:
        ops = self.ops
        return ops.solve_triangular(self.factor, ops.eye(self.dim, self.dtype, like=self.factor),
                                    lower=True)


def side_matrix(cov: DenseCovariance) -> Any:
    """The side's matrix (Σ or Λ): as given, or rebuilt from the factor."""
    if cov.matrix is not None:
        return cov.matrix
    return cov.factor @ cov.ops.matrix_transpose(cov.factor)


def whitened_difference_eigvals(first: DenseCovariance, ref: DenseCovariance,
                                mask: np.ndarray) -> Any:
    """Eigenvalues ε of E = L_B⁻¹(A − B)L_B⁻ᵀ for the batch elements selected by ``mask``.

    A and B are the side matrices of ``first`` and ``ref``. The difference is formed on the
    user's inputs: A − B directly when matrices were given; with F = L_B⁻¹(L_A − L_B),
    E = F + Fᵀ + F Fᵀ when both were given as factors. Returns (count, d), ascending.
    """
    ops = ref.ops
    ref_factor = ops.take(ref.factor, mask, 2)
    if first.factor_given and ref.factor_given:
        diff = ops.take(first.factor - ref.factor, mask, 2)
        f = ops.solve_triangular(ref_factor, diff, lower=True)
        f_t = ops.matrix_transpose(f)
        excess_matrix = f + f_t + f @ f_t
    else:
        diff = ops.take(side_matrix(first) - side_matrix(ref), mask, 2)
        half = ops.solve_triangular(ref_factor, diff, lower=True)  # L_B⁻¹ D
        excess_matrix = ops.solve_triangular(ref_factor, ops.matrix_transpose(half), lower=True)
    excess_matrix = 0.5 * (excess_matrix + ops.matrix_transpose(excess_matrix))
    return ops.eigvalsh(excess_matrix)


def _dense_terms(first: DenseCovariance, ref: DenseCovariance) -> MatrixTerms:
    """MatrixTerms of A = first's side matrix against B = ref's: tr(B⁻¹A), ln|B|/|A|."""
    ops = first.ops
    whitened = ops.solve_triangular(ref.factor, first.factor, lower=True)  # L_B⁻¹ L_A
    trace = ops.sum(whitened * whitened, (-2, -1))
    logdet_ratio = 2 * ops.sum(ops.xp.log(ops.diagonal(ref.factor) / ops.diagonal(first.factor)),
                               -1)

    def spectral(mask: np.ndarray, fast: Any) -> Any:
        eps = whitened_difference_eigvals(first, ref, mask)
        trusted = 1 + eps[..., 0] >= _SPECTRAL_MIN_EIGENVALUE
        return ops.xp.where(trusted, ops.sum(excess_log1p(eps, ops.xp), -1), fast)

    return refine_cancelled(trace, logdet_ratio, first.dim, spectral)

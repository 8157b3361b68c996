"""Low-rank plus diagonal covariances Σ = W Wᵀ + diag(v), W of shape (..., d, k).

Everything goes through one k×k Cholesky factor L_C of the capacitance C = I + Wᵀ D⁻¹ W
(D = diag v), computed once: the Woodbury identity Σ⁻¹ = D⁻¹ − D⁻¹W C⁻¹ WᵀD⁻¹ and the matrix
determinant lemma |Σ| = |D| |C|. Cost O(d k²) to build, O(d k) per Mahalanobis product.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from gaussdiv._backend import ArrayContext, backend_of, context_of
from gaussdiv._validation import (
    check_dtype,
    check_finite,
    check_positive,
    check_vector,
    cholesky_checked,
)
from gaussdiv.covariance import Covariance, MatrixTerms
from gaussdiv.dense import DenseCovariance
from gaussdiv.errors import DimensionMismatchError, ShapeError


@dataclass(frozen=True, eq=False, repr=False)
class LowRankCovariance(Covariance):
    """Σ = factor · factorᵀ + diag(var); factor (*batch, d, k), var (*batch, d) positive."""

    factor: Any
    var: Any
    capacitance_tril: Any

    name: ClassVar[str] = "lowrank"

    @classmethod
    def from_parts(cls, factor: Any, var: Any, *,
                   ctx: ArrayContext | None = None) -> LowRankCovariance:
        """Validate W and v, and factor the capacitance I + Wᵀ diag(v)⁻¹ W once."""
        ctx = ctx or context_of(factor, var)
        ops = ctx.ops
        check_dtype(factor, "factor", ops)
        check_dtype(var, "var", ops)
        factor = ctx.freeze(factor)
        var = ctx.freeze(var)
        if len(factor.shape) < 2:
            raise ShapeError(f"factor must have shape (..., d, k); got {tuple(factor.shape)}")
        check_vector(var, "var")
        if factor.shape[-2] != var.shape[-1]:
            raise DimensionMismatchError(
                f"factor has {factor.shape[-2]} rows (shape {tuple(factor.shape)}) but var has "
                f"d={var.shape[-1]} entries (shape {tuple(var.shape)}); factor must be (..., d, k)")
        check_finite(factor, "factor", ops)
        check_finite(var, "var", ops)
        check_positive(var, "var", ops, "entries (a variance must be > 0)")
        scaled = factor / var[..., None]  # D⁻¹W
        k = factor.shape[-1]
        capacitance = ops.eye(k, ctx.dtype, like=factor) + ops.matrix_transpose(factor) @ scaled
        return cls(factor, var, cholesky_checked(capacitance, "capacitance I + WᵀD⁻¹W", ops))

    @property
    def ops(self) -> Any:
        return backend_of(self.factor)

    @property
    def dim(self) -> int:
        return int(self.var.shape[-1])

    @property
    def rank(self) -> int:
        """k, the number of columns of the factor."""
        return int(self.factor.shape[-1])

    @property
    def batch_shape(self) -> tuple[int, ...]:
        return tuple(self.capacitance_tril.shape[:-2])

    @property
    def dtype(self) -> Any:
        return self.ops.numpy_dtype(self.factor)

    @property
    def noise_dim(self) -> int:
        return self.dim + self.rank

    def __repr__(self) -> str:
        return (f"LowRankCovariance(d={self.dim}, k={self.rank}, batch_shape={self.batch_shape}, "
                f"dtype={self.dtype})")

    def logdet(self) -> Any:
        ops = self.ops
        log = ops.xp.log
        return ops.sum(log(self.var), -1) + 2 * ops.sum(log(ops.diagonal(self.capacitance_tril)),
                                                        -1)

    def mahalanobis(self, x: Any) -> Any:
        """xᵀD⁻¹x − ‖L_C⁻¹ WᵀD⁻¹x‖² (Woodbury). O(d k)."""
        ops = self.ops
        y = x / self.var
        t = ops.solve_triangular(self.capacitance_tril,
                                 ops.matrix_transpose(self.factor) @ y[..., None], lower=True)
        return ops.sum(x * y, -1) - ops.sum(t[..., 0] * t[..., 0], -1)

    def color(self, z: Any) -> Any:
        d = self.dim
        return self.ops.xp.sqrt(self.var) * z[..., :d] + (self.factor @ z[..., d:, None])[..., 0]

    def diagonal(self) -> Any:
        return self.var + self.ops.sum(self.factor * self.factor, -1)

    def inverse_diagonal(self) -> Any:
        t = self._whitened_scaled_factor()  # L_C⁻¹ WᵀD⁻¹, (k, d)
        return 1 / self.var - self.ops.sum(t * t, -2)

    def matmul(self, x: Any) -> Any:
        ops = self.ops
        return self.var[..., None] * x + self.factor @ (ops.matrix_transpose(self.factor) @ x)

    def dense(self) -> Any:
        ops = self.ops
        eye = ops.eye(self.dim, self.dtype, like=self.factor)
        return self.factor @ ops.matrix_transpose(self.factor) + self.var[..., None] * eye

    def to_dense_covariance(self) -> DenseCovariance:
        return DenseCovariance.from_matrix(self.dense(), "covariance", name="cov",
                                           ctx=ArrayContext(self.ops, self.dtype, self.factor))

    def trace_solve(self, other: Covariance) -> Any:
        """tr(Σ⁻¹ Σ_other) = Σ diag(Σ_other)/v − tr(C⁻¹ Yᵀ Σ_other Y), Y = D⁻¹W.

        Needs only diag(Σ_other) and Σ_other Y (k products), so O(d k²) against a diagonal or
        low-rank partner.
        """
        ops = self.ops
        scaled = self.factor / self.var[..., None]  # Y
        inner = ops.matrix_transpose(scaled) @ other.matmul(scaled)  # (k, k)
        half = ops.solve_triangular(self.capacitance_tril, inner, lower=True)
        full = ops.solve_triangular(self.capacitance_tril, ops.matrix_transpose(half), lower=True)
        correction = ops.sum(ops.diagonal(full), -1)
        return ops.sum(other.diagonal() / self.var, -1) - correction

    @staticmethod
    def pair_terms(cov_p: LowRankCovariance, cov_q: LowRankCovariance) -> MatrixTerms:
        """Woodbury trace and determinant-lemma log-ratio, O(d (k₁ + k₂)²) per pair.

        Where P ≈ Q makes them cancel, see :func:`gaussdiv.pairs.refine_by_difference`.
        """
        from gaussdiv.pairs import refine_by_difference

        ops = cov_p.ops
        log = ops.xp.log
        trace = cov_q.trace_solve(cov_p)
        logdet_ratio = ops.sum(log(cov_q.var / cov_p.var), -1) + 2 * ops.sum(
            log(ops.diagonal(cov_q.capacitance_tril)), -1) - 2 * ops.sum(
            log(ops.diagonal(cov_p.capacitance_tril)), -1)
        return refine_by_difference(cov_p, cov_q, trace, logdet_ratio)

    def _whitened_scaled_factor(self) -> Any:
        ops = self.ops
        scaled_t = ops.matrix_transpose(self.factor / self.var[..., None])
        return ops.solve_triangular(self.capacitance_tril, scaled_t, lower=True)


def exact_difference(cov_p: LowRankCovariance, cov_q: LowRankCovariance) -> Any:
    """Σ₁ − Σ₂ = diag(v₁ − v₂) + ½[(W₁+W₂)(W₁−W₂)ᵀ + (W₁−W₂)(W₁+W₂)ᵀ] for equal ranks.

    Formed from the differences of the inputs, so it keeps its digits when P ≈ Q (the plain
    W₁W₁ᵀ − W₂W₂ᵀ would not). Dense, (*batch, d, d).
    """
    if cov_p.rank != cov_q.rank:
        return cov_p.dense() - cov_q.dense()
    ops = cov_p.ops
    eye = ops.eye(cov_p.dim, cov_p.dtype, like=cov_p.factor)
    s = cov_p.factor + cov_q.factor
    t = cov_p.factor - cov_q.factor
    cross = s @ ops.matrix_transpose(t)
    return (cov_p.var - cov_q.var)[..., None] * eye + 0.5 * (cross + ops.matrix_transpose(cross))

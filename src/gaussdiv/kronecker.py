"""Kronecker covariances Σ = A ⊗ B (matrix-normal, separable space–time), never expanded.

A vector x of length d = p·q is read as the p×q matrix X (row-major), so that
(A ⊗ B) x = vec(A X Bᵀ) and (A ⊗ B)⁻¹ x = vec(A⁻¹ X B⁻ᵀ). With L_A, L_B the Cholesky factors,
L_A ⊗ L_B is a square root of Σ and everything costs O(p³ + q³) to build and O(d (p + q)) per
vector.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from gaussdiv._backend import ArrayContext, broadcast_shapes
from gaussdiv._numerics import excess_log1p
from gaussdiv.covariance import Covariance, MatrixTerms, refine_cancelled
from gaussdiv.dense import DenseCovariance, fast_terms, side_matrix, whitened_difference_eigvals

_SPECTRAL_MIN_EIGENVALUE = 0.5


@dataclass(frozen=True, eq=False, repr=False)
class KroneckerCovariance(Covariance):
    """Σ = a ⊗ b with a (*batch, p, p) and b (*batch, q, q) dense covariances; d = p q."""

    a: DenseCovariance
    b: DenseCovariance


    @property
    def ops(self) -> Any:
        return self.a.ops

    @property
    def dim(self) -> int:
        return self.a.dim * self.b.dim

    @property
    def batch_shape(self) -> tuple[int, ...]:
        return broadcast_shapes(self.a.batch_shape, self.b.batch_shape)

    @property
    def dtype(self) -> Any:
        return self.a.dtype

    def __repr__(self) -> str:
        return (f"KroneckerCovariance({self.a.dim}×{self.a.dim} ⊗ {self.b.dim}×{self.b.dim}, "
                f"batch_shape={self.batch_shape}, dtype={self.dtype})")

    def logdet(self) -> Any:
        return self.b.dim * self.a.logdet() + self.a.dim * self.b.logdet()

    def mahalanobis(self, x: Any) -> Any:
        """‖L_A⁻¹ X L_B⁻ᵀ‖²_F."""
        ops = self.ops
        u = ops.solve_triangular(self.a.factor, self._unvec(x), lower=True)  # L_A⁻¹X
        w = ops.solve_triangular(self.b.factor, ops.matrix_transpose(u), lower=True)
        return ops.sum(w * w, (-2, -1))

    def color(self, z: Any) -> Any:
        ops = self.ops
        return self._vec(self.a.factor @ self._unvec(z) @ ops.matrix_transpose(self.b.factor))

    def diagonal(self) -> Any:
        return self._outer(self.a.diagonal(), self.b.diagonal())

    def inverse_diagonal(self) -> Any:
        return self._outer(self.a.inverse_diagonal(), self.b.inverse_diagonal())

    def matmul(self, x: Any) -> Any:
        ops = self.ops
        p, q = self.a.dim, self.b.dim
        cols = ops.xp.moveaxis(x, -1, -2)  # (..., n, d)
        grid = cols.reshape(*cols.shape[:-1], p, q)
        a = side_matrix(self.a)[..., None, :, :]
        b = side_matrix(self.b)[..., None, :, :]
        out = a @ grid @ ops.matrix_transpose(b)
        return ops.xp.moveaxis(out.reshape(*out.shape[:-2], p * q), -2, -1)

    def dense(self) -> Any:
        a, b = side_matrix(self.a), side_matrix(self.b)
        p, q = self.a.dim, self.b.dim
        big = a[..., :, None, :, None] * b[..., None, :, None, :]
        return big.reshape(*big.shape[:-4], p * q, p * q)

    def to_dense_covariance(self) -> DenseCovariance:
        return DenseCovariance.from_matrix(
            self.dense(), "covariance", name="cov",
            ctx=ArrayContext(self.ops, self.dtype, self.a.factor))

    @staticmethod
    def pair_terms(cov_p: KroneckerCovariance, cov_q: KroneckerCovariance,
                   offset: Any = 0) -> MatrixTerms:
        """By the factors when their sizes agree, O(p³ + q³ + d); densified otherwise.

        With α, β the eigenvalues of A₂⁻¹A₁ and B₂⁻¹B₁, those of Σ₂⁻¹Σ₁ are the products αᵢβⱼ:
        tr = tr(A₂⁻¹A₁) tr(B₂⁻¹B₁), ln-ratio = q ln|A₂|/|A₁| + p ln|B₂|/|B₁|, and where those
        cancel, εᵢⱼ = aᵢ + bⱼ + aᵢbⱼ from the factors' whitened differences a = α − 1,
        b = β − 1. Accurate when each factor pair is close (not when a scalar moves between A
        and B, e.g. A₁ = 2A₂ with B₁ = B₂/2).
        """
        if (cov_p.a.dim, cov_p.b.dim) != (cov_q.a.dim, cov_q.b.dim):
            return DenseCovariance.pair_terms(cov_p.to_dense_covariance(),
                                              cov_q.to_dense_covariance(), offset)
        ops = cov_p.ops
        xp = ops.xp
        p, q = cov_p.a.dim, cov_p.b.dim
        trace_a, logdet_a = fast_terms(cov_p.a, cov_q.a)
        trace_b, logdet_b = fast_terms(cov_p.b, cov_q.b)
        trace = trace_a * trace_b
        logdet_ratio = q * logdet_a + p * logdet_b

        def spectral(mask: np.ndarray, fast: Any) -> Any:
            a = whitened_difference_eigvals(cov_p.a, cov_q.a, mask)[..., :, None]
            b = whitened_difference_eigvals(cov_p.b, cov_q.b, mask)[..., None, :]
            eps = a + b + a * b
            log_lam = xp.log1p(a) + xp.log1p(b)
            excess = ops.sum(excess_log1p(eps, xp, log_ratio=log_lam), (-2, -1))
            trusted = (1 + a[..., 0, 0]) * (1 + b[..., 0, 0]) >= _SPECTRAL_MIN_EIGENVALUE
            return xp.where(trusted, excess, fast)

        return refine_cancelled(trace, logdet_ratio, p * q, spectral, offset)

    def _unvec(self, x: Any) -> Any:
        return x.reshape(*x.shape[:-1], self.a.dim, self.b.dim)

    def _vec(self, x: Any) -> Any:
        return x.reshape(*x.shape[:-2], self.dim)

    def _outer(self, u: Any, v: Any) -> Any:
        return self._vec(u[..., :, None] * v[..., None, :])

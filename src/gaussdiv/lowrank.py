"""Low-rank plus diagonal covariances Σ = W Wᵀ + diag(v), W of shape (..., d, k).

Everything goes through one k×k Cholesky factor L_C of the capacitance C = I + Wᵀ D⁻¹ W
(D = diag v), computed once: the Woodbury identity Σ⁻¹ = D⁻¹ − D⁻¹W C⁻¹ WᵀD⁻¹ and the matrix
determinant lemma |Σ| = |D| |C|. Cost O(d k²) to build, O(d k) per Mahalanobis product.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from gaussdiv._backend import ArrayContext, backend_of, context_of
from gaussdiv._numerics import excess_log1p
from gaussdiv._validation import (
    check_dtype,
    check_finite,
    check_positive,
    check_vector,
    cholesky_checked,
)
from gaussdiv.covariance import Covariance, MatrixTerms, refine_cancelled
from gaussdiv.dense import DenseCovariance
from gaussdiv.errors import DimensionMismatchError, ShapeError


@dataclass(frozen=True, eq=False, repr=False)
class LowRankCovariance(Covariance):
    """Σ = factor · factorᵀ + diag(var); factor (*batch, d, k), var (*batch, d) positive."""

    factor: Any
    var: Any
    capacitance_tril: Any


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

    def solve(self, x: Any) -> Any:
        """Σ⁻¹X = D⁻¹X − D⁻¹W C⁻¹ WᵀD⁻¹X for X (..., d, n) (Woodbury). O(d k n)."""
        ops = self.ops
        y = x / self.var[..., None]
        t = ops.solve_triangular(self.capacitance_tril, ops.matrix_transpose(self.factor) @ y,
                                 lower=True)
        u = ops.solve_triangular(ops.matrix_transpose(self.capacitance_tril), t, lower=False)
        return y - (self.factor @ u) / self.var[..., None]

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
    def pair_terms(cov_p: LowRankCovariance, cov_q: LowRankCovariance,
                   offset: Any = 0) -> MatrixTerms:
        """Woodbury trace and determinant-lemma log-ratio, O(d (k₁ + k₂)²) per pair.

        Where P ≈ Q makes them cancel, :func:`near_identical_excess` recomputes the excess,
        still in O(d k²) and without any d×d matrix.
        """
        ops = cov_p.ops
        log = ops.xp.log
        trace = cov_q.trace_solve(cov_p)
        logdet_ratio = ops.sum(log(cov_q.var / cov_p.var), -1) + 2 * ops.sum(
            log(ops.diagonal(cov_q.capacitance_tril)), -1) - 2 * ops.sum(
            log(ops.diagonal(cov_p.capacitance_tril)), -1)
        return refine_cancelled(trace, logdet_ratio, cov_p.dim,
                                lambda mask, fast: near_identical_excess(cov_p, cov_q, mask),
                                offset)

    def _whitened_scaled_factor(self) -> Any:
        ops = self.ops
        scaled_t = ops.matrix_transpose(self.factor / self.var[..., None])
        return ops.solve_triangular(self.capacitance_tril, scaled_t, lower=True)


def near_identical_excess(cov_p: LowRankCovariance, cov_q: LowRankCovariance,
                          mask: Any) -> Any:
    """tr(Σ₂⁻¹Σ₁) − d − ln|Σ₂⁻¹Σ₁| without cancellation, for the batch elements in ``mask``.

    With Σᵢ = Dᵢ + WᵢWᵢᵀ and the intermediate M = D₁ + W₂W₂ᵀ, the excess φ splits exactly as

        φ(Σ₁‖Σ₂) = φ(Σ₁‖M) + φ(M‖Σ₂) + tr((Σ₂⁻¹ − M⁻¹)(Σ₁ − M)),

    and each piece is computed from differences of the inputs, so none subtracts large terms:

    - φ(Σ₁‖M): Σ₁ − M = H J Hᵀ has rank ≤ 2k (H = [W₁+W₂, W₁−W₂], J = ½[[0, I], [I, 0]];
      the narrower factor is padded with zero columns, which changes neither Σ nor the exact
      difference). With M^{-½}H = Q R (Householder, see :func:`_whitened_r`), the nonzero
      eigenvalues of M⁻¹(Σ₁ − M) are those of R J Rᵀ (2k×2k).
    - φ(M‖Σ₂): a diagonal difference δ = v₁ − v₂ under the shared W = W₂. With r = δ/v₂,
      C the capacitance of Σ₂ and η the eigenvalues of C^{-½} Wᵀdiag(δ/(v₁v₂))W C^{-½}:
      Σᵢ g(rᵢ) + Σⱼ g(−ηⱼ) − tr(C⁻¹Wᵀdiag(δ²/(v₁v₂²))W), with g(x) = x − ln(1+x).
    - the cross term: tr(J Hᵀ Σ₂⁻¹ diag(δ) M⁻¹ H), a product of two small differences.

    Cost O(d k²) per batch element; returns shape (count,).
    """
    ops = cov_p.ops
    xp = ops.xp
    tp = ops.matrix_transpose
    w1, w2 = _equal_ranks(ops, ops.take(cov_p.factor, mask, 2), ops.take(cov_q.factor, mask, 2))
    v1, v2 = ops.take(cov_p.var, mask, 1), ops.take(cov_q.var, mask, 1)
    q = LowRankCovariance.from_parts(w2, v2, ctx=ArrayContext(ops, cov_q.dtype, w2))
    mid = LowRankCovariance.from_parts(w2, v1, ctx=ArrayContext(ops, cov_p.dtype, w2))
    delta = v1 - v2

    # φ(M‖Σ₂): diagonal difference under the shared low-rank part.
    ratio = delta / v2
    diag_part = ops.sum(excess_log1p(ratio, xp, log_ratio=xp.log(v1 / v2)), -1)
    lc = q.capacitance_tril
    mixed = ops.solve_triangular(lc, tp(w2 * (delta / (v1 * v2))[..., None]), lower=True)
    n_prime = ops.solve_triangular(lc, tp(mixed @ w2), lower=True)  # C^{-½}N'C^{-½}
    eta = ops.eigvalsh(0.5 * (n_prime + tp(n_prime)))
    second = ops.solve_triangular(lc, tp(w2 * (xp.abs(delta) / (v2 * xp.sqrt(v1)))[..., None]),
                                  lower=True)
    diag_excess = (diag_part + ops.sum(excess_log1p(-eta, xp), -1)
                   - ops.sum(second * second, (-2, -1)))

    # φ(Σ₁‖M): the rank-2k difference of the factors, under M.
    h_left, h_right = w1 + w2, w1 - w2
    h = xp.concatenate([h_left, h_right], -1)
    r = _whitened_r(v1, w2, h)
    k = h_left.shape[-1]
    r_left, r_right = r[..., :, :k], r[..., :, k:]
    core = 0.5 * (r_left @ tp(r_right) + r_right @ tp(r_left))
    lowrank_excess = ops.sum(excess_log1p(ops.eigvalsh(core), xp), -1)

    # Cross term tr(J Hᵀ Σ₂⁻¹ diag(δ) M⁻¹ H).
    inner = tp(q.solve(h)) @ (delta[..., None] * mid.solve(h))
    cross = 0.5 * (ops.sum(ops.diagonal(inner[..., :k, k:]), -1)
                   + ops.sum(ops.diagonal(inner[..., k:, :k]), -1))
    return diag_excess + lowrank_excess + cross


def _whitened_r(var: Any, factor: Any, h: Any) -> Any:
    """R of the QR factorisation of M^{-½}H, for M = diag(var) + factor·factorᵀ. O(d k²).

    M^{-½} = (I + UUᵀ)^{-½} D^{-½} with U = D^{-½}W = Q_U diag(s) Vᵀ (thin SVD) and
    (I + UUᵀ)^{-½} = I − Q_U diag(s²/(√(1+s²)(1+√(1+s²)))) Q_Uᵀ, written without cancellation.
    Householder QR is backward stable column by column, so a tiny column of H (the difference
    of two nearly equal factors) keeps its relative accuracy in R; R is never inverted, so rank
    deficiency (an exactly shared column) is harmless.
    """
    xp = backend_of(h).xp
    tp = backend_of(h).matrix_transpose
    inv_std = 1 / xp.sqrt(var)[..., None]
    q_u, s, _ = xp.linalg.svd(factor * inv_std, full_matrices=False)
    root = xp.sqrt(1 + s * s)
    shrink = (s * s / (root * (1 + root)))[..., None]
    x = h * inv_std
    x = x - q_u @ (shrink * (tp(q_u) @ x))
    return xp.linalg.qr(x)[1]


def _equal_ranks(ops: Any, w1: Any, w2: Any) -> tuple[Any, Any]:
    """Pad the narrower factor with zero columns (W Wᵀ unchanged)."""
    k1, k2 = w1.shape[-1], w2.shape[-1]
    if k1 == k2:
        return w1, w2
    xp = ops.xp
    if k1 < k2:
        return xp.concatenate([w1, 0.0 * w2[..., k1:]], -1), w2
    return w1, xp.concatenate([w2, 0.0 * w1[..., k2:]], -1)

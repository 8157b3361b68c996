"""Full covariances, held as the user gave them: Σ, its Cholesky factor, Λ = Σ⁻¹, or Λ's factor."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Any, Literal

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
# Corrections for the factor's backward error (≈ κ·u relative) are applied when a cheap lower
# bound on κ reaches this; below it the extra O(d³) work is skipped.
_REFINE_MIN_CONDITION = 4.0


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

    @cached_property
    def backward_error(self) -> Any:
        """F = L̂⁻¹(M − L̂L̂ᵀ)L̂⁻ᵀ for the side matrix M and its computed factor L̂, or None.

        LAPACK's L̂ is the exact factor of M − (M − L̂L̂ᵀ); whitened, that residual has size
        ≈ κ(M)·u and would cap the relative accuracy of every result at that level. With F
        known (residual formed in wider precision) results are corrected to first order:
        ln|M| = 2 Σ ln L̂ᵢᵢ + tr F, and M⁻¹ = L̂⁻ᵀ(I − F)L̂⁻¹ + O(F²). None when the factor was
        given (it is exact) or no wider precision is available.
        """
        if self.matrix is None or not self.needs_refinement:
            return None
        ops = self.ops
        residual = ops.cholesky_residual(self.matrix, self.factor)
        if residual is None:
            return None
        half = ops.solve_triangular(self.factor, residual, lower=True)
        f = ops.solve_triangular(self.factor, ops.matrix_transpose(half), lower=True)
        return 0.5 * (f + ops.matrix_transpose(f))

    @cached_property
    def needs_refinement(self) -> bool:
        """Whether some batch element has max Aᵢᵢ/Lᵢᵢ² ≥ 4 (never under tracing).

        With D = diag(A)^½, the pivots of the unit-diagonal D⁻¹AD⁻¹ are Lᵢᵢ²/Aᵢᵢ, each ≥ its
        λ_min, while its λ_max ≥ 1: so the bound is ≤ κ(D⁻¹AD⁻¹), the condition number that
        governs Cholesky's backward error (pure scaling costs nothing). O(d²) from the factor;
        an underestimate only costs accuracy of ≈ κ·u, never correctness, and on the mpmath
        reference it catches every case where the correction matters.
        """
        ops = self.ops
        if ops.is_traced(self.factor):
            return False
        with ops.no_grad(), np.errstate(over="ignore", under="ignore", divide="ignore"):
            factor = ops.stop_gradient(self.factor)
            diagonal = ops.sum(factor * factor, -1)  # Aᵢᵢ
            pivots = ops.diagonal(factor) ** 2
            largest = -ops.min_value(-(diagonal / pivots))  # the max, as −min(−x)
        return not largest < _REFINE_MIN_CONDITION  # NaN (overflow) refines too

    def logdet(self) -> Any:
        ops = self.ops
        side_logdet = 2 * ops.sum(ops.xp.log(ops.diagonal(self.factor)), -1)
        if self.backward_error is not None:
            side_logdet = side_logdet + ops.sum(ops.diagonal(self.backward_error), -1)
        return side_logdet if self.side == "covariance" else -side_logdet

    def whiten(self, x: Any) -> Any:
        """W x with W Σ Wᵀ ≈ I: L̂⁻¹x on the covariance side, R̂ᵀx on the precision side."""
        ops = self.ops
        if self.side == "covariance":
            return solve_vectors(ops, self.factor, x, lower=True)
        return (ops.matrix_transpose(self.factor) @ x[..., None])[..., 0]

    def mahalanobis(self, x: Any) -> Any:
        """‖w‖² with w = W x, corrected by ∓wᵀFw for the factor's backward error F."""
        ops = self.ops
        w = self.whiten(x)
        value = ops.sum(w * w, -1)
        f = self.backward_error
        if f is None:
            return value
        correction = ops.sum(w * (f @ w[..., None])[..., 0], -1)
        # Σ⁻¹ = L̂⁻ᵀ(I − F)L̂⁻¹ on the covariance side; Λ = R̂(I + F)R̂ᵀ on the precision side.
        return value - correction if self.side == "covariance" else value + correction

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

    @staticmethod
    def pair_terms(cov_p: DenseCovariance, cov_q: DenseCovariance,
                   offset: Any = 0) -> MatrixTerms:
        """Covariance part of KL for two dense covariances. Cost O(d³) per pair.

        The fast route computes B = L₂⁻¹L₁, tr(Σ₂⁻¹Σ₁) = ‖B‖²_F and ln|Σ₂|/|Σ₁| =
        2 Σᵢ ln(L₂,ᵢᵢ / L₁,ᵢᵢ) (ratios before logs, so no overflow at any scale). Where those
        terms cancel (P ≈ Q) it switches, per batch element, to the spectral route:
        E = L₂⁻¹(Σ₁ − Σ₂)L₂⁻ᵀ with eigenvalues εᵢ and excess Σᵢ εᵢ − ln(1 + εᵢ), where the
        difference is taken on the user's own inputs (matrices or factors) before whitening.
        Two precisions Λ use the identity excess(Σ₁‖Σ₂) = excess(Λ₂‖Λ₁); a covariance against
        a precision uses their factors directly (:func:`_cross_side_terms`), never an inverse.
        """
        if cov_p.side != cov_q.side:
            return _cross_side_terms(cov_p, cov_q, offset)
        if cov_p.side == "covariance":
            return _dense_terms(cov_p, cov_q, offset)
        return _dense_terms(cov_q, cov_p, offset)

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


def solve_vectors(ops: Any, t: Any, x: Any, lower: bool) -> Any:
    """T⁻¹x for vectors x (..., d) against triangular T (*batch, d, d).

    Every batch axis along which T does not vary (absent, or of size 1) while x does — samples,
    points, a batch of means sharing one covariance — becomes right-hand-side columns of one
    solve per distinct T, rather than one tiny solve per vector (measured: 20 000 points in
    d = 64 take 0.03 s instead of 1.1 s).
    """
    xp = ops.xp
    t_batch = (1,) * max(len(x.shape) - len(t.shape) + 1, 0) + tuple(t.shape[:-2])
    x_batch = tuple(x.shape[:-1])
    if len(t_batch) != len(x_batch):
        return ops.solve_triangular(t, x[..., None], lower=lower)[..., 0]
    fold = [i for i, (a, b) in enumerate(zip(t_batch, x_batch, strict=True)) if a == 1 and b != 1]
    if not fold:
        return ops.solve_triangular(t, x[..., None], lower=lower)[..., 0]
    keep = [i for i in range(len(x_batch)) if i not in fold]
    d = x.shape[-1]
    # x → (*kept, d, *folded) → (*kept, d, n); T → (*kept', d, d) with the folded axes dropped.
    moved = xp.moveaxis(x, fold, list(range(len(x_batch) + 1 - len(fold), len(x_batch) + 1)))
    kept_shape = tuple(x_batch[i] for i in keep)
    fold_shape = tuple(x_batch[i] for i in fold)
    columns = moved.reshape(*kept_shape, d, int(np.prod(fold_shape, dtype=np.int64)))
    t_kept = t.reshape(*(t_batch[i] for i in keep), *t.shape[-2:])
    solved = ops.solve_triangular(t_kept, columns, lower=lower)
    solved = solved.reshape(*solved.shape[:-2], d, *fold_shape)
    return xp.moveaxis(solved, list(range(len(x_batch) + 1 - len(fold), len(x_batch) + 1)), fold)


def side_matrix(cov: DenseCovariance) -> Any:
    """The side's matrix (Σ or Λ): as given, or rebuilt from the factor."""
    if cov.matrix is not None:
        return cov.matrix
    return cov.factor @ cov.ops.matrix_transpose(cov.factor)


def whitened_difference_eigvals(first: DenseCovariance, ref: DenseCovariance,
                                mask: np.ndarray) -> Any:
    """Eigenvalues ε of B⁻¹(A − B) for the batch elements selected by ``mask``.

    A and B are the side matrices of ``first`` and ``ref``; computed as E = L_B⁻¹(A − B)L_B⁻ᵀ,
    corrected to first order for L_B's backward error F_B (E − ½(F_B E + E F_B)). The difference
    is formed on the user's inputs: A − B directly when matrices were given; with
    F = L_B⁻¹(L_A − L_B), E = F + Fᵀ + F Fᵀ when both were given as factors. Returns (count, d),
    ascending.
    """
    ops = ref.ops
    ref_factor = ops.take(ref.factor, mask, 2)
    solve = ops.solve_triangular_refined if ref.needs_refinement else ops.solve_triangular
    if first.factor_given and ref.factor_given:
        diff = ops.take(first.factor - ref.factor, mask, 2)
        f = solve(ref_factor, diff, lower=True)
        f_t = ops.matrix_transpose(f)
        excess_matrix = f + f_t + f @ f_t
    else:
        diff = ops.take(side_matrix(first) - side_matrix(ref), mask, 2)
        half = solve(ref_factor, diff, lower=True)  # L_B⁻¹ D
        excess_matrix = solve(ref_factor, ops.matrix_transpose(half), lower=True)
        if ref.backward_error is not None:
            f_b = ops.take(ref.backward_error, mask, 2)
            shift = f_b @ excess_matrix
            excess_matrix = excess_matrix - 0.5 * (shift + ops.matrix_transpose(shift))
    excess_matrix = 0.5 * (excess_matrix + ops.matrix_transpose(excess_matrix))
    return ops.eigvalsh(excess_matrix)


def _dense_terms(first: DenseCovariance, ref: DenseCovariance, offset: Any = 0) -> MatrixTerms:
    """MatrixTerms of A = first's side matrix against B = ref's (see :func:`fast_terms`)."""
    ops = first.ops
    trace, logdet_ratio = fast_terms(first, ref)

    def spectral(mask: np.ndarray, fast: Any) -> Any:
        eps = whitened_difference_eigvals(first, ref, mask)
        trusted = 1 + eps[..., 0] >= _SPECTRAL_MIN_EIGENVALUE
        return ops.xp.where(trusted, ops.sum(excess_log1p(eps, ops.xp), -1), fast)

    return refine_cancelled(trace, logdet_ratio, first.dim, spectral, offset)


def fast_terms(first: DenseCovariance, ref: DenseCovariance) -> tuple[Any, Any]:
    """tr(B⁻¹A) and ln|B|/|A| for A = first's side matrix and B = ref's (one side).

    With C = L_B⁻¹L_A and the factors' backward errors F_A, F_B (see
    :attr:`DenseCovariance.backward_error`), to first order
    tr(B⁻¹A) = ‖C‖² + tr(Cᵀ C F_A) − tr(Cᵀ F_B C) and
    ln|B|/|A| = 2 Σ ln(L_B,ᵢᵢ / L_A,ᵢᵢ) + tr F_B − tr F_A.
    """
    ops = first.ops
    whitened = ops.solve_triangular(ref.factor, first.factor, lower=True)  # C = L_B⁻¹ L_A
    trace = ops.sum(whitened * whitened, (-2, -1))
    logdet_ratio = 2 * ops.sum(ops.xp.log(ops.diagonal(ref.factor) / ops.diagonal(first.factor)),
                               -1)
    if first.backward_error is not None:
        f_a = first.backward_error
        trace = trace + ops.sum(whitened * (whitened @ f_a), (-2, -1))
        logdet_ratio = logdet_ratio - ops.sum(ops.diagonal(f_a), -1)
    if ref.backward_error is not None:
        f_b = ref.backward_error
        trace = trace - ops.sum(whitened * (f_b @ whitened), (-2, -1))
        logdet_ratio = logdet_ratio + ops.sum(ops.diagonal(f_b), -1)
    return trace, logdet_ratio


def _cross_side_terms(cov_p: DenseCovariance, cov_q: DenseCovariance,
                      offset: Any = 0) -> MatrixTerms:
    """MatrixTerms when one covariance is held as Σ (factor L) and the other as Λ (factor R).

    Σ₂⁻¹Σ₁ is similar to GᵀG with G = R₂ᵀL₁ (Σ₁ given, Λ₂ given: a product) or
    G = L₂⁻¹R₁⁻ᵀ (Λ₁ given, Σ₂ given: two triangular operations), so tr = ‖G‖²_F and the
    eigenvalues are those of GᵀG. No difference of the two inputs exists in one form, so where
    the terms cancel the excess comes from GᵀG's eigenvalues, accurate to u‖G‖² absolutely.
    Corrected to first order for both factors' backward errors.
    """
    ops = cov_p.ops
    xp = ops.xp
    log_diag = ops.sum(xp.log(ops.diagonal(cov_p.factor) * ops.diagonal(cov_q.factor)), -1)
    f_p, f_q = cov_p.backward_error, cov_q.backward_error
    if cov_p.side == "covariance":  # G = R₂ᵀ L₁; Σ₁ = L(I+F₁)Lᵀ, Λ₂ = R(I+F₂)Rᵀ
        g = ops.matrix_transpose(cov_q.factor) @ cov_p.factor
        sign = 1
        logdet_ratio = -2 * log_diag
    else:  # G = L₂⁻¹R₁⁻ᵀ; Λ₁ = R(I+F₁)Rᵀ, Σ₂ = L(I+F₂)Lᵀ enter inverted
        g = ops.solve_triangular(cov_q.factor, ops.matrix_transpose(cov_p._inverse_factor()),
                                 lower=True)
        sign = -1
        logdet_ratio = 2 * log_diag
    trace = ops.sum(g * g, (-2, -1))
    if f_p is not None:
        trace = trace + sign * ops.sum(g * (g @ f_p), (-2, -1))
        logdet_ratio = logdet_ratio - sign * ops.sum(ops.diagonal(f_p), -1)
    if f_q is not None:
        trace = trace + sign * ops.sum(g * (f_q @ g), (-2, -1))
        logdet_ratio = logdet_ratio - sign * ops.sum(ops.diagonal(f_q), -1)

    def spectral(mask: np.ndarray, fast: Any) -> Any:
        g_masked = ops.take(g, mask, 2)
        lam = ops.eigvalsh(ops.matrix_transpose(g_masked) @ g_masked)
        # A spectrum spanning beyond 1/u can round an eigenvalue to ≤ 0: keep the fast value.
        trusted = lam[..., 0] > 0
        lam = xp.where(lam > 0, lam, 1 + 0.0 * lam)
        excess = ops.sum(excess_log1p(lam - 1, xp, log_ratio=xp.log(lam)), -1)
        return xp.where(trusted, excess, fast)

    return refine_cancelled(trace, logdet_ratio, cov_p.dim, spectral, offset)

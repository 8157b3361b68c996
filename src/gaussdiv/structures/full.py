"""Full covariances, held as the user gave them: Σ or its Cholesky factor (FullCovariance), or
the precision Λ = Σ⁻¹ or its factor (FullPrecision).

Both keep the user's exact matrix (when one was given) beside its lower Cholesky factor, so a
pair relation can subtract like from like when P ≈ Q, and both correct their results for the
factor's backward error (see :attr:`Factored.backward_error`).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Any, ClassVar

import numpy as np

from gaussdiv.backends import ArrayContext, backend_of, context_of
from gaussdiv.numerics.error_free import product_residual
from gaussdiv.numerics.residual import cholesky_residual
from gaussdiv.structures.base import Covariance
from gaussdiv.validation import (
    check_dtype,
    check_finite,
    check_lower_triangular,
    check_square,
    condition_bound,
    factor_checked,
)

# Corrections for the factor's backward error (≈ κ·u relative) are applied when a cheap lower
# bound on κ reaches this; below it the extra O(d³) work is skipped.
_REFINE_MIN_CONDITION = 4.0


@dataclass(frozen=True, eq=False, repr=False)
class Factored(Covariance):
    """A dense SPD matrix M (*batch, d, d) — Σ or Λ, by subclass — with its lower Cholesky
    factor: ``matrix`` is the user's M if one was given (else None), ``factor`` is L with
    M = L Lᵀ (given, or computed once at construction)."""

    matrix: Any
    factor: Any

    array_fields: ClassVar[dict[str, int]] = {"matrix": 2, "factor": 2}
    cached_arrays: ClassVar[dict[str, int]] = {"_condition_bound": 0, "backward_error": 2}
    #: "covariance" or "precision": which matrix M is (used in messages).
    describes: ClassVar[str]

    @classmethod
    def from_matrix(cls, matrix: Any, *, name: str, ctx: ArrayContext | None = None) -> Any:
        """Validate a symmetric positive definite matrix and factor it once."""
        ctx = ctx or context_of(matrix)
        ops = ctx.ops
        check_dtype(matrix, name, ops)
        matrix = ctx.freeze(matrix)
        check_square(matrix, name)
        factor, bound = factor_checked(matrix, name, ops)
        out = cls(matrix, factor)
        if bound is not None:  # computed on the way (carried through batch operations)
            out.__dict__["_condition_bound"] = bound
        return out

    @classmethod
    def from_factor(cls, factor: Any, *, name: str, ctx: ArrayContext | None = None) -> Any:
        """Validate a lower-triangular factor with positive diagonal (M = factor·factorᵀ)."""
        ctx = ctx or context_of(factor)
        ops = ctx.ops
        check_dtype(factor, name, ops)
        factor = ctx.freeze(factor)
        check_square(factor, name)
        check_finite(factor, name, ops)
        check_lower_triangular(factor, name, ops)
        return cls(None, factor)

    def checked(self, name: str) -> None:
        covariance = self.describes == "covariance"
        if self.matrix is not None:
            type(self).from_matrix(self.matrix, name=name if covariance else "precision")
        else:
            type(self).from_factor(self.factor, name="scale_tril" if covariance else
                                   "precision_tril")

    @property
    def factor_given(self) -> bool:
        """Whether the factor is the user's own (exact), not computed here."""
        return self.matrix is None

    @property
    def device_array(self) -> Any:
        return self.factor

    @property
    def dim(self) -> int:
        return int(self.factor.shape[-1])

    @property
    def batch_shape(self) -> tuple[int, ...]:
        return tuple(self.factor.shape[:-2])

    def __repr__(self) -> str:
        given = "factor" if self.factor_given else "matrix"
        return (f"{type(self).__name__}(given={given}, d={self.dim}, "
                f"batch_shape={self.batch_shape}, dtype={self.dtype})")

    @cached_property
    def backward_error(self) -> Any:
        """F = L̂⁻¹(M − L̂L̂ᵀ)L̂⁻ᵀ for the matrix M and its computed factor L̂, or None.

        LAPACK's L̂ is the exact factor of M − (M − L̂L̂ᵀ); whitened, that residual has size
        ≈ κ(M)·u and would cap the relative accuracy of every result at that level. With F
        known (residual formed in wider precision) results are corrected to first order:
        ln|M| = 2 Σ ln L̂ᵢᵢ + tr F, and M⁻¹ = L̂⁻ᵀ(I − F)L̂⁻¹ + O(F²). None when the factor was
        given (it is exact) or no wider precision is available.
        """
        if self.matrix is None or not self.needs_refinement:
            return None
        ops, rows = self.ops, np.flatnonzero(self.refinement_mask)
        if rows.size == self.refinement_mask.size:
            return self._fresh_backward_error()
        # Only the elements whose bound reaches the threshold (elsewhere F is below u·d and
        # left out): one ill-conditioned element no longer costs the whole batch.
        index = ops.index_array(rows, like=self.factor)
        some = self.take_flat(self.batch_shape, index)
        f = some._fresh_backward_error()
        if f is None:
            return None
        flat = self.factor.reshape(-1, self.dim, self.dim)
        return ops.scattered(flat, index, f).reshape(self.factor.shape)

    def _fresh_backward_error(self) -> Any:
        """F for every element, computed now: the fused kernel where the backend has one, else
        the residual and two solves."""
        fused = self.ops.cholesky_backward_error(self.matrix, self.factor)
        if fused is not None:
            return fused
        return self._whitened(cholesky_residual(self.ops, self.matrix, self.factor))

    def whitened_residual(self) -> Any:
        """F of :attr:`backward_error` whatever the condition, from a residual accurate to
        ≈ u of itself (None when the factor is exact or there is no float64): for routes where
        F is not a correction but adds to a small result (E = RᵀΣR − I when P ≈ Q)."""
        if self.matrix is None:
            return None
        ops = self.ops
        return self._whitened(product_residual(self.matrix, self.factor,
                                               ops.matrix_transpose(self.factor), ops.xp))

    def _whitened(self, residual: Any) -> Any:
        """L̂⁻¹ residual L̂⁻ᵀ, symmetrised; None for None."""
        if residual is None:
            return None
        ops = self.ops
        half = ops.solve_triangular(self.factor, residual, lower=True)
        f = ops.solve_triangular(self.factor, ops.matrix_transpose(half), lower=True)
        return 0.5 * (f + ops.matrix_transpose(f))

    @property
    def needs_refinement(self) -> bool:
        """Whether some batch element has max Mᵢᵢ/Lᵢᵢ² ≥ 4 (never when traced)."""
        return self.refinement_mask is not None

    @cached_property
    def refinement_mask(self) -> np.ndarray | None:
        """Host mask (*batch) of the elements with max Mᵢᵢ/Lᵢᵢ² ≥ 4; None when there are none
        or the factor is traced.

        With D = diag(M)^½, the pivots of the unit-diagonal D⁻¹MD⁻¹ are Lᵢᵢ²/Mᵢᵢ, each ≥ its
        λ_min, while its λ_max ≥ 1: so the bound is ≤ κ(D⁻¹MD⁻¹), the condition number that
        governs Cholesky's backward error (pure scaling costs nothing). O(d²) from the factor;
        an underestimate only costs accuracy of ≈ κ·u, never correctness.
        """
        ops = self.ops
        if ops.is_traced(self.factor):
            return None
        bound = ops.to_numpy(self.condition_bound())
        mask = np.asarray(~(bound < _REFINE_MIN_CONDITION))  # NaN (overflow) refines too
        return mask if mask.any() else None

    def condition_bound(self) -> Any:
        """max Mᵢᵢ/Lᵢᵢ² per batch element (see :attr:`needs_refinement`)."""
        return self._condition_bound

    @cached_property
    def _condition_bound(self) -> Any:
        ops = self.ops
        if self.matrix is not None:  # Mᵢᵢ as given: O(d) per element
            diagonal = ops.diagonal(self.matrix)
        else:
            with ops.no_grad(), np.errstate(over="ignore", under="ignore"):
                factor = ops.stop_gradient(self.factor)
                diagonal = ops.xp.einsum("...ij,...ij->...i", factor, factor)
        return condition_bound(ops, diagonal, self.factor)

    def side_logdet(self) -> Any:
        """ln|M|, corrected for the factor's backward error."""
        ops = self.ops
        value = 2 * ops.sum(ops.xp.log(ops.diagonal(self.factor)), -1)
        if self.backward_error is not None:
            value = value + ops.sum(ops.diagonal(self.backward_error), -1)
        return value

    def side_matrix(self) -> Any:
        """M: as given, or rebuilt from the factor."""
        if self.matrix is not None:
            return self.matrix
        return self.factor @ self.ops.matrix_transpose(self.factor)

    def side_matrix_dd(self) -> tuple[Any, Any]:
        """M = hi + lo: exact as given, or L Lᵀ with its rounding error from the factor."""
        if self.matrix is not None:
            return self.matrix, 0.0 * self.matrix
        hi = self.side_matrix()
        residual = product_residual(hi, self.factor, self.ops.matrix_transpose(self.factor),
                                    self.ops.xp)
        return hi, (0.0 * hi if residual is None else -residual)

    def side_diagonal(self) -> Any:
        if self.matrix is not None:
            return self.ops.diagonal(self.matrix)
        return self.ops.sum(self.factor * self.factor, -1)

    def side_inverse_diagonal(self) -> Any:
        inv_factor = self.inverse_factor()
        return self.ops.sum(inv_factor * inv_factor, -2)

    def inverse_factor(self) -> Any:
        """L⁻¹ (for diagonals of M⁻¹ and dense views; never on a hot path)."""
        ops = self.ops
        return ops.solve_triangular(self.factor, ops.eye(self.dim, self.dtype, like=self.factor),
                                    lower=True)

    def quadratic(self, w: Any, sign: int) -> Any:
        """‖w‖² ± wᵀFw: a whitened vector's squared norm, corrected for the backward error."""
        ops = self.ops
        value = ops.sum(w * w, -1)
        f = self.backward_error
        if f is None:
            return value
        return value + sign * ops.sum(w * (f @ w[..., None])[..., 0], -1)


@dataclass(frozen=True, eq=False, repr=False)
class FullCovariance(Factored):
    """Σ given as a dense matrix or by its lower Cholesky factor L (Σ = L Lᵀ), (*batch, d, d).

    Made by ``Gaussian(mean, cov)`` (Σ kept as given beside its factor, computed once) and
    ``Gaussian.from_scale_tril`` (L kept: exact, nothing factored). Keeping the given Σ lets a
    pair relation subtract Σ₁ − Σ₂ exactly when P ≈ Q; ln|Σ| = 2 Σᵢ ln Lᵢᵢ and
    xᵀΣ⁻¹x = ‖L⁻¹x‖², both corrected to first order for the computed factor's backward error
    where Σ is ill-conditioned (some max Σᵢᵢ/Lᵢᵢ² ≥ 4).

    Cost: O(d²) memory; O(d³) once to factor a given Σ (O(d²) to check a given L), plus O(d³)
    once for the backward-error correction where it applies; then ln|Σ| O(d), xᵀΣ⁻¹x and
    ``color`` O(d²) per vector (a triangular solve, a product), diag Σ⁻¹ O(d³).

    Attributes:
        matrix: Σ as given, (*batch, d, d), or None when it was given by its factor.
        factor: L, (*batch, d, d), lower triangular with a positive diagonal: given, or
            computed at construction.

    Examples:
        >>> import numpy as np, gaussdiv
        >>> cov = gaussdiv.Gaussian(np.zeros(2), [[4.0, 2.0], [2.0, 2.0]]).cov
        >>> isinstance(cov, gaussdiv.FullCovariance), cov.factor.tolist()  # L = [[2, 0], [1, 1]]
        (True, [[2.0, 0.0], [1.0, 1.0]])
        >>> round(float(cov.logdet()), 6)                 # 2 (ln 2 + ln 1) = ln 4 = ln|Σ|
        1.386294
    """

    describes: ClassVar[str] = "covariance"

    @classmethod
    def from_square_root(cls, root: Any) -> FullCovariance:
        """Σ = S Sᵀ for a square root S (*batch, d, n), n ≥ d, of full rank, held by its lower
        factor, never forming Σ (whose entries may overflow where S's do not).

        With Sᵀ = QR (Householder), S Sᵀ = RᵀR, so L = Rᵀ with each column's sign made
        positive. Householder QR is backward stable column by column: L is as accurate as S
        allows, with no squaring of its condition number. Held as a given factor.
        """
        ops = backend_of(root)
        r = ops.xp.linalg.qr(ops.matrix_transpose(root))[1]
        diagonal = ops.diagonal(r)
        sign = ops.xp.where(diagonal < 0, -1.0 + 0.0 * diagonal, 1.0 + 0.0 * diagonal)
        return cls(None, ops.matrix_transpose(r) * sign[..., None, :])

    def logdet(self) -> Any:
        return self.side_logdet()

    def whiten(self, x: Any) -> Any:
        """L̂⁻¹x, for x (..., d)."""
        return solve_vectors(self.ops, self.factor, x, lower=True)

    def mahalanobis(self, x: Any) -> Any:
        # Σ⁻¹ = L̂⁻ᵀ(I − F)L̂⁻¹ to first order.
        return self.quadratic(self.whiten(x), -1)

    def color(self, z: Any) -> Any:
        return (self.factor @ z[..., None])[..., 0]

    def diagonal(self) -> Any:
        return self.side_diagonal()

    def inverse_diagonal(self) -> Any:
        return self.side_inverse_diagonal()

    def matmul(self, x: Any) -> Any:
        if self.matrix is not None:
            return self.matrix @ x
        return self.factor @ (self.ops.matrix_transpose(self.factor) @ x)

    def dense(self) -> Any:
        return self.side_matrix()

    def dense_dd(self) -> tuple[Any, Any]:
        return self.side_matrix_dd()

    def to_full(self) -> FullCovariance:
        return self


@dataclass(frozen=True, eq=False, repr=False)
class FullPrecision(Factored):
    """Σ = Λ⁻¹, the precision Λ given as a dense matrix or by its lower Cholesky factor R
    (Λ = R Rᵀ), (*batch, d, d). Λ is never inverted.

    Made by ``Gaussian.from_precision`` (Λ kept beside its factor, computed once) and
    ``Gaussian.from_precision_tril`` (R kept: exact). ln|Σ| = −2 Σᵢ ln Rᵢᵢ, xᵀΣ⁻¹x = ‖Rᵀx‖²
    (a product, no solve), a draw μ + R⁻ᵀz (a triangular solve); the backward-error
    correction is that of :class:`FullCovariance`.

    Cost: as :class:`FullCovariance` — O(d²) memory, O(d³) once to factor a given Λ, ln|Σ|
    O(d), xᵀΣ⁻¹x and ``color`` O(d²) per vector; diag Σ and ``dense()`` (Σ itself, for
    inspection) O(d³).

    Attributes:
        matrix: Λ as given, (*batch, d, d), or None when it was given by its factor.
        factor: R, (*batch, d, d), lower triangular with a positive diagonal: given, or
            computed at construction.

    Examples:
        >>> import numpy as np, gaussdiv
        >>> cov = gaussdiv.Gaussian.from_precision(np.zeros(2), [[4.0, 0.0], [0.0, 0.25]]).cov
        >>> isinstance(cov, gaussdiv.FullPrecision)
        True
        >>> float(cov.mahalanobis(np.array([1.0, 2.0])))   # xᵀΣ⁻¹x = xᵀΛx = 4 · 1 + ¼ · 4
        5.0
    """

    describes: ClassVar[str] = "precision"

    def logdet(self) -> Any:
        return -self.side_logdet()

    def whiten(self, x: Any) -> Any:
        """R̂ᵀx, for x (..., d)."""
        return (self.ops.matrix_transpose(self.factor) @ x[..., None])[..., 0]

    def mahalanobis(self, x: Any) -> Any:
        # Λ = R̂(I + F)R̂ᵀ.
        return self.quadratic(self.whiten(x), 1)

    def color(self, z: Any) -> Any:
        upper = self.ops.matrix_transpose(self.factor)
        return self.ops.solve_triangular(upper, z[..., None], lower=False)[..., 0]

    def diagonal(self) -> Any:
        return self.side_inverse_diagonal()

    def inverse_diagonal(self) -> Any:
        return self.side_diagonal()

    def matmul(self, x: Any) -> Any:
        ops = self.ops
        half = ops.solve_triangular(self.factor, x, lower=True)  # R⁻¹X
        return ops.solve_triangular(ops.matrix_transpose(self.factor), half, lower=False)

    def dense(self) -> Any:
        inv_factor = self.inverse_factor()  # R⁻¹
        return self.ops.matrix_transpose(inv_factor) @ inv_factor  # Σ = R⁻ᵀR⁻¹

    def dense_dd(self) -> tuple[Any, Any]:
        raise TypeError("a precision has no exact dense covariance; pair relations use Λ")

    def to_full(self) -> FullPrecision:
        return self


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

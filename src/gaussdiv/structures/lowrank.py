"""Low-rank plus diagonal covariances Σ = W Wᵀ + diag(v), W of shape (..., d, k).

Everything goes through one k×k Cholesky factor L_C of the capacitance C = I + Wᵀ D⁻¹ W
(D = diag v), computed once: the Woodbury identity Σ⁻¹ = D⁻¹ − D⁻¹W C⁻¹ WᵀD⁻¹ and the matrix
determinant lemma |Σ| = |D| |C|. Cost O(d k²) to build, O(d k) per Mahalanobis product.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from gaussdiv.backends import ArrayContext, broadcast_shapes, context_of
from gaussdiv.errors import DimensionMismatchError, DtypeError, ShapeError
from gaussdiv.numerics.error_free import product_residual, two_sum
from gaussdiv.structures.base import Covariance
from gaussdiv.structures.full import FullCovariance
from gaussdiv.validation import (
    check_dtype,
    check_finite,
    check_positive,
    check_vector,
    cholesky_checked,
)


@dataclass(frozen=True, eq=False, repr=False)
class LowRankCovariance(Covariance):
    """Σ = W Wᵀ + diag(v), W (*batch, d, k), v (*batch, d) > 0; the d×d Σ is never formed.

    Made by ``Gaussian.lowrank``. Everything goes through the lower Cholesky factor L_C of the
    k×k capacitance C = I + Wᵀ D⁻¹ W (D = diag v), computed once: the Woodbury identity
    Σ⁻¹ = D⁻¹ − D⁻¹W C⁻¹ WᵀD⁻¹ and the determinant lemma |Σ| = |D| |C|. A draw takes d + k
    standard normals (``noise_dim``).

    Cost: O(d k) memory; O(d k²) once (C and its factor); then ln|Σ| O(d + k), xᵀΣ⁻¹x and
    ``color`` O(d k) per vector, diag Σ⁻¹ O(d k²); ``dense()`` O(d² k).

    Attributes:
        factor: W, (*batch, d, k).
        var: v, (*batch, d), every entry > 0.
        capacitance_tril: L_C, (*batch, k, k), the lower Cholesky factor of
            I + Wᵀ diag(v)⁻¹ W.

    Examples:
        >>> import numpy as np, gaussdiv
        >>> cov = gaussdiv.Gaussian.lowrank(np.zeros(3), np.ones((3, 1)), np.ones(3)).cov
        >>> isinstance(cov, gaussdiv.LowRankCovariance), cov.dim, cov.rank
        (True, 3, 1)
        >>> round(float(cov.logdet()), 6)   # |D| |C| = 1 · (1 + 3) : ln 4
        1.386294
    """

    factor: Any
    var: Any
    capacitance_tril: Any

    array_fields: ClassVar[dict[str, int]] = {"factor": 2, "var": 1, "capacitance_tril": 2}

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
        try:
            broadcast_shapes(tuple(factor.shape[:-2]), tuple(var.shape[:-1]))
        except ValueError:
            raise ShapeError(f"batch shapes do not broadcast: factor has batch shape "
                             f"{tuple(factor.shape[:-2])}, var {tuple(var.shape[:-1])}") from None
        check_finite(factor, "factor", ops)
        check_finite(var, "var", ops)
        check_positive(var, "var", ops, "entries (a variance must be > 0)")
        with np.errstate(over="ignore", invalid="ignore"):  # an overflow is reported below
            capacitance = capacitance_matrix(ops, factor, var)
        if not ops.is_traced(capacitance) and not ops.all_finite(capacitance):
            raise DtypeError(f"factor is too large for var in {ctx.dtype}: the capacitance "
                             "I + WᵀD⁻¹W overflows (entries of WᵀD⁻¹W beyond "
                             f"{float(np.finfo(ctx.dtype).max):.3g}); rescale the data")
        return cls(factor, var, cholesky_checked(capacitance, "capacitance I + WᵀD⁻¹W", ops))

    @classmethod
    def from_valid_parts(cls, factor: Any, var: Any) -> LowRankCovariance:
        """Σ = W Wᵀ + diag(v) from parts known to be valid (inside a pair relation): the
        capacitance is positive definite by construction, so nothing is checked."""
        ops = context_of(factor, var).ops
        return cls(factor, var, ops.cholesky(capacitance_matrix(ops, factor, var)))

    def checked(self, name: str) -> None:
        type(self).from_parts(self.factor, self.var)

    @property
    def device_array(self) -> Any:
        return self.factor

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
        t = self.whitened_scaled_factor()  # L_C⁻¹ WᵀD⁻¹, (k, d)
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
        return ops.sum(other.diagonal() / self.var, -1) - ops.sum(ops.diagonal(full), -1)

    def dense(self) -> Any:
        ops = self.ops
        eye = ops.eye(self.dim, self.dtype, like=self.factor)
        return self.factor @ ops.matrix_transpose(self.factor) + self.var[..., None] * eye

    def dense_dd(self) -> tuple[Any, Any]:
        """W Wᵀ + D with the rounding of the product and of the sum carried in lo."""
        ops = self.ops
        eye = ops.eye(self.dim, self.dtype, like=self.factor)
        diag = self.var[..., None] * eye
        product = self.factor @ ops.matrix_transpose(self.factor)
        hi, sum_error = two_sum(product, diag, ops.xp)  # product + D = hi + sum_error exactly
        residual = product_residual(product, self.factor, ops.matrix_transpose(self.factor), ops.xp)
        return hi, (sum_error if residual is None else sum_error - residual)

    def to_full(self) -> FullCovariance:
        """W Wᵀ + D densely, factored (NotPositiveDefiniteError where that is numerically
        singular in this precision: W far larger than √v); where W Wᵀ overflows, from the
        square root [diag √v, W] instead (:meth:`FullCovariance.from_square_root`, O(d²(d+k))),
        never forming Σ."""
        ops = self.ops
        with np.errstate(over="ignore", invalid="ignore"):  # an overflow is handled below
            dense = self.dense()
        if ops.is_traced(dense) or ops.all_finite(dense):
            return FullCovariance(dense, cholesky_checked(dense, "W Wᵀ + diag(var)", ops))
        xp, shape = ops.xp, self.batch_shape
        eye = ops.eye(self.dim, self.dtype, like=self.factor)
        std = xp.broadcast_to(xp.sqrt(self.var)[..., None] * eye, (*shape, self.dim, self.dim))
        factor = xp.broadcast_to(self.factor, (*shape, *self.factor.shape[-2:]))
        return FullCovariance.from_square_root(xp.concatenate([std, factor], -1))

    def condition_bound(self) -> Any:
        """max over i of diag(Σ)ᵢ · diag(Σ⁻¹)ᵢ: a lower bound on κ(D^-½ΣD^-½). O(d k²)."""
        ops = self.ops
        return -ops.amin(-(self.diagonal() * self.inverse_diagonal()), (-1,), keepdims=False)

    def whitened_scaled_factor(self) -> Any:
        """L_C⁻¹ WᵀD⁻¹, shape (*batch, k, d)."""
        ops = self.ops
        scaled_t = ops.matrix_transpose(self.factor / self.var[..., None])
        return ops.solve_triangular(self.capacitance_tril, scaled_t, lower=True)


def capacitance_matrix(ops: Any, factor: Any, var: Any) -> Any:
    """I + Wᵀ D⁻¹ W, shape (*batch, k, k)."""
    k = factor.shape[-1]
    eye = ops.eye(k, ops.numpy_dtype(factor), like=factor)
    return eye + ops.matrix_transpose(factor) @ (factor / var[..., None])

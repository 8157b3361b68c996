"""Diagonal covariances Σ = diag(v), given as variances, standard deviations or log-variances.

An isotropic covariance v·I is the same structure with one stored value per batch element, and
the standard normal's I is that with v = 1: memory O(batch), never O(d).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Literal

from gaussdiv.backends import ArrayContext, context_of
from gaussdiv.errors import ShapeError
from gaussdiv.numerics.error_free import exp_dd, square_dd
from gaussdiv.structures.base import Covariance
from gaussdiv.structures.full import FullCovariance
from gaussdiv.validation import check_dtype, check_finite, check_positive, check_vector

Kind = Literal["var", "std", "logvar"]


@dataclass(frozen=True, eq=False, repr=False)
class DiagonalCovariance(Covariance):
    """Σ = diag(v) with v held as given: ``kind`` is "var" (v), "std" (√v) or "logvar" (ln v).

    Made by ``Gaussian.diag`` (``param`` of shape (*batch, d)), ``Gaussian.isotropic`` (v I:
    ``param`` (*batch, 1), broadcast over the ``size`` coordinates) and
    ``Gaussian.standard`` (I: one stored 1). Log-variances are used as logs — ln|Σ| = Σᵢ ℓᵢ,
    xᵀΣ⁻¹x = Σᵢ (xᵢ e^(−ℓᵢ/2))² — so nothing overflows for ℓ from −700 to +700.

    Cost: O(d) memory (O(1) per batch element when isotropic); ln|Σ|, xᵀΣ⁻¹x, ``color``,
    diag Σ and diag Σ⁻¹ O(d); ``dense()`` O(d²).

    Attributes:
        kind: "var", "std" or "logvar": what ``param`` holds.
        param: v, √v or ln v, shape (*batch, d), or (*batch, 1) for v I.
        size: d, the dimension.

    Examples:
        >>> import numpy as np, gaussdiv
        >>> cov = gaussdiv.Gaussian.diag(np.zeros(2), var=np.ones(2)).cov
        >>> isinstance(cov, gaussdiv.DiagonalCovariance), cov.kind, cov.param.shape
        (True, 'var', (2,))
        >>> gaussdiv.Gaussian.standard(1000).cov.param.shape   # I in O(1)
        (1,)
    """

    kind: Kind
    param: Any
    size: int

    array_fields: ClassVar[dict[str, int]] = {"param": 1}

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

    def checked(self, name: str) -> None:
        type(self).from_param(self.param, self.kind, self.dim)

    @property
    def dim(self) -> int:
        return self.size

    @property
    def batch_shape(self) -> tuple[int, ...]:
        return tuple(self.param.shape[:-1])

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

    def inverse_var(self) -> Any:
        """1/v, shape (*batch, d) or (*batch, 1)."""
        if self.kind == "logvar":
            return self.ops.xp.exp(-self.param)
        if self.kind == "std":
            return 1 / (self.param * self.param)
        return 1 / self.param

    def var_dd(self) -> tuple[Any, Any]:
        """v = hi + lo to ≈ u² (exact for variances; error-free square or exp otherwise)."""
        if self.kind == "var":
            return self.param, 0.0 * self.param
        if self.kind == "std":
            return square_dd(self.param, self.ops.xp)
        return exp_dd(self.param, self.ops.xp)

    def logdet(self) -> Any:
        return sum_over_dim(self.log_var(), self.size, self.ops)

    def mahalanobis(self, x: Any) -> Any:
        """Σ xᵢ²/vᵢ; for log-variances Σ (xᵢ e^(−ℓᵢ/2))², with 0 where xᵢ = 0 even when e^(−ℓᵢ/2)
        overflows (ℓ below the float range of v)."""
        xp = self.ops.xp
        fused = self.ops.diagonal_mahalanobis(x, self.param, self.kind)
        if fused is not None:
            return fused
        if self.kind == "var":
            return self.ops.sum(x * x / self.param, -1)
        if self.kind == "std":
            w = x / self.param
        else:
            w = xp.where(x == 0, 0.0 * x, x * xp.exp(-0.5 * self.param))
        return self.ops.sum(w * w, -1)

    def color(self, z: Any) -> Any:
        return self.std() * z

    def diagonal(self) -> Any:
        return self.full(self.var())

    def inverse_diagonal(self) -> Any:
        return self.full(self.inverse_var())

    def matmul(self, x: Any) -> Any:
        return self.var()[..., None] * x

    def dense(self) -> Any:
        return self.as_matrix(self.diagonal())

    def dense_dd(self) -> tuple[Any, Any]:
        hi, lo = self.var_dd()
        return self.as_matrix(self.full(hi)), self.as_matrix(self.full(lo))

    def to_full(self) -> FullCovariance:
        """diag(v) as its factor diag(√v), held as a given factor: nothing to factor, check or
        correct (exact for standard deviations; √v rounds once otherwise)."""
        return FullCovariance(None, self.as_matrix(self.full(self.std())))

    def condition_bound(self) -> Any:
        return 1.0 + 0.0 * self.param[..., 0]  # D^-½ΣD^-½ = I

    def full(self, x: Any) -> Any:
        """A (…, d) or (…, 1) array broadcast to (…, d)."""
        return self.ops.xp.broadcast_to(x, (*x.shape[:-1], self.size))

    def as_matrix(self, diagonal: Any) -> Any:
        """diag(x) for x (…, d), as a dense (…, d, d) array (tests and dense relations)."""
        return diagonal[..., None] * self.ops.eye(self.size, self.dtype, like=self.param)


def sum_over_dim(x: Any, d: int, ops: Any) -> Any:
    """Σ over the last axis of length d, where a length-1 axis stands for d equal entries."""
    if x.shape[-1] == 1 and d != 1:
        return d * x[..., 0]
    return ops.sum(x, -1)

"""The frozen :class:`Gaussian`: a mean and a covariance structure, batched."""

from __future__ import annotations

from typing import Any

import numpy as np

from gaussdiv._backend import backend_of
from gaussdiv._validation import check_dtype, check_finite, check_vector
from gaussdiv.covariance import Covariance, DenseCovariance
from gaussdiv.errors import DimensionMismatchError, DtypeError, ShapeError


class Gaussian:
    """A multivariate normal N(μ, Σ), or a batch of them; immutable.

    ``Gaussian(mean, cov)`` takes a full covariance matrix; the named constructors take the
    other ways people hold a Gaussian. Inputs are validated once and copied, so later changes
    to the caller's arrays do not reach the Gaussian, and nothing the caller passed is modified.

    Shapes: ``mean`` (*batch, d); ``cov`` (*batch, d, d). Leading dimensions of the two
    broadcast against each other (a shared covariance for a batch of means, and so on), and
    the Gaussian's ``batch_shape`` is the broadcast shape.

    dtype: float32 (or narrower) inputs are computed in float32, everything else in float64;
    integer inputs are accepted and cast to float64; boolean and complex inputs are rejected.
    """

    __slots__ = ("_batch_shape", "cov", "mean")

    mean: Any
    cov: Covariance

    def __init__(self, mean: Any, cov: Any) -> None:
        if isinstance(cov, Covariance):
            structure = cov
        else:
            dtype = _compute_dtype(mean, cov)
            structure = DenseCovariance.from_matrix(cov, "covariance", name="cov", dtype=dtype)
        self._init(mean, structure)

    # ------------------------------------------------------------------ constructors
    @classmethod
    def from_precision(cls, mean: Any, precision: Any) -> Gaussian:
        """N(μ, Λ⁻¹) from the precision matrix Λ (*batch, d, d); Λ is never inverted."""
        dtype = _compute_dtype(mean, precision)
        return cls(mean, DenseCovariance.from_matrix(precision, "precision", name="precision",
                                                     dtype=dtype))

    @classmethod
    def from_scale_tril(cls, mean: Any, scale_tril: Any) -> Gaussian:
        """N(μ, L Lᵀ) from the lower Cholesky factor L of the covariance (positive diagonal)."""
        dtype = _compute_dtype(mean, scale_tril)
        return cls(mean, DenseCovariance.from_factor(scale_tril, "covariance", name="scale_tril",
                                                     dtype=dtype))

    @classmethod
    def from_precision_tril(cls, mean: Any, precision_tril: Any) -> Gaussian:
        """N(μ, (R Rᵀ)⁻¹) from the lower Cholesky factor R of the precision Λ = R Rᵀ."""
        dtype = _compute_dtype(mean, precision_tril)
        return cls(mean, DenseCovariance.from_factor(precision_tril, "precision",
                                                     name="precision_tril", dtype=dtype))

    # ------------------------------------------------------------------ properties
    @property
    def dim(self) -> int:
        """d, the dimension of the space."""
        return self.cov.dim

    @property
    def batch_shape(self) -> tuple[int, ...]:
        return self._batch_shape

    @property
    def dtype(self) -> Any:
        return self.cov.dtype

    def covariance_matrix(self) -> Any:
        """Σ as a dense (*batch, d, d) array (for inspection and tests)."""
        return self.cov.dense()

    def __repr__(self) -> str:
        return (f"Gaussian(d={self.dim}, batch_shape={self.batch_shape}, dtype={self.dtype}, "
                f"cov={self.cov!r})")

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError("Gaussian is immutable; build a new one instead")

    # ------------------------------------------------------------------ internals
    def _init(self, mean: Any, structure: Covariance) -> None:
        ops = backend_of(mean)
        check_dtype(mean, "mean", ops)
        mean_dtype = _float_kind(mean)
        if np.dtype(mean_dtype).itemsize > np.dtype(structure.dtype).itemsize:
            raise DtypeError(
                f"mean is {np.dtype(mean_dtype)} but the covariance structure is "
                f"{structure.dtype}; build the covariance in {np.dtype(mean_dtype)} too"
            )
        mean = np.array(mean, dtype=structure.dtype, copy=True)
        mean.flags.writeable = False
        check_vector(mean, "mean")
        check_finite(mean, "mean", ops)
        if mean.shape[-1] != structure.dim:
            raise DimensionMismatchError(
                f"mean has dimension d={mean.shape[-1]} (shape {mean.shape}) but the covariance "
                f"is {structure.dim}×{structure.dim}"
            )
        try:
            batch = np.broadcast_shapes(mean.shape[:-1], structure.batch_shape)
        except ValueError:
            raise ShapeError(
                f"batch shapes do not broadcast: mean has batch shape {mean.shape[:-1]}, the "
                f"covariance {structure.batch_shape}"
            ) from None
        object.__setattr__(self, "mean", mean)
        object.__setattr__(self, "cov", structure)
        object.__setattr__(self, "_batch_shape", tuple(batch))


def _float_kind(x: Any) -> Any:
    dtype = np.asarray(x).dtype
    if dtype.kind == "f" and dtype.itemsize <= 4:
        return np.float32
    return np.float64


def _compute_dtype(*arrays: Any) -> Any:
    """float32 when every input is float32 or narrower, float64 otherwise."""
    kinds = [_float_kind(a) for a in arrays]
    return np.float32 if all(k is np.float32 for k in kinds) else np.float64

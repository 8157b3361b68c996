"""The frozen :class:`Gaussian`: a mean and a covariance structure, batched."""

from __future__ import annotations

from typing import Any

import numpy as np

from gaussdiv._backend import backend_of
from gaussdiv._validation import check_dtype, check_finite, check_vector, float_dtype
from gaussdiv.covariance import Covariance
from gaussdiv.dense import DenseCovariance
from gaussdiv.diagonal import DiagonalCovariance
from gaussdiv.errors import DimensionMismatchError, DtypeError, GaussianError, ShapeError
from gaussdiv.kronecker import KroneckerCovariance
from gaussdiv.lowrank import LowRankCovariance


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
            dtype = float_dtype(mean, cov)
            structure = DenseCovariance.from_matrix(cov, "covariance", name="cov", dtype=dtype)
        self._init(mean, structure)

    # ------------------------------------------------------------------ constructors
    @classmethod
    def from_precision(cls, mean: Any, precision: Any) -> Gaussian:
        """N(μ, Λ⁻¹) from the precision matrix Λ (*batch, d, d); Λ is never inverted."""
        dtype = float_dtype(mean, precision)
        return cls(mean, DenseCovariance.from_matrix(precision, "precision", name="precision",
                                                     dtype=dtype))

    @classmethod
    def from_scale_tril(cls, mean: Any, scale_tril: Any) -> Gaussian:
        """N(μ, L Lᵀ) from the lower Cholesky factor L of the covariance (positive diagonal)."""
        dtype = float_dtype(mean, scale_tril)
        return cls(mean, DenseCovariance.from_factor(scale_tril, "covariance", name="scale_tril",
                                                     dtype=dtype))

    @classmethod
    def from_precision_tril(cls, mean: Any, precision_tril: Any) -> Gaussian:
        """N(μ, (R Rᵀ)⁻¹) from the lower Cholesky factor R of the precision Λ = R Rᵀ."""
        dtype = float_dtype(mean, precision_tril)
        return cls(mean, DenseCovariance.from_factor(precision_tril, "precision",
                                                     name="precision_tril", dtype=dtype))

    @classmethod
    def diag(cls, mean: Any, *, var: Any = None, std: Any = None,
             logvar: Any = None) -> Gaussian:
        """N(μ, diag(v)) from exactly one of ``var`` (v), ``std`` (√v) or ``logvar`` (ln v).

        Shapes (*batch, d). Log-variances (a VAE encoder's output) are kept as given, so KL
        stays exact from ln v = −700 to +700; KL against another diagonal or the standard
        normal costs O(d).
        """
        given = {k: v for k, v in (("var", var), ("std", std), ("logvar", logvar))
                 if v is not None}
        if len(given) != 1:
            raise GaussianError("Gaussian.diag takes exactly one of var=, std= or logvar=; got "
                                + (", ".join(given) or "none"))
        (kind, param), = given.items()
        structure = DiagonalCovariance.from_param(param, kind, dtype=float_dtype(mean, param))
        return cls(mean, structure)

    @classmethod
    def isotropic(cls, mean: Any, var: Any) -> Gaussian:
        """N(μ, v I) with one variance v per batch element: mean (*batch, d), var (*batch)."""
        dtype = float_dtype(mean, var)
        mean_shape = np.shape(mean)
        if len(mean_shape) < 1:
            raise ShapeError("mean must have shape (..., d); got a scalar")
        param = np.asarray(var)[..., None]
        return cls(mean, DiagonalCovariance.from_param(param, "var", dim=mean_shape[-1],
                                                       dtype=dtype))

    @classmethod
    def standard(cls, d: int, dtype: Any = np.float64) -> Gaussian:
        """The standard normal N(0, I_d), stored in O(d) for the mean and O(1) for Σ."""
        if isinstance(d, bool) or not isinstance(d, int | np.integer) or d < 1:
            raise ShapeError(f"d must be a positive integer, got {d!r}")
        identity = DiagonalCovariance.from_param(np.ones(1, dtype=dtype), "var", dim=int(d),
                                                 dtype=dtype)
        return cls(np.zeros(int(d), dtype=dtype), identity)

    @classmethod
    def lowrank(cls, mean: Any, factor: Any, var: Any) -> Gaussian:
        """N(μ, W Wᵀ + diag(v)): factor W (*batch, d, k), var v (*batch, d) positive.

        Costs O(d k²) once (a k×k capacitance Cholesky); never forms the d×d matrix.
        """
        dtype = float_dtype(mean, factor, var)
        return cls(mean, LowRankCovariance.from_parts(factor, var, dtype=dtype))

    @classmethod
    def kronecker(cls, mean: Any, a: Any, b: Any) -> Gaussian:
        """N(μ, A ⊗ B): a (*batch, p, p), b (*batch, q, q) covariances, mean (*batch, p q).

        The entry of x at index i q + j pairs row i of A with row j of B (row-major
        vectorisation of a p×q matrix). Never expanded to the d×d matrix.
        """
        dtype = float_dtype(mean, a, b)
        factor_a = DenseCovariance.from_matrix(a, "covariance", name="a", dtype=dtype)
        factor_b = DenseCovariance.from_matrix(b, "covariance", name="b", dtype=dtype)
        return cls(mean, KroneckerCovariance(factor_a, factor_b))

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
        mean_dtype = float_dtype(mean)
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

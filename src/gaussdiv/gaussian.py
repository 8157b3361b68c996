"""The frozen :class:`Gaussian`: a mean and a covariance structure, batched."""

from __future__ import annotations

from typing import Any

import numpy as np

from gaussdiv._backend import (
    ArrayContext,
    backend_of,
    broadcast_shapes,
    context_of,
    first_array,
    framework_of,
)
from gaussdiv._validation import check_dtype, check_finite, check_vector, float_dtype
from gaussdiv.covariance import Covariance
from gaussdiv.dense import DenseCovariance
from gaussdiv.diagonal import DiagonalCovariance
from gaussdiv.errors import (
    BackendMismatchError,
    DimensionMismatchError,
    DtypeError,
    GaussianError,
    ShapeError,
)
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

    Arrays: NumPy arrays, PyTorch tensors or JAX arrays (one framework per Gaussian; Python
    lists and scalars go with any). Results come back in the same framework, on the same device.

    dtype: float32 inputs are computed in float32, everything else in float64; float16 and
    bfloat16 are computed in float32 and results returned in the input's dtype; integer inputs
    are accepted and cast to float64; boolean and complex inputs are rejected.
    """

    __slots__ = ("_batch_shape", "_result_dtype", "cov", "mean")

    mean: Any
    cov: Covariance

    def __init__(self, mean: Any, cov: Any) -> None:
        if isinstance(cov, Covariance):
            structure = cov
        else:
            structure = DenseCovariance.from_matrix(cov, "covariance", name="cov",
                                                    ctx=_inputs(mean=mean, cov=cov))
        self._init(mean, structure)

    # ------------------------------------------------------------------ constructors
    @classmethod
    def from_precision(cls, mean: Any, precision: Any) -> Gaussian:
        """N(μ, Λ⁻¹) from the precision matrix Λ (*batch, d, d); Λ is never inverted."""
        return cls(mean, DenseCovariance.from_matrix(precision, "precision", name="precision",
                                                     ctx=_inputs(mean=mean, precision=precision)))

    @classmethod
    def from_scale_tril(cls, mean: Any, scale_tril: Any) -> Gaussian:
        """N(μ, L Lᵀ) from the lower Cholesky factor L of the covariance (positive diagonal)."""
        return cls(mean, DenseCovariance.from_factor(scale_tril, "covariance", name="scale_tril",
                                                     ctx=_inputs(mean=mean, scale_tril=scale_tril)))

    @classmethod
    def from_precision_tril(cls, mean: Any, precision_tril: Any) -> Gaussian:
        """N(μ, (R Rᵀ)⁻¹) from the lower Cholesky factor R of the precision Λ = R Rᵀ."""
        ctx = _inputs(mean=mean, precision_tril=precision_tril)
        return cls(mean, DenseCovariance.from_factor(precision_tril, "precision",
                                                     name="precision_tril", ctx=ctx))

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
        ctx = _inputs(mean=mean, **{kind: param})
        structure = DiagonalCovariance.from_param(param, kind, ctx=ctx)
        return cls(mean, structure)

    @classmethod
    def isotropic(cls, mean: Any, var: Any) -> Gaussian:
        """N(μ, v I) with one variance v per batch element: mean (*batch, d), var (*batch)."""
        ctx = _inputs(mean=mean, var=var)
        mean_shape = tuple(getattr(mean, "shape", np.shape(mean)))
        if len(mean_shape) < 1:
            raise ShapeError("mean must have shape (..., d); got a scalar")
        check_dtype(var, "var", ctx.ops)
        param = ctx.ops.asarray(var, ctx.dtype, ctx.like)[..., None]
        return cls(mean, DiagonalCovariance.from_param(param, "var", dim=mean_shape[-1], ctx=ctx))

    @classmethod
    def standard(cls, d: int, dtype: Any = np.float64, *, like: Any = None) -> Gaussian:
        """The standard normal N(0, I_d), stored in O(d) for the mean and O(1) for Σ.

        ``like``: an array whose framework, device and dtype the Gaussian takes (e.g. a torch
        tensor); otherwise NumPy in ``dtype``.
        """
        if isinstance(d, bool) or not isinstance(d, int | np.integer) or d < 1:
            raise ShapeError(f"d must be a positive integer, got {d!r}")
        ctx = context_of(like) if like is not None else ArrayContext(
            context_of().ops, np.dtype(dtype), None)
        g = object.__new__(cls)  # nothing to validate: the arrays are made right here
        g._set(ctx.freeze(np.zeros(int(d))),
               DiagonalCovariance("var", ctx.freeze(np.ones(1)), int(d)), (),
               ctx.ops.framework_dtype(ctx.dtype))
        return g

    @classmethod
    def lowrank(cls, mean: Any, factor: Any, var: Any) -> Gaussian:
        """N(μ, W Wᵀ + diag(v)): factor W (*batch, d, k), var v (*batch, d) positive.

        Costs O(d k²) once (a k×k capacitance Cholesky); never forms the d×d matrix.
        """
        ctx = _inputs(mean=mean, factor=factor, var=var)
        return cls(mean, LowRankCovariance.from_parts(factor, var, ctx=ctx))

    @classmethod
    def kronecker(cls, mean: Any, a: Any, b: Any) -> Gaussian:
        """N(μ, A ⊗ B): a (*batch, p, p), b (*batch, q, q) covariances, mean (*batch, p q).

        The entry of x at index i q + j pairs row i of A with row j of B (row-major
        vectorisation of a p×q matrix). Never expanded to the d×d matrix.
        """
        ctx = _inputs(mean=mean, a=a, b=b)
        factor_a = DenseCovariance.from_matrix(a, "covariance", name="a", ctx=ctx)
        factor_b = DenseCovariance.from_matrix(b, "covariance", name="b", ctx=ctx)
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
        """The dtype results come back in (the framework's own dtype object)."""
        return self._result_dtype

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
        ops = structure.ops
        mean_framework = framework_of(mean)
        if mean_framework is not None and mean_framework is not ops:
            raise BackendMismatchError(
                f"mean is a {mean_framework.name} array but the covariance is {ops.name}; "
                "build both from one framework")
        mean_dtype = check_dtype(mean, "mean", ops)
        if mean_dtype.kind == "f" and mean_dtype.itemsize > structure.dtype.itemsize:
            raise DtypeError(
                f"mean is {mean_dtype} but the covariance structure is {structure.dtype}; "
                f"build the covariance in {mean_dtype} too")
        half = mean_dtype.kind == "f" and mean_dtype.itemsize == 2
        result_dtype = mean.dtype if half else ops.framework_dtype(structure.dtype)
        mean = ops.freeze(mean, structure.dtype, _any_array(structure))
        check_vector(mean, "mean")
        check_finite(mean, "mean", ops)
        if mean.shape[-1] != structure.dim:
            raise DimensionMismatchError(
                f"mean has dimension d={mean.shape[-1]} (shape {tuple(mean.shape)}) but the "
                f"covariance is {structure.dim}×{structure.dim}")
        try:
            batch = broadcast_shapes(tuple(mean.shape[:-1]), structure.batch_shape)
        except ValueError:
            raise ShapeError(
                f"batch shapes do not broadcast: mean has batch shape {tuple(mean.shape[:-1])}, "
                f"the covariance {structure.batch_shape}") from None
        self._set(mean, structure, tuple(batch), result_dtype)

    def _set(self, mean: Any, cov: Covariance, batch_shape: tuple[int, ...],
             result_dtype: Any) -> None:
        """Store the validated parts (the only writes an immutable Gaussian takes)."""
        object.__setattr__(self, "mean", mean)
        object.__setattr__(self, "cov", cov)
        object.__setattr__(self, "_batch_shape", batch_shape)
        object.__setattr__(self, "_result_dtype", result_dtype)


def _inputs(**named: Any) -> ArrayContext:
    """The constructor's array context (see context_of), each input's dtype checked under its
    own name."""
    ops = backend_of(*named.values())
    dtypes = [check_dtype(value, name, ops) for name, value in named.items()]
    return ArrayContext(ops, float_dtype(*dtypes), first_array(*named.values()))


def check_gaussian(value: Any, name: str) -> Gaussian:
    """``value`` itself, or TypeError naming the argument when it is not a Gaussian."""
    if not isinstance(value, Gaussian):
        raise TypeError(f"{name} must be a gaussdiv.Gaussian, got {type(value).__name__}")
    return value


def _any_array(structure: Covariance) -> Any:
    """One of the structure's arrays, whose device the mean joins."""
    for name in ("factor", "param", "a"):
        value = getattr(structure, name, None)
        if value is not None:
            return value if name != "a" else value.factor
    return None

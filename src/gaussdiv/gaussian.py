"""The frozen :class:`Gaussian`: a mean and a covariance structure, batched; a value.

Gaussians are values: they pickle, copy, index (``g[0]``, ``g[:, 1:]``), reshape, broadcast,
stack and concatenate like arrays over their batch axes, and are JAX pytrees (arguments of
``jax.jit``, ``vmap`` and ``grad``). They define no ``==`` of their own (identity, as for
functions of arrays: compare the arrays you care about).
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Sequence
from typing import Any, TypeVar, overload

import numpy as np

from gaussdiv.backends import (
    NUMPY,
    ArrayContext,
    Backend,
    backend_of,
    broadcast_shapes,
    context_of,
    first_array,
    framework_of,
)
from gaussdiv.errors import (
    BackendMismatchError,
    DimensionMismatchError,
    DtypeError,
    GaussianError,
    NotPositiveDefiniteError,
    ShapeError,
)
from gaussdiv.structures import (
    Covariance,
    DiagonalCovariance,
    FullCovariance,
    FullPrecision,
    KroneckerCovariance,
    LowRankCovariance,
    SemidefiniteCovariance,
)
from gaussdiv.types import Array
from gaussdiv.validation import check_dtype, check_finite, check_vector, float_dtype


class Lazy:
    """A Gaussian whose arrays are not in memory (Dask arrays): the functions marked
    :func:`entry_point` hand themselves to its :meth:`apply` instead of computing."""

    def apply(self, function: Callable[..., Any], args: tuple[Any, ...],
              kwargs: dict[str, Any]) -> Any:
        raise NotImplementedError


F = TypeVar("F", bound=Callable[..., Any])


@overload
def entry_point(function: F, *, semidefinite: bool = False) -> F: ...


@overload
def entry_point(function: None = None, *, semidefinite: bool = False) -> Callable[[F], F]: ...


def entry_point(function: F | None = None, *, semidefinite: bool = False) -> Any:
    """Mark a public function of Gaussians: torch.distributions normals and frozen SciPy
    ``multivariate_normal`` arguments are converted to Gaussians first (``from_torch``,
    ``from_scipy``); when an argument is a lazy Gaussian (Dask), the call is handed to it
    (one task per chunk, a Dask result); otherwise the function runs as written.

    ``@entry_point(semidefinite=True)`` marks the functions defined for degenerate Gaussians
    (``Gaussian.semidefinite``); every other one refuses them with a NotPositiveDefiniteError
    naming the argument."""
    if function is None:
        return functools.partial(entry_point, semidefinite=semidefinite)
    names = list(inspect.signature(function).parameters)

    @functools.wraps(function)
    def call(*args: Any, **kwargs: Any) -> Any:
        if any(_foreign(v) for v in (*args, *kwargs.values())):
            args = tuple(_converted(v) for v in args)
            kwargs = {k: _converted(v) for k, v in kwargs.items()}
        frameworks = {v.ops for v in (*args, *kwargs.values()) if isinstance(v, Gaussian)}
        if len(frameworks) > 1:  # a NumPy N(0, I) holds no data: it joins its partner's
            args, kwargs = _standard_adapted(args, kwargs)
        if not semidefinite:
            refuse_semidefinite(function.__name__,
                                (*zip(names, args, strict=False), *kwargs.items()))
        for value in (*args, *kwargs.values()):
            if isinstance(value, Lazy):
                return value.apply(function, args, kwargs)
        return function(*args, **kwargs)

    return call


def refuse_semidefinite(function: str, named: Sequence[tuple[str, Any]]) -> None:
    """NotPositiveDefiniteError for the first of the (name, argument) pairs that is a Gaussian
    with a semidefinite covariance, for which ``function`` is not defined."""
    for name, value in named:
        if (isinstance(value, Gaussian) and isinstance(value.cov, SemidefiniteCovariance)) or (
                isinstance(value, Lazy) and getattr(value, "constructor", None) == "semidefinite"):
            raise NotPositiveDefiniteError(
                f"{function}: {name} has a semidefinite covariance (Gaussian.semidefinite), "
                f"for which {function} is not defined (a singular Σ has no density: "
                "divergences other than W₂ are infinite or undefined); wasserstein and sample "
                "accept it; build it with Gaussian(mean, cov) if Σ is positive definite")


def _standard_adapted(args: tuple[Any, ...], kwargs: dict[str, Any]
                      ) -> tuple[tuple[Any, ...], dict[str, Any]]:
    """Arguments with every NumPy ``Gaussian.standard`` rebuilt in the framework, dtype and
    device of the first non-NumPy Gaussian among them."""
    partner = next(v for v in (*args, *kwargs.values())
                   if isinstance(v, Gaussian) and v.ops.name != "numpy")

    def adapted(value: Any) -> Any:
        if isinstance(value, Gaussian) and value.ops.name == "numpy" and _is_standard(value):
            return Gaussian.standard(value.dim, like=partner.mean).broadcast_to(
                value.batch_shape)
        return value

    return tuple(adapted(v) for v in args), {k: adapted(v) for k, v in kwargs.items()}


def _is_standard(g: Gaussian) -> bool:
    """Whether g is N(0, I) held as ``Gaussian.standard`` holds it (no data of its own)."""
    cov = g.cov
    return isinstance(cov, DiagonalCovariance) and cov.kind == "var" and \
        cov.param.size == 1 and float(cov.param.reshape(-1)[0]) == 1.0 and \
        not np.any(g.mean)


def _foreign(value: Any) -> bool:
    """Whether ``value`` is another library's Gaussian distribution object."""
    module = type(value).__module__
    return module.startswith("torch.distributions") or (
        module.startswith("scipy.stats") and type(value).__name__ == "multivariate_normal_frozen")


def _converted(value: Any) -> Any:
    if not _foreign(value):
        return value
    from gaussdiv.interop import from_scipy, from_torch

    return from_torch(value) if type(value).__module__.startswith("torch") else \
        from_scipy(value)


def _lazy(constructor: str, **named: Any) -> Any:
    """A lazy Gaussian when some input is a Dask array (chunked along batch axes), else None."""
    if not any(type(v).__module__.split(".")[0] == "dask" for v in named.values()):
        return None
    from gaussdiv.lazy.dask_gaussian import DaskGaussian

    return DaskGaussian(constructor, named)


class Gaussian:
    """A multivariate normal N(μ, Σ), or a batch of them; immutable.

    Its density is N(x; μ, Σ) = (2π)^(−d/2) |Σ|^(−1/2) exp(−½ (x − μ)ᵀ Σ⁻¹ (x − μ)), eq. (4).
    ``Gaussian(mean, cov)`` takes a full covariance matrix; the named constructors take the
    other ways people hold a Gaussian — :meth:`from_precision`, :meth:`from_scale_tril`,
    :meth:`from_precision_tril`, :meth:`diag`, :meth:`isotropic`, :meth:`standard`,
    :meth:`lowrank`, :meth:`kronecker`, :meth:`semidefinite` (Σ may be singular: W₂ and
    sampling only) — and keep it in that form (``cov``, a
    :class:`Covariance`), which sets the cost of every function. Inputs are validated once and
    copied, so later changes to the caller's arrays do not reach the Gaussian, and nothing the
    caller passed is modified. Attributes cannot be set (AttributeError); a copy is the value
    itself.

    Shapes: ``mean`` (*batch, d); ``cov`` (*batch, d, d). Leading dimensions of the two
    broadcast against each other (a shared covariance for a batch of means, and so on), and
    the Gaussian's ``batch_shape`` is the broadcast shape. Two scalars, ``Gaussian(0.0, 1.0)``,
    are N(μ, σ²) in one dimension.

    Interop: ``log_prob``, ``sample``/``rsample``, ``entropy``, ``loc``, ``variance``,
    ``stddev``, ``covariance_matrix``, ``precision_matrix``, ``scale_tril``, ``event_shape``,
    ``expand`` and ``to`` mirror ``torch.distributions.MultivariateNormal`` (each delegates to
    the library's function or structure).

    Arrays: NumPy arrays, PyTorch tensors or JAX arrays (one framework per Gaussian; Python
    lists and scalars go with any). Results come back in the same framework, on the same device.
    Dask arrays (chunked along batch axes) give a lazy Gaussian instead.

    dtype: float32 inputs are computed in float32, everything else in float64; float16 and
    bfloat16 are computed in float32 and results returned in the input's dtype; integer inputs
    are accepted and cast to float64; boolean and complex inputs are rejected.

    Args:
        mean: μ, shape (*batch, d).
        cov: Σ, shape (*batch, d, d), symmetric positive definite (or a :class:`Covariance`
            structure, taken as it is).

    Raises:
        ShapeError: ``cov`` is not (..., d, d), ``mean`` is a scalar beside a matrix, d = 0,
            a ragged list, or the batch shapes of ``mean`` and ``cov`` do not broadcast.
        DimensionMismatchError: ``mean`` has another d than ``cov``.
        NonFiniteError: a NaN or infinite entry (the message gives its index).
        NotSymmetricError: |Σ − Σᵀ| exceeds √eps × the largest entry.
        NotPositiveDefiniteError: Σ is not positive definite, or numerically singular in the
            compute dtype (the message gives the batch index and the smallest eigenvalue).
        DtypeError: complex, boolean or non-numeric input.
        BackendMismatchError: ``mean`` and ``cov`` are arrays of two frameworks.

    Examples:
        >>> import numpy as np, gaussdiv
        >>> p = gaussdiv.Gaussian([0.0, 1.0], [[2.0, 0.5], [0.5, 1.0]])
        >>> p.dim, p.batch_shape, isinstance(p.cov, gaussdiv.FullCovariance)
        (2, (), True)
        >>> many = gaussdiv.Gaussian(np.zeros((3, 2)), np.eye(2))   # 3 means, one shared Σ
        >>> many.batch_shape, many[0].batch_shape, many.reshape(3, 1).batch_shape
        ((3,), (), (3, 1))
        >>> q = gaussdiv.Gaussian.diag(np.zeros(2), var=[2.0, 0.5])  # held as variances: O(d)
        >>> isinstance(q.cov, gaussdiv.DiagonalCovariance), gaussdiv.kl(many, q).shape
        (True, (3,))
        >>> p.mean = np.zeros(2)
        Traceback (most recent call last):
            ...
        AttributeError: Gaussian is immutable; build a new one instead
    """

    __slots__ = ("_result_dtype", "cov", "feature_names", "mean")

    mean: Any
    cov: Covariance
    #: Names of the d coordinates (``gaussdiv.fit`` of a DataFrame keeps its column labels), or
    #: None. Carried through indexing, reshaping, moving and pickling; two Gaussians with
    #: different names are refused by every function of a pair.
    feature_names: tuple[str, ...] | None

    def __new__(cls, mean: Any = None, cov: Any = None) -> Any:
        lazy = None if isinstance(cov, Covariance) else _lazy("Gaussian", mean=mean, cov=cov)
        return object.__new__(cls) if lazy is None else lazy

    def __init__(self, mean: Any, cov: Any) -> None:
        if isinstance(cov, Covariance):
            structure = cov
        else:
            if _ndim(mean) == 0 and _ndim(cov) == 0:  # N(μ, σ²) on the line: d = 1
                mean, cov = _reshaped(mean, (1,)), _reshaped(cov, (1, 1))
            structure = FullCovariance.from_matrix(cov, name="cov",
                                                   ctx=_inputs(mean=mean, cov=cov))
        self._init(mean, structure)

    # ------------------------------------------------------------------ constructors
    @classmethod
    def from_precision(cls, mean: Any, precision: Any) -> Gaussian:
        """N(μ, Λ⁻¹) from the precision matrix Λ = Σ⁻¹; Λ is never inverted.

        Λ is factored once (Λ = R Rᵀ, O(d³)); ln|Σ| = −ln|Λ| and (x − μ)ᵀ Λ (x − μ) come from
        R, so an ill-conditioned Λ (a graphical model, a Laplace approximation) loses nothing
        to an inversion.

        Args:
            mean: μ, shape (*batch, d).
            precision: Λ, shape (*batch, d, d), symmetric positive definite.

        Returns:
            A Gaussian of batch shape broadcast(mean.shape[:-1], precision.shape[:-2]), held
            as a :class:`FullPrecision`.

        Raises:
            ShapeError: ``precision`` is not (..., d, d), ``mean`` is a scalar, or the batch
                shapes do not broadcast.
            DimensionMismatchError: ``mean`` has another d than ``precision``.
            NonFiniteError: a NaN or infinite entry.
            NotSymmetricError: Λ is not symmetric (beyond √eps × its largest entry).
            NotPositiveDefiniteError: Λ is not positive definite, or numerically singular.
            DtypeError: complex, boolean or non-numeric input.
            BackendMismatchError: ``mean`` and ``precision`` are arrays of two frameworks.

        Examples:
            >>> import numpy as np, gaussdiv
            >>> p = gaussdiv.Gaussian.from_precision([0.0, 0.0], [[4.0, 0.0], [0.0, 0.25]])
            >>> p.covariance_matrix.tolist()   # Σ = Λ⁻¹
            [[0.25, 0.0], [0.0, 4.0]]
        """
        if (lazy := _lazy("from_precision", mean=mean, precision=precision)) is not None:
            return lazy  # type: ignore[no-any-return]
        ctx = _inputs(mean=mean, precision=precision)
        return cls(mean, FullPrecision.from_matrix(precision, name="precision", ctx=ctx))

    @classmethod
    def from_scale_tril(cls, mean: Any, scale_tril: Any) -> Gaussian:
        """N(μ, L Lᵀ) from the lower Cholesky factor L of the covariance Σ = L Lᵀ.

        L is kept as given (exact): nothing is factored, and validation costs O(d²).

        Args:
            mean: μ, shape (*batch, d).
            scale_tril: L, shape (*batch, d, d), lower triangular with a positive diagonal.

        Returns:
            A Gaussian of batch shape broadcast(mean.shape[:-1], scale_tril.shape[:-2]), held
            as a :class:`FullCovariance` given by its factor.

        Raises:
            ShapeError: ``scale_tril`` is not (..., d, d) or has non-zero entries above the
                diagonal, ``mean`` is a scalar, or the batch shapes do not broadcast.
            DimensionMismatchError: ``mean`` has another d than ``scale_tril``.
            NonFiniteError: a NaN or infinite entry.
            NotPositiveDefiniteError: a diagonal entry of L is ≤ 0.
            DtypeError: complex, boolean or non-numeric input.
            BackendMismatchError: ``mean`` and ``scale_tril`` are arrays of two frameworks.

        Examples:
            >>> import numpy as np, gaussdiv
            >>> p = gaussdiv.Gaussian.from_scale_tril([0.0, 0.0], [[2.0, 0.0], [1.0, 1.0]])
            >>> p.covariance_matrix.tolist()   # L Lᵀ
            [[4.0, 2.0], [2.0, 2.0]]
        """
        if (lazy := _lazy("from_scale_tril", mean=mean, scale_tril=scale_tril)) is not None:
            return lazy  # type: ignore[no-any-return]
        ctx = _inputs(mean=mean, scale_tril=scale_tril)
        return cls(mean, FullCovariance.from_factor(scale_tril, name="scale_tril", ctx=ctx))

    @classmethod
    def from_precision_tril(cls, mean: Any, precision_tril: Any) -> Gaussian:
        """N(μ, (R Rᵀ)⁻¹) from the lower Cholesky factor R of the precision Λ = R Rᵀ.

        R is kept as given (exact) and never inverted: (x − μ)ᵀ Λ (x − μ) = ‖Rᵀ(x − μ)‖² and
        ln|Σ| = −2 Σᵢ ln Rᵢᵢ; validation costs O(d²).

        Args:
            mean: μ, shape (*batch, d).
            precision_tril: R, shape (*batch, d, d), lower triangular with a positive diagonal.

        Returns:
            A Gaussian of batch shape broadcast(mean.shape[:-1], precision_tril.shape[:-2]),
            held as a :class:`FullPrecision` given by its factor.

        Raises:
            ShapeError: ``precision_tril`` is not (..., d, d) or has non-zero entries above the
                diagonal, ``mean`` is a scalar, or the batch shapes do not broadcast.
            DimensionMismatchError: ``mean`` has another d than ``precision_tril``.
            NonFiniteError: a NaN or infinite entry.
            NotPositiveDefiniteError: a diagonal entry of R is ≤ 0.
            DtypeError: complex, boolean or non-numeric input.
            BackendMismatchError: ``mean`` and ``precision_tril`` are arrays of two frameworks.

        Examples:
            >>> import numpy as np, gaussdiv
            >>> p = gaussdiv.Gaussian.from_precision_tril([0.0, 0.0], [[2.0, 0.0], [0.0, 0.5]])
            >>> p.covariance_matrix.tolist()   # Λ = diag(4, 1/4), so Σ = diag(1/4, 4)
            [[0.25, 0.0], [0.0, 4.0]]
        """
        lazy = _lazy("from_precision_tril", mean=mean, precision_tril=precision_tril)
        if lazy is not None:
            return lazy  # type: ignore[no-any-return]
        ctx = _inputs(mean=mean, precision_tril=precision_tril)
        return cls(mean, FullPrecision.from_factor(precision_tril, name="precision_tril",
                                                   ctx=ctx))

    @classmethod
    def diag(cls, mean: Any, *, var: Any = None, std: Any = None,
             logvar: Any = None) -> Gaussian:
        """N(μ, diag(v)) from exactly one of ``var`` (v), ``std`` (√v) or ``logvar`` (ln v).

        The parameter is kept as given. Log-variances (a VAE encoder's output) are used as
        logs, so KL stays exact from ln v = −700 to +700 (eq. (27) against the standard
        normal); KL against another diagonal or the standard normal costs O(d).

        Args:
            mean: μ, shape (*batch, d).
            var: v, shape (*batch, d), every entry > 0.
            std: √v, shape (*batch, d), every entry > 0.
            logvar: ln v, shape (*batch, d), any finite values.

        Returns:
            A Gaussian of batch shape broadcast(mean.shape[:-1], param.shape[:-1]), held as a
            :class:`DiagonalCovariance`.

        Raises:
            GaussianError: not exactly one of ``var``, ``std``, ``logvar`` is given.
            ShapeError: the parameter or ``mean`` is a scalar, or the batch shapes do not
                broadcast.
            DimensionMismatchError: ``mean`` has another d than the parameter.
            NonFiniteError: a NaN or infinite entry.
            NotPositiveDefiniteError: an entry of ``var`` or ``std`` is ≤ 0.
            DtypeError: complex, boolean or non-numeric input.
            BackendMismatchError: ``mean`` and the parameter are arrays of two frameworks.

        Examples:
            >>> import numpy as np, gaussdiv
            >>> q = gaussdiv.Gaussian.diag(np.zeros(2), logvar=np.log([4.0, 0.25]))
            >>> np.round(q.variance, 6).tolist()
            [4.0, 0.25]
            >>> # eq. (27): ½ ((4 − 1 − ln 4) + (1/4 − 1 + ln 4)) = ½ · 9/4
            >>> round(float(gaussdiv.kl(q, gaussdiv.Gaussian.standard(2))), 6)
            1.125
            >>> tiny = gaussdiv.Gaussian.diag([0.0], logvar=[-700.0])  # v = e⁻⁷⁰⁰: ½ (v − 1 + 700)
            >>> float(gaussdiv.kl(tiny, gaussdiv.Gaussian.standard(1)))
            349.5
        """
        given = {k: v for k, v in (("var", var), ("std", std), ("logvar", logvar))
                 if v is not None}
        if len(given) != 1:
            raise GaussianError("Gaussian.diag takes exactly one of var=, std= or logvar=; got "
                                + (", ".join(given) or "none"))
        (kind, param), = given.items()
        if (lazy := _lazy("diag", mean=mean, **{kind: param})) is not None:
            return lazy  # type: ignore[no-any-return]
        ctx = _inputs(mean=mean, **{kind: param})
        return cls(mean, DiagonalCovariance.from_param(param, kind, ctx=ctx))

    @classmethod
    def isotropic(cls, mean: Any, var: Any) -> Gaussian:
        """N(μ, v I) with one variance v per batch element, stored once (O(1) for Σ).

        Args:
            mean: μ, shape (*batch, d).
            var: v, shape (*batch) — a scalar for one Gaussian; every entry > 0. Its axes are
                batch axes: a var of shape (d,) is d Gaussians, not one diagonal (use
                :meth:`diag`).

        Returns:
            A Gaussian of batch shape broadcast(mean.shape[:-1], var.shape), held as an
            isotropic :class:`DiagonalCovariance`.

        Raises:
            ShapeError: ``mean`` is a scalar, or the batch shapes do not broadcast.
            NonFiniteError: a NaN or infinite entry.
            NotPositiveDefiniteError: an entry of ``var`` is ≤ 0.
            DtypeError: complex, boolean or non-numeric input.
            BackendMismatchError: ``mean`` and ``var`` are arrays of two frameworks.

        Examples:
            >>> import numpy as np, gaussdiv
            >>> p = gaussdiv.Gaussian.isotropic(np.zeros((2, 3)), [1.0, 4.0])  # two, d = 3
            >>> p.batch_shape, p.variance.tolist()
            ((2,), [[1.0, 1.0, 1.0], [4.0, 4.0, 4.0]])
        """
        if (lazy := _lazy("isotropic", mean=mean, var=var)) is not None:
            return lazy  # type: ignore[no-any-return]
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

        Its entropy is ½ d (1 + ln 2π), eq. (24) with ln|I| = 0.

        Args:
            d: the dimension, a positive integer.
            dtype: a NumPy floating (or integer: float64) dtype, used when ``like`` is None.
            like: an array whose framework, device and dtype the Gaussian takes (e.g. a torch
                tensor); otherwise NumPy in ``dtype`` — and then, paired with a torch or JAX
                Gaussian in a library function, it takes that partner's framework, dtype and
                device.

        Returns:
            An unbatched Gaussian (batch shape ()), held as an isotropic
            :class:`DiagonalCovariance` with v = 1; float16 and bfloat16 stay in that dtype.

        Raises:
            ShapeError: ``d`` is not a positive integer (a bool or a float is refused).
            DtypeError: ``dtype`` is not a NumPy dtype, or it (or ``like``'s) is complex,
                boolean or non-numeric.

        Examples:
            >>> import gaussdiv
            >>> z = gaussdiv.Gaussian.standard(3)
            >>> z.dim, z.batch_shape, float(gaussdiv.kl(z, z))
            (3, (), 0.0)
            >>> round(float(gaussdiv.entropy(z)), 6)   # 1.5 (1 + ln 2π)
            4.256816
        """
        if isinstance(d, bool) or not isinstance(d, int | np.integer) or d < 1:
            raise ShapeError(f"d must be a positive integer, got {d!r}")
        if like is None:
            try:
                like_dtype = np.dtype(dtype)
            except TypeError:
                raise DtypeError(f"dtype={dtype!r} is not a NumPy dtype") from None
            check_dtype(np.empty(0, like_dtype), "dtype", NUMPY)
            ctx = context_of(np.empty(0, like_dtype))
        else:
            like_dtype = check_dtype(like, "like", backend_of(like))
            ctx = context_of(like)
        cov = DiagonalCovariance("var", ctx.freeze(np.ones(1)), int(d))
        half = like_dtype.kind == "f" and like_dtype.itemsize == 2  # returned as given
        result = (like.dtype if like is not None else like_dtype) if half else \
            ctx.ops.framework_dtype(ctx.dtype)
        return cls._from_parts(ctx.freeze(np.zeros(int(d))), cov, result)

    @classmethod
    def lowrank(cls, mean: Any, factor: Any, var: Any) -> Gaussian:
        """N(μ, W Wᵀ + diag(v)): a rank-k factor W plus positive variances v.

        Costs O(d k²) once (the Cholesky factor of the k×k capacitance I + Wᵀ diag(v)⁻¹ W);
        never forms the d×d matrix: ln|Σ| by the determinant lemma, Σ⁻¹ by Woodbury.

        Args:
            mean: μ, shape (*batch, d).
            factor: W, shape (*batch, d, k).
            var: v, shape (*batch, d), every entry > 0.

        Returns:
            A Gaussian of batch shape broadcast of those of ``mean``, ``factor`` and ``var``,
            held as a :class:`LowRankCovariance`.

        Raises:
            ShapeError: ``factor`` has fewer than 2 axes, ``var`` or ``mean`` is a scalar, or
                the batch shapes do not broadcast.
            DimensionMismatchError: ``factor``'s d rows, ``var``'s d entries and ``mean``'s d
                differ.
            NonFiniteError: a NaN or infinite entry.
            NotPositiveDefiniteError: an entry of ``var`` is ≤ 0.
            DtypeError: complex, boolean or non-numeric input, or W so large against v that
                WᵀD⁻¹W overflows the compute dtype.
            BackendMismatchError: the inputs are arrays of two frameworks.

        Examples:
            >>> import numpy as np, gaussdiv
            >>> w = np.array([[1.0], [1.0]])                      # d = 2, k = 1
            >>> p = gaussdiv.Gaussian.lowrank(np.zeros(2), w, np.ones(2))
            >>> p.covariance_matrix.tolist()                      # W Wᵀ + I
            [[2.0, 1.0], [1.0, 2.0]]
            >>> round(float(p.cov.logdet()), 6)   # ln|Σ| = ln|D| + ln(1 + WᵀD⁻¹W) = ln 3
            1.098612
        """
        if (lazy := _lazy("lowrank", mean=mean, factor=factor, var=var)) is not None:
            return lazy  # type: ignore[no-any-return]
        ctx = _inputs(mean=mean, factor=factor, var=var)
        return cls(mean, LowRankCovariance.from_parts(factor, var, ctx=ctx))

    @classmethod
    def kronecker(cls, mean: Any, a: Any, b: Any) -> Gaussian:
        """N(μ, A ⊗ B), d = p q: a matrix-normal (separable, e.g. space × time) covariance.

        The entry of x at index i q + j pairs row i of A with row j of B (row-major
        vectorisation of a p×q matrix). Never expanded to the d×d matrix: A and B are factored
        once, O(p³ + q³), and ln|Σ| = q ln|A| + p ln|B|.

        Args:
            mean: μ, shape (*batch, p q).
            a: A, shape (*batch, p, p), symmetric positive definite.
            b: B, shape (*batch, q, q), symmetric positive definite.

        Returns:
            A Gaussian of batch shape broadcast of those of ``mean``, ``a`` and ``b``, held as
            a :class:`KroneckerCovariance`.

        Raises:
            ShapeError: ``a`` or ``b`` is not square, ``mean`` is a scalar, or the batch shapes
                do not broadcast.
            DimensionMismatchError: ``mean`` has another d than p q.
            NonFiniteError: a NaN or infinite entry.
            NotSymmetricError: ``a`` or ``b`` is not symmetric.
            NotPositiveDefiniteError: ``a`` or ``b`` is not positive definite.
            DtypeError: complex, boolean or non-numeric input.
            BackendMismatchError: the inputs are arrays of two frameworks.

        Examples:
            >>> import numpy as np, gaussdiv
            >>> p = gaussdiv.Gaussian.kronecker(np.zeros(4), np.diag([1.0, 2.0]),
            ...                                 np.diag([1.0, 3.0]))
            >>> p.dim, p.variance.tolist()           # diag(A ⊗ B) = (1·1, 1·3, 2·1, 2·3)
            (4, [1.0, 3.0, 2.0, 6.0])
        """
        if (lazy := _lazy("kronecker", mean=mean, a=a, b=b)) is not None:
            return lazy  # type: ignore[no-any-return]
        ctx = _inputs(mean=mean, a=a, b=b)
        factor_a = FullCovariance.from_matrix(a, name="a", ctx=ctx)
        factor_b = FullCovariance.from_matrix(b, name="b", ctx=ctx)
        try:
            broadcast_shapes(factor_a.batch_shape, factor_b.batch_shape)
        except ValueError:
            raise ShapeError(f"batch shapes of a {factor_a.batch_shape} and b "
                             f"{factor_b.batch_shape} do not broadcast") from None
        return cls(mean, KroneckerCovariance(factor_a, factor_b))

    @classmethod
    def semidefinite(cls, mean: Any, cov: Any) -> Gaussian:
        """N(μ, Σ) for a positive *semidefinite* Σ, possibly singular (a degenerate Gaussian).

        For covariances that may be rank-deficient — the sample covariance of fewer points than
        dimensions (FID's 2048-d features of 1000 images; pytorch-fid's stored ``mu, sigma``),
        a projection, a point mass (Σ = 0). Such a Gaussian lives on μ + range(Σ) and has no
        density: :func:`gaussdiv.wasserstein`, :func:`gaussdiv.sample` and the moments are
        defined for it, every other function refuses it (NotPositiveDefiniteError naming the
        argument). Σ is decomposed once, Σ = U diag(λ) Uᵀ (O(d³)); eigenvalues at or below
        d·eps·max|λ| (NumPy's ``matrix_rank`` threshold) count as exact zeros. Gradients
        (torch, JAX) flow to the means and to a positive definite partner, and through a
        full-rank Σ; W₂ and the draws are not differentiable with respect to a rank-deficient
        Σ (its repeated zero eigenvalues and √λ at 0), where torch and JAX return NaN.

        Args:
            mean: μ, shape (*batch, d).
            cov: Σ, shape (*batch, d, d), symmetric with no eigenvalue below −d·eps·max|λ|.

        Returns:
            A Gaussian of batch shape broadcast(mean.shape[:-1], cov.shape[:-2]), held as a
            :class:`SemidefiniteCovariance`.

        Raises:
            ShapeError: ``cov`` is not (..., d, d), ``mean`` is a scalar, or the batch shapes
                do not broadcast.
            DimensionMismatchError: ``mean`` has another d than ``cov``.
            NonFiniteError: a NaN or infinite entry.
            NotSymmetricError: |Σ − Σᵀ| exceeds √eps × the largest entry.
            NotSemidefiniteError: Σ has an eigenvalue below −d·eps·max|λ| (the message gives
                the batch index and the eigenvalue).
            DtypeError: complex, boolean or non-numeric input.
            BackendMismatchError: ``mean`` and ``cov`` are arrays of two frameworks.

        Examples:
            >>> import numpy as np, gaussdiv
            >>> flat = gaussdiv.Gaussian.semidefinite([0.0, 0.0], [[1.0, 0.0], [0.0, 0.0]])
            >>> int(flat.cov.rank()), gaussdiv.sample(flat, 3, seed=0)[:, 1].tolist()
            (1, [0.0, 0.0, 0.0])
            >>> q = gaussdiv.Gaussian([0.0, 0.0], np.eye(2))
            >>> float(gaussdiv.wasserstein(flat, q, squared=True))   # (1 − 1)² + (0 − 1)²
            1.0
        """
        if (lazy := _lazy("semidefinite", mean=mean, cov=cov)) is not None:
            return lazy  # type: ignore[no-any-return]
        ctx = _inputs(mean=mean, cov=cov)
        return cls(mean, SemidefiniteCovariance.from_matrix(cov, name="cov", ctx=ctx))

    # ------------------------------------------------------------------ properties
    @property
    def dim(self) -> int:
        """d, the dimension of the space."""
        return self.cov.dim

    @property
    def batch_shape(self) -> tuple[int, ...]:
        """B, the broadcast of the mean's and the covariance's leading shapes."""
        return broadcast_shapes(tuple(self.mean.shape[:-1]), self.cov.batch_shape)

    @property
    def ndim(self) -> int:
        """The number of batch axes."""
        return len(self.batch_shape)

    @property
    def dtype(self) -> Any:
        """The dtype results come back in (the framework's own dtype object)."""
        return self._result_dtype

    @property
    def ops(self) -> Backend:
        return self.cov.ops

    @property
    def event_shape(self) -> tuple[int]:
        """(d,), as torch.distributions has it."""
        return (self.dim,)

    @property
    def loc(self) -> Array:
        """μ (*batch, d), the name torch.distributions gives the mean."""
        return self.mean

    @property
    def covariance_matrix(self) -> Array:
        """Σ as a dense (*batch, d, d) array."""
        return self.cov.dense()

    @property
    def precision_matrix(self) -> Array:
        """Σ⁻¹ as a dense (*batch, d, d) array (as given for a precision; else from the
        Cholesky factor: for inspection, never used by the library's numerics)."""
        full = self.cov.to_full()
        if isinstance(full, FullPrecision):
            return full.side_matrix()
        inverse = full.inverse_factor()
        return self.ops.matrix_transpose(inverse) @ inverse

    @property
    def scale_tril(self) -> Array:
        """The lower Cholesky factor L of Σ = L Lᵀ (*batch, d, d): the structure's own where it
        holds one of Σ, else factored from the dense Σ."""
        full = self.cov.to_full()
        if isinstance(full, FullCovariance):
            return full.factor
        return self.ops.cholesky(self.cov.dense())

    @property
    def variance(self) -> Array:
        """diag Σ (*batch, d)."""
        return self.cov.diagonal()

    @property
    def stddev(self) -> Array:
        """√diag Σ (*batch, d)."""
        return self.ops.xp.sqrt(self.cov.diagonal())

    def log_prob(self, x: Any) -> Array:
        """ln N(x; μ, Σ) (eq. (8)) for points x (..., d), shape broadcast(x.shape[:-1], B):
        :func:`gaussdiv.log_prob`."""
        from gaussdiv.density import log_prob

        return log_prob(self, x)

    def sample(self, n: int = 1, seed: Any = None) -> Array:
        """n draws, (n, *batch, d): :func:`gaussdiv.sample` (differentiable in μ and Σ's
        parameters on torch and JAX, so also :meth:`rsample`)."""
        from gaussdiv.montecarlo import sample

        return sample(self, n, seed)

    def rsample(self, n: int = 1, seed: Any = None) -> Array:
        """Reparameterised draws μ + S Z, (n, *batch, d) (torch's name): the same as
        :meth:`sample`."""
        return self.sample(n, seed)

    def entropy(self) -> Array:
        """H(P) = ½ (d (1 + ln 2π) + ln|Σ|) (eq. (24)), shape (*batch): :func:`gaussdiv.entropy`."""
        from gaussdiv.divergences.kl import entropy

        return entropy(self)

    def expand(self, batch_shape: Sequence[int]) -> Gaussian:
        """torch's name for :meth:`broadcast_to`."""
        return self.broadcast_to(batch_shape)

    def to(self, device: Any = None, dtype: Any = None) -> Gaussian:
        """The same Gaussian on another torch device and/or in another floating dtype (for
        NumPy and JAX arrays: another dtype). A new dtype drops the cached factorisation
        corrections, which belong to the old precision."""
        def move(a: Any) -> Any:
            if hasattr(a, "to"):  # torch
                return a.to(device=device, dtype=dtype)
            if device is not None:
                raise GaussianError(f"device= is for torch tensors; these are {self.ops.name} "
                                    "arrays")
            return a.astype(dtype) if dtype is not None else a

        cov = _moved(self.cov, move, keep_caches=dtype is None)
        mean = move(self.mean)
        result_dtype = self.ops.framework_dtype(cov.dtype) if dtype is not None else \
            self._result_dtype
        return self._from_parts(mean, cov, result_dtype, self.feature_names)

    def with_names(self, names: Sequence[str] | None) -> Gaussian:
        """The same Gaussian with its d coordinates named (None: unnamed)."""
        return self._from_parts(self.mean, self.cov, self._result_dtype,
                                _checked_names(names, self.dim))

    def __repr__(self) -> str:
        named = "" if self.feature_names is None else \
            f", feature_names={list(self.feature_names)}"
        return (f"Gaussian(d={self.dim}, batch_shape={self.batch_shape}, dtype={self.dtype}, "
                f"cov={self.cov!r}{named})")

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError("Gaussian is immutable; build a new one instead")

    # ------------------------------------------------------------------ values
    def __getitem__(self, index: Any) -> Gaussian:
        """The Gaussians at batch index ``index`` (ints, slices, arrays, ``...``), as a
        Gaussian of the indexed batch shape; the event axis is never indexed."""
        index = _batch_index(index, self.ndim)
        full = self.broadcast_to(self.batch_shape)
        return self._from_parts(full.mean[(*index, slice(None))], full.cov.index_batch(index),
                                self.dtype, self.feature_names)

    def __len__(self) -> int:
        if not self.batch_shape:
            raise TypeError("len() of an unbatched Gaussian")
        return self.batch_shape[0]

    def reshape(self, *shape: int | Sequence[int]) -> Gaussian:
        """The same Gaussians with batch shape ``shape`` (-1 allowed)."""
        single = len(shape) == 1 and not isinstance(shape[0], int | np.integer)
        new = tuple(int(n) for n in (shape[0] if single else shape))
        full = self.broadcast_to(self.batch_shape)
        return self._from_parts(full.mean.reshape(*new, self.dim),
                                full.cov.reshape_batch(tuple(new)), self.dtype,
                                self.feature_names)

    def broadcast_to(self, shape: Sequence[int]) -> Gaussian:
        """The Gaussians broadcast to batch shape ``shape`` (views, nothing copied)."""
        shape = tuple(shape)
        try:
            target = broadcast_shapes(self.batch_shape, shape)
        except ValueError:
            raise ShapeError(f"batch shape {self.batch_shape} does not broadcast to "
                             f"{shape}") from None
        if target != shape:
            raise ShapeError(f"batch shape {self.batch_shape} does not broadcast to {shape}")
        mean = self.mean
        if tuple(mean.shape[:-1]) != shape:
            mean = self.ops.xp.broadcast_to(mean, (*shape, self.dim))
        return self._from_parts(mean, self.cov.broadcast_batch(shape), self.dtype,
                                self.feature_names)

    def __copy__(self) -> Gaussian:
        return self  # immutable: a copy is the value itself

    def __deepcopy__(self, memo: dict[int, Any]) -> Gaussian:
        return self

    def __reduce__(self) -> tuple[Any, ...]:
        return _unpickle, (self.mean, self.cov, self.dtype, self.feature_names)

    def tree_flatten(self) -> tuple[tuple[Any, Covariance], Any]:
        """JAX pytree protocol: the arrays are leaves; the result dtype and names are static."""
        return (self.mean, self.cov), (self._result_dtype, self.feature_names)

    @classmethod
    def tree_unflatten(cls, static: Any, children: tuple[Any, Covariance]) -> Gaussian:
        result_dtype, names = static
        return cls._from_parts(children[0], children[1], result_dtype, names)

    # ------------------------------------------------------------------ internals
    @classmethod
    def _from_parts(cls, mean: Any, cov: Covariance, result_dtype: Any,
                    feature_names: tuple[str, ...] | None = None) -> Gaussian:
        """A Gaussian from parts that are already valid (indexing, pytrees, pickling)."""
        g = object.__new__(cls)
        if isinstance(mean, np.ndarray) and mean.flags.writeable:
            mean.flags.writeable = False
        object.__setattr__(g, "mean", mean)
        object.__setattr__(g, "cov", cov)
        object.__setattr__(g, "_result_dtype", result_dtype)
        object.__setattr__(g, "feature_names", feature_names)
        return g

    def _init(self, mean: Any, structure: Covariance) -> None:
        ops = structure.ops
        mean_framework = framework_of(mean)
        if mean_framework is not None and mean_framework is not ops:
            raise BackendMismatchError(
                f"mean is a {mean_framework.name} array but the covariance is {ops.name}; "
                "build both from one framework")
        mean_dtype = check_dtype(mean, "mean", ops)
        if mean_dtype.kind == "f" and min(mean_dtype.itemsize, 8) > structure.dtype.itemsize \
                and hasattr(mean, "dtype"):  # lists and scalars take the structure's dtype;
            # wider than float64 (longdouble) is computed in float64, as the structure is
            raise DtypeError(
                f"mean is {mean_dtype} but the covariance structure is {structure.dtype}; "
                f"build the covariance in {mean_dtype} too")
        half = mean_dtype.kind == "f" and mean_dtype.itemsize == 2
        result_dtype = mean.dtype if half else ops.framework_dtype(structure.dtype)
        mean = ops.freeze(mean, structure.dtype, structure.device_array)
        check_vector(mean, "mean")
        check_finite(mean, "mean", ops)
        if mean.shape[-1] != structure.dim:
            raise DimensionMismatchError(
                f"mean has dimension d={mean.shape[-1]} (shape {tuple(mean.shape)}) but the "
                f"covariance is {structure.dim}×{structure.dim}")
        try:
            broadcast_shapes(tuple(mean.shape[:-1]), structure.batch_shape)
        except ValueError:
            raise ShapeError(
                f"batch shapes do not broadcast: mean has batch shape {tuple(mean.shape[:-1])}, "
                f"the covariance {structure.batch_shape}") from None
        object.__setattr__(self, "mean", mean)
        object.__setattr__(self, "cov", structure)
        object.__setattr__(self, "_result_dtype", result_dtype)
        object.__setattr__(self, "feature_names", None)


def _checked_names(names: Sequence[str] | None, d: int) -> tuple[str, ...] | None:
    """``names`` as a tuple of d distinct strings (None stays None); else a specific error."""
    if names is None:
        return None
    if isinstance(names, str):
        raise TypeError("feature names must be a sequence of d strings, not one string")
    checked = tuple(names)
    if len(checked) != d:
        raise DimensionMismatchError(f"{len(checked)} feature names for a Gaussian in d={d} "
                                     "dimensions; give one name per coordinate")
    for k, name in enumerate(checked):
        if not isinstance(name, str):
            raise TypeError(f"feature name {k} is {type(name).__name__} {name!r}; names are "
                            "strings")
    if len(set(checked)) != d:
        repeated = next(n for n in checked if checked.count(n) > 1)
        raise ValueError(f"feature name {repeated!r} appears twice; names must be distinct")
    return checked


def _ndim(x: Any) -> int:
    """x's number of axes (-1 for a ragged list, which the checks then name)."""
    if hasattr(x, "ndim"):
        return int(x.ndim)
    try:
        return int(np.ndim(x))
    except ValueError:
        return -1


def _reshaped(x: Any, shape: tuple[int, ...]) -> Any:
    return x.reshape(shape) if hasattr(x, "reshape") else np.reshape(x, shape)


def _moved(cov: Covariance, move: Callable[[Any], Any], keep_caches: bool) -> Covariance:
    """``cov`` with ``move`` applied to every array (nested structures too); the per-element
    caches follow only when ``keep_caches``."""
    if keep_caches:
        return cov.map_arrays(lambda a, _core: move(a))
    leaves, static = cov.tree_flatten()
    moved = tuple(_moved(leaf, move, False) if isinstance(leaf, Covariance) else
                  None if leaf is None else move(leaf) for leaf in leaves)
    return type(cov).tree_unflatten(static, moved)


def _unpickle(mean: Any, cov: Covariance, result_dtype: Any,
              feature_names: tuple[str, ...] | None = None) -> Gaussian:
    return Gaussian._from_parts(mean, cov, result_dtype, feature_names)


def _batch_index(index: Any, ndim: int) -> tuple[Any, ...]:
    """``index`` as a tuple over exactly the batch axes (an Ellipsis expanded)."""
    index = index if isinstance(index, tuple) else (index,)
    if any(i is None for i in index):
        raise ShapeError("Gaussian indexing does not take None (new axes); use reshape")
    ellipses = sum(1 for i in index if i is Ellipsis)
    if ellipses > 1:
        raise ShapeError("an index can only have a single ellipsis ('...')")
    if ellipses:
        at = next(k for k, i in enumerate(index) if i is Ellipsis)
        fill = (slice(None),) * (ndim - len(index) + 1)
        index = (*index[:at], *fill, *index[at + 1:])
    if len(index) > ndim:
        raise ShapeError(f"too many indices for a Gaussian with {ndim} batch axes "
                         f"(batch shape axes only; the event axis cannot be indexed)")
    return index


def stack(gaussians: Sequence[Gaussian], axis: int = 0) -> Gaussian:
    """Gaussians of one structure stacked along a new batch axis (as np.stack).

    Batch shapes are broadcast to a common B first (views, nothing copied), then every array
    of the means and of the structures is stacked, so the result keeps the structure (a stack
    of diagonals is diagonal, of low-rank factors low-rank). Nothing is re-validated or
    re-factored: O(total size) copying.

    Args:
        gaussians: a non-empty sequence of Gaussians of one framework, dtype and d, whose
            covariances are held the same way (same structure class, same ``kind`` of a
            diagonal, matrix or factor given, same rank k or Kronecker sizes p, q), and whose
            batch shapes broadcast to B.
        axis: where the new axis goes, in −(len(B) + 1) ≤ axis ≤ len(B).

    Returns:
        A Gaussian of batch shape B with len(gaussians) inserted at ``axis``, in the inputs'
        framework and dtype; ``feature_names`` those of the named inputs (which must agree).

    Raises:
        TypeError: an element is not a Gaussian.
        ShapeError: ``gaussians`` is empty, two covariances are held differently, the
            batch shapes do not broadcast, or ``axis`` is out of range.
        DimensionMismatchError: two Gaussians have different d, or different feature names.
        BackendMismatchError: two Gaussians hold arrays of different frameworks.
        DtypeError: two Gaussians have different dtypes.

    Examples:
        >>> import numpy as np, gaussdiv
        >>> p = gaussdiv.Gaussian.diag(np.zeros(2), var=[1.0, 2.0])
        >>> q = gaussdiv.Gaussian.diag(np.ones((3, 2)), var=[4.0, 8.0])   # batch shape (3,)
        >>> both = gaussdiv.stack([p, q])                                 # p broadcast to (3,)
        >>> both.batch_shape, both.variance[0, 2].tolist(), both.variance[1, 0].tolist()
        ((2, 3), [1.0, 2.0], [4.0, 8.0])
        >>> isinstance(both.cov, gaussdiv.DiagonalCovariance)
        True
        >>> gaussdiv.stack([p, q], axis=-1).batch_shape
        (3, 2)
    """
    return _join(gaussians, axis, new_axis=True)


def concatenate(gaussians: Sequence[Gaussian], axis: int = 0) -> Gaussian:
    """Gaussians of one structure joined along an existing batch axis, as np.concatenate.

    Every array of the means and of the structures is concatenated, so the result keeps the
    structure; nothing is re-validated or re-factored: O(total size) copying.

    Args:
        gaussians: a non-empty sequence of batched Gaussians of one framework, dtype and d,
            whose covariances are held the same way (see :func:`stack`) and whose batch
            shapes agree except along ``axis`` (as for np.concatenate).
        axis: the batch axis to join along, −len(B) ≤ axis < len(B).

    Returns:
        A Gaussian whose batch shape sums the sizes along ``axis``, in the inputs' framework
        and dtype; ``feature_names`` those of the named inputs (which must agree).

    Raises:
        TypeError: an element is not a Gaussian.
        ShapeError: ``gaussians`` is empty or unbatched (use :func:`stack`), two covariances
            are held differently, ``axis`` is out of range, or two batch shapes differ
            other than along ``axis``.
        DimensionMismatchError: two Gaussians have different d, or different feature names.
        BackendMismatchError: two Gaussians hold arrays of different frameworks.
        DtypeError: two Gaussians have different dtypes.

    Examples:
        >>> import numpy as np, gaussdiv
        >>> p = gaussdiv.Gaussian(np.zeros((2, 3)), np.eye(3))     # batch shape (2,)
        >>> q = gaussdiv.Gaussian(np.ones((3, 3)), 2 * np.eye(3))  # batch shape (3,)
        >>> joined = gaussdiv.concatenate([p, q])
        >>> joined.batch_shape, isinstance(joined.cov, gaussdiv.FullCovariance)
        ((5,), True)
    """
    return _join(gaussians, axis, new_axis=False)


def _join(gaussians: Sequence[Gaussian], axis: int, new_axis: bool) -> Gaussian:
    gaussians = [check_gaussian(g, f"gaussians[{i}]") for i, g in enumerate(gaussians)]
    if not gaussians:
        raise ShapeError("need at least one Gaussian to join")
    first = gaussians[0]
    named = next((i for i, g in enumerate(gaussians) if g.feature_names is not None), 0)
    for i, g in enumerate(gaussians[1:], 1):
        check_same_space(first, g, names=("gaussians[0]", f"gaussians[{i}]"))
        check_same_space(gaussians[named], g, names=(f"gaussians[{named}]", f"gaussians[{i}]"))
        if g.dtype != first.dtype:
            raise DtypeError(f"gaussians[{i}] is {g.dtype}, gaussians[0] {first.dtype}: join "
                             "Gaussians of one dtype")
        if _layout(g.cov) != _layout(first.cov):
            raise ShapeError(f"gaussians[{i}] has a {g.cov!r} covariance, gaussians[0] a "
                             f"{first.cov!r}: only one structure, held the same way and of the "
                             "same sizes, can be joined (convert first)")
    ops = first.ops
    xp = ops.xp
    shapes = ", ".join(f"gaussians[{i}] {g.batch_shape}" for i, g in enumerate(gaussians))
    if new_axis:
        try:
            shape = broadcast_shapes(*(g.batch_shape for g in gaussians))
        except ValueError:
            raise ShapeError(f"batch shapes do not broadcast: {shapes}") from None
        parts = [g.broadcast_to(shape) for g in gaussians]
        ndim = len(shape) + 1
    else:
        ndim = first.ndim
        if ndim == 0:
            raise ShapeError("unbatched Gaussians cannot be concatenated; use gaussdiv.stack")
    if not -ndim <= axis < ndim:
        raise ShapeError(f"axis {axis} is out of range for {ndim} batch axes")
    axis = axis % ndim
    if not new_axis:  # as np.concatenate: equal batch shapes but along the axis
        rest = {g.batch_shape[:axis] + g.batch_shape[axis + 1:] if g.ndim == ndim else None
                for g in gaussians}
        if len(rest) != 1 or None in rest:
            raise ShapeError(f"batch shapes must agree except along axis {axis} to be "
                             f"concatenated: {shapes}")
        parts = [g.broadcast_to(g.batch_shape) for g in gaussians]
    join = xp.stack if new_axis else xp.concatenate

    def joined(arrays: list[Any]) -> Any:
        return join(arrays, axis)

    mean = joined([g.mean for g in parts])
    covs = [g.cov for g in parts]
    leaves = [c.tree_flatten()[0] for c in covs]
    cov = _join_structures(covs, leaves, joined)
    return Gaussian._from_parts(mean, cov, first.dtype, gaussians[named].feature_names)


def _layout(cov: Covariance) -> tuple[Any, ...]:
    """What must agree for two structures to be joined: type, static fields, and each array's
    presence and core (non-batch) shape, nested structures included."""
    leaves, static = cov.tree_flatten()
    cores = list(cov.array_fields.values())
    shapes = tuple(_layout(leaf) if isinstance(leaf, Covariance) else
                   None if leaf is None else tuple(leaf.shape[leaf.ndim - cores[k]:])
                   for k, leaf in enumerate(leaves))
    return type(cov), static, shapes


def _join_structures(covs: list[Covariance], leaves: list[tuple[Any, ...]], joined: Any) -> Any:
    """One structure whose every array joins the corresponding arrays of ``covs``."""
    first = covs[0]
    children = []
    for k, value in enumerate(leaves[0]):
        if isinstance(value, Covariance):
            sub = [leaf[k] for leaf in leaves]
            children.append(_join_structures(sub, [c.tree_flatten()[0] for c in sub], joined))
        elif value is None:
            children.append(None)
        else:
            children.append(joined([leaf[k] for leaf in leaves]))
    return type(first).tree_unflatten(first.tree_flatten()[1], tuple(children))


def _inputs(**named: Any) -> ArrayContext:
    """The constructor's array context (see context_of), each input's dtype checked under its
    own name. Python scalars and lists take the dtype of the arrays beside them (a list mean
    with a float32 tensor covariance is float32)."""
    ops = backend_of(*named.values())
    dtypes = [check_dtype(value, name, ops) for name, value in named.items()]
    typed = [dt for dt, value in zip(dtypes, named.values(), strict=True)
             if hasattr(value, "dtype")]
    return ArrayContext(ops, float_dtype(*(typed or dtypes)), first_array(*named.values()))


def check(p: Gaussian) -> Gaussian:
    """Run every value check of the constructors on ``p`` and return it.

    Under tracing (jax.jit, torch.func transforms, torch.compile) values cannot be read, so a
    Gaussian built there skips its value checks: a NaN, indefinite or non-symmetric input then
    gives NaN or a wrong number. Call ``check`` on such a Gaussian (or on the arrays, by
    building it) outside the traced function — on a Gaussian a jitted function returned, or on
    its inputs before the call — to get the constructor's specific error.

    Args:
        p: a Gaussian of any batch shape B and structure.

    Returns:
        ``p`` itself, unchanged, when every check passes (never modified).

    Raises:
        TypeError: ``p`` is not a Gaussian.
        NonFiniteError: the mean or an array of the covariance has a NaN or infinite entry.
        NotSymmetricError: a covariance or precision matrix (or a Kronecker factor) is not
            symmetric.
        NotPositiveDefiniteError: a matrix is not positive definite, a Cholesky factor has a
            diagonal entry ≤ 0, or a variance or standard deviation is ≤ 0.
        ShapeError: a Cholesky factor has non-zero entries above its diagonal.
        DtypeError: a low-rank factor is so large against its variances that the
            capacitance overflows.

    Cost: the constructor's checks again — O(d³) per batch element for a full covariance or
    precision given as a matrix (it is re-factored), O(d²) for one given by its factor, O(d)
    for a diagonal, O(d k²) for low-rank, O(p³ + q³) for Kronecker.

    Examples:
        >>> import numpy as np, gaussdiv
        >>> p = gaussdiv.Gaussian(np.zeros(2), [[2.0, 0.5], [0.5, 1.0]])
        >>> gaussdiv.check(p) is p
        True
    """
    check_gaussian(p, "p")
    check_finite(p.mean, "mean", p.ops)
    p.cov.checked("cov")
    return p


def check_gaussian(value: Any, name: str) -> Gaussian:
    """``value`` itself, or TypeError naming the argument when it is not a Gaussian."""
    if not isinstance(value, Gaussian):
        kind = type(value)
        what = kind.__name__ if kind.__module__ == "builtins" else \
            f"{kind.__module__}.{kind.__name__}"
        raise TypeError(f"{name} must be a gaussdiv.Gaussian, got {what} (torch.distributions "
                        "normals and frozen scipy.stats.multivariate_normal objects are "
                        "converted by the library's functions; gaussdiv.from_torch and "
                        "from_scipy build one)")
    return value


def check_same_space(p: Any, q: Any, names: tuple[str, str]) -> None:
    """Two distributions (Gaussians, mixtures) in one framework and one dimension d; errors
    name both arguments."""
    a, b = names
    if p.ops is not q.ops:
        raise BackendMismatchError(
            f"{a} holds {p.ops.name} arrays and {b} holds {q.ops.name} arrays; "
            "build both from one framework")
    if p.dim != q.dim:
        raise DimensionMismatchError(
            f"{a} and {b} live in different dimensions: {a} has d={p.dim}, {b} has d={q.dim}")
    first, second = getattr(p, "feature_names", None), getattr(q, "feature_names", None)
    if first is not None and second is not None and first != second:
        where = next(k for k, (x, y) in enumerate(zip(first, second, strict=True)) if x != y)
        order = " (the same names in another order)" if set(first) == set(second) else ""
        raise DimensionMismatchError(
            f"{a} and {b} name their coordinates differently{order}: coordinate {where} is "
            f"{first[where]!r} in {a} and {second[where]!r} in {b}; fit both with the same "
            "columns (gaussdiv.fit aligns DataFrames by name)")


def check_pair(p: Gaussian, q: Gaussian, names: tuple[str, str] = ("p", "q")) -> None:
    """Two Gaussians that can meet: one framework, one d, broadcastable batch shapes."""
    a, b = names
    check_gaussian(p, a)
    check_gaussian(q, b)
    check_same_space(p, q, names)
    try:
        broadcast_shapes(p.batch_shape, q.batch_shape)
    except ValueError:
        raise ShapeError(f"batch shapes of {a} {p.batch_shape} and {b} {q.batch_shape} do not "
                         "broadcast") from None


def mean_difference(p: Gaussian, q: Gaussian) -> Any:
    """μ₁ − μ₂ of a checked pair, shape (*broadcast(B₁, B₂), d).

    Where μ₂ is one NumPy zero vector of μ₁'s dtype (the N(0, I) prior of a VAE, any unbatched
    zero-mean Q) this is μ₁ itself — exactly x − 0 — so a batch-sized temporary is not made.
    """
    m1, m2 = p.mean, q.mean
    if isinstance(m1, np.ndarray) and isinstance(m2, np.ndarray) and m2.ndim == 1 \
            and m2.dtype == m1.dtype and not m2.any():
        return m1
    return m1 - m2


def result(value: Any, p: Gaussian, q: Gaussian | None = None) -> Any:
    """``value`` broadcast to the batch shape of p (and q), in the result dtype.

    The result dtype is the Gaussians' (half precision comes back as given); for a pair of
    different dtypes, the wider compute dtype. A 0-d NumPy result becomes a NumPy scalar.
    """
    ops = p.ops
    shape = p.batch_shape if q is None else broadcast_shapes(p.batch_shape, q.batch_shape)
    if tuple(value.shape) != shape:
        value = ops.xp.broadcast_to(value, shape)
    return ops.result(value, result_dtype(p, q))


def result_dtype(p: Gaussian, q: Gaussian | None = None) -> Any:
    """The dtype results about p (and q) come back in: the Gaussians' (half precision as
    given); for a pair of different dtypes, the wider compute dtype."""
    if q is None or q.dtype == p.dtype:
        return p.dtype
    return p.ops.framework_dtype(np.promote_types(p.cov.dtype, q.cov.dtype))

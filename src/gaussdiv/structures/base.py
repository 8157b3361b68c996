"""The covariance-structure protocol, and the batch protocol every structure inherits.

A :class:`Covariance` holds a batch of d×d symmetric positive definite matrices Σ in whatever
form the user has. Every structure answers the same unary questions — ``logdet`` (ln|Σ|),
``mahalanobis`` (xᵀΣ⁻¹x), ``color`` (a square root applied to noise), ``diagonal`` and
``inverse_diagonal``, ``matmul`` (Σ X), ``dense`` (Σ itself) — and two that the exact pair
relations build on: ``to_full`` (the same Σ as a full covariance, with an exact factor where
one exists) and ``dense_dd`` (Σ as an unevaluated sum hi + lo of two dense arrays, exact to
≈ u² so that the difference of two nearly equal covariances keeps its digits).

Pairs of structures meet in :mod:`gaussdiv.relations`, never here.

Structures are frozen dataclasses whose fields are either arrays (with a known number of
trailing core axes, listed in ``array_fields``), nested structures (``child_fields``) or static
values (everything else). From that one declaration every structure gets batch indexing,
reshaping, broadcasting, stacking, pickling and JAX pytree flattening.
"""

from __future__ import annotations

import dataclasses
from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import Any, ClassVar, TypeVar

import numpy as np

from gaussdiv.backends import Backend, backend_of, broadcast_shapes

S = TypeVar("S", bound="Covariance")


class Covariance(ABC):
    """A batch of symmetric positive definite d×d matrices Σ, shape (*batch_shape, d, d).

    How a :class:`Gaussian` holds its covariance (``Gaussian.cov``): each subclass keeps Σ in
    the form it was given and answers the same questions without converting —
    ``logdet()`` ln|Σ| (*batch); ``mahalanobis(x)`` xᵀΣ⁻¹x for x (..., d); ``color(z)`` S z
    with S Sᵀ = Σ; ``diagonal()`` and ``inverse_diagonal()`` diag Σ and diag Σ⁻¹ (*batch, d);
    ``matmul(X)`` Σ X; ``dense()`` Σ (*batch, d, d). The Gaussian constructors build them
    (there is no need to build one directly); pairs of structures meet in the divergences,
    whose cost is that of the pair (see :func:`kl`).

    Per structure (construction once; then per call, for one batch element):

    - :class:`FullCovariance` (``Gaussian(mean, cov)``, ``from_scale_tril``): O(d²) memory,
      O(d³) to factor Σ, ln|Σ| O(d), xᵀΣ⁻¹x O(d²) per vector.
    - :class:`FullPrecision` (``from_precision``, ``from_precision_tril``): the same costs;
      Λ = Σ⁻¹ is never inverted.
    - :class:`DiagonalCovariance` (``diag``, ``isotropic``, ``standard``): O(d) memory (O(1)
      isotropic), everything O(d).
    - :class:`LowRankCovariance` (``lowrank``): O(d k) memory, O(d k²) to build, xᵀΣ⁻¹x
      O(d k).
    - :class:`KroneckerCovariance` (``kronecker``): O(p² + q²) memory, O(p³ + q³) to build,
      xᵀΣ⁻¹x O(d (p + q)).

    Structures are frozen, and batch operations (indexing, reshaping, broadcasting, stacking,
    pickling, JAX pytrees) map over their arrays.

    Examples:
        >>> import numpy as np, gaussdiv
        >>> cov = gaussdiv.Gaussian.diag(np.zeros(2), var=[2.0, 8.0]).cov
        >>> isinstance(cov, gaussdiv.Covariance), cov.dim, cov.batch_shape
        (True, 2, ())
        >>> round(float(cov.logdet()), 6)                 # ln 2 + ln 8 = ln 16
        2.772589
        >>> float(cov.mahalanobis(np.array([2.0, 4.0])))  # 2²/2 + 4²/8
        4.0
    """

    #: Array fields and how many trailing (non-batch) axes each has.
    array_fields: ClassVar[dict[str, int]] = {}
    #: Fields holding nested structures (mapped over like arrays).
    child_fields: ClassVar[tuple[str, ...]] = ()
    #: Per-element results cached on an instance (``functools.cached_property`` names) and
    #: their core axes: batch operations carry them over to the new instance when present
    #: (None, "nothing to hold for any element", carries as None).
    cached_arrays: ClassVar[dict[str, int]] = {}
    _ops: Backend

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        from gaussdiv.pytree import register_structure

        register_structure(cls)

    def __post_init__(self) -> None:
        for name in self.array_fields:  # nothing a structure holds can be edited in place
            value = getattr(self, name)
            if isinstance(value, np.ndarray) and value.flags.writeable:
                value.flags.writeable = False
        # Looked up once: every operation asks for it (measured: 80 µs of a 300 µs KL). A tree
        # mapped to placeholders (no arrays at all) gets NumPy's.
        try:
            backend = backend_of(self.device_array)
        except (IndexError, AttributeError):
            backend = backend_of()
        object.__setattr__(self, "_ops", backend)

    # -- what every structure states -------------------------------------------------------
    @property
    @abstractmethod
    def dim(self) -> int:
        """d, the dimension of the space."""

    @property
    @abstractmethod
    def batch_shape(self) -> tuple[int, ...]:
        """Leading (batch) shape; broadcasts like NumPy shapes."""

    @property
    def ops(self) -> Backend:
        """The array backend of this structure's arrays."""
        return self._ops

    @property
    def device_array(self) -> Any:
        """One of the structure's arrays: its framework, dtype and device are the structure's."""
        for name in self.array_fields:
            value = getattr(self, name)
            if value is not None:
                return value
        return getattr(self, self.child_fields[0]).device_array

    @property
    def dtype(self) -> np.dtype:
        """The floating dtype computations are carried out in (NumPy's spelling)."""
        return self.ops.numpy_dtype(self.device_array)

    @property
    def noise_dim(self) -> int:
        """Length of the standard-normal vector :meth:`color` maps to N(0, Σ)."""
        return self.dim

    @abstractmethod
    def logdet(self) -> Any:
        """ln|Σ|, shape (*batch_shape). Never overflows: computed from logs of factors."""

    @abstractmethod
    def mahalanobis(self, x: Any) -> Any:
        """xᵀΣ⁻¹x for x of shape (..., d), as a sum of squares; shape (...) broadcast with batch."""

    @abstractmethod
    def color(self, z: Any) -> Any:
        """S z for a square root S (S Sᵀ = Σ), z of shape (..., noise_dim); returns (..., d)."""

    @abstractmethod
    def diagonal(self) -> Any:
        """diag(Σ), shape (*batch_shape, d)."""

    @abstractmethod
    def inverse_diagonal(self) -> Any:
        """diag(Σ⁻¹), shape (*batch_shape, d)."""

    @abstractmethod
    def matmul(self, x: Any) -> Any:
        """Σ X for X of shape (..., d, n); returns (..., d, n)."""

    @abstractmethod
    def dense(self) -> Any:
        """Σ as a dense array of shape (*batch_shape, d, d)."""

    @abstractmethod
    def dense_dd(self) -> tuple[Any, Any]:
        """Σ = hi + lo as two dense arrays (*batch_shape, d, d), hi = fl(Σ), |lo| ≲ u|Σ|,
        the sum exact to ≈ u²|Σ| (a double-double). Precision-side structures raise."""

    @abstractmethod
    def to_full(self) -> Covariance:
        """The same Σ as a full (Cholesky-factored) structure, for dense pair relations."""

    @abstractmethod
    def condition_bound(self) -> Any:
        """A cheap estimate (≤ a small factor of the truth) of the condition number of the
        scaled matrix D^-½ΣD^-½, D = diag Σ, per batch element: what decides whether Σ is
        numerically singular. O(d²) at most; never an eigendecomposition of d×d."""

    def checked(self, name: str) -> None:
        """Run the constructor's value checks on these arrays (finite, symmetric, positive
        definite, ...), raising as the constructor would: for structures built under tracing
        (jax.jit, torch.func), whose checks were skipped. ``name`` names the argument. The
        default checks every array is finite; structures with more to check override it."""
        from gaussdiv.validation import check_finite

        for field in self.array_fields:
            value = getattr(self, field)
            if value is not None:
                check_finite(value, f"{name}.{field}", self.ops)

    # -- the batch protocol ----------------------------------------------------------------
    def map_arrays(self: S, fn: Callable[[Any, int], Any]) -> S:
        """The same structure with ``fn(array, core_ndim)`` applied to every array field."""
        changes = {name: fn(getattr(self, name), core) if getattr(self, name) is not None
                   else None for name, core in self.array_fields.items()}
        changes.update({name: getattr(self, name).map_arrays(fn) for name in self.child_fields})
        out = dataclasses.replace(self, **changes)
        for name, core in self.cached_arrays.items():
            if name in self.__dict__:
                value = self.__dict__[name]
                out.__dict__[name] = None if value is None else fn(value, core)
        return out

    def broadcast_batch(self: S, shape: tuple[int, ...]) -> S:
        """The structure with every array broadcast to batch shape ``shape`` (views)."""
        xp = self.ops.xp
        target = broadcast_shapes(self.batch_shape, tuple(shape))
        return self.map_arrays(
            lambda a, core: a if tuple(a.shape[:a.ndim - core]) == target
            else xp.broadcast_to(a, (*target, *a.shape[a.ndim - core:])))

    def reshape_batch(self: S, shape: tuple[int, ...]) -> S:
        """The structure with its batch axes reshaped to ``shape`` (-1 allowed)."""
        full = self.broadcast_batch(self.batch_shape)
        return full.map_arrays(lambda a, core: a.reshape(*shape, *a.shape[a.ndim - core:]))

    def index_batch(self: S, index: tuple[Any, ...]) -> S:
        """The structure at batch index ``index`` (a tuple over the batch axes only)."""
        full = self.broadcast_batch(self.batch_shape)
        return full.map_arrays(lambda a, core: a[(*index, *(slice(None),) * core)])

    def take_flat(self: S, shape: tuple[int, ...], rows: Any) -> S:
        """Broadcast to batch ``shape``, flatten it, and keep the flat positions ``rows``."""
        flat = self.broadcast_batch(shape).reshape_batch((-1,))
        return flat.map_arrays(lambda a, core: a[rows])

    # -- pickling and pytrees --------------------------------------------------------------
    def static_fields(self) -> dict[str, Any]:
        """The fields that are neither arrays nor nested structures (hashable)."""
        dynamic = {*self.array_fields, *self.child_fields}
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)
                if f.name not in dynamic}

    def tree_flatten(self) -> tuple[tuple[Any, ...], tuple[tuple[str, Any], ...]]:
        names = (*self.array_fields, *self.child_fields)
        return tuple(getattr(self, n) for n in names), tuple(self.static_fields().items())

    @classmethod
    def tree_unflatten(cls: type[S], static: tuple[tuple[str, Any], ...],
                       children: tuple[Any, ...]) -> S:
        names = (*cls.array_fields, *cls.child_fields)
        return cls(**dict(zip(names, children, strict=True)), **dict(static))

    def __reduce__(self) -> tuple[Any, ...]:
        children, static = self.tree_flatten()
        return type(self).tree_unflatten, (static, children)

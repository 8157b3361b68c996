"""Gaussians of Dask arrays: the constructor's inputs, held lazily, chunked along batch axes.

``gaussdiv.Gaussian(mean, cov)`` (and every named constructor) returns a :class:`DaskGaussian`
when an input is a Dask array. Nothing is computed or checked by value then: shapes, dtypes and
chunking are checked at once; each chunk is built by the same constructor, validated and
computed when the result is, in the task that needs it (:mod:`gaussdiv.lazy.blocks`). The
functions of the library marked :func:`gaussdiv.gaussian.entry_point` take DaskGaussians and
return Dask arrays.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from gaussdiv.backends import broadcast_shapes
from gaussdiv.errors import DtypeError, ShapeError
from gaussdiv.gaussian import Gaussian, Lazy

#: constructor → (how to call it on NumPy blocks, core (non-batch) axes of each argument).
CONSTRUCTORS: dict[str, tuple[Callable[..., Gaussian], dict[str, int]]] = {
    "Gaussian": (Gaussian, {"mean": 1, "cov": 2}),
    "from_precision": (Gaussian.from_precision, {"mean": 1, "precision": 2}),
    "from_scale_tril": (Gaussian.from_scale_tril, {"mean": 1, "scale_tril": 2}),
    "from_precision_tril": (Gaussian.from_precision_tril, {"mean": 1, "precision_tril": 2}),
    "diag": (Gaussian.diag, {"mean": 1, "var": 1, "std": 1, "logvar": 1}),
    "isotropic": (Gaussian.isotropic, {"mean": 1, "var": 0}),
    "lowrank": (Gaussian.lowrank, {"mean": 1, "factor": 2, "var": 1}),
    "kronecker": (Gaussian.kronecker, {"mean": 1, "a": 2, "b": 2}),
    "semidefinite": (Gaussian.semidefinite, {"mean": 1, "cov": 2}),
}


class DaskGaussian(Lazy):
    """A batch of Gaussians whose inputs are Dask arrays (any structure's constructor).

    Attributes:
        constructor: the name of the constructor it was made with (a key of CONSTRUCTORS).
        arrays: argument name → Dask array broadcast to ``batch_shape`` plus its core shape,
            chunked alike along the batch axes and in one chunk along the core axes.
        batch_shape, dim, dtype: as for :class:`gaussdiv.Gaussian` (dtype in NumPy's
            spelling: float32 when every floating input is float32, else float64).
    """

    def __init__(self, constructor: str, named: dict[str, Any],
                 chunks: tuple[tuple[int, ...], ...] | None = None) -> None:
        import dask.array as da

        cores = CONSTRUCTORS[constructor][1]
        arrays = {name: value if _is_dask(value) else da.asarray(np.asarray(value))
                  for name, value in named.items()}
        for name, value in arrays.items():
            if value.dtype.kind not in "fiu":
                raise DtypeError(f"{name} has dtype {value.dtype}; pass a floating-point or "
                                 "integer array")
            if value.ndim < cores[name]:
                raise ShapeError(f"{name} must have at least {cores[name]} axes; got shape "
                                 f"{tuple(value.shape)}")
            _check_event_chunks(name, value, cores[name])
        try:
            batch = broadcast_shapes(*(tuple(v.shape[:v.ndim - cores[n]])
                                       for n, v in arrays.items()))
        except ValueError:
            shapes = ", ".join(f"{n} {tuple(v.shape)}" for n, v in arrays.items())
            raise ShapeError(f"batch shapes do not broadcast: {shapes}") from None
        self.constructor = constructor
        self.batch_shape = batch
        self.dim = int(arrays["mean"].shape[-1])
        floats = [v.dtype for v in arrays.values() if v.dtype.kind == "f"]
        self.dtype = np.dtype(np.float32) if floats and all(
            f == np.float32 for f in floats) else np.dtype(np.float64)
        chunks = chunks or batch_chunks(arrays, cores, batch)
        self.arrays = {name: _aligned(v, cores[name], batch, chunks)
                       for name, v in arrays.items()}

    @property
    def ndim(self) -> int:
        return len(self.batch_shape)

    @property
    def chunks(self) -> tuple[tuple[int, ...], ...]:
        """The chunks of the batch axes."""
        first = next(iter(self.arrays.values()))
        return tuple(first.chunks[:self.ndim])

    @property
    def cores(self) -> dict[str, int]:
        return CONSTRUCTORS[self.constructor][1]

    def __len__(self) -> int:
        if not self.batch_shape:
            raise TypeError("len() of an unbatched Gaussian")
        return self.batch_shape[0]

    def __repr__(self) -> str:
        return (f"DaskGaussian({self.constructor}, d={self.dim}, batch_shape={self.batch_shape}, "
                f"chunks={self.chunks}, dtype={self.dtype})")

    def build(self, blocks: dict[str, np.ndarray]) -> Gaussian:
        """The eager Gaussian of one chunk from its NumPy blocks (validated as any input)."""
        return CONSTRUCTORS[self.constructor][0](**blocks)

    def broadcast_to(self, shape: tuple[int, ...],
                     chunks: tuple[tuple[int, ...], ...] | None = None) -> DaskGaussian:
        """The same Gaussians broadcast to batch ``shape`` (and chunked as ``chunks``)."""
        import dask.array as da

        arrays = {n: da.broadcast_to(v, (*shape, *v.shape[v.ndim - self.cores[n]:]))
                  for n, v in self.arrays.items()}
        return DaskGaussian(self.constructor, arrays, chunks)

    def reshape(self, *shape: int) -> DaskGaussian:
        """The same Gaussians with batch shape ``shape`` (-1 allowed); chunks follow Dask's
        reshape."""
        arrays = {n: v.reshape(*shape, *v.shape[v.ndim - self.cores[n]:])
                  for n, v in self.arrays.items()}
        return DaskGaussian(self.constructor, arrays)

    def compute(self, **options: Any) -> Gaussian:
        """The whole batch as an in-memory (NumPy) Gaussian."""
        import dask

        values = dask.compute(self.arrays, **options)[0]
        return self.build(values)

    def apply(self, function: Callable[..., Any], args: tuple[Any, ...],
              kwargs: dict[str, Any]) -> Any:
        from gaussdiv.lazy.blocks import lazy_call

        return lazy_call(function, args, kwargs)


def batch_chunks(arrays: dict[str, Any], cores: dict[str, int],
                 batch: tuple[int, ...]) -> tuple[tuple[int, ...], ...]:
    """Chunks for each batch axis: those of the first input that spans the axis (aligned on
    the right, as broadcasting is), else the whole axis."""
    out = []
    for axis, size in enumerate(batch):
        chosen: tuple[int, ...] = (size,)
        for name, value in arrays.items():
            own = value.ndim - cores[name]
            at = axis - (len(batch) - own)
            if at >= 0 and value.shape[at] == size and size != 1:
                chosen = tuple(value.chunks[at])
                break
        out.append(chosen)
    return tuple(out)


def _aligned(value: Any, core: int, batch: tuple[int, ...],
             chunks: tuple[tuple[int, ...], ...]) -> Any:
    import dask.array as da

    full = (*batch, *value.shape[value.ndim - core:])
    target = (*chunks, *((n,) for n in value.shape[value.ndim - core:]))
    if tuple(value.shape) != full:
        value = da.broadcast_to(value, full)
    return value if tuple(value.chunks) == target else value.rechunk(target)


def _check_event_chunks(name: str, value: Any, core: int) -> None:
    for axis in range(value.ndim - core, value.ndim):
        if len(value.chunks[axis]) > 1:
            raise ShapeError(
                f"{name} is a Dask array chunked along its event axis {axis - value.ndim} "
                f"(chunks {value.chunks[axis]}); chunk along batch axes only, e.g. "
                f"{name}.rechunk({{{axis}: -1}})")


def _is_dask(value: Any) -> bool:
    return type(value).__module__.split(".")[0] == "dask"

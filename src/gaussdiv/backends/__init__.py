"""Array frameworks: found from the arguments themselves, by the type's module, among
frameworks already imported (``import gaussdiv`` never imports torch or jax), so results come
back as the same kind of array, on the same device. One sibling backend per framework."""

from __future__ import annotations

import sys
from typing import Any, NamedTuple

import numpy as np

from gaussdiv.backends.base import Backend
from gaussdiv.backends.numpy_backend import NUMPY
from gaussdiv.backends.shapes import broadcast_shapes
from gaussdiv.errors import BackendMismatchError

__all__ = ["NUMPY", "ArrayContext", "Backend", "backend_of", "broadcast_shapes", "context_of",
           "first_array", "framework_of"]


# Memoised by hand, in dicts: torch.compile (Dynamo) traces through functools caches with a
# UserWarning for each one it meets; a dict lookup it traces silently.
_BACKENDS: dict[str, Backend] = {}
_BY_TYPE: dict[type, Backend | None] = {}


def _torch_backend() -> Backend:
    if "torch" not in _BACKENDS:
        from gaussdiv.backends.torch_backend import TorchBackend

        _BACKENDS["torch"] = TorchBackend()
    return _BACKENDS["torch"]


def _jax_backend() -> Backend:
    if "jax" not in _BACKENDS:
        from gaussdiv.backends.jax_backend import JaxBackend
        from gaussdiv.pytree import register_pytrees

        backend = JaxBackend()
        register_pytrees(backend.jax)
        _BACKENDS["jax"] = backend
    return _BACKENDS["jax"]


def _backend_for_type(kind: type) -> Backend | None:
    """The backend owning arrays of this type; None for neutral values (scalars, lists)."""
    if kind in _BY_TYPE:
        return _BY_TYPE[kind]
    module = kind.__module__.split(".")[0]
    backend: Backend | None = None
    if module == "torch" and "torch" in sys.modules:
        backend = _torch_backend()
    elif module in ("jax", "jaxlib") and "jax" in sys.modules:
        backend = _jax_backend()
    elif issubclass(kind, np.ndarray):
        backend = NUMPY
    if backend is not None:  # neutral types are not kept: their framework may be imported later
        _BY_TYPE[kind] = backend
    return backend


def framework_of(*arrays: Any) -> Backend | None:
    """The backend of the framework arrays among ``arrays`` (None if there are none).

    Python scalars, lists, None and NumPy scalars are neutral and go with any framework (lists
    are not searched); arrays of two different frameworks are an error naming both types.
    """
    found: Backend | None = None
    found_type: type = type(None)
    for a in arrays:
        backend = _backend_for_type(type(a))
        if backend is None or backend is found:
            continue
        if found is not None:
            raise BackendMismatchError(
                f"arguments mix array frameworks: {found_type.__module__}.{found_type.__name__} "
                f"and {type(a).__module__}.{type(a).__name__}; convert them to one framework")
        found, found_type = backend, type(a)
    return found


def backend_of(*arrays: Any) -> Backend:
    """The backend that computes on ``arrays``: their framework's, NumPy when they have none."""
    if len(arrays) == 1:  # the hot case: a structure asking for its own array's backend
        return _backend_for_type(type(arrays[0])) or NUMPY
    return framework_of(*arrays) or NUMPY


def first_array(*arrays: Any) -> Any:
    """The first framework array among ``arrays`` (its device is where results go), or None."""
    for a in arrays:
        if _backend_for_type(type(a)) is not None:
            return a
    return None


class ArrayContext(NamedTuple):
    """Where a Gaussian's arrays live: backend, compute dtype (NumPy spelling), device donor."""

    ops: Backend
    dtype: np.dtype
    like: Any

    def freeze(self, x: Any) -> Any:
        """``x`` as a private array of this context (a read-only copy for NumPy)."""
        return self.ops.freeze(x, self.dtype, self.like)


def context_of(*arrays: Any) -> ArrayContext:
    """The context of a constructor's inputs: one framework, float32 only if all are narrow."""
    from gaussdiv.validation import float_dtype

    ops = backend_of(*arrays)
    dtype = float_dtype(*(ops.numpy_dtype(a) for a in arrays))
    return ArrayContext(ops, dtype, first_array(*arrays))

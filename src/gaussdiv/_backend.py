"""The few array operations whose spelling differs between frameworks.

Everything elementwise is written against ``ops.xp`` (the framework's NumPy-like namespace);
linear algebra and reductions whose names or failure modes differ go through a ``Backend``
object. The backend is found from the arguments themselves, so results come back as the same
kind of array they came in as.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import scipy.linalg

# np.linalg.solve is a batched C loop but does an LU (2/3 d³); SciPy's solve_triangular does
# d³/3 but loops over the batch in Python. Measured on 2 cores: 20 000 8×8 solves take 0.02 s
# with the former and 0.25 s with the latter; one 512×512 solve takes 0.023 s and 0.014 s.
_LAPACK_LOOP_MAX_BATCH = 8
_LAPACK_LOOP_MIN_DIM = 128


class NumpyBackend:
    """NumPy and SciPy (LAPACK) implementations of the backend operations."""

    name = "numpy"
    xp = np
    LinAlgError = np.linalg.LinAlgError

    def asarray(self, x: Any, dtype: Any = None) -> np.ndarray:
        return np.asarray(x, dtype=dtype)

    def to_numpy(self, x: Any) -> np.ndarray:
        return np.asarray(x)

    def numpy_dtype(self, x: Any) -> np.dtype:
        return np.asarray(x).dtype

    def is_traced(self, x: Any) -> bool:
        return False

    def sum(self, x: Any, axis: int | Sequence[int]) -> Any:
        return np.sum(x, axis=tuple(axis) if isinstance(axis, Sequence) else axis)

    def diagonal(self, a: Any) -> Any:
        return np.diagonal(a, axis1=-2, axis2=-1)

    def matrix_transpose(self, a: Any) -> Any:
        return np.swapaxes(a, -1, -2)

    def eye(self, d: int, dtype: Any, like: Any = None) -> Any:
        return np.eye(d, dtype=dtype)

    def cholesky(self, a: Any) -> Any:
        """Lower Cholesky factor; raises ``LinAlgError`` when some matrix is not PD."""
        return np.linalg.cholesky(a)

    def eigvalsh(self, a: Any) -> Any:
        return np.linalg.eigvalsh(a)

    def solve_triangular(self, t: Any, b: Any, lower: bool) -> Any:
        """Solve T X = B for X, T (..., d, d) triangular, B (..., d, n); batches broadcast."""
        batch = np.broadcast_shapes(t.shape[:-2], b.shape[:-2])
        count = int(np.prod(batch, dtype=np.int64))
        d = t.shape[-1]
        if count > _LAPACK_LOOP_MAX_BATCH and d < _LAPACK_LOOP_MIN_DIM:
            return np.linalg.solve(t, b)
        t_b = np.broadcast_to(t, (*batch, *t.shape[-2:])).reshape(count, d, d)
        b_b = np.broadcast_to(b, (*batch, *b.shape[-2:])).reshape(count, *b.shape[-2:])
        out = np.empty(b_b.shape, dtype=np.result_type(t, b))
        for i in range(count):
            out[i] = scipy.linalg.solve_triangular(t_b[i], b_b[i], lower=lower, check_finite=False)
        return out.reshape(*batch, *b.shape[-2:])

    def standard_normal(self, seed: Any, shape: tuple[int, ...], dtype: Any, like: Any) -> Any:
        rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
        return rng.standard_normal(shape, dtype=dtype)


NUMPY = NumpyBackend()


def backend_of(*arrays: Any) -> NumpyBackend:
    """The backend that computes on ``arrays`` (NumPy for arrays, lists and scalars)."""
    return NUMPY

"""NumPy and SciPy (LAPACK)."""

from __future__ import annotations

import functools
import math
import os
from collections.abc import Sequence
from types import ModuleType
from typing import Any

import numpy as np
import scipy.linalg
import scipy.special

from gaussdiv.backends.base import Backend, Draw
from gaussdiv.backends.shapes import broadcast_shapes

# np.linalg.solve is a batched C loop but does an LU (2/3 d³); LAPACK's trtrs does d³/3 but is
# called once per matrix from Python. Measured on 2 cores: 20 000 8×8 solves take 0.02 s with
# the former and 0.25 s with the latter; one 512×512 solve takes 0.023 s and 0.014 s.
_LAPACK_LOOP_MAX_BATCH = 8
_LAPACK_LOOP_MIN_DIM = 128

# The compiled kernels (numba_kernels.py) take over for batches of at least this many small
# matrices; fewer go to LAPACK, so single pairs never import numba (≈ 0.3 s) and large d keeps
# LAPACK's blocked, vectorised factorisations.
COMPILED_MIN_BATCH = 16
COMPILED_MAX_DIM = 64
COMPILED_MIN_ENTRIES = 4096  # elementwise kernels (diagonal structures)
COMPILED_MIN_COPY = 1 << 20  # entries of an input copied by all threads (8 MB in float64)
_COMPILED_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))
#: ‖E‖_F up to which Σ g(ε) comes from the trace series (numba_kernels.trace_series_excess).
TRACE_SERIES_RADIUS = 1 / 16


@functools.cache
def compiled_kernels() -> ModuleType | None:
    """gaussdiv.backends.numba_kernels, or None when numba is not installed or the environment
    sets GAUSSDIV_NUMBA=0 (the pure NumPy/LAPACK route, which gives the same results)."""
    if os.environ.get("GAUSSDIV_NUMBA", "1") == "0":
        return None
    try:
        from gaussdiv.backends import numba_kernels
    except ImportError:
        return None
    return numba_kernels


def _compiled_for(count: int, d: int, *arrays: Any) -> ModuleType | None:
    """The kernels, if they apply to ``count`` matrices of size d in these arrays' dtype."""
    dtype = arrays[0].dtype
    if count < COMPILED_MIN_BATCH or d > COMPILED_MAX_DIM or dtype not in _COMPILED_DTYPES \
            or any(x.dtype != dtype for x in arrays):
        return None
    return compiled_kernels()


def _immutable(x: np.ndarray) -> bool:
    """Whether no one can write to x's memory: x and every array it views are read-only, and
    the memory is an array's own or an immutable ``bytes`` object."""
    while isinstance(x, np.ndarray):
        if x.flags.writeable:
            return False
        x = x.base
    return x is None or isinstance(x, bytes)


@functools.cache
def _lapack(name: str, dtype: np.dtype) -> Any:
    """SciPy's LAPACK routine ``name`` for ``dtype`` (the lookup costs ≈ 10 µs a call)."""
    return scipy.linalg.get_lapack_funcs((name,), (np.empty(0, dtype),))[0]


@functools.cache
def _blas(name: str, dtype: np.dtype) -> Any:
    """SciPy's BLAS routine ``name`` for ``dtype``."""
    return scipy.linalg.get_blas_funcs((name,), (np.empty(0, dtype),))[0]


def _large_lower_factor(a: np.ndarray) -> np.ndarray:
    """The lower factor L (C order) of one symmetric d×d matrix A held in C order.

    A's memory read in Fortran order is Aᵀ, whose upper triangle holds A's lower one; LAPACK's
    upper factorisation of it, Aᵀ = UᵀU, gives U = Lᵀ in Fortran order — L in C order. So
    neither the input nor the factor is copied across layouts (as lower=True on a C array
    would, twice).
    """
    u, info = _lapack("potrf", a.dtype)(np.ascontiguousarray(a).T, lower=False, clean=True)
    if info != 0:
        raise np.linalg.LinAlgError(f"Matrix is not positive definite (pivot {info})")
    return u.T


def _solve_one(t: np.ndarray, b: np.ndarray, lower: bool) -> np.ndarray:
    """X = T⁻¹B (C order) for one triangular T (d, d) and B (d, k).

    From d = 128 in float32/64 through the transposes' Fortran views: X = Yᵀ for Y Tᵀ = Bᵀ,
    one BLAS trsm from the right on the arrays' own memory (LAPACK's trtrs would copy T and B
    into Fortran order and X back); below, trtrs.
    """
    dtype = np.result_type(t, b)
    if t.shape[-1] >= _LAPACK_LOOP_MIN_DIM and dtype in _COMPILED_DTYPES:
        t, b = np.ascontiguousarray(t, dtype), np.ascontiguousarray(b, dtype)
        if not np.diagonal(t).all():
            raise np.linalg.LinAlgError("singular triangular factor (a zero pivot)")
        return _blas("trsm", dtype)(1.0, t.T, b.T, side=1, lower=not lower).T
    x, info = _lapack("trtrs", dtype)(t, b, lower=lower)
    if info > 0:
        raise np.linalg.LinAlgError(f"singular triangular factor (zero pivot {info})")
    return np.ascontiguousarray(x)


def _compiled_rows(*arrays: Any) -> ModuleType | None:
    """The kernels, if they apply to these (*batch, d or 1) arrays: one float dtype and at
    least COMPILED_MIN_ENTRIES entries in all (below, NumPy's own loops are as fast)."""
    dtype = arrays[0].dtype
    if dtype not in _COMPILED_DTYPES or any(x.dtype != dtype for x in arrays) \
            or max(x.size for x in arrays) < COMPILED_MIN_ENTRIES:
        return None
    return compiled_kernels()


def _rows(x: np.ndarray, batch: tuple[int, ...], count: int) -> np.ndarray:
    """x (*b, k) broadcast to (*batch, k) and flattened to (count, k), C-contiguous."""
    k = x.shape[-1]
    return np.ascontiguousarray(np.broadcast_to(x, (*batch, k)).reshape(count, k))


def _flat(x: np.ndarray, batch: tuple[int, ...], count: int) -> np.ndarray:
    """x broadcast to ``batch`` and flattened to (count, *core), C-contiguous."""
    core = x.shape[len(x.shape) - 2:]
    return np.ascontiguousarray(np.broadcast_to(x, (*batch, *core)).reshape(count, *core))


def _valid_cholesky_lapack(a: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """The constructor's checks of gaussdiv.validation.factor_checked on a batch of small
    matrices (d < 128) in a few whole-batch passes, without its per-check dispatch: finite
    (the sum's test), symmetric (max |A − Aᵀ| ≤ √u · max |A| per element), then
    ``np.linalg.cholesky`` and the pivot test max Aⱼⱼ/Lⱼⱼ² · d·u < 1. The factor and the bound
    are those of the step-by-step checks, bit for bit; None where any test fails (or the sum
    overflows), and the caller's checks name the failure."""
    eps = np.finfo(a.dtype).eps
    with np.errstate(all="ignore"):
        if not np.isfinite(a.sum()):
            return None
        asymmetry = a - np.swapaxes(a, -1, -2)
        np.abs(asymmetry, out=asymmetry)
        tolerance = np.abs(a).max(axis=(-2, -1)) * np.sqrt(eps)
        if (asymmetry.max(axis=(-2, -1)) > tolerance).any():
            return None
        try:
            factor = np.linalg.cholesky(a)
        except np.linalg.LinAlgError:
            return None
        pivots = np.diagonal(factor, axis1=-2, axis2=-1)
        bound = (np.diagonal(a, axis1=-2, axis2=-1) / (pivots * pivots)).max(axis=-1)
        largest = float(bound.max()) if bound.size else -math.inf
        if not np.isfinite(factor.sum()) or not largest * (a.shape[-1] * float(eps)) < 1:
            return None
    return factor, bound


class NumpyBackend(Backend):
    name = "numpy"
    xp = np
    LinAlgError = np.linalg.LinAlgError

    def numpy_dtype(self, x: Any) -> np.dtype:
        return np.asarray(x).dtype

    def framework_dtype(self, dtype: np.dtype) -> Any:
        return np.dtype(dtype)

    def asarray(self, x: Any, dtype: np.dtype, like: Any = None) -> Any:
        return np.asarray(x, dtype=dtype)

    def freeze(self, x: Any, dtype: np.dtype, like: Any = None) -> Any:
        """A private read-only copy, so later edits to the caller's array cannot reach us; an
        array nothing can write to (read-only, and so is all memory under it) is kept as it is,
        without the copy."""
        if isinstance(x, np.ndarray) and x.dtype == dtype and _immutable(x):
            return x
        kernels = compiled_kernels() if type(x) is np.ndarray and x.dtype == dtype \
            and dtype in _COMPILED_DTYPES and x.size >= COMPILED_MIN_COPY \
            and x.flags.c_contiguous else None
        out = np.array(x, dtype=dtype, copy=True) if kernels is None else kernels.copy(x)
        out.flags.writeable = False
        return out

    def to_numpy(self, x: Any) -> np.ndarray:
        return np.asarray(x)

    def is_traced(self, x: Any) -> bool:
        return False

    def all_finite(self, x: Any) -> bool:
        """A sum is finite exactly when the entries are, unless it overflows: then the
        entrywise test decides."""
        x = np.asarray(x)
        with np.errstate(over="ignore", invalid="ignore"):
            return bool(np.isfinite(np.sum(x))) or bool(np.isfinite(x).all())

    def min_value(self, x: Any) -> float:
        x = np.asarray(x)
        return float(np.min(x)) if x.size else float("inf")

    def result(self, x: Any, dtype: Any) -> Any:
        """A fresh array; a 0-d result becomes a NumPy scalar."""
        out = np.array(x, dtype=dtype)
        return out[()] if out.ndim == 0 else out

    def sum(self, x: Any, axis: int | Sequence[int]) -> Any:
        return np.sum(x, axis=axis if isinstance(axis, int) else tuple(axis))

    def amin(self, x: Any, axes: tuple[int, ...], keepdims: bool) -> Any:
        return np.min(x, axis=axes, keepdims=keepdims)

    def max_abs(self, x: Any, axis: int) -> Any:
        return np.max(np.abs(x), axis=axis, keepdims=True)

    def diagonal(self, a: Any) -> Any:
        return np.diagonal(a, axis1=-2, axis2=-1)

    def matrix_transpose(self, a: Any) -> Any:
        return np.swapaxes(a, -1, -2)

    def eye(self, d: int, dtype: np.dtype, like: Any = None) -> Any:
        return np.eye(d, dtype=dtype)

    def cholesky(self, a: Any) -> Any:
        d = a.shape[-1]
        if d < _LAPACK_LOOP_MIN_DIM or a.dtype not in _COMPILED_DTYPES:
            return np.linalg.cholesky(a)
        # Large matrices one by one, LAPACK directly: np.linalg.cholesky copies each into
        # Fortran order and back (two transposing copies, ≈ 20 ms each at d = 2048).
        if a.ndim == 2:
            return _large_lower_factor(a)
        flat = a.reshape(-1, d, d)
        out = np.empty(flat.shape, dtype=a.dtype)
        for i in range(len(flat)):
            out[i] = _large_lower_factor(flat[i])
        return out.reshape(a.shape)

    def eigvalsh(self, a: Any) -> Any:
        return np.linalg.eigvalsh(a)

    def checked_cholesky(self, a: Any) -> tuple[Any, np.ndarray, Any] | None:
        batch, d = tuple(a.shape[:-2]), a.shape[-1]
        count = math.prod(batch)
        kernels = _compiled_for(count, d, a)
        if kernels is None:
            return None
        factor, status, bound = kernels.checked_cholesky(_flat(a, batch, count))
        return factor.reshape(a.shape), status.reshape(batch), bound.reshape(batch)

    def valid_cholesky(self, a: Any) -> tuple[Any, Any] | None:
        fused = self.checked_cholesky(a)
        if fused is not None:
            factor, status, bound = fused
            return None if status.any() else (factor, bound)
        if a.shape[-1] >= _LAPACK_LOOP_MIN_DIM or a.dtype not in _COMPILED_DTYPES:
            return None
        return _valid_cholesky_lapack(a)

    def mix_cholesky(self, a: Any, b: Any, alpha: float
                     ) -> tuple[Any, Any, np.ndarray, Any] | None:
        batch, d = tuple(a.shape[:-2]), a.shape[-1]
        count = math.prod(batch)
        if a.shape != b.shape:
            return None
        kernels = _compiled_for(count, d, a, b)
        if kernels is None:
            return None
        mixed, factor, status, bound = kernels.mix_cholesky(
            _flat(a, batch, count), _flat(b, batch, count), alpha)
        return (mixed.reshape(a.shape), factor.reshape(a.shape), status.reshape(batch),
                bound.reshape(batch))

    def cholesky_backward_error(self, a: Any, factor: Any) -> Any:
        batch, d = tuple(factor.shape[:-2]), factor.shape[-1]
        count = math.prod(batch)
        if a.dtype != np.float64:
            return None  # float32 residuals are formed in float64 by the step-by-step route
        kernels = _compiled_for(count, d, a, factor)
        if kernels is None:
            return None
        f = kernels.backward_error(_flat(a, batch, count), _flat(factor, batch, count))
        return f.reshape(factor.shape)

    def factor_inverse(self, factor: Any, correction: Any) -> tuple[Any, Any] | None:
        n, d = factor.shape[0], factor.shape[-1]
        arrays = (factor,) if correction is None else (factor, correction)
        if factor.ndim != 3 or factor.dtype != np.float64:
            return None
        kernels = _compiled_for(n, d, *arrays)
        if kernels is None:
            return None
        return kernels.factor_inverse(np.ascontiguousarray(factor),
                                      None if correction is None else
                                      np.ascontiguousarray(correction))

    def packed_moments(self, matrix: Any, vector: Any, logdet: Any,
                       column: bool) -> tuple[Any, Any] | None:
        n, d = matrix.shape[0], matrix.shape[-1]
        if matrix.ndim != 3 or matrix.dtype != np.float64:
            return None
        kernels = _compiled_for(n, d, matrix, vector, logdet)
        if kernels is None:
            return None
        return kernels.packed_moments(np.ascontiguousarray(matrix), np.ascontiguousarray(vector),
                                      np.ascontiguousarray(logdet), column)

    def whitened_trace(self, ref: Any, first: Any) -> tuple[Any, Any] | None:
        batch = broadcast_shapes(tuple(ref.shape[:-2]), tuple(first.shape[:-2]))
        count = math.prod(batch)
        kernels = _compiled_for(count, ref.shape[-1], ref, first)
        if kernels is None:
            return None
        trace, logdet_ratio = kernels.whitened_trace(_flat(ref, batch, count),
                                                     _flat(first, batch, count))
        return trace.reshape(batch), logdet_ratio.reshape(batch)

    def trace_series_excess(self, e: Any) -> tuple[Any, np.ndarray] | None:
        batch = tuple(e.shape[:-2])
        count = math.prod(batch)
        kernels = _compiled_for(count, e.shape[-1], e)
        if kernels is None:
            return None
        values, ok = kernels.trace_series_excess(_flat(e, batch, count), TRACE_SERIES_RADIUS)
        return values.reshape(batch), ok.reshape(batch)

    def difference_excess(self, a: Any, b: Any, ref: Any) -> tuple[Any, np.ndarray] | None:
        batch = broadcast_shapes(*(tuple(x.shape[:-2]) for x in (a, b, ref)))
        count = math.prod(batch)
        kernels = _compiled_for(count, ref.shape[-1], a, b, ref)
        if kernels is None:
            return None
        values, ok = kernels.difference_excess(*(_flat(x, batch, count) for x in (a, b, ref)),
                                               TRACE_SERIES_RADIUS)
        return values.reshape(batch), ok.reshape(batch)

    def log_ratio_terms(self, l1: Any, l2: Any, convert: int) -> tuple[Any, Any, Any] | None:
        kernels = _compiled_rows(l1, l2)
        if kernels is None:
            return None
        batch = broadcast_shapes(tuple(l1.shape[:-1]), tuple(l2.shape[:-1]))
        count = math.prod(batch)
        sums = kernels.log_ratio_terms(_rows(l1, batch, count), _rows(l2, batch, count), convert)
        return tuple(x.reshape(batch) for x in sums)

    def log_space_mix(self, l1: Any, l2: Any, alpha: float) -> tuple[Any, Any] | None:
        kernels = _compiled_rows(l1, l2)
        if kernels is None:
            return None
        batch = broadcast_shapes(tuple(l1.shape[:-1]), tuple(l2.shape[:-1]))
        count = math.prod(batch)
        out, definite = kernels.log_space_mix(_rows(l1, batch, count), _rows(l2, batch, count),
                                              alpha)
        return out.reshape(*batch, out.shape[-1]), definite.reshape(batch)

    def var_ratio_terms(self, v1: Any, v2: Any) -> tuple[Any, Any, Any] | None:
        kernels = _compiled_rows(v1, v2)
        if kernels is None:
            return None
        batch = broadcast_shapes(tuple(v1.shape[:-1]), tuple(v2.shape[:-1]))
        count = math.prod(batch)
        sums = kernels.var_ratio_terms(_rows(v1, batch, count), _rows(v2, batch, count))
        return tuple(x.reshape(batch) for x in sums)

    def diagonal_mahalanobis(self, x: Any, param: Any, kind: str) -> Any:
        kernels = _compiled_rows(x, param)
        if kernels is None:
            return None
        batch = broadcast_shapes(tuple(x.shape[:-1]), tuple(param.shape[:-1]))
        count = math.prod(batch)
        code = {"var": kernels.VAR, "std": kernels.STD, "logvar": kernels.LOGVAR}[kind]
        out = kernels.diagonal_mahalanobis(_rows(x, batch, count), _rows(param, batch, count),
                                           code)
        return out.reshape(batch)

    def solve_triangular(self, t: Any, b: Any, lower: bool) -> Any:
        batch = broadcast_shapes(tuple(t.shape[:-2]), tuple(b.shape[:-2]))
        count = math.prod(batch)
        d = t.shape[-1]
        # Only where T is not broadcast: copying one T per right-hand side would cost n·d² for
        # n·d·k of work (NumPy's solve broadcasts without the copy).
        kernels = _compiled_for(count, d, t, b) if math.prod(t.shape[:-2]) == count else None
        if kernels is not None:
            out = kernels.solve_triangular(_flat(t, batch, count), _flat(b, batch, count), lower)
            return out.reshape(*batch, *b.shape[-2:])
        if count > _LAPACK_LOOP_MAX_BATCH and d < _LAPACK_LOOP_MIN_DIM:
            return np.linalg.solve(t, b)
        # One system at a time, LAPACK directly (SciPy's wrapper costs ≈ 20 µs a call), each in
        # C order as the batched routes give it: one pair's result is bit for bit its batch
        # element's.
        if t.ndim == b.ndim == 2:
            return _solve_one(t, b, lower)
        t_b = np.broadcast_to(t, (*batch, *t.shape[-2:])).reshape(count, d, d)
        b_b = np.broadcast_to(b, (*batch, *b.shape[-2:])).reshape(count, *b.shape[-2:])
        if count == 1:  # no copy into a batch
            return _solve_one(t_b[0], b_b[0], lower).reshape(*batch, *b.shape[-2:])
        out = np.empty(b_b.shape, dtype=np.result_type(t, b))
        for i in range(count):
            out[i] = _solve_one(t_b[i], b_b[i], lower)
        return out.reshape(*batch, *b.shape[-2:])

    def erf(self, x: Any) -> Any:
        return scipy.special.erf(x)

    def widen(self, x: Any) -> Any:
        return np.asarray(x, dtype=np.float64)

    def cast_like(self, x: Any, like: Any) -> Any:
        return x.astype(like.dtype)

    def index_array(self, index: np.ndarray, like: Any) -> Any:
        return index

    def scatter(self, base: Any, index: Any, values: Any) -> Any:
        out = np.array(base, copy=True)
        out[index] = values
        return out

    def scattered(self, like: Any, index: Any, values: Any) -> Any:
        out = np.zeros(like.shape, like.dtype)  # calloc: pages no row is written to stay unmapped
        out[index] = values
        return out

    def is_generator(self, seed: Any) -> bool:
        return isinstance(seed, np.random.Generator | np.random.SeedSequence |
                          np.random.BitGenerator)

    def _random(self, seed: Any) -> Draw:
        rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
        return lambda shape, dtype, like: rng.standard_normal(shape).astype(dtype, copy=False)

    def stop_gradient(self, x: Any) -> Any:
        return x

    def with_gradient_of(self, value: Any, surrogate: Any) -> Any:
        return value


NUMPY = NumpyBackend()

"""The few array operations whose spelling or behaviour differs between frameworks.

Elementwise math is written against ``ops.xp`` (numpy, torch or jax.numpy share those names);
linear algebra, reductions, dtypes, randomness, masking and gradients go through a Backend. The
backend is found from the arguments themselves — by the type's module, among frameworks already
imported (``import gaussdiv`` never imports torch or jax) — so results come back as the same kind
of array, on the same device.
"""

from __future__ import annotations

import contextlib
import math
import sys
from collections.abc import Callable, Sequence
from functools import cache, lru_cache
from typing import Any, NamedTuple

import numpy as np
import scipy.linalg

from gaussdiv.errors import BackendMismatchError

# np.linalg.solve is a batched C loop but does an LU (2/3 d³); SciPy's solve_triangular does
# d³/3 but loops over the batch in Python. Measured on 2 cores: 20 000 8×8 solves take 0.02 s
# with the former and 0.25 s with the latter; one 512×512 solve takes 0.023 s and 0.014 s.
_LAPACK_LOOP_MAX_BATCH = 8
_LAPACK_LOOP_MIN_DIM = 128


class NumpyBackend:
    """NumPy and SciPy (LAPACK)."""

    name = "numpy"
    xp: Any = np
    LinAlgError: type[Exception] = np.linalg.LinAlgError
    #: Whether boolean-mask indexing works (JAX under jit cannot), so cancelling batch elements
    #: can be recomputed alone.
    masking = True

    # -- arrays and dtypes ----------------------------------------------------------------
    def numpy_dtype(self, x: Any) -> np.dtype:
        """The dtype as NumPy spells it (bfloat16 reported as float16: same kind and width)."""
        return np.asarray(x).dtype

    def asarray(self, x: Any, dtype: np.dtype, like: Any = None) -> Any:
        """``x`` as this framework's array in ``dtype`` (a NumPy dtype), on ``like``'s device."""
        return np.asarray(x, dtype=dtype)

    def freeze(self, x: Any, dtype: np.dtype, like: Any = None) -> Any:
        """A private read-only copy, so later edits to the caller's array cannot reach us."""
        out = np.array(x, dtype=dtype, copy=True)
        out.flags.writeable = False
        return out

    def to_numpy(self, x: Any) -> np.ndarray:
        return np.asarray(x)

    def is_traced(self, x: Any) -> bool:
        return False

    def all_finite(self, x: Any) -> bool:
        """Whether no entry is NaN or ±inf, in one reduction: a sum is finite exactly when the
        entries are, unless it overflows — then the entrywise test decides."""
        x = np.asarray(x)
        with np.errstate(over="ignore", invalid="ignore"):
            return bool(np.isfinite(np.sum(x))) or bool(np.isfinite(x).all())

    def upper_is_zero(self, t: Any) -> bool:
        """Whether every entry above the diagonal of t (..., d, d) is exactly 0."""
        return not bool(self.xp.any(self.xp.triu(self.stop_gradient(t), 1)))

    def min_value(self, x: Any) -> float:
        """The smallest entry as a Python float (NaN if any entry is NaN, inf if empty)."""
        x = np.asarray(x)
        return float(np.min(x)) if x.size else float("inf")

    def result(self, x: Any, dtype: Any) -> Any:
        """Final cast (a fresh array); a 0-d NumPy result becomes a NumPy scalar."""
        out = np.array(x, dtype=dtype)
        return out[()] if out.ndim == 0 else out

    def framework_dtype(self, dtype: np.dtype) -> Any:
        return dtype

    # -- linear algebra -------------------------------------------------------------------
    def sum(self, x: Any, axis: int | Sequence[int]) -> Any:
        return np.sum(x, axis=axis if isinstance(axis, int) else tuple(axis))

    def amin(self, x: Any, axes: tuple[int, ...], keepdims: bool) -> Any:
        return np.min(x, axis=axes, keepdims=keepdims)

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
        batch = broadcast_shapes(tuple(t.shape[:-2]), tuple(b.shape[:-2]))
        count = int(np.prod(batch, dtype=np.int64))
        d = t.shape[-1]
        if count > _LAPACK_LOOP_MAX_BATCH and d < _LAPACK_LOOP_MIN_DIM:
            return np.linalg.solve(t, b)
        t_b = np.broadcast_to(t, (*batch, *t.shape[-2:])).reshape(count, d, d)
        b_b = np.broadcast_to(b, (*batch, *b.shape[-2:])).reshape(count, *b.shape[-2:])
        dtype = np.result_type(t, b)
        (trtrs,) = scipy.linalg.get_lapack_funcs(("trtrs",), (np.empty(0, dtype),))
        out = np.empty(b_b.shape, dtype=dtype)
        for i in range(count):  # LAPACK directly: SciPy's wrapper costs ≈ 20 µs a call
            out[i], info = trtrs(t_b[i], b_b[i], lower=lower)
            if info > 0:
                raise self.LinAlgError(f"singular triangular factor (zero pivot {info})")
        return out.reshape(*batch, *b.shape[-2:])

    def cholesky_residual(self, a: Any, factor: Any) -> Any:
        """A − L̂L̂ᵀ to ≈ 2⁻²⁰ relative accuracy (the residual is ≈ u·|A|), or None.

        LAPACK's factor L̂ is the exact factor of A minus this residual; knowing it lets callers
        correct their results to first order (see DenseCovariance.backward_error).
        """
        return self.product_residual(a, factor, self.matrix_transpose(factor))

    def product_residual(self, c: Any, a: Any, b: Any) -> Any:
        """C − A B, accurate to ≈ 2⁻²⁰ relative even where C ≈ A B, at the cost of 3 BLAS products.

        Each row of A and column of B is split as hi + lo, hi rounded to k = ⌊(53 − log₂ n)/2⌋
        bits on a grid of its own scale (an exact operation), so every product of hi parts is
        an integer below 2^(2k) on a common grid and hi_A·hi_B is exact in float64, in any
        summation order. Then C − A B = ((C − hi·hi) − (hi·lo + lo·hi)) − lo·lo, where the first
        difference is exact to rounding of a ≈ 2⁻ᵏ-small quantity. float32 uses float64.
        """
        if self.numpy_dtype(c) == np.float32:
            c64, a64, b64 = (self._to_float64(v) for v in (c, a, b))
            return self._cast_like(c64 - a64 @ b64, c)
        if self.numpy_dtype(c) != np.float64:
            return None
        n = a.shape[-1]
        bits = (53 - int(np.ceil(np.log2(max(n, 2))))) // 2
        a_hi, a_lo = self._split(a, -1, bits)
        b_hi, b_lo = self._split(b, -2, bits)
        return ((c - a_hi @ b_hi) - (a_hi @ b_lo + a_lo @ b_hi)) - a_lo @ b_lo

    def _split(self, x: Any, axis: int, bits: int) -> tuple[Any, Any]:
        """x = hi + lo exactly, hi on the grid 2^(e − bits) of its row (axis −1) or column."""
        xp = self.xp
        largest = self._max_abs(x, axis)
        exponent = xp.frexp(largest)[1]
        scale = xp.ldexp(xp.ones_like(largest), exponent - bits)
        hi = xp.round(x / scale) * scale
        return hi, x - hi

    def _max_abs(self, x: Any, axis: int) -> Any:
        return np.max(np.abs(x), axis=axis, keepdims=True)

    def _to_float64(self, x: Any) -> Any:
        return np.asarray(x, dtype=np.float64)

    def _cast_like(self, x: Any, like: Any) -> Any:
        return x.astype(like.dtype)

    def solve_triangular_refined(self, t: Any, b: Any, lower: bool) -> Any:
        """:meth:`solve_triangular` plus one step of iterative refinement.

        The residual B − T X̂ comes from :meth:`product_residual`, which removes the solve's
        own backward error (≈ u·cond(T)) from X. Used where X's relative accuracy is the
        result's (the whitened difference of two nearly equal covariances).
        """
        x = self.solve_triangular(t, b, lower)
        residual = self.product_residual(b, t, x)
        if residual is None:
            return x
        return x + self.solve_triangular(t, residual, lower)

    # -- masks, randomness, gradients -------------------------------------------------------
    def take(self, x: Any, mask: np.ndarray, core_ndim: int) -> Any:
        """Elements of ``x`` (broadcast to mask's batch shape) where ``mask``: (count, *core)."""
        core = tuple(x.shape[len(x.shape) - core_ndim:]) if core_ndim else ()
        return self.xp.broadcast_to(x, (*mask.shape, *core))[self._mask(mask, x)]

    def put(self, base: Any, mask: np.ndarray, values: Any) -> Any:
        """A copy of ``base`` with ``values`` written where ``mask``."""
        out = self._copy(base)
        out[self._mask(mask, base)] = values
        return out

    def _mask(self, mask: np.ndarray, like: Any) -> Any:
        return mask

    def _copy(self, x: Any) -> Any:
        return np.array(x, copy=True)

    def random(self, seed: Any) -> Callable[[tuple[int, ...], np.dtype, Any], Any]:
        """A draw(shape, dtype, like) of standard normals from ``seed`` (int, generator, None)."""
        rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
        return lambda shape, dtype, like: rng.standard_normal(shape).astype(dtype, copy=False)

    def no_grad(self) -> contextlib.AbstractContextManager[None]:
        return contextlib.nullcontext()

    def stop_gradient(self, x: Any) -> Any:
        return x

    def with_gradient_of(self, value: Any, surrogate: Any) -> Any:
        """``value``, differentiated as if it were ``surrogate`` (equal in exact arithmetic).

        Lets an exact but non-smooth evaluation (eigenvalues at P = Q) carry the derivatives,
        first and second, of the smooth Cholesky formula it refines.
        """
        return value


class TorchBackend(NumpyBackend):
    """PyTorch: tensors keep their device and autograd graph."""

    name = "torch"

    def __init__(self) -> None:
        import torch

        self.torch = torch
        self.xp = torch
        self.LinAlgError = torch.linalg.LinAlgError
        self._dtypes = {
            torch.float64: np.dtype(np.float64), torch.float32: np.dtype(np.float32),
            torch.float16: np.dtype(np.float16), torch.bfloat16: np.dtype(np.float16),
            torch.bool: np.dtype(np.bool_), torch.complex64: np.dtype(np.complex64),
            torch.complex128: np.dtype(np.complex128),
        }
        self._framework_dtypes = {np.dtype(np.float64): torch.float64,
                                  np.dtype(np.float32): torch.float32,
                                  np.dtype(np.float16): torch.float16}
        self._value_with_grad = _torch_value_with_grad(torch)

    def numpy_dtype(self, x: Any) -> np.dtype:
        if isinstance(x, self.torch.Tensor):
            if x.dtype in self._dtypes:
                return self._dtypes[x.dtype]
            return np.dtype(np.int64)
        return np.asarray(x).dtype

    def framework_dtype(self, dtype: np.dtype) -> Any:
        return self._framework_dtypes[np.dtype(dtype)]

    def asarray(self, x: Any, dtype: np.dtype, like: Any = None) -> Any:
        device = like.device if isinstance(like, self.torch.Tensor) else None
        if isinstance(x, self.torch.Tensor):
            target = self.framework_dtype(dtype)
            if x.dtype == target and (device is None or x.device == device):
                return x
            return x.to(dtype=target, device=device or x.device)
        return self.torch.as_tensor(np.asarray(x), dtype=self.framework_dtype(dtype),
                                    device=device)

    def freeze(self, x: Any, dtype: np.dtype, like: Any = None) -> Any:
        # Tensors are used as given (a cast keeps the autograd graph); nothing writes to them.
        return self.asarray(x, dtype, like)

    def to_numpy(self, x: Any) -> np.ndarray:
        if isinstance(x, self.torch.Tensor):
            if x.dtype == self.torch.bfloat16:
                x = x.float()
            x = x.detach()
            return (x if x.device.type == "cpu" else x.cpu()).numpy()
        return np.asarray(x)

    def result(self, x: Any, dtype: Any) -> Any:
        if isinstance(dtype, self.torch.dtype) and x.dtype != dtype:
            return x.to(dtype)
        return x

    def all_finite(self, x: Any) -> bool:
        if not isinstance(x, self.torch.Tensor):
            return NUMPY.all_finite(x)
        x = x.detach()
        return math.isfinite(x.sum()) or bool(self.torch.isfinite(x).all())

    def min_value(self, x: Any) -> float:
        x = x.detach()
        return float(x.amin()) if x.numel() else float("inf")

    def sum(self, x: Any, axis: int | Sequence[int]) -> Any:
        return self.torch.sum(x, dim=axis if isinstance(axis, int) else tuple(axis))

    def amin(self, x: Any, axes: tuple[int, ...], keepdims: bool) -> Any:
        return self.torch.amin(x, dim=axes, keepdim=keepdims)

    def diagonal(self, a: Any) -> Any:
        return self.torch.diagonal(a, dim1=-2, dim2=-1)

    def matrix_transpose(self, a: Any) -> Any:
        return a.mT

    def eye(self, d: int, dtype: Any, like: Any = None) -> Any:
        device = like.device if isinstance(like, self.torch.Tensor) else None
        return self.torch.eye(d, dtype=self.framework_dtype(dtype), device=device)

    def cholesky(self, a: Any) -> Any:
        return self.torch.linalg.cholesky(a)

    def eigvalsh(self, a: Any) -> Any:
        return self.torch.linalg.eigvalsh(a)

    def solve_triangular(self, t: Any, b: Any, lower: bool) -> Any:
        return self.torch.linalg.solve_triangular(t, b, upper=not lower)

    def _max_abs(self, x: Any, axis: int) -> Any:
        return self.torch.amax(self.torch.abs(x), dim=axis, keepdim=True)

    def _to_float64(self, x: Any) -> Any:
        return x.double()

    def _cast_like(self, x: Any, like: Any) -> Any:
        return x.to(like.dtype)

    def _mask(self, mask: np.ndarray, like: Any) -> Any:
        return self.torch.as_tensor(mask, device=like.device)

    def _copy(self, x: Any) -> Any:
        return x.clone()

    def random(self, seed: Any) -> Callable[[tuple[int, ...], np.dtype, Any], Any]:
        torch = self.torch
        if isinstance(seed, torch.Generator):
            gen = seed
        else:
            gen = torch.Generator()
            gen.manual_seed(int(np.random.default_rng(seed).integers(2**62)))

        def draw(shape: tuple[int, ...], dtype: np.dtype, like: Any) -> Any:
            z = torch.randn(shape, generator=gen, dtype=self.framework_dtype(dtype))
            return z.to(like.device) if isinstance(like, torch.Tensor) else z

        return draw

    def no_grad(self) -> contextlib.AbstractContextManager[None]:
        return self.torch.no_grad()

    def stop_gradient(self, x: Any) -> Any:
        return x.detach()

    def with_gradient_of(self, value: Any, surrogate: Any) -> Any:
        return self._value_with_grad.apply(value.detach(), surrogate)


def _torch_value_with_grad(torch: Any) -> Any:
    class ValueWithGradientOf(torch.autograd.Function):
        """Forward returns ``value``; backward passes the gradient to ``surrogate``."""

        @staticmethod
        def forward(ctx: Any, value: Any, surrogate: Any) -> Any:
            return value.clone()

        @staticmethod
        def backward(ctx: Any, grad: Any) -> tuple[None, Any]:
            return None, grad

    return ValueWithGradientOf


class JaxBackend(NumpyBackend):
    """JAX: works under jit, vmap and grad; value checks are skipped on traced arrays."""

    name = "jax"
    masking = False

    def __init__(self) -> None:
        import jax
        import jax.numpy as jnp
        import jax.scipy.linalg

        self.jax = jax
        self.xp = jnp

        class JaxLinAlgError(Exception):
            """Never raised: JAX's Cholesky signals failure with NaNs, checked by the caller."""

        self.LinAlgError = JaxLinAlgError

        @jax.custom_jvp
        def value_with_grad(value: Any, surrogate: Any) -> Any:
            return value

        @value_with_grad.defjvp
        def _jvp(primals: Any, tangents: Any) -> Any:
            return primals[0], tangents[1]

        self._value_with_grad = value_with_grad

    def numpy_dtype(self, x: Any) -> np.dtype:
        dtype = np.dtype(x.dtype) if hasattr(x, "dtype") else np.asarray(x).dtype
        return np.dtype(np.float16) if dtype.name == "bfloat16" else dtype

    def asarray(self, x: Any, dtype: np.dtype, like: Any = None) -> Any:
        return self.xp.asarray(x, dtype=dtype)

    def freeze(self, x: Any, dtype: np.dtype, like: Any = None) -> Any:
        return self.xp.asarray(x, dtype=dtype)  # JAX arrays are immutable

    def to_numpy(self, x: Any) -> np.ndarray:
        x = np.asarray(x)
        return x.astype(np.float32) if x.dtype.name == "bfloat16" else x

    def is_traced(self, x: Any) -> bool:
        return isinstance(x, self.jax.core.Tracer)

    def all_finite(self, x: Any) -> bool:
        xp = self.xp
        return math.isfinite(xp.sum(x)) or bool(xp.all(xp.isfinite(x)))

    def min_value(self, x: Any) -> float:
        return float(self.xp.min(x)) if x.size else float("inf")

    def result(self, x: Any, dtype: Any) -> Any:
        return x.astype(dtype)

    def sum(self, x: Any, axis: int | Sequence[int]) -> Any:
        return self.xp.sum(x, axis=axis if isinstance(axis, int) else tuple(axis))

    def amin(self, x: Any, axes: tuple[int, ...], keepdims: bool) -> Any:
        return self.xp.min(x, axis=axes, keepdims=keepdims)

    def diagonal(self, a: Any) -> Any:
        return self.xp.diagonal(a, axis1=-2, axis2=-1)

    def matrix_transpose(self, a: Any) -> Any:
        return self.xp.swapaxes(a, -1, -2)

    def eye(self, d: int, dtype: Any, like: Any = None) -> Any:
        return self.xp.eye(d, dtype=dtype)

    def cholesky(self, a: Any) -> Any:
        return self.xp.linalg.cholesky(a)

    def _max_abs(self, x: Any, axis: int) -> Any:
        return self.xp.max(self.xp.abs(x), axis=axis, keepdims=True)

    def product_residual(self, c: Any, a: Any, b: Any) -> Any:
        if not self.jax.config.jax_enable_x64:
            return None  # no float64 to form it in: float32 keeps the plain result
        return super().product_residual(c, a, b)

    def _to_float64(self, x: Any) -> Any:
        return x.astype(self.xp.float64)

    def eigvalsh(self, a: Any) -> Any:
        return self.xp.linalg.eigvalsh(a)

    def solve_triangular(self, t: Any, b: Any, lower: bool) -> Any:
        # lax's triangular solve needs equal batch shapes: broadcast them first.
        batch = broadcast_shapes(tuple(t.shape[:-2]), tuple(b.shape[:-2]))
        t = self.xp.broadcast_to(t, (*batch, *t.shape[-2:]))
        b = self.xp.broadcast_to(b, (*batch, *b.shape[-2:]))
        return self.jax.scipy.linalg.solve_triangular(t, b, lower=lower)

    def take(self, x: Any, mask: np.ndarray, core_ndim: int) -> Any:
        # Only all-True masks reach JAX (see gaussdiv.covariance.refine_cancelled).
        core = tuple(x.shape[len(x.shape) - core_ndim:]) if core_ndim else ()
        return self.xp.broadcast_to(x, (*mask.shape, *core)).reshape(-1, *core)

    def random(self, seed: Any) -> Callable[[tuple[int, ...], np.dtype, Any], Any]:
        jax = self.jax
        if seed is None:
            seed = int(np.random.default_rng().integers(2**31))
        state = {"key": seed if not isinstance(seed, int | np.integer) else jax.random.key(seed)}

        def draw(shape: tuple[int, ...], dtype: np.dtype, like: Any) -> Any:
            state["key"], sub = jax.random.split(state["key"])
            return jax.random.normal(sub, shape, dtype=dtype)

        return draw

    def stop_gradient(self, x: Any) -> Any:
        return self.jax.lax.stop_gradient(x)

    def with_gradient_of(self, value: Any, surrogate: Any) -> Any:
        return self._value_with_grad(self.jax.lax.stop_gradient(value), surrogate)


NUMPY = NumpyBackend()


@lru_cache(maxsize=1024)
def broadcast_shapes(*shapes: tuple[int, ...]) -> tuple[int, ...]:
    """``np.broadcast_shapes`` as a tuple, memoised: a training loop repeats the same shapes
    every step. Raises ValueError when the shapes do not broadcast."""
    return tuple(np.broadcast_shapes(*shapes))


@cache
def _torch_backend() -> TorchBackend:
    return TorchBackend()


@cache
def _jax_backend() -> JaxBackend:
    return JaxBackend()


@cache
def _backend_for_type(kind: type) -> NumpyBackend | None:
    """The backend owning arrays of this type; None for neutral values (scalars, lists)."""
    module = kind.__module__.split(".")[0]
    if module == "torch" and "torch" in sys.modules:
        return _torch_backend()
    if module in ("jax", "jaxlib") and "jax" in sys.modules:
        return _jax_backend()
    if issubclass(kind, np.ndarray):
        return NUMPY
    return None


def framework_of(*arrays: Any) -> NumpyBackend | None:
    """The backend of the framework arrays among ``arrays`` (None if there are none).

    Python scalars, lists, None and NumPy scalars are neutral and go with any framework (lists
    are not searched); arrays of two different frameworks are an error naming both types.
    """
    found: NumpyBackend | None = None
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


def backend_of(*arrays: Any) -> NumpyBackend:
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

    ops: NumpyBackend
    dtype: np.dtype
    like: Any

    def freeze(self, x: Any) -> Any:
        """``x`` as a private array of this context (a read-only copy for NumPy)."""
        return self.ops.freeze(x, self.dtype, self.like)


def context_of(*arrays: Any) -> ArrayContext:
    """The context of a constructor's inputs: one framework, float32 only if all are narrow."""
    from gaussdiv._validation import float_dtype

    ops = backend_of(*arrays)
    dtype = float_dtype(*(ops.numpy_dtype(a) for a in arrays))
    return ArrayContext(ops, dtype, first_array(*arrays))

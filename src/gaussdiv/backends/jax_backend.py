"""JAX: works under jit, vmap and grad; value checks are skipped on traced arrays."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from gaussdiv.backends.base import Backend, Draw
from gaussdiv.backends.shapes import broadcast_shapes


class JaxBackend(Backend):
    name = "jax"

    def __init__(self) -> None:
        import jax
        import jax.numpy as jnp
        import jax.scipy.linalg
        import jax.scipy.special

        self.jax = jax
        self.xp = jnp

        class JaxLinAlgError(Exception):
            """Never raised: JAX's Cholesky signals failure with NaNs, checked by the caller."""

        self.LinAlgError = JaxLinAlgError

    def numpy_dtype(self, x: Any) -> np.dtype:
        dtype = np.dtype(x.dtype) if hasattr(x, "dtype") else np.asarray(x).dtype
        return np.dtype(np.float16) if dtype.name == "bfloat16" else dtype

    def framework_dtype(self, dtype: np.dtype) -> Any:
        return np.dtype(dtype)

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

    def max_abs(self, x: Any, axis: int) -> Any:
        return self.xp.max(self.xp.abs(x), axis=axis, keepdims=True)

    def diagonal(self, a: Any) -> Any:
        return self.xp.diagonal(a, axis1=-2, axis2=-1)

    def matrix_transpose(self, a: Any) -> Any:
        return self.xp.swapaxes(a, -1, -2)

    def eye(self, d: int, dtype: np.dtype, like: Any = None) -> Any:
        return self.xp.eye(d, dtype=dtype)

    def cholesky(self, a: Any) -> Any:
        return self.xp.linalg.cholesky(a)

    def eigvalsh(self, a: Any) -> Any:
        return self.xp.linalg.eigvalsh(a)

    def when_any(self, mask: Any, compute: Any, otherwise: Any) -> Any:
        # Under jit the exact route's whole-batch work runs only in calls where some element
        # cancels (under vmap the predicate is batched and both branches run, as a select).
        return self.jax.lax.cond(self.xp.any(mask), compute, lambda: otherwise)

    def solve_triangular(self, t: Any, b: Any, lower: bool) -> Any:
        # lax's triangular solve needs equal batch shapes: broadcast them first.
        batch = broadcast_shapes(tuple(t.shape[:-2]), tuple(b.shape[:-2]))
        t = self.xp.broadcast_to(t, (*batch, *t.shape[-2:]))
        b = self.xp.broadcast_to(b, (*batch, *b.shape[-2:]))
        return self.jax.scipy.linalg.solve_triangular(t, b, lower=lower)

    def erf(self, x: Any) -> Any:
        return self.jax.scipy.special.erf(x)

    def widen(self, x: Any) -> Any:
        if not self.jax.config.jax_enable_x64:
            return None  # no float64 to compute in: callers keep their plain result
        return x.astype(self.xp.float64)

    def cast_like(self, x: Any, like: Any) -> Any:
        return x.astype(like.dtype)

    def index_array(self, index: np.ndarray, like: Any) -> Any:
        return self.xp.asarray(index)

    def scatter(self, base: Any, index: Any, values: Any) -> Any:
        return base.at[index].set(values)

    generator_name = "a jax.random key"

    def is_generator(self, seed: Any) -> bool:
        jax = self.jax
        if not isinstance(seed, jax.Array):
            return False
        typed = jax.dtypes.issubdtype(seed.dtype, jax.dtypes.prng_key)
        return bool(typed or (seed.dtype == np.uint32 and seed.shape == (2,)))  # legacy keys

    def _random(self, seed: Any) -> Draw:
        jax = self.jax
        if seed is None:
            seed = int(np.random.default_rng().integers(2**31))
        if isinstance(seed, int | np.integer) and seed >= 2**63:  # beyond what a key takes:
            seed = int(np.random.SeedSequence(int(seed)).generate_state(1, np.uint64)[0] >> 1)
        state = {"key": seed if not isinstance(seed, int | np.integer) else jax.random.key(seed)}

        def draw(shape: tuple[int, ...], dtype: np.dtype, like: Any) -> Any:
            state["key"], sub = jax.random.split(state["key"])
            return jax.random.normal(sub, shape, dtype=dtype)

        return draw

    def stop_gradient(self, x: Any) -> Any:
        return self.jax.lax.stop_gradient(x)

    def with_gradient_of(self, value: Any, surrogate: Any) -> Any:
        stop = self.jax.lax.stop_gradient
        return stop(value) + (surrogate - stop(surrogate))

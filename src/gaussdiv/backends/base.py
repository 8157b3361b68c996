"""The one interface every array framework implements: what the array API lacks or spells
differently (dtypes, host reads, triangular solves, gathers, randomness, gradients).

Elementwise math is written against ``ops.xp`` (numpy, torch and jax.numpy share those names);
everything else goes through these methods. The backends are siblings: a method a framework
does not implement is a ``TypeError`` when the backend is created, never NumPy code run on
another framework's arrays.
"""

from __future__ import annotations

import contextlib
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from gaussdiv.errors import GaussianError

Draw = Callable[[tuple[int, ...], np.dtype, Any], Any]


#: Status codes of :meth:`Backend.checked_cholesky`, per batch element.
CHOLESKY_OK, CHOLESKY_NOT_FINITE, CHOLESKY_NOT_SYMMETRIC, CHOLESKY_NOT_DEFINITE = 0, 1, 2, 3


class Backend(ABC):
    """One array framework. ``xp`` is its array namespace."""

    name: str
    xp: Any
    #: The framework's exception for a failed Cholesky factorisation.
    LinAlgError: type[Exception]

    # -- dtypes, conversion, host reads ---------------------------------------------------
    @abstractmethod
    def numpy_dtype(self, x: Any) -> np.dtype:
        """The dtype as NumPy spells it (bfloat16 reported as float16: same kind and width);
        DtypeError ("has dtype ...", the caller prefixes the argument) for a dtype the
        framework has and NumPy does not (float8)."""

    def unsupported(self, x: Any) -> str | None:
        """Why an array of this framework cannot be computed with (sparse, meta, nested or
        quantised tensors), as the end of a sentence about it; None when it can."""
        return None

    @abstractmethod
    def framework_dtype(self, dtype: np.dtype) -> Any:
        """The framework's own dtype object for a NumPy floating dtype."""

    @abstractmethod
    def asarray(self, x: Any, dtype: np.dtype, like: Any = None) -> Any:
        """``x`` as this framework's array in ``dtype``, on ``like``'s device."""

    @abstractmethod
    def freeze(self, x: Any, dtype: np.dtype, like: Any = None) -> Any:
        """``x`` as an array no later edit of the caller's can reach, and that we never write."""

    @abstractmethod
    def to_numpy(self, x: Any) -> np.ndarray:
        """A host copy (or view) as NumPy; half precision widened to float32."""

    @abstractmethod
    def is_traced(self, x: Any) -> bool:
        """Whether ``x`` has no concrete values now (jax.jit, torch.func transforms)."""

    @abstractmethod
    def all_finite(self, x: Any) -> bool:
        """Whether no entry is NaN or ±inf (one reduction and one host read)."""

    @abstractmethod
    def min_value(self, x: Any) -> float:
        """The smallest entry as a Python float (NaN if any is NaN, inf if empty)."""

    @abstractmethod
    def result(self, x: Any, dtype: Any) -> Any:
        """The value handed to the user, in ``dtype`` (the framework's dtype object)."""

    # -- reductions and linear algebra ------------------------------------------------------
    @abstractmethod
    def sum(self, x: Any, axis: int | Sequence[int]) -> Any: ...

    @abstractmethod
    def amin(self, x: Any, axes: tuple[int, ...], keepdims: bool) -> Any: ...

    @abstractmethod
    def max_abs(self, x: Any, axis: int) -> Any:
        """max |x| along ``axis``, keeping the axis."""

    @abstractmethod
    def diagonal(self, a: Any) -> Any:
        """The diagonal of the last two axes."""

    @abstractmethod
    def matrix_transpose(self, a: Any) -> Any: ...

    @abstractmethod
    def eye(self, d: int, dtype: np.dtype, like: Any = None) -> Any: ...

    @abstractmethod
    def cholesky(self, a: Any) -> Any:
        """Lower Cholesky factor (NumPy and torch raise ``LinAlgError``; JAX returns NaNs)."""

    @abstractmethod
    def eigvalsh(self, a: Any) -> Any:
        """Eigenvalues of symmetric matrices, ascending."""

    def svdvals(self, a: Any) -> Any:
        """Singular values of matrices (..., m, n), descending."""
        return self.xp.linalg.svd(a, compute_uv=False)

    @abstractmethod
    def solve_triangular(self, t: Any, b: Any, lower: bool) -> Any:
        """Solve T X = B for X, T (..., d, d) triangular, B (..., d, n); batches broadcast."""

    def checked_cholesky(self, a: Any) -> tuple[Any, np.ndarray, Any] | None:
        """Fused value checks and factorisation, where a compiled kernel has them: the lower
        factor of a (..., d, d), a host status and the condition bound max Aⱼⱼ/Lⱼⱼ² per batch
        element (see :mod:`gaussdiv.backends.numba_kernels`), or None (the caller checks step
        by step)."""
        return None

    def valid_cholesky(self, a: Any) -> tuple[Any, Any] | None:
        """The lower factor of a (..., d, d) and its condition bound max Aⱼⱼ/Lⱼⱼ² per batch
        element when every element passes the constructor's value checks (finite, symmetric,
        definite: :func:`gaussdiv.validation.factor_checked`), in as few passes as the backend
        can; None where some element fails or there is no fused route (the caller then checks
        step by step, which names the failure)."""
        fused = self.checked_cholesky(a)
        if fused is None or fused[1].any():
            return None
        return fused[0], fused[2]

    def mix_cholesky(self, a: Any, b: Any, alpha: float
                     ) -> tuple[Any, Any, np.ndarray, Any] | None:
        """(Σ_α, its lower factor, a host status, the condition bound) for Σ_α = αB + (1−α)A of
        symmetric A, B of one shape (..., d, d), formed and factored in one compiled pass,
        elements that are not definite held as I; or None where there is no kernel."""
        return None

    def cholesky_backward_error(self, a: Any, factor: Any) -> Any:
        """F = L⁻¹(A − LLᵀ)L⁻ᵀ (*batch, d, d) by a fused kernel, or None where there is none
        (callers then form the residual and solve step by step)."""
        return None

    def factor_inverse(self, factor: Any, correction: Any) -> tuple[Any, Any] | None:
        """(Xᵀ(I − F)X, ‖XL − I‖_F) with X = L⁻¹ for lower factors L (n, d, d) and their
        backward errors F (or None), by a fused kernel; None where there is none."""
        return None

    def packed_moments(self, matrix: Any, vector: Any, logdet: Any,
                       column: bool) -> tuple[Any, Any] | None:
        """The packed KL moments of ``gaussdiv.matrices.moments`` for a flat batch (rows from
        Σ and m; columns from Λ and v), values and float32 magnitudes, by a fused kernel; None
        where there is none."""
        return None

    def whitened_trace(self, ref: Any, first: Any) -> tuple[Any, Any] | None:
        """(‖L_B⁻¹L_A‖²_F, 2 Σ ln(L_B,ᵢᵢ/L_A,ᵢᵢ)) for lower factors L_B = ref and L_A = first
        (..., d, d) from one fused kernel, or None where there is none (the caller forms
        L_B⁻¹L_A)."""
        return None

    def trace_series_excess(self, e: Any) -> tuple[Any, np.ndarray] | None:
        """Σ g(εᵢ) over the eigenvalues of symmetric E (..., d, d) with ‖E‖_F ≤ 1/16, from a
        fused kernel, and a host mask of where that bound held (elsewhere the caller
        decomposes E); None where there is no such kernel."""
        return None

    def difference_excess(self, a: Any, b: Any, ref: Any) -> tuple[Any, np.ndarray] | None:
        """:meth:`trace_series_excess` of E = L⁻¹(A − B)L⁻ᵀ for matrices A, B (..., d, d) and
        the lower factor L = ``ref`` of B, from one fused kernel; None where there is none."""
        return None

    def log_ratio_terms(self, l1: Any, l2: Any, convert: int) -> tuple[Any, Any, Any] | None:
        """(Σ expm1(ln λⱼ), Σ ln λⱼ, Σ |ln λⱼ| + cⱼ) over the last axis for ln λ = l1 − l2
        (last axes d or 1, batches broadcast; cⱼ = |l1ⱼ|, |l2ⱼ| or 0 for ``convert`` 1, 2, 0)
        from one fused kernel, or None where there is none."""
        return None

    def log_space_mix(self, l1: Any, l2: Any, alpha: float) -> tuple[Any, Any] | None:
        """(ln(α v₂ + (1 − α) v₁), definite rows) for log-variances l1, l2 (last axes d or 1,
        batches broadcast) from one fused kernel (rows not definite hold 0), or None."""
        return None

    def var_ratio_terms(self, v1: Any, v2: Any) -> tuple[Any, Any, Any] | None:
        """(Σ εⱼ, Σ ln λⱼ, Σ |ln λⱼ|) over the last axis for λ = v1/v2, ε = (v1 − v2)/v2 (last
        axes d or 1, batches broadcast) from one fused kernel, or None where there is none."""
        return None

    def diagonal_mahalanobis(self, x: Any, param: Any, kind: str) -> Any:
        """Σⱼ xⱼ²/vⱼ over the last axis, v held as ``param`` of ``kind`` ("var", "std",
        "logvar"), from one fused kernel, or None where there is none."""
        return None

    def when_any(self, mask: Any, compute: Callable[[], Any], otherwise: Any) -> Any:
        """``compute()`` if some entry of the traced ``mask`` is True, else ``otherwise`` (same
        shape and dtype), decided on the device; by default ``compute()`` always runs."""
        return compute()

    def upper_is_zero(self, t: Any) -> bool:
        """Whether every entry above the diagonal of t (..., d, d) is exactly 0."""
        return not bool(self.xp.any(self.xp.triu(self.stop_gradient(t), 1)))

    @abstractmethod
    def erf(self, x: Any) -> Any:
        """The error function, elementwise."""

    # -- wider precision --------------------------------------------------------------------
    @abstractmethod
    def widen(self, x: Any) -> Any:
        """``x`` in float64, or None when this framework cannot compute in float64 now."""

    @abstractmethod
    def cast_like(self, x: Any, like: Any) -> Any:
        """``x`` in ``like``'s dtype."""

    # -- gathers over a flattened batch -----------------------------------------------------
    @abstractmethod
    def index_array(self, index: np.ndarray, like: Any) -> Any:
        """Integer positions (host array) as an index for ``like``'s framework and device."""

    @abstractmethod
    def scatter(self, base: Any, index: Any, values: Any) -> Any:
        """A copy of the flat ``base`` (n, ...) with ``values`` written at rows ``index``."""

    def scattered(self, like: Any, index: Any, values: Any) -> Any:
        """Zeros shaped as the flat ``like`` (n, ...) with ``values`` at rows ``index``."""
        return self.scatter(self.xp.zeros_like(like), index, values)

    # -- randomness and gradients -----------------------------------------------------------
    #: What seeds this framework's draws besides None and non-negative integers, in words.
    generator_name = "a np.random.Generator"

    def random(self, seed: Any) -> Draw:
        """A draw(shape, dtype, like) of standard normals from ``seed``: None (fresh
        randomness), a non-negative integer, or the framework's own generator; anything else
        is a GaussianError naming what is accepted."""
        if seed is not None and not self.is_generator(seed) and (
                isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0):
            raise GaussianError(f"seed must be None, a non-negative integer or "
                                f"{self.generator_name} (for {self.name} Gaussians); got "
                                f"{seed!r} ({type(seed).__module__}.{type(seed).__name__})")
        return self._random(seed)

    @abstractmethod
    def is_generator(self, seed: Any) -> bool:
        """Whether ``seed`` is this framework's own random generator (or key)."""

    @abstractmethod
    def _random(self, seed: Any) -> Draw:
        """:meth:`random` for a valid seed."""

    def no_grad(self) -> contextlib.AbstractContextManager[None]:
        return contextlib.nullcontext()

    @abstractmethod
    def stop_gradient(self, x: Any) -> Any: ...

    @abstractmethod
    def with_gradient_of(self, value: Any, surrogate: Any) -> Any:
        """``value``, differentiated as if it were ``surrogate`` (equal in exact arithmetic).

        Lets an exact but non-smooth evaluation (eigenvalues at P = Q) carry the derivatives,
        first and second, of the smooth Cholesky formula it refines.
        """

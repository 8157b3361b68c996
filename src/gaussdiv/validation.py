"""Input checks: each bad input fails early, once, with a message that says what to fix.

Messages name the argument, the shapes involved and, for a batch, the index of the first
offending element. Value checks need concrete numbers, so they are skipped for traced arrays
(inside ``jax.jit``); shape and dtype checks always run.
"""

from __future__ import annotations

from typing import Any, NoReturn

import numpy as np

from gaussdiv.errors import (
    DtypeError,
    NonFiniteError,
    NotPositiveDefiniteError,
    NotSymmetricError,
    ShapeError,
)


def first_true(mask: np.ndarray) -> tuple[int, ...]:
    """Index of the first True entry of ``mask`` in C order (() for a 0-d mask)."""
    return tuple(int(i) for i in np.argwhere(mask)[0]) if np.ndim(mask) else ()


def describe_index(index: tuple[int, ...]) -> str:
    """'' for an unbatched argument, else ' at batch index (i, j)'."""
    if not index:
        return ""
    return f" at batch index {index[0] if len(index) == 1 else index}"


def check_dtype(x: Any, name: str, ops: Any) -> np.dtype:
    """``x``'s dtype; complex, boolean and non-numeric input is rejected (integers are accepted
    and cast later)."""
    reason = ops.unsupported(x)
    if reason is not None:
        raise DtypeError(f"{name} {reason}")
    try:
        dtype = ops.numpy_dtype(x)
    except DtypeError as exc:
        raise DtypeError(f"{name} {exc}") from None
    except ValueError as exc:  # ragged nested lists
        raise ShapeError(f"{name} is not a rectangular array: {exc}") from None
    if dtype.kind == "c":
        raise DtypeError(f"{name} is complex ({dtype}); Gaussians here are real-valued")
    if dtype.kind == "b":
        raise DtypeError(f"{name} is boolean; pass a floating-point or integer array")
    if dtype.kind not in "fiu":
        raise DtypeError(f"{name} has dtype {dtype}; pass a floating-point or integer array")
    if dtype.kind == "f" and dtype.itemsize > 8:
        _check_float64_range(np.asarray(x), name)
    return dtype


def _check_float64_range(values: np.ndarray, name: str) -> None:
    """Wider floats (np.longdouble) are computed in float64: refuse entries it cannot hold
    (beyond its range, or non-zero but below its smallest subnormal)."""
    narrowed = values.astype(np.float64)
    lost = (np.isfinite(values) & ~np.isfinite(narrowed)) | ((values != 0) & (narrowed == 0))
    if lost.any():
        where = first_true(lost)
        raise DtypeError(f"{name} entry {where} is {values[where]!r} ({values.dtype}), which "
                         "float64 — the widest dtype gaussdiv computes in — cannot hold "
                         f"(|x| between {np.finfo(np.float64).smallest_subnormal:.3g} and "
                         f"{np.finfo(np.float64).max:.3g}); rescale the data")


def check_finite(x: Any, name: str, ops: Any) -> None:
    """Raise NonFiniteError naming the first NaN/inf entry of ``x``."""
    if ops.is_traced(x) or ops.all_finite(x):
        return
    values = ops.to_numpy(x)
    where = first_true(~np.isfinite(values))
    kind = "a NaN" if np.isnan(values[where]) else "an infinite"
    raise NonFiniteError(f"{name} has {kind} entry at index {where}")


def check_vector(x: Any, name: str) -> None:
    if len(x.shape) < 1:
        raise ShapeError(f"{name} must have shape (..., d); got a scalar")
    if x.shape[-1] == 0:
        raise ShapeError(f"{name} must have shape (..., d) with d ≥ 1; got {tuple(x.shape)}")


def check_square(a: Any, name: str) -> None:
    if len(a.shape) < 2 or a.shape[-1] != a.shape[-2]:
        raise ShapeError(f"{name} must have shape (..., d, d); got {tuple(a.shape)}")
    if a.shape[-1] == 0:
        raise ShapeError(f"{name} must have shape (..., d, d) with d ≥ 1; got {tuple(a.shape)}")


def check_symmetric(a: Any, name: str, ops: Any) -> None:
    """Symmetric up to √eps of the dtype, relative to the matrix's largest entry."""
    if ops.is_traced(a):
        return
    m = ops.to_numpy(a)
    scale = np.max(np.abs(m), axis=(-2, -1))
    tol = np.sqrt(np.finfo(m.dtype).eps) * scale
    asym = _asymmetry(m)
    bad = asym > tol
    if np.any(bad):
        index = first_true(bad)
        worst = float(asym[index])
        raise NotSymmetricError(
            f"{name} is not symmetric{describe_index(index)}: |A - Aᵀ| reaches {worst:.3g}, "
            f"above the tolerance {float(tol[index]):.3g} (√eps × largest entry)"
        )


_ASYMMETRY_BLOCK = 128


def _asymmetry(m: np.ndarray) -> np.ndarray:
    """max |Mᵢⱼ − Mⱼᵢ| per batch element, over blocks of the last two axes that stay in cache
    (a whole-matrix transpose reads memory column by column: ≈ 6× slower at d = 1024)."""
    d = m.shape[-1]
    if d <= _ASYMMETRY_BLOCK:
        return np.max(np.abs(m - np.swapaxes(m, -1, -2)), axis=(-2, -1))
    out = np.zeros(m.shape[:-2], dtype=m.dtype)
    for i in range(0, d, _ASYMMETRY_BLOCK):
        rows = slice(i, i + _ASYMMETRY_BLOCK)
        for j in range(0, i + 1, _ASYMMETRY_BLOCK):
            cols = slice(j, j + _ASYMMETRY_BLOCK)
            block = np.abs(m[..., rows, cols] - np.swapaxes(m[..., cols, rows], -1, -2))
            np.maximum(out, np.max(block, axis=(-2, -1)), out=out)
    return out


def check_lower_triangular(t: Any, name: str, ops: Any) -> None:
    """A Cholesky-type factor: zeros above the diagonal and a positive diagonal."""
    if ops.is_traced(t) or (ops.upper_is_zero(t) and ops.min_value(ops.diagonal(t)) > 0):
        return
    m = ops.to_numpy(t)
    upper = np.triu(m, k=1)
    bad = np.any(upper != 0, axis=(-2, -1))
    if np.any(bad):
        index = first_true(bad)
        raise ShapeError(
            f"{name} must be lower triangular{describe_index(index)}: it has non-zero entries "
            "above the diagonal (pass np.tril(...) or the full matrix to the matching constructor)"
        )
    diag = np.diagonal(m, axis1=-2, axis2=-1)
    bad = np.any(diag <= 0, axis=-1)
    if np.any(bad):
        index = first_true(bad)
        smallest = float(np.min(diag[index]))
        raise NotPositiveDefiniteError(
            f"{name} must have a positive diagonal{describe_index(index)}: smallest diagonal "
            f"entry is {smallest:.6g} (a Cholesky factor with a zero or negative pivot)"
        )


def factor_checked(a: Any, name: str, ops: Any) -> tuple[Any, Any]:
    """The lower Cholesky factor of a finite, symmetric, positive definite ``a``, and its
    condition bound max Aⱼⱼ/Lⱼⱼ² per element when that came for free (else None); otherwise
    the error of :func:`check_finite`, :func:`check_symmetric` or :func:`cholesky_checked`.

    One fused pass where the backend has a compiled kernel for it; the step-by-step checks run
    only when that pass reports a failure (so messages are the same on every route).
    """
    fused = None if ops.is_traced(a) else ops.valid_cholesky(a)
    if fused is not None:
        return fused
    check_finite(a, name, ops)
    check_symmetric(a, name, ops)
    return factor_and_bound(a, name, ops)


def cholesky_checked(a: Any, name: str, ops: Any) -> Any:
    """Lower Cholesky factor of ``a``, or NotPositiveDefiniteError naming the failing element."""
    return factor_and_bound(a, name, ops)[0]


def condition_bound(ops: Any, diagonal: Any, factor: Any) -> Any:
    """maxᵢ Aᵢᵢ/Lᵢᵢ² per batch element, from A's diagonal (*batch, d) and its lower factor L:
    each pivot Lᵢᵢ²/Aᵢᵢ is ≥ λ_min of the unit-diagonal D^-½AD^-½, so this is ≤ its condition
    number. No gradient flows through it."""
    with ops.no_grad(), np.errstate(over="ignore", under="ignore", divide="ignore",
                                    invalid="ignore"):
        pivots = ops.diagonal(ops.stop_gradient(factor))
        ratio = ops.stop_gradient(diagonal) / (pivots * pivots)
        return -ops.amin(-ratio, (-1,), keepdims=False)


def factor_and_bound(a: Any, name: str, ops: Any) -> tuple[Any, Any]:
    """:func:`cholesky_checked`'s factor and the condition bound maxᵢ Aᵢᵢ/Lᵢᵢ² per element
    (None when traced), which decides numerical singularity on the way.

    Lᵢᵢ²/Aᵢᵢ is the part of the diagonal entry left after eliminating the earlier variables; an
    exactly dependent column (e.g. a duplicated feature in a sample covariance) leaves only
    rounding (≈ u), where LAPACK may return a pivot of size √u instead of failing: so a
    factorisation that succeeded with some Lᵢᵢ² ≤ d·u·Aᵢᵢ is refused. The ratio is scale-free:
    diag(1e-150, 1e150) is fine, as are any well-conditioned blocks at any scale.
    """
    try:
        factor = ops.cholesky(a)
    except ops.LinAlgError:
        factor = None
    if ops.is_traced(a):
        return factor, None
    if factor is not None and ops.all_finite(factor):
        bound = condition_bound(ops, ops.diagonal(a), factor)
        largest = -ops.min_value(-bound)
        if largest * (a.shape[-1] * float(np.finfo(ops.numpy_dtype(a)).eps)) < 1:
            return factor, bound
    _raise_not_positive_definite(a, name, ops)


def _raise_not_positive_definite(a: Any, name: str, ops: Any) -> NoReturn:
    """Explain a failed Cholesky: which batch element, and how far from definite it is."""
    m = ops.to_numpy(a)
    eig = np.linalg.eigvalsh(np.asarray(m, dtype=np.float64))
    largest = np.maximum(np.abs(eig[..., -1]), np.finfo(np.float64).tiny)
    relative = eig[..., 0] / largest
    limit = m.shape[-1] * np.finfo(m.dtype).eps
    failing = np.argwhere(relative <= limit) if relative.ndim else np.zeros((0, 0), int)
    if len(failing):  # the first offending element, in batch order
        index = tuple(int(i) for i in failing[0])
    else:
        index = tuple(int(i) for i in np.unravel_index(np.argmin(relative), relative.shape))
    smallest = float(eig[..., 0][index])
    if smallest > 0:
        why = (f"numerically singular in {m.dtype}: eigenvalues span {1 / relative[index]:.3g}, "
               "beyond what a Cholesky factorization in this precision resolves")
    else:
        why = f"smallest eigenvalue is {smallest:.6g}"
    raise NotPositiveDefiniteError(
        f"{name} is not positive definite{describe_index(index)}: {why}; a covariance must be "
        "symmetric positive definite (add jitter to the diagonal or use a shrinkage estimate)"
    )


def float_dtype(*dtypes: np.dtype) -> np.dtype:
    """The compute dtype: float32 when every input is float32 or narrower, else float64.

    Half precision (float16, bfloat16) is computed in float32; integers in float64.
    """
    narrow = all(dtype.kind == "f" and dtype.itemsize <= 4 for dtype in dtypes)
    return np.dtype(np.float32) if narrow else np.dtype(np.float64)


def check_positive(x: Any, name: str, ops: Any, what: str = "entries") -> None:
    """Variances and standard deviations: every entry > 0, else name the first offender."""
    if ops.is_traced(x) or ops.min_value(x) > 0:
        return
    values = ops.to_numpy(x)
    if not (values > 0).all():
        where = first_true(~(values > 0))
        raise NotPositiveDefiniteError(
            f"{name} must have positive {what}: entry {where} is {float(values[where])!r}")
    # Positive on the host, not to the framework: XLA on CPU flushes subnormals to zero.
    where = tuple(int(i) for i in np.unravel_index(np.argmin(values), values.shape))
    raise DtypeError(
        f"{name} entry {where} is {float(values[where])!r}, a subnormal number, which "
        f"{ops.name} computes as 0 (it flushes numbers below {np.finfo(values.dtype).tiny:.3g}, "
        f"the smallest normal {values.dtype}, to zero); rescale the data")

"""The 2-Wasserstein distance between Gaussians, and the Fréchet (FID) distance of samples.

For P = N(μ₁, Σ₁) and Q = N(μ₂, Σ₂),

    W₂² = ‖μ₁ − μ₂‖² + T,   T = tr(Σ₁ + Σ₂ − 2C),   C = (Σ₁^½ Σ₂ Σ₁^½)^½.

The textbook T loses every digit when P ≈ Q (T is second order in Σ₂ − Σ₁, its terms are not).
The cancellation-free form used here: in the eigenbasis of Σ₁ = U S Uᵀ, with the difference of
the raw inputs D = Uᵀ(Σ₂ − Σ₁)U, the matrix C̃ = UᵀCU is the square root of
K = S^½(S + D)S^½ = V diag(c²) Vᵀ. X = C̃ − S solves the Sylvester equation C̃X + XS = S^½DS^½
(expand C̃² − S²), and T = tr D − 2 tr X = tr(X S⁻¹ X) (substitute D = S^-½(SX + XS + X²)S^-½).
So T = ‖W‖²_F for W = X S^-½, which solves C̃W + WS = S^½D; in the basis V of C̃,

    T = Σᵢⱼ Hᵢⱼ²,   Hᵢⱼ = (Vᵀ S^½ D)ᵢⱼ / (cᵢ + sⱼ):

a sum of squares with positive denominators, formed from Σ₂ − Σ₁ itself. It is ≥ 0, exactly 0
when the two covariances are equal arrays, and as accurate for P ≈ Q as for separated pairs (the
computed C̃ only needs to be accurate relative to itself: W solves a linear equation with an
exact right-hand side).

Fast values first (:func:`gaussdiv.execution.refine.refine_cancelling`, as for KL): with the
Cholesky factors L₁, L₂ cached on the Gaussians, tr C = Σ √λᵢ(ZᵀZ) for Z = L₂ᵀL₁ (the
eigenvalues of Σ₁Σ₂), one product and one ``eigvalsh``. The eigenbasis form above (two
eigendecompositions) runs only for the batch elements where that sum cancels, and the result
carries the fast formula's gradient (smooth also at P = Q and for repeated eigenvalues, where
eigenvector derivatives are not).

Scales near the float range: W₂ is homogeneous, W₂(sP, sQ) = s·W₂(P, Q) for the map x → s x
(covariances scale by s²). Where tr Σ₁ + tr Σ₂ leaves 2^±400 (float64), so that ZᵀZ ~ Σ₁Σ₂
could overflow (entries ~1e77 already reach 1e308) or what matters in it underflow, or W₂² or
its mean part leaves the range where all their digits are carried (2^-969 … 2^1000) — an
O(batch) test on the traces and the result — the call is repeated in units of an exact power
of two s per element (the largest factor entry, or ‖μ₁ − μ₂‖ where that is larger, brought to
≈1) and the result scaled back once: W₂ ≈ 1e300 of a factor with an entry 1e300 (W₂² is then
+inf), W₂ ≈ 1e-150 of covariances ≈1e-300. What no scaling can carry — P ≈ Q where they differ
only along directions in which a covariance is more than ≈1e154 below its largest, or κ(Σ₁) so
large (≳1e60) that the eigenbasis form cannot resolve its small eigenvalues (checked against
T ≤ ‖Σ₂ − Σ₁‖_* and an estimate of that error) — is refused with a DtypeError naming the element.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

from gaussdiv.backends import Backend, backend_of, broadcast_shapes
from gaussdiv.errors import DimensionMismatchError, DtypeError, ShapeError
from gaussdiv.execution.refine import CANCELLATION_RATIO, refine_cancelling
from gaussdiv.gaussian import Gaussian, check_pair, entry_point, mean_difference, result
from gaussdiv.numerics.error_free import exp_dd, product_residual, square_dd, two_product
from gaussdiv.structures import (
    Covariance,
    DiagonalCovariance,
    FullPrecision,
    SemidefiniteCovariance,
)
from gaussdiv.structures.diagonal import sum_over_dim
from gaussdiv.types import Array, ArrayLike
from gaussdiv.validation import (
    check_dtype,
    check_finite,
    describe_index,
    first_true,
    float_dtype,
)

#: The fast sum T + ‖μ₁ − μ₂‖² is kept where it is at least this fraction of its rounding
#: magnitude tr Σ₁ + tr Σ₂ + 2 tr C. Measured rounding for κ(Σ) ≤ 100 and d ≤ 1024: ≤ 4u × that
#: magnitude, so ≤ 2⁹u ≈ 6e-14 relative in float64 (2⁵u ≈ 2e-6 in float32); it grows with the
#: condition number (≤ 7.5e-14 relative at the cut for κ = 10⁴, ≈ 1.5e-12 for κ = 10⁶…10⁸).
_FAST_MIN_FRACTION = {np.dtype(np.float64): 2.0**-7, np.dtype(np.float32): 2.0**-3}
#: The largest |e| for which 2^e and 2^-e are both normal numbers, per compute dtype.
_EXPONENT_LIMIT = {np.dtype(t): np.finfo(t).maxexp - 2 for t in (np.float64, np.float32)}
#: Unscaled, ‖L₁‖² + ‖L₂‖² within 2^±(0.39·maxexp) (2^±400 in float64) keeps every entry of ZᵀZ
#: finite and what underflows in it below 2⁻¹³⁰ of the sum; W₂² within [tiny·2^digits,
#: 2^(maxexp − 24)] has all its digits. Outside, the element is recomputed scaled.
_TRACE_RANGE = {np.dtype(t): (2.0 ** -(39 * np.finfo(t).maxexp // 100),
                              2.0 ** (39 * np.finfo(t).maxexp // 100))
                for t in (np.float64, np.float32)}
_VALUE_RANGE = {np.dtype(t): (float(np.finfo(t).tiny) * 2.0 ** np.finfo(t).nmant,
                              2.0 ** (np.finfo(t).maxexp - 24)) for t in (np.float64, np.float32)}


@entry_point(semidefinite=True)
def wasserstein(p: Gaussian, q: Gaussian, squared: bool = False) -> Array:
    """The 2-Wasserstein distance W₂(P, Q) (or W₂² with ``squared=True``), in closed form.

    W₂² = ‖μ₁ − μ₂‖² + tr(Σ₁ + Σ₂ − 2(Σ₁^½Σ₂Σ₁^½)^½), evaluated without cancellation (see the
    module docstring for the sum-of-squares form used where P ≈ Q).

    Args:
        p: N(μ₁, Σ₁), batch shape B₁; any structure, and Σ₁ may be singular
            (``Gaussian.semidefinite``).
        q: N(μ₂, Σ₂), batch shape B₂ broadcastable with B₁; same d and framework.
        squared: if true, return W₂² instead of W₂ (default False).

    Returns:
        Array of shape broadcast(B₁, B₂) (a NumPy scalar for one pair) in the framework and
        dtype rules of :func:`gaussdiv.kl`: real, ≥ 0, never NaN (but under tracing, where
        nothing is checked, for an element that would be refused); W₂ wherever it is within the
        float range, whatever the scale of the inputs (W₂ ≈ 1e300 of a factor entry 1e300,
        W₂ ≈ 1e-160 of covariances ≈ 1e-320; W₂² is then +inf or 0 where it is beyond the
        range itself); exactly 0 when P and Q are given by equal arrays. Differentiable
        (torch, JAX) wherever W₂² is smooth, P = Q included; W₂ itself has gradient 0 at
        P = Q (where it is not differentiable).

    Cost per pair: two diagonals O(d) (σᵢ = √vᵢ differences as (v₁ − v₂)/(σ₁ + σ₂), or
    e^(ℓ/2)·expm1 of the half-difference for log-variances); every other pair of structures is
    densified, O(d³): one d×d product and one ``eigvalsh`` on the factors (cached on full
    covariances; a precision factor is inverted, a low-rank or Kronecker Σ densified and
    factored), plus, where that sum cancels, two d×d eigendecompositions and three products.
    A semidefinite side takes the thin square root U diag(√λ) of its eigendecomposition
    (computed at construction; d × rank) and the singular values of Z instead of
    ``eigvalsh(ZᵀZ)``; where P ≈ Q and a side has rank < d, T comes from the Procrustes sum of
    squares ‖F₁ − F₂Q‖² of the square roots (the eigenbasis form needs Σ₁^-½). Extreme scales
    cost nothing elsewhere: an O(batch) test on the traces and the result (one host read);
    where it fails for some element (tr Σ beyond 2^±400, W₂² beyond 2^-969 … 2^1000), the
    call is repeated for the batch in units of an exact power of two per element.

    Accuracy, measured against 50-digit mpmath (tests/test_wasserstein.py, d ≤ 64, κ(Σ) ≤ 10³),
    worst relative error in float64: dense separated 1.1e-14; dense near pairs
    (Σ₂ = Σ₁ + δE, μ₂ = μ₁ + δe, δ = 1e-1 … 1e-12, also with μ₂ = μ₁) 6.8e-15, where the
    textbook sum is off by 50× (d = 3) to 2000× (d = 12) at δ = 1e-8; diagonal pairs (all
    kinds) 1.5e-16; mixed structured pairs, separated or near, 6.4e-16. float32 inputs:
    2.4e-7 (cancelling elements are recomputed in float64 where the framework has it). The
    eigenbasis form's error grows like κ(Σ₁)·u (8e-13 at κ = 10⁴ with δ = 1e-6), the fast
    sum's as noted at ``_FAST_MIN_FRACTION``. Precisions (``FullPrecision``) enter through
    Σ = R⁻ᵀR⁻¹, accurate to ≈ κ·u: near a precision side the relative accuracy is that of
    Σ₂ − Σ₁ formed from it. Scaled by 2^k (tests/test_wasserstein_extreme.py, factors and
    means, k = -1000 … 1000): 2^-k W₂ equals the value at k = 0 to 1e-14 (a W₂ below the
    normal range keeps its subnormal digits only). Covariances spanning up to 1e±360 in one
    matrix (diagonal, against nearby dense partners, δ = 1e-1 … 1e-12; 280 pairs): 12 refused
    (the estimated error beyond 2⁻²⁰ of T), of the others 264 within 1e-15, 4 within 1.1e-7.
    Singular covariances (tests/test_semidefinite.py, Σ = fl(A Aᵀ) of rank r < d against
    mpmath of the exact A Aᵀ): separated pairs, with every structure as partner, ≤ 1e-13
    relative; near pairs (A + δE, δ = 1e-1 … 1e-12) within d·u·(tr Σ₁ + tr Σ₂) absolute,
    the rounding of fl(A Aᵀ) itself; FID statistics (np.cov of 500 and 400 2048-d samples)
    agree with :func:`frechet_distance` of the samples to 2.6e-16.

    Raises:
        DimensionMismatchError: p and q have different d.
        BackendMismatchError: p and q hold arrays of different frameworks.
        ShapeError: B₁ and B₂ do not broadcast.
        NotPositiveDefiniteError: a low-rank Σ = W Wᵀ + diag(v), densified for the pair, is
            numerically singular in its dtype (W far larger than √v); the message names it.
        DtypeError: W₂ cannot be carried in float64, naming the batch element: a factor L
            (L Lᵀ = Σ) has entries beyond the float range (Σ = Λ⁻¹ of a precision with pivots
            ~1e-320), or P ≈ Q differ only along directions in which a covariance is more than
            ≈1e154 below its largest, or κ(Σ₁) is so large (≳ 1e60) that the eigenbasis form
            cannot resolve its small eigenvalues (it then breaks the bound it is checked
            against, T ≤ ‖Σ₂ − Σ₁‖_*).
        TypeError: p or q is not a Gaussian.

    Examples:
        >>> import numpy as np, gaussdiv
        >>> p = gaussdiv.Gaussian([0.0, 0.0], np.eye(2))
        >>> q = gaussdiv.Gaussian([1.0, 1.0], 4 * np.eye(2))
        >>> float(gaussdiv.wasserstein(p, q, squared=True))  # ‖(1, 1)‖² + tr(I + 4I − 2·2I)
        4.0
        >>> float(gaussdiv.wasserstein(p, q)), float(gaussdiv.wasserstein(p, p))
        (2.0, 0.0)
    """
    check_pair(p, q)
    ops = p.ops
    with np.errstate(all="ignore"):  # overflow to inf is a result, not a warning
        diff = mean_difference(p, q)
        mean_term = _squared_norm(ops, diff)
        term, resolved = _covariance_term(p.cov, q.cov, mean_term)
        value = mean_term + term
        resolved = resolved & _carried(ops, diff, mean_term, value)
        value = _rescaled_where_needed(p, q, diff, _finish(ops, value, squared), resolved,
                                       squared)
    return result(value, p, q)


def frechet_distance(features_a: ArrayLike, features_b: ArrayLike) -> Array:
    """The Fréchet distance of two sets of features (FID), computed from the samples themselves.

    FID = ‖x̄_a − x̄_b‖² + tr(Σ_a + Σ_b − 2(Σ_a^½Σ_bΣ_a^½)^½): W₂² between the Gaussians fitted
    with the FID convention — sample means x̄ and covariances Σ with ddof = 1, as
    ``np.cov(x, rowvar=False)`` in pytorch-fid.

    Args:
        features_a: (n_a, d) array (or nested list), one sample per row, n_a ≥ 2, finite,
            real or integer.
        features_b: (n_b, d) array of the same framework and d, n_b ≥ 2, finite.

    Returns:
        A 0-d array of the inputs' framework (a NumPy scalar for NumPy): ≥ 0, exactly 0 for
        equal arrays. Computed in float64 (float32 inputs included, where the framework has
        float64), returned in the inputs' floating dtype (float32 when both are float32 or
        narrower, else float64). Differentiable in torch and JAX (the rotation below enters as
        a constant: by its optimality that gives the exact gradient).

    Rank-deficient covariances (n ≤ d, e.g. 2048-d features of 1000 images) are exact: with
    A = (X_a − x̄_a)/√(n_a − 1) and B likewise (Σ_a = AᵀA, Σ_b = BᵀB),
    tr((Σ_a^½Σ_bΣ_a^½)^½) = ‖ABᵀ‖_* (the nonzero eigenvalues of Σ_aΣ_b are those of
    (ABᵀ)(ABᵀ)ᵀ), and with the thin SVD ABᵀ = P S Rᵀ (n_b ≤ n_a; else the roles swap),

        tr(Σ_a + Σ_b − 2(Σ_a^½Σ_bΣ_a^½)^½) = ‖A‖² + ‖B‖² − 2‖ABᵀ‖_* = ‖A − P Rᵀ B‖²_F

    (P Rᵀ has orthonormal columns: ‖PRᵀB‖ = ‖B‖): a sum of squares, never negative. Samples
    beyond d are first reduced to their d×d triangular QR factor (AᵀA is all that matters).
    Cost: for n_a, n_b ≤ d, three products of O(n_a n_b d) and the SVD of the n_a×n_b matrix
    ABᵀ (2048-d, n = 500: one 500×500 SVD); a set with n > d adds its QR, O(n d²), and
    takes part as d×d.

    Accuracy: measured against mpmath from the samples, relative error ≤ 4e-16 at d = 64 with
    n = 40 and 25 samples, ≤ 8e-16 against the definition (d×d square roots) for n < d and
    n > d; at d = 2048, n = 500 and 400 it agrees with the singular values of ABᵀ to 1e-16
    (a plain eigh route of the Gram matrix is off by 1.5e-9 there: √ of its rounded zero
    eigenvalues). For nearly equal sets the absolute error is ≈ u·√(FID·tr Σ_a), the rounding
    of A − PRᵀB (nothing pairs the rows of the two sets to form Σ_b − Σ_a exactly).

    Raises:
        ShapeError: an input is not 2-d, or has fewer than 2 rows or no columns.
        DimensionMismatchError: the two have different numbers of columns d.
        NonFiniteError: an input has a NaN or infinite entry.
        DtypeError: an input is complex or boolean.
        BackendMismatchError: the two are arrays of different frameworks.

    Examples:
        >>> import numpy as np, gaussdiv
        >>> a, b = np.array([[0.0], [2.0]]), np.array([[1.0], [3.0]])   # variances 2 and 2
        >>> float(gaussdiv.frechet_distance(a, b))     # (1 − 2)² + 2 + 2 − 2√(2·2) = 1
        1.0
        >>> x = np.random.default_rng(0).standard_normal((100, 8))
        >>> round(float(gaussdiv.frechet_distance(x, x + 1.0)), 6)   # ‖Δx̄‖² = 8
        8.0
        >>> float(gaussdiv.frechet_distance(x, x))
        0.0
    """
    ops = backend_of(features_a, features_b)
    dtypes = [check_dtype(x, name, ops) for x, name in ((features_a, "features_a"),
                                                        (features_b, "features_b"))]
    out_dtype = float_dtype(*dtypes)
    like = features_a if backend_of(features_a) is ops else features_b
    a = _features(ops, features_a, "features_a", like)
    b = _features(ops, features_b, "features_b", like)
    if a.shape[1] != b.shape[1]:
        raise DimensionMismatchError(
            f"features_a and features_b have different feature dimensions: features_a is "
            f"{tuple(a.shape)}, features_b is {tuple(b.shape)} (rows are samples, columns "
            "features)")
    identical = (tuple(a.shape) == tuple(b.shape) and not ops.is_traced(a)
                 and not ops.is_traced(b) and bool(ops.xp.all(a == b)))
    mean_a = ops.sum(a, 0) / a.shape[0]
    mean_b = ops.sum(b, 0) / b.shape[0]
    diff = mean_a - mean_b
    fa = _row_factor(ops, a - mean_a)
    fb = _row_factor(ops, b - mean_b)
    if fa.shape[0] < fb.shape[0]:
        fa, fb = fb, fa
    with ops.no_grad():
        left, _, right_t = ops.xp.linalg.svd(ops.stop_gradient(fa @ ops.matrix_transpose(fb)),
                                             full_matrices=False)
    residual = fa - left @ (right_t @ fb)
    value = ops.sum(diff * diff, 0) + ops.sum(residual * residual, (0, 1))
    if identical:
        value = 0 * value
    return ops.result(value, ops.framework_dtype(out_dtype))


# ---------------------------------------------------------------------------------- W₂ routes
def _covariance_term(p: Covariance, q: Covariance, mean_term: Any) -> tuple[Any, Any]:
    """(T, resolved): T = tr(Σ₁ + Σ₂ − 2C), shape broadcast(batch₁, batch₂), cancellation-free,
    and where it is within the range that needs no rescaling (the caller recomputes the rest)."""
    ops = p.ops
    if isinstance(p, DiagonalCovariance) and isinstance(q, DiagonalCovariance):
        diff = _diagonal_differences(p, q)
        term = sum_over_dim(diff * diff, p.dim, ops)
        low, high = _VALUE_RANGE[ops.numpy_dtype(term)]
        resolved = (term >= low) & (term <= high)
        # T = 0 is exact for equal parameters of one kind; across kinds the variances are
        # formed (s², e^ℓ), and below the normal range two of them may round to one value
        return term, resolved | _is_zero(ops, diff) if p.kind == q.kind else resolved
    l1, l2 = _common_dtype(ops, _covariance_factor(p), _covariance_factor(q))
    try:
        fast, magnitude, traces = _fast_terms(ops, l1, l2, _singular(p, q))
    except ops.LinAlgError:  # NumPy and torch, for non-finite ZᵀZ: recompute every element
        shape = broadcast_shapes(p.batch_shape, q.batch_shape)
        zeros = ops.cast_like(ops.index_array(np.zeros(shape), like=mean_term), mean_term)
        return zeros, zeros != 0
    low, high = _TRACE_RANGE[ops.numpy_dtype(traces)]
    resolved = (traces >= low) & (traces <= high)
    # Elements out of range are not refined here (their exact route runs rescaled).
    fast = ops.xp.where(resolved, fast, magnitude)
    return _refined(p, q, fast, magnitude, mean_term, rescaled=False), resolved


def _refined(p: Covariance, q: Covariance, fast: Any, magnitude: Any, offset: Any,
             rescaled: bool) -> Any:
    """The fast T, recomputed by the eigenbasis form where it cancels against ``offset``."""
    # A float32 side's factor limits the fast sum to float32 accuracy even in a float64 pair.
    fraction = _FAST_MIN_FRACTION[min(p.dtype, q.dtype, key=lambda t: t.itemsize)]
    return refine_cancelling(fast, magnitude * (fraction / CANCELLATION_RATIO), p, q,
                             _rescaled_exact_term if rescaled else _exact_term, offset=offset)


def _diagonal_differences(p: DiagonalCovariance, q: DiagonalCovariance) -> Any:
    """σ₁ᵢ − σ₂ᵢ (up to sign), each formed without cancellation: T = Σᵢ of their squares."""
    xp = p.ops.xp
    if p.kind == q.kind == "std":
        return p.param - q.param
    if p.kind == q.kind == "logvar":
        # |σ₁ − σ₂| = e^(m/2)·(1 − e^(−|ℓ₁ − ℓ₂|/2)), m = max(ℓ₁, ℓ₂): no overflow beyond W₂'s;
        # 0 for equal ℓ also where e^(m/2) overflows (∞·0).
        shrink = xp.expm1(-0.5 * xp.abs(p.param - q.param))
        return xp.where(shrink == 0, shrink, xp.exp(0.5 * xp.maximum(p.param, q.param)) * shrink)
    # (v₁ − v₂)/(σ₁ + σ₂), v as exact double-doubles (s², e^ℓ)
    (hi1, lo1), (hi2, lo2) = p.var_dd(), q.var_dd()
    return ((hi1 - hi2) + (lo1 - lo2)) / (p.std() + q.std())


def _carried(ops: Backend, diff: Any, mean_term: Any, value: Any) -> Any:
    """Where W₂² = ``value`` and its mean part ‖μ₁ − μ₂‖² = ``mean_term`` carry all their digits:
    W₂² in the normal range with a margin of the dtype's digits (or exactly 0), and ‖μ₁ − μ₂‖²
    too unless it is negligible beside W₂² (or μ₁ = μ₂). O(batch·d)."""
    low, high = _VALUE_RANGE[ops.numpy_dtype(value)]
    return ((value <= high) & ((value >= low) | (value == 0))
            & ((mean_term >= low) | (value >= low * 2.0**64) | _is_zero(ops, diff)))


def _is_zero(ops: Backend, x: Any) -> Any:
    """Whether every entry along the last axis is 0 (not merely squares below the float range):
    the squared norm of x scaled up by 2^(0.58·maxexp), which no nonzero entry leaves at 0."""
    up = np.int32(58 * np.finfo(ops.numpy_dtype(x)).maxexp // 100)
    return _squared_norm(ops, _scaled(ops, x, ops.index_array(up, like=x))) == 0


def _scaled(ops: Backend, x: Any, exponent: Any) -> Any:
    """x·2^e along the last axis for integers e (*batch): by ldexp, which a compiler does not
    reassociate (XLA turns (c·s)² into c²·s², ∞·0 for a constant c = 0 and s = 2^600); both
    broadcast first (torch's ldexp does not)."""
    xp = ops.xp
    exponent = exponent[..., None]
    shape = broadcast_shapes(tuple(x.shape), tuple(exponent.shape))
    return xp.ldexp(xp.broadcast_to(x, shape), xp.broadcast_to(exponent, shape))


def _exponent(ops: Backend, unit: Any) -> Any:
    """k for a power of two unit = 2^k."""
    return ops.xp.frexp(unit)[1] - 1


def _finish(ops: Backend, value: Any, squared: bool) -> Any:
    """W₂² → W₂ (with derivative 0 at 0) unless ``squared``."""
    return value if squared else _sqrt_zero_safe(ops, value)


def _rescaled_where_needed(p: Gaussian, q: Gaussian, diff: Any, value: Any, resolved: Any,
                           squared: bool) -> Any:
    """``value`` (W₂ or W₂², shape B), or, where some element is not ``resolved``, every
    element recomputed by :func:`_rescaled_squared_distance` (the same values for the others,
    scaled exactly; and no derivative of the unscaled formula, ∞·0 where it overflowed, in the
    result); a DtypeError where even that cannot carry W₂. One host read (the mask); under
    tracing the choice is made on the device."""
    ops = p.ops
    shape = tuple(value.shape)
    d = p.dim

    def recompute() -> Any:
        scaled, unit = _rescaled_squared_distance(
            p.cov.take_flat(shape, slice(None)), q.cov.take_flat(shape, slice(None)),
            ops.xp.broadcast_to(diff, (*shape, d)).reshape(-1, d))
        back = 1 / unit  # exact: a power of two within the normal range
        scaled = _finish(ops, scaled, squared) * back if not squared else (scaled * back) * back
        return ops.cast_like(scaled, value).reshape(shape)

    if ops.is_traced(value) or ops.is_traced(resolved):
        return ops.when_any(~resolved, recompute, value)
    if bool(np.all(ops.to_numpy(resolved))):
        return value
    try:
        value = recompute()
    except ops.LinAlgError:  # NumPy and torch, for non-finite entries: a factor beyond range
        _raise_unrepresentable(p.cov, q.cov)
        raise
    if math.isnan(ops.min_value(value)):
        _raise_unrepresentable(p.cov, q.cov, value)
    return value


def _rescaled_squared_distance(p: Covariance, q: Covariance, diff: Any) -> tuple[Any, Any]:
    """(s²W₂², s) for a flat batch (n,) of covariances and μ₁ − μ₂ = ``diff`` (n, d), in units
    of a power of two s per element: T is computed in the covariances' units (those of
    :func:`_pair_factors`, or of the σ of two diagonals), then the pair is expressed in the
    units of the larger of √T and ‖μ₁ − μ₂‖ (:func:`_combined`). Nothing overflows where W₂
    itself is in range, nothing that matters underflows (what is lost is below 2⁻⁵³⁷ of what
    it is compared with)."""
    ops = p.ops
    if isinstance(p, DiagonalCovariance) and isinstance(q, DiagonalCovariance):
        differences, unit = _scaled_diagonal_differences(p, q)
        return _combined(ops, diff, sum_over_dim(differences * differences, p.dim, ops), unit)
    l1, l2, unit = _pair_factors(p, q)
    fast, magnitude, _ = _fast_terms(ops, l1 * unit[..., None, None], l2 * unit[..., None, None],
                                     _singular(p, q))
    offset = _squared_norm(ops, _scaled(ops, diff, _exponent(ops, unit)))
    term = _refined(p, q, fast, magnitude, offset, rescaled=True)
    return _combined(ops, diff, term, unit)


def _scaled_diagonal_differences(p: DiagonalCovariance,
                                 q: DiagonalCovariance) -> tuple[Any, Any]:
    """(s·(σ₁ᵢ − σ₂ᵢ), s) for the power of two s that brings the largest σ to [½, 1): as
    :func:`_diagonal_differences`, with the variances of mixed kinds as double-doubles in these
    units, formed there (not scaled after they under- or overflowed): v·s² of variances, (sσ)²
    of standard deviations, (s·e^(ℓ/2))² of log-variances (ℓ to ±1400)."""
    ops = p.ops
    xp = ops.xp
    std1, std2 = p.std(), q.std()
    unit = _unit(ops, xp.maximum(ops.max_abs(std1, -1), ops.max_abs(std2, -1))[..., 0])
    if p.kind == q.kind:
        return _diagonal_differences(p, q) * unit[..., None], unit
    scale = unit[..., None]
    parts = []
    for cov, std in ((p, std1), (q, std2)):
        root = std * scale
        if cov.kind == "var":  # v·s², exact
            hi, lo = cov.param * scale * scale, 0 * root
        elif cov.kind == "std":  # (sσ)², exact
            hi, lo = square_dd(root, xp)
        else:  # (s·e^(ℓ/2))² from e^(ℓ/2) as a double-double: e^ℓ·s² to ≈ 2⁻¹⁰⁰
            top, bottom = exp_dd(0.5 * cov.param, xp)
            top, bottom = top * scale, bottom * scale
            hi, lo = two_product(top, top, xp)
            lo = lo + 2 * top * bottom
        parts.append((hi, lo, root))
    (hi1, lo1, root1), (hi2, lo2, root2) = parts
    return ((hi1 - hi2) + (lo1 - lo2)) / (root1 + root2), unit


def _combined(ops: Backend, diff: Any, term: Any, unit: Any) -> tuple[Any, Any]:
    """(s²W₂², s) from s_T²T = ``term`` in units s_T = ``unit``: s is the unit of the larger of
    √T and ‖diff‖ (:func:`_norm_unit`), so that the other, if it underflows, is below 2⁻⁵³⁷ of
    it; s/s_T is a power of two, and both parts of s²W₂² lie in [0, d]."""
    xp = ops.xp
    limit = 2.0 ** _EXPONENT_LIMIT[ops.numpy_dtype(term)]
    term_unit = xp.clip(unit * _norm_unit(ops, term), 1 / limit, limit)
    whole = xp.minimum(term_unit, _norm_unit(ops, _squared_norm(ops, diff)))
    ratio = whole / unit
    scaled = _scaled(ops, diff, _exponent(ops, whole))
    return _squared_norm(ops, scaled) + (term * ratio) * ratio, whole


def _pair_factors(p: Covariance, q: Covariance) -> tuple[Any, Any, Any]:
    """(L₁, L₂, s): factors Lₖ Lₖᵀ = Σₖ in their common dtype, and the power of two s per
    element that brings the larger one's largest entry to [½, 1): every product of the scaled
    pair then lies within [0, d²] (no overflow of ZᵀZ ~ Σ₁Σ₂, nor of Σ itself for a factor
    ~1e300), and what underflows in the fast sum (eigenvalues of ZᵀZ below the smallest
    subnormal) is < 2⁻⁵³⁷ of the magnitude it is compared with. Scaling by s is exact but for
    entries 2¹⁰²² times below the largest. From the largest entry (not a sum), so that the
    exact route, recomputing it for the elements it gets, finds the same s. O(d²) per element."""
    ops = p.ops
    l1, l2 = _common_dtype(ops, _covariance_factor(p), _covariance_factor(q))
    return l1, l2, _unit(ops, ops.xp.maximum(_max_abs_matrix(ops, l1), _max_abs_matrix(ops, l2)))


def _fast_terms(ops: Backend, l1: Any, l2: Any, singular: bool = False
                ) -> tuple[Any, Any, Any]:
    """The textbook T = ‖L₁‖² + ‖L₂‖² − 2 Σ √λᵢ(ZᵀZ), Z = L₂ᵀL₁, its rounding magnitude, and
    the traces ‖L₁‖² + ‖L₂‖² = tr Σ₁ + tr Σ₂. For a ``singular`` pair (a semidefinite side)
    Σ √λᵢ is the sum of Z's singular values instead: the zero eigenvalues of ZᵀZ round to
    ≈ u‖Z‖², whose square roots would add ≈ √u‖Z‖ each; a zero singular value rounds to ≈ u‖Z‖."""
    z = ops.matrix_transpose(l2) @ l1
    if singular:
        roots = ops.sum(ops.svdvals(z), -1)
    else:
        eigenvalues = ops.eigvalsh(ops.matrix_transpose(z) @ z)  # those of Σ₁Σ₂
        # derivative 0 (not ∞·0) where an eigenvalue rounds or underflows to 0
        roots = ops.sum(_sqrt_zero_safe(ops, eigenvalues), -1)
    square = "...ij,...ij->..."
    traces = ops.xp.einsum(square, l1, l1) + ops.xp.einsum(square, l2, l2)
    return traces - 2 * roots, traces + 2 * roots, traces


def _exact_term(p: Covariance, q: Covariance, fast: Any) -> Any:
    """T by the eigenbasis sum of squares for a flat batch (n,), from Σ₂ − Σ₁ formed as
    double-doubles; in float64 where the framework has it, returned in ``fast``'s dtype. NaN
    where it is not resolved (:func:`_checked_term`)."""
    ops = p.ops
    (hi1, lo1), (hi2, lo2) = _dense_dd(p), _dense_dd(q)
    parts = [ops.widen(x) for x in (hi1, lo1, hi2, lo2)]
    if parts[0] is not None:
        hi1, lo1, hi2, lo2 = parts
    else:
        hi1, lo1, hi2, lo2 = _common_dtype(ops, hi1, lo1, hi2, lo2)
    def eigenbasis() -> Any:
        return _checked_term(ops, hi1, (hi2 - hi1) + (lo2 - lo1))

    if not _singular(p, q):
        return ops.cast_like(eigenbasis(), fast)
    roots = _covariance_factor(p), _covariance_factor(q)
    factors = [ops.widen(x) for x in roots]
    if factors[0] is None:
        factors = _common_dtype(ops, *roots)
    value = _where_full_rank(p, q, eigenbasis, hi1[..., 0, 0])
    return ops.cast_like(_procrustes_where_unresolved(ops, value, *factors), fast)


def _where_full_rank(p: Covariance, q: Covariance, eigenbasis: Callable[[], Any],
                     like: Any) -> Any:
    """``eigenbasis()`` (n,) where both sides have rank d, NaN elsewhere (for the Procrustes
    route), in ``like``'s dtype; not computed at all where no element has full rank.

    The eigenbasis form needs Σ₁^-½; at rank < d it splits over Σ₁'s range and null space, and
    there, wherever Σ₂ lacks one of Σ₁'s small directions, K = S^½(Σ₂)ₐₐS^½ is singular and
    its rounded zero eigenvalues (≈ u·s_max² each, so cᵢ ≈ √u·s_max) swamp the denominators
    cᵢ + sⱼ of those directions — measured: relative errors up to 0.5 that no check caught."""
    ops = p.ops
    d = p.dim
    full = (_rank(p) == d) & (_rank(q) == d)
    unresolved = math.nan + 0 * like
    if not ops.is_traced(like) and not bool(np.any(ops.to_numpy(full))):
        return unresolved
    return ops.xp.where(full, eigenbasis(), unresolved)


def _thin_svd(ops: Backend, a: Any) -> tuple[Any, Any, Any]:
    """U, S, Vᵀ of the thin SVD of a (..., m, n) (torch and NumPy spell the flag alike)."""
    return ops.xp.linalg.svd(a, full_matrices=False)


def _rank(cov: Covariance) -> Any:
    """The numerical rank per element: a semidefinite structure's own, d for the others."""
    return cov.rank() if isinstance(cov, SemidefiniteCovariance) else cov.dim


def _procrustes_where_unresolved(ops: Backend, value: Any, f1: Any, f2: Any) -> Any:
    """``value`` (n,), with its NaNs (rank-deficient elements, and those the eigenbasis form
    did not resolve) replaced by T = ‖F_w − F_nQ‖²_F for the square roots Fₖ Fₖᵀ = Σₖ
    (n, d, kₖ), F_w the wider, and Q = RPᵀ (orthonormal rows) from the thin SVD
    F_nᵀF_w = R S Pᵀ: ‖F₁‖² + ‖F₂‖² − 2 Σ S as a sum of squares (Procrustes, as
    :func:`frechet_distance`), never negative, with an absolute error ≈ d·u·‖F‖·√T — within
    the d·u·(tr Σ₁ + tr Σ₂) that the rounding of a stored singular Σ leaves undetermined. Q
    enters as a constant (by its optimality, the exact gradient). Exactly 0 for equal
    factors."""
    xp = ops.xp
    unresolved = xp.isnan(value)
    if not ops.is_traced(value) and not bool(np.any(ops.to_numpy(unresolved))):
        return value

    def procrustes() -> Any:
        tr = ops.matrix_transpose
        wide, narrow = (f1, f2) if f1.shape[-1] >= f2.shape[-1] else (f2, f1)
        with ops.no_grad():  # Q (k_narrow × k_wide) with orthonormal rows: ‖F Q‖ = ‖F‖
            left, _, right_t = _thin_svd(ops, ops.stop_gradient(tr(narrow) @ wide))
            rotation = left @ right_t
        residual = wide - narrow @ rotation
        term = xp.einsum("...ij,...ij->...", residual, residual)
        if tuple(f1.shape) == tuple(f2.shape):
            term = xp.where(xp.all(f1 == f2, axis=(-2, -1)), 0 * term, term)
        return xp.where(unresolved, term, value)

    return ops.when_any(unresolved, procrustes, value)


def _rescaled_exact_term(p: Covariance, q: Covariance, fast: Any) -> Any:
    """s²T as :func:`_exact_term`, in the units s of :func:`_pair_factors` (recomputed from the
    same factors: the same s), scaled in float64 where the framework has it."""
    ops = p.ops
    l1, l2, unit = _pair_factors(p, q)
    wide = [ops.widen(x) for x in (l1, l2, unit)]
    if wide[0] is not None:
        l1, l2, unit = wide
    l1, l2 = l1 * unit[..., None, None], l2 * unit[..., None, None]
    (hi1, lo1), (hi2, lo2) = _scaled_dd(p, l1, unit), _scaled_dd(q, l2, unit)
    # Equal covariances by their factors: their scaled Σ may be equal by underflow alone.
    same = ops.xp.all(l1 == l2, axis=(-2, -1)) if tuple(l1.shape) == tuple(l2.shape) else \
        unit != unit  # factors of different widths (semidefinite sides): not equal
    def eigenbasis() -> Any:
        return _checked_term(ops, hi1, (hi2 - hi1) + (lo2 - lo1), same)

    if not _singular(p, q):
        return ops.cast_like(eigenbasis(), fast)
    value = _where_full_rank(p, q, eigenbasis, hi1[..., 0, 0])
    return ops.cast_like(_procrustes_where_unresolved(ops, value, l1, l2), fast)


def _checked_term(ops: Backend, sigma: Any, delta: Any, same: Any = None) -> Any:
    """:func:`_eigenbasis_term`, NaN (refused by the caller) also where it is within 2⁶⁵d²·tiny
    of 0: entries of Σ below the normal range lose up to tiny each, which moves √T by ≈ 2d·√tiny
    (Powers–Størmer, as there). Kept where the covariances are equal (``same``; by default where
    T = 0 exactly, which unscaled covariances give only for D = 0)."""
    xp = ops.xp
    value = _eigenbasis_term(ops, sigma, delta)
    tiny = float(np.finfo(ops.numpy_dtype(value)).tiny)
    lost = (value < 2.0**65 * sigma.shape[-1] ** 2 * tiny) & ~(value == 0 if same is None
                                                                  else same)
    return xp.where(lost, math.nan + 0 * value, value)


def _scaled_dd(cov: Covariance, factor: Any, unit: Any) -> tuple[Any, Any]:
    """s²Σ = hi + lo for a flat batch, in ``factor``'s dtype: the structure's own double-double
    Σ (exact from its inputs: a given matrix, variances, W Wᵀ + D) scaled by s², where that Σ
    is within the float range; else, for the elements where it over- or underflowed (a
    Cholesky factor ~1e200, a standard deviation ~1e-200), (sL)(sL)ᵀ with its rounding error,
    from the scaled factor ``factor`` = sL. Which: diag(hi)·s² against the row norms ‖sLᵢ‖²
    (equal but for the factor's backward error, ≈ d·u relative)."""
    ops = cov.ops
    xp = ops.xp
    hi, lo = _common_dtype(ops, *_dense_dd(cov), factor)[:2]
    square = unit[..., None, None] * unit[..., None, None]
    hi, lo = hi * square, lo * square
    rows = ops.sum(factor * factor, -1)
    faithful = xp.all(xp.abs(ops.diagonal(hi) - rows) <= 0.5 * rows, axis=-1) & xp.all(
        xp.isfinite(hi + lo), axis=(-2, -1))
    if not ops.is_traced(faithful) and bool(np.all(ops.to_numpy(faithful))):
        return hi, lo

    def from_factor() -> Any:
        product = factor @ ops.matrix_transpose(factor)
        residual = product_residual(product, factor, ops.matrix_transpose(factor), xp)
        keep = faithful[..., None, None]
        return (xp.where(keep, hi, product),
                xp.where(keep, lo, 0 * product if residual is None else -residual))

    return ops.when_any(~faithful, from_factor, (hi, lo))


def _eigenbasis_term(ops: Backend, sigma: Any, delta: Any) -> Any:
    """T = tr(Σ₁ + Σ₂ − 2C) for Σ₁ = ``sigma`` and Σ₂ = Σ₁ + ``delta`` (*batch, d, d), as
    Σᵢⱼ Hᵢⱼ², Hᵢⱼ = (Vᵀ S^½ D)ᵢⱼ / (cᵢ + sⱼ) (module docstring). Both inputs are symmetrised;
    eigenvalues rounded below 0 count as 0, and a term with cᵢ + sⱼ = 0 as 0. O(d³)."""
    xp = ops.xp
    tr = ops.matrix_transpose
    # Eigenvalues of Σ₁ in descending order (those of −Σ₁ ascending), so that K below is graded
    # with its large entries top-left: LAPACK's tridiagonal reduction then resolves K's small
    # eigenvalues to ≈ κ(Σ₁)·u relative, where ascending order loses ≈ κ(Σ₁)²·u (measured).
    minus_s, u = xp.linalg.eigh(-0.5 * (sigma + tr(sigma)))
    s = _nonnegative(ops, -minus_s)
    d = tr(u) @ (0.5 * (delta + tr(delta))) @ u
    d = 0.5 * (d + tr(d))
    r = xp.sqrt(s)
    k = (r[..., :, None] * r[..., None, :]) * d + (s * s)[..., None] * ops.eye(
        s.shape[-1], ops.numpy_dtype(s), like=s)
    kappa, v = xp.linalg.eigh(k)
    num = tr(v) @ (r[..., :, None] * d)
    den = xp.sqrt(_nonnegative(ops, kappa))[..., :, None] + s[..., None, :]
    positive = den > 0
    h = xp.where(positive, num / xp.where(positive, den, 1 + 0 * den), 0 * num)
    value = xp.einsum("...ij,...ij->...", h, h)
    return xp.where(_resolved(ops, value, d, k, kappa, minus_s, num), value,
                    math.nan + 0 * value)


def _resolved(ops: Backend, value: Any, d: Any, k: Any, kappa: Any, minus_s: Any,
              num: Any) -> Any:
    """Where the eigenbasis sum T = ``value`` is resolved; the checks, each a bound on how far
    the computed parts can be from the true ones (failing them, T is refused, not returned):

    - T ≤ ‖Σ₂ − Σ₁‖_* ≤ Σᵢⱼ |Dᵢⱼ|, by the Powers–Størmer inequality ‖A^½ − B^½‖²_F ≤ ‖A − B‖_*;
    - rounding of K's eigenvalues: a negative one (K ⪰ 0) shows their absolute error ε there
      (κ(Σ₁) ≳ 1e60, where the graded order no longer resolves K's small eigenvalues);
      cᵢ ∈ [√(cᵢ² − 4ε), √(cᵢ² + 4ε)] moves each Hᵢⱼ² within [numᵢⱼ²/(cᵢ⁺ + sⱼ)²,
      numᵢⱼ²/(cᵢ⁻ + sⱼ)²] (an estimate within 2× of the error measured at κ(Σ₁) ~ 1e100):
      kept where that moves T by no more than τ times the rest of T, τ the documented
      accuracy 100·κ(Σ₁)·u within [2⁻⁴⁰, 2⁻²⁰];
    - underflow: where K's diagonal sₖ(sₖ + Dₖₖ) falls below the normal range for sₖ > 0
      (Σ₁ spanning beyond ≈1e±154 in these units) those directions k of K are lost, which
      moves √T by at most √(2ℓ), ℓ = Σₖ Σⱼ |Dₖⱼ| over them (Powers–Størmer again): kept where
      that moves T by no more than τ. O(d²)."""
    xp = ops.xp
    zero = 0 * kappa
    total = "...ij->..."
    err = 4 * xp.maximum(-kappa[..., :1], zero[..., :1])  # eigh's eigenvalues ascend
    c2, s = xp.maximum(kappa, zero)[..., :, None], xp.maximum(-minus_s, zero)[..., None, :]
    low = xp.sqrt(xp.maximum(c2 - err[..., None], 0 * c2)) + s
    high = xp.sqrt(c2 + err[..., None]) + s
    moved = xp.where(num != 0, num / low, 0 * num) ** 2 - (num / high) ** 2
    # (terms with cᵢ + sⱼ = 0, counted as 0, are not estimated: their true value is unbounded
    # by these, and bounded by the first check)
    counted = (high > low) & (xp.sqrt(c2) + s > 0)
    spread = xp.einsum(total, xp.where(counted, moved, 0 * num))
    tiny = float(np.finfo(ops.numpy_dtype(value)).tiny)
    size = xp.abs(d)
    # underflowed directions: sₖ > 0 but sₖ(sₖ + Dₖₖ) < tiny (not an eigenvalue rounded to 0)
    lost = (ops.diagonal(k) < tiny) & (s[..., 0, :] > 0)
    ell = xp.einsum(total, xp.where(lost[..., :, None], size, 0 * d))
    # the documented accuracy 100·κ(Σ₁)·u, within [2⁻⁴⁰, 2⁻²⁰] (κ = ∞ where an sⱼ is 0)
    eps = float(np.finfo(ops.numpy_dtype(value)).eps)
    tol = xp.clip(100 * eps * s[..., 0, 0] / s[..., 0, -1], 2.0**-40, 2.0**-20)
    return ((value <= xp.einsum(total, size) * (1 + 2.0**-20))
            & (spread <= tol * (value - spread)) & (8 * ell <= tol * tol * value))


def _unit(ops: Backend, largest: Any) -> Any:
    """2^-e for largest = f·2^e, f ∈ [½, 1): the exact power of two that brings ``largest`` to
    [½, 1), e clamped to the dtype's normal range (|e| ≤ 1022 in float64, so that 2^-e and 2^e
    are both finite); the largest unit 2^1022 for largest = 0, which then takes no part in a
    minimum. No gradient flows through it."""
    xp = ops.xp
    largest = ops.stop_gradient(largest)
    limit = _EXPONENT_LIMIT[ops.numpy_dtype(largest)]
    exponent = xp.where(largest > 0, xp.frexp(largest)[1], -limit)
    exponent = xp.where(exponent > limit, limit, xp.where(exponent < -limit, -limit, exponent))
    return xp.ldexp(xp.ones_like(largest), -exponent)


def _norm_unit(ops: Backend, squared: Any) -> Any:
    """A power of two s with s²·``squared`` = ‖s·x‖² in [¼, 1), for ``squared`` = ‖x‖² in the
    normal range; where it overflowed, s = 2^-1022 (then |s·xᵢ| ≤ 4); where it is below the
    normal range (x = 0 included), s = 2^594 (then |s·xᵢ| < 2⁸³, and no subnormal xᵢ becomes
    subnormal in its square). float64 values; float32's scaled to its range."""
    xp = ops.xp
    squared = ops.stop_gradient(squared)
    limit = _EXPONENT_LIMIT[ops.numpy_dtype(squared)]
    small = (58 * (limit + 2)) // 100
    exponent = (xp.frexp(squared)[1] + 1) // 2  # ⌈e/2⌉ for squared = f·2^e
    exponent = xp.where(squared >= float(np.finfo(ops.numpy_dtype(squared)).tiny),
                        xp.where(xp.isinf(squared), limit, exponent), -small)
    return xp.ldexp(xp.ones_like(squared), -exponent)


def _max_abs_matrix(ops: Backend, a: Any) -> Any:
    """max |aᵢⱼ| over the last two axes, as max(max aᵢⱼ, −min aᵢⱼ): no temporary of a's size;
    exact, so the same in every route that recomputes it."""
    xp = ops.xp
    return xp.maximum(xp.amax(a, (-2, -1)), -ops.amin(a, (-2, -1), keepdims=False))


def _squared_norm(ops: Backend, x: Any) -> Any:
    """Σᵢ xᵢ² over the last axis."""
    return ops.xp.einsum("...i,...i->...", x, x)


def _raise_unrepresentable(p: Covariance, q: Covariance, value: Any = None) -> None:
    """Raise DtypeError for what makes W₂ unrepresentable (the first that applies):

    - an element of p or q whose factor (L with L Lᵀ = Σ) has an entry beyond the float range
      (Σ = Λ⁻¹ of a precision with pivots ~1e-320, Kronecker factors ~1e200 each);
    - the first NaN of ``value``: an element the exact route could not resolve (P ≈ Q where a
      covariance spans beyond ≈1e±154, or its condition number is beyond float64's reach, and
      W₂ depends on its smallest directions; see :func:`_exact_term`).

    Returns where neither applies (the caller then re-raises what it caught)."""
    widest = "float64 — the widest dtype gaussdiv computes in — cannot hold"
    for name, cov in (("p", p), ("q", q)):
        ops = cov.ops
        bad = ~np.isfinite(ops.to_numpy(_max_abs_matrix(ops, _covariance_factor(cov))))
        if bad.any():
            dtype = np.dtype(cov.dtype).name
            precision = not isinstance(cov, SemidefiniteCovariance) and isinstance(
                cov.to_full(), FullPrecision)
            kind = "Σ = Λ⁻¹ of the precision" if precision else "the covariance"
            what, advice = ((widest, "rescale the data (W₂ scales with it)")
                            if dtype == "float64" else
                            (f"{dtype} cannot hold", "build the Gaussians in float64"))
            raise DtypeError(
                f"{name}'s covariance{describe_index(first_true(bad))} is beyond the range of "
                f"{dtype}: a square root L (L Lᵀ = Σ) of {kind} has entries over "
                f"{np.finfo(cov.dtype).max:.3g}, which {what}, so W₂ cannot be formed; {advice}")
    if value is not None:
        where = describe_index(first_true(np.isnan(p.ops.to_numpy(value))))
        raise DtypeError(
            f"p and q{where}: W₂ cannot be resolved here: the two covariances nearly agree, and "
            "what they differ in lies along directions in which a covariance is more than "
            "≈1e154 times smaller than along its largest (or its condition number is beyond "
            f"≈1e60), which {widest} next to the largest; give diagonal covariances as "
            "Gaussian.diag (W₂ is then exact per coordinate), or rescale the coordinates so "
            "that each covariance spans less")


def _covariance_factor(cov: Covariance) -> Any:
    """Some L with L Lᵀ = Σ: the Cholesky factor, R⁻ᵀ for a precision Λ = R Rᵀ (d × d), or
    U diag(√λ) for a semidefinite Σ, without the columns of its zero eigenvalues (d × k)."""
    if isinstance(cov, SemidefiniteCovariance):
        return cov.thin_root()
    full = cov.to_full()
    if isinstance(full, FullPrecision):
        return full.ops.matrix_transpose(full.inverse_factor())
    return full.factor


def _singular(p: Covariance, q: Covariance) -> bool:
    """Whether a side is semidefinite (possibly singular): W₂'s routes then take the forms
    that stay accurate at rank < d."""
    return isinstance(p, SemidefiniteCovariance) or isinstance(q, SemidefiniteCovariance)


def _dense_dd(cov: Covariance) -> tuple[Any, Any]:
    """Σ = hi + lo; a precision's Σ = R⁻ᵀR⁻¹ as a plain matrix (lo = 0)."""
    if isinstance(cov, FullPrecision):
        dense = cov.dense()
        return dense, 0 * dense
    return cov.dense_dd()


def _common_dtype(ops: Backend, *arrays: Any) -> list[Any]:
    """The arrays in the widest of their dtypes (a float32 side meeting a float64 one)."""
    widest = max(arrays, key=lambda x: ops.numpy_dtype(x).itemsize)
    dtype = ops.numpy_dtype(widest)
    return [x if ops.numpy_dtype(x) == dtype else ops.cast_like(x, widest) for x in arrays]


def _nonnegative(ops: Backend, x: Any) -> Any:
    """x with entries rounded below 0 (eigenvalues of PSD matrices) set to 0."""
    return ops.xp.where(x > 0, x, 0 * x)


def _sqrt_zero_safe(ops: Backend, x: Any) -> Any:
    """√x with derivative 0 (not NaN) at x = 0."""
    xp = ops.xp
    positive = x > 0
    return xp.where(positive, xp.sqrt(xp.where(positive, x, 1 + 0 * x)), 0 * x)


# ---------------------------------------------------------------------------------- FID parts
def _features(ops: Backend, x: Any, name: str, like: Any) -> Any:
    """A validated (n, d) feature array, n ≥ 2, in the compute dtype (float64 if available)."""
    shape = tuple(getattr(x, "shape", np.shape(x)))
    if len(shape) != 2:
        raise ShapeError(f"{name} must be a 2-d array (n samples × d features); got shape "
                         f"{shape}")
    if shape[0] < 2:
        raise ShapeError(f"{name} needs at least 2 samples (rows) for a covariance with "
                         f"ddof = 1; got shape {shape}")
    if shape[1] < 1:
        raise ShapeError(f"{name} must have at least one feature (column); got shape {shape}")
    array = ops.asarray(x, float_dtype(ops.numpy_dtype(x)), like)
    check_finite(array, name, ops)
    wide = ops.widen(array)  # float32 computed in float64 too, where the framework has it
    return array if wide is None else wide


def _row_factor(ops: Backend, centred: Any) -> Any:
    """F with FᵀF = centredᵀcentred/(n − 1): the scaled rows, or their d×d QR factor R when
    there are more rows than columns."""
    n, d = centred.shape
    scale = 1 / math.sqrt(n - 1)
    if n <= d:
        return centred * scale
    return ops.xp.linalg.qr(centred)[1] * scale

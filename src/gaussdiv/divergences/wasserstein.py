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
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from gaussdiv.backends import Backend, backend_of
from gaussdiv.errors import DimensionMismatchError, ShapeError
from gaussdiv.execution.refine import CANCELLATION_RATIO, refine_cancelling
from gaussdiv.gaussian import Gaussian, check_pair, entry_point, result
from gaussdiv.structures import Covariance, DiagonalCovariance, FullPrecision
from gaussdiv.structures.diagonal import sum_over_dim
from gaussdiv.types import Array, ArrayLike
from gaussdiv.validation import check_dtype, check_finite, float_dtype

#: The fast sum T + ‖μ₁ − μ₂‖² is kept where it is at least this fraction of its rounding
#: magnitude tr Σ₁ + tr Σ₂ + 2 tr C. Measured rounding for κ(Σ) ≤ 100 and d ≤ 1024: ≤ 4u × that
#: magnitude, so ≤ 2⁹u ≈ 6e-14 relative in float64 (2⁵u ≈ 2e-6 in float32); it grows with the
#: condition number (≤ 7.5e-14 relative at the cut for κ = 10⁴, ≈ 1.5e-12 for κ = 10⁶…10⁸).
_FAST_MIN_FRACTION = {np.dtype(np.float64): 2.0**-7, np.dtype(np.float32): 2.0**-3}


@entry_point
def wasserstein(p: Gaussian, q: Gaussian, squared: bool = False) -> Array:
    """The 2-Wasserstein distance W₂(P, Q) (or W₂² with ``squared=True``), in closed form.

    W₂² = ‖μ₁ − μ₂‖² + tr(Σ₁ + Σ₂ − 2(Σ₁^½Σ₂Σ₁^½)^½), evaluated without cancellation (see the
    module docstring for the sum-of-squares form used where P ≈ Q).

    Args:
        p: N(μ₁, Σ₁), batch shape B₁.
        q: N(μ₂, Σ₂), batch shape B₂ broadcastable with B₁; same d and framework.
        squared: if true, return W₂² instead of W₂ (default False).

    Returns:
        Array of shape broadcast(B₁, B₂) (a NumPy scalar for one pair) in the framework and
        dtype rules of :func:`gaussdiv.kl`: real, ≥ 0, never NaN for finite inputs whose W₂²
        is within the float range, exactly 0 when P and Q are given by equal arrays.
        Differentiable (torch, JAX) wherever W₂² is smooth, P = Q included; W₂ itself has
        gradient 0 at P = Q (where it is not differentiable).

    Cost per pair: two diagonals O(d) (σᵢ = √vᵢ differences as (v₁ − v₂)/(σ₁ + σ₂), or
    e^(ℓ/2)·expm1 of the half-difference for log-variances); every other pair of structures is
    densified, O(d³): one d×d product and one ``eigvalsh`` on the factors (cached on full
    covariances; a precision factor is inverted, a low-rank or Kronecker Σ densified and
    factored), plus, where that sum cancels, two d×d eigendecompositions and three products.

    Accuracy, measured against 50-digit mpmath (tests/test_wasserstein.py, d ≤ 64, κ(Σ) ≤ 10³),
    worst relative error in float64: dense separated 1.1e-14; dense near pairs
    (Σ₂ = Σ₁ + δE, μ₂ = μ₁ + δe, δ = 1e-1 … 1e-12, also with μ₂ = μ₁) 6.8e-15, where the
    textbook sum is off by 50× (d = 3) to 2000× (d = 12) at δ = 1e-8; diagonal pairs (all
    kinds) 1.5e-16; mixed structured pairs, separated or near, 6.4e-16. float32 inputs:
    2.4e-7 (cancelling elements are recomputed in float64 where the framework has it). The
    eigenbasis form's error grows like κ(Σ₁)·u (8e-13 at κ = 10⁴ with δ = 1e-6), the fast
    sum's as noted at ``_FAST_MIN_FRACTION``. Precisions (``FullPrecision``) enter through
    Σ = R⁻ᵀR⁻¹, accurate to ≈ κ·u: near a precision side the relative accuracy is that of
    Σ₂ − Σ₁ formed from it.

    Raises:
        DimensionMismatchError: p and q have different d.
        BackendMismatchError: p and q hold arrays of different frameworks.
        ShapeError: B₁ and B₂ do not broadcast.
        NotPositiveDefiniteError: a low-rank Σ = W Wᵀ + diag(v), densified for the pair, is
            numerically singular in its dtype (W far larger than √v); the message names it.
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
        diff = p.mean - q.mean
        mean_term = ops.sum(diff * diff, -1)
        value = mean_term + _covariance_term(p.cov, q.cov, mean_term)
        if not squared:
            value = _sqrt_zero_safe(ops, value)
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
def _covariance_term(p: Covariance, q: Covariance, mean_term: Any) -> Any:
    """T = tr(Σ₁ + Σ₂ − 2C), shape broadcast(batch₁, batch₂), cancellation-free."""
    if isinstance(p, DiagonalCovariance) and isinstance(q, DiagonalCovariance):
        return _diagonal_term(p, q)
    fast, magnitude = _fast_terms(p, q)
    # A float32 side's factor limits the fast sum to float32 accuracy even in a float64 pair.
    fraction = _FAST_MIN_FRACTION[min(p.dtype, q.dtype, key=lambda t: t.itemsize)]
    return refine_cancelling(fast, magnitude * (fraction / CANCELLATION_RATIO), p, q,
                             _exact_term, offset=mean_term)


def _diagonal_term(p: DiagonalCovariance, q: DiagonalCovariance) -> Any:
    """Σᵢ (σ₁ᵢ − σ₂ᵢ)² with every difference formed without cancellation. O(d)."""
    ops = p.ops
    xp = ops.xp
    if p.kind == q.kind == "std":
        diff = p.param - q.param
    elif p.kind == q.kind == "logvar":
        # |σ₁ − σ₂| = e^(m/2)·(1 − e^(−|ℓ₁ − ℓ₂|/2)), m = max(ℓ₁, ℓ₂): no overflow beyond W₂'s.
        diff = xp.exp(0.5 * xp.maximum(p.param, q.param)) * xp.expm1(
            -0.5 * xp.abs(p.param - q.param))
    else:  # (v₁ − v₂)/(σ₁ + σ₂), v as exact double-doubles (s², e^ℓ)
        (hi1, lo1), (hi2, lo2) = p.var_dd(), q.var_dd()
        diff = ((hi1 - hi2) + (lo1 - lo2)) / (p.std() + q.std())
    return sum_over_dim(diff * diff, p.dim, ops)


def _fast_terms(p: Covariance, q: Covariance) -> tuple[Any, Any]:
    """The textbook T = ‖L₁‖² + ‖L₂‖² − 2 Σ √λᵢ(ZᵀZ), Z = L₂ᵀL₁, and its rounding magnitude."""
    ops = p.ops
    l1, l2 = _common_dtype(ops, _covariance_factor(p), _covariance_factor(q))
    z = ops.matrix_transpose(l2) @ l1
    eigenvalues = ops.eigvalsh(ops.matrix_transpose(z) @ z)  # those of Σ₁Σ₂
    roots = ops.sum(ops.xp.sqrt(_nonnegative(ops, eigenvalues)), -1)
    traces = ops.sum(l1 * l1, (-2, -1)) + ops.sum(l2 * l2, (-2, -1))
    return traces - 2 * roots, traces + 2 * roots


def _exact_term(p: Covariance, q: Covariance, fast: Any) -> Any:
    """T by the eigenbasis sum of squares for a flat batch (n,), from Σ₂ − Σ₁ formed as
    double-doubles; in float64 where the framework has it, returned in ``fast``'s dtype."""
    ops = p.ops
    (hi1, lo1), (hi2, lo2) = _dense_dd(p), _dense_dd(q)
    parts = [ops.widen(x) for x in (hi1, lo1, hi2, lo2)]
    if parts[0] is not None:
        hi1, lo1, hi2, lo2 = parts
    else:
        hi1, lo1, hi2, lo2 = _common_dtype(ops, hi1, lo1, hi2, lo2)
    return ops.cast_like(_eigenbasis_term(ops, hi1, (hi2 - hi1) + (lo2 - lo1)), fast)


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
    return ops.sum(h * h, (-2, -1))


def _covariance_factor(cov: Covariance) -> Any:
    """Some L with L Lᵀ = Σ: the Cholesky factor, or R⁻ᵀ for a precision Λ = R Rᵀ."""
    full = cov.to_full()
    if isinstance(full, FullPrecision):
        return full.ops.matrix_transpose(full.inverse_factor())
    return full.factor


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

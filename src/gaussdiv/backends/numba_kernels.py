"""Compiled batched kernels for small dense matrices (numba), used by the NumPy backend.

LAPACK is called once per matrix by NumPy's batched routines, with per-call overhead and
temporaries that dominate at small d (measured: 100 000 8×8 systems solved by
``np.linalg.solve`` take ≈ 0.14 s, this module's forward substitution ≈ 0.01 s). Each kernel
here runs one loop over the batch (in parallel threads), one element at a time in cache:

- :func:`checked_cholesky` — finiteness, symmetry (|Aᵢⱼ − Aⱼᵢ| ≤ √u · maxᵢⱼ|Aᵢⱼ|, as
  :func:`gaussdiv.validation.check_symmetric`), the lower factor, its pivot test
  (Lⱼⱼ² > d·u·Aⱼⱼ, as :func:`gaussdiv.validation.cholesky_checked`) and the condition bound
  maxⱼ Aⱼⱼ/Lⱼⱼ² in one pass; a status per element instead of an exception, so callers name the
  failing element with the same checks as the uncompiled path.
- :func:`mix_cholesky` — the same for the Rényi mix αB + (1−α)A, formed in the kernel (no
  temporaries), non-definite elements replaced by I there.
- :func:`solve_triangular` — T X = B by substitution, T (n, d, d), B (n, d, k).
- :func:`copy` — the private copy a Gaussian keeps of a large input, on all threads.
- :func:`backward_error` — a Cholesky factor's backward error F = L⁻¹(A − LLᵀ)L⁻ᵀ, the
  residual to ≈ 2⁻²⁰ of itself by rows split into exact halves, in one pass per element.
- :func:`factor_inverse`, :func:`packed_moments` — for ``gaussdiv.pairwise``: Xᵀ(I − F)X with
  X = L⁻¹ and ‖XL − I‖, and the packed per-Gaussian moments with their absolute values.
- :func:`whitened_trace` — tr(B⁻¹A) = ‖L_B⁻¹L_A‖²_F and ln|B|/|A| = 2 Σ ln(L_B,ᵢᵢ/L_A,ᵢᵢ)
  without storing L_B⁻¹L_A: d³/6 multiply-adds by rows (contiguous axpys) in a d×d scratch per
  parallel chunk, and one logarithm per element (of a running product of the ratios).
- :func:`trace_series_excess` — Σ g(εᵢ), g(ε) = ε − ln(1 + ε), over the eigenvalues of a small
  symmetric E without computing them: Σ_{k≥2} (−1)ᵏ tr(Eᵏ)/k, summed to K terms with
  ρ^(K−1) ≤ u/2 for ρ ≤ ‖E‖_F ≤ 1/16. The tail is ≤ Σε²·ρ^(K−1)/((K+1)(1−ρ)) and the sum is
  ≥ Σε²/2·(1 − 2ρ/3), so it is below u relative; rounding in tr(Eᵏ) (k ≥ 3) adds ≈ k·d·u·ρ^(k−2)
  relative. For P ≈ Q (‖E‖ ≈ 1e-8: K = 3) this is two d×d products instead of an eigenvalue
  decomposition (≈ 10× faster at d = 8, where LAPACK's per-matrix overhead dominates).
- :func:`log_ratio_terms`, :func:`var_ratio_terms`, :func:`diagonal_mahalanobis`,
  :func:`log_space_mix` — the diagonal relation's sums, Σ xⱼ²/vⱼ and Rényi's log-space mix
  in one pass per row (the elementwise NumPy forms make 3–6 passes with temporaries). The
  first three take their transcendental functions (expm1, log, e^(−ℓ/2)) from NumPy's
  vectorised ufuncs on cache-sized blocks shared among threads (:func:`over_row_blocks`):
  numba's scalar libm calls made them 1.5–3× slower.
- :func:`difference_excess` — the same for E = L_B⁻¹(A − B)L_B⁻ᵀ formed in the kernel from the
  two matrices and B's factor: the exact route for P ≈ Q in one pass over the inputs.

The arithmetic is the textbook one, in the input's dtype: results agree with LAPACK's to a few
units in the last place (a different, equally backward-stable operation order). Compiled on
first use and cached on disk (``cache=True``); importing this module imports numba.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable

import numba
import numpy as np
from numba import njit, prange

from gaussdiv.backends.base import CHOLESKY_NOT_DEFINITE as NOT_DEFINITE
from gaussdiv.backends.base import CHOLESKY_NOT_FINITE as NOT_FINITE
from gaussdiv.backends.base import CHOLESKY_NOT_SYMMETRIC as NOT_SYMMETRIC
from gaussdiv.backends.base import CHOLESKY_OK as OK


@njit(cache=True)
def _checked_factor(m, lower, check_symmetry, eps, root_eps):  # pragma: no cover (compiled)
    """(status, maxⱼ Mⱼⱼ/Lⱼⱼ²) for one matrix M (d, d), its lower factor written to ``lower``."""
    d = m.shape[0]
    state = OK
    scale = 0.0
    for r in range(d):
        for c in range(d):
            v = m[r, c]
            if not np.isfinite(v):
                state = NOT_FINITE
            elif abs(v) > scale:
                scale = abs(v)
    if state == OK and check_symmetry:
        tol = root_eps * scale
        for r in range(d):
            for c in range(r):
                if abs(m[r, c] - m[c, r]) > tol:
                    state = NOT_SYMMETRIC
    largest = 0.0
    if state == OK:
        for j in range(d):
            pivot = m[j, j]
            for k in range(j):
                pivot -= lower[j, k] * lower[j, k]
            if not pivot > d * eps * m[j, j]:
                state = NOT_DEFINITE
                break
            largest = max(largest, m[j, j] / pivot)
            root = np.sqrt(pivot)
            lower[j, j] = root
            for r in range(j + 1, d):
                t = m[r, j]
                for k in range(j):
                    t -= lower[r, k] * lower[j, k]
                lower[r, j] = t / root
            for c in range(j + 1, d):
                lower[j, c] = 0
    return state, largest


@njit(parallel=True, cache=True)
def _cholesky_batch(a, out, status, bound):  # pragma: no cover (compiled)
    eps = np.finfo(a.dtype).eps
    root_eps = np.sqrt(eps)
    for i in prange(a.shape[0]):
        status[i], bound[i] = _checked_factor(a[i], out[i], True, eps, root_eps)


@njit(parallel=True, cache=True)
def _mix_cholesky_batch(a, b, alpha, mixed, out, status, bound):  # pragma: no cover (compiled)
    n, d, _ = a.shape
    eps = np.finfo(a.dtype).eps
    root_eps = np.sqrt(eps)
    beta = 1 - alpha
    for i in prange(n):
        m = mixed[i]
        for r in range(d):
            for c in range(d):
                m[r, c] = alpha * b[i, r, c] + beta * a[i, r, c]
        status[i], bound[i] = _checked_factor(m, out[i], False, eps, root_eps)
        if status[i] == NOT_DEFINITE:  # held as I (the caller's convention)
            lower = out[i]
            for r in range(d):
                for c in range(d):
                    m[r, c] = 1.0 if r == c else 0.0
                    lower[r, c] = m[r, c]
            bound[i] = 1.0


@njit(parallel=True, cache=True)
def _copy_flat(x, out):  # pragma: no cover (compiled)
    for i in prange(x.size):  # (chunk bounds computed in the loop kept it from vectorising)
        out[i] = x[i]


@njit(cache=True)
def _forward_substitute(tri, x):  # pragma: no cover (compiled)
    """x ← T⁻¹x in place for lower-triangular T (d, d) and x (d, k), row by row."""
    d, k = x.shape
    for r in range(d):
        for j in range(r):
            f = tri[r, j]
            for c in range(k):
                x[r, c] -= f * x[j, c]
        for c in range(k):
            x[r, c] /= tri[r, r]


@njit(parallel=True, cache=True)
def _solve_lower_batch(t, b, out):  # pragma: no cover (compiled)
    for i in prange(b.shape[0]):
        out[i] = b[i]
        _forward_substitute(t[i], out[i])


@njit(parallel=True, cache=True)
def _solve_upper_batch(t, b, out):  # pragma: no cover (compiled)
    n, d, k = b.shape
    for i in prange(n):
        tri, rhs, x = t[i], b[i], out[i]
        for r in range(d - 1, -1, -1):
            for c in range(k):
                x[r, c] = rhs[r, c]
            for j in range(r + 1, d):
                f = tri[r, j]
                for c in range(k):
                    x[r, c] -= f * x[j, c]
            for c in range(k):
                x[r, c] /= tri[r, r]


@njit(cache=True)
def _chunk(c, chunks, n):  # pragma: no cover (compiled)
    """Elements [start, stop) of chunk c of n elements in ``chunks`` chunks."""
    return c * n // chunks, (c + 1) * n // chunks


@njit(parallel=True, cache=True)
def _whitened_trace_batch(ref, first, trace, logdet_ratio):  # pragma: no cover (compiled)
    n, d, _ = ref.shape
    chunks = min(n, _CHUNKS)
    for c in prange(chunks):  # scratch allocated per chunk, not per element
        start, stop = _chunk(c, chunks, n)
        whitened = np.empty((d, d), dtype=ref.dtype)
        for i in range(start, stop):
            _whitened_trace_one(ref[i], first[i], whitened, trace, logdet_ratio, i)


@njit(cache=True)
def _whitened_trace_one(b, a, c, trace, logdet_ratio, i):  # pragma: no cover (compiled)
    d = b.shape[0]
    total = 0.0
    for r in range(d):  # row r of C = L_B⁻¹L_A (lower triangular), by contiguous axpys
        for col in range(r + 1):
            c[r, col] = a[r, col]
        for k in range(r):
            f = b[r, k]
            for col in range(k + 1):
                c[r, col] -= f * c[k, col]
        for col in range(r + 1):
            c[r, col] /= b[r, r]
            total += c[r, col] * c[r, col]
    trace[i] = total
    # Σ ln(L_B,jj / L_A,jj) as the log of a running product of the ratios (one logarithm
    # instead of d; absolute error ≈ d·u, within the fast terms' own). Ratios outside
    # [2⁻⁵⁰⁰, 2⁵⁰⁰] are logged on their own and the product is flushed once it leaves that
    # range, so it stays within [2⁻¹⁰⁰⁰, 2¹⁰⁰⁰]: no overflow or underflow at any scale.
    log_sum = 0.0
    product = 1.0
    for j in range(d):
        ratio = b[j, j] / a[j, j]
        if not _PRODUCT_MIN <= ratio <= _PRODUCT_MAX:
            log_sum += np.log(ratio)
            continue
        product *= ratio
        if not _PRODUCT_MIN <= product <= _PRODUCT_MAX:
            log_sum += np.log(product)
            product = 1.0
    logdet_ratio[i] = 2 * (log_sum + np.log(product))


@njit(cache=True)
def _series_excess(m, radius, eps):  # pragma: no cover (compiled)
    """(Σ g(εᵢ), True) for one symmetric E (d, d) with ‖E‖_F ≤ radius, else (0, False)."""
    d = m.shape[0]
    squares = 0.0
    for r in range(d):
        for c in range(d):
            squares += m[r, c] * m[r, c]
    norm = np.sqrt(squares)  # ‖E‖_F ≥ ρ(E)
    if not norm <= radius:
        return 0.0, False
    # Terms k = 2 … K with ρ^(K−1) ≤ u/2: the tail is then ≤ u relative (module doc).
    terms = 2
    bound = norm
    while bound > eps / 2 and terms < 64:
        bound *= norm
        terms += 1
    traces = np.empty(terms + 1)
    traces[2] = squares
    power = m.copy()
    product = np.empty_like(m)
    for k in range(3, terms + 1):  # power = Eᵏ⁻¹; tr(Eᵏ) = Σ (Eᵏ⁻¹)ᵢⱼ Eⱼᵢ
        for r in range(d):
            for c in range(d):
                product[r, c] = 0.0
            for j in range(d):
                f = power[r, j]
                for c in range(d):
                    product[r, c] += f * m[j, c]
        power, product = product, power
        t = 0.0
        for r in range(d):
            for c in range(d):
                t += power[r, c] * m[c, r]
        traces[k] = t
    total = 0.0
    for k in range(terms, 1, -1):  # smallest terms first
        total += (-1.0) ** k * traces[k] / k
    return total, True


@njit(parallel=True, cache=True)
def _trace_series_batch(e, radius, values, ok):  # pragma: no cover (compiled)
    eps = np.finfo(e.dtype).eps
    for i in prange(e.shape[0]):
        values[i], ok[i] = _series_excess(e[i], radius, eps)


@njit(parallel=True, cache=True)
def _difference_excess_batch(a, b, ref, radius, values, ok):  # pragma: no cover (compiled)
    n, d, _ = a.shape
    eps = np.finfo(a.dtype).eps
    for i in prange(n):
        low = ref[i]
        x = a[i] - b[i]
        _forward_substitute(low, x)  # X = L⁻¹(A − B)
        y = x.T.copy()
        _forward_substitute(low, y)  # Y = L⁻¹Xᵀ = E (symmetric up to rounding)
        for r in range(d):
            for c in range(r):
                y[r, c] = y[c, r] = 0.5 * (y[r, c] + y[c, r])
        values[i], ok[i] = _series_excess(y, radius, eps)


#: Parallel chunks of a batch (each allocates its scratch once).
_CHUNKS = 256
#: Range in which :func:`_whitened_trace_one` keeps its running product of ratios.
_PRODUCT_MIN, _PRODUCT_MAX = 2.0**-500, 2.0**500

#: Entries per block of :func:`log_ratio_terms` (a block and its exponentials stay in cache),
#: and the size from which its blocks are shared among threads.
_BLOCK_ENTRIES = 1 << 17
_THREADED_MIN_ENTRIES = 1 << 18

#: Kinds of a diagonal parameter in :func:`diagonal_mahalanobis`.
VAR, STD, LOGVAR = 0, 1, 2


@njit(nogil=True, cache=True, error_model="numpy")  # x/0 is inf, as under parallel=True
def _log_ratio_sums(l1, l2, lam, eps, convert, start, eps_sum, log_sum, spread):  # pragma: no cover
    n, d = lam.shape
    step1, step2 = l1.shape[1] > 1, l2.shape[1] > 1
    for i in range(n):
        total_eps = 0.0
        total_log = 0.0
        total_spread = 0.0
        for j in range(d):
            log_lam = lam[i, j]
            total_eps += eps[i, j]
            total_log += log_lam
            total_spread += abs(log_lam)
            if convert == 1:
                total_spread += abs(l1[i, j * step1])
            elif convert == 2:
                total_spread += abs(l2[i, j * step2])
        eps_sum[start + i] = total_eps
        log_sum[start + i] = total_log
        spread[start + i] = total_spread


@njit(parallel=True, cache=True)
def _log_space_mix_batch(l1, l2, alpha, out, definite):  # pragma: no cover (compiled)
    n, d1 = l1.shape
    d = out.shape[1]
    step1, step2 = d1 > 1, l2.shape[1] > 1
    log_alpha, log_beta = np.log(alpha), np.log1p(-alpha) if alpha < 1 else -np.inf
    for i in prange(n):
        ok = True
        for j in range(d):
            a, b = l1[i, j * step1], l2[i, j * step2]
            if alpha <= 1:  # ln(α e^b + (1 − α) e^a) as logaddexp
                x, y = log_alpha + b, log_beta + a
                top = max(x, y)
                out[i, j] = top + np.log1p(np.exp(-abs(x - y)))
            else:
                inner = alpha - (alpha - 1) * np.exp(a - b)
                if not inner > 0:
                    ok = False
                out[i, j] = b + np.log(inner) if inner > 0 else 0.0
        definite[i] = ok
        if not ok:
            for j in range(d):
                out[i, j] = 0.0


@njit(nogil=True, cache=True, error_model="numpy")  # x/0 is inf, as under parallel=True
def _var_ratio_sums(v1, v2, ratio, log_ratio, start, eps_sum, log_sum, spread):  # pragma: no cover
    n, d = ratio.shape
    step1, step2 = v1.shape[1] > 1, v2.shape[1] > 1
    tiny = np.finfo(v1.dtype).tiny
    for i in range(n):
        total_eps = 0.0
        total_log = 0.0
        total_spread = 0.0
        for j in range(d):
            a, b = v1[i, j * step1], v2[i, j * step2]
            total_eps += (a - b) / b
            r = ratio[i, j]
            if tiny <= r < np.inf:
                log_lam = log_ratio[i, j]
            else:  # the ratio under- or overflowed: a difference of logarithms
                log_lam = np.log(a) - np.log(b)
            total_log += log_lam
            total_spread += abs(log_lam)
        eps_sum[start + i] = total_eps
        log_sum[start + i] = total_log
        spread[start + i] = total_spread


@njit(parallel=True, cache=True)
def _mahalanobis_batch(x, param, kind, out):  # pragma: no cover (compiled)
    n, d = x.shape
    step = param.shape[1] > 1
    for i in prange(n):
        total = 0.0
        for j in range(d):
            v, p = x[i, j], param[i, j * step]
            if kind == VAR:
                total += v * v / p
            else:  # STD (LOGVAR takes _scaled_square_sums)
                w = v / p
                total += w * w
        out[i] = total


@njit(nogil=True, cache=True, error_model="numpy")  # x/0 is inf, as under parallel=True
def _scaled_square_sums(x, scale, start, out):  # pragma: no cover (compiled)
    n, d = x.shape
    step = scale.shape[1] > 1
    for i in range(n):
        total = 0.0
        for j in range(d):
            v = x[i, j]
            if v != 0:  # 0 · e^(large) would be NaN
                w = v * scale[i, j * step]
                total += w * w
        out[start + i] = total


@njit(parallel=True, cache=True)
def _backward_error_batch(a, lower, bits, out):  # pragma: no cover (compiled)
    n, d, _ = a.shape
    for i in prange(n):
        m, factor, f = a[i], lower[i], out[i]
        hi = np.empty((d, d))
        lo = np.empty((d, d))
        for r in range(d):  # each row split on a grid of its own scale (exact)
            largest = 0.0
            for c in range(d):
                largest = max(largest, abs(factor[r, c]))
            exponent = math.frexp(largest)[1] if largest > 0 else 0
            scale = math.ldexp(1.0, exponent - bits)
            for c in range(d):
                hi[r, c] = np.round(factor[r, c] / scale) * scale
                lo[r, c] = factor[r, c] - hi[r, c]
        residual = np.empty((d, d))
        for r in range(d):
            for c in range(r + 1):
                exact = 0.0
                cross_a = 0.0
                cross_b = 0.0
                small = 0.0
                for k in range(c + 1):
                    exact += hi[r, k] * hi[c, k]
                    cross_a += hi[r, k] * lo[c, k]
                    cross_b += lo[r, k] * hi[c, k]
                    small += lo[r, k] * lo[c, k]
                value = ((m[r, c] - exact) - (cross_a + cross_b)) - small
                residual[r, c] = value
                residual[c, r] = value
        _forward_substitute(factor, residual)  # L⁻¹R
        half = residual.T.copy()
        _forward_substitute(factor, half)  # L⁻¹(L⁻¹R)ᵀ = L⁻¹RL⁻ᵀ
        for r in range(d):
            for c in range(d):
                f[r, c] = 0.5 * (half[r, c] + half[c, r])


@njit(parallel=True, cache=True)
def _factor_inverse_batch(lower, correction, corrected, out, deviation):  # pragma: no cover
    for i in prange(lower.shape[0]):
        deviation[i] = _factor_inverse_one(lower[i], correction[i], corrected, out[i])


@njit(cache=True)
def _factor_inverse_one(factor, f, corrected, m):  # pragma: no cover (compiled)
    """m ← Xᵀ(I − F)X with X = L⁻¹ (F skipped unless ``corrected``); returns ‖XL − I‖_F."""
    d = factor.shape[0]
    x = np.zeros((d, d))
    for r in range(d):
        x[r, r] = 1.0
    _forward_substitute(factor, x)  # X = L⁻¹
    total = 0.0
    for r in range(d):  # XL − I, both lower triangular
        for c in range(r + 1):
            acc = 0.0
            for k in range(c, r + 1):
                acc += x[r, k] * factor[k, c]
            if r == c:
                acc -= 1.0
            total += acc * acc
    y = x.copy()
    if corrected:  # y = (I − F)X
        for r in range(d):
            for c in range(d):
                acc = 0.0
                for k in range(d):
                    acc += f[r, k] * x[k, c]
                y[r, c] -= acc
    for r in range(d):
        for c in range(d):
            acc = 0.0
            for k in range(r, d):  # x[k, r] = 0 for k < r (lower triangular)
                acc += x[k, r] * y[k, c]
            m[r, c] = acc
    return np.sqrt(total)


@njit(parallel=True, cache=True)
def _packed_moments_batch(matrix, vector, logdet, column, values, magnitudes):  # pragma: no cover
    for i in prange(matrix.shape[0]):
        _packed_moments_one(matrix[i], vector[i], logdet[i], column, values[i], magnitudes[i])


@njit(cache=True)
def _packed_moments_one(a, v, logdet, column, out, mag):  # pragma: no cover (compiled)
    d = a.shape[0]
    at = 0
    for r in range(d):
        for c in range(r, d):
            x = a[r, c]
            if column:
                w = 1.0 if r == c else 2.0
                out[at] = w * x
                mag[at] = w * abs(x)
            else:
                outer = v[r] * v[c]
                out[at] = 0.5 * (x + outer)
                mag[at] = 0.5 * (abs(x) + abs(outer))
            at += 1
    quadratic = 0.0
    quadratic_abs = 0.0
    for r in range(d):
        if column:
            acc = 0.0
            acc_abs = 0.0
            for c in range(d):
                acc += a[r, c] * v[c]
                acc_abs += abs(a[r, c]) * abs(v[c])
            out[at + r] = -2.0 * acc
            mag[at + r] = 2.0 * acc_abs
            quadratic += v[r] * acc
            quadratic_abs += abs(v[r]) * acc_abs
        else:
            out[at + r] = 0.5 * v[r]
            mag[at + r] = 0.5 * abs(v[r])
    at += d
    if column:
        out[at] = quadratic + logdet
        mag[at] = quadratic_abs + abs(logdet)
        out[at + 1] = 1.0
        mag[at + 1] = 1.0
    else:
        out[at] = 0.5
        mag[at] = 0.5
        out[at + 1] = 0.5 * (-logdet - d)
        mag[at + 1] = 0.5 * (abs(logdet) + d)


def copy(x: np.ndarray) -> np.ndarray:
    """A copy of the C-contiguous float array x, written by all threads (a fresh large array's
    page faults then come in parallel too: 512 MB in ≈ 0.05 s here, ``np.copy`` ≈ 0.1 s)."""
    out = np.empty_like(x, order="C")
    _copy_flat(x.reshape(-1), out.reshape(-1))
    return out


def checked_cholesky(a: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Lower factors of a (n, d, d) C-contiguous float batch, a status (n,) int8 per element
    (OK, NOT_FINITE, NOT_SYMMETRIC, NOT_DEFINITE) and the condition bound maxⱼ Aⱼⱼ/Lⱼⱼ² (n,)
    (:meth:`gaussdiv.structures.Factored.condition_bound`); factors and bounds of failed
    elements are unspecified."""
    out = np.empty_like(a)
    status = np.empty(a.shape[0], dtype=np.int8)
    bound = np.empty(a.shape[0], dtype=a.dtype)
    _cholesky_batch(a, out, status, bound)
    return out, status, bound


def mix_cholesky(a: np.ndarray, b: np.ndarray, alpha: float
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Σ_α = αB + (1−α)A for symmetric A, B (n, d, d), C-contiguous, one dtype, with its lower
    factor, status (OK, NOT_FINITE or NOT_DEFINITE) and condition bound per element, as
    :func:`checked_cholesky` of the mix but in one pass and no temporaries; elements that are
    not definite hold I (matrix and factor, bound 1)."""
    mixed, out = np.empty_like(a), np.empty_like(a)
    status = np.empty(a.shape[0], dtype=np.int8)
    bound = np.empty(a.shape[0], dtype=a.dtype)
    _mix_cholesky_batch(a, b, a.dtype.type(alpha), mixed, out, status, bound)
    return mixed, out, status, bound


def backward_error(a: np.ndarray, lower: np.ndarray) -> np.ndarray:
    """F = L⁻¹(A − LLᵀ)L⁻ᵀ per element for float64 A and its lower factor L (n, d, d),
    C-contiguous: the residual from rows split as hi + lo (products of hi parts exact, as
    :func:`gaussdiv.numerics.residual.rough_product_residual`), two substitutions, symmetrised.
    """
    bits = (53 - int(np.ceil(np.log2(max(a.shape[-1], 2))))) // 2
    out = np.empty_like(a)
    _backward_error_batch(a, lower, bits, out)
    return out


def factor_inverse(lower: np.ndarray, correction: np.ndarray | None
                   ) -> tuple[np.ndarray, np.ndarray]:
    """(Xᵀ(I − F)X, ‖XL − I‖_F) per element, X = L⁻¹, for lower factors L (n, d, d) and their
    backward errors F (or None), C-contiguous float64 (see
    :func:`gaussdiv.matrices.moments.factored_inverse`)."""
    out = np.empty_like(lower)
    deviation = np.empty(lower.shape[0])
    _factor_inverse_batch(lower, lower if correction is None else correction,
                          correction is not None, out, deviation)
    return out, deviation


def packed_moments(matrix: np.ndarray, vector: np.ndarray, logdet: np.ndarray,
                   column: bool) -> tuple[np.ndarray, np.ndarray]:
    """The packed KL moments of :mod:`gaussdiv.matrices.moments` in one pass per element:
    rows (½[pack(Σ + m mᵀ), m, 1, −ln|Σ| − d]) or columns ([w ∘ pack(Λ), −2Λv, vᵀΛv + ln|Σ|,
    1]), with their absolute-value twins (float32)."""
    n, d, _ = matrix.shape
    width = d * (d + 1) // 2 + d + 2
    values = np.empty((n, width), dtype=matrix.dtype)
    magnitudes = np.empty((n, width), dtype=matrix.dtype)
    _packed_moments_batch(matrix, vector, logdet, column, values, magnitudes)
    with np.errstate(over="ignore"):
        return values, magnitudes.astype(np.float32)


def solve_triangular(t: np.ndarray, b: np.ndarray, lower: bool) -> np.ndarray:
    """X with T X = B for C-contiguous T (n, d, d) and B (n, d, k) of one float dtype."""
    out = np.empty_like(b)
    (_solve_lower_batch if lower else _solve_upper_batch)(t, b, out)
    return out


def whitened_trace(ref: np.ndarray, first: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(‖L_B⁻¹L_A‖²_F, 2 Σ ln(L_B,ᵢᵢ/L_A,ᵢᵢ)) per element for lower factors L_B = ref and
    L_A = first, both C-contiguous (n, d, d) of one float dtype."""
    trace = np.empty(ref.shape[0], dtype=ref.dtype)
    logdet_ratio = np.empty(ref.shape[0], dtype=ref.dtype)
    _whitened_trace_batch(ref, first, trace, logdet_ratio)
    return trace, logdet_ratio


def trace_series_excess(e: np.ndarray, radius: float) -> tuple[np.ndarray, np.ndarray]:
    """Σᵢ g(εᵢ) = Σ_{k≥2} (−1)ᵏ tr(Eᵏ)/k for the eigenvalues ε of symmetric E (n, d, d),
    where ‖E‖_F ≤ ``radius`` (``ok``); elsewhere ``ok`` is False and the value 0."""
    values = np.empty(e.shape[0], dtype=e.dtype)
    ok = np.empty(e.shape[0], dtype=np.bool_)
    _trace_series_batch(e, radius, values, ok)
    return values, ok


def difference_excess(a: np.ndarray, b: np.ndarray, ref: np.ndarray,
                      radius: float) -> tuple[np.ndarray, np.ndarray]:
    """:func:`trace_series_excess` of E = L⁻¹(A − B)L⁻ᵀ, symmetrised, for matrices A, B and the
    lower factor L = ``ref`` of B (all C-contiguous (n, d, d), one dtype), E never stored."""
    values = np.empty(a.shape[0], dtype=a.dtype)
    ok = np.empty(a.shape[0], dtype=np.bool_)
    _difference_excess_batch(a, b, ref, radius, values, ok)
    return values, ok


def log_ratio_terms(l1: np.ndarray, l2: np.ndarray,
                    convert: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per row of ln v₁ (n, d or 1) and ln v₂ (n, d or 1), with ln λⱼ = ln v₁ⱼ − ln v₂ⱼ:
    (Σ expm1(ln λⱼ), Σ ln λⱼ, Σ |ln λⱼ| + cⱼ), cⱼ = |ln v₁ⱼ| (``convert`` 1), |ln v₂ⱼ| (2) or
    0 (0): the diagonal relation's fast terms in one pass."""
    n, d = l1.shape[0], max(l1.shape[1], l2.shape[1])
    eps_sum, log_sum, spread = (np.empty(n, dtype=l1.dtype) for _ in range(3))

    def block(start: int, stop: int, scratch: np.ndarray) -> None:
        a, b = l1[start:stop], l2[start:stop]
        lam, eps = scratch
        np.subtract(a, b, out=lam)
        np.expm1(lam, out=eps)
        _log_ratio_sums(a, b, lam, eps, convert, start, eps_sum, log_sum, spread)

    over_row_blocks(n, d, l1.dtype, 2, block)
    return eps_sum, log_sum, spread


def over_row_blocks(n: int, d: int, dtype: np.dtype, buffers: int,
                    block: Callable[[int, int, np.ndarray], None]) -> None:
    """``block(start, stop, scratch)`` for consecutive blocks of rows [start, stop) of an
    (n, d) problem, ≈ _BLOCK_ENTRIES entries each, shared among threads (:func:`in_threads`);
    ``scratch`` is (buffers, stop − start, d) of ``dtype``, one per thread, for NumPy's
    vectorised transcendental functions to write into (numba's are scalar libm calls, 3–6×
    slower) before a nogil kernel sums the rows. Overflow and division warnings are off: the
    kernels take inf and 0 as results, as the one-pass kernels do."""
    rows = max(1, _BLOCK_ENTRIES // max(d, 1))

    def share(k: int, count: int) -> None:
        scratch = np.empty((buffers, min(rows, n), d), dtype=dtype)
        with np.errstate(all="ignore"):  # per thread: NumPy's error state is thread-local
            for start in range(k * rows, n, count * rows):
                stop = min(start + rows, n)
                block(start, stop, scratch[:, :stop - start])

    in_threads(share, n * d, -(-n // rows))


def in_threads(work: Callable[[int, int], None], entries: int, blocks: int) -> None:
    """``work(k, t)`` for k = 0 … t − 1 — share k of t, every t-th block from the k-th — on
    t = numba's thread count threads (the caller's among them) where the work has at least
    _THREADED_MIN_ENTRIES entries, else ``work(0, 1)`` here. NumPy's ufuncs and the nogil
    kernels release the GIL; the threads are the call's own (nothing outlives it, so a
    forked process inherits no pool)."""
    count = min(numba.get_num_threads(), blocks) if entries >= _THREADED_MIN_ENTRIES else 1
    failures: list[Exception] = []

    def run(k: int) -> None:
        try:
            work(k, count)
        except Exception as error:  # re-raised in the caller below
            failures.append(error)

    others = [threading.Thread(target=run, args=(k,)) for k in range(1, count)]
    for thread in others:
        thread.start()
    run(0)
    for thread in others:
        thread.join()
    if failures:
        raise failures[0]


def log_space_mix(l1: np.ndarray, l2: np.ndarray, alpha: float
                  ) -> tuple[np.ndarray, np.ndarray]:
    """ln(α v₂ + (1 − α) v₁) per entry from ln v₁ = l1, ln v₂ = l2 (n, d or 1), and per row
    whether every entry is positive (α > 1; rows that are not hold 0): for α ≤ 1 by logaddexp,
    else ln v₂ + ln(α − (α − 1) e^(ln v₁ − ln v₂)), in one pass."""
    n = l1.shape[0]
    out = np.empty((n, max(l1.shape[1], l2.shape[1])), dtype=l1.dtype)
    definite = np.empty(n, dtype=np.bool_)
    _log_space_mix_batch(l1, l2, l1.dtype.type(alpha), out, definite)
    return out, definite


def diagonal_mahalanobis(x: np.ndarray, param: np.ndarray, kind: int) -> np.ndarray:
    """Σⱼ xⱼ²/vⱼ per row of x (n, d), v held as ``param`` (n, d or 1) of ``kind`` (VAR, STD,
    LOGVAR: Σ (xⱼ e^(−ℓⱼ/2))², 0 where xⱼ = 0, its exponentials by :func:`over_row_blocks`)."""
    out = np.empty(x.shape[0], dtype=x.dtype)
    if kind != LOGVAR:
        _mahalanobis_batch(x, param, kind, out)
        return out

    def block(start: int, stop: int, scratch: np.ndarray) -> None:
        scale = scratch[0, :, :param.shape[1]]
        np.multiply(param[start:stop], -0.5, out=scale)
        np.exp(scale, out=scale)
        _scaled_square_sums(x[start:stop], scale, start, out)

    over_row_blocks(x.shape[0], x.shape[1], np.dtype(np.float64), 1, block)  # as e^(−ℓ/2) was
    return out


def var_ratio_terms(v1: np.ndarray, v2: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per row of variances v₁, v₂ (n, d or 1), λⱼ = v₁ⱼ/v₂ⱼ: (Σ (v₁ⱼ − v₂ⱼ)/v₂ⱼ, Σ ln λⱼ,
    Σ |ln λⱼ|), ln λⱼ from the ratio where it is a normal number, from ln v₁ⱼ − ln v₂ⱼ elsewhere."""
    n, d = v1.shape[0], max(v1.shape[1], v2.shape[1])
    eps_sum, log_sum, spread = (np.empty(n, dtype=v1.dtype) for _ in range(3))

    def block(start: int, stop: int, scratch: np.ndarray) -> None:
        a, b = v1[start:stop], v2[start:stop]
        ratio, log_ratio = scratch
        np.divide(a, b, out=ratio)
        np.log(ratio, out=log_ratio)
        _var_ratio_sums(a, b, ratio, log_ratio, start, eps_sum, log_sum, spread)

    over_row_blocks(n, d, v1.dtype, 2, block)
    return eps_sum, log_sum, spread

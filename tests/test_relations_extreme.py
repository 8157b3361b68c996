"""Pairs at the ends of the float64 range, through the pair relations, against mpmath (issue 16,
its relation-level reproducers).

Each case is one the fuzzer or the CLI found: a scale_tril factor with a 1e300 entry (Σ holds
1e600: the dense Rényi mix overflowed and a bare LinAlgError escaped), a log-variance of −1500
against a dense N(0, I) (the exact route's triangular factor underflowed to 0), a shared scale
of 1e±280 (the log-ratio as a difference of log-determinants ≈ 1934, rounding to ≈ 4e-13),
low-rank covariances of entries 1e∓100 (products v₁v₂ of the exact route under/overflowed:
NaN, then a NotPositiveDefiniteError blaming a valid input, or a wrong number), subnormal
variances against a dense matrix (1/v overflowed: KL = +inf for a finite ≈ 1e288), and pairs
whose covariances differ by 1e80 (the exact spectrum cannot hold them). References: float
inputs taken as exact, every term in mpmath at 60 digits, through Cholesky factors (an LU of a
matrix spanning 1e±600 is "numerically singular" to mpmath at that precision).

The Rényi cases need the Rényi module's exact route to keep its fast value where the spectrum
does not resolve the divergence (a spread ≥ 2^26, eigenvalues beyond the float range) and its
kernel in log form for |ε| > ½.
"""

from __future__ import annotations

import numpy as np
import pytest
from mpmath import mp

import gaussdiv
from gaussdiv import Gaussian
from gaussdiv.relations import relation_for
from gaussdiv.relations.base import BALANCE_MIN_EXPONENT, balanced, rescaled

DPS = 60
RTOL = 1e-13
CORRELATED = np.array([[2.0, -1.7, 0.0], [-1.7, 14.0, 0.0], [0.0, 0.0, 1.0]])


# ------------------------------------------------------------------ mpmath references
@pytest.fixture(autouse=True)
def _digits():  # references built in the tests (products, sums of matrices) at DPS digits too
    with mp.workdps(DPS):
        yield


def _mat(a: np.ndarray) -> mp.matrix:
    return mp.matrix([[mp.mpf(float(x)) for x in row] for row in np.atleast_2d(a)])


def _vec(a: np.ndarray) -> mp.matrix:
    return mp.matrix([mp.mpf(float(x)) for x in np.ravel(a)])


def _cholesky(s: mp.matrix) -> mp.matrix | None:
    """Lower factor of s, or None where s is not positive definite."""
    d = s.rows
    low = mp.matrix(d, d)
    for j in range(d):
        pivot = s[j, j] - mp.fsum(low[j, k] ** 2 for k in range(j))
        if pivot <= 0:
            return None
        low[j, j] = mp.sqrt(pivot)
        for i in range(j + 1, d):
            low[i, j] = (s[i, j] - mp.fsum(low[i, k] * low[j, k] for k in range(j))) / low[j, j]
    return low


def _solve(low: mp.matrix, b: mp.matrix) -> mp.matrix:
    d = low.rows
    x = mp.matrix(d, b.cols)
    for c in range(b.cols):
        for i in range(d):
            x[i, c] = (b[i, c] - mp.fsum(low[i, k] * x[k, c] for k in range(i))) / low[i, i]
    return x


def _logdet(low: mp.matrix) -> mp.mpf:
    return 2 * mp.fsum(mp.log(low[i, i]) for i in range(low.rows))


def ref_kl(m1: np.ndarray, s1: mp.matrix, m2: np.ndarray, s2: mp.matrix) -> mp.mpf:
    with mp.workdps(DPS):
        l1, l2 = _cholesky(s1), _cholesky(s2)
        d = s1.rows
        b = _solve(l2, l1)
        y = _solve(l2, _vec(m1) - _vec(m2))
        trace = mp.fsum(b[i, j] ** 2 for i in range(d) for j in range(d))
        return (trace - d + _logdet(l2) - _logdet(l1) + mp.fsum(y[i] ** 2 for i in range(d))) / 2


def ref_renyi(m1: np.ndarray, s1: mp.matrix, m2: np.ndarray, s2: mp.matrix,
              alpha: float) -> mp.mpf:
    with mp.workdps(DPS):
        a = mp.mpf(alpha)
        mixed = _cholesky(a * s2 + (1 - a) * s1)
        if mixed is None:
            return mp.inf
        y = _solve(mixed, _vec(m1) - _vec(m2))
        maha = mp.fsum(y[i] ** 2 for i in range(s1.rows))
        logs = _logdet(mixed) - (1 - a) * _logdet(_cholesky(s1)) - a * _logdet(_cholesky(s2))
        return a / 2 * maha - logs / (2 * (a - 1))


def check(value: float, reference: mp.mpf, rtol: float = RTOL) -> None:
    value = float(value)
    if reference == mp.inf:
        assert value == np.inf, f"{value!r}, expected +inf"
        return
    assert np.isfinite(value), f"{value!r}, reference {mp.nstr(reference, 17)}"
    error = float(abs((mp.mpf(value) - reference) / reference))
    assert error <= rtol, f"{value!r}, reference {mp.nstr(reference, 17)}: relative {error:.2e}"


def _dense(kind: str, s: np.ndarray, mean: np.ndarray | None = None) -> tuple[Gaussian, mp.matrix]:
    """A Gaussian of covariance s (float64) given as ``kind``, and its exact covariance."""
    mean = np.zeros(len(s)) if mean is None else mean
    if kind == "cov":
        return Gaussian(mean, s), _mat(s)
    low = np.linalg.cholesky(s)
    if kind == "scale_tril":
        return Gaussian.from_scale_tril(mean, low), _mat(low) * _mat(low).T
    with mp.workdps(DPS):
        precision = np.linalg.inv(low).T @ np.linalg.inv(low)
        precision = (precision + precision.T) / 2
        if kind == "precision":
            return Gaussian.from_precision(mean, precision), mp.inverse(_mat(precision))
        r = np.linalg.cholesky(precision)
        return Gaussian.from_precision_tril(mean, r), mp.inverse(_mat(r) * _mat(r).T)


def _spd(seed: int, d: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    b = rng.standard_normal((d, d))
    return b @ b.T + 0.5 * np.eye(d)


# ------------------------------------------------------------------ a Σ beyond float64
WIDE = np.diag([1.0, 1e300, 1.0])  # scale_tril: Σ = diag(1, 1e600, 1)


@pytest.mark.parametrize("alpha", [0.5, 2.0])
def test_renyi_of_a_factor_whose_covariance_overflows(alpha: float) -> None:
    """The dense mix overflowed (L Lᵀ ∋ 1e600) and eigvalsh raised LinAlgError; now formed from
    the factors (QR of [√α L₂ᵀ; √(1−α) L₁ᵀ] for α < 1), +inf where Σ_α is not definite."""
    p = Gaussian.from_scale_tril(np.zeros(3), WIDE)
    q = Gaussian(np.zeros(3), CORRELATED)
    s1, s2, zero = _mat(WIDE) * _mat(WIDE).T, _mat(CORRELATED), np.zeros(3)
    check(gaussdiv.renyi(p, q, alpha), ref_renyi(zero, s1, zero, s2, alpha))
    check(gaussdiv.renyi(q, p, alpha), ref_renyi(zero, s2, zero, s1, alpha))


def test_bhattacharyya_family_of_a_factor_whose_covariance_overflows() -> None:
    p = Gaussian.from_scale_tril(np.zeros(3), WIDE)
    q = Gaussian(np.zeros(3), CORRELATED)
    s1, s2, zero = _mat(WIDE) * _mat(WIDE).T, _mat(CORRELATED), np.zeros(3)
    reference = ref_renyi(zero, s1, zero, s2, 0.5) / 2
    check(gaussdiv.bhattacharyya(p, q), reference)
    check(gaussdiv.bhattacharyya_coefficient(p, q), mp.exp(-reference))
    assert float(gaussdiv.hellinger(p, q)) == float(mp.sqrt(-mp.expm1(-reference)))


def test_mix_of_a_factor_whose_covariance_overflows() -> None:
    """ln|Σ_α| of the mix itself, for α < 1 (factors stacked) and α > 1 (whitened by L₂)."""
    wide = Gaussian.from_scale_tril(np.zeros(3), WIDE).cov
    narrow = Gaussian(np.zeros(3), np.diag([0.5, 1.0, 0.5])).cov
    s_wide, s_narrow = _mat(WIDE) * _mat(WIDE).T, _mat(np.diag([0.5, 1.0, 0.5]))
    for p, q, s1, s2, alpha in ((wide, narrow, s_wide, s_narrow, 0.5),
                                (wide, narrow, s_wide, s_narrow, 0.1),
                                (narrow, wide, s_narrow, s_wide, 2.0)):
        mixed, definite = relation_for(type(p), type(q)).mix(p, q, alpha)
        assert definite is None or bool(np.all(definite))
        with mp.workdps(DPS):
            reference = _logdet(_cholesky(mp.mpf(alpha) * s2 + (1 - mp.mpf(alpha)) * s1))
        check(mixed.logdet(), reference)


def test_renyi_above_one_where_the_wide_side_dominates() -> None:
    """α = 2 with Σ₂ = diag(1, 1e600, 1) ≥ Σ₁: 2Σ₂ − Σ₁ is definite, from the whitened form."""
    p = Gaussian(np.zeros(3), np.diag([0.5, 1.0, 0.5]))
    q = Gaussian.from_scale_tril(np.zeros(3), WIDE)
    zero = np.zeros(3)
    check(gaussdiv.renyi(p, q, 2.0),
          ref_renyi(zero, _mat(np.diag([0.5, 1.0, 0.5])), zero, _mat(WIDE) * _mat(WIDE).T, 2.0))


def test_renyi_of_order_one_tenth_of_a_factor_whose_covariance_overflows() -> None:
    p = Gaussian.from_scale_tril(np.zeros(3), WIDE)
    q = Gaussian(np.zeros(3), CORRELATED)
    zero = np.zeros(3)
    check(gaussdiv.renyi(p, q, 0.1),
          ref_renyi(zero, _mat(WIDE) * _mat(WIDE).T, zero, _mat(CORRELATED), 0.1))


# ------------------------------------------------------------------ a variance e^-1500
@pytest.mark.parametrize("kind", ["cov", "scale_tril", "precision"])
def test_dense_against_a_log_variance_beyond_the_float_range(kind: str) -> None:
    """Σ₂ = diag(e^-1500, 1) whitens nothing in float64 (its factor underflows to 0): the exact
    route reports λ = +inf and raises nothing; Rényi against mpmath, KL beyond float64."""
    p, s1 = _dense(kind, np.array([[1.0, 0.3], [0.3, 1.0]]))
    q = Gaussian.diag(np.zeros(2), logvar=[-1500.0, 0.0])
    s2 = mp.diag([mp.exp(-1500), mp.mpf(1)])
    zero = np.zeros(2)
    for alpha in (0.5, 2.0):
        check(gaussdiv.renyi(p, q, alpha), ref_renyi(zero, s1, zero, s2, alpha))
        check(gaussdiv.renyi(q, p, alpha), ref_renyi(zero, s2, zero, s1, alpha))
    assert ref_kl(zero, s1, zero, s2) > mp.mpf(10) ** 650
    assert float(gaussdiv.kl(p, q)) == np.inf  # beyond float64
    check(gaussdiv.kl(q, p), ref_kl(zero, s2, zero, s1))


def test_exact_spectrum_beyond_the_float_range() -> None:
    """The dense spectrum of N(0, I) against diag(e^-1500, 1): +inf, never a LinAlgError."""
    p = Gaussian(np.zeros(2), np.eye(2)).cov.reshape_batch((1,))
    q = Gaussian.diag(np.zeros(2), logvar=[-1500.0, 0.0]).cov.reshape_batch((1,))
    spectrum = relation_for(type(p), type(q)).spectrum(p, q)
    assert np.all(spectrum.eps == np.inf)


# ------------------------------------------------------------------ a shared scale of 1e±280
@pytest.mark.parametrize("scale", [1e280, 1e-280, 2.0**900])
@pytest.mark.parametrize("kind", ["cov", "scale_tril", "precision", "precision_tril"])
@pytest.mark.parametrize("diagonal", ["isotropic", "var", "std"])
def test_kl_at_a_shared_extreme_scale(scale: float, kind: str, diagonal: str) -> None:
    """KL of a diagonal against a dense Gaussian both ≈ `scale`: the log-ratio from ratios of
    their factors' diagonals (it was ln|Σ₂| − ln|Σ₁| ≈ ±1934 − ∓1934: 4e-13 relative)."""
    d = 3
    rng = np.random.default_rng(7)
    v = np.exp(rng.uniform(-1, 1, d))
    if diagonal == "isotropic":
        p, s1 = Gaussian.isotropic(np.zeros(d), scale), mp.eye(d) * mp.mpf(scale)
    elif diagonal == "var":
        p, s1 = Gaussian.diag(np.zeros(d), var=scale * v), mp.diag([mp.mpf(x) for x in scale * v])
    else:
        std = np.sqrt(scale) * v
        p, s1 = Gaussian.diag(np.zeros(d), std=std), mp.diag([mp.mpf(x) ** 2 for x in std])
    mean = np.sqrt(scale) * rng.uniform(-0.3, 0.3, d)
    q, s2 = _dense(kind, _spd(1, d) * scale, mean)
    zero = np.zeros(d)
    check(gaussdiv.kl(p, q), ref_kl(zero, s1, mean, s2), 2e-14)
    check(gaussdiv.kl(q, p), ref_kl(mean, s2, zero, s1), 2e-14)
    for alpha in (0.5, 2.0):
        check(gaussdiv.renyi(p, q, alpha), ref_renyi(zero, s1, mean, s2, alpha))


@pytest.mark.parametrize("ratio", [1e-80, 1e20])
def test_renyi_of_isotropic_1e280_against_a_dense_of_another_scale(ratio: float) -> None:
    """Covariances 1e280 I and 1e280·ratio·A: the fast value is right, the exact spectrum
    (ε ≈ 1/ratio − 1) cannot refine it (0, +inf or NaN came back)."""
    p, s1 = Gaussian.isotropic(np.zeros(3), 1e280), mp.eye(3) * mp.mpf(1e280)
    q, s2 = _dense("cov", _spd(0, 3) * 1e280 * ratio)
    zero = np.zeros(3)
    for alpha in (0.5, 0.1):
        check(gaussdiv.renyi(p, q, alpha), ref_renyi(zero, s1, zero, s2, alpha))
        check(gaussdiv.renyi(q, p, alpha), ref_renyi(zero, s2, zero, s1, alpha))


# ------------------------------------------------------------------ low rank at 1e∓100
W = np.array([[1.0, 0.2], [0.3, -1.0], [0.5, 0.4]])


@pytest.mark.parametrize("scale", [1e-100, 1e100, 1e-150, 1e150])
@pytest.mark.parametrize("partner", ["diag", "isotropic", "lowrank", "cov"])
def test_lowrank_at_extreme_scales(scale: float, partner: str) -> None:
    """Gaussian.lowrank(0, s·W, s²·1) against a near partner: the exact route's k×k matrices
    from D₂^-½W and dimensionless weights (v₁v₂ = 1e∓400 under/overflowed: NaN, a
    NotPositiveDefiniteError naming a valid p, or a wrong number)."""
    p = Gaussian.lowrank(np.zeros(3), factor=scale * W, var=scale**2 * np.ones(3))
    s1 = _mat(scale * W) * _mat(scale * W).T + mp.eye(3) * mp.mpf(scale**2)
    dense = p.cov.dense()
    if partner == "diag":
        q = Gaussian.diag(np.zeros(3), var=np.diag(dense))
        s2 = mp.diag([mp.mpf(x) for x in np.diag(dense)])
    elif partner == "isotropic":
        q, s2 = Gaussian.isotropic(np.zeros(3), scale**2), mp.eye(3) * mp.mpf(scale**2)
    elif partner == "lowrank":
        w2 = scale * W * (1 + 1e-7 * np.arange(6).reshape(3, 2))
        v2 = scale**2 * (1 + 1e-8) * np.ones(3)
        q = Gaussian.lowrank(np.zeros(3), factor=w2, var=v2)
        s2 = _mat(w2) * _mat(w2).T + mp.diag([mp.mpf(x) for x in v2])
    else:
        near = dense * (1 + 1e-9 * np.eye(3))
        q, s2 = Gaussian(np.zeros(3), near), _mat(near)
    zero = np.zeros(3)
    check(gaussdiv.kl(p, q), ref_kl(zero, s1, zero, s2), 1e-12)
    check(gaussdiv.kl(q, p), ref_kl(zero, s2, zero, s1), 1e-12)
    for alpha in (0.5, 2.0):
        check(gaussdiv.renyi(p, q, alpha), ref_renyi(zero, s1, zero, s2, alpha), 1e-12)


# ------------------------------------------------------------------ subnormal variances
SUBNORMAL = np.array([1.6e-313, 5.7e-309, 6.1e-313, 3.4e-310])


@pytest.mark.parametrize("kind", ["var", "std"])
def test_subnormal_variances_against_a_dense_matrix(kind: str) -> None:
    """A diagonal of subnormal variances and a dense matrix equal to it up to 1e-12: tr Σ₂⁻¹Σ₁
    from quotients (1/v overflowed to +inf), finite KL where the mean term is ≈ 1e288."""
    rng = np.random.default_rng(3)
    m1 = np.array([0.4, 2.1, 0.9, -0.5])
    m2 = m1 + 1e-12 * rng.standard_normal(4)
    matrix = np.diag(SUBNORMAL * (1 + 1e-12 * rng.standard_normal(4)))
    args = {"var": SUBNORMAL} if kind == "var" else {"std": np.sqrt(SUBNORMAL)}
    p = Gaussian.diag(m1, **args)
    s1 = mp.diag([mp.mpf(float(x)) if kind == "var" else mp.mpf(float(np.sqrt(x))) ** 2
                  for x in SUBNORMAL])
    s2 = _mat(matrix)
    for mean_q in (m1, m2):  # without and with a mean term
        q = Gaussian(mean_q, matrix)
        check(gaussdiv.kl(q, p), ref_kl(mean_q, s2, m1, s1), 1e-9)
        check(gaussdiv.kl(p, q), ref_kl(m1, s1, mean_q, s2), 1e-9)
    assert ref_kl(m2, s2, m1, s1) > mp.mpf(10) ** 280


# ------------------------------------------------------------------ the rescaling itself
def _structures() -> list:
    a = _spd(2, 3)
    return [Gaussian(np.zeros(3), a).cov, Gaussian.from_scale_tril(np.zeros(3),
                                                                   np.linalg.cholesky(a)).cov,
            Gaussian.from_precision(np.zeros(3), np.linalg.inv(a)).cov,
            Gaussian.diag(np.zeros(3), var=[1.0, 2.0, 3.0]).cov,
            Gaussian.diag(np.zeros(3), std=[1.0, 2.0, 3.0]).cov,
            Gaussian.isotropic(np.zeros(3), 5.0).cov,
            Gaussian.lowrank(np.zeros(3), W, np.ones(3)).cov,
            Gaussian.kronecker(np.zeros(4), np.array([[2.0, 0.5], [0.5, 1.0]]), np.eye(2)).cov]


@pytest.mark.parametrize("index", range(8))
def test_rescaled_is_exact(index: int) -> None:
    """Σ' = 4⁻ᵏΣ entry for entry, bit for bit (powers of two), per batch element."""
    cov = _structures()[index].broadcast_batch((2,))
    k = np.array([300.0, -450.0])
    out = rescaled(cov, k)
    assert np.array_equal(out.dense(), np.ldexp(cov.dense(), -2 * k.astype(int)[:, None, None]))
    assert np.allclose(out.logdet() - cov.logdet(), -cov.dim * k * np.log(4.0), rtol=1e-14)


def test_balanced_leaves_unit_scales_and_log_variances() -> None:
    p = Gaussian(np.zeros(3), _spd(0, 3)).cov
    q = Gaussian.diag(np.zeros(3), var=[1e9, 2e9, 3e9]).cov  # within 4^±16 of the pair's mean
    assert balanced(p, q)[2] is None
    far = Gaussian.diag(np.zeros(3), var=[1e280, 2e280, 3e280]).cov
    logvar = Gaussian.diag(np.zeros(3), logvar=[644.0, 645.0, 646.0]).cov
    assert balanced(far, logvar)[2] is None  # ℓ − k ln 4 would round
    p2, q2, k = balanced(far, Gaussian(np.zeros(3), 1e280 * _spd(0, 3)).cov)
    assert abs(float(k)) > BALANCE_MIN_EXPONENT
    assert abs(float(p2.logdet() + q2.logdet())) < 6 * np.log(4.0)


# ------------------------------------------------------------------ the mix at the range's ends
def test_renyi_whose_mix_overflows_is_formed_at_unit_scale() -> None:
    """α = 5 for variances near 1e308: 5Σ₂ − 4Σ₁ overflows in the pair's units (3.5e308), not
    in the balanced ones; the factor comes back scaled by 2ᵏ (the matrix stays beyond)."""
    v1, v2 = np.array([1.0e308, 0.5e308]), np.array([1.5e308, 0.6e308])
    for build in (lambda v: Gaussian(np.zeros(2), np.diag(v)),
                  lambda v: Gaussian.from_scale_tril(np.zeros(2), np.diag(np.sqrt(v)))):
        p, q = build(v1), build(v2)
        s1 = mp.diag([mp.mpf(float(x)) for x in np.diag(p.cov.dense())])
        s2 = mp.diag([mp.mpf(float(x)) for x in np.diag(q.cov.dense())])
        check(gaussdiv.renyi(p, q, 5.0), ref_renyi(np.zeros(2), s1, np.zeros(2), s2, 5.0))


@pytest.mark.parametrize("side", ["precision_tril", "lowrank", "kronecker"])
def test_mix_from_square_roots_of_every_kind(side: str) -> None:
    """Σ beyond float64 held by a precision factor (R ∋ 1e-160), a low-rank factor (W ∋ 1e160)
    or a Kronecker product (1e200 ⊗ 1e200): the mix from the structures' own colourings."""
    if side == "precision_tril":
        r = np.array([1.0, 1e-160, 1.0])
        p = Gaussian.from_precision_tril(np.zeros(3), np.diag(r))
        s1 = mp.diag([1 / mp.mpf(x) ** 2 for x in r])
        q, s2 = Gaussian(np.zeros(3), CORRELATED), _mat(CORRELATED)
    elif side == "lowrank":  # Σ₁ ≈ 1e310 against Σ₂ ≈ 1e-300: no common scale fits both
        w, v = 1e155 * W, 1e308 * np.ones(3)
        p = Gaussian.lowrank(np.zeros(3), factor=w, var=v)
        s1 = _mat(w) * _mat(w).T + mp.diag([mp.mpf(x) for x in v])
        q, s2 = Gaussian(np.zeros(3), 1e-300 * CORRELATED), _mat(1e-300 * CORRELATED)
    else:
        a = 1e200 * np.array([[2.0, 0.5], [0.5, 1.0]])
        p = Gaussian.kronecker(np.zeros(4), a, 1e200 * np.eye(2))
        s1 = mp.matrix(4, 4)
        for i in range(4):
            for j in range(4):
                s1[i, j] = (mp.mpf(float(a[i // 2, j // 2])) * mp.mpf(1e200)
                            * (1 if i % 2 == j % 2 else 0))
        q = Gaussian.diag(np.zeros(4), var=[1.0, 2.0, 3.0, 4.0])
        s2 = mp.diag([1, 2, 3, 4])
    zero = np.zeros(p.dim)
    for alpha in (0.5, 0.1):
        mixed, definite = relation_for(type(p.cov), type(q.cov)).mix(p.cov, q.cov, alpha)
        assert definite is None
        with mp.workdps(DPS):
            a_ = mp.mpf(alpha)
            check(mixed.logdet(), _logdet(_cholesky(a_ * s2 + (1 - a_) * s1)))
    if side != "precision_tril":  # its Rényi divergences: see the next test
        check(gaussdiv.renyi(p, q, 0.5), ref_renyi(zero, s1, zero, s2, 0.5))
        check(gaussdiv.renyi(q, p, 0.5), ref_renyi(zero, s2, zero, s1, 0.5))


def test_renyi_against_a_precision_whose_covariance_overflows() -> None:
    """D_½ between N(0, C) and N(0, (R Rᵀ)⁻¹), R = diag(1, 1e-160, 1), both ways: the fast
    value is right; the spectrum holds λ ≈ 1e±320, beyond the float range (NaN came back)."""
    r = np.array([1.0, 1e-160, 1.0])
    p, s1 = Gaussian(np.zeros(3), CORRELATED), _mat(CORRELATED)
    q, s2 = Gaussian.from_precision_tril(np.zeros(3), np.diag(r)), mp.diag([1 / mp.mpf(x) ** 2
                                                                           for x in r])
    zero = np.zeros(3)
    check(gaussdiv.renyi(p, q, 0.5), ref_renyi(zero, s1, zero, s2, 0.5))
    check(gaussdiv.renyi(q, p, 0.5), ref_renyi(zero, s2, zero, s1, 0.5))


def test_definiteness_of_a_mix_is_scale_free() -> None:
    """A batch whose Cholesky fails for one element (2Σ₂ − 3Σ₂ = −Σ₂) judges the others on
    the unit-diagonal D^-½Σ_αD^-½: 2Σ₂ − Σ₁ = diag(1.5e-200, 1.5e200) is definite (an
    eigenvalue ratio of 1e-400 made it +inf), and nothing is decomposed across 1e±200."""
    v = np.array([1e-200, 1e200])
    p = Gaussian(np.zeros(2), np.stack([np.diag(0.5 * v), np.diag(3.0 * v)]))
    q = Gaussian(np.zeros(2), np.diag(v))
    got = gaussdiv.renyi(p, q, 2.0)
    s1 = mp.diag([mp.mpf(float(x)) for x in 0.5 * v])
    check(got[0], ref_renyi(np.zeros(2), s1, np.zeros(2), mp.diag([mp.mpf(x) for x in v]), 2.0))
    assert got[1] == np.inf

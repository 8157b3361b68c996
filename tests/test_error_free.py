"""gaussdiv.numerics.error_free against exact rationals (Fraction, Python integers) and mpmath.

Error-free transformations are checked for exactness (a op b == s + e as rationals); exp_dd
against mpmath at 60 digits; product_residual against C − AB in exact integer arithmetic. The
tolerances are the documented bounds, which have some margin over what is measured (see each
test). NumPy always; PyTorch and JAX through the ``fw`` fixture, away from subnormals (XLA on
CPU flushes them to zero).
"""

from __future__ import annotations

import math
from fractions import Fraction
from typing import Any

import mpmath as mp
import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from gaussdiv.numerics.error_free import (
    exp_dd,
    product_residual,
    square_dd,
    two_product,
    two_sum,
)

SETTINGS = settings(max_examples=200, deadline=None)
U64, U32 = 2.0**-53, 2.0**-24
TINY64, TINY32 = 2.0**-1074, 2.0**-149  # the smallest subnormals
F64 = st.floats(allow_nan=False, allow_infinity=False)
F32 = st.floats(allow_nan=False, allow_infinity=False, width=32)
BIG = float.fromhex("0x1.fffffp+511")  # BIG² is within 2⁻¹⁹ of overflow


@pytest.fixture(autouse=True, scope="module")
def _mp_digits() -> Any:
    """mpmath at 60 digits here only (tests/mpref.py sets its own global precision)."""
    with mp.workdps(60):
        yield


def _q(x: Any) -> Fraction:
    return Fraction(float(x))


def _rel_exp_error(x: np.ndarray, hi: np.ndarray, lo: np.ndarray) -> tuple[float, float]:
    """(largest relative error where e^x ≥ 2^-969, largest absolute error below); checks that
    e^x > max float gives (inf, 0)."""
    rel, absolute = 0.0, 0.0
    for xi, h, lo_i in zip(x.tolist(), hi.tolist(), lo.tolist(), strict=True):
        ref = mp.exp(mp.mpf(xi))
        if ref > mp.mpf(np.finfo(np.float64).max):
            assert h == math.inf and lo_i == 0
            continue
        err = abs(mp.mpf(h) + mp.mpf(lo_i) - ref)
        if ref >= mp.mpf(2) ** -969:
            rel = max(rel, float(err / ref))
        else:
            absolute = max(absolute, float(err))
    return rel, absolute


# -- two_sum, two_product, square_dd: exact --------------------------------------------------

@SETTINGS
@given(F64, F64)
@example(1.0, 2.0**-1074)
@example(1.7976931348623157e308, -1.7976931348623157e308 * (1 - 2.0**-53))
@example(1.7976931348623157e308, 1e292)  # overflows: e = 0
def test_two_sum_exact(a: float, b: float) -> None:
    s, e = two_sum(np.float64(a), np.float64(b))
    if math.isfinite(s):
        assert _q(a) + _q(b) == _q(s) + _q(e)
        assert s == a + b
    else:
        assert e == 0


@SETTINGS
@given(F64, F64)
@example(BIG, BIG)  # the high halves' product would overflow: rescaled
@example(1.7e308, 0.999)
@example(2.0**1000 * 1.3, 2.0**-1000 * 1.7)  # Veltkamp's split of a would overflow
@example(2.0**-500 * 1.1, 2.0**-470 * 1.3)  # exactly at the 2^-968 threshold region
@example(1e-160, 1e-160)  # subnormal product
def test_two_product_exact(a: float, b: float) -> None:
    p, e = two_product(np.float64(a), np.float64(b))
    if not math.isfinite(p):
        assert e == 0
        return
    assert p == a * b
    err = abs(_q(a) * _q(b) - _q(p) - _q(e))
    if abs(_q(a) * _q(b)) >= Fraction(2) ** -968:
        assert err == 0
    else:  # partial products underflow; documented bound 4 subnormal ulps, measured ≤ 1.5
        assert err <= 4 * _q(TINY64)


@SETTINGS
@given(F32, F32)
@example(float(np.float32(1.8e19)), float(np.float32(1.8e19)))
@example(float(np.float32(3e38)), float(np.float32(0.99)))
def test_two_sum_two_product_float32(a: float, b: float) -> None:
    a32, b32 = np.float32(a), np.float32(b)
    s, e = two_sum(a32, b32)
    p, f = two_product(a32, b32)
    assert s.dtype == e.dtype == p.dtype == f.dtype == np.float32
    if np.isfinite(s):
        assert _q(a32) + _q(b32) == _q(s) + _q(e)
    if np.isfinite(p):
        err = abs(_q(a32) * _q(b32) - _q(p) - _q(f))
        assert err == 0 if abs(_q(a32) * _q(b32)) >= Fraction(2) ** -101 else err <= 4 * TINY32


@SETTINGS
@given(F64)
@example(BIG)
@example(2.0**-484)
@example(1.3e154)
def test_square_dd_exact(s: float) -> None:
    hi, lo = square_dd(np.float64(s))
    if math.isfinite(hi) and abs(s) >= 2.0**-484:
        assert _q(s) ** 2 == _q(hi) + _q(lo) and hi == s * s


def test_error_free_on_framework(fw: Any) -> None:
    """Vectorised, on each framework, exponents within ±400 (clear of JAX's flush-to-zero)."""
    rng = np.random.default_rng(0)
    sign = rng.choice([-1.0, 1.0], (2, 500))
    a, b = sign * np.ldexp(rng.uniform(1, 2, (2, 500)), rng.integers(-400, 400, (2, 500)))
    s, e = (fw.result(v, np.float64) for v in two_sum(fw.array(a), fw.array(b)))
    p, f = (fw.result(v, np.float64) for v in two_product(fw.array(a), fw.array(b)))
    hi, lo = (fw.result(v, np.float64) for v in square_dd(fw.array(a)))
    for i in range(500):
        x, y = _q(a[i]), _q(b[i])
        assert x + y == _q(s[i]) + _q(e[i])
        assert x * y == _q(p[i]) + _q(f[i])
        assert x * x == _q(hi[i]) + _q(lo[i])


# -- exp_dd: against mpmath ------------------------------------------------------------------

EXP_X = np.concatenate([np.linspace(-745.2, 709.79, 1200), np.random.default_rng(1).uniform(
    -2, 2, 200), [0.0, 5e-324, -1e-300, 1e-17, 0.34657359027997264, 709.782712893384, -708.4,
    -671.6, -671.7, -745.13, -744.44]])


def test_exp_dd_float64() -> None:
    hi, lo = exp_dd(EXP_X)
    rel, absolute = _rel_exp_error(EXP_X, hi, lo)
    # Documented 2⁻¹⁰² (≈ 9 dd roundings of 2⁻¹⁰⁵ amplified by nothing: expm1 form); measured
    # 2.8e-32 ≈ 2⁻¹⁰⁴·⁸. Where e^x < 2⁻⁹⁶⁹, lo loses bits to the subnormal grid: ≤ 1 subnormal
    # ulp absolute (measured 0.6).
    assert rel <= 2.0**-102
    assert absolute <= TINY64
    assert np.all(np.abs(lo) <= U64 * np.abs(hi))


def test_exp_dd_limits() -> None:
    x = np.array([709.79, 710.0, 1e10, np.inf, -745.2, -800.0, -np.inf, np.nan, 0.0])
    hi, lo = exp_dd(x)
    assert np.array_equal(hi[:4], [np.inf] * 4) and np.array_equal(hi[4:7], [0.0] * 3)
    assert np.isnan(hi[7]) and hi[8] == 1.0
    assert np.array_equal(lo, np.zeros_like(lo))


@SETTINGS
@given(st.floats(-745.2, 709.78))
def test_exp_dd_hypothesis(x: float) -> None:
    hi, lo = exp_dd(np.float64(x))
    rel, absolute = _rel_exp_error(np.array([x]), np.array([hi]), np.array([lo]))
    assert rel <= 2.0**-102 and absolute <= TINY64


def test_exp_dd_float32() -> None:
    x = np.concatenate([np.linspace(-103.98, 88.72, 1500), [0.0, -87.3, -102.0, 88.7228]])
    x = x.astype(np.float32)
    hi, lo = exp_dd(x)
    assert hi.dtype == lo.dtype == np.float32
    worst = 0.0
    for xi, h, lo_i in zip(x.tolist(), hi.tolist(), lo.tolist(), strict=True):
        ref = mp.exp(mp.mpf(xi))
        err = abs(mp.mpf(h) + mp.mpf(lo_i) - ref)
        if ref >= mp.mpf(2) ** -102:  # lo normal in float32
            worst = max(worst, float(err / ref))
        else:
            assert err <= TINY32
    # Documented 2⁻⁴⁵ (float32 dd ≈ 2⁻⁴⁸ per rounding; ln 2 to 2⁻⁵⁶ times k ≤ 150); measured
    # 9.2e-15 ≈ 2⁻⁴⁶·⁶.
    assert worst <= 2.0**-45
    assert np.isinf(exp_dd(np.float32(88.73))[0]) and exp_dd(np.float32(-104.0))[0] == 0


def test_exp_dd_on_framework(fw: Any) -> None:
    x = EXP_X[(EXP_X > -660) & (EXP_X < 709.7)][::4]  # lo stays normal: no flush-to-zero
    hi, lo = (fw.result(v, np.float64) for v in exp_dd(fw.array(x)))
    rel, _ = _rel_exp_error(x, hi, lo)
    assert rel <= 2.0**-102
    if fw.name == "jax":
        return  # the same code as float64; JAX compiles every operation anew (seconds)
    x32 = np.linspace(-60.0, 88.0, 300).astype(np.float32)
    hi, lo = (fw.result(v, np.float32) for v in exp_dd(fw.array(x32, np.float32)))
    ref = [mp.exp(mp.mpf(v)) for v in x32.tolist()]
    rows = zip(hi.tolist(), lo.tolist(), ref, strict=True)
    assert max(abs((mp.mpf(h) + mp.mpf(q) - r) / r) for h, q, r in rows) <= 2.0**-45


def test_under_jax_jit() -> None:
    """XLA rewrites float expressions under jit (e.g. (1 + u) − 1 → u): still accurate."""
    jax = pytest.importorskip("jax")
    jax.config.update("jax_enable_x64", True)
    import jax.numpy as jnp

    x = EXP_X[(EXP_X > -660) & (EXP_X < 709.7)][::4]
    hi, lo = (np.asarray(v) for v in jax.jit(exp_dd)(jnp.asarray(x)))
    assert _rel_exp_error(x, hi, lo)[0] <= 2.0**-102
    a, b = np.random.default_rng(2).uniform(-1e5, 1e5, (2, 300))
    for f, op in ((two_sum, lambda x, y: x + y), (two_product, lambda x, y: x * y)):
        s, e = (np.asarray(v) for v in jax.jit(f)(jnp.asarray(a), jnp.asarray(b)))
        assert all(op(_q(x), _q(y)) == _q(p) + _q(q) for x, y, p, q in zip(a, b, s, e, strict=True))


@pytest.mark.slow  # XLA takes ≈ 2 s to compile it
def test_product_residual_under_jax_jit() -> None:
    jax = pytest.importorskip("jax")
    jax.config.update("jax_enable_x64", True)
    import jax.numpy as jnp

    c, m, r, exact, bound = _residual_case(24, 3, np.random.default_rng(3))
    got = np.asarray(jax.jit(product_residual)(jnp.asarray(c), jnp.asarray(m), jnp.asarray(r)))
    _check_residual(got, exact, bound)


# -- product_residual: against exact integer arithmetic ---------------------------------------

def _to_int(x: np.ndarray) -> list[list[int]]:
    """x·2^1074 as exact Python integers (every float64 is a multiple of 2^-1074)."""
    mant, expo = np.frexp(x)
    mant = (mant * 2.0**53).astype(np.int64)
    return [[int(m) << int(e) if e >= 0 else int(m) >> -int(e) for m, e in zip(rm, re, strict=True)]
            for rm, re in zip(mant.tolist(), (expo - 53 + 1074).tolist(), strict=True)]


def _residual_case(d: int, k: int, rng: np.random.Generator, spread: int = 300,
                   inner: int = 40, noise: float = 1e-13) -> tuple[Any, ...]:
    """A (d, d) with badly scaled rows (2^±spread) and entries within a row spread over 2^inner,
    B (d, k) with scaled columns, C = fl(AB)·(1 + noise·N(0, 1)); the exact C − AB and the
    allowed error u·|C − AB| + 2⁻¹⁰⁰·|A||B| (as Fractions, elementwise)."""
    a = rng.standard_normal((d, d)) * np.ldexp(1.0, rng.integers(-spread, spread + 1, (d, 1)))
    a *= np.ldexp(1.0, rng.integers(-inner, 1, (d, d)))
    b = rng.standard_normal((d, k)) * np.ldexp(1.0, rng.integers(-spread, spread + 1, (1, k)))
    c = a @ b
    c = c + c * noise * rng.standard_normal(c.shape)
    return (c, a, b, *_exact_residual(c, a, b))


def _exact_residual(c: np.ndarray, a: np.ndarray, b: np.ndarray) -> tuple[Any, Any]:
    ai, bi, ci = _to_int(a), _to_int(b.T), _to_int(c)
    scale = Fraction(1, 2**2148)
    exact, bound = [], []
    for i, row in enumerate(ai):
        products = [[x * y for x, y in zip(row, col, strict=True)] for col in bi]
        exact.append([(ci[i][j] * 2**1074 - sum(p)) * scale for j, p in enumerate(products)])
        bound.append([U64 * abs(exact[-1][j]) + Fraction(2) ** -100 * sum(map(abs, p)) * scale
                      for j, p in enumerate(products)])
    return exact, bound


def _check_residual(got: np.ndarray, exact: Any, bound: Any) -> float:
    """Asserts |got − exact| ≤ bound everywhere; returns the worst ratio."""
    worst = 0.0
    for g_row, e_row, b_row in zip(got.tolist(), exact, bound, strict=True):
        for g, e, bd in zip(g_row, e_row, b_row, strict=True):
            err = abs(_q(g) - e)
            assert err <= bd, (g, float(e), float(bd))
            worst = max(worst, float(err / bd) if bd else 0.0)
    return worst


@pytest.mark.parametrize("d", [3, 20, 64, 200])
def test_product_residual_badly_scaled(d: int) -> None:
    rng = np.random.default_rng(d)
    c, a, b, exact, bound = _residual_case(d, 3, rng)
    _check_residual(product_residual(c, a, b), exact, bound)
    # C = fl(AB) exactly: C − AB is only the rounding of AB (≈ u|AB|, heavy cancellation).
    c = a @ b
    exact, bound = _exact_residual(c, a, b)
    _check_residual(product_residual(c, a, b), exact, bound)


def test_product_residual_cholesky() -> None:
    """Σ − L̂L̂ᵀ for LAPACK's factor of a badly scaled Σ: the use in covariance refinement."""
    rng = np.random.default_rng(5)
    m = rng.standard_normal((48, 48))
    scale = np.ldexp(1.0, rng.integers(-200, 200, 48))
    sigma = scale[:, None] * (m @ m.T + 1e-3 * np.eye(48)) * scale
    chol = np.linalg.cholesky(sigma)
    exact, bound = _exact_residual(sigma, chol, chol.T)
    _check_residual(product_residual(sigma, chol, chol.T), exact, bound)


def test_product_residual_contract() -> None:
    rng = np.random.default_rng(6)
    a, b = rng.standard_normal((2, 1, 5, 6)), rng.standard_normal((3, 6, 4))
    c = a @ b + 1e-14
    got = product_residual(c, a, b)
    assert got.shape == (2, 3, 5, 4)
    for i in range(2):
        for j in range(3):
            exact, bound = _exact_residual(c[i, j], a[i, 0], b[j])
            _check_residual(got[i, j], exact, bound)
    calls = []

    def counting(x: Any, y: Any) -> Any:
        calls.append(x.shape[-1])
        return x @ y

    product_residual(c, a, b, np, matmul=counting)
    assert calls == [6, 12, 18, 24]  # 4 products: inner m, 2m, 3m, 4m
    assert product_residual(c.astype(np.float16), a.astype(np.float16), b) is None
    assert np.array_equal(product_residual(np.ones((2, 3)), np.ones((2, 0)), np.ones((0, 3))),
                          np.ones((2, 3)))


def test_product_residual_float32() -> None:
    rng = np.random.default_rng(7)
    a, b = (rng.standard_normal(s).astype(np.float32) for s in ((30, 30), (30, 5)))
    c = (a @ b).astype(np.float32)
    got = product_residual(c, a, b)
    assert got.dtype == np.float32
    exact, _ = _exact_residual(c.astype(np.float64), a.astype(np.float64), b.astype(np.float64))
    # The float64 residual is accurate to ≈ 2⁻⁵³, then rounded to float32: ≤ u32 relative.
    for g_row, e_row in zip(got.tolist(), exact, strict=True):
        for g, e in zip(g_row, e_row, strict=True):
            assert abs(_q(g) - e) <= U32 * abs(e)


def test_product_residual_on_framework(fw: Any) -> None:
    # One shape (JAX compiles each operation per shape in eager mode: seconds for several).
    c, a, b, exact, bound = _residual_case(24, 3, np.random.default_rng(8), spread=100)
    got = fw.result(product_residual(fw.array(c), fw.array(a), fw.array(b)), np.float64)
    _check_residual(got, exact, bound)
    rng = np.random.default_rng(9)
    a, b = (rng.standard_normal(x.shape).astype(np.float32) for x in (a, b))
    c = (a @ b).astype(np.float64) * (1 + 1e-6)
    got = fw.result(product_residual(*(fw.array(v, np.float32) for v in (c, a, b))), np.float32)
    exact = _exact_residual(c.astype(np.float32).astype(np.float64), a.astype(np.float64),
                            b.astype(np.float64))[0]
    assert all(abs(_q(g) - e) <= U32 * abs(e) for gr, er in zip(got.tolist(), exact, strict=True)
               for g, e in zip(gr, er, strict=True))

"""W₂ at scales near the float64 range (issue 16), against mpmath.

W₂ is homogeneous: W₂(sP, sQ) = s·W₂(P, Q) for the map x → s x (covariances scale by s²), so
scaling a pair's arrays by an exact power of two 2^k scales the reference exactly; the sweep
below checks the library against 2^k times the reference at scale 1, for factors and means
from 2^-1000 to 2^1000 (Σ itself then beyond the float range: only factors can hold it).

References take the float inputs as exact: W₂² = ‖μ₁ − μ₂‖² + tr Σ₁ + tr Σ₂ − 2 tr C with
tr C = Σ √λᵢ(L₁ᵀ Σ₂ L₁) (mpmath Cholesky and ``eigsy``), at 60 digits beyond the decimal span
of the inputs' entries; one test checks that route against ``mp.sqrtm`` (C = (Σ₁^½Σ₂Σ₁^½)^½ by
Denman–Beavers, which does not converge for the widest spans).

The reproducers: tests/cli/test_cli_library_issues.py's two W₂ cases (a scale_tril entry 1e300:
NaN; dense diagonals spanning 1e-200..1e200: LinAlgError from eigvalsh), covariances ≈1e-200
(tiny scales: the eigenvalues of ZᵀZ underflowed and W₂ was the sum of the traces), a precision
factor ~1e98 against identical arrays (not 0), and the fuzzer's dense pair with variances
1e-33..1e166 (NaN; now refused: its condition number, ~1e198, is beyond what the eigenbasis
form resolves).
"""

from __future__ import annotations

from typing import Any

import mpmath as mp
import numpy as np
import pytest

import gaussdiv as gd
from gaussdiv.errors import DtypeError

DIGITS = 60


# ------------------------------------------------------------------------------ references
def mpm(a: Any) -> mp.matrix:
    return mp.matrix([[mp.mpf(float(x)) for x in row] for row in np.atleast_2d(np.asarray(
        a, dtype=np.float64))])


def from_factor(factor: Any) -> mp.matrix:
    """L Lᵀ exactly (each entry a sum of products of floats: 2·53 bits, < 60 digits)."""
    with mp.workdps(DIGITS):
        ell = mpm(factor)
        return ell * ell.T


def _cholesky(a: mp.matrix) -> mp.matrix:
    """Cholesky in the working precision (mp.cholesky refuses spans beyond its tolerance)."""
    n = a.rows
    ell = mp.zeros(n, n)
    for j in range(n):
        ell[j, j] = mp.sqrt(a[j, j] - mp.fsum(ell[j, k] ** 2 for k in range(j)))
        for i in range(j + 1, n):
            ell[i, j] = (a[i, j] - mp.fsum(ell[i, k] * ell[j, k] for k in range(j))) / ell[j, j]
    return ell


def _digits(*matrices: mp.matrix) -> int:
    sizes = [abs(x) for m in matrices for x in m if x != 0]
    return DIGITS + 2 * int(mp.log10(max(sizes)) - mp.log10(min(sizes)))


def w2_squared(m1: Any, s1: mp.matrix, m2: Any, s2: mp.matrix) -> mp.mpf:
    """W₂² of N(m1, s1), N(m2, s2): means as float arrays, covariances as exact mp matrices."""
    with mp.workdps(_digits(s1, s2)):
        ell = _cholesky(s1)
        k = ell.T * s2 * ell
        root = mp.fsum(mp.sqrt(max(e, 0)) for e in mp.eigsy((k + k.T) / 2, eigvals_only=True))
        mean = mp.fsum((mp.mpf(float(a)) - mp.mpf(float(b))) ** 2
                       for a, b in zip(np.ravel(m1), np.ravel(m2), strict=True))
        traces = mp.fsum(s1[i, i] + s2[i, i] for i in range(s1.rows))
        return +(mean + traces - 2 * root)


def w2(m1: Any, s1: mp.matrix, m2: Any, s2: mp.matrix) -> mp.mpf:
    return mp.sqrt(max(w2_squared(m1, s1, m2, s2), 0))


def rel_err(value: Any, reference: mp.mpf) -> float:
    value = float(value)
    assert np.isfinite(value) and value >= 0, value
    if reference == 0:
        return abs(value)
    return float(abs((mp.mpf(value) - reference) / reference))


def spd(rng: np.random.Generator, d: int) -> np.ndarray:
    a = rng.standard_normal((d, d))
    return a @ a.T / d + np.eye(d)


def test_reference_agrees_with_sqrtm() -> None:
    """The Cholesky/eigsy reference against the definition by mp.sqrtm, at 60 digits."""
    rng = np.random.default_rng(0)
    s1, s2 = spd(rng, 3), spd(rng, 3)
    m1, m2 = rng.standard_normal(3), rng.standard_normal(3)
    with mp.workdps(DIGITS):
        a, b = mpm(s1), mpm(s2)
        root = mp.sqrtm(a)
        c = mp.sqrtm(root * b * root)
        by_sqrtm = (mp.fsum((mp.mpf(float(x)) - mp.mpf(float(y))) ** 2
                            for x, y in zip(m1, m2, strict=True))
                    + mp.fsum(a[i, i] + b[i, i] - 2 * c[i, i] for i in range(3)))
        assert abs(mp.re(by_sqrtm) - w2_squared(m1, a, m2, b)) < mp.mpf(10) ** -50 * by_sqrtm
    assert rel_err(gd.wasserstein(gd.Gaussian(m1, s1), gd.Gaussian(m2, s2)),
                   mp.sqrt(mp.re(by_sqrtm))) < 1e-14


# ------------------------------------------------------------------------------ reproducers
def test_a_1e300_scale_factor(fw: Any) -> None:
    """Was NaN (ZᵀZ and the traces overflow: ∞ − ∞). W₂ ≈ 1e300; W₂² overflows to +inf."""
    factor = [[1.0, 0.0], [0.0, 1e300]]
    p = gd.Gaussian.from_scale_tril(fw.array([0.0, 0.0]), fw.array(factor))
    q = gd.Gaussian(fw.array([0.0, 0.0]), fw.array(np.eye(2)))
    ref = w2([0, 0], from_factor(factor), [0, 0], mp.eye(2))
    assert rel_err(fw.to_numpy(gd.wasserstein(p, q)), ref) < 1e-15
    assert fw.to_numpy(gd.wasserstein(p, q, squared=True)) == np.inf


def test_dense_diagonals_spanning_1e400() -> None:
    """Was a LinAlgError (eigvalsh of an infinite ZᵀZ), as the CLI reads them: dense cov."""
    v1, v2 = [1e-200, 1e168, 1e-200], [3.0, 1e200, 1e169]
    p, q = gd.Gaussian(np.zeros(3), np.diag(v1)), gd.Gaussian(np.zeros(3), np.diag(v2))
    ref = w2(np.zeros(3), mp.diag([mp.mpf(x) for x in v1]), np.zeros(3),
             mp.diag([mp.mpf(x) for x in v2]))
    assert rel_err(gd.wasserstein(p, q), ref) < 1e-15
    # the structure-aware route (closed form per coordinate) agrees
    diag = gd.wasserstein(gd.Gaussian.diag(np.zeros(3), var=v1), gd.Gaussian.diag(np.zeros(3),
                                                                                  var=v2))
    assert rel_err(diag, ref) < 1e-15


def test_tiny_scale_near_pair_is_not_the_sum_of_the_traces() -> None:
    """Covariances ≈1e-200: ZᵀZ ≈ 1e-800 underflowed to 0, so the fast sum returned
    tr Σ₁ + tr Σ₂ (W₂ ≈ 1e-100) instead of W₂ ≈ 1e-109."""
    rng = np.random.default_rng(1)
    s1 = spd(rng, 3)
    t = np.eye(3) + 1e-9 * rng.standard_normal((3, 3))
    s2 = t @ s1 @ t.T
    c = 2.0**-660  # ≈ 2e-199 in Σ
    p, q = gd.Gaussian(np.zeros(3), s1 * c), gd.Gaussian(np.zeros(3), s2 * c)
    ref = w2(np.zeros(3), mpm(s1 * c), np.zeros(3), mpm(s2 * c))
    assert ref < 1e-105
    assert rel_err(gd.wasserstein(p, q), ref) < 1e-13


def test_identical_precision_factors_near_1e98_give_zero() -> None:
    """Was ≈1e-98 (ZᵀZ ≈ 1e-392 underflowed: W₂² = tr Σ₁ + tr Σ₂ where P = Q)."""
    factor = np.array([[1.2e98, 0, 0], [6.3e96, 4.4e98, 0], [2.6e96, 4.7e97, 1.0e98]])
    p = gd.Gaussian.from_precision_tril(np.zeros(3), factor)
    q = gd.Gaussian.from_precision_tril(np.zeros(3), factor.copy())
    assert float(gd.wasserstein(p, q)) == 0.0
    assert float(gd.wasserstein(p, p)) == 0.0


def test_fuzzer_pair_spanning_1e200_is_refused_not_nan() -> None:
    """The fuzzer's pair: variances 1.9e131 … 7e-33 against a nearby dense covariance with
    off-diagonal entries up to ~5e143 (was NaN). κ(Σ₁) ≈ 1e198: the eigenbasis form cannot
    resolve its small eigenvalues (the value it gives breaks T ≤ ‖Σ₂ − Σ₁‖_*), so the pair is
    refused, naming both arguments and what to do."""
    v = np.array([1.9e131, 7.5e165, 1.7e26, 7e-33, 1.8e109])
    rng = np.random.default_rng(16)
    a = rng.uniform(-1, 1, (5, 5))
    s = np.sqrt(v)
    q = s[:, None] * (np.eye(5) + 2.5e-5 * (a + a.T) / 2) * s[None, :]
    q = (q + q.T) / 2
    assert np.max(np.abs(q - np.diag(np.diag(q)))) > 1e143
    for p in (gd.Gaussian(np.zeros(5), np.diag(v)), gd.Gaussian.diag(np.zeros(5), var=v)):
        with pytest.raises(DtypeError, match=r"p and q.*float64 — the widest dtype") as info:
            gd.wasserstein(p, gd.Gaussian(np.ones(5), q))
        assert "Gaussian.diag" in str(info.value)


# ------------------------------------------------------------------------------ homogeneity
KINDS = ("scale_tril", "cov", "precision_tril", "std")


def _build(kind: str, mean: np.ndarray, cov: np.ndarray, c: float) -> gd.Gaussian:
    """N(c·mean, c²·cov) from the exactly scaled arguments of ``kind``."""
    if kind == "scale_tril":
        return gd.Gaussian.from_scale_tril(mean * c, np.linalg.cholesky(cov) * c)
    if kind == "cov":
        return gd.Gaussian(mean * c, cov * (c * c))
    if kind == "precision_tril":
        return gd.Gaussian.from_precision_tril(mean * c, np.linalg.cholesky(np.linalg.inv(cov))
                                               / c)
    return gd.Gaussian.diag(mean * c, std=np.sqrt(np.diag(cov)) * c)


def _exact_cov(kind: str, cov: np.ndarray) -> mp.matrix:
    """The covariance ``_build`` holds at c = 1, exactly."""
    with mp.workdps(DIGITS):
        if kind == "scale_tril":
            return from_factor(np.linalg.cholesky(cov))
        if kind == "cov":
            return mpm(cov)
        if kind == "precision_tril":
            return mp.inverse(from_factor(np.linalg.cholesky(np.linalg.inv(cov))))
        return mp.diag([mp.mpf(float(x)) ** 2 for x in np.sqrt(np.diag(cov))])


@pytest.mark.parametrize("near", [False, True], ids=["separated", "near"])
@pytest.mark.parametrize("kind", KINDS)
def test_scaling_by_a_power_of_two_scales_w2(kind: str, near: bool) -> None:
    """W₂(2^k P, 2^k Q) = 2^k W₂(P, Q), k from -1000 to 1000 (covariance matrices where c²Σ is
    a float64: |k| ≤ 500), with the accuracy at scale 1: against mpmath there, and 2^-k times
    the value at every k equal to the value at k = 0 to 1e-14 (the scaling is exact; a W₂ below
    the normal range keeps its subnormal digits only). P is ``kind``, Q a full covariance (a
    factor where c²Σ is not representable). Near a precision side the accuracy at scale 1 is
    that of Σ = R⁻ᵀR⁻¹ formed from it (≈ κ·u relative in Σ₂ − Σ₁ ≈ 1e-8)."""
    rng = np.random.default_rng(2 + near)
    d = 3
    s1 = spd(rng, d) if kind != "std" else np.diag(rng.uniform(0.5, 2, d))
    s2 = s1 + 1e-8 * (lambda a: a + a.T)(rng.standard_normal((d, d))) if near else spd(rng, d)
    m1 = rng.standard_normal(d)
    m2 = m1 + 1e-9 * rng.standard_normal(d) if near else rng.standard_normal(d)
    ref = w2(m1, _exact_cov(kind, s1), m2, from_factor(np.linalg.cholesky(s2)))

    def value(k: int) -> float:
        c = 2.0**k
        q = gd.Gaussian.from_scale_tril(m2 * c, np.linalg.cholesky(s2) * c)
        return float(gd.wasserstein(_build(kind, m1, s1, c), q))

    unit = value(0)
    # where Σ = R⁻ᵀR⁻¹ underflows unscaled, it is formed from the scaled R⁻ᵀ: another rounding
    # of the same κ·u-limited difference
    rtol = 1e-6 if near and kind == "precision_tril" else 1e-13
    assert rel_err(unit, ref) < rtol
    tiny = 2 * float(np.finfo(np.float64).smallest_subnormal)
    for k in (-1000, -900, -600, -500, -300, -100, 100, 300, 500, 600, 900, 1000):
        if kind == "cov" and abs(k) > 500:
            continue
        scaled = value(k)
        assert abs(scaled - np.ldexp(unit, k)) <= max(rtol / 10 * np.ldexp(unit, k), tiny), (
            k, np.ldexp(scaled, -k), unit)


def test_means_decide_the_unit_where_they_are_the_larger() -> None:
    """‖μ₁ − μ₂‖ = 1e200 with unit covariances (‖Δμ‖² overflows), and ‖μ₁ − μ₂‖ = 1e-170
    with equal covariances (its square underflows, T = 0): W₂ = ‖Δμ‖ in both."""
    far = gd.wasserstein(gd.Gaussian([1e200, 0.0], np.eye(2)), gd.Gaussian([0.0, 0.0],
                                                                          np.eye(2)))
    assert float(far) == 1e200
    s = spd(np.random.default_rng(3), 2)
    close = gd.wasserstein(gd.Gaussian([1e-170, 0.0], s), gd.Gaussian([0.0, 0.0], s))
    assert rel_err(close, mp.mpf(1e-170)) < 1e-15
    for kind in ("var", "std"):
        args = {kind: [1.0, 2.0]}
        pair = (gd.Gaussian.diag([1e-170, 0.0], **args), gd.Gaussian.diag([0.0, 0.0], **args))
        assert rel_err(gd.wasserstein(*pair), mp.mpf(1e-170)) < 1e-15


def test_a_batch_with_one_extreme_element(fw: Any) -> None:
    """Only the batch's values count: the ordinary elements as they are alone, the extreme
    ones right, means broadcasting over the covariances' batch."""
    factors = np.stack([np.eye(2), [[1.0, 0.0], [0.5, 1e300]], np.eye(2) * 1e-200,
                        [[3.0, 0.0], [1.0, 2.0]]])
    means = np.array([[[0.0, 1.0]], [[2.0, 0.0]]])  # batch (2, 1) against the factors' (4,)
    p = gd.Gaussian.from_scale_tril(fw.array(means), fw.array(factors))
    q = gd.Gaussian(fw.array([0.0, 0.0]), fw.array(np.eye(2)))
    got = fw.to_numpy(gd.wasserstein(p, q))
    assert got.shape == (2, 4)
    for i in range(2):
        for j in range(4):
            ref = w2(means[i, 0], from_factor(factors[j]), [0, 0], mp.eye(2))
            assert rel_err(got[i, j], ref) < 1e-15, (i, j)
    same = gd.wasserstein(p, p)
    assert np.all(fw.to_numpy(same) == 0)


def test_gradient_at_an_extreme_scale_is_that_of_w2() -> None:
    """torch: ∂W₂/∂L for L = [[1, 0], [½, 1e300]] against N(1, I): W₂ ≈ L₂₂ − 1, so the
    gradient is (≈1e-300, 0; ≈5e-301, 1) — finite, not ∞·0 from the unscaled formula."""
    torch = pytest.importorskip("torch")
    factor = torch.tensor([[1.0, 0.0], [0.5, 1e300]], dtype=torch.float64, requires_grad=True)
    p = gd.Gaussian.from_scale_tril(torch.zeros(2, dtype=torch.float64), factor)
    q = gd.Gaussian(torch.ones(2, dtype=torch.float64), torch.eye(2, dtype=torch.float64))
    gd.wasserstein(p, q).backward()
    grad = factor.grad.numpy()
    assert np.all(np.isfinite(grad))
    assert abs(grad[1, 1] - 1) < 1e-15 and grad[0, 1] == 0
    assert abs(grad[0, 0] - 1e-300) < 1e-314 and abs(grad[1, 0] - 5e-301) < 1e-314


def test_jit_with_constant_means_at_a_tiny_scale() -> None:
    """Under jax.jit with the means compile-time zeros, XLA rewrote (0·s)² as 0²·s² = 0·∞
    for the scaling s ≈ 2^660 of covariances ≈ 1e-400: the scaling is an ldexp."""
    jax = pytest.importorskip("jax")
    jax.config.update("jax_enable_x64", True)
    jnp = jax.numpy
    base = jnp.asarray(np.linalg.cholesky(spd(np.random.default_rng(4), 2)))

    def distance(scale: Any) -> Any:
        p = gd.Gaussian.from_scale_tril(jnp.zeros(2), base * scale)
        q = gd.Gaussian.from_scale_tril(jnp.zeros(2), base * (2 * scale))
        return gd.wasserstein(p, q)

    ref = w2([0, 0], from_factor(np.asarray(base) * 1e-200), [0, 0],
             from_factor(np.asarray(base) * 2e-200))
    assert rel_err(jax.jit(distance)(1e-200), ref) < 1e-15
    assert rel_err(distance(1e-200), ref) < 1e-15


# ------------------------------------------------------------------------------ diagonals
@pytest.mark.parametrize("case", [
    ("std 1e200 / var", {"std": [1e200, 1.0]}, {"var": [1.0, 1.0]}),
    ("std 1e200 / std", {"std": [1e200, 1.0]}, {"std": [1.0, 2.0]}),
    ("logvar 1000 / var", {"logvar": [1000.0, 0.0]}, {"var": [1.0, 3.0]}),
    ("logvar 1000 / logvar 1000.5", {"logvar": [1000.0, 0.0]}, {"logvar": [1000.5, 0.0]}),
    ("var 1e-300 / std", {"var": [1e-300, 2e-300]}, {"std": [1.0000001e-150, 1.5e-150]}),
    ("subnormal var / var", {"var": [3e-320, 1e-310]}, {"var": [1e-319, 1e-310]}),
], ids=lambda c: c[0])
def test_diagonal_pairs_near_the_range(case: tuple[str, dict, dict]) -> None:
    """Closed form per coordinate, Σᵢ (σ₁ᵢ − σ₂ᵢ)², in units where the σ difference (or, across
    kinds, each variance formed as a double-double there) is within the float range."""
    _, a, b = case

    def variances(args: dict) -> list[mp.mpf]:
        (kind, values), = args.items()
        with mp.workdps(DIGITS):
            return [{"var": lambda x: mp.mpf(x), "std": lambda x: mp.mpf(x) ** 2,
                     "logvar": lambda x: mp.exp(mp.mpf(x))}[kind](x) for x in values]

    with mp.workdps(DIGITS):
        ref = mp.sqrt(mp.fsum((mp.sqrt(x) - mp.sqrt(y)) ** 2
                              for x, y in zip(variances(a), variances(b), strict=True)))
    got = gd.wasserstein(gd.Gaussian.diag(np.zeros(2), **a), gd.Gaussian.diag(np.zeros(2), **b))
    assert rel_err(got, ref) < 1e-15


def test_subnormal_variances_across_kinds_near_each_other() -> None:
    """The fuzzer's near pairs: an isotropic subnormal variance against the same covariance
    as standard deviations or log-variances (W₂ ≈ 1e-172, was 0: v₁ − v₂ of the subnormal
    double-doubles rounded to 0)."""
    var = 1.26867220554e-313
    mean = np.array([2.9, -2.2, 1.4])
    p = gd.Gaussian.isotropic(mean, var)
    logvar = np.full(3, -720.4711632610374)
    std = np.full(3, np.sqrt(var) * (1 + 2e-15))
    with mp.workdps(DIGITS):
        cases = ((gd.Gaussian.diag(mean, logvar=logvar), [mp.exp(mp.mpf(x)) for x in logvar]),
                 (gd.Gaussian.diag(mean, std=std), [mp.mpf(x) ** 2 for x in std]))
    for q, variances in cases:
        with mp.workdps(DIGITS):
            ref = mp.sqrt(mp.fsum((mp.sqrt(mp.mpf(var)) - mp.sqrt(v)) ** 2 for v in variances))
        assert 0 < ref < 1e-170
        assert rel_err(gd.wasserstein(p, q), ref) < 1e-12


# ------------------------------------------------------------------------------ refusals
def test_precision_factor_beyond_the_range_names_the_element() -> None:
    """Σ = Λ⁻¹ for a pivot 1e-320: its factor R⁻ᵀ has an entry 1e320, which float64 cannot
    hold (Σ spans 1e640, W₂ ≈ 1e320)."""
    factors = np.stack([np.eye(2), [[1e-320, 0.0], [0.0, 1.0]]])
    p = gd.Gaussian.from_precision_tril(np.zeros((2, 2)), factors)
    with pytest.raises(DtypeError, match=r"p's covariance at batch index 1 .*float64 — the "
                                         r"widest dtype gaussdiv computes in — cannot hold"):
        gd.wasserstein(p, gd.Gaussian.standard(2))


@pytest.mark.parametrize("small", [1e-170, 1e-200])
def test_a_difference_only_along_a_direction_1e170_below_is_refused_when_dense(
        small: float) -> None:
    """Σ₁ = diag(1, s), Σ₂ = diag(1, 4s) as dense matrices: W₂ = √s comes from a direction
    whose part of Σ₁^½Σ₂Σ₁^½ (≈ s²) is below the float range; the eigenbasis form would give
    √(9s) (its eigenvalue lost) — refused. As diagonals, per coordinate, it is exact; up to a
    span of 1e150 it is computed."""
    p, q = gd.Gaussian(np.zeros(2), np.diag([1.0, small])), gd.Gaussian(
        np.zeros(2), np.diag([1.0, 4 * small]))
    with pytest.raises(DtypeError, match=r"p and q: W₂ cannot be resolved"):
        gd.wasserstein(p, q)
    diag = gd.wasserstein(gd.Gaussian.diag(np.zeros(2), var=[1.0, small]),
                          gd.Gaussian.diag(np.zeros(2), var=[1.0, 4 * small]))
    assert rel_err(diag, mp.sqrt(mp.mpf(small))) < 1e-15
    fine = gd.wasserstein(gd.Gaussian(np.zeros(2), np.diag([1.0, 1e-150])),
                          gd.Gaussian(np.zeros(2), np.diag([1.0, 4e-150])))
    assert rel_err(fine, mp.sqrt(mp.mpf(1e-150))) < 1e-15


def test_an_unresolvable_condition_number_is_refused_not_returned() -> None:
    """A near pair with κ(Σ₁) ≈ 1e167 (a spread of 2^556 in Σ at scale ≈1): the unchecked
    eigenbasis sum gave 8.8e43 for W₂ ≈ 1e-9 (its K had an eigenvalue rounded below 0 against
    a direction of Σ₁ 1e-168); it breaks T ≤ ‖Σ₂ − Σ₁‖_* and is refused."""
    e = np.array([-25.1, 0.5, -277.7, -232.2, -52.1])
    v = np.ldexp(1.0, (2 * e).round().astype(int))
    rng = np.random.default_rng(5)
    a = rng.uniform(-1, 1, (5, 5))
    s = np.sqrt(v)
    q = s[:, None] * (np.eye(5) + 1e-8 * (a + a.T) / 2) * s[None, :]
    with pytest.raises(DtypeError, match=r"p and q"):
        gd.wasserstein(gd.Gaussian(np.zeros(5), np.diag(v)), gd.Gaussian(np.zeros(5),
                                                                         (q + q.T) / 2))

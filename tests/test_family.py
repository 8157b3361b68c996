"""The divergence family beyond KL: properties, limits, bad input, total-variation bounds.

Accuracy against mpmath for every structure pair is in tests/test_family_reference.py; here:
α → 1 is KL, α = 1 returns KL, +inf where Σ_α is not positive definite, symmetry, identical
inputs, the Hellinger/Bhattacharyya relations, gradients, the frameworks, and TV bounds that
bracket the exact 1-D value (mpmath quadrature) and a Monte Carlo estimate in d > 1.
"""

from __future__ import annotations

import itertools

import mpmath as mp
import numpy as np
import pytest

import gaussdiv as gd


def _pair(d: int = 3, seed: int = 0, near: float | None = None) -> tuple[gd.Gaussian, ...]:
    rng = np.random.default_rng(seed)
    a, b = rng.standard_normal((2, d, d))
    s1, s2 = a @ a.T / d + np.eye(d), b @ b.T / d + np.eye(d)
    m1, m2 = rng.standard_normal((2, d))
    if near is not None:
        e = rng.standard_normal((d, d))
        s2, m2 = s1 + near * (e + e.T), m1 + near * rng.standard_normal(d)
    return gd.Gaussian(m1, s1), gd.Gaussian(m2, s2)


def test_renyi_tends_to_kl_and_alpha_one_is_kl():
    p, q = _pair()
    kl = gd.kl(p, q)
    assert gd.renyi(p, q, 1) == kl
    for alpha in (1 - 1e-6, 1 + 1e-6):
        assert gd.renyi(p, q, alpha) == pytest.approx(kl, rel=1e-5)
    # D_α is non-decreasing in α.
    values = [gd.renyi(p, q, a) for a in (0.1, 0.5, 0.9, 1.0, 1.1)]
    assert all(x <= y for x, y in itertools.pairwise(values))


def test_renyi_is_infinite_where_the_mixed_covariance_is_not_definite():
    p = gd.Gaussian(np.zeros(2), np.eye(2))
    q = gd.Gaussian(np.zeros(2), 0.3 * np.eye(2))
    assert gd.renyi(p, q, 3.0) == np.inf  # 3·0.3 − 2 < 0
    assert np.isfinite(gd.renyi(p, q, 1.2))  # 1.2·0.3 − 0.2 > 0
    batch = gd.Gaussian(np.zeros(2), np.stack([0.3 * np.eye(2), 2 * np.eye(2)]))
    values = gd.renyi(p, batch, 3.0)
    assert values[0] == np.inf and np.isfinite(values[1])
    diag = gd.renyi(gd.Gaussian.diag(np.zeros(2), var=[1.0, 1.0]),
                    gd.Gaussian.diag(np.zeros(2), var=[0.3, 2.0]), 3.0)
    assert diag == np.inf


def test_identical_inputs_and_symmetry():
    p, q = _pair()
    for f in (gd.bhattacharyya, gd.hellinger, gd.jeffreys):
        assert f(p, p) == 0.0
        assert f(p, q) == pytest.approx(f(q, p), rel=1e-13)
    assert gd.renyi(p, p, 0.3) == 0.0
    assert gd.bhattacharyya_coefficient(p, p) == 1.0
    d_b = gd.bhattacharyya(p, q)
    assert d_b == pytest.approx(0.5 * gd.renyi(p, q, 0.5), rel=1e-15)
    assert gd.hellinger(p, q) ** 2 == pytest.approx(1 - np.exp(-d_b), rel=1e-13)
    assert gd.jeffreys(p, q) == pytest.approx(gd.kl(p, q) + gd.kl(q, p), rel=1e-15)


def test_hellinger_keeps_its_digits_where_one_minus_bc_cannot():
    p, q = _pair(near=1e-10)
    d_b = mp.mpf(float(gd.bhattacharyya(p, q)))
    expected = mp.sqrt(-mp.expm1(-d_b))
    assert abs(gd.hellinger(p, q) - expected) / expected < 1e-14
    assert np.sqrt(1 - gd.bhattacharyya_coefficient(p, q)) == 0.0  # what 1 − BC gives


@pytest.mark.parametrize("alpha", [0, -1, np.nan, np.inf, "0.5", True, 1j])
def test_bad_orders_are_specific_errors(alpha):
    p, q = _pair()
    with pytest.raises(gd.GaussianError, match="alpha"):
        gd.renyi(p, q, alpha)


def test_family_on_torch_and_jax_with_gradients():
    torch = pytest.importorskip("torch")
    p, q = _pair()
    expected = {f.__name__: f(p, q) for f in (gd.bhattacharyya, gd.hellinger, gd.jeffreys)}
    mean = torch.tensor(np.asarray(p.mean), requires_grad=True)
    tp = gd.Gaussian(mean, torch.tensor(np.asarray(p.covariance_matrix)))
    tq = gd.Gaussian(torch.tensor(np.asarray(q.mean)), torch.tensor(np.asarray(
        q.covariance_matrix)))
    for f in (gd.bhattacharyya, gd.hellinger, gd.jeffreys):
        assert float(f(tp, tq).detach()) == pytest.approx(expected[f.__name__], rel=1e-13)
    value = gd.renyi(tp, tq, 0.7)
    value.backward()
    # d D_α / d μ₁ = α Σ_α⁻¹ (μ₁ − μ₂).
    mixed = 0.7 * q.covariance_matrix + 0.3 * p.covariance_matrix
    np.testing.assert_allclose(mean.grad.numpy(),
                               0.7 * np.linalg.solve(mixed, p.mean - q.mean), rtol=1e-12)
    jax = pytest.importorskip("jax")
    jax.config.update("jax_enable_x64", True)
    import jax.numpy as jnp

    jp = gd.Gaussian(jnp.asarray(p.mean), jnp.asarray(p.covariance_matrix))
    jq = gd.Gaussian(jnp.asarray(q.mean), jnp.asarray(q.covariance_matrix))
    assert float(jax.jit(gd.hellinger)(jp, jq)) == pytest.approx(expected["hellinger"],
                                                                  rel=1e-13)


def _tv_quadrature(m1: float, v1: float, m2: float, v2: float) -> mp.mpf:
    """∫ |p − q| / 2 with breakpoints at the crossings of the two densities."""
    m1, v1, m2, v2 = (mp.mpf(x) for x in (m1, v1, m2, v2))
    a, b = 1 / (2 * v2) - 1 / (2 * v1), m1 / v1 - m2 / v2
    c = m2**2 / (2 * v2) - m1**2 / (2 * v1) + mp.log(v2 / v1) / 2
    roots = ([(m1 + m2) / 2] if a == 0 else
             sorted((-b + s * mp.sqrt(b * b - 4 * a * c)) / (2 * a) for s in (1, -1)))
    f = lambda x: abs(mp.npdf(x, m1, mp.sqrt(v1)) - mp.npdf(x, m2, mp.sqrt(v2))) / 2  # noqa: E731
    return mp.quad(f, [-mp.inf, *roots, mp.inf])


@pytest.mark.parametrize("args", [(0, 1, 1, 2), (0, 1, 0.5, 1), (0, 1, 0, 1.0001),
                                  (3, 0.5, -1, 4), (0, 1, 1e-6, 1)])
def test_tv_is_exact_in_one_dimension(args):
    m1, v1, m2, v2 = args
    low, high = gd.tv_bounds(gd.Gaussian([m1], [[v1]]), gd.Gaussian([m2], [[v2]]))
    assert low == high
    assert abs(low - float(_tv_quadrature(*args))) < 1e-15


@pytest.mark.parametrize("near", [None, 0.05])
def test_tv_bounds_bracket_a_monte_carlo_estimate(near):
    """TV = ½ E_P|1 − q(X)/p(X)|, estimated with its standard error (d = 3)."""
    p, q = _pair(near=near)
    low, high = gd.tv_bounds(p, q)
    x = gd.sample(p, 200_000, seed=3)
    values = 0.5 * np.abs(-np.expm1(gd.log_ratio(q, p, x)))
    estimate, stderr = values.mean(), values.std(ddof=1) / np.sqrt(values.size)
    assert 0 <= low <= high <= 1
    assert low - 4.5 * stderr <= estimate <= high + 4.5 * stderr

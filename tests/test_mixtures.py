"""Gaussian mixtures: densities against quadrature and scikit-learn, draws and moments, and KL
between mixtures — the bounds bracket the true KL (mpmath quadrature in 1-D, Monte Carlo in
d > 1), the approximations' special cases, frameworks and bad input."""

from __future__ import annotations

import mpmath as mp
import mpref
import numpy as np
import pytest

import gaussdiv as gd

APPROXIMATIONS = ("variational", "product", "matched", "variational_upper")


def _mixture_1d(rng: np.random.Generator, k: int, spread: float = 3.0):
    w = rng.dirichlet(np.ones(k))
    m = rng.normal(0.0, spread, k)
    v = rng.uniform(0.1, 2.0, k)
    return gd.GaussianMixture(w, gd.Gaussian(m[:, None], v[:, None, None])), (w, m, v)


def _density(params, x):
    w, m, v = params
    return mp.fsum(mp.mpf(float(wi)) * mp.npdf(x, float(mi), mp.sqrt(float(vi)))
                   for wi, mi, vi in zip(w, m, v, strict=True))


@pytest.mark.slow
@pytest.mark.parametrize("trials", [range(0, 60),
                                    pytest.param(range(60, 300), marks=pytest.mark.exhaustive)])
def test_bounds_bracket_the_true_kl_of_random_1d_mixtures(trials):
    for trial in trials:
        rng = np.random.default_rng(trial)
        spread = (0.3, 3.0, 10.0)[trial % 3]  # heavily overlapping … well separated
        f, pf = _mixture_1d(rng, int(rng.integers(1, 5)), spread)
        g, pg = _mixture_1d(rng, int(rng.integers(1, 5)), spread)
        exact = mpref.mixture_kl_1d(pf, pg)
        lower, upper = gd.mixture_kl_bounds(f, g)
        slack = 1e-9 * max(1.0, exact)
        assert lower - slack <= exact <= upper + slack, (trial, lower, exact, upper)
        assert float(gd.mixture_kl(f, g, "variational_upper")) >= exact - slack


def test_bounds_bracket_monte_carlo_in_higher_dimensions():
    rng = np.random.default_rng(1)
    for d, k, m in ((3, 2, 3), (5, 4, 2)):
        f, g = _mixture(rng, k, d), _mixture(rng, m, d)
        mc = gd.mixture_kl(f, g, "mc", n=200_000, seed=2)
        lower, upper = gd.mixture_kl_bounds(f, g)
        assert lower <= mc.value + 4 * mc.stderr and mc.value - 4 * mc.stderr <= upper
        assert float(gd.mixture_kl(f, g, "variational_upper")) >= mc.value - 4 * mc.stderr


def _mixture(rng: np.random.Generator, k: int, d: int) -> gd.GaussianMixture:
    a = rng.standard_normal((k, d, d))
    return gd.GaussianMixture(rng.dirichlet(np.ones(k)),
                              gd.Gaussian(rng.normal(0, 1.5, (k, d)),
                                          a @ a.transpose(0, 2, 1) / d + np.eye(d)))


def test_one_component_mixtures_are_the_exact_kl():
    p = gd.Gaussian([0.0, 1.0, -1.0], np.diag([1.0, 2.0, 0.5]))
    q = gd.Gaussian([1.0, 0.0, 0.0], [[2.0, 0.3, 0.0], [0.3, 1.0, 0.0], [0.0, 0.0, 1.5]])
    f = gd.GaussianMixture([1.0], p.reshape(1))
    g = gd.GaussianMixture([1.0], q.reshape(1))
    exact = float(gd.kl(p, q))
    for method in ("variational", "matched", "variational_upper"):
        assert float(gd.mixture_kl(f, g, method)) == pytest.approx(exact, rel=1e-14)
    mc = gd.mixture_kl(f, g, "mc", n=100_000, seed=3)
    assert abs(mc.value - exact) < 4 * mc.stderr
    # product: ln(∫f²/∫fg), not KL
    z = gd.log_prob(gd.Gaussian(p.mean, 2 * p.covariance_matrix), p.mean)
    t = gd.log_prob(gd.Gaussian(q.mean, p.covariance_matrix + q.covariance_matrix), p.mean)
    assert float(gd.mixture_kl(f, g, "product")) == pytest.approx(float(z - t), rel=1e-13)
    lower, upper = gd.mixture_kl_bounds(f, g)
    assert lower <= exact and upper == pytest.approx(exact, rel=1e-14)


def test_a_mixture_against_itself():
    rng = np.random.default_rng(4)
    f, _ = _mixture_1d(rng, 3)
    assert gd.mixture_kl(f, f, "variational") == 0
    assert gd.mixture_kl(f, f, "product") == 0
    assert 0 <= gd.mixture_kl(f, f, "variational_upper") < 1e-12
    lower, upper = gd.mixture_kl_bounds(f, f)
    assert lower == 0 and 0 <= upper < 1e-12


def test_log_prob_normalises_and_stays_finite_far_away():
    rng = np.random.default_rng(5)
    f, params = _mixture_1d(rng, 4)
    x = np.linspace(-40, 40, 400_001)
    density = np.exp(f.log_prob(x[:, None]))
    assert np.trapezoid(density, x) == pytest.approx(1.0, abs=1e-9)
    point = 0.7
    assert f.log_prob([point]) == pytest.approx(float(mp.log(_density(params, point))),
                                                rel=1e-14)
    far = f.log_prob([1e4])  # every component's density underflows; the log does not
    assert np.isfinite(far) and far < -1e6
    tiny = gd.GaussianMixture([1 - 1e-300, 1e-300], gd.Gaussian([[0.0], [50.0]], np.eye(1)))
    assert np.isfinite(tiny.log_prob([50.0]))


@pytest.mark.parametrize("kind", ["full", "tied", "diag", "spherical"])
def test_from_sklearn_matches_its_score_samples(kind):
    mixture = pytest.importorskip("sklearn.mixture")
    rng = np.random.default_rng(6)
    x = np.concatenate([rng.normal(0, 1, (200, 3)), rng.normal(4, 0.5, (150, 3))])
    model = mixture.GaussianMixture(3, covariance_type=kind, random_state=0).fit(x)
    f = gd.GaussianMixture.from_sklearn(model)
    assert f.n_components == 3 and f.dim == 3
    np.testing.assert_allclose(f.log_prob(x), model.score_samples(x), rtol=1e-10)
    np.testing.assert_allclose(f.mean(), model.weights_ @ model.means_, rtol=1e-12)


def test_moments_draws_and_entropy_bounds():
    rng = np.random.default_rng(7)
    a = rng.standard_normal((3, 2, 2))
    f = gd.GaussianMixture([0.2, 0.5, 0.3], gd.Gaussian(rng.normal(0, 2, (3, 2)),
                                                        a @ a.transpose(0, 2, 1) + np.eye(2)))
    draws = f.sample(400_000, seed=8)
    assert draws.shape == (400_000, 2)
    np.testing.assert_allclose(draws.mean(0), f.mean(), atol=0.02)
    np.testing.assert_allclose(np.cov(draws, rowvar=False), f.covariance(), atol=0.05)
    matched = f.moment_matched()
    np.testing.assert_allclose(matched.covariance_matrix, f.covariance())
    lower, upper = f.entropy_bounds()
    estimate = -f.log_prob(draws).mean()
    assert lower <= estimate <= upper
    # a zero weight is never drawn
    g = gd.GaussianMixture([0.0, 1.0], gd.Gaussian([[100.0], [0.0]], np.eye(1)))
    assert np.all(np.abs(g.sample(10_000, seed=9)) < 10)


def test_batched_mixtures_broadcast():
    rng = np.random.default_rng(10)
    means = rng.normal(0, 1, (4, 2, 3))  # 4 mixtures of 2 components in d = 3
    f = gd.GaussianMixture(rng.dirichlet(np.ones(2), 4), gd.Gaussian(means, np.eye(3)))
    g = gd.GaussianMixture([0.5, 0.5], gd.Gaussian(rng.normal(0, 1, (2, 3)), 2 * np.eye(3)))
    for method in APPROXIMATIONS:
        out = gd.mixture_kl(f, g, method)
        assert out.shape == (4,)
        single = gd.GaussianMixture(f.weights[1], f.components[1])
        assert out[1] == pytest.approx(float(gd.mixture_kl(single, g, method)), rel=1e-12)
    assert f.log_prob(np.zeros((5, 1, 3))).shape == (5, 4)
    assert gd.mixture_kl(f, g, "mc", n=1000, seed=0).value.shape == (4,)


@pytest.mark.parametrize("name", ["torch", "jax"])
def test_frameworks(name):
    rng = np.random.default_rng(11)
    w, m, v = rng.dirichlet(np.ones(3)), rng.normal(0, 2, (3, 2)), rng.uniform(0.5, 2, (3, 2))
    w2, m2 = rng.dirichlet(np.ones(2)), rng.normal(0, 2, (2, 2))
    reference = gd.mixture_kl(gd.GaussianMixture(w, gd.Gaussian.diag(m, var=v)),
                              gd.GaussianMixture(w2, gd.Gaussian.diag(m2, var=np.ones((2, 2)))))
    if name == "torch":
        torch = pytest.importorskip("torch")
        mean = torch.tensor(m, requires_grad=True)
        array = torch.tensor
    else:
        jnp = pytest.importorskip("jax.numpy")
        mean = jnp.asarray(m)
        array = jnp.asarray
    f = gd.GaussianMixture(array(w), gd.Gaussian.diag(mean, var=array(v)))
    g = gd.GaussianMixture(array(w2), gd.Gaussian.diag(array(m2), var=array(np.ones((2, 2)))))
    out = gd.mixture_kl(f, g)
    value = float(out.detach()) if name == "torch" else float(out)
    assert value == pytest.approx(float(reference), rel=1e-5)
    lower, upper = (np.asarray(b.detach() if name == "torch" else b)
                    for b in gd.mixture_kl_bounds(f, g))
    assert lower <= upper
    if name == "torch":
        out.backward()
        assert mean.grad is not None and torch.all(torch.isfinite(mean.grad))


def test_bad_input_is_named():
    comps = gd.Gaussian(np.zeros((2, 3)), np.eye(3))
    with pytest.raises(gd.GaussianError, match=r"weights must be ≥ 0; weights\[0\]"):
        gd.GaussianMixture([-0.1, 1.1], comps)
    with pytest.raises(gd.GaussianError, match="weights must sum to 1"):
        gd.GaussianMixture([0.3, 0.3], comps)
    with pytest.raises(gd.ShapeError, match="K = 2 components"):
        gd.GaussianMixture([0.2, 0.3, 0.5], comps)
    with pytest.raises(gd.NonFiniteError, match="weights have a non-finite entry"):
        gd.GaussianMixture([np.nan, 1.0], comps)
    with pytest.raises(gd.DimensionMismatchError, match="components live in different"):
        gd.GaussianMixture.from_components([0.5, 0.5], [gd.Gaussian(np.zeros(2), np.eye(2)),
                                                        gd.Gaussian(np.zeros(3), np.eye(3))])
    f = gd.GaussianMixture([0.5, 0.5], comps)
    g = gd.GaussianMixture([1.0], gd.Gaussian(np.zeros((1, 2)), np.eye(2)))
    with pytest.raises(gd.DimensionMismatchError, match="f has d=3, g has d=2"):
        gd.mixture_kl(f, g)
    with pytest.raises(gd.GaussianError, match="method must be one of"):
        gd.mixture_kl(f, f, "exact")
    with pytest.raises(TypeError, match=r"g must be a gaussdiv\.GaussianMixture"):
        gd.mixture_kl(f, comps)
    within = gd.GaussianMixture([0.5, 0.5 + 5e-7], comps)  # within the tolerance: normalised
    assert float(within.weights.sum()) == pytest.approx(1.0, abs=1e-15)


@pytest.mark.parametrize("name", ["torch", "jax"])
def test_bounds_and_approximations_on_other_frameworks(name):
    """A few 1-D pairs on torch and JAX: the same numbers as NumPy, bracketing quadrature."""
    module = pytest.importorskip(name)
    rng = np.random.default_rng(12)
    array = module.tensor if name == "torch" else module.numpy.asarray
    for _ in range(4):
        (f, pf), (g, pg) = _mixture_1d(rng, 3), _mixture_1d(rng, 2)
        exact = mpref.mixture_kl_1d(pf, pg)
        convert = [gd.GaussianMixture(array(w), gd.Gaussian(array(m[:, None]),
                                                            array(v[:, None, None])))
                   for w, m, v in (pf, pg)]
        wide = np.asarray(convert[0].weights).dtype == np.float64
        rel = 1e-12 if wide else 2e-5
        lower, upper = (float(np.asarray(b)) for b in gd.mixture_kl_bounds(*convert))
        assert lower <= exact * (1 + rel) + rel and exact <= upper * (1 + rel) + rel
        for method in APPROXIMATIONS:
            value = float(np.asarray(gd.mixture_kl(*convert, method)))
            assert value == pytest.approx(float(gd.mixture_kl(f, g, method)), rel=rel, abs=rel)

"""Sampling and the Monte Carlo estimate of the definition KL = E_P[ln p(X)/q(X)].

Every statistical check uses a fixed seed and a tolerance of 4.5 standard errors, where the
standard error comes from the samples themselves (or from a closed form where one is known).
For a correct implementation a single such check fails with probability ≈ 7e-6; with fixed
seeds the suite is deterministic, so a failure means the code changed, not bad luck.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest

import gaussdiv as gd

Z = 4.5


def random_spd(rng: np.random.Generator, d: int, batch: tuple[int, ...] = (),
               jitter: float = 0.5) -> np.ndarray:
    a = rng.standard_normal((*batch, d, d)) / np.sqrt(d)
    s = a @ np.swapaxes(a, -1, -2) + jitter * np.eye(d)
    return 0.5 * (s + np.swapaxes(s, -1, -2))


def zscore_of_mean(values: np.ndarray, expected, axis: int = 0):
    """(sample mean − expected) / (sample sd / √n) along ``axis``."""
    n = values.shape[axis]
    se = values.std(axis=axis, ddof=1) / np.sqrt(n)
    return (values.mean(axis=axis) - expected) / se


def log_ratio_variance(m1, s1, m2, s2) -> float:
    """Var_P[ln p(X)/q(X)] in closed form.

    With X = μ₁ + L z (L Lᵀ = Σ₁, z standard normal) the log-ratio is ½ zᵀMz + bᵀz + const,
    M = LᵀΣ₂⁻¹L − I and b = LᵀΣ₂⁻¹(μ₁ − μ₂), so its variance is ½ tr(M²) + bᵀb.
    """
    lo = np.linalg.cholesky(s1)
    m = lo.T @ np.linalg.solve(s2, lo) - np.eye(len(m1))
    b = lo.T @ np.linalg.solve(s2, m1 - m2)
    return 0.5 * np.sum(m * m) + b @ b


# --------------------------------------------------------------------------- cases
def _case_random(rng):
    d = 3
    return rng.standard_normal(d), random_spd(rng, d), rng.standard_normal(d), random_spd(rng, d)


def _case_far_means(rng):
    d = 4
    s = random_spd(rng, d)
    direction = rng.standard_normal(d)
    return np.zeros(d), s, 3.0 * direction / np.linalg.norm(direction), random_spd(rng, d)


def _case_different_covariances(rng):
    d = 5
    s1 = random_spd(rng, d)
    # Q much wider in some directions and narrower in others than P.
    u, _ = np.linalg.qr(rng.standard_normal((d, d)))
    s2 = u @ np.diag([0.5, 0.8, 1.0, 2.5, 4.0]) @ u.T
    return rng.standard_normal(d), s1, np.zeros(d), 0.5 * (s2 + s2.T)


def _case_equal_covariances(rng):
    d = 2
    s = random_spd(rng, d)
    return np.array([1.0, -1.0]), s, np.zeros(d), s


def _case_d8(rng):
    d = 8
    return (rng.standard_normal(d) / 2, random_spd(rng, d, jitter=1.0),
            rng.standard_normal(d) / 2, random_spd(rng, d, jitter=1.0))


def _case_one_dimensional(rng):
    return np.array([0.3]), np.array([[2.0]]), np.array([-0.2]), np.array([[0.7]])


CASES = {
    "random": _case_random,
    "far-means": _case_far_means,
    "different-covariances": _case_different_covariances,
    "equal-covariances": _case_equal_covariances,
    "d8": _case_d8,
    "d1": _case_one_dimensional,
}


@pytest.mark.parametrize("name", list(CASES))
def test_kl_mc_agrees_with_closed_form(name):
    rng = np.random.default_rng(list(CASES).index(name))
    m1, s1, m2, s2 = CASES[name](rng)
    p, q = gd.Gaussian(m1, s1), gd.Gaussian(m2, s2)
    exact = gd.kl(p, q)
    est = gd.kl_mc(p, q, n=200_000, seed=1234)
    assert est.n == 200_000
    assert np.ndim(est.value) == 0 and np.ndim(est.stderr) == 0
    assert est.stderr > 0
    assert abs(est.zscore(exact)) < Z, (est, exact)
    # The stderr is s/√n with s² the sample variance of the log-ratio: compare it with the
    # closed-form variance. The relative error of s² is ≈ √((κ − 1)/n) (κ the kurtosis, ≤ ~15
    # for these quadratic forms), ≈ 1 % at n = 2e5; 10 % leaves a wide margin.
    sd_exact = np.sqrt(log_ratio_variance(m1, s1, m2, s2))
    assert est.stderr * np.sqrt(est.n) == pytest.approx(sd_exact, rel=0.1)


def test_kl_mc_of_identical_gaussians_is_exactly_zero():
    rng = np.random.default_rng(7)
    p = gd.Gaussian(rng.standard_normal(3), random_spd(rng, 3))
    est = gd.kl_mc(p, p, n=1000, seed=0)
    # ln p(x)/p(x) is 0 up to rounding for every sample.
    assert abs(est.value) < 1e-12
    assert est.stderr < 1e-12


def test_kl_mc_batch_of_pairs():
    rng = np.random.default_rng(11)
    d, batch = 3, (5,)
    m1, m2 = rng.standard_normal((*batch, d)), rng.standard_normal((*batch, d))
    s1, s2 = random_spd(rng, d, batch), random_spd(rng, d, batch)
    p, q = gd.Gaussian(m1, s1), gd.Gaussian(m2, s2)
    exact = gd.kl(p, q)
    est = gd.kl_mc(p, q, n=200_000, seed=5, chunk=50_000)
    assert est.value.shape == est.stderr.shape == batch
    z = est.zscore(exact)
    assert np.all(np.abs(z) < Z), z
    for i in range(5):
        sd = np.sqrt(log_ratio_variance(m1[i], s1[i], m2[i], s2[i]))
        assert est.stderr[i] * np.sqrt(est.n) == pytest.approx(sd, rel=0.1)


def test_kl_mc_broadcast_batches():
    rng = np.random.default_rng(12)
    d = 2
    p = gd.Gaussian(rng.standard_normal((3, 1, d)), random_spd(rng, d, (3, 1)))
    q = gd.Gaussian(rng.standard_normal((4, d)), random_spd(rng, d, (4,)))
    est = gd.kl_mc(p, q, n=100_000, seed=3)
    assert est.value.shape == (3, 4)
    z = est.zscore(gd.kl(p, q))
    assert np.all(np.abs(z) < Z), z


def test_kl_mc_unbatched_p_against_batched_q():
    rng = np.random.default_rng(13)
    d = 3
    p = gd.Gaussian(rng.standard_normal(d), random_spd(rng, d))
    q = gd.Gaussian(rng.standard_normal((4, d)), random_spd(rng, d, (4,)))
    est = gd.kl_mc(p, q, n=50_000, seed=2)
    assert est.value.shape == (4,)
    assert np.all(np.abs(est.zscore(gd.kl(p, q))) < Z)


def test_kl_mc_unbatched_p_against_batched_q_silent_case():
    rng = np.random.default_rng(13)
    d = 3
    p = gd.Gaussian(rng.standard_normal(d), random_spd(rng, d))
    q = gd.Gaussian(rng.standard_normal((4, d)), random_spd(rng, d, (4,)))
    est = gd.kl_mc(p, q, n=4000, seed=2, chunk=4)
    assert np.shape(est.value) == (4,)


@pytest.mark.parametrize("form", ["precision", "scale_tril", "precision_tril", "mixed"])
def test_kl_mc_other_parameterisations(form):
    rng = np.random.default_rng(21)
    d = 4
    m1, s1 = rng.standard_normal(d), random_spd(rng, d)
    m2, s2 = rng.standard_normal(d), random_spd(rng, d)
    makers = {
        "precision": lambda m, s: gd.Gaussian.from_precision(m, np.linalg.inv(s)),
        "scale_tril": lambda m, s: gd.Gaussian.from_scale_tril(m, np.linalg.cholesky(s)),
        "precision_tril": lambda m, s: gd.Gaussian.from_precision_tril(
            m, np.linalg.cholesky(np.linalg.inv(s))),
    }
    if form == "mixed":
        p = makers["precision"](m1, s1)
        q = makers["scale_tril"](m2, s2)
    else:
        p, q = makers[form](m1, s1), makers[form](m2, s2)
    est = gd.kl_mc(p, q, n=200_000, seed=8)
    exact = gd.kl(gd.Gaussian(m1, s1), gd.Gaussian(m2, s2))
    assert abs(est.zscore(exact)) < Z
    assert est.stderr * np.sqrt(est.n) == pytest.approx(
        np.sqrt(log_ratio_variance(m1, s1, m2, s2)), rel=0.1)


def test_kl_mc_float32():
    rng = np.random.default_rng(31)
    m1, s1, m2, s2 = (a.astype(np.float32) for a in _case_random(rng))
    p, q = gd.Gaussian(m1, s1), gd.Gaussian(m2, s2)
    est = gd.kl_mc(p, q, n=100_000, seed=4)
    assert est.value.dtype == est.stderr.dtype == np.float32
    assert abs(est.zscore(gd.kl(p, q))) < Z


# --------------------------------------------------------------------------- sample()
def _check_moments(x: np.ndarray, mean: np.ndarray, cov: np.ndarray):
    """Sample mean and covariance of x (n, d) against μ, Σ, entry by entry, in standard errors.

    se(mean_i) = √(Σᵢᵢ/n); for the sample covariance of Gaussian data,
    Var(Ŝᵢⱼ) ≈ (ΣᵢᵢΣⱼⱼ + Σᵢⱼ²)/n.
    """
    n = x.shape[0]
    z_mean = (x.mean(axis=0) - mean) / np.sqrt(np.diag(cov) / n)
    assert np.all(np.abs(z_mean) < Z), z_mean
    sample_cov = np.cov(x, rowvar=False).reshape(cov.shape)
    var = np.diag(cov)
    se_cov = np.sqrt((np.outer(var, var) + cov**2) / n)
    z_cov = (sample_cov - cov) / se_cov
    assert np.all(np.abs(z_cov) < Z), z_cov


@pytest.mark.parametrize("form", ["cov", "precision", "scale_tril", "precision_tril"])
def test_sample_moments(form):
    rng = np.random.default_rng(41)
    d = 4
    m, s = rng.standard_normal(d) * 3, random_spd(rng, d)
    p = {
        "cov": lambda: gd.Gaussian(m, s),
        "precision": lambda: gd.Gaussian.from_precision(m, np.linalg.inv(s)),
        "scale_tril": lambda: gd.Gaussian.from_scale_tril(m, np.linalg.cholesky(s)),
        "precision_tril": lambda: gd.Gaussian.from_precision_tril(
            m, np.linalg.cholesky(np.linalg.inv(s))),
    }[form]()
    x = gd.sample(p, 200_000, seed=9)
    assert x.shape == (200_000, d) and x.dtype == np.float64
    _check_moments(x, m, s)


def test_sample_batched_shapes_and_moments():
    rng = np.random.default_rng(42)
    d = 3
    means = rng.standard_normal((2, 1, d))
    covs = random_spd(rng, d, (3,))
    p = gd.Gaussian(means, covs)  # batch (2, 3)
    x = gd.sample(p, 100_000, seed=10)
    assert x.shape == (100_000, 2, 3, d)
    for i in range(2):
        for j in range(3):
            _check_moments(x[:, i, j], means[i, 0], covs[j])
    # Batch elements are independent: the cross-covariance between two of them is ~0.
    a, b = x[:, 0, 0, 0], x[:, 1, 2, 0]
    corr = np.corrcoef(a, b)[0, 1]
    assert abs(corr) < Z / np.sqrt(x.shape[0])


def test_sample_float32():
    p = gd.Gaussian(np.zeros(2, np.float32), np.eye(2, dtype=np.float32))
    x = gd.sample(p, 10, seed=0)
    assert x.dtype == np.float32 and x.shape == (10, 2)


def test_sample_single_point_and_one_dimension():
    p = gd.Gaussian(np.array([5.0]), np.array([[4.0]]))
    assert gd.sample(p, 1, seed=0).shape == (1, 1)
    _check_moments(gd.sample(p, 100_000, seed=1), np.array([5.0]), np.array([[4.0]]))


# --------------------------------------------------------------------------- reproducibility
def _pair(seed: int = 51, batch: tuple[int, ...] = ()):
    rng = np.random.default_rng(seed)
    d = 3
    return (gd.Gaussian(rng.standard_normal((*batch, d)), random_spd(rng, d, batch)),
            gd.Gaussian(rng.standard_normal((*batch, d)), random_spd(rng, d, batch)))


def test_sample_is_reproducible_for_a_fixed_seed():
    p, _ = _pair()
    np.testing.assert_array_equal(gd.sample(p, 100, seed=3), gd.sample(p, 100, seed=3))
    np.testing.assert_array_equal(gd.sample(p, 100, seed=np.random.default_rng(3)),
                                  gd.sample(p, 100, seed=3))
    assert not np.array_equal(gd.sample(p, 100, seed=3), gd.sample(p, 100, seed=4))
    assert not np.array_equal(gd.sample(p, 100, seed=None), gd.sample(p, 100, seed=None))


def test_a_generator_seed_is_advanced_not_reset():
    p, _ = _pair()
    rng = np.random.default_rng(0)
    first, second = gd.sample(p, 50, seed=rng), gd.sample(p, 50, seed=rng)
    assert not np.array_equal(first, second)


def test_kl_mc_is_reproducible_for_a_fixed_seed():
    p, q = _pair(batch=(2,))
    a = gd.kl_mc(p, q, n=5000, seed=17, chunk=1000)
    b = gd.kl_mc(p, q, n=5000, seed=17, chunk=1000)
    np.testing.assert_array_equal(a.value, b.value)
    np.testing.assert_array_equal(a.stderr, b.stderr)
    c = gd.kl_mc(p, q, n=5000, seed=18, chunk=1000)
    assert not np.array_equal(a.value, c.value)


def test_kl_mc_chunk_sizes_agree_within_stderr():
    p, q = _pair(batch=(3,))
    big = gd.kl_mc(p, q, n=60_000, seed=23)  # one chunk
    small = gd.kl_mc(p, q, n=60_000, seed=24, chunk=7_000)  # nine chunks, the last partial
    combined_se = np.sqrt(big.stderr**2 + small.stderr**2)
    assert np.all(np.abs(big.value - small.value) < Z * combined_se)
    # Both standard errors estimate the same σ/√n.
    np.testing.assert_allclose(small.stderr, big.stderr, rtol=0.05)


@pytest.mark.parametrize(("n", "chunk"), [(10_001, 1000), (999, 1000), (1000, 1000), (7, 3),
                                          (5, 1)])
def test_kl_mc_n_not_a_multiple_of_chunk(n, chunk):
    p, q = _pair(batch=(2,))
    est = gd.kl_mc(p, q, n=n, seed=29, chunk=chunk)
    assert est.n == n
    assert est.value.shape == est.stderr.shape == (2,)
    assert np.all(np.isfinite(est.value)) and np.all(est.stderr > 0)
    # The streaming (Chan et al.) reduction must give the one-pass mean and s/√n of the draws.
    # This leans on NumPy's Generator producing the same normals whether drawn in one block or
    # several consecutive ones (true for standard_normal), i.e. on how kl_mc consumes the seed.
    x = gd.sample(p, n, seed=29)
    values = gd.log_ratio(p, q, x)
    np.testing.assert_allclose(est.value, values.mean(axis=0), rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(est.stderr, values.std(axis=0, ddof=1) / np.sqrt(n),
                               rtol=1e-9)


def test_kl_mc_single_draw_does_not_claim_zero_error():
    p, q = _pair()
    try:
        est = gd.kl_mc(p, q, n=1, seed=0)
    except ValueError:
        return
    assert not est.stderr == 0


# --------------------------------------------------------------------------- expectation identities
def _identity_case(seed: int, d: int, batch: tuple[int, ...] = ()):
    rng = np.random.default_rng(seed)
    m1, m2 = rng.standard_normal((*batch, d)), rng.standard_normal((*batch, d))
    s1, s2 = random_spd(rng, d, batch), random_spd(rng, d, batch)
    return m1, s1, m2, s2


@pytest.mark.parametrize(("d", "batch"), [(1, ()), (3, ()), (6, ()), (2, (4,))])
def test_expectation_identities_of_the_derivation(d, batch):
    m1, s1, m2, s2 = _identity_case(61 + d, d, batch)
    p, q = gd.Gaussian(m1, s1), gd.Gaussian(m2, s2)
    n = 200_000
    x = gd.sample(p, n, seed=100 + d)
    diff = m1 - m2
    s2inv_s1 = np.linalg.solve(s2, s1)
    trace = np.trace(s2inv_s1, axis1=-2, axis2=-1)
    maha = np.einsum("...i,...i->...", diff, np.linalg.solve(s2, diff[..., None])[..., 0])

    # E_P[(x−μ₁)ᵀΣ₁⁻¹(x−μ₁)] = d  (a χ²_d variable).
    own = p.cov.mahalanobis(x - p.mean)
    assert own.shape == (n, *batch)
    assert np.all(np.abs(zscore_of_mean(own, d)) < Z)
    # Its variance is 2d: E[(χ² − d)²] = 2d, again a mean with a standard error from the data.
    sq = (own - d) ** 2
    assert np.all(np.abs(zscore_of_mean(sq, 2 * d)) < Z)

    # E_P[(x−μ₂)ᵀΣ₂⁻¹(x−μ₂)] = tr(Σ₂⁻¹Σ₁) + (μ₁−μ₂)ᵀΣ₂⁻¹(μ₁−μ₂).
    other = q.cov.mahalanobis(x - q.mean)
    assert np.all(np.abs(zscore_of_mean(other, trace + maha)) < Z)

    # E_P[(x−μ₁)ᵀΣ₂⁻¹(μ₁−μ₂)] = 0, via the polarisation uᵀAv = (‖u+v‖²_A − ‖u−v‖²_A)/4.
    u = x - p.mean
    cross = (q.cov.mahalanobis(u + diff) - q.cov.mahalanobis(u - diff)) / 4
    assert np.all(np.abs(zscore_of_mean(cross, 0.0)) < Z)

    # Together they give the derivation's E_P[ln p/q] = ½(ln|Σ₂|/|Σ₁| + E[other] − E[own])
    # = KL, and the entropies: E_P[−ln p(X)] = H(P), E_P[−ln q(X)] = H_P(Q).
    lr = gd.log_ratio(p, q, x)
    np.testing.assert_allclose(
        lr, 0.5 * (np.linalg.slogdet(s2)[1] - np.linalg.slogdet(s1)[1] + other - own),
        rtol=1e-9, atol=1e-9)
    assert np.all(np.abs(zscore_of_mean(lr, gd.kl(p, q))) < Z)
    assert np.all(np.abs(zscore_of_mean(-gd.log_prob(p, x), gd.entropy(p))) < Z)
    assert np.all(np.abs(zscore_of_mean(-gd.log_prob(q, x), gd.cross_entropy(p, q))) < Z)


def test_expectation_identities_with_precision_parameterisation():
    m1, s1, m2, s2 = _identity_case(71, 4)
    p = gd.Gaussian.from_precision(m1, np.linalg.inv(s1))
    q = gd.Gaussian.from_precision_tril(m2, np.linalg.cholesky(np.linalg.inv(s2)))
    x = gd.sample(p, 200_000, seed=72)
    diff = m1 - m2
    expected = np.trace(np.linalg.solve(s2, s1)) + diff @ np.linalg.solve(s2, diff)
    assert abs(zscore_of_mean(p.cov.mahalanobis(x - p.mean), 4)) < Z
    assert abs(zscore_of_mean(q.cov.mahalanobis(x - q.mean), expected)) < Z
    u = x - p.mean
    cross = (q.cov.mahalanobis(u + diff) - q.cov.mahalanobis(u - diff)) / 4
    assert abs(zscore_of_mean(cross, 0.0)) < Z


def test_mahalanobis_matches_explicit_quadratic_form():
    m1, s1, _, _ = _identity_case(81, 3)
    p = gd.Gaussian(m1, s1)
    x = gd.sample(p, 100, seed=1)
    u = x - m1
    explicit = np.einsum("ni,ni->n", u, np.linalg.solve(s1, u.T).T)
    np.testing.assert_allclose(p.cov.mahalanobis(u), explicit, rtol=1e-10)


# --------------------------------------------------------------------------- larger runs
@pytest.mark.slow
def test_kl_mc_converges_at_the_root_n_rate():
    # Estimates at n = 2e4, 2e5, 2e6: each within Z standard errors, stderrs shrinking ∝ 1/√n.
    p, q = _pair(seed=91)
    exact = gd.kl(p, q)
    estimates = [gd.kl_mc(p, q, n=n, seed=92) for n in (20_000, 200_000, 2_000_000)]
    for est in estimates:
        assert abs(est.zscore(exact)) < Z
    for small, big in itertools.pairwise(estimates):
        assert big.stderr == pytest.approx(small.stderr / np.sqrt(10), rel=0.05)


@pytest.mark.slow
@pytest.mark.parametrize("seed", range(20))
def test_kl_mc_zscores_look_standard_normal(seed):
    # Over many seeds the z-scores of a correct estimator are ~N(0, 1); a biased estimate or a
    # mis-scaled stderr shows up as a shifted mean or a wrong spread. Each seed: 10 batch pairs.
    rng = np.random.default_rng(1000 + seed)
    d, batch = 3, (10,)
    p = gd.Gaussian(rng.standard_normal((*batch, d)), random_spd(rng, d, batch))
    q = gd.Gaussian(rng.standard_normal((*batch, d)), random_spd(rng, d, batch))
    z = gd.kl_mc(p, q, n=20_000, seed=seed).zscore(gd.kl(p, q))
    assert np.all(np.abs(z) < Z)
    # With 10 z-scores: mean ~ N(0, 1/10); |mean| < Z/√10.
    assert abs(z.mean()) < Z / np.sqrt(10)

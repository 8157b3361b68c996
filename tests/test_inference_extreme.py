"""compare() and its delta-method standard errors at extreme conditioning: nearly collinear
columns, the reproducer of the CLI's test_compare_a_file_with_itself_with_nearly_collinear_
columns (negative variances, NaN intervals), with the standard errors against an mpmath
evaluation of the delta-method formula (explicit inverses, 50 digits)."""

from __future__ import annotations

import warnings

import mpmath as mp
import numpy as np
import pytest
from mpref import mpf_matrix, mpf_vector, relative_error

import gaussdiv
from gaussdiv import Gaussian
from gaussdiv.inference.resampling import Moments, bootstrap_counts
from gaussdiv.inference.stderr import kl_stderr


def collinear(noise: float, n: int = 60) -> np.ndarray:
    """(n, 2) rows with column 1 = 2·column 0 + noise·N(0, 1): κ(Σ) ≈ 1.4·10¹³·(10⁻⁶/noise)²."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((n, 2))
    x[:, 1] = 2 * x[:, 0] + noise * rng.standard_normal(n)
    return x


def reference_stderr(ma: np.ndarray, sa: np.ndarray, mb: np.ndarray, sb: np.ndarray, na: int,
                     nb: int) -> list[mp.mpf]:
    """The module's formula as written: gradients through Σ⁻¹, Var = Σ_s (gᵀΣg + 2tr(GΣGΣ))/n_s
    + c²h²k/2, in mpmath (KL(A‖B), KL(B‖A), J)."""
    d = len(ma)
    m_a, m_b, s_a, s_b = mpf_vector(ma), mpf_vector(mb), mpf_matrix(sa), mpf_matrix(sb)
    ai, bi = mp.inverse(s_a), mp.inverse(s_b)
    delta = m_a - m_b
    outer = delta * delta.T
    ab = (bi * delta, (bi - ai) / 2, -(bi * delta), (bi - bi * (s_a + outer) * bi) / 2)
    ba = (ai * delta, (ai - ai * (s_b + outer) * ai) / 2, -(ai * delta), (ai - bi) / 2)
    jeffreys = tuple(x + y for x, y in zip(ab, ba, strict=True))

    def part(g: mp.matrix, big: mp.matrix, cov: mp.matrix) -> mp.mpf:
        gs = big * cov
        return (g.T * cov * g)[0] + 2 * sum((gs * gs)[i, i] for i in range(d))

    h, k = mp.mpf(1) / na + mp.mpf(1) / nb, d + mp.mpf(d * (d + 1)) / 2
    return [mp.sqrt(part(g[0], g[1], s_a) / na + part(g[2], g[3], s_b) / nb + c * c * h * h * k / 2)
            for g, c in ((ab, 1), (ba, 1), (jeffreys, 2))]


def resampled_fits(x: np.ndarray, r: int, seed: int) -> tuple[np.ndarray, ...]:
    """Two independent sets of r bootstrap fits (means, covariances) of x, standardised as
    compare() does."""
    z = (x - x.mean(axis=0)) / x.std(axis=0)
    moments, rng = Moments(z), np.random.default_rng(seed)
    (ma, sa), (mb, sb) = (moments.weighted(bootstrap_counts(rng, r, len(z))) for _ in range(2))
    return ma, sa, mb, sb


def worst_error(ma: np.ndarray, sa: np.ndarray, mb: np.ndarray, sb: np.ndarray, n: int
                ) -> float:
    values = kl_stderr(Gaussian(ma, sa), Gaussian(mb, sb), n, n)
    return max(relative_error(values[k, i], ref)
               for i in range(len(ma))
               for k, ref in enumerate(reference_stderr(ma[i], sa[i], mb[i], sb[i], n, n)))


@pytest.mark.parametrize("bootstrap", [0, 20])
def test_compare_a_data_set_with_itself_with_nearly_collinear_columns(bootstrap):
    """Was [nan, nan] with a RuntimeWarning: explicit inverses of Σ (κ ≈ 1.4·10¹³) made the
    delta-method variance of the resamples negative. At A = B the gradient vanishes, so the
    standard error is exactly the second-order h·√(k/2) (2h·√(k/2) for J)."""
    x = collinear(1e-6)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        c = gaussdiv.compare(x, x, estimator="mle", bootstrap=bootstrap, permutations=0,
                             seed=0)
    h, k = 2 / 60, 2 + 3
    for e, scale in zip(c.estimates, (1, 1, 2), strict=True):
        assert e.low is not None and e.high is not None and e.stderr is not None
        assert np.isfinite([e.value, e.low, e.high, e.stderr]).all()
        assert 0 <= e.low <= e.high
        assert e.stderr == pytest.approx(scale * h * np.sqrt(k / 2), rel=1e-14)


def test_compare_nearly_collinear_data_sets():
    """Two different data sets, both nearly collinear: finite intervals around the value."""
    x = collinear(1e-6, n=120)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        c = gaussdiv.compare(x[:60], x[60:], estimator="mle", bootstrap=200, permutations=50,
                             seed=1)
    for e in c.estimates:
        assert e.low is not None and e.high is not None and e.stderr is not None
        assert np.isfinite([e.low, e.high, e.stderr]).all() and e.stderr > 0
        assert 0 <= e.low <= e.high


@pytest.mark.parametrize(("noise", "tolerance"), [(1e-4, 1e-11), (1e-5, 1e-8), (1e-6, 1e-4)])
def test_stderr_of_nearly_collinear_resamples_against_mpmath(noise, tolerance):
    """Bootstrap fits of nearly collinear data (κ ≈ 10⁹, 10¹¹, 10¹³), as compare() studentises
    with: within ≈ (κu)² of the reference (measured 2·10⁻¹², 6·10⁻¹⁰, 2·10⁻⁶; the explicit
    inverses were off by 3·10⁻⁴, 0.4 and 4·10²)."""
    ma, sa, mb, sb = resampled_fits(collinear(noise), 8, seed=1)
    assert worst_error(ma, sa, mb, sb, 60) < tolerance


@pytest.mark.parametrize("d", [2, 6])
def test_stderr_of_ordinary_fits_against_mpmath(d):
    """Well-conditioned fits (batched: the compiled solves from 16 elements) to ≈ 10⁻¹⁵."""
    rng = np.random.default_rng(d)
    mix = rng.standard_normal((d, d))
    x = rng.standard_normal((200, d)) @ mix
    y = rng.standard_normal((200, d)) @ (mix + 0.3 * rng.standard_normal((d, d))) + 0.2
    ma, sa, _, _ = resampled_fits(x, 16, seed=d)
    mb, sb, _, _ = resampled_fits(y, 16, seed=d + 1)
    assert worst_error(ma, sa, mb, sb, 200) < 1e-13


def test_stderr_broadcasts_batch_shapes():
    """Batched A against one B: each element as computed on its own."""
    rng = np.random.default_rng(3)
    mix = rng.standard_normal((3, 4, 4))
    covs = mix @ mix.transpose(0, 2, 1) + np.eye(4)
    p, q = Gaussian(rng.standard_normal((2, 3, 4)), covs), Gaussian(np.zeros(4), covs[0])
    batched = kl_stderr(p, q, 50, 70)
    assert batched.shape == (3, 2, 3)
    for i in range(2):
        for j in range(3):
            single = kl_stderr(p[i, j], q, 50, 70)
            np.testing.assert_allclose(batched[:, i, j], single, rtol=1e-13)


def _collinear(noise: float) -> np.ndarray:
    rng = np.random.default_rng(0)
    x = rng.standard_normal((60, 2))
    x[:, 1] = 2 * x[:, 0] + noise * rng.standard_normal(60)
    return x


def test_full_rank_data_with_a_numerically_singular_covariance_is_a_sample_error():
    """Rank 2 for matrix_rank, yet κ(Σ̂) ≈ 1e16: a SampleError naming the data set, not the
    construction's NotPositiveDefiniteError about an argument the user never passed."""
    with pytest.raises(gaussdiv.SampleError, match=r"^data: the sample covariance is numer"):
        gaussdiv.fit(_collinear(1e-10), estimator="mle")
    for noise in (1e-10, 1e-8):  # singular standardised, or only in the data's units
        x = _collinear(noise)
        with pytest.raises(gaussdiv.SampleError, match=r"^[ab]: the sample covariance is nu"):
            gaussdiv.compare(x + 0.1, x, bootstrap=20, permutations=0, seed=0)

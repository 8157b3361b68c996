"""Regression tests for inputs that once gave a NaN, a wrong number or a bare third-party error
(issue 16): each now gives the right value or a specific GaussianError naming the argument."""

from __future__ import annotations

import math
import warnings

import mpmath
import numpy as np
import pytest

import gaussdiv

torch = pytest.importorskip("torch")


def test_log_ratio_of_huge_points_is_the_difference_not_nan() -> None:
    p = gaussdiv.Gaussian(np.zeros(2), np.eye(2))
    q = gaussdiv.Gaussian(np.zeros(2), 2 * np.eye(2))
    # −¼x² + ln 2: representable at 1e150, below −1.8e308 (→ −inf, not NaN) at 1e160
    assert gaussdiv.log_ratio(p, q, np.array([1e150, 0.0])) == pytest.approx(-2.5e299,
                                                                              rel=1e-15)
    assert gaussdiv.log_ratio(p, q, np.array([1e160, 0.0])) == -math.inf
    x = np.random.default_rng(0).standard_normal((50, 2)) * 3
    with mpmath.workdps(30):
        ref = [float(mpmath.log(2) - mpmath.mpf(float(a)) ** 2 / 4 - mpmath.mpf(float(b)) ** 2 / 4)
               for a, b in x]
    assert np.allclose(gaussdiv.log_ratio(p, q, x), ref, rtol=1e-14, atol=1e-15)


def test_log_prob_and_kl_of_an_extreme_logvar() -> None:
    g = gaussdiv.Gaussian.diag([0.0, 0.0], logvar=[-1500.0, 0.0])
    true = 0.5 * 1500 - math.log(2 * math.pi)  # −½(2 ln 2π − 1500)
    assert float(gaussdiv.log_prob(g, [0.0, 0.0])) == pytest.approx(true, rel=1e-15)
    assert float(gaussdiv.kl(g, gaussdiv.Gaussian(np.zeros(2), np.eye(2)))) == \
        pytest.approx(749.5, rel=1e-15)
    # the reverse needs tr(Σ₂⁻¹Σ₁) ≈ e^1500: beyond float64, so +inf, not an error
    assert gaussdiv.kl(gaussdiv.Gaussian(np.zeros(2), np.eye(2)), g) == math.inf


@pytest.mark.parametrize("dtype", [bool, complex, np.complex64])
def test_standard_rejects_non_real_dtypes(dtype: type) -> None:
    with pytest.raises(gaussdiv.DtypeError, match="dtype is"):
        gaussdiv.Gaussian.standard(2, dtype=dtype)


@pytest.mark.parametrize("dtype", [np.int64, np.uint8])
def test_standard_of_integer_dtype_is_float64(dtype: type) -> None:
    g = gaussdiv.Gaussian.standard(2, dtype=dtype)
    assert g.dtype == np.float64
    assert float(gaussdiv.entropy(g)) == pytest.approx(1 + math.log(2 * math.pi), rel=1e-15)


def test_standard_like_half_precision_returns_half_precision() -> None:
    like = torch.zeros(2, dtype=torch.bfloat16)
    p = gaussdiv.Gaussian(torch.zeros(2, dtype=torch.bfloat16),
                          torch.eye(2, dtype=torch.bfloat16) * 2)
    q = gaussdiv.Gaussian.standard(2, like=like)
    assert q.dtype == torch.bfloat16
    assert gaussdiv.kl(p, q).dtype == torch.bfloat16


@pytest.mark.parametrize("make,match", [
    (lambda: torch.eye(2).to(torch.float8_e4m3fn), "float8_e4m3fn"),
    (lambda: torch.eye(2, device="meta"), "meta device"),
    (lambda: torch.eye(2).to_sparse(), "sparse"),
    (lambda: torch.quantize_per_tensor(torch.eye(2), 0.1, 0, torch.qint8), "quantized"),
    (lambda: torch.eye(2).to(torch.complex32), "complex"),
])
def test_unusual_torch_tensors_are_named(make, match: str) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # torch: complex32 is "experimental"
        cov = make()
    with pytest.raises(gaussdiv.DtypeError, match=f"cov .*{match}"):
        gaussdiv.Gaussian(torch.zeros(2), cov)


def test_nested_tensors_are_named() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # torch: nested tensors are a prototype
        nested = torch.nested.nested_tensor([torch.zeros(2), torch.zeros(3)])
    with pytest.raises(gaussdiv.DtypeError, match="mean is a nested"):
        gaussdiv.Gaussian(nested, torch.eye(2))


def test_lowrank_parts_that_do_not_broadcast() -> None:
    with pytest.raises(gaussdiv.ShapeError, match=r"factor has batch shape \(2,\), var \(3,\)"):
        gaussdiv.Gaussian.lowrank(np.zeros((3, 4)), np.ones((2, 4, 1)), np.ones((3, 4)))
    with pytest.raises(gaussdiv.ShapeError, match="do not broadcast"):
        gaussdiv.Gaussian.lowrank(torch.zeros(3, 4), torch.ones(2, 4, 1), torch.ones(3, 4))


def test_lowrank_factor_beyond_float64() -> None:
    with pytest.raises(gaussdiv.DtypeError, match="factor is too large for var"):
        gaussdiv.Gaussian.lowrank(np.zeros(3), np.full((3, 1), 1e200), np.ones(3))


@pytest.mark.parametrize("seed", [-1, 1.5, "abc", True, [1, 2]])
def test_bad_seeds_name_what_is_accepted(seed: object) -> None:
    g = gaussdiv.Gaussian.standard(2)
    with pytest.raises(gaussdiv.GaussianError, match="seed must be None, a non-negative"):
        gaussdiv.sample(g, 3, seed=seed)
    with pytest.raises(gaussdiv.GaussianError, match="seed must be"):
        gaussdiv.kl_mc(g, g, n=10, seed=seed)


def test_a_generator_of_another_framework_is_refused() -> None:
    g = gaussdiv.Gaussian.standard(2)
    with pytest.raises(gaussdiv.GaussianError, match=r"np\.random\.Generator .*torch"):
        gaussdiv.sample(g, 3, seed=torch.Generator())
    t = gaussdiv.Gaussian(torch.zeros(2), torch.eye(2))
    with pytest.raises(gaussdiv.GaussianError, match=r"a torch\.Generator"):
        gaussdiv.sample(t, 3, seed=np.random.default_rng(0))
    assert gaussdiv.sample(g, 3, seed=np.random.SeedSequence(1)).shape == (3, 2)


@pytest.mark.timeout(120)
def test_jax_seeds_beyond_64_bits_and_keys() -> None:
    jax = pytest.importorskip("jax")
    g = gaussdiv.Gaussian(jax.numpy.zeros(2), jax.numpy.eye(2))
    a, b = gaussdiv.sample(g, 3, seed=2**70), gaussdiv.sample(g, 3, seed=2**70)
    assert np.array_equal(np.asarray(a), np.asarray(b))
    assert gaussdiv.sample(g, 3, seed=jax.random.key(0)).shape == (3, 2)
    with pytest.raises(gaussdiv.GaussianError, match=r"jax\.random key"):
        gaussdiv.sample(g, 3, seed=-5)


def test_absurd_draw_counts_are_refused() -> None:
    g = gaussdiv.Gaussian.standard(2)
    with pytest.raises(gaussdiv.GaussianError, match=r"would need 1\.6e"):
        gaussdiv.sample(g, 10**30)
    with pytest.raises(gaussdiv.GaussianError, match=r"more than max_n=1e"):
        gaussdiv.kl_mc(g, g, n=10**30)
    with pytest.raises(gaussdiv.GaussianError, match="more than max_n"):
        gaussdiv.js_mc(g, g, n=10**12)
    assert gaussdiv.kl_mc(g, g, n=100, seed=0, max_n=100).value == 0.0


def test_longdouble_inputs_are_computed_in_float64() -> None:
    g = gaussdiv.Gaussian(np.zeros(2, dtype=np.longdouble), np.eye(2, dtype=np.longdouble))
    assert g.dtype == np.float64
    assert float(gaussdiv.entropy(g)) == pytest.approx(1 + math.log(2 * math.pi), rel=1e-15)
    if np.finfo(np.longdouble).tiny < np.finfo(np.float64).smallest_subnormal:
        tiny = np.array([np.longdouble("1e-400")])
        with pytest.raises(gaussdiv.DtypeError, match=r"var entry \(0,\) is .*1e-400.*float64"):
            gaussdiv.Gaussian.diag(np.zeros(1), var=tiny)


@pytest.mark.timeout(120)
def test_check_runs_the_skipped_checks_on_a_gaussian_built_under_jit() -> None:
    jax = pytest.importorskip("jax")
    jnp = jax.numpy
    build = jax.jit(lambda m, c: gaussdiv.Gaussian(m, c))
    bad = build(jnp.zeros(2), jnp.array([[1.0, 2.0], [0.0, 1.0]]))
    with pytest.raises(gaussdiv.NotSymmetricError, match="cov is not symmetric"):
        gaussdiv.check(bad)
    good = build(jnp.zeros(2), jnp.eye(2))
    assert gaussdiv.check(good) is good
    diag = jax.jit(lambda v: gaussdiv.Gaussian.diag(jnp.zeros(2), var=v))(jnp.array([1.0, -1.0]))
    with pytest.raises(gaussdiv.NotPositiveDefiniteError, match="var must have positive"):
        gaussdiv.check(diag)
    nan_mean = jax.jit(lambda m: gaussdiv.Gaussian(m, jnp.eye(2)))(jnp.array([0.0, jnp.nan]))
    with pytest.raises(gaussdiv.NonFiniteError, match="mean"):
        gaussdiv.check(nan_mean)


def test_check_on_every_structure() -> None:
    rng = np.random.default_rng(0)
    a = rng.standard_normal((3, 3))
    spd = a @ a.T + np.eye(3)
    for g in (gaussdiv.Gaussian(np.zeros(3), spd),
              gaussdiv.Gaussian.from_precision(np.zeros(3), spd),
              gaussdiv.Gaussian.from_scale_tril(np.zeros(3), np.linalg.cholesky(spd)),
              gaussdiv.Gaussian.diag(np.zeros(3), logvar=np.zeros(3)),
              gaussdiv.Gaussian.isotropic(np.zeros(3), 2.0), gaussdiv.Gaussian.standard(3),
              gaussdiv.Gaussian.lowrank(np.zeros(3), np.ones((3, 1)), np.ones(3)),
              gaussdiv.Gaussian.kronecker(np.zeros(9), spd, spd)):
        assert gaussdiv.check(g) is g


def test_monte_carlo_functions_are_entry_points() -> None:
    p = gaussdiv.Gaussian(torch.zeros(2, dtype=torch.float64),
                          torch.eye(2, dtype=torch.float64) * 2)
    est = gaussdiv.kl_mc(p, gaussdiv.Gaussian.standard(2), n=1000, seed=0)  # N(0, I) adapts
    assert isinstance(est.value, torch.Tensor)
    mvn = torch.distributions.MultivariateNormal(torch.zeros(2, dtype=torch.float64),
                                                 torch.eye(2, dtype=torch.float64))
    assert float(gaussdiv.js_mc(p, mvn, n=1000, seed=0).value) > 0


def test_monte_carlo_of_dask_gaussians_is_refused() -> None:
    da = pytest.importorskip("dask.array")
    lazy = gaussdiv.Gaussian.diag(da.zeros((4, 2), chunks=2), var=da.ones((4, 2), chunks=2))
    with pytest.raises(gaussdiv.GaussianError, match="kl_mc of Dask Gaussians"):
        gaussdiv.kl_mc(lazy, gaussdiv.Gaussian.standard(2), n=10)


# ------------------------------------------------ found while writing the API reference
def test_concatenate_joins_batches_of_different_sizes_along_the_axis():
    p = gaussdiv.Gaussian(np.zeros((3, 2)), np.eye(2))
    q = gaussdiv.Gaussian(np.ones((2, 2)), 2 * np.eye(2))
    joined = gaussdiv.concatenate([p, q])
    assert joined.batch_shape == (5,)
    np.testing.assert_array_equal(joined.covariance_matrix[3], 2 * np.eye(2))
    np.testing.assert_array_equal(joined.mean[:3], 0.0)


def test_join_errors_are_shape_errors_naming_every_batch_shape():
    three = gaussdiv.Gaussian(np.zeros((3, 2, 2)), np.eye(2))
    shapes = r"gaussians\[0\] \(3, 2\), gaussians\[1\] \(2,\)"
    with pytest.raises(gaussdiv.ShapeError, match=shapes):
        gaussdiv.concatenate([three, gaussdiv.Gaussian(np.zeros((2, 2)), np.eye(2))])
    parts = [gaussdiv.Gaussian(np.zeros((n, 2)), np.eye(2)) for n in (1, 3, 4)]
    with pytest.raises(gaussdiv.ShapeError, match=r"do not broadcast.*gaussians\[2\] \(4,\)"):
        gaussdiv.stack(parts)


def test_join_keeps_the_feature_names_of_any_named_input_and_refuses_two_differing():
    named = gaussdiv.Gaussian(np.zeros(2), np.eye(2)).with_names(["x", "y"])
    plain = gaussdiv.Gaussian(np.zeros(2), np.eye(2))
    assert gaussdiv.stack([plain, named]).feature_names == ("x", "y")
    with pytest.raises(gaussdiv.DimensionMismatchError, match=r"gaussians\[1\] and gaussians\[2\]"):
        gaussdiv.stack([plain, named, named.with_names(["y", "x"])])


def test_kl_terms_is_an_entry_point_like_kl():
    from torch.distributions import MultivariateNormal

    n = MultivariateNormal(torch.zeros(2, dtype=torch.float64), torch.eye(2, dtype=torch.float64))
    assert float(gaussdiv.kl_terms(n, n).kl) == 0.0
    t = gaussdiv.Gaussian(torch.zeros(2, dtype=torch.float64),
                          2 * torch.eye(2, dtype=torch.float64))
    terms = gaussdiv.kl_terms(gaussdiv.Gaussian.standard(2), t)
    assert isinstance(terms.kl, torch.Tensor) and float(terms.kl) == float(gaussdiv.kl(
        gaussdiv.Gaussian.standard(2), t))


def test_points_beyond_float32_are_a_dtype_error_without_an_overflowing_cast():
    p = gaussdiv.Gaussian(np.zeros(2, np.float32), np.eye(2, dtype=np.float32))
    with np.errstate(all="raise"), pytest.raises(gaussdiv.DtypeError, match="beyond the range"):
        gaussdiv.log_prob(p, [1e300, 0.0])


def test_shrinkage_fits_a_constant_column():
    x = np.random.default_rng(0).standard_normal(30)
    g = gaussdiv.fit(np.c_[x, np.ones(30)], estimator="oas")
    assert np.all(np.linalg.eigvalsh(g.covariance_matrix) > 0)
    with pytest.raises(gaussdiv.SampleError, match="every column is constant"):
        gaussdiv.fit(np.ones((30, 2)), estimator="oas")


def test_the_monte_carlo_cap_says_how_long_in_a_fitting_unit():
    p = gaussdiv.Gaussian.standard(2)
    with pytest.raises(gaussdiv.GaussianError, match=r"about 17 minutes"):
        gaussdiv.kl_mc(p, p, n=10**11, max_n=10**10)


# ------------------------------------------------ diagonal pairs beyond the float range
def _mp_renyi_diagonal(m1, l1, m2, l2, alpha):
    """D_α of two diagonal Gaussians given by means and log-variances, at 60 digits."""
    with mpmath.workdps(60):
        a = mpmath.mpf(alpha)
        total = mpmath.mpf(0)
        for x1, y1, x2, y2 in zip(m1, l1, m2, l2, strict=True):
            v1, v2 = mpmath.exp(mpmath.mpf(y1)), mpmath.exp(mpmath.mpf(y2))
            mixed = a * v2 + (1 - a) * v1
            total += a / 2 * (mpmath.mpf(x1) - mpmath.mpf(x2)) ** 2 / mixed - (
                mpmath.log(mixed) - (1 - a) * mpmath.log(v1) - a * mpmath.log(v2)) / (2 * (a - 1))
        return float(total)


@pytest.mark.parametrize("alpha", [0.5, 2.0])
def test_renyi_of_log_variances_near_e_to_the_1000(alpha):
    """ln v up to 1147: v itself overflows, so the mix is formed in log space."""
    m1, l1 = [0.82, -1.38, -2.75], [858.4836936807901, 1146.991174105393, 259.24374972482155]
    m2, l2 = [0.8677, -1.3726, -2.6671], [858.5468643916145, 1146.8917218054269, 259.31523058]
    p = gaussdiv.Gaussian.diag(np.array(m1), logvar=np.array(l1))
    q = gaussdiv.Gaussian.diag(np.array(m2), logvar=np.array(l2))
    expected = _mp_renyi_diagonal(m1, l1, m2, l2, alpha)
    assert float(gaussdiv.renyi(p, q, alpha)) == pytest.approx(expected, rel=1e-12)
    if alpha == 0.5:
        assert float(gaussdiv.bhattacharyya(p, q)) == pytest.approx(expected / 2, rel=1e-12)
        hellinger = math.sqrt(-math.expm1(-expected / 2))
        assert float(gaussdiv.hellinger(p, q)) == pytest.approx(hellinger, rel=1e-12)


def test_bhattacharyya_of_subnormal_variances():
    v1, v2 = np.array([1e-310, 3e-320]), np.array([2e-310, 1e-320])
    p = gaussdiv.Gaussian.diag(np.zeros(2), var=v1)
    q = gaussdiv.Gaussian.diag(np.zeros(2), var=v2)
    with mpmath.workdps(60):
        l1 = [mpmath.log(mpmath.mpf(float(v))) for v in v1]
        l2 = [mpmath.log(mpmath.mpf(float(v))) for v in v2]
    expected = _mp_renyi_diagonal([0, 0], l1, [0, 0], l2, 0.5) / 2
    assert float(gaussdiv.bhattacharyya(p, q)) == pytest.approx(expected, rel=1e-13)


def test_renyi_2_against_a_variance_below_the_float_range():
    tiny = gaussdiv.Gaussian.diag(np.zeros(2), logvar=[-1500.0, 0.0])
    standard = gaussdiv.Gaussian.standard(2)
    assert float(gaussdiv.renyi(standard, tiny, 2.0)) == math.inf  # 2 e^-1500 − 1 < 0
    expected = _mp_renyi_diagonal([0, 0], [-1500, 0], [0, 0], [0, 0], 2.0)  # 750 − ln 2 / 2
    assert float(gaussdiv.renyi(tiny, standard, 2.0)) == pytest.approx(expected, rel=1e-14)


@pytest.mark.parametrize("m1,l1,l2,expected", [
    (0.0, -1500.0, 0.0, 1.0),                   # a variance e^-1500 against 1
    (1.0, -1500.0, -1500.5, 1.0),               # both below the float range, far apart
    (5.0, 1000.0, 1000.2, 0.048353860088427988),  # both beyond it, overlapping
    (1e-160, math.log(1.7e-314), math.log(3.3e-309), 0.99319681509233828),  # subnormal
])
def test_one_dimensional_tv_of_variances_beyond_the_float_range(m1, l1, l2, expected):
    """Exact TV in coordinates scaled by the wider standard deviation (references: mpmath at
    60 digits in the same coordinates)."""
    p = gaussdiv.Gaussian.diag([m1], logvar=[l1])
    q = gaussdiv.Gaussian.diag([0.0], logvar=[l2])
    lower, upper = gaussdiv.tv_bounds(p, q)
    assert float(lower) == float(upper) == pytest.approx(expected, abs=2e-16)


def test_one_dimensional_tv_of_subnormal_isotropic_variances_is_not_nan():
    p = gaussdiv.Gaussian.isotropic(np.array([[1.65], [-2.56]]), np.array([3.4e-309, 3.9e-311]))
    q = gaussdiv.Gaussian.diag(np.array([999998.06]), var=np.array([1.7e-314]))
    lower, upper = gaussdiv.tv_bounds(p, q)
    np.testing.assert_array_equal(lower, [1.0, 1.0])
    np.testing.assert_array_equal(upper, [1.0, 1.0])


def test_log_ratio_of_a_batched_float32_p_and_an_unbatched_float64_q_is_float64():
    """torch lets a dimensioned float32 tensor decide the dtype against a 0-d float64 one; the
    pair's result dtype is the wider one, as for kl (found by the density fuzzer)."""
    p = gaussdiv.Gaussian(torch.zeros((1, 1, 3), dtype=torch.float32),
                          2 * torch.eye(3, dtype=torch.float32))
    q = gaussdiv.Gaussian.standard(3, like=torch.zeros(3, dtype=torch.float64))
    x = torch.tensor([1.0, -0.5, 0.25], dtype=torch.float32)
    value = gaussdiv.log_ratio(p, q, x)
    assert value.dtype == torch.float64 and value.shape == (1, 1)
    expected = -0.5 * (3 * math.log(2) - 1.3125 / 2)  # −½(ln|Σ₁|/|Σ₂| + ‖x‖²/2 − ‖x‖²)
    assert float(value.reshape(())) == pytest.approx(expected, rel=1e-6)  # P in float32

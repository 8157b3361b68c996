"""gaussdiv.fit and gaussdiv.compare: estimators, the exact bias correction, intervals that cover,
uniform null p-values, column attribution, DataFrame alignment, and the errors."""

from __future__ import annotations

import sys
from pathlib import Path

import mpmath
import numpy as np
import pytest
from scipy import stats

import gaussdiv
from gaussdiv.inference.resampling import Moments, bootstrap_counts, permutation_masks
from gaussdiv.inference.statistics import pair_statistics
from gaussdiv.inference.wishart import WishartFit

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
from accuracy_compare import null_p_values, simulate

pd = pytest.importorskip("pandas")


def drift_pair(n: int = 5000, d: int = 20, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Columns on scales 1 … d; B shifted by 0.3 standard deviations in columns 3 and 7 (those
    of them there are; column 0 when d ≤ 3)."""
    rng = np.random.default_rng(seed)
    scale = np.arange(1, d + 1, dtype=float)
    a = rng.standard_normal((n, d)) * scale
    b = rng.standard_normal((n, d)) * scale
    shifted = [j for j in (3, 7) if j < d] or [0]
    b[:, shifted] += 0.3 * scale[shifted]
    return a, b


# ---------------------------------------------------------------------------- the Wishart moments
@pytest.mark.parametrize("n,d,estimator", [(5, 1, "mle"), (12, 3, "unbiased"),
                                           (1000, 20, "mle"), (30, 25, "unbiased")])
def test_logdet_offset_matches_mpmath(n: int, d: int, estimator: str) -> None:
    fit = WishartFit.of(estimator, n)
    nu = mpmath.mpf(fit.divisor)
    with mpmath.workdps(40):
        ref = sum(mpmath.digamma(mpmath.mpf(n - 1 - i + 1) / 2) - mpmath.log(nu / 2)
                  for i in range(1, d + 1))
    assert fit.logdet_offset(d) == pytest.approx(float(ref), rel=1e-13, abs=1e-13)


def expected_plugin(p: gaussdiv.Gaussian, q: gaussdiv.Gaussian, fa: WishartFit,
                    fb: WishartFit) -> float:
    """E KL(Â‖B̂) of fits to Gaussian rows of p and q, from the Wishart moments (the formulas
    the correction inverts, written out again here)."""
    t = gaussdiv.kl_terms(p, q)
    d = p.dim
    kappa = fb.inverse_factor(d)
    trace = kappa * (fa.mean_factor() * float(t.trace) + float(t.trace) / fa.n)
    maha = kappa * (float(t.mahalanobis) + d / fb.n)
    logdet = float(t.logdet_ratio) + fb.logdet_offset(d) - fa.logdet_offset(d)
    return 0.5 * (logdet + trace + maha - d)


def simulated_fits(p: gaussdiv.Gaussian, q: gaussdiv.Gaussian, na: int, nb: int, reps: int,
                   estimator: str, seed: int) -> tuple[np.ndarray, ...]:
    rng = np.random.default_rng(seed)
    out = []
    for g, n in ((p, na), (q, nb)):
        x = np.asarray(g.mean) + rng.standard_normal((reps, n, g.dim)) @ \
            np.linalg.cholesky(np.asarray(g.covariance_matrix)).T
        mean = x.mean(axis=1)
        z = x - mean[:, None, :]
        cov = z.transpose(0, 2, 1) @ z / (n if estimator == "mle" else n - 1)
        out += [mean, (cov + cov.transpose(0, 2, 1)) / 2]
    return tuple(out)


@pytest.mark.parametrize("estimator", ["mle", "unbiased"])
@pytest.mark.parametrize("na,nb", [(12, 9), (40, 60)])
def test_unbiased_estimate_is_unbiased_and_plugin_bias_is_as_derived(
        estimator: str, na: int, nb: int) -> None:
    d, reps = 3, 40_000
    p = gaussdiv.Gaussian(np.zeros(d), np.array([[1, 0.3, 0], [0.3, 2, 0.1], [0, 0.1, 0.5]]))
    q = gaussdiv.Gaussian(np.array([0.4, -0.2, 0.1]), np.diag([1.5, 1.0, 0.8]))
    fits = WishartFit.of(estimator, na), WishartFit.of(estimator, nb)
    stats_ = pair_statistics(*simulated_fits(p, q, na, nb, reps, estimator, seed=na), fits)
    true = np.array([float(gaussdiv.kl(p, q)), float(gaussdiv.kl(q, p))])
    true = np.append(true, true.sum())
    expect = [expected_plugin(p, q, *fits), expected_plugin(q, p, fits[1], fits[0])]
    expect.append(sum(expect))
    for k in range(3):
        se = stats_.unbiased[k].std() / np.sqrt(reps)
        assert abs(stats_.unbiased[k].mean() - true[k]) < 4 * se
        assert abs(stats_.plugin[k].mean() - expect[k]) < 4 * stats_.plugin[k].std() / \
            np.sqrt(reps)
        assert abs(stats_.plugin[k].mean() - true[k]) > 10 * se  # the bias is real


def test_resampled_moments_match_refitting() -> None:
    rng = np.random.default_rng(1)
    z = rng.standard_normal((50, 4)) + 3.0
    counts = bootstrap_counts(rng, 7, 50)
    assert (counts.sum(axis=1) == 50).all()
    mean, cov = Moments(z - z.mean(0), budget=800).weighted(counts)  # forces row blocks
    for r in range(7):
        rows = np.repeat(np.arange(50), counts[r].astype(int))
        assert np.allclose(mean[r] + z.mean(0), z[rows].mean(0), rtol=1e-14, atol=1e-14)
        assert np.allclose(cov[r], np.cov(z[rows], rowvar=False, bias=True), rtol=1e-12,
                           atol=1e-13)
    masks = permutation_masks(rng, 5, 20, 50)
    assert (masks.sum(axis=1) == 20).all() and set(np.unique(masks)) == {0.0, 1.0}


# ---------------------------------------------------------------------------- coverage, null
@pytest.mark.slow
@pytest.mark.parametrize("d,n", [(2, 200), (10, 200), (2, 1000),
                                 pytest.param(10, 1000, marks=pytest.mark.exhaustive)])
def test_intervals_cover_the_true_divergence(d: int, n: int) -> None:
    result = simulate(d, n, reps=400, seed=d * 1000 + n, bootstrap=400)
    for name, row in result.items():
        assert 0.93 <= row["coverage"] <= 0.97, (name, row)
        assert abs(row["bias"]) < abs(row["plugin_bias"]), (name, row)


@pytest.mark.slow
def test_null_p_values_are_uniform() -> None:
    p = null_p_values(3, 100, reps=200, seed=11, permutations=100)
    assert stats.kstest(p, "uniform").pvalue > 0.01
    assert 0.0 < np.mean(p < 0.05) < 0.12


def test_p_value_is_small_under_drift_and_exact_in_form() -> None:
    a, b = drift_pair(n=800, d=5)
    result = gaussdiv.compare(a, b, bootstrap=0, permutations=199, seed=3)
    assert result.p_value == pytest.approx(1 / 200)
    assert result.permutations == 199


# ---------------------------------------------------------------------------- compare
def test_drift_example_names_the_shifted_columns_and_interval_holds_value() -> None:
    a, b = drift_pair()
    frame_a = pd.DataFrame(a, columns=[f"x{j}" for j in range(20)])
    frame_b = pd.DataFrame(b, columns=[f"x{j}" for j in range(20)])
    result = gaussdiv.compare(frame_a, frame_b, bootstrap=200, permutations=100, seed=0)
    assert {c.name for c in result.columns[:2]} == {"x3", "x7"}
    assert all(c.share < 0.1 for c in result.columns[2:])
    true_j = 2 * 0.3**2  # J of two unit-variance shifts of 0.3 standard deviations
    for e in result.estimates:
        assert e.low <= e.value <= e.high
    assert result.jeffreys.low <= true_j <= result.jeffreys.high
    assert result.jeffreys.plugin > result.jeffreys.value
    assert result.a.feature_names == tuple(frame_a.columns)
    assert result.p_value < 0.02


def test_reordered_dataframes_give_identical_results() -> None:
    a, b = drift_pair(n=600, d=6)
    names = list("abcdef")
    fa, fb = pd.DataFrame(a, columns=names), pd.DataFrame(b, columns=names)
    first = gaussdiv.compare(fa, fb, bootstrap=50, permutations=50, seed=5)
    second = gaussdiv.compare(fa, fb[names[::-1]], bootstrap=50, permutations=50, seed=5)
    assert first.estimates == second.estimates
    assert first.columns == second.columns and first.p_value == second.p_value


def test_mismatched_dataframes_are_refused() -> None:
    a, b = drift_pair(n=100, d=3)
    with pytest.raises(gaussdiv.SampleError, match=r"lacks 'z'.*has extra 'w'"):
        gaussdiv.compare(pd.DataFrame(a, columns=["x", "y", "z"]),
                         pd.DataFrame(b, columns=["x", "y", "w"]))


def test_columns_select_by_name_or_position() -> None:
    a, b = drift_pair(n=400, d=8)
    names = [f"c{j}" for j in range(8)]
    fa, fb = pd.DataFrame(a, columns=names), pd.DataFrame(b, columns=names)
    by_name = gaussdiv.compare(fa, fb, columns=["c3", "c1"], bootstrap=0, permutations=0)
    by_pos = gaussdiv.compare(a, b, columns=[3, 1], bootstrap=0, permutations=0)
    assert by_name.jeffreys.value == pytest.approx(by_pos.jeffreys.value, rel=1e-12)
    assert by_name.names == ("c3", "c1") and by_pos.names == ("3", "1")
    with pytest.raises(gaussdiv.SampleError, match="no column 'nope'"):
        gaussdiv.compare(fa, fb, columns=["nope"])


def test_compare_does_not_depend_on_units_even_with_shrinkage() -> None:
    a, b = drift_pair(n=120, d=20)
    units = np.logspace(-4, 5, 20)
    plain = gaussdiv.compare(a, b, estimator="oas", bootstrap=0, permutations=20, seed=2)
    scaled = gaussdiv.compare(a * units, b * units, estimator="oas", bootstrap=0,
                              permutations=20, seed=2)
    assert plain.estimator == scaled.estimator == "oas"
    assert plain.correction == "none" and plain.interval == "jackknife"
    assert plain.jeffreys.value == plain.jeffreys.plugin  # no correction that would help
    for x, y in zip(plain.estimates, scaled.estimates, strict=True):
        assert y.value == pytest.approx(x.value, rel=1e-9)
        assert y.plugin == pytest.approx(x.plugin, rel=1e-9)
    assert scaled.jeffreys.plugin < 10  # not the 4e9 of shrinking unscaled columns


def test_mle_fits_compare_equal_to_the_library_kl_of_the_fits() -> None:
    a, b = drift_pair(n=300, d=4)
    result = gaussdiv.compare(a, b, bootstrap=0, permutations=0)
    assert result.kl_ab.plugin == pytest.approx(float(gaussdiv.kl(gaussdiv.fit(a),
                                                                  gaussdiv.fit(b))), rel=1e-10)
    assert result.kl_ab.plugin == pytest.approx(float(gaussdiv.kl(result.a, result.b)),
                                                rel=1e-10)
    assert result.interval == "normal" and result.p_value is None
    terms = result.kl_ab.plugin_terms
    assert 0.5 * (terms.logdet_ratio + terms.trace + terms.mahalanobis - 4) == \
        pytest.approx(result.kl_ab.plugin, rel=1e-9)


def test_identical_data_give_zero_and_p_value_one() -> None:
    a, _ = drift_pair(n=200, d=3)
    result = gaussdiv.compare(a, a.copy(), bootstrap=100, permutations=50, seed=0)
    assert result.jeffreys.plugin == 0.0
    assert result.jeffreys.value == 0.0 and result.jeffreys.unbiased < 0
    assert result.jeffreys.low == 0.0
    assert result.p_value == 1.0


def test_result_prints_and_serialises() -> None:
    import json

    a, b = drift_pair(n=300, d=3)
    result = gaussdiv.compare(a, b, bootstrap=50, permutations=50, seed=0)
    text = str(result)
    for part in ("KL(A‖B)", "J(A, B)", "95% interval", "p-value", "columns"):
        assert part in text
    payload = json.loads(json.dumps(result.to_dict(), allow_nan=False))
    assert payload["estimates"][2]["name"] == "jeffreys"


def test_compare_leaves_inputs_alone() -> None:
    a, b = drift_pair(n=100, d=3)
    a0, b0 = a.copy(), b.copy()
    gaussdiv.compare(a, b, bootstrap=20, permutations=20, seed=0)
    assert np.array_equal(a, a0) and np.array_equal(b, b0)


@pytest.mark.parametrize("kwargs,match", [
    ({"confidence": 1.0}, "confidence"),
    ({"bootstrap": -1}, "bootstrap"),
    ({"permutations": 2.5}, "permutations"),
    ({"estimator": "median"}, "unknown"),
])
def test_compare_argument_errors(kwargs: dict, match: str) -> None:
    a, b = drift_pair(n=50, d=2)
    with pytest.raises(ValueError, match=match):
        gaussdiv.compare(a, b, **kwargs)


def test_auto_prefers_the_exact_correction_and_shrinks_only_below_it() -> None:
    rng = np.random.default_rng(1)
    a, b = rng.standard_normal((40, 10)), rng.standard_normal((13, 10))
    assert gaussdiv.compare(a, b, bootstrap=0, permutations=0).estimator == "mle"
    assert gaussdiv.compare(a, b[:12], bootstrap=0, permutations=0).estimator == "oas"


def test_compare_needs_rows_for_the_exact_correction() -> None:
    rng = np.random.default_rng(0)
    with pytest.raises(gaussdiv.SampleError, match=r"b: 7 rows for 5 columns.*d \+ 2 = 7"):
        gaussdiv.compare(rng.standard_normal((100, 5)), rng.standard_normal((7, 5)),
                         estimator="mle")


# ---------------------------------------------------------------------------- fit
def test_fit_estimators_match_numpy_and_scikit_learn() -> None:
    from sklearn.covariance import OAS, LedoitWolf

    rng = np.random.default_rng(4)
    x = rng.standard_normal((40, 3)) @ np.array([[2, 0, 0], [1, 1, 0], [0, 3, 0.5]])
    w = rng.uniform(0.1, 2, 40)
    cases = {
        "mle": np.cov(x, rowvar=False, bias=True),
        "unbiased": np.cov(x, rowvar=False),
    }
    for name, cov in cases.items():
        g = gaussdiv.fit(x, estimator=name)
        assert np.allclose(g.covariance_matrix, cov, rtol=1e-13)
        assert np.allclose(g.mean, x.mean(0), rtol=1e-14)
    g = gaussdiv.fit(x, estimator="unbiased", weights=w)
    assert np.allclose(g.covariance_matrix, np.cov(x, rowvar=False, aweights=w), rtol=1e-12)
    g = gaussdiv.fit(x, estimator="mle", weights=w)
    assert np.allclose(g.mean, np.average(x, axis=0, weights=w), rtol=1e-13)
    for name, cls in (("ledoit_wolf", LedoitWolf), ("oas", OAS)):
        g = gaussdiv.fit(x, estimator=name, scale=np.ones(3))
        assert np.allclose(g.covariance_matrix, cls().fit(x).covariance_, rtol=1e-12)
        unit_free = gaussdiv.fit(x * [1e-3, 1, 1e4], estimator=name)
        assert np.allclose(unit_free.covariance_matrix,
                           gaussdiv.fit(x, estimator=name).covariance_matrix
                           * np.outer([1e-3, 1, 1e4], [1e-3, 1, 1e4]), rtol=1e-10)
    diag = gaussdiv.fit(x, structure="diag")
    assert np.allclose(diag.variance, x.var(axis=0), rtol=1e-13)
    assert isinstance(diag.cov, gaussdiv.DiagonalCovariance)


def test_fit_auto_and_names() -> None:
    rng = np.random.default_rng(5)
    frame = pd.DataFrame(rng.standard_normal((30, 4)), columns=["a", "b", "c", "d"])
    few = gaussdiv.fit(frame)  # 30 < 10·4 rows: OAS
    assert few.feature_names == ("a", "b", "c", "d")
    assert not np.allclose(few.covariance_matrix, np.cov(frame.T, bias=True))
    many = gaussdiv.fit(rng.standard_normal((400, 4)))
    assert many.feature_names is None
    with pytest.raises(gaussdiv.DimensionMismatchError, match="another order"):
        gaussdiv.kl(few, gaussdiv.fit(frame[["b", "a", "c", "d"]]))
    assert float(gaussdiv.kl(few, many.with_names(list("abcd")))) > 0
    named = gaussdiv.fit(pd.Series(rng.standard_normal(20), name="height"))
    assert named.feature_names == ("height",) and named.dim == 1


def test_fit_keeps_framework_and_gradient() -> None:
    torch = pytest.importorskip("torch")
    x = torch.randn(50, 3, dtype=torch.float64, requires_grad=True)
    g = gaussdiv.fit(x)
    assert isinstance(g.mean, torch.Tensor)
    gaussdiv.kl(g, gaussdiv.Gaussian.standard(3, like=x)).backward()
    assert x.grad is not None and torch.isfinite(x.grad).all()
    f32 = gaussdiv.fit(torch.randn(60, 2), estimator="oas")
    assert f32.mean.dtype == torch.float32
    assert np.allclose(gaussdiv.fit(x.detach()).covariance_matrix.numpy(),
                       np.cov(x.detach().numpy(), rowvar=False, bias=True), rtol=1e-12)


@pytest.mark.timeout(120)
def test_fit_jax_arrays() -> None:
    jnp = pytest.importorskip("jax.numpy")
    x = np.random.default_rng(6).standard_normal((30, 2))
    g = gaussdiv.fit(jnp.asarray(x), structure="diag")
    assert type(g.mean).__module__.startswith("jax")
    rtol = 1e-12 if g.dtype == np.float64 else 1e-6  # float32 unless JAX runs with x64
    assert np.allclose(np.asarray(g.variance), x.var(axis=0), rtol=rtol)


@pytest.mark.parametrize("data,kwargs,match", [
    (np.array([[1.0, 2.0], [np.nan, 1.0], [3.0, 1.0]]), {}, r"row 1, column 0 is missing"),
    (np.array([[1.0, np.inf], [2.0, 1.0], [3.0, 1.0]]), {}, r"row 0, column 1 is infinite"),
    (np.ones((1, 2)), {}, "1 row"),
    (np.c_[np.arange(5.0), np.ones(5)], {"estimator": "mle"}, "column 1 is constant"),
    (np.c_[np.arange(6.0), np.arange(6.0) ** 2, 2 * np.arange(6.0) + 1], {"estimator": "mle"},
     "linear combination"),
    (np.random.default_rng(0).standard_normal((3, 4)), {"estimator": "mle"},
     "3 rows for 4 columns"),
    (np.random.default_rng(0).standard_normal((9, 2)), {"weights": np.ones(8)}, r"\(9,\)"),
    (np.random.default_rng(0).standard_normal((9, 2)), {"weights": -np.ones(9)},
     "non-negative"),
    (np.random.default_rng(0).standard_normal((9, 2)),
     {"weights": np.ones(9), "estimator": "oas"}, "takes no weights"),
    (np.zeros((4, 2, 2)), {}, r"shape \(4, 2, 2\)"),
    (np.array([[True, False], [False, True]]), {}, "dtype bool"),
])
def test_fit_errors_are_specific(data: np.ndarray, kwargs: dict, match: str) -> None:
    with pytest.raises(gaussdiv.SampleError, match=match):
        gaussdiv.fit(data, **kwargs)


def test_fit_option_errors() -> None:
    x = np.random.default_rng(0).standard_normal((20, 2))
    with pytest.raises(ValueError, match="diag"):
        gaussdiv.fit(x, structure="diag", estimator="oas")
    with pytest.raises(ValueError, match="structure"):
        gaussdiv.fit(x, structure="banded")
    frame = pd.DataFrame({"a": [1.0, 2.0, 3.0], "b": ["x", "y", "z"]})
    with pytest.raises(gaussdiv.SampleError, match="column 'b' is not numeric"):
        gaussdiv.fit(frame)


def test_feature_names_survive_batch_operations_and_pickle() -> None:
    import pickle

    g = gaussdiv.Gaussian(np.zeros((3, 2)), np.eye(2)).with_names(["u", "v"])
    for h in (g[1], g.reshape(3, 1), g.broadcast_to((3,)), pickle.loads(pickle.dumps(g)),
              gaussdiv.stack([g, g])):
        assert h.feature_names == ("u", "v")
    with pytest.raises(gaussdiv.DimensionMismatchError, match="'u' in p and 'x' in q"):
        gaussdiv.kl(g, g.with_names(["x", "v"]))
    with pytest.raises(ValueError, match="twice"):
        g.with_names(["u", "u"])

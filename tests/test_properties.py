"""Property tests: identities the KL divergence of Gaussians satisfies, checked on random input.

Matrices are built well conditioned on purpose — Σ = A Aᵀ + c I with |Aᵢⱼ| ≤ 1 and c ≥ 1/4,
so cond(Σ) ≤ (d² + c)/c ≤ 101 for d ≤ 5 — which makes float64 rounding bounds meaningful:
an identity that holds exactly in real arithmetic holds here to a few hundred ulps of the
magnitudes involved, and each tolerance below says which magnitudes.

The KL invariants (the tests that take ``fw``) run over NumPy, PyTorch and JAX (the ``fw``
fixture of tests/conftest.py), with the same strategies, example counts and tolerances: the
Gaussians are built from the framework's arrays of the drawn numbers, and results must come back
as that framework's arrays. Eager JAX's cost is compiling each operation for every new shape
(≈ 1 s per new d), not the examples, so fewer examples would not make it cheaper; the batched
and float32 invariants, 6–9 s each on JAX (a new compile for every batch shape), run on NumPy
and torch only (NOT_JAX): test_reference.py checks JAX's batches and float32 against mpmath.
The density, broadcasting and dtype tests run on NumPy only; the dtype contract they check (a
NumPy scalar for one pair, NumPy's type promotion) is NumPy's.
"""

from __future__ import annotations

import numpy as np
import pytest
import scipy.linalg
import scipy.stats
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import gaussdiv as gd

EPS = np.finfo(np.float64).eps
# function_scoped_fixture: ``fw`` only names a framework; examples share it safely.
SETTINGS = settings(max_examples=30, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow,
                                           HealthCheck.function_scoped_fixture])
# Tests that loop over every pair of a batch cost ~10 pairs per example.
BATCH_SETTINGS = settings(SETTINGS, max_examples=12)
# Overrides the ``fw`` fixture's frameworks: see the module docstring.
NOT_JAX = pytest.mark.parametrize("fw", ["numpy", "torch"], indirect=True)

ELEM = st.floats(-1.0, 1.0, allow_nan=False, allow_infinity=False, width=64)
MEAN_ELEM = st.floats(-3.0, 3.0, allow_nan=False, allow_infinity=False, width=64)
dims = st.integers(1, 5)


def sym(m: np.ndarray) -> np.ndarray:
    """Exactly symmetric (rounding in A Aᵀ or A Σ Aᵀ may leave ulp-sized asymmetry)."""
    return 0.5 * (m + np.swapaxes(m, -1, -2))


@st.composite
def spd(draw, d: int, batch: tuple[int, ...] = ()) -> np.ndarray:
    a = draw(hnp.arrays(np.float64, (*batch, d, d), elements=ELEM))
    c = draw(st.floats(0.25, 2.0))
    return sym(a @ np.swapaxes(a, -1, -2) + c * np.eye(d))


@st.composite
def means(draw, d: int, batch: tuple[int, ...] = ()) -> np.ndarray:
    return draw(hnp.arrays(np.float64, (*batch, d), elements=MEAN_ELEM))


@st.composite
def pairs(draw, d: int | None = None, batch: tuple[int, ...] = ()):
    """(m1, S1, m2, S2) of dimension d (drawn if not given)."""
    if d is None:
        d = draw(dims)
    return (draw(means(d, batch)), draw(spd(d, batch)), draw(means(d, batch)),
            draw(spd(d, batch)))


def kl_reference(m1, s1, m2, s2) -> float:
    """The textbook formula in float64, for well-separated pairs only (it cancels when P ≈ Q)."""
    d = len(m1)
    diff = m1 - m2
    trace = np.trace(np.linalg.solve(s2, s1))
    maha = diff @ np.linalg.solve(s2, diff)
    logdet = np.linalg.slogdet(s2)[1] - np.linalg.slogdet(s1)[1]
    return 0.5 * (logdet + trace + maha - d)


def term_magnitude(m1, s1, m2, s2) -> float:
    """|ln|Σ₂|/|Σ₁|| + tr(Σ₂⁻¹Σ₁) + Mahalanobis + d: the scale rounding errors are relative to."""
    d = len(m1)
    diff = m1 - m2
    return (abs(np.linalg.slogdet(s2)[1] - np.linalg.slogdet(s1)[1])
            + np.trace(np.linalg.solve(s2, s1)) + diff @ np.linalg.solve(s2, diff) + d)


def assert_close(actual, expected, *, rtol, atol=0.0, err_msg=""):
    np.testing.assert_allclose(actual, expected, rtol=rtol, atol=atol, err_msg=err_msg)


def gaussian(fw, m: np.ndarray, s: np.ndarray, build=gd.Gaussian) -> gd.Gaussian:
    """``build(m, s)`` from ``fw``'s arrays of the same numbers (and dtype)."""
    return build(fw.array(m, m.dtype.type), fw.array(s, s.dtype.type))


def f64(fw, value) -> np.ndarray:
    """A float64 result as NumPy, checked to be ``fw``'s array."""
    return fw.result(value, np.float64)


# --------------------------------------------------------------------------- basic properties
@SETTINGS
@given(pairs())
def test_kl_is_non_negative(fw, pair):
    m1, s1, m2, s2 = pair
    assert f64(fw, gd.kl(gaussian(fw, m1, s1), gaussian(fw, m2, s2))) >= 0


@NOT_JAX
@SETTINGS
@given(dims.flatmap(lambda d: st.tuples(means(d, (3,)), spd(d, (3,)))))
def test_kl_is_non_negative_batched(fw, ms):
    m, s = ms
    p = gaussian(fw, m, s)
    q = gaussian(fw, m[::-1].copy(), s[::-1].copy())
    values = f64(fw, gd.kl(p, q))
    assert values.shape == (3,) and np.all(values >= 0)


@SETTINGS
@given(dims.flatmap(lambda d: st.tuples(means(d), spd(d))))
def test_kl_of_a_gaussian_with_itself_is_exactly_zero(fw, ms):
    m, s = ms
    for p in four_forms(m, s, fw).values():
        assert f64(fw, gd.kl(p, p)) == 0.0
    # Two Gaussians built from equal (but distinct) arrays: also exactly zero.
    assert f64(fw, gd.kl(gaussian(fw, m, s), gaussian(fw, m.copy(), s.copy()))) == 0.0


@NOT_JAX
@SETTINGS
@given(dims.flatmap(lambda d: st.tuples(means(d, (4,)), spd(d, (4,)))))
def test_kl_of_a_batch_with_itself_is_exactly_zero(fw, ms):
    m, s = ms
    p = gaussian(fw, m, s)
    np.testing.assert_array_equal(f64(fw, gd.kl(p, p)), np.zeros(4))


@SETTINGS
@given(pairs())
def test_kl_matches_textbook_formula_and_terms(fw, pair):
    m1, s1, m2, s2 = pair
    raw = gd.kl_terms(gaussian(fw, m1, s1), gaussian(fw, m2, s2))
    terms = raw._replace(**{k: f64(fw, getattr(raw, k))
                            for k in ("kl", "trace", "logdet_ratio", "mahalanobis")})
    d = len(m1)
    # Each term is a well-conditioned (cond ≤ 101) float64 computation: 1e-11 relative is
    # ~ 100 × cond × eps, room for both implementations' rounding.
    diff = m1 - m2
    assert_close(terms.trace, np.trace(np.linalg.solve(s2, s1)), rtol=1e-11)
    assert_close(terms.mahalanobis, diff @ np.linalg.solve(s2, diff), rtol=1e-11,
                 atol=1e-13 * (1 + diff @ diff))
    logdet = np.linalg.slogdet(s2)[1] - np.linalg.slogdet(s1)[1]
    assert_close(terms.logdet_ratio, logdet, rtol=1e-11,
                 atol=1e-13 * (abs(np.linalg.slogdet(s1)[1]) + d))
    assert terms.dim == d
    # The KL itself is within rounding of the textbook sum, relative to the terms' magnitude.
    mag = term_magnitude(m1, s1, m2, s2)
    assert abs(terms.kl - kl_reference(m1, s1, m2, s2)) <= 1e-12 * mag


# --------------------------------------------------------------------------- invariance
@st.composite
def affine_maps(draw, d: int):
    """x ↦ A x + b with A = s·P(I + B): P a signed permutation, ‖B‖₂ ≤ ‖B‖_F ≤ 1/2, so
    cond(A) ≤ 3, and s ∈ [1/4, 4] exercising scale."""
    b_mat = draw(hnp.arrays(np.float64, (d, d), elements=st.floats(-0.5 / d, 0.5 / d)))
    perm = draw(st.permutations(range(d)))
    signs = np.array(draw(st.lists(st.sampled_from([-1.0, 1.0]), min_size=d, max_size=d)))
    scale = draw(st.floats(0.25, 4.0))
    a = scale * (np.eye(d)[list(perm)] * signs[:, None]) @ (np.eye(d) + b_mat)
    shift = draw(hnp.arrays(np.float64, d, elements=st.floats(-10, 10)))
    return a, shift


@SETTINGS
@given(dims.flatmap(lambda d: st.tuples(pairs(d), affine_maps(d))))
def test_kl_is_invariant_under_a_shared_affine_map(fw, args):
    (m1, s1, m2, s2), (a, b) = args
    p, q = gaussian(fw, m1, s1), gaussian(fw, m2, s2)
    pt = gaussian(fw, a @ m1 + b, sym(a @ s1 @ a.T))
    qt = gaussian(fw, a @ m2 + b, sym(a @ s2 @ a.T))
    before, after = f64(fw, gd.kl(p, q)), f64(fw, gd.kl(pt, qt))
    # Transforming the inputs perturbs them by ~ d·eps relative; with cond(A Σ Aᵀ) ≤ 9·101 the
    # KL moves by ≲ 1e3·eps·(terms' magnitude) at worst (~2e-13 × magnitude), plus the shift b
    # (|b| ≤ 10) rounding the transformed mean difference: 1e-9 relative covers the
    # well-separated pairs, the absolute term the pairs with KL → 0.
    mag = term_magnitude(m1, s1, m2, s2)
    atol = 1e-12 * mag * (1 + np.abs(b).max())
    assert abs(after - before) <= 1e-9 * before + atol, (before, after)


@SETTINGS
@given(dims.flatmap(lambda d: pairs(d)), dims.flatmap(lambda d: pairs(d)))
def test_kl_is_additive_over_independent_blocks(fw, block_a, block_b):
    ma1, sa1, ma2, sa2 = block_a
    mb1, sb1, mb2, sb2 = block_b
    joint_p = gaussian(fw, np.concatenate([ma1, mb1]), scipy.linalg.block_diag(sa1, sb1))
    joint_q = gaussian(fw, np.concatenate([ma2, mb2]), scipy.linalg.block_diag(sa2, sb2))
    joint = f64(fw, gd.kl(joint_p, joint_q))
    parts = f64(fw, gd.kl(gaussian(fw, ma1, sa1), gaussian(fw, ma2, sa2))) + f64(fw, gd.kl(
        gaussian(fw, mb1, sb1), gaussian(fw, mb2, sb2)))
    # Exact in real arithmetic; the joint and the blocks may take different routes (fast sum vs
    # spectral) and each is accurate to ~1e-13 of its terms' magnitude.
    mag = term_magnitude(ma1, sa1, ma2, sa2) + term_magnitude(mb1, sb1, mb2, sb2)
    assert abs(joint - parts) <= 1e-9 * parts + 1e-13 * mag


@SETTINGS
@given(pairs())
def test_kl_is_cross_entropy_minus_entropy(fw, pair):
    m1, s1, m2, s2 = pair
    p, q = gaussian(fw, m1, s1), gaussian(fw, m2, s2)
    ce, h, value = (f64(fw, v) for v in (gd.cross_entropy(p, q), gd.entropy(p), gd.kl(p, q)))
    assert abs((ce - h) - value) <= 8 * EPS * (abs(ce) + abs(h) + value)
    # Against independent references: the entropy in closed form and the direct form of the
    # cross-entropy ½(d ln 2π + ln|Σ₂| + tr(Σ₂⁻¹Σ₁) + Mahalanobis), relative to magnitude.
    d = len(m1)
    h_ref = 0.5 * (d * (1 + np.log(2 * np.pi)) + np.linalg.slogdet(s1)[1])
    assert abs(h - h_ref) <= 1e-12 * (d * 3 + abs(np.linalg.slogdet(s1)[1]))
    diff = m1 - m2
    ce_ref = 0.5 * (d * np.log(2 * np.pi) + np.linalg.slogdet(s2)[1]
                    + np.trace(np.linalg.solve(s2, s1)) + diff @ np.linalg.solve(s2, diff))
    mag = term_magnitude(m1, s1, m2, s2) + abs(np.linalg.slogdet(s1)[1]) + 2 * d
    assert abs(ce - ce_ref) <= 1e-12 * mag


@SETTINGS
@given(dims.flatmap(lambda d: st.tuples(means(d), spd(d),
                                        hnp.arrays(np.float64, (7, d), elements=MEAN_ELEM))))
def test_log_prob_matches_scipy(args):
    m, s, x = args
    p = gd.Gaussian(m, s)
    ours = gd.log_prob(p, x)
    theirs = scipy.stats.multivariate_normal(m, s).logpdf(x)
    assert ours.shape == (7,)
    # Both are sums of d ln 2π, ln|Σ| and a Mahalanobis distance (≤ ~d·36·cond); rounding of
    # each is ~ cond·eps relative, so compare relative to the summands' magnitude.
    d = len(m)
    mag = d * np.log(2 * np.pi) + abs(np.linalg.slogdet(s)[1]) + np.abs(theirs)
    np.testing.assert_array_less(np.abs(ours - theirs), 1e-11 * mag)


@SETTINGS
@given(pairs().flatmap(lambda pr: st.tuples(
    st.just(pr), hnp.arrays(np.float64, (6, len(pr[0])), elements=MEAN_ELEM))))
def test_log_ratio_is_difference_of_log_probs(args):
    (m1, s1, m2, s2), x = args
    p, q = gd.Gaussian(m1, s1), gd.Gaussian(m2, s2)
    ratio = gd.log_ratio(p, q, x)
    lp, lq = gd.log_prob(p, x), gd.log_prob(q, x)
    assert ratio.shape == (6,)
    np.testing.assert_array_less(np.abs(ratio - (lp - lq)), 1e-12 * (np.abs(lp) + np.abs(lq)))


@SETTINGS
@given(pairs())
def test_log_ratio_at_the_mean_difference_identity(pair):
    # ln p(x)/q(x) at x = μ₁ is ½(ln|Σ₂|/|Σ₁| + (μ₁−μ₂)ᵀΣ₂⁻¹(μ₁−μ₂)): the 2π terms never appear.
    m1, s1, m2, s2 = pair
    p, q = gd.Gaussian(m1, s1), gd.Gaussian(m2, s2)
    terms = gd.kl_terms(p, q)
    expected = 0.5 * (terms.logdet_ratio + terms.mahalanobis)
    value = gd.log_ratio(p, q, m1)
    assert abs(value - expected) <= 1e-12 * (abs(terms.logdet_ratio) + terms.mahalanobis + 1)


# --------------------------------------------------------------------------- parameterisations
def four_forms(m: np.ndarray, s: np.ndarray, fw=None) -> dict[str, gd.Gaussian]:
    """The four parameterisations of N(m, s), from NumPy arrays or ``fw``'s."""
    x = np.asarray if fw is None else fw.array
    precision = sym(np.linalg.inv(s))
    return {
        "cov": gd.Gaussian(x(m), x(s)),
        "precision": gd.Gaussian.from_precision(x(m), x(precision)),
        "scale_tril": gd.Gaussian.from_scale_tril(x(m), x(np.linalg.cholesky(s))),
        "precision_tril": gd.Gaussian.from_precision_tril(x(m),
                                                          x(np.linalg.cholesky(precision))),
    }


@BATCH_SETTINGS
@given(pairs())
def test_four_parameterisations_give_the_same_kl(fw, pair):
    m1, s1, m2, s2 = pair
    ps, qs = four_forms(m1, s1, fw), four_forms(m2, s2, fw)
    reference = f64(fw, gd.kl(ps["cov"], qs["cov"]))
    mag = term_magnitude(m1, s1, m2, s2)
    # The forms agree only up to the rounding of inv() and cholesky() (~ cond·eps ≈ 2e-14
    # relative in Σ), which moves the KL by ≲ 1e-12 of its terms' magnitude.
    for pname, p in ps.items():
        for qname, q in qs.items():
            value = f64(fw, gd.kl(p, q))
            assert abs(value - reference) <= 1e-9 * reference + 1e-12 * mag, (pname, qname)
            assert value >= 0


@SETTINGS
@given(dims.flatmap(lambda d: st.tuples(means(d), spd(d),
                                        hnp.arrays(np.float64, (5, d), elements=MEAN_ELEM))))
def test_four_parameterisations_give_the_same_density_and_entropy(args):
    m, s, x = args
    forms = four_forms(m, s)
    ref_lp = gd.log_prob(forms["cov"], x)
    ref_h = gd.entropy(forms["cov"])
    for name, p in forms.items():
        assert_close(gd.log_prob(p, x), ref_lp, rtol=1e-11, atol=1e-11, err_msg=name)
        assert_close(gd.entropy(p), ref_h, rtol=1e-12, atol=1e-12, err_msg=name)
        assert_close(p.covariance_matrix, s, rtol=1e-11, atol=1e-12 * np.abs(s).max(),
                     err_msg=name)


# --------------------------------------------------------------------------- batching
@NOT_JAX
@BATCH_SETTINGS
@given(st.integers(1, 4).flatmap(lambda d: pairs(d, batch=(5,))))
def test_batch_of_pairs_equals_loop(fw, pair):
    m1, s1, m2, s2 = pair
    p, q = gaussian(fw, m1, s1), gaussian(fw, m2, s2)
    batched = {"kl": f64(fw, gd.kl(p, q)), "ce": f64(fw, gd.cross_entropy(p, q)),
               "h": f64(fw, gd.entropy(p))}
    terms = gd.kl_terms(p, q)
    for value in (*batched.values(), terms.trace, terms.logdet_ratio, terms.mahalanobis):
        assert tuple(value.shape) == (5,)
    for i in range(5):
        pi, qi = gaussian(fw, m1[i], s1[i]), gaussian(fw, m2[i], s2[i])
        # Batched and single solves may use different LAPACK routines: ~cond·eps relative.
        mag = term_magnitude(m1[i], s1[i], m2[i], s2[i])
        assert abs(batched["kl"][i] - f64(fw, gd.kl(pi, qi))) <= 1e-13 * mag
        assert abs(batched["ce"][i] - f64(fw, gd.cross_entropy(pi, qi))) <= 1e-13 * (mag + 10)
        assert batched["h"][i] == pytest.approx(f64(fw, gd.entropy(pi)), rel=1e-13, abs=1e-13)


@BATCH_SETTINGS
@given(st.integers(1, 4).flatmap(lambda d: st.tuples(means(d, (6,)), spd(d, (6,)), means(d),
                                                     spd(d))))
def test_shared_q_against_a_batch_of_p(args):
    m1, s1, m2, s2 = args
    q = gd.Gaussian(m2, s2)
    values = gd.kl(gd.Gaussian(m1, s1), q)
    reverse = gd.kl(q, gd.Gaussian(m1, s1))
    assert values.shape == reverse.shape == (6,)
    for i in range(6):
        mag = term_magnitude(m1[i], s1[i], m2, s2)
        assert abs(values[i] - gd.kl(gd.Gaussian(m1[i], s1[i]), q)) <= 1e-13 * mag
        assert abs(reverse[i] - gd.kl(q, gd.Gaussian(m1[i], s1[i]))) <= 1e-13 * (
            term_magnitude(m2, s2, m1[i], s1[i]))


@BATCH_SETTINGS
@given(st.integers(1, 3).flatmap(lambda d: st.tuples(means(d, (3, 1)), spd(d, (3, 1)),
                                                     means(d, (4,)), spd(d, (4,)))))
def test_broadcast_batch_shapes(args):
    m1, s1, m2, s2 = args
    p, q = gd.Gaussian(m1, s1), gd.Gaussian(m2, s2)
    x = np.zeros((3, 4, m1.shape[-1])) + 0.5
    outputs = {
        "kl": gd.kl(p, q), "kl_rev": gd.kl(q, p), "ce": gd.cross_entropy(p, q),
        "log_ratio": gd.log_ratio(p, q, x), "trace": gd.kl_terms(p, q).trace,
    }
    for name, value in outputs.items():
        assert np.shape(value) == (3, 4), name
    assert gd.entropy(p).shape == (3, 1)
    for i in range(3):
        for j in range(4):
            pi, qj = gd.Gaussian(m1[i, 0], s1[i, 0]), gd.Gaussian(m2[j], s2[j])
            mag = term_magnitude(m1[i, 0], s1[i, 0], m2[j], s2[j])
            assert abs(outputs["kl"][i, j] - gd.kl(pi, qj)) <= 1e-13 * mag
            assert abs(outputs["kl_rev"][i, j] - gd.kl(qj, pi)) <= 1e-13 * term_magnitude(
                m2[j], s2[j], m1[i, 0], s1[i, 0])
            lr = gd.log_ratio(pi, qj, x[i, j])
            assert abs(outputs["log_ratio"][i, j] - lr) <= 1e-12 * (1 + abs(lr) + mag)


def test_mean_and_cov_batches_broadcast_inside_one_gaussian():
    rng = np.random.default_rng(1)
    a = rng.standard_normal((4, 3, 3))
    covs = a @ np.swapaxes(a, -1, -2) + np.eye(3)
    mus = rng.standard_normal((2, 1, 3))
    p = gd.Gaussian(mus, covs)  # mean (2, 1) × cov (4,) → batch (2, 4)
    q = gd.Gaussian(np.zeros(3), np.eye(3))
    values = gd.kl(p, q)
    assert p.batch_shape == values.shape == (2, 4)
    for i in range(2):
        for j in range(4):
            single = gd.kl(gd.Gaussian(mus[i, 0], covs[j]), q)
            assert values[i, j] == pytest.approx(single, rel=1e-13)


# --------------------------------------------------------------------------- dtypes and scalars
def _all_outputs(p, q):
    x = np.full(p.dim, 0.25, dtype=p.mean.dtype)
    terms = gd.kl_terms(p, q)
    return {
        "kl": gd.kl(p, q), "cross_entropy": gd.cross_entropy(p, q), "entropy": gd.entropy(p),
        "log_prob": gd.log_prob(p, x), "log_ratio": gd.log_ratio(p, q, x),
        "terms.trace": terms.trace, "terms.logdet_ratio": terms.logdet_ratio,
        "terms.mahalanobis": terms.mahalanobis, "terms.kl": terms.kl,
        "kl_mc.value": gd.kl_mc(p, q, n=64, seed=0).value,
        "kl_mc.stderr": gd.kl_mc(p, q, n=64, seed=0).stderr,
    }


@SETTINGS
@given(st.integers(1, 4).flatmap(lambda d: pairs(d)), st.sampled_from([np.float32, np.float64]))
def test_dtype_in_is_dtype_out_and_one_pair_gives_a_numpy_scalar(pair, dtype):
    m1, s1, m2, s2 = (np.asarray(a, dtype=dtype) for a in pair)
    p, q = gd.Gaussian(m1, s1), gd.Gaussian(m2, s2)
    assert p.dtype == dtype
    for name, value in _all_outputs(p, q).items():
        assert value.dtype == dtype, name
        assert np.ndim(value) == 0, name
        assert isinstance(value, np.generic), (name, type(value))
    assert gd.sample(p, 3, seed=0).dtype == dtype


@BATCH_SETTINGS
@given(st.integers(1, 4).flatmap(lambda d: pairs(d, batch=(2,))))
def test_batched_outputs_are_arrays_of_the_input_dtype(pair):
    for dtype in (np.float32, np.float64):
        m1, s1, m2, s2 = (np.asarray(a, dtype=dtype) for a in pair)
        p, q = gd.Gaussian(m1, s1), gd.Gaussian(m2, s2)
        for name, value in _all_outputs(p, q).items():
            assert isinstance(value, np.ndarray) and value.shape == (2,), name
            assert value.dtype == dtype, name


@SETTINGS
@given(st.integers(1, 4).flatmap(lambda d: pairs(d)))
def test_mixed_precision_promotes_to_float64(pair):
    m1, s1, m2, s2 = pair
    p32 = gd.Gaussian(m1.astype(np.float32), s1.astype(np.float32))
    q64 = gd.Gaussian(m2, s2)
    for first, second in ((p32, q64), (q64, p32)):
        assert gd.kl(first, second).dtype == np.float64
        assert gd.cross_entropy(first, second).dtype == np.float64
        assert gd.log_ratio(first, second, m1).dtype == np.float64
    # float32 mean with float64 covariance is computed in float64 too.
    assert gd.Gaussian(m1.astype(np.float32), s1).dtype == np.float64


@NOT_JAX
@SETTINGS
@given(st.integers(1, 4).flatmap(lambda d: pairs(d)))
def test_float32_kl_is_close_to_float64_kl_of_the_same_numbers(fw, pair):
    m1, s1, m2, s2 = (np.asarray(a, dtype=np.float32) for a in pair)
    k32 = fw.result(gd.kl(gaussian(fw, m1, s1), gaussian(fw, m2, s2)), np.float32)
    k64 = gd.kl(*(gd.Gaussian(m.astype(np.float64), s.astype(np.float64))
                  for m, s in ((m1, s1), (m2, s2))))
    f32eps = float(np.finfo(np.float32).eps)
    mag = term_magnitude(*(a.astype(np.float64) for a in (m1, s1, m2, s2)))
    # float32 rounding: ~ cond · eps32 relative in each term (cond ≤ 101).
    assert k32 >= 0
    assert abs(float(k32) - k64) <= 1e-4 * k64 + 200 * f32eps * mag


# --------------------------------------------------------------------------- P ≈ Q, exact reference
def kl_mpmath(m1, s1, m2, s2, side: str = "cov", dps: int = 60) -> float:
    """KL of the exact float64 inputs, evaluated in 60-digit arithmetic (no cancellation issue:
    a KL of 1e-30 against terms of size d still keeps ~30 digits). ``side`` says what s1, s2
    are: covariances ("cov"), precisions ("precision") or lower Cholesky factors of Σ ("tril").
    """
    import mpmath

    with mpmath.workdps(dps):
        a1, a2 = mpmath.matrix(s1.tolist()), mpmath.matrix(s2.tolist())
        if side == "precision":
            a1, a2 = a1**-1, a2**-1
        elif side == "tril":
            a1, a2 = a1 * a1.T, a2 * a2.T
        diff = mpmath.matrix(
            [mpmath.mpf(float(x)) - mpmath.mpf(float(y)) for x, y in zip(m1, m2, strict=True)])
        d = len(m1)
        trace = sum((mpmath.lu_solve(a2, a1[:, j]))[j] for j in range(d))
        maha = (diff.T * mpmath.lu_solve(a2, diff))[0]
        logdet = mpmath.log(mpmath.det(a2)) - mpmath.log(mpmath.det(a1))
        return float(((logdet + trace - d) + maha) / 2)


@st.composite
def near_pairs(draw):
    """Q = P moved by a tiny step: mean by δ·u, covariance by η·E (E symmetric, |E| ≤ 1)."""
    d = draw(st.integers(1, 4))
    m1, s1 = draw(means(d)), draw(spd(d))
    tiny = st.one_of(st.just(0.0), st.floats(-12, -2).map(lambda e: 10.0**e))
    delta, eta = draw(tiny), draw(tiny)
    # Step entries are 0 or at least 1e-3, so the excess keeps ≥ 60 − 2·(12 + 3 + 2) digits.
    step = st.integers(-1000, 1000).map(lambda k: k / 1000)
    u = draw(hnp.arrays(np.float64, d, elements=step))
    e = sym(draw(hnp.arrays(np.float64, (d, d), elements=step)))
    return m1, s1, m1 + delta * u, s1 + eta * e


@settings(SETTINGS, max_examples=20)
@given(near_pairs())
def test_kl_of_nearby_gaussians_matches_high_precision(fw, pair):
    m1, s1, m2, s2 = pair
    p, q = gaussian(fw, m1, s1), gaussian(fw, m2, s2)
    exact = kl_mpmath(m1, s1, m2, s2)
    # Where the textbook terms cancel to ~1e-20 of their size, gaussdiv works from Σ₁ − Σ₂ and
    # μ₁ − μ₂ directly; its error is then ~cond·eps relative to the KL itself (cond ≤ 101).
    value = f64(fw, gd.kl(p, q))
    assert value >= 0
    assert abs(value - exact) <= 1e-10 * exact + 1e-300, (value, exact)
    exact_rev = kl_mpmath(m2, s2, m1, s1)
    assert abs(f64(fw, gd.kl(q, p)) - exact_rev) <= 1e-10 * exact_rev + 1e-300


@settings(SETTINGS, max_examples=12)
@given(near_pairs())
def test_kl_of_nearby_precision_parameterised_gaussians_matches_high_precision(fw, pair):
    m1, lam1, m2, lam2 = pair  # the SPD matrices used as precisions
    p = gaussian(fw, m1, lam1, gd.Gaussian.from_precision)
    q = gaussian(fw, m2, lam2, gd.Gaussian.from_precision)
    for a, b, (ma, la, mb, lb) in ((p, q, pair), (q, p, (m2, lam2, m1, lam1))):
        exact = kl_mpmath(ma, la, mb, lb, side="precision")
        value = f64(fw, gd.kl(a, b))
        assert abs(value - exact) <= 1e-10 * exact + 1e-300, (value, exact)


@settings(SETTINGS, max_examples=12)
@given(near_pairs())
def test_kl_of_nearby_scale_tril_gaussians_matches_high_precision(fw, pair):
    m1, s1, m2, s2 = pair
    l1 = np.linalg.cholesky(s1)
    # Perturb the factor itself (the step s2 − s1, lower part): still a valid Cholesky factor.
    l2 = l1 + np.tril(s2 - s1)
    p = gaussian(fw, m1, l1, gd.Gaussian.from_scale_tril)
    q = gaussian(fw, m2, l2, gd.Gaussian.from_scale_tril)
    exact = kl_mpmath(m1, l1, m2, l2, side="tril")
    value = f64(fw, gd.kl(p, q))
    assert abs(value - exact) <= 1e-10 * exact + 1e-300, (value, exact)

"""The NumPy backend's compiled kernels (gaussdiv/backends/numba_kernels.py) against the same
mpmath references as the single-pair suites, on batches, and the kernels on their own.

test_pair_matrix.py and test_family_reference.py evaluate one pair per call, which the NumPy
backend sends to LAPACK (batches below COMPILED_MIN_BATCH never touch numba). Here the cases of
each (kind of P, kind of Q, d) are stacked into one batch — separated and near-identical pairs
side by side, repeated past COMPILED_MIN_BATCH, built by the public constructors from the
stacked inputs — and every element is checked against its reference on both routes: the
compiled kernels, and LAPACK with the kernels switched off (what GAUSSDIV_NUMBA=0 does). A
batch mixes elements that cancel with elements that do not, so the gathers and scatters of the
refinement and of the per-element backward-error corrections are exercised too.
"""

from __future__ import annotations

import math
from itertools import groupby

import numpy as np
import pytest
import scipy.linalg
import test_family_reference as family
import test_pair_matrix as pairs
from test_pair_matrix import CONSTRUCTORS, inputs

import gaussdiv
from gaussdiv import Gaussian
from gaussdiv.backends import numpy_backend
from gaussdiv.numerics.series import excess_log1p

numba_kernels = pytest.importorskip("gaussdiv.backends.numba_kernels")

REPEATS = -(-numpy_backend.COMPILED_MIN_BATCH // 4)  # groups have ≥ 4 cases


@pytest.fixture
def route(request, monkeypatch) -> str:
    """Run the test body with the compiled kernels wherever they apply (the size thresholds
    lowered to one element, so the elementwise diagonal kernels run on these small batches
    too), or with them switched off."""
    if request.param == "lapack":
        monkeypatch.setattr(numpy_backend, "compiled_kernels", lambda: None)
    else:
        monkeypatch.setattr(numpy_backend, "COMPILED_MIN_ENTRIES", 1)
    return request.param


def batched(kind: str, d: int, cases: list, side: int) -> Gaussian:
    """One Gaussian holding side ``side`` of every case, in order, built from stacked inputs."""
    if kind == "standard":
        return gaussdiv.stack([Gaussian.standard(d)] * len(cases))
    arrays = [inputs(c, side) for c in cases]
    stacked = [None if parts[0] is None else np.stack(parts) for parts in zip(*arrays, strict=True)]
    return CONSTRUCTORS[kind](*stacked)


def groups(cases: list, categories: tuple[str, ...]) -> list[tuple[str, list]]:
    """The float64 cases of the given categories, by (kind1, kind2, d), each group repeated to
    at least COMPILED_MIN_BATCH elements."""
    chosen = [c for c in cases if c.category in categories and c.dtype == "float64"]
    key = lambda c: (c.kind1, c.kind2, c.dim)  # noqa: E731
    out = []
    for (k1, k2, d), members in groupby(sorted(chosen, key=key), key=key):
        members = list(members)
        out.append((f"{k1}-{k2}-d{d}", members * REPEATS))
    return out


def routed(cases: list, categories: tuple[str, ...]) -> list:
    """(route, group) parameters for ``groups``: both routes at every d, the LAPACK route
    beyond d = 3 marked ``exhaustive`` (single pairs in tests/test_reference.py take it at
    every d already)."""
    return [pytest.param(route, members, id=f"{route}-{name}",
                         marks=pytest.mark.exhaustive if route == "lapack" and
                         not name.endswith("-d3") else ())
            for name, members in groups(cases, categories) for route in ("compiled", "lapack")]


def check_kl_batch(cases: list) -> list[str]:
    kind1, kind2, d = cases[0].kind1, cases[0].kind2, cases[0].dim
    p, q = batched(kind1, d, cases, 1), batched(kind2, d, cases, 2)
    values = np.asarray(gaussdiv.kl(p, q))
    from_terms = np.asarray(gaussdiv.kl_terms(p, q).kl)
    failures = []
    if values.tobytes() != from_terms.tobytes():
        failures.append("kl_terms(p, q).kl differs from kl(p, q)")
    for i, case in enumerate(cases):
        err = pairs.rel_err(values[i], pairs.ref(case))
        if not err <= pairs.tolerance(case) or values[i] < 0:
            failures.append(f"element {i} ({case.id}): KL {float(values[i])!r}, relative error "
                            f"{err:.3g}")
    return failures


@pytest.mark.parametrize("route,cases", routed(pairs.CASES, ("separated", "near")),
                         indirect=["route"])
def test_batched_kl_matches_reference(route, cases):
    failures = check_kl_batch(cases)
    assert not failures, "\n".join(failures)


@pytest.mark.parametrize("route,cases", routed(pairs.CASES, ("identical",)),
                         indirect=["route"])
def test_batched_identical_inputs_give_exactly_zero(route, cases):
    p = batched(cases[0].kind1, cases[0].dim, cases, 1)
    again = batched(cases[0].kind1, cases[0].dim, cases, 1)
    for a, b in ((p, p), (p, again)):
        values = np.asarray(gaussdiv.kl(a, b))
        assert np.all(values == 0.0), values[values != 0]


@pytest.mark.parametrize("route,cases", routed(family.CASES, ("separated", "near")),
                         indirect=["route"])
def test_batched_family_matches_reference(route, cases):
    kind1, kind2, d = cases[0].kind1, cases[0].kind2, cases[0].dim
    p, q = batched(kind1, d, cases, 1), batched(kind2, d, cases, 2)
    failures = []
    for key in family.KEYS:
        values = np.asarray(family.divergence(key, p, q))
        for i, case in enumerate(cases):
            err = family.rel_err(values[i], family.ref(case, key))
            if not err <= family.tolerance(case) or family.problems(key, values[i]):
                failures.append(f"{family.label(key)} element {i} ({case.id}): "
                                f"{float(values[i])!r}, relative error {err:.3g}")
    assert not failures, "\n".join(failures)


# ---------------------------------------------------------------------------- the kernels
def spd(rng: np.random.Generator, n: int, d: int, dtype=np.float64) -> np.ndarray:
    a = rng.standard_normal((n, d, d))
    return (a @ a.transpose(0, 2, 1) / d + np.eye(d)).astype(dtype)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("d", [1, 2, 7, 33])
def test_kernels_agree_with_lapack(d, dtype):
    rng = np.random.default_rng(d)
    a, b = spd(rng, 40, d, dtype), spd(rng, 40, d, dtype)
    tol = 50 * d * np.finfo(dtype).eps
    factor, status, bound = numba_kernels.checked_cholesky(a)
    assert not status.any()
    assert np.allclose(factor, np.linalg.cholesky(a), rtol=tol, atol=tol)
    diagonal = np.diagonal(a, axis1=-2, axis2=-1)
    pivots = np.diagonal(factor, axis1=-2, axis2=-1) ** 2
    assert np.allclose(bound, np.max(diagonal / pivots, -1), rtol=tol)
    assert np.all(np.triu(factor, 1) == 0)
    lb = np.linalg.cholesky(b)
    rhs = rng.standard_normal((40, d, 3)).astype(dtype)
    for lower, t in ((True, lb), (False, lb.transpose(0, 2, 1).copy())):
        x = numba_kernels.solve_triangular(t, rhs, lower)
        assert np.allclose(t @ x, rhs, rtol=tol, atol=tol)
    trace, logdet_ratio = numba_kernels.whitened_trace(lb, factor)
    expected = np.trace(np.linalg.solve(b, a), axis1=-2, axis2=-1)
    assert np.allclose(trace, expected, rtol=tol)
    assert np.allclose(logdet_ratio, np.linalg.slogdet(b)[1] - np.linalg.slogdet(a)[1],
                       rtol=tol, atol=tol)


@pytest.mark.parametrize("alpha", [0.3, 2.0, 5.0])
def test_mix_cholesky_is_the_mix_then_its_factor(alpha):
    """Rényi's mix αB + (1 − α)A formed and factored in one pass: the matrix and factor of the
    two-step route where definite, I (and bound 1) where not."""
    rng = np.random.default_rng(int(alpha * 10))
    a, b = spd(rng, 300, 5), spd(rng, 300, 5)
    mixed, factor, status, bound = numba_kernels.mix_cholesky(a, b, alpha)
    expected = alpha * b + (1 - alpha) * a
    definite = np.linalg.eigvalsh(expected)[:, 0] > 5 * np.finfo(float).eps * np.abs(
        np.linalg.eigvalsh(expected)[:, -1])
    assert np.array_equal(status == numba_kernels.OK, definite)
    assert (alpha < 1) == bool(definite.all())
    ok = status == numba_kernels.OK
    assert np.allclose(mixed[ok], expected[ok], rtol=1e-15, atol=0)
    assert np.allclose(factor[ok], np.linalg.cholesky(expected[ok]), rtol=1e-13, atol=1e-14)
    assert np.array_equal(mixed[~ok], np.broadcast_to(np.eye(5), mixed[~ok].shape))
    assert np.array_equal(factor[~ok], mixed[~ok]) and np.all(bound[~ok] == 1)


@pytest.mark.parametrize("alpha", [0.25, 1.0, 3.0])
def test_log_space_mix_is_the_logaddexp_form(alpha):
    rng = np.random.default_rng(1)
    l1, l2 = rng.uniform(-3, 3, (2, 500, 6))
    l2[:, :1] = rng.uniform(-3, 3, (500, 1))
    out, definite = numba_kernels.log_space_mix(l1, l2, alpha)
    mix = alpha * np.exp(l2) + (1 - alpha) * np.exp(l1)
    rows = np.all(mix > 0, axis=-1)
    assert np.array_equal(definite, rows)
    assert np.allclose(out[rows], np.log(mix[rows]), rtol=1e-13, atol=1e-14)
    assert np.all(out[~rows] == 0)
    isotropic, _ = numba_kernels.log_space_mix(l1[:, :1], l2[:, :1].copy(), alpha)
    assert isotropic.shape == (500, 1)


def test_cholesky_status_names_each_failure():
    rng = np.random.default_rng(0)
    a = spd(rng, 5, 4)
    a[1, 2, 2] = np.nan
    a[2, 0, 3] += 1.0  # not symmetric
    a[3] = np.diag([1.0, -1.0, 1.0, 1.0])  # indefinite
    a[4, :, 0] = a[4, :, 1] = a[4, 0] = a[4, 1] = 1.0  # two equal columns: singular
    _, status, _ = numba_kernels.checked_cholesky(a)
    assert status.tolist() == [numba_kernels.OK, numba_kernels.NOT_FINITE,
                               numba_kernels.NOT_SYMMETRIC, numba_kernels.NOT_DEFINITE,
                               numba_kernels.NOT_DEFINITE]


def test_construction_errors_match_the_lapack_route(monkeypatch):
    rng = np.random.default_rng(1)
    cases = {}
    for name, edit in (("nan", lambda a: a.__setitem__((7, 1, 1), np.nan)),
                       ("asym", lambda a: a.__setitem__((7, 0, 2), a[7, 0, 2] + 1)),
                       ("indefinite", lambda a: a.__setitem__(7, -np.eye(3)))):
        a = spd(rng, 30, 3)
        edit(a)
        cases[name] = a
    messages = {}
    for route in ("compiled", "lapack"):
        if route == "lapack":
            monkeypatch.setattr(numpy_backend, "compiled_kernels", lambda: None)
        for name, a in cases.items():
            with pytest.raises(gaussdiv.GaussianError) as info:
                Gaussian(np.zeros((30, 3)), a)
            messages[route, name] = (type(info.value), str(info.value))
            assert "batch index 7" in str(info.value) or "(7, " in str(info.value)
    for name in cases:
        assert messages["compiled", name] == messages["lapack", name]


def test_trace_series_matches_eigenvalues():
    rng = np.random.default_rng(2)
    e = rng.standard_normal((60, 6, 6))
    e = e + e.transpose(0, 2, 1)
    e *= (np.logspace(-12, 0, 60) / np.linalg.norm(e, axis=(-2, -1)))[:, None, None]
    values, ok = numba_kernels.trace_series_excess(e, 1 / 16)
    norms = np.linalg.norm(e, axis=(-2, -1))
    assert np.array_equal(ok, norms <= 1 / 16)
    expected = np.sum(excess_log1p(np.linalg.eigvalsh(e), np), -1)
    assert np.allclose(values[ok], expected[ok], rtol=1e-12, atol=0)
    assert np.all(values[~ok] == 0)
    # The fused form from two matrices and the second's factor: E = L⁻¹(A − B)L⁻ᵀ.
    b = spd(rng, 60, 6)
    low = np.linalg.cholesky(b)
    a = b + low @ e @ low.transpose(0, 2, 1)
    fused, fused_ok = numba_kernels.difference_excess(a, b, low, 1 / 16)
    assert np.array_equal(fused_ok[5:-5], ok[5:-5])  # A − B rounds: the edge may move
    both = fused_ok & ok & (norms > 1e-10)  # below, A − B has lost E's digits to rounding
    assert np.allclose(fused[both], expected[both], rtol=1e-6, atol=0)


def spy(monkeypatch, names: tuple[str, ...]) -> list[str]:
    """The names of the kernels among ``names`` called from now on, in order."""
    calls: list[str] = []
    for name in names:
        real = getattr(numba_kernels, name)
        monkeypatch.setattr(numba_kernels, name,
                            lambda *a, _real=real, _name=name: calls.append(_name) or _real(*a))
    return calls


def test_compiled_route_is_taken_for_diagonal_batches(monkeypatch):
    names = ("log_ratio_terms", "var_ratio_terms", "diagonal_mahalanobis")
    calls = spy(monkeypatch, names)
    rng = np.random.default_rng(4)
    mu, logvar = rng.standard_normal((2, 200, 32))
    value = gaussdiv.kl(Gaussian.diag(mu, logvar=logvar), Gaussian.standard(32))
    expected = 0.5 * np.sum(np.expm1(logvar) - logvar + mu**2, -1)
    np.testing.assert_allclose(value, expected, rtol=1e-13)
    v1, v2 = np.exp(logvar), rng.uniform(0.5, 2, (200, 32))
    value = gaussdiv.kl(Gaussian.diag(mu, var=v1), Gaussian.diag(0 * mu, var=v2))
    expected = 0.5 * np.sum(v1 / v2 - 1 - np.log(v1 / v2) + mu**2 / v2, -1)
    np.testing.assert_allclose(value, expected, rtol=1e-12)
    assert set(calls) == set(names)


@pytest.mark.parametrize("d", [1, 4, 16, 40])
def test_backward_error_kernel_matches_the_residual_route(d):
    """F = L⁻¹(A − LLᵀ)L⁻ᵀ both ways: the residuals are accurate to ≈ 2⁻²⁰ of themselves, so
    the two agree to that, relative to F (itself ≈ κ·u)."""
    from gaussdiv.numerics.residual import cholesky_residual

    rng = np.random.default_rng(d)
    a = rng.standard_normal((30, d, d))
    s = a @ a.transpose(0, 2, 1) + 1e-3 * np.eye(d)  # κ up to ≈ 10⁶: F well above rounding
    g = Gaussian(np.zeros(d), s)
    factor = np.ascontiguousarray(g.cov.factor)
    stepwise = g.cov._whitened(cholesky_residual(g.ops, s, factor))
    fused = numba_kernels.backward_error(s, factor)
    assert np.array_equal(fused, fused.transpose(0, 2, 1))
    scale = np.max(np.abs(stepwise), axis=(1, 2), keepdims=True)
    assert np.max(np.abs(fused - stepwise) / scale) < 2.0**-18


@pytest.mark.parametrize("d", [1, 3, 16, 33])
def test_pairwise_moment_kernels_match_the_step_by_step_route(d, monkeypatch):
    """The fused inverse (Xᵀ(I − F)X, ‖XL − I‖) and packed moments against the NumPy
    route of gaussdiv.matrices.moments (kernels switched off), and pairwise takes them."""
    from gaussdiv.backends.numpy_backend import NumpyBackend
    from gaussdiv.matrices.moments import column_moments, factored_inverse, row_moments

    rng = np.random.default_rng(d)
    a = rng.standard_normal((40, d, d))
    g = Gaussian(rng.standard_normal((40, d)), a @ a.transpose(0, 2, 1) + 1e-2 * np.eye(d))
    center = np.zeros(d)
    fused = (factored_inverse(g.cov), row_moments(g, center, False),
             column_moments(g, center, False))
    monkeypatch.setattr(NumpyBackend, "factor_inverse", lambda self, *a, **k: None)
    monkeypatch.setattr(NumpyBackend, "packed_moments", lambda self, *a, **k: None)
    stepwise = (factored_inverse(g.cov), row_moments(g, center, False),
                column_moments(g, center, False))
    monkeypatch.undo()
    (inv, err), rows, cols = fused
    (inv0, err0), rows0, cols0 = stepwise
    assert np.allclose(inv, inv0, rtol=1e-13, atol=1e-13 * np.abs(inv0).max())
    # both estimate ‖XL − I‖, which is rounding noise: the same to a small factor
    assert np.all(err <= 10 * err0 + 8) and np.all(err0 <= 10 * err + 8)
    for new, old in ((rows, rows0), (cols, cols0)):
        scale = np.abs(old.values).max()
        assert np.allclose(new.values, old.values, rtol=1e-13, atol=1e-14 * scale)
        assert np.allclose(new.magnitudes, old.magnitudes, rtol=1e-6)
        assert new.magnitudes.dtype == np.float32
    calls = spy(monkeypatch, ("factor_inverse", "packed_moments"))
    gaussdiv.pairwise(gaussdiv.kl, g)
    assert set(calls) == {"factor_inverse", "packed_moments"}


def test_compiled_route_is_taken_for_dense_batches(monkeypatch):
    names = ("checked_cholesky", "whitened_trace", "difference_excess", "backward_error")
    calls = spy(monkeypatch, names)
    rng = np.random.default_rng(3)
    correlated = np.eye(5)
    correlated[0, 1] = correlated[1, 0] = 0.999  # condition bound ≈ 1/(1 − 0.999²) ≥ 4
    scale = rng.uniform(0.5, 2.0, (32, 5))
    s = scale[:, :, None] * (spd(rng, 32, 5) / 100 + correlated) * scale[:, None, :]
    p = Gaussian(np.zeros((32, 5)), s)
    q = Gaussian(np.zeros((32, 5)), s + 1e-9 * np.eye(5))
    value = gaussdiv.kl(p, q)
    assert set(names) <= set(calls)
    # KL(N(0, S) ‖ N(0, S + δI)) = ½ Σ g(−δ/(λ + δ))... to first order δ² tr(S⁻²)/4.
    first_order = 1e-18 * np.trace(np.linalg.inv(s) @ np.linalg.inv(s), axis1=1, axis2=2) / 4
    assert np.allclose(value, first_order, rtol=1e-6)
    assert math.isfinite(float(value.sum()))


def test_whitened_trace_log_ratio_at_extreme_scales():
    """Diagonal factors from 1e-150 to 1e150: the running product never leaves the float
    range, and the result matches 50-digit mpmath."""
    from mpmath import mp

    rng = np.random.default_rng(5)
    d, n = 6, 20
    a = np.stack([np.diag(10.0 ** rng.uniform(-150, 150, d)) for _ in range(n)])
    b = np.stack([np.diag(10.0 ** rng.uniform(-150, 150, d)) for _ in range(n)])
    _, logdet_ratio = numba_kernels.whitened_trace(b, a)
    with mp.workdps(50):
        for i in range(n):
            exact = 2 * sum(mp.log(mp.mpf(b[i, j, j])) - mp.log(mp.mpf(a[i, j, j]))
                            for j in range(d))
            assert abs(mp.mpf(float(logdet_ratio[i])) - exact) <= 1e-15 * d * 350 * 2


def _step_by_step(a: np.ndarray):
    """validation.factor_checked's checks one at a time: (factor, bound), or the error type."""
    from gaussdiv import validation
    ops = numpy_backend.NumpyBackend()
    try:
        validation.check_finite(a, "cov", ops)
        validation.check_symmetric(a, "cov", ops)
        return validation.factor_and_bound(a, "cov", ops)
    except gaussdiv.GaussianError as error:
        return type(error)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", [(), (1,), (3,), (2, 5)])
@pytest.mark.parametrize("d", [1, 2, 8, 64, 127])
def test_whole_batch_checks_are_the_step_by_step_checks_bit_for_bit(shape, d, dtype):
    """The NumPy route below the kernels' batch size (numpy_backend._valid_cholesky_lapack):
    the factor and condition bound of the step-by-step checks, bit for bit, for accepted
    batches; None (the caller's checks then name the failure) for every batch they refuse."""
    rng = np.random.default_rng(d)
    a = rng.standard_normal((*shape, d, d))
    good = (a @ np.swapaxes(a, -1, -2) / d + np.eye(d)).astype(dtype)
    fast = numpy_backend._valid_cholesky_lapack(good)
    factor, bound = _step_by_step(good)
    np.testing.assert_array_equal(fast[0], factor)
    np.testing.assert_array_equal(fast[1], bound)
    assert fast[0].dtype == factor.dtype and fast[1].dtype == bound.dtype
    last = (*([0] * len(shape)),)
    bad = {"nan": good.copy(), "asymmetric": good.copy(), "indefinite": good.copy(),
           "singular": good.copy()}
    bad["nan"][(*last, d - 1, 0)] = np.nan
    if d > 1:
        bad["asymmetric"][(*last, d - 1, 0)] += 1e-2 * np.abs(good).max()
        bad["singular"][last] = np.ones((d, d), dtype)  # rank one: a zero or rounding pivot
    else:
        del bad["asymmetric"], bad["singular"]
    bad["indefinite"][last] = -good[last]
    for kind, matrix in bad.items():
        assert numpy_backend._valid_cholesky_lapack(matrix) is None, kind
        assert isinstance(_step_by_step(matrix), type), kind
    huge = np.full((2, 2), np.finfo(dtype).max / 2, dtype) * np.array([[1, 0.5], [0.5, 1]], dtype)
    assert numpy_backend._valid_cholesky_lapack(huge) is None  # the sum overflows: steps decide
    assert not isinstance(_step_by_step(huge), type)


@pytest.mark.parametrize("widths", [(64, 64), (64, 1), (1, 64)])
@pytest.mark.parametrize("convert", [0, 1, 2])
def test_log_ratio_terms_in_blocks_and_threads(widths, convert):
    """numba_kernels.log_ratio_terms on blocks shared among threads (5000 × 64 entries, above
    the threaded size): the row sums of the elementwise formulas to summation rounding, the
    last block partial, an overflowing expm1 an inf without a warning."""
    rng = np.random.default_rng(convert)
    n = 5003
    l1 = rng.standard_normal((n, widths[0]))
    l2 = rng.standard_normal((n, widths[1]))
    l1[7, 0] = 800.0  # e^800 − 1 overflows: eps_sum is inf there
    assert n * 64 >= numba_kernels._THREADED_MIN_ENTRIES
    with np.errstate(over="raise"):
        eps_sum, log_sum, spread = numba_kernels.log_ratio_terms(l1, l2, convert)
    lam = l1 - l2
    with np.errstate(over="ignore"):
        want_eps = np.expm1(lam).sum(-1)
    converted = {0: 0, 1: np.abs(np.broadcast_to(l1, lam.shape)),
                 2: np.abs(np.broadcast_to(l2, lam.shape))}[convert]
    want_spread = (np.abs(lam) + converted).sum(-1)
    assert np.isinf(eps_sum[7]) and not np.isinf(np.delete(eps_sum, 7)).any()
    with np.errstate(over="ignore", invalid="ignore"):
        magnitudes = (np.abs(np.expm1(lam)).sum(-1), np.abs(lam).sum(-1), want_spread)
    bound = (lam.shape[-1] + 4) * np.finfo(float).eps  # a sum's rounding, expm1's few ulps
    for got, want, size in zip((eps_sum, log_sum, spread), (want_eps, lam.sum(-1), want_spread),
                               magnitudes, strict=True):
        keep = np.isfinite(want)
        assert np.all(np.abs(got[keep] - want[keep]) <= bound * size[keep])


def test_threaded_work_reraises_a_worker_error():
    def work(k: int, count: int) -> None:
        if k == count - 1:
            raise ValueError(f"share {k} of {count}")

    with pytest.raises(ValueError, match="share"):
        numba_kernels.in_threads(work, numba_kernels._THREADED_MIN_ENTRIES, 4)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("layout", ["C", "F", "strided"])
def test_a_large_input_is_held_as_a_private_copy(dtype, layout):
    """Inputs of ≥ COMPILED_MIN_COPY entries are copied by numba_kernels.copy (C order) or,
    in other layouts, by NumPy: bit for bit, read-only, sharing no memory, so a later edit
    of the caller's array does not reach the Gaussian."""
    rng = np.random.default_rng(3)
    rows = numpy_backend.COMPILED_MIN_COPY // 8 + 5
    base = rng.standard_normal((rows, 16)).astype(dtype)
    x = {"C": base, "F": np.asfortranarray(base), "strided": base[:, ::2]}[layout]
    p = Gaussian.diag(x, logvar=0.1 * x)
    np.testing.assert_array_equal(p.mean, x)
    assert not p.mean.flags.writeable and not np.shares_memory(p.mean, x)
    before = gaussdiv.kl(p, Gaussian.standard(x.shape[-1], dtype))
    x[0, 0] += 1
    np.testing.assert_array_equal(gaussdiv.kl(p, Gaussian.standard(x.shape[-1], dtype)), before)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("d", [127, 128, 300])
def test_large_factors_and_solves_on_the_arrays_own_memory(d, dtype):
    """From d = 128 the NumPy backend factors and solves through Fortran views of C arrays
    (potrf upper, trsm from the right): the factor and the solutions of LAPACK's own routines
    to rounding, in C order, batched elementwise as one by one, zero pivots and indefinite
    matrices a LinAlgError."""
    ops = numpy_backend.NumpyBackend()
    rng = np.random.default_rng(d)
    a = rng.standard_normal((2, d, d))
    s = (a @ np.swapaxes(a, -1, -2) / d + np.eye(d)).astype(dtype)
    tol = 64 * d * np.finfo(dtype).eps
    factor = ops.cholesky(s)
    assert factor.dtype == dtype and factor.flags.c_contiguous
    np.testing.assert_array_equal(np.triu(factor, 1), 0)
    np.testing.assert_allclose(factor, np.linalg.cholesky(s), rtol=0, atol=tol)
    np.testing.assert_array_equal(ops.cholesky(s[1]), factor[1])
    b = rng.standard_normal((2, d, 3)).astype(dtype)
    for lower, t in ((True, factor), (False, np.swapaxes(factor, -1, -2))):
        x = ops.solve_triangular(t, b, lower=lower)
        assert x.dtype == dtype and x.flags.c_contiguous and x.shape == b.shape
        for i in range(2):
            want = scipy.linalg.solve_triangular(t[i], b[i], lower=lower)
            np.testing.assert_allclose(x[i], want, rtol=0, atol=tol * np.abs(want).max())
            np.testing.assert_array_equal(ops.solve_triangular(t[i], b[i], lower=lower), x[i])
    singular = factor[0].copy()
    singular[d // 2, d // 2] = 0
    with pytest.raises(np.linalg.LinAlgError):
        ops.solve_triangular(singular, b[0], lower=True)
    with pytest.raises(np.linalg.LinAlgError):
        ops.cholesky(np.stack([s[0], -s[1]]))


@pytest.mark.filterwarnings("ignore::PendingDeprecationWarning")  # np.matrix itself
def test_large_array_subclasses_are_held_as_plain_arrays():
    """A large np.matrix or masked array input takes NumPy's copy (a plain ndarray), as small
    ones do; the threaded copy is for plain C-order arrays only."""
    d = 1024  # d² = COMPILED_MIN_COPY entries
    g = Gaussian(np.zeros(d), np.asmatrix(np.eye(d)))
    assert type(g.cov.matrix) is np.ndarray and float(gaussdiv.kl(g, g)) == 0.0
    n = numpy_backend.COMPILED_MIN_COPY // 64
    mean = np.ma.masked_array(np.ones((n, 64)), mask=np.zeros((n, 64), bool))
    p = Gaussian.diag(mean, var=np.ones(64))
    assert type(p.mean) is np.ndarray
    np.testing.assert_array_equal(gaussdiv.kl(p, Gaussian.standard(64)), 32.0)


@pytest.mark.parametrize("widths", [(64, 64), (64, 1), (1, 64)])
def test_variance_ratios_and_logvar_mahalanobis_in_blocks_and_threads(widths):
    """numba_kernels.var_ratio_terms and the LOGVAR diagonal_mahalanobis on blocks shared among
    threads: the elementwise formulas to summation rounding, including ratios beyond the float
    range (ln v₁ − ln v₂ there), e^(−ℓ/2) overflowing against a zero x (0, not NaN), float32."""
    rng = np.random.default_rng(11)
    n = 5003
    v1 = rng.uniform(0.5, 2.0, (n, widths[0]))
    v2 = rng.uniform(0.5, 2.0, (n, widths[1]))
    v1[5, 0], v2[5, 0] = 1e-300, 1e300  # the ratio underflows
    eps_sum, log_sum, spread = numba_kernels.var_ratio_terms(v1, v2)
    a, b = np.broadcast_arrays(v1, v2)
    log_lam = np.log(a) - np.log(b)
    np.testing.assert_allclose(eps_sum, ((a - b) / b).sum(-1), rtol=1e-13, atol=1e-13)
    assert np.all(np.abs(log_sum - log_lam.sum(-1)) <= 1e-14 * np.abs(log_lam).sum(-1))
    np.testing.assert_allclose(spread, np.abs(log_lam).sum(-1), rtol=1e-13)
    x = rng.standard_normal((n, 64))
    ell = rng.standard_normal((n, widths[1]))
    ell[3, 0] = -2000.0  # e^(1000) overflows where x = 0 (the whole row for a width-1 ℓ)
    x[3, :1 if ell.shape[1] > 1 else 64] = 0.0
    got = numba_kernels.diagonal_mahalanobis(x, ell, numba_kernels.LOGVAR)
    with np.errstate(over="ignore", invalid="ignore"):
        want = np.where(x != 0, x * np.exp(-0.5 * ell), 0.0)
    np.testing.assert_allclose(got, (want * want).sum(-1), rtol=1e-13)
    assert np.isfinite(got[3])
    narrow = numba_kernels.diagonal_mahalanobis(x.astype(np.float32), ell.astype(np.float32),
                                                numba_kernels.LOGVAR)
    assert narrow.dtype == np.float32
    np.testing.assert_allclose(narrow, (want * want).sum(-1), rtol=1e-5)


def test_blocked_diagonal_kernels_divide_as_numpy_does():
    """The nogil sum kernels use NumPy's error model, as the parallel kernels do: a zero
    variance gives inf (the callers judge it), never a ZeroDivisionError."""
    v1, v2 = np.ones((4096, 2)), np.ones((4096, 2))
    v2[5, 1] = 0.0
    eps_sum, _, spread = numba_kernels.var_ratio_terms(v1, v2)
    assert np.isinf(eps_sum[5]) and np.isinf(spread[5])
    assert np.all(np.isfinite(np.delete(eps_sum, 5)))

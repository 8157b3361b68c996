"""Conformance: every covariance structure against its dense twin and the mpmath reference.

Each structure is one ``Case`` (how to build it, how to nudge it, its covariance in mpmath from
the exact inputs) and one ``TestX(Conformance)`` subclass; every check below is inherited.

Every divergence test body runs over NumPy, PyTorch and JAX (the ``fw`` fixture of
tests/conftest.py; a framework is skipped only when it is not installed), every case on each:
the structures are built from that framework's arrays holding the same float64 (float32)
numbers, results must come back as that framework's arrays of the input's dtype, and the
targets are the same for all three. The mpmath references depend only on those numbers, so each
is computed once and shared by the three frameworks (``_reference``). The structures' input
validation (the tests at the end) runs on NumPy only.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from functools import cache
from typing import Any

import mpmath as mp
import numpy as np
import pytest
from mpref import kl as mp_kl
from mpref import mpf_matrix, mpf_vector, relative_error

import gaussdiv as gd

# float64 targets: 1e-14 relative for KL on well-conditioned inputs (the spec); elementwise
# identities with the dense twin agree to rounding amplified by the factorisations (κ ≤ 100 here).
KL_RTOL = 1e-14
TWIN_RTOL = 1e-11
# Every structure is built for each d (Kronecker as 2×2 ⊗ (d/2)×(d/2)).
DIMS = (2, 4, 6)


@dataclass
class Built:
    """A structured Gaussian with its mean (NumPy) and the exact (mpmath) covariance of its
    float inputs; ``key`` names the inputs (the same for every framework)."""

    gaussian: gd.Gaussian
    mp_cov: mp.matrix
    mean: np.ndarray
    key: tuple = ()


_REFERENCES: dict[Hashable, mp.mpf] = {}


def _reference(key: Hashable, compute: Callable[[], mp.mpf]) -> mp.mpf:
    """``compute()``, evaluated once per ``key`` (an mpmath KL of inputs that ``key`` names)."""
    if key not in _REFERENCES:
        _REFERENCES[key] = compute()
    return _REFERENCES[key]


def _spd(rng: np.random.Generator, n: int) -> np.ndarray:
    a = rng.standard_normal((n, n))
    return a @ a.T / n + np.eye(n)


class Case:
    """How to build one structure, from ``fw``'s arrays of NumPy-drawn numbers."""

    name = "structure"

    def build(self, fw: Any, rng: np.random.Generator, d: int, mean: np.ndarray) -> Built:
        raise NotImplementedError

    def nudge(self, fw: Any, rng: np.random.Generator, built: Built, delta: float,
              mean: np.ndarray) -> Built:
        """The same structure with every parameter moved by a relative amount ≈ delta."""
        raise NotImplementedError


class DiagonalCase(Case):
    def __init__(self, kind: str) -> None:
        self.kind = kind
        self.name = f"diag-{kind}"

    def _make(self, fw, var: np.ndarray, mean: np.ndarray) -> Built:
        param = {"var": var, "std": np.sqrt(var), "logvar": np.log(var)}[self.kind]
        g = gd.Gaussian.diag(fw.array(mean), **{self.kind: fw.array(param)})
        exact = {"var": lambda x: mp.mpf(x), "std": lambda x: mp.mpf(x) ** 2,
                 "logvar": lambda x: mp.exp(mp.mpf(x))}[self.kind]
        return Built(g, mp.diag([exact(float(x)) for x in param]), mean)

    def build(self, fw, rng, d, mean):
        self._var = rng.uniform(0.3, 3.0, d)
        return self._make(fw, self._var, mean)

    def nudge(self, fw, rng, built, delta, mean):
        var = self._var * (1 + delta * rng.uniform(-1, 1, self._var.shape))
        return self._make(fw, var, mean)


class IsotropicCase(Case):
    name = "isotropic"

    def _make(self, fw, var: float, mean: np.ndarray) -> Built:
        g = gd.Gaussian.isotropic(fw.array(mean), fw.array(np.float64(var)))
        return Built(g, mp.mpf(var) * mp.eye(len(mean)), mean)

    def build(self, fw, rng, d, mean):
        self._var = float(rng.uniform(0.3, 3.0))
        return self._make(fw, self._var, mean)

    def nudge(self, fw, rng, built, delta, mean):
        return self._make(fw, self._var * (1 + delta), mean)


class LowRankCase(Case):
    name = "lowrank"

    def _make(self, fw, factor, var, mean):
        w = mpf_matrix(factor)
        g = gd.Gaussian.lowrank(fw.array(mean), fw.array(factor), fw.array(var))
        return Built(g, w * w.T + mp.diag(mpf_vector(var)), mean)

    def build(self, fw, rng, d, mean):
        self._factor = rng.standard_normal((d, 2))
        self._var = rng.uniform(0.5, 2.0, d)
        return self._make(fw, self._factor, self._var, mean)

    def nudge(self, fw, rng, built, delta, mean):
        factor = self._factor + delta * rng.standard_normal(self._factor.shape)
        var = self._var * (1 + delta * rng.uniform(-1, 1, self._var.shape))
        return self._make(fw, factor, var, mean)


class KroneckerCase(Case):
    name = "kronecker"

    @staticmethod
    def _mp_kron(a, b):
        p, q = len(a), len(b)
        out = mp.matrix(p * q, p * q)
        for i, j, k, m in itertools.product(range(p), range(q), range(p), range(q)):
            out[i * q + j, k * q + m] = mp.mpf(float(a[i][k])) * mp.mpf(float(b[j][m]))
        return out

    def _make(self, fw, a, b, mean):
        g = gd.Gaussian.kronecker(fw.array(mean), fw.array(a), fw.array(b))
        return Built(g, self._mp_kron(a, b), mean)

    def build(self, fw, rng, d, mean):
        p = 2
        self._a, self._b = _spd(rng, p), _spd(rng, d // p)
        return self._make(fw, self._a, self._b, mean)

    def nudge(self, fw, rng, built, delta, mean):
        ea, eb = rng.standard_normal(self._a.shape), rng.standard_normal(self._b.shape)
        a = self._a + delta * (ea + ea.T) / 4
        b = self._b + delta * (eb + eb.T) / 4
        return self._make(fw, a, b, mean)


class DenseCase(Case):
    def __init__(self, form: str) -> None:
        self.form = form
        self.name = f"dense-{form}"

    def _make(self, fw, cov, mean):
        m = fw.array(mean)
        if self.form == "cov":
            return Built(gd.Gaussian(m, fw.array(cov)), mpf_matrix(cov), mean)
        if self.form == "scale_tril":
            factor = np.linalg.cholesky(cov)
            f = mpf_matrix(factor)
            return Built(gd.Gaussian.from_scale_tril(m, fw.array(factor)), f * f.T, mean)
        precision = np.linalg.inv(cov)
        precision = (precision + precision.T) / 2
        return Built(gd.Gaussian.from_precision(m, fw.array(precision)),
                     mp.inverse(mpf_matrix(precision)), mean)

    def build(self, fw, rng, d, mean):
        self._cov = _spd(rng, d)
        return self._make(fw, self._cov, mean)

    def nudge(self, fw, rng, built, delta, mean):
        e = rng.standard_normal(self._cov.shape)
        return self._make(fw, self._cov + delta * (e + e.T) / 4, mean)


CASES = [DiagonalCase("var"), DiagonalCase("std"), DiagonalCase("logvar"), IsotropicCase(),
         LowRankCase(), KroneckerCase(), DenseCase("cov"), DenseCase("scale_tril"),
         DenseCase("precision")]


def _standard(fw, d: int, dtype=np.float64) -> gd.Gaussian:
    """N(0, I) in ``fw``'s arrays (NumPy: by dtype alone, the default framework)."""
    if fw.name == "numpy":
        return gd.Gaussian.standard(d, dtype)
    return gd.Gaussian.standard(d, dtype, like=fw.array(np.zeros(1), dtype))


def _twin(g: gd.Gaussian) -> gd.Gaussian:
    return gd.Gaussian(g.mean, g.covariance_matrix)


class Conformance:
    case: Case

    @pytest.fixture(params=[0, 1, 2], ids=lambda i: f"d{i}")
    def built(self, request, fw) -> Built:
        rng = np.random.default_rng(100 + request.param)
        d = DIMS[request.param]
        built = self.case.build(fw, rng, d, rng.standard_normal(d))
        built.key = (self.case.name, d)
        return built

    def test_structure_agrees_with_dense_twin(self, fw, built):
        g = built.gaussian
        r = lambda v: fw.result(v, np.float64)  # noqa: E731
        cov = r(g.covariance_matrix)
        exact = np.array(built.mp_cov.tolist(), dtype=float)
        np.testing.assert_allclose(cov, exact, rtol=0, atol=1e-14 * np.abs(exact).max())
        rng = np.random.default_rng(7)
        x = fw.array(rng.standard_normal((5, g.dim)))
        twin = _twin(g)
        np.testing.assert_allclose(r(g.cov.logdet()), r(twin.cov.logdet()), rtol=TWIN_RTOL,
                                   atol=1e-14)
        np.testing.assert_allclose(r(g.cov.mahalanobis(x)), r(twin.cov.mahalanobis(x)),
                                   rtol=TWIN_RTOL)
        np.testing.assert_allclose(r(g.cov.diagonal()), np.diag(cov), rtol=TWIN_RTOL)
        np.testing.assert_allclose(r(g.cov.inverse_diagonal()), np.diag(np.linalg.inv(cov)),
                                   rtol=TWIN_RTOL)
        cols = rng.standard_normal((g.dim, 3))
        np.testing.assert_allclose(r(g.cov.matmul(fw.array(cols))), cov @ cols, rtol=TWIN_RTOL,
                                   atol=1e-13)
        root = r(g.cov.color(fw.array(np.eye(g.cov.noise_dim)))).T  # columns S e_i
        np.testing.assert_allclose(root @ root.T, cov, rtol=TWIN_RTOL, atol=1e-13)
        np.testing.assert_allclose(r(gd.log_prob(g, x)), r(gd.log_prob(twin, x)), rtol=TWIN_RTOL)
        np.testing.assert_allclose(r(gd.entropy(g)), r(gd.entropy(twin)), rtol=TWIN_RTOL,
                                   atol=1e-14)

    def test_kl_with_itself_is_exactly_zero(self, fw, built):
        assert fw.result(gd.kl(built.gaussian, built.gaussian), np.float64) == 0.0

    @pytest.mark.parametrize("other", CASES, ids=lambda c: c.name)
    def test_kl_against_every_structure_matches_dense_and_mpmath(self, fw, built, other):
        g = built.gaussian
        rng = np.random.default_rng(11)
        partner = other.build(fw, rng, g.dim, rng.standard_normal(g.dim))
        m1, m2 = mpf_vector(built.mean), mpf_vector(partner.mean)
        for k, (p, q, sp, sq, mp1, mp2) in enumerate((
                (g, partner.gaussian, built.mp_cov, partner.mp_cov, m1, m2),
                (partner.gaussian, g, partner.mp_cov, built.mp_cov, m2, m1))):
            value = fw.result(gd.kl(p, q), np.float64)
            reference = _reference((*built.key, other.name, k),
                                   lambda: mp_kl(mp1, sp, mp2, sq))  # noqa: B023 (called now)
            assert relative_error(value, reference) < KL_RTOL
            np.testing.assert_allclose(value, fw.result(gd.kl(_twin(p), _twin(q)), np.float64),
                                       rtol=KL_RTOL)

    @pytest.mark.parametrize("delta", [1e-2, 1e-5, 1e-8, 1e-12])
    def test_near_identical_matches_mpmath(self, fw, built, delta):
        rng = np.random.default_rng(5)
        g = built.gaussian
        mean = built.mean + delta * rng.standard_normal(g.dim)
        near = self.case.nudge(fw, rng, built, delta, mean)
        for k, (p, q) in enumerate(((near, built), (built, near))):
            reference = _reference(
                (*built.key, "near", delta, k),
                lambda: mp_kl(mpf_vector(p.mean), p.mp_cov,  # noqa: B023 (called now)
                              mpf_vector(q.mean), q.mp_cov))  # noqa: B023
            value = fw.result(gd.kl(p.gaussian, q.gaussian), np.float64)
            assert relative_error(value, reference) < KL_RTOL

    def test_batch_equals_loop(self, fw, built):
        g = built.gaussian
        rng = np.random.default_rng(3)
        means = built.mean + rng.standard_normal((4, g.dim))
        batch_p = gd.Gaussian(fw.array(means), g.cov)
        q = gd.Gaussian(fw.array(np.zeros(g.dim)), g.cov)
        values = fw.result(gd.kl(batch_p, q), np.float64)
        assert values.shape == (4,)
        for i in range(4):
            single = fw.result(gd.kl(gd.Gaussian(fw.array(means[i]), g.cov), q), np.float64)
            # A batched solve may sum in another order than a single one: a few ulps of the
            # terms (≈ 2 KL here) apart.
            np.testing.assert_allclose(values[i], single, rtol=16 * np.finfo(float).eps)

    def test_monte_carlo_agrees(self, fw, built):
        g = built.gaussian
        q = gd.Gaussian(fw.array(np.zeros(g.dim)), fw.array(np.eye(g.dim)))
        exact = gd.kl(g, q)
        mc = gd.kl_mc(g, q, n=40_000, seed=1)
        assert abs(fw.result(mc.zscore(exact), np.float64)) < 4.5


def _conformance(case: Case) -> type:
    return type(f"Test_{case.name}", (Conformance,), {"case": case})


for _case in CASES:
    globals()[f"Test_{_case.name.replace('-', '_')}"] = _conformance(_case)


def test_vae_kl_exact_across_log_variances(fw):
    """KL(N(μ, diag e^ℓ) ‖ N(0, I)) = ½ Σ (e^ℓ − 1 − ℓ + μ²), no overflow from ℓ = −700 to 700."""
    prior = _standard(fw, 8)
    for ell in (-700.0, -30.0, -1e-9, 0.0, 1e-12, 3.0, 700.0):
        logvar = np.full(8, ell)
        mean = np.full(8, 1e-3)
        x = mp.mpf(ell)
        reference = 8 * (mp.exp(x) - 1 - x + mp.mpf(1e-3) ** 2) / 2
        p = gd.Gaussian.diag(fw.array(mean), logvar=fw.array(logvar))
        value = fw.result(gd.kl(p, prior), np.float64)
        assert np.isfinite(value)
        assert relative_error(value, reference) < KL_RTOL


def test_vae_kl_float32_near_prior(fw):
    """The float32 VAE posterior near its prior: every library measured gets this wrong."""
    logvar = np.full(32, 1e-4, dtype=np.float32)
    mean = np.full(32, 1e-4, dtype=np.float32)
    p = gd.Gaussian.diag(fw.array(mean, np.float32), logvar=fw.array(logvar, np.float32))
    prior = _standard(fw, 32, np.float32)
    value = fw.result(gd.kl(p, prior), np.float32)  # computed and returned in float32
    x, m = mp.mpf(float(logvar[0])), mp.mpf(float(mean[0]))
    assert relative_error(value, 32 * (mp.exp(x) - 1 - x + m * m) / 2) < 1e-5


@pytest.mark.parametrize("kind,bad", [("var", -1.0), ("var", 0.0), ("std", 0.0),
                                      ("logvar", np.nan), ("var", np.inf)])
def test_diag_rejects_bad_variances(kind, bad):
    param = np.array([1.0, bad, 2.0])
    with pytest.raises(gd.GaussianError, match=kind):
        gd.Gaussian.diag(np.zeros(3), **{kind: param})


def test_diag_needs_exactly_one_parameterisation():
    with pytest.raises(gd.GaussianError, match="exactly one"):
        gd.Gaussian.diag(np.zeros(2), var=np.ones(2), std=np.ones(2))
    with pytest.raises(gd.GaussianError, match="exactly one"):
        gd.Gaussian.diag(np.zeros(2))


def test_lowrank_rejects_wrong_factor_rows():
    with pytest.raises(gd.DimensionMismatchError, match="factor has 4 rows"):
        gd.Gaussian.lowrank(np.zeros(3), np.ones((4, 2)), np.ones(3))


def test_kronecker_rejects_sizes_that_do_not_multiply_to_d():
    with pytest.raises(gd.DimensionMismatchError, match="d=5"):
        gd.Gaussian.kronecker(np.zeros(5), np.eye(2), np.eye(3))


def test_standard_rejects_bad_dimension():
    with pytest.raises(gd.ShapeError):
        gd.Gaussian.standard(0)


def test_structures_never_densify_at_scale(fw):
    """d = 10⁶ diagonal and low-rank (k = 4) pairs run without d×d memory (≈ 8 TB if dense)."""
    rng = np.random.default_rng(0)
    d = 1_000_000
    x = fw.array
    finite = lambda v: bool(np.isfinite(fw.result(v, np.float64)))  # noqa: E731
    p = gd.Gaussian.diag(x(rng.standard_normal(d)), logvar=x(rng.standard_normal(d)))
    assert finite(gd.kl(p, _standard(fw, d)))
    lr_p = gd.Gaussian.lowrank(x(np.zeros(d)), x(rng.standard_normal((d, 4))), x(np.ones(d)))
    lr_q = gd.Gaussian.lowrank(x(np.ones(d)), x(rng.standard_normal((d, 4))), x(np.full(d, 2.0)))
    assert finite(gd.kl(lr_p, lr_q)) and finite(gd.kl(lr_p, p))


@cache
def _lowrank_near_pair(delta: float, ranks: tuple[int, int]) -> tuple[tuple, mp.mpf]:
    """(mean1, w1, v1, mean2, w2, v2) and their KL in mpmath (≈ 3 s, shared by frameworks).

    The narrower factor is the wider one's leading columns; the extra column is ~delta.
    """
    rng = np.random.default_rng(9)
    d, k = 40, max(ranks)
    base_w, base_v = rng.standard_normal((d, k)), rng.uniform(0.5, 2.0, d)
    w1 = base_w + delta * rng.standard_normal((d, k))
    v1 = base_v * (1 + delta * rng.uniform(-1, 1, d))
    w1, w2 = w1[:, :ranks[0]], base_w[:, :ranks[1]]
    if ranks[0] > ranks[1]:
        w1[:, -1] *= delta
    elif ranks[1] > ranks[0]:
        w2 = base_w.copy()
        w2[:, -1] *= delta
    mean1, mean2 = delta * rng.standard_normal(d), np.zeros(d)

    def exact(w, v):
        m = mpf_matrix(w)
        return m * m.T + mp.diag(mpf_vector(v))

    reference = mp_kl(mpf_vector(mean1), exact(w1, v1), mpf_vector(mean2), exact(w2, base_v))
    return (mean1, w1, v1, mean2, w2, base_v), reference


@pytest.mark.parametrize("delta", [1e-3, pytest.param(1e-7, marks=pytest.mark.exhaustive),
                                   1e-11])
@pytest.mark.parametrize("ranks", [(3, 3), (3, 2), (2, 3)])
def test_lowrank_near_identical_in_high_dimension(fw, delta, ranks):
    """O(d k²) route for near-identical low-rank pairs (no d×d matrix), d = 40, mixed ranks."""
    (mean1, w1, v1, mean2, w2, v2), reference = _lowrank_near_pair(delta, ranks)
    p = gd.Gaussian.lowrank(fw.array(mean1), fw.array(w1), fw.array(v1))
    q = gd.Gaussian.lowrank(fw.array(mean2), fw.array(w2), fw.array(v2))
    value = fw.result(gd.kl(p, q), np.float64)
    assert relative_error(value, reference) < KL_RTOL

"""Conformance: every covariance structure against its dense twin and the mpmath reference.

Each structure is one ``Case`` (how to build it, how to nudge it, its covariance in mpmath from
the exact inputs) and one ``TestX(Conformance)`` subclass; every check below is inherited.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

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
    """A structured Gaussian with the exact (mpmath) covariance of its float inputs."""

    gaussian: gd.Gaussian
    mp_cov: mp.matrix


def _spd(rng: np.random.Generator, n: int) -> np.ndarray:
    a = rng.standard_normal((n, n))
    return a @ a.T / n + np.eye(n)


class Case:
    """How to build one structure; subclasses fill in the three methods."""

    name = "structure"

    def build(self, rng: np.random.Generator, d: int, mean: np.ndarray) -> Built:
        raise NotImplementedError

    def nudge(self, rng: np.random.Generator, built: Built, delta: float,
              mean: np.ndarray) -> Built:
        """The same structure with every parameter moved by a relative amount ≈ delta."""
        raise NotImplementedError


class DiagonalCase(Case):
    def __init__(self, kind: str) -> None:
        self.kind = kind
        self.name = f"diag-{kind}"

    def _make(self, var: np.ndarray, mean: np.ndarray) -> Built:
        param = {"var": var, "std": np.sqrt(var), "logvar": np.log(var)}[self.kind]
        g = gd.Gaussian.diag(mean, **{self.kind: param})
        exact = {"var": lambda x: mp.mpf(x), "std": lambda x: mp.mpf(x) ** 2,
                 "logvar": lambda x: mp.exp(mp.mpf(x))}[self.kind]
        return Built(g, mp.diag([exact(float(x)) for x in param]))

    def build(self, rng, d, mean):
        self._var = rng.uniform(0.3, 3.0, d)
        return self._make(self._var, mean)

    def nudge(self, rng, built, delta, mean):
        var = self._var * (1 + delta * rng.uniform(-1, 1, self._var.shape))
        return self._make(var, mean)


class IsotropicCase(Case):
    name = "isotropic"

    def build(self, rng, d, mean):
        self._var = float(rng.uniform(0.3, 3.0))
        return Built(gd.Gaussian.isotropic(mean, self._var), mp.mpf(self._var) * mp.eye(len(mean)))

    def nudge(self, rng, built, delta, mean):
        var = self._var * (1 + delta)
        return Built(gd.Gaussian.isotropic(mean, var), mp.mpf(var) * mp.eye(len(mean)))


class LowRankCase(Case):
    name = "lowrank"

    def _make(self, factor, var, mean):
        w = mpf_matrix(factor)
        return Built(gd.Gaussian.lowrank(mean, factor, var), w * w.T + mp.diag(mpf_vector(var)))

    def build(self, rng, d, mean):
        self._factor = rng.standard_normal((d, 2))
        self._var = rng.uniform(0.5, 2.0, d)
        return self._make(self._factor, self._var, mean)

    def nudge(self, rng, built, delta, mean):
        factor = self._factor + delta * rng.standard_normal(self._factor.shape)
        var = self._var * (1 + delta * rng.uniform(-1, 1, self._var.shape))
        return self._make(factor, var, mean)


class KroneckerCase(Case):
    name = "kronecker"

    @staticmethod
    def _mp_kron(a, b):
        p, q = len(a), len(b)
        out = mp.matrix(p * q, p * q)
        for i, j, k, m in itertools.product(range(p), range(q), range(p), range(q)):
            out[i * q + j, k * q + m] = mp.mpf(float(a[i][k])) * mp.mpf(float(b[j][m]))
        return out

    def build(self, rng, d, mean):
        p = 2
        self._a, self._b = _spd(rng, p), _spd(rng, d // p)
        return Built(gd.Gaussian.kronecker(mean, self._a, self._b), self._mp_kron(self._a, self._b))

    def nudge(self, rng, built, delta, mean):
        ea, eb = rng.standard_normal(self._a.shape), rng.standard_normal(self._b.shape)
        a = self._a + delta * (ea + ea.T) / 4
        b = self._b + delta * (eb + eb.T) / 4
        return Built(gd.Gaussian.kronecker(mean, a, b), self._mp_kron(a, b))


class DenseCase(Case):
    def __init__(self, form: str) -> None:
        self.form = form
        self.name = f"dense-{form}"

    def _make(self, cov, mean):
        if self.form == "cov":
            return Built(gd.Gaussian(mean, cov), mpf_matrix(cov))
        if self.form == "scale_tril":
            factor = np.linalg.cholesky(cov)
            f = mpf_matrix(factor)
            return Built(gd.Gaussian.from_scale_tril(mean, factor), f * f.T)
        precision = np.linalg.inv(cov)
        precision = (precision + precision.T) / 2
        return Built(gd.Gaussian.from_precision(mean, precision), mp.inverse(mpf_matrix(precision)))

    def build(self, rng, d, mean):
        self._cov = _spd(rng, d)
        return self._make(self._cov, mean)

    def nudge(self, rng, built, delta, mean):
        e = rng.standard_normal(self._cov.shape)
        return self._make(self._cov + delta * (e + e.T) / 4, mean)


CASES = [DiagonalCase("var"), DiagonalCase("std"), DiagonalCase("logvar"), IsotropicCase(),
         LowRankCase(), KroneckerCase(), DenseCase("cov"), DenseCase("scale_tril"),
         DenseCase("precision")]


def _twin(g: gd.Gaussian) -> gd.Gaussian:
    return gd.Gaussian(g.mean, g.covariance_matrix())


class Conformance:
    case: Case

    @pytest.fixture(params=[0, 1, 2], ids=lambda i: f"d{i}")
    def built(self, request) -> Built:
        rng = np.random.default_rng(100 + request.param)
        d = DIMS[request.param]
        return self.case.build(rng, d, rng.standard_normal(d))

    def test_structure_agrees_with_dense_twin(self, built):
        g = built.gaussian
        cov = g.covariance_matrix()
        exact = np.array(built.mp_cov.tolist(), dtype=float)
        np.testing.assert_allclose(cov, exact, rtol=0, atol=1e-14 * np.abs(exact).max())
        rng = np.random.default_rng(7)
        x = rng.standard_normal((5, g.dim))
        twin = _twin(g)
        np.testing.assert_allclose(g.cov.logdet(), twin.cov.logdet(), rtol=TWIN_RTOL, atol=1e-14)
        np.testing.assert_allclose(g.cov.mahalanobis(x), twin.cov.mahalanobis(x), rtol=TWIN_RTOL)
        np.testing.assert_allclose(g.cov.diagonal(), np.diag(cov), rtol=TWIN_RTOL)
        np.testing.assert_allclose(g.cov.inverse_diagonal(), np.diag(np.linalg.inv(cov)),
                                   rtol=TWIN_RTOL)
        cols = rng.standard_normal((g.dim, 3))
        np.testing.assert_allclose(g.cov.matmul(cols), cov @ cols, rtol=TWIN_RTOL, atol=1e-13)
        root = g.cov.color(np.eye(g.cov.noise_dim)).T  # columns S e_i
        np.testing.assert_allclose(root @ root.T, cov, rtol=TWIN_RTOL, atol=1e-13)
        np.testing.assert_allclose(gd.log_prob(g, x), gd.log_prob(twin, x), rtol=TWIN_RTOL)
        np.testing.assert_allclose(gd.entropy(g), gd.entropy(twin), rtol=TWIN_RTOL, atol=1e-14)

    def test_kl_with_itself_is_exactly_zero(self, built):
        assert gd.kl(built.gaussian, built.gaussian) == 0.0

    @pytest.mark.parametrize("other", CASES, ids=lambda c: c.name)
    def test_kl_against_every_structure_matches_dense_and_mpmath(self, built, other):
        g = built.gaussian
        rng = np.random.default_rng(11)
        partner = other.build(rng, g.dim, rng.standard_normal(g.dim))
        m1, m2 = mpf_vector(g.mean), mpf_vector(partner.gaussian.mean)
        for p, q, sp, sq, mp1, mp2 in ((g, partner.gaussian, built.mp_cov, partner.mp_cov, m1, m2),
                                       (partner.gaussian, g, partner.mp_cov, built.mp_cov, m2, m1)):
            value = gd.kl(p, q)
            assert relative_error(value, mp_kl(mp1, sp, mp2, sq)) < KL_RTOL
            np.testing.assert_allclose(value, gd.kl(_twin(p), _twin(q)), rtol=KL_RTOL)

    @pytest.mark.parametrize("delta", [1e-2, 1e-5, 1e-8, 1e-12])
    def test_near_identical_matches_mpmath(self, built, delta):
        rng = np.random.default_rng(5)
        g = built.gaussian
        mean = g.mean + delta * rng.standard_normal(g.dim)
        near = self.case.nudge(rng, built, delta, mean)
        for p, q, sp, sq in ((near.gaussian, g, near.mp_cov, built.mp_cov),
                             (g, near.gaussian, built.mp_cov, near.mp_cov)):
            reference = mp_kl(mpf_vector(p.mean), sp, mpf_vector(q.mean), sq)
            assert relative_error(gd.kl(p, q), reference) < KL_RTOL

    def test_batch_equals_loop(self, built):
        g = built.gaussian
        rng = np.random.default_rng(3)
        means = g.mean + rng.standard_normal((4, g.dim))
        batch_p = gd.Gaussian(means, g.cov)
        q = gd.Gaussian(np.zeros(g.dim), g.cov)
        values = gd.kl(batch_p, q)
        assert values.shape == (4,)
        for i in range(4):
            np.testing.assert_allclose(values[i], gd.kl(gd.Gaussian(means[i], g.cov), q),
                                       rtol=1e-15)

    def test_monte_carlo_agrees(self, built):
        g = built.gaussian
        q = gd.Gaussian(np.zeros(g.dim), np.eye(g.dim))
        exact = gd.kl(g, q)
        mc = gd.kl_mc(g, q, n=40_000, seed=1)
        assert abs(mc.zscore(exact)) < 4.5


def _conformance(case: Case) -> type:
    return type(f"Test_{case.name}", (Conformance,), {"case": case})


for _case in CASES:
    globals()[f"Test_{_case.name.replace('-', '_')}"] = _conformance(_case)


def test_vae_kl_exact_across_log_variances():
    """KL(N(μ, diag e^ℓ) ‖ N(0, I)) = ½ Σ (e^ℓ − 1 − ℓ + μ²), no overflow from ℓ = −700 to 700."""
    for ell in (-700.0, -30.0, -1e-9, 0.0, 1e-12, 3.0, 700.0):
        logvar = np.full(8, ell)
        mean = np.full(8, 1e-3)
        x = mp.mpf(ell)
        reference = 8 * (mp.exp(x) - 1 - x + mp.mpf(1e-3) ** 2) / 2
        value = gd.kl(gd.Gaussian.diag(mean, logvar=logvar), gd.Gaussian.standard(8))
        assert np.isfinite(value)
        assert relative_error(value, reference) < KL_RTOL


def test_vae_kl_float32_near_prior():
    """The float32 VAE posterior near its prior: every library measured gets this wrong."""
    logvar = np.full(32, 1e-4, dtype=np.float32)
    mean = np.full(32, 1e-4, dtype=np.float32)
    value = gd.kl(gd.Gaussian.diag(mean, logvar=logvar), gd.Gaussian.standard(32, np.float32))
    assert value.dtype == np.float32
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


def test_structures_never_densify_at_scale():
    """d = 10⁶ diagonal and low-rank (k = 4) pairs run without d×d memory (≈ 8 TB if dense)."""
    rng = np.random.default_rng(0)
    d = 1_000_000
    p = gd.Gaussian.diag(rng.standard_normal(d), logvar=rng.standard_normal(d))
    assert np.isfinite(gd.kl(p, gd.Gaussian.standard(d)))
    lr_p = gd.Gaussian.lowrank(np.zeros(d), rng.standard_normal((d, 4)), np.ones(d))
    lr_q = gd.Gaussian.lowrank(np.ones(d), rng.standard_normal((d, 4)), np.full(d, 2.0))
    assert np.isfinite(gd.kl(lr_p, lr_q)) and np.isfinite(gd.kl(lr_p, p))



@pytest.mark.parametrize("delta", [1e-3, 1e-7, 1e-11])
@pytest.mark.parametrize("ranks", [(3, 3), (3, 2), (2, 3)])
def test_lowrank_near_identical_in_high_dimension(delta, ranks):
    """O(d k²) route for near-identical low-rank pairs (no d×d matrix), d = 40, mixed ranks.

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
    value = gd.kl(gd.Gaussian.lowrank(mean1, w1, v1), gd.Gaussian.lowrank(mean2, w2, base_v))
    assert relative_error(value, reference) < KL_RTOL

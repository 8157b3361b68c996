"""Gaussians with positive semidefinite (possibly singular) covariances: ``Gaussian.semidefinite``.

W₂ against 50-digit mpmath. A rank-r covariance is built as Σ = fl(A Aᵀ) from a d×r factor A,
and the reference is W₂² of the exact A Aᵀ, from the factors: T = ‖A‖² + ‖B‖² − 2‖AᵀB‖_* (the
nonzero eigenvalues of Σ₁Σ₂ are the squared singular values of AᵀB), so the reference never
takes a square root of a rounded zero eigenvalue. The rounding of fl(A Aᵀ) itself moves W₂² by
≈ d·u·tr Σ: near pairs are held to that absolute bound, separated ones to 1e-13 relative. Full-
rank covariances given through ``semidefinite`` are held to the positive-definite route's 1e-13
on near pairs too. FID cases compare with ``frechet_distance`` from the samples (exact for rank-
deficient sample covariances, tests/test_wasserstein.py).
"""

from __future__ import annotations

import pickle
from typing import Any

import mpmath as mp
import numpy as np
import pytest

import gaussdiv as gd
from gaussdiv.errors import (
    NonFiniteError,
    NotPositiveDefiniteError,
    NotSemidefiniteError,
    NotSymmetricError,
    ShapeError,
)

mp.mp.dps = 50
EPS = float(np.finfo(np.float64).eps)
DELTAS = (1e-1, 1e-2, 1e-4, 1e-6, 1e-8, 1e-10, 1e-12)


def mp_w2_factors(m1: np.ndarray, a: np.ndarray, m2: np.ndarray, b: np.ndarray) -> mp.mpf:
    """W₂² of N(m1, A Aᵀ) and N(m2, B Bᵀ) (exact products), 50 digits."""
    fa, fb = mp.matrix(a.tolist()), mp.matrix(b.tolist())
    nuclear = mp.fsum(mp.svd_r(fa.T * fb, compute_uv=False))
    mean = mp.fsum((mp.mpf(float(x)) - mp.mpf(float(y))) ** 2 for x, y in zip(m1, m2, strict=True))
    return mean + mp.fsum(x * x for x in fa) + mp.fsum(x * x for x in fb) - 2 * nuclear


def mp_w2_matrices(m1: np.ndarray, s1: np.ndarray, m2: np.ndarray, s2: np.ndarray) -> mp.mpf:
    """W₂² of two positive definite matrices as given (Cholesky route in mpmath)."""
    a, b = mp.matrix(s1.tolist()), mp.matrix(s2.tolist())
    factor = mp.cholesky(a)
    k = factor.T * b * factor
    root = mp.fsum(mp.sqrt(max(x, 0)) for x in mp.eigsy((k + k.T) / 2, eigvals_only=True))
    mean = mp.fsum((mp.mpf(float(x)) - mp.mpf(float(y))) ** 2 for x, y in zip(m1, m2, strict=True))
    return mean + mp.fsum(a[i, i] + b[i, i] for i in range(a.rows)) - 2 * root


def rel(value: Any, reference: mp.mpf) -> float:
    return float(abs((mp.mpf(float(value)) - reference) / reference))


def w2sq(p: gd.Gaussian, q: gd.Gaussian) -> float:
    value = float(gd.wasserstein(p, q, squared=True))
    assert np.isfinite(value) and value >= 0
    return value


def factor(rng: np.random.Generator, d: int, r: int) -> np.ndarray:
    return rng.standard_normal((d, r)) * rng.uniform(0.5, 2.0, r)


# ------------------------------------------------------------------------------ construction
def test_rank_is_exact_for_products_of_thin_factors() -> None:
    rng = np.random.default_rng(0)
    for d, r in ((4, 1), (8, 3), (32, 31), (64, 10), (6, 6)):
        a = factor(rng, d, r)
        g = gd.Gaussian.semidefinite(np.zeros(d), a @ a.T)
        assert int(g.cov.rank()) == r
        assert np.all(g.cov.eigenvalues >= 0)
        assert np.allclose(g.cov.root() @ g.cov.root().T, a @ a.T, atol=1e-13 * np.sum(a * a))


def test_point_mass_and_nothing_modified() -> None:
    cov = np.zeros((3, 3))
    before = cov.copy()
    g = gd.Gaussian.semidefinite(np.ones(3), cov)
    assert int(g.cov.rank()) == 0 and cov.flags.writeable and np.array_equal(cov, before)
    q = gd.Gaussian(np.zeros(3), np.diag([1.0, 2.0, 3.0]))
    assert w2sq(g, q) == 3.0 + 6.0  # ‖Δμ‖² + tr Σ₂
    assert np.array_equal(gd.sample(g, 4, seed=1), np.ones((4, 3)))


def test_batch_operations_and_pickle() -> None:
    rng = np.random.default_rng(1)
    a = rng.standard_normal((4, 5, 2))
    g = gd.Gaussian.semidefinite(rng.standard_normal((4, 5)), a @ np.swapaxes(a, -1, -2))
    assert g.batch_shape == (4,) and g[1:3].batch_shape == (2,)
    assert np.array_equal(pickle.loads(pickle.dumps(g)).cov.eigenvalues, g.cov.eigenvalues)
    joined = gd.stack([g[0], g[3]])
    q = gd.Gaussian(np.zeros(5), np.eye(5))
    both = gd.wasserstein(joined, q)
    assert both[0] == gd.wasserstein(g[0], q) and both[1] == gd.wasserstein(g[3], q)
    assert np.allclose(gd.pairwise("wasserstein", g),
                       gd.wasserstein(g.reshape(4, 1), g.reshape(1, 4)), rtol=1e-14, atol=0)


# ------------------------------------------------------------------------------ W₂ accuracy
@pytest.mark.parametrize(("d", "r1", "r2"), [(2, 1, 1), (5, 2, 3), (8, 3, 8), (12, 11, 4),
                                             (24, 6, 6)])
def test_separated_rank_deficient_pairs(d: int, r1: int, r2: int) -> None:
    rng = np.random.default_rng(d * 100 + r1)
    a, b = factor(rng, d, r1), factor(rng, d, r2)
    m1, m2 = rng.standard_normal(d), rng.standard_normal(d)
    p, q = gd.Gaussian.semidefinite(m1, a @ a.T), gd.Gaussian.semidefinite(m2, b @ b.T)
    reference = mp_w2_factors(m1, a, m2, b)
    assert rel(w2sq(p, q), reference) <= 1e-13
    assert rel(w2sq(q, p), reference) <= 1e-13


@pytest.mark.parametrize("delta", DELTAS)
@pytest.mark.parametrize(("d", "r"), [(3, 1), (6, 3), (16, 8)])
def test_near_rank_deficient_pairs(d: int, r: int, delta: float) -> None:
    """B = A + δE, μ₂ = μ₁ (T ~ δ² tr Σ): within d·u·(tr Σ₁ + tr Σ₂) of the exact-factor value,
    the size of the rounding of fl(A Aᵀ) itself (the Procrustes sum of squares is well inside
    it: ≈ u·√(tr Σ · T)); the textbook sum is off by ≈ √u·tr Σ."""
    rng = np.random.default_rng(d + r)
    a = factor(rng, d, r)
    b = a + delta * rng.standard_normal((d, r))
    m = rng.standard_normal(d)
    p, q = gd.Gaussian.semidefinite(m, a @ a.T), gd.Gaussian.semidefinite(m, b @ b.T)
    reference = mp_w2_factors(m, a, m, b)
    bound = d * EPS * (np.sum(a * a) + np.sum(b * b))
    for value in (w2sq(p, q), w2sq(q, p)):
        assert float(abs(mp.mpf(value) - reference)) <= bound


@pytest.mark.parametrize("seed", range(6))
def test_ranges_that_differ_in_small_directions(seed: int) -> None:
    """Σ₂ = Σ₁ + δ²eeᵀ (Σ₂ has one direction more, eigenvalue δ²‖e‖² down to 1e-10 of the
    largest), with scales 1e-3 … 1e3, both orders (the eigenbasis form split over Σ₁'s null
    space gave 4e-3 relative errors one way round, and refused the other): within
    d·u·(tr Σ₁ + tr Σ₂) + 1e-13 relative."""
    rng = np.random.default_rng(100 + seed)
    for _ in range(8):
        d = int(rng.integers(2, 12))
        r = int(rng.integers(1, d))
        delta = 10.0 ** rng.uniform(-6, 0)
        a = rng.standard_normal((d, r)) * 10.0 ** rng.uniform(-3, 3)
        b = np.hstack([a, delta * rng.standard_normal((d, 1))])
        m1 = rng.standard_normal(d)
        m2 = m1 + delta * rng.standard_normal(d)
        p, q = gd.Gaussian.semidefinite(m1, a @ a.T), gd.Gaussian.semidefinite(m2, b @ b.T)
        reference = mp_w2_factors(m1, a, m2, b)
        bound = d * EPS * (np.sum(a * a) + np.sum(b * b)) + 1e-13 * float(reference)
        for value in (w2sq(p, q), w2sq(q, p)):
            assert float(abs(mp.mpf(value) - reference)) <= bound, (d, r, delta)


@pytest.mark.parametrize("seed", range(4))
def test_equal_ranks_with_different_small_directions(seed: int) -> None:
    """Two rank-r covariances sharing r − 1 large directions, each with one small direction of
    its own (eigenvalue 1e-10 … 1e-2, rotated): W₂² = twice that eigenvalue. The eigenbasis
    form was off by up to 0.5 relative here without any check noticing; Procrustes holds."""
    rng = np.random.default_rng(200 + seed)
    for _ in range(10):
        d = int(rng.integers(3, 10))
        r = int(rng.integers(1, d - 1))
        q_basis, _ = np.linalg.qr(rng.standard_normal((d, d)))
        shared = q_basis[:, :r] * np.sqrt(rng.uniform(0.5, 2.0, r))
        small = 10.0 ** rng.uniform(-10, -2)
        a = np.hstack([shared, np.sqrt(small) * q_basis[:, r:r + 1]])
        b = np.hstack([shared, np.sqrt(small) * q_basis[:, r + 1:r + 2]])
        m = rng.standard_normal(d)
        p, q = gd.Gaussian.semidefinite(m, a @ a.T), gd.Gaussian.semidefinite(m, b @ b.T)
        reference = mp_w2_factors(m, a, m, b)
        bound = d * EPS * (np.sum(a * a) + np.sum(b * b))
        for value in (w2sq(p, q), w2sq(q, p)):
            assert float(abs(mp.mpf(value) - reference)) <= bound, (d, r, small)


@pytest.mark.parametrize("delta", DELTAS)
def test_near_full_rank_pairs_keep_the_definite_accuracy(delta: float) -> None:
    """A positive definite Σ given through ``semidefinite`` is exact as Gaussian(mean, cov)."""
    rng = np.random.default_rng(7)
    d = 6
    a = rng.standard_normal((d, d))
    s1 = a @ a.T / d + np.eye(d)
    e = rng.standard_normal((d, d))
    s2 = s1 + delta * (e + e.T)
    m1 = rng.standard_normal(d)
    m2 = m1 + delta * rng.standard_normal(d)
    p, q = gd.Gaussian.semidefinite(m1, s1), gd.Gaussian.semidefinite(m2, s2)
    reference = mp_w2_matrices(m1, s1, m2, s2)
    assert rel(w2sq(p, q), reference) <= 1e-13
    assert rel(w2sq(p, gd.Gaussian(m2, s2)), reference) <= 1e-13


@pytest.mark.parametrize("partner", ["full", "diag", "lowrank", "precision"])
def test_rank_deficient_against_every_structure(partner: str) -> None:
    rng = np.random.default_rng(3)
    d, r = 6, 2
    a = factor(rng, d, r)
    m1, m2 = rng.standard_normal(d), rng.standard_normal(d)
    p = gd.Gaussian.semidefinite(m1, a @ a.T)
    if partner == "full":
        b = rng.standard_normal((d, d)) / np.sqrt(d) + np.eye(d)
        q = gd.Gaussian.from_scale_tril(m2, np.linalg.cholesky(b @ b.T))
        fb = np.linalg.cholesky(b @ b.T)
    elif partner == "diag":
        std = rng.uniform(0.5, 2, d)
        q, fb = gd.Gaussian.diag(m2, std=std), np.diag(std)
    elif partner == "lowrank":
        w, std = rng.standard_normal((d, 2)), np.full(d, 0.5)  # W Wᵀ + 0.25 I = [W, 0.5 I][…]ᵀ
        q, fb = gd.Gaussian.lowrank(m2, w, std**2), np.hstack([w, np.diag(std)])
    else:
        r_factor = np.tril(rng.standard_normal((d, d))) * 0.3 + 2 * np.eye(d)
        q, fb = gd.Gaussian.from_precision_tril(m2, r_factor), np.linalg.inv(r_factor).T
    reference = mp_w2_factors(m1, a, m2, fb)
    assert rel(w2sq(p, q), reference) <= 1e-13
    assert rel(w2sq(q, p), reference) <= 1e-13


def test_identical_inputs_give_exactly_zero() -> None:
    rng = np.random.default_rng(4)
    a = factor(rng, 10, 4)
    m = rng.standard_normal(10)
    p, q = gd.Gaussian.semidefinite(m, a @ a.T), gd.Gaussian.semidefinite(m.copy(), a @ a.T)
    assert w2sq(p, q) == 0.0 and float(gd.wasserstein(p, p)) == 0.0


def test_float32() -> None:
    rng = np.random.default_rng(5)
    a, b = factor(rng, 8, 3), factor(rng, 8, 5)
    m1, m2 = rng.standard_normal(8), rng.standard_normal(8)
    s1, s2 = (a @ a.T).astype(np.float32), (b @ b.T).astype(np.float32)
    p = gd.Gaussian.semidefinite(m1.astype(np.float32), s1)
    q = gd.Gaussian.semidefinite(m2.astype(np.float32), s2)
    value = gd.wasserstein(p, q, squared=True)
    assert value.dtype == np.float32 and int(p.cov.rank()) == 3
    assert rel(value, mp_w2_factors(m1, a, m2, b)) <= 1e-5


@pytest.mark.parametrize(("d", "n_a", "n_b"), [(64, 40, 25), (64, 100, 30)])
def test_fid_statistics_agree_with_the_samples(d: int, n_a: int, n_b: int) -> None:
    """pytorch-fid's (mu, sigma) route on rank-deficient np.cov matrices, against
    frechet_distance from the samples: ≤ 1e-12 (the textbook sqrtm route: ≈ 2e-8)."""
    rng = np.random.default_rng(d + n_a)
    xa = rng.standard_normal((n_a, d))
    xb = 1.3 * rng.standard_normal((n_b, d)) + 0.1
    p = gd.Gaussian.semidefinite(xa.mean(0), np.cov(xa, rowvar=False))
    q = gd.Gaussian.semidefinite(xb.mean(0), np.cov(xb, rowvar=False))
    assert int(q.cov.rank()) == n_b - 1
    fid = float(gd.frechet_distance(xa, xb))
    assert abs(w2sq(p, q) - fid) <= 1e-12 * fid


@pytest.mark.slow
def test_fid_statistics_2048() -> None:
    rng = np.random.default_rng(2048)
    xa, xb = rng.standard_normal((500, 2048)), 1.3 * rng.standard_normal((400, 2048)) + 0.1
    p = gd.Gaussian.semidefinite(xa.mean(0), np.cov(xa, rowvar=False))
    q = gd.Gaussian.semidefinite(xb.mean(0), np.cov(xb, rowvar=False))
    assert (int(p.cov.rank()), int(q.cov.rank())) == (499, 399)
    fid = float(gd.frechet_distance(xa, xb))
    assert abs(w2sq(p, q) - fid) <= 1e-12 * fid


def test_sampling_stays_on_the_support() -> None:
    rng = np.random.default_rng(6)
    a = factor(rng, 5, 2)
    m = rng.standard_normal(5)
    g = gd.Gaussian.semidefinite(m, a @ a.T)
    x = gd.sample(g, 20_000, seed=0)
    q, _ = np.linalg.qr(a, mode="complete")
    off = (x - m) @ q[:, 2:]  # components outside range(A)
    assert np.max(np.abs(off)) <= 1e-12 * np.max(np.abs(x - m))
    assert np.allclose(np.cov(x, rowvar=False), a @ a.T, atol=0.05 * np.max(np.abs(a @ a.T)))


# ------------------------------------------------------------------------------ frameworks
@pytest.mark.timeout(120)
def test_torch_and_jax_agree_with_numpy() -> None:
    torch = pytest.importorskip("torch")
    jax = pytest.importorskip("jax")
    jnp = jax.numpy
    rng = np.random.default_rng(8)
    a = rng.standard_normal((3, 5, 2))
    s1, m1 = a @ np.swapaxes(a, -1, -2), rng.standard_normal((3, 5))
    s2 = np.eye(5) + 0.1 * np.ones((5, 5))
    expected = gd.wasserstein(gd.Gaussian.semidefinite(m1, s1), gd.Gaussian(np.zeros(5), s2))
    mt = torch.tensor(m1, requires_grad=True)
    s2t = torch.tensor(s2, requires_grad=True)
    got = gd.wasserstein(gd.Gaussian.semidefinite(mt, torch.tensor(s1)),
                         gd.Gaussian(torch.zeros(5, dtype=torch.float64), s2t), squared=True)
    assert np.allclose(got.detach().numpy(), expected**2, rtol=1e-13)
    got.sum().backward()  # finite gradients in the means and a definite partner's Σ
    assert bool(torch.isfinite(mt.grad).all()) and bool(torch.isfinite(s2t.grad).all())
    jax.config.update("jax_enable_x64", True)
    jitted = jax.jit(lambda m, s: gd.wasserstein(gd.Gaussian.semidefinite(m, s),
                                                 gd.Gaussian(jnp.zeros(5), jnp.asarray(s2))))
    assert np.allclose(np.asarray(jitted(jnp.asarray(m1), jnp.asarray(s1))), expected,
                       rtol=1e-13)


# ------------------------------------------------------------------------------ bad input
def test_negative_eigenvalue_names_the_element() -> None:
    cov = np.stack([np.eye(3), np.diag([1.0, 0.0, -1e-3])])
    with pytest.raises(NotSemidefiniteError, match=r"cov is not positive semidefinite at "
                                                   r"batch index 1: .*-0\.001"):
        gd.Gaussian.semidefinite(np.zeros(3), cov)
    with pytest.raises(NotPositiveDefiniteError):  # the family it belongs to
        gd.Gaussian.semidefinite(np.zeros(2), -np.eye(2))


def test_rounding_below_zero_is_accepted() -> None:
    rng = np.random.default_rng(9)
    x = rng.standard_normal((10, 30))  # np.cov of 10 rows in 30-d: 20 zero eigenvalues ± u
    g = gd.Gaussian.semidefinite(x.mean(0), np.cov(x, rowvar=False))
    assert int(g.cov.rank()) == 9


@pytest.mark.parametrize(("cov", "error", "match"), [
    ([[1.0, 0.5], [0.0, 1.0]], NotSymmetricError, "cov is not symmetric"),
    ([[1.0, np.nan], [np.nan, 1.0]], NonFiniteError, "cov has a NaN"),
    ([1.0, 2.0], ShapeError, r"cov must have shape \(\.\.\., d, d\)"),
])
def test_malformed_matrices(cov: Any, error: type, match: str) -> None:
    with pytest.raises(error, match=match):
        gd.Gaussian.semidefinite(np.zeros(2), cov)


@pytest.mark.parametrize("call", [
    lambda p, q: gd.kl(q, p), lambda p, q: gd.renyi(p, q, 0.5), lambda p, q: gd.hellinger(p, q),
    lambda p, q: gd.tv_bounds(p, q), lambda p, q: gd.entropy(p), lambda p, q: p.log_prob(q.mean),
    lambda p, q: gd.pairwise("kl", q, p), lambda p, q: gd.kl_mc(p, q, 100, seed=0),
])
def test_density_functions_refuse_naming_the_argument(call: Any) -> None:
    p = gd.Gaussian.semidefinite(np.zeros(2), [[1.0, 0.0], [0.0, 0.0]])
    q = gd.Gaussian(np.zeros(2), np.eye(2))
    with pytest.raises(NotPositiveDefiniteError,
                       match=r"(p|q|P|Q) has a semidefinite covariance.*wasserstein"):
        call(p, q)


def test_structure_methods_without_meaning_refuse() -> None:
    p = gd.Gaussian.semidefinite(np.zeros(2), [[1.0, 0.0], [0.0, 0.0]])
    for attempt in (lambda: p.precision_matrix, lambda: p.scale_tril, p.cov.logdet):
        with pytest.raises(NotPositiveDefiniteError, match="semidefinite covariance"):
            attempt()


def test_dask_chunks() -> None:
    da = pytest.importorskip("dask.array")
    dask = pytest.importorskip("dask")
    rng = np.random.default_rng(10)
    a = rng.standard_normal((8, 4, 2))
    s, m = a @ np.swapaxes(a, -1, -2), rng.standard_normal((8, 4))
    lazy = gd.Gaussian.semidefinite(da.from_array(m, chunks=(4, 4)),
                                    da.from_array(s, chunks=(4, 4, 4)))
    q = gd.Gaussian(np.zeros(4), np.eye(4))
    with dask.config.set(scheduler="synchronous"):
        values = gd.wasserstein(lazy, q).compute()
    assert np.array_equal(values, gd.wasserstein(gd.Gaussian.semidefinite(m, s), q))
    with pytest.raises(NotPositiveDefiniteError, match="kl: q has a semidefinite covariance"):
        gd.kl(q, lazy)


def test_interop() -> None:
    """SciPy has a degenerate normal (allow_singular), torch.distributions has none."""
    g = gd.Gaussian.semidefinite(np.array([1.0, 2.0]), [[1.0, 0.0], [0.0, 0.0]])
    frozen = gd.to_scipy(g)
    assert np.isclose(frozen.logpdf([1.0, 2.0]), -0.5 * np.log(2 * np.pi))  # 1-d support
    pytest.importorskip("torch")
    with pytest.raises(NotPositiveDefiniteError, match="to_torch: g has a semidefinite"):
        gd.to_torch(g)


@pytest.mark.timeout(120)
def test_jit_turns_a_negative_eigenvalue_into_nan() -> None:
    """Under tracing nothing is checked: an indefinite Σ gives NaN (as Gaussian does), not 0."""
    jax = pytest.importorskip("jax")
    jax.config.update("jax_enable_x64", True)
    jnp = jax.numpy
    q = gd.Gaussian(jnp.zeros(3), jnp.eye(3))
    w2 = jax.jit(lambda s: gd.wasserstein(gd.Gaussian.semidefinite(jnp.zeros(3), s), q))
    assert np.isnan(float(w2(-jnp.eye(3))))
    assert float(w2(jnp.diag(jnp.array([1.0, 0.0, 0.0])))) == pytest.approx(np.sqrt(2.0))

"""W₂ between Gaussians and the Fréchet distance of samples, against 50-digit mpmath.

References take the float inputs as exact. W₂² follows the definition: Σ₁^½ by ``mp.eigsy``,
then the eigenvalues of Σ₁^½Σ₂Σ₁^½ by ``mp.eigsy`` (for the one d = 64 case, the same eigenvalues
as those of L₁ᵀΣ₂L₁ with mpmath's Cholesky factor, 4× faster; both routes are compared at
d = 6). The FID reference builds the sample covariances in mpmath from the samples.

Near pairs: Σ₂ = Σ₁ + δE, μ₂ = μ₁ + δe, δ from 1e-1 to 1e-12 — the textbook sum loses every
digit from δ ≈ 1e-8 (test_textbook_sum_fails_where_this_holds shows it).
"""

from __future__ import annotations

from typing import Any

import mpmath as mp
import numpy as np
import pytest

import gaussdiv as gd
from gaussdiv.divergences.wasserstein import frechet_distance, wasserstein
from gaussdiv.errors import (
    BackendMismatchError,
    DimensionMismatchError,
    DtypeError,
    NonFiniteError,
    ShapeError,
)

DPS = 50
mp.mp.dps = DPS  # as tests/mpref.py: reference matrices are built before the W₂ routes run
TOL = 1e-13
DELTAS = (1e-1, 1e-2, 1e-4, 1e-6, 1e-8, 1e-10, 1e-12)


# ------------------------------------------------------------------------------ references
def mp_matrix(a: np.ndarray) -> mp.matrix:
    return mp.matrix([[mp.mpf(float(v)) for v in row] for row in np.atleast_2d(a)])


def mp_sqrt_psd(s: mp.matrix) -> mp.matrix:
    """The symmetric PSD square root by mp.eigsy (eigenvalues rounded below 0 taken as 0)."""
    e, v = mp.eigsy(s)
    return v * mp.diag([mp.sqrt(max(x, 0)) for x in e]) * v.T


def mp_trace_root(s1: mp.matrix, s2: mp.matrix, cholesky: bool = False) -> mp.mpf:
    """tr((Σ₁^½Σ₂Σ₁^½)^½) from the eigenvalues of Σ₁^½Σ₂Σ₁^½ (or of L₁ᵀΣ₂L₁)."""
    if cholesky:
        factor = mp.cholesky(s1)
        k = factor.T * s2 * factor
    else:
        root = mp_sqrt_psd(s1)
        k = root * s2 * root
    k = (k + k.T) / 2
    return mp.fsum(mp.sqrt(max(x, 0)) for x in mp.eigsy(k, eigvals_only=True))


def mp_w2(m1: Any, s1: mp.matrix, m2: Any, s2: mp.matrix, cholesky: bool = False) -> mp.mpf:
    """W₂² of N(m1, s1) and N(m2, s2); means as float arrays, covariances as mp matrices."""
    with mp.workdps(DPS):
        mean = mp.fsum((mp.mpf(float(a)) - mp.mpf(float(b))) ** 2
                       for a, b in zip(np.ravel(m1), np.ravel(m2), strict=True))
        traces = mp.fsum(s1[i, i] + s2[i, i] for i in range(s1.rows))
        return mean + traces - 2 * mp_trace_root(s1, s2, cholesky)


def rel_err(value: Any, reference: mp.mpf) -> float:
    value = float(value)
    assert np.isfinite(value) and value >= 0, value
    if reference == 0:
        return abs(value)
    with mp.workdps(DPS):
        return float(abs((mp.mpf(value) - reference) / reference))


def spd(rng: np.random.Generator, d: int, cond: float | None = None) -> np.ndarray:
    """A Wishart-type SPD matrix, or one with eigenvalues geometric from 1 to ``cond``."""
    a = rng.standard_normal((d, d))
    if cond is None:
        return a @ a.T / d + 0.5 * np.eye(d)
    q, _ = np.linalg.qr(a)
    s = (q * np.geomspace(1, cond, d)) @ q.T
    return 0.5 * (s + s.T)


def sym(rng: np.random.Generator, d: int) -> np.ndarray:
    e = rng.standard_normal((d, d))
    return (e + e.T) / 2


def textbook(m1: np.ndarray, s1: np.ndarray, m2: np.ndarray, s2: np.ndarray) -> float:
    """The SciPy-style eigh route: Σ₁^½ by eigh, then eigvalsh of Σ₁^½Σ₂Σ₁^½."""
    e, v = np.linalg.eigh(s1)
    root = (v * np.sqrt(e)) @ v.T
    lam = np.linalg.eigvalsh(root @ s2 @ root)
    return float(np.sum((m1 - m2) ** 2) + np.trace(s1) + np.trace(s2)
                 - 2 * np.sum(np.sqrt(np.maximum(lam, 0))))


# ------------------------------------------------------------------------------ dense pairs
@pytest.mark.parametrize("d, cond", [(1, None), (2, None), (5, None), (5, 1e3), (16, None)])
def test_dense_separated(d, cond):
    rng = np.random.default_rng(d)
    m1, m2 = rng.standard_normal(d), rng.standard_normal(d)
    s1, s2 = spd(rng, d, cond), spd(rng, d, cond)
    ref = mp_w2(m1, mp_matrix(s1), m2, mp_matrix(s2))
    p, q = gd.Gaussian(m1, s1), gd.Gaussian(m2, s2)
    assert rel_err(wasserstein(p, q, squared=True), ref) <= TOL
    with mp.workdps(DPS):
        assert rel_err(wasserstein(p, q), mp.sqrt(ref)) <= TOL
    # W₂ is symmetric; the factor-given constructor is the same distribution.
    assert rel_err(wasserstein(q, p, squared=True), ref) <= TOL
    lp = gd.Gaussian.from_scale_tril(m1, np.linalg.cholesky(s1))
    ref_l = mp_w2(m1, mp_matrix(np.linalg.cholesky(s1)) * mp_matrix(np.linalg.cholesky(s1)).T,
                  m2, mp_matrix(s2))
    assert rel_err(wasserstein(lp, q, squared=True), ref_l) <= TOL


@pytest.mark.parametrize("d", [3, 12])
def test_dense_near(d):
    """Σ₂ = Σ₁ + δE, μ₂ = μ₁ + δe: relative error ≤ 1e-13 for every δ (d = 12: κ(Σ₁) = 100)."""
    rng = np.random.default_rng(10 + d)
    s1 = spd(rng, d, None if d == 3 else 100.0)
    e, m1, dm = sym(rng, d), rng.standard_normal(d), rng.standard_normal(d)
    p = gd.Gaussian(m1, s1)
    s1_mp = mp_matrix(s1)
    for delta in DELTAS:
        s2, m2 = s1 + delta * e, m1 + delta * dm
        ref = mp_w2(m1, s1_mp, m2, mp_matrix(s2))
        assert rel_err(wasserstein(p, gd.Gaussian(m2, s2), squared=True), ref) <= TOL, delta
        # covariance part alone (equal means): still relative to itself
        ref0 = mp_w2(m1, s1_mp, m1, mp_matrix(s2))
        assert rel_err(wasserstein(p, gd.Gaussian(m1, s2), squared=True), ref0) <= TOL, delta


def test_d64_against_mpmath():
    """One d = 64 case (near, δ = 1e-9, κ ≈ 10) with the Cholesky-eigenvalue reference."""
    rng = np.random.default_rng(64)
    s1 = spd(rng, 64)
    s2 = s1 + 1e-9 * sym(rng, 64)
    m1 = rng.standard_normal(64)
    m2 = m1 + 1e-9 * rng.standard_normal(64)
    ref = mp_w2(m1, mp_matrix(s1), m2, mp_matrix(s2), cholesky=True)
    value = wasserstein(gd.Gaussian(m1, s1), gd.Gaussian(m2, s2), squared=True)
    assert rel_err(value, ref) <= TOL


def test_reference_routes_agree():
    rng = np.random.default_rng(6)
    s1, s2 = mp_matrix(spd(rng, 6)), mp_matrix(spd(rng, 6))
    with mp.workdps(DPS):
        a, b = mp_trace_root(s1, s2), mp_trace_root(s1, s2, cholesky=True)
        assert abs(a - b) <= mp.mpf(10) ** (5 - DPS) * abs(a)


def test_textbook_sum_fails_where_this_holds():
    """The SciPy eigh route at δ = 1e-8 is wrong in every digit (or negative); this is not."""
    rng = np.random.default_rng(8)
    d = 8
    s1 = spd(rng, d)
    s2 = s1 + 1e-8 * sym(rng, d)
    m = np.zeros(d)
    ref = mp_w2(m, mp_matrix(s1), m, mp_matrix(s2))
    book = textbook(m, s1, m, s2)
    assert book < 0 or abs(book - float(ref)) >= float(ref)
    assert rel_err(wasserstein(gd.Gaussian(m, s1), gd.Gaussian(m, s2), squared=True),
                   ref) <= TOL


# ------------------------------------------------------------------------------ diagonals
def _diag(mean: np.ndarray, kind: str, var: np.ndarray) -> tuple[gd.Gaussian, mp.matrix]:
    """A diagonal Gaussian given as ``kind``, and its exact covariance in mpmath."""
    with mp.workdps(DPS):
        if kind == "var":
            return gd.Gaussian.diag(mean, var=var), mp.diag([mp.mpf(float(v)) for v in var])
        if kind == "std":
            std = np.sqrt(var)
            return gd.Gaussian.diag(mean, std=std), mp.diag([mp.mpf(float(s)) ** 2 for s in std])
        logvar = np.log(var)
        return (gd.Gaussian.diag(mean, logvar=logvar),
                mp.diag([mp.exp(mp.mpf(float(v))) for v in logvar]))


@pytest.mark.parametrize("kinds", [("var", "var"), ("std", "std"), ("logvar", "logvar"),
                                   ("var", "std"), ("logvar", "var")])
def test_diagonal_pairs(kinds):
    rng = np.random.default_rng(len(kinds[0]) + 7 * len(kinds[1]))
    d = 20
    v1, m1 = rng.uniform(0.1, 10, d), rng.standard_normal(d)
    cases = [(rng.uniform(0.1, 10, d), rng.standard_normal(d))]
    r, dm = rng.standard_normal(d), rng.standard_normal(d)
    cases += [(v1 * (1 + delta * r), m1 + delta * dm) for delta in DELTAS]
    p, s1 = _diag(m1, kinds[0], v1)
    for v2, m2 in cases:
        q, s2 = _diag(m2, kinds[1], v2)
        with mp.workdps(DPS):  # closed form Σ(√v₁ − √v₂)² + ‖Δμ‖², in mpmath
            ref = mp.fsum((mp.sqrt(s1[i, i]) - mp.sqrt(s2[i, i])) ** 2 for i in range(d))
            ref += mp.fsum((mp.mpf(float(a)) - mp.mpf(float(b))) ** 2
                           for a, b in zip(m1, m2, strict=True))
        assert rel_err(wasserstein(p, q, squared=True), ref) <= TOL, (kinds, v2[0])


def test_diagonal_extremes_and_isotropic():
    """Log-variances far beyond the float range of v; isotropic and standard sides."""
    d = 4
    ell = np.array([-740.0, -300.0, 300.0, 740.0])  # e^740 is beyond float64, W₂² is not
    p = gd.Gaussian.diag(np.zeros(d), logvar=ell)
    q = gd.Gaussian.diag(np.zeros(d), logvar=ell + 1e-9)
    with mp.workdps(DPS):
        ref = mp.fsum((mp.exp(mp.mpf(x) / 2) - mp.exp(mp.mpf(x + 1e-9) / 2)) ** 2 for x in ell)
    assert rel_err(wasserstein(p, q, squared=True), ref) <= TOL
    iso = gd.Gaussian.isotropic(np.ones(d), 2.0)
    std = gd.Gaussian.standard(d)
    with mp.workdps(DPS):
        ref = d + d * (mp.sqrt(2) - 1) ** 2
    assert rel_err(wasserstein(iso, std, squared=True), ref) <= TOL
    assert wasserstein(std, gd.Gaussian.standard(d)) == 0.0


# ------------------------------------------------------------------------------ mixed pairs
def _structured(kind: str, rng: np.random.Generator, d: int) -> tuple[gd.Gaussian, mp.matrix]:
    """A Gaussian of structure ``kind`` (d = 6) and its exact covariance in mpmath."""
    m = rng.standard_normal(d)
    if kind == "diag":
        v = rng.uniform(0.5, 2, d)
        return gd.Gaussian.diag(m, var=v), mp.diag([mp.mpf(float(x)) for x in v])
    if kind == "lowrank":
        w, v = rng.standard_normal((d, 2)) / 2, rng.uniform(0.5, 2, d)
        return (gd.Gaussian.lowrank(m, w, v),
                mp_matrix(w) * mp_matrix(w).T + mp.diag([mp.mpf(float(x)) for x in v]))
    if kind == "kron":
        a, b = spd(rng, 2), spd(rng, 3)
        ma, mb = mp_matrix(a), mp_matrix(b)
        kron = mp.matrix(d, d)
        for i in range(2):
            for j in range(3):
                for k in range(2):
                    for ll in range(3):
                        kron[3 * i + j, 3 * k + ll] = ma[i, k] * mb[j, ll]
        return gd.Gaussian.kronecker(m, a, b), kron
    if kind == "precision":
        lam = spd(rng, d)
        return gd.Gaussian.from_precision(m, lam), mp.inverse(mp_matrix(lam))
    s = spd(rng, d)
    return gd.Gaussian(m, s), mp_matrix(s)


@pytest.mark.parametrize("pair", [("diag", "full"), ("full", "lowrank"), ("kron", "diag"),
                                  ("lowrank", "kron"), ("precision", "full"),
                                  ("full", "precision")])
def test_mixed_separated(pair):
    rng = np.random.default_rng(sum(map(len, pair)))
    (p, s1), (q, s2) = _structured(pair[0], rng, 6), _structured(pair[1], rng, 6)
    with mp.workdps(DPS):
        ref = mp_w2(p.mean, s1, q.mean, s2)
    assert rel_err(wasserstein(p, q, squared=True), ref) <= TOL


@pytest.mark.parametrize("kind", ["diag", "lowrank", "kron"])
def test_mixed_near(kind):
    """A structured Σ₁ against a dense Σ₂ = (Σ₁ rounded to a matrix) + δE: the difference comes
    from the structure's exact double-double dense form, so δ = 1e-12 keeps its digits."""
    rng = np.random.default_rng(len(kind))
    p, s1 = _structured(kind, rng, 6)
    e = sym(rng, 6)
    for delta in (1e-2, 1e-6, 1e-12):
        s2 = np.asarray(p.covariance_matrix) + delta * e
        q = gd.Gaussian(p.mean + delta, s2)
        ref = mp_w2(p.mean, s1, q.mean, mp_matrix(s2))
        assert rel_err(wasserstein(p, q, squared=True), ref) <= TOL, delta
        assert rel_err(wasserstein(q, p, squared=True), ref) <= TOL, delta


# ------------------------------------------------------------------------------ exact zeros
@pytest.mark.parametrize("kind", ["full", "diag", "lowrank", "kron", "precision"])
def test_identical_inputs_are_exactly_zero(kind):
    p, _ = _structured(kind, np.random.default_rng(1), 6)
    q, _ = _structured(kind, np.random.default_rng(1), 6)  # equal arrays, another object
    for other in (p, q):
        assert wasserstein(p, other) == 0.0
        assert wasserstein(p, other, squared=True) == 0.0


def test_never_negative_nan_or_complex():
    """Near pairs down to δ = 1e-15 at condition numbers to 1e8, batched, float64 and float32."""
    rng = np.random.default_rng(99)
    for d in (2, 5, 9):
        for cond in (10.0, 1e4, 1e8):
            s1 = np.stack([spd(rng, d, cond) for _ in range(8)])  # eigenvalues 1 … cond
            e = np.stack([sym(rng, d) for _ in range(8)])
            e /= 2 * np.linalg.norm(e, 2, axis=(-2, -1), keepdims=True)
            s2 = s1 + 10.0 ** -rng.uniform(1, 15, (8, 1, 1)) * e
            for dtype in (np.float64, np.float32) if cond < 1e6 else (np.float64,):
                p = gd.Gaussian(np.zeros(d, dtype), s1.astype(dtype))
                q = gd.Gaussian(np.zeros(d, dtype), s2.astype(dtype))
                for value in (wasserstein(p, q, squared=True), wasserstein(q, p)):
                    assert value.dtype == dtype and np.isrealobj(value)
                    assert np.all(np.isfinite(value)) and np.all(value >= 0)


# ------------------------------------------------------------------------------ batching
def test_batches_broadcast_like_kl():
    """p batch (3, 1) against q batch (4,), near and separated elements mixed: each element
    equals its unbatched value; a shared covariance against a batch of means."""
    rng = np.random.default_rng(5)
    d = 4
    s1 = np.stack([spd(rng, d) for _ in range(3)])[:, None]
    s2 = np.stack([spd(rng, d) for _ in range(4)])
    s2[1] = s1[0, 0] + 1e-9 * sym(rng, d)  # cancels for p[0]
    m1, m2 = rng.standard_normal((3, 1, d)), rng.standard_normal((4, d))
    m2[1] = m1[0, 0]
    out = wasserstein(gd.Gaussian(m1, s1), gd.Gaussian(m2, s2), squared=True)
    assert out.shape == (3, 4)
    for i in range(3):
        for j in range(4):
            single = wasserstein(gd.Gaussian(m1[i, 0], s1[i, 0]), gd.Gaussian(m2[j], s2[j]),
                                 squared=True)
            assert out[i, j] == pytest.approx(float(single), rel=1e-12, abs=0)
    many = wasserstein(gd.Gaussian(rng.standard_normal((5, d)), s1[0, 0]),
                       gd.Gaussian(np.zeros(d), s1[0, 0]))
    assert many.shape == (5,) and np.all(many > 0)


# ------------------------------------------------------------------------------ frameworks
@pytest.mark.parametrize("fw", ["torch", "jax"], indirect=True)
def test_frameworks_match_numpy(fw):
    """Dense near and separated pairs (one batch of 2), a diagonal pair, float32 (torch); results
    are the framework's arrays in the Gaussians' dtype."""
    rng = np.random.default_rng(3)
    d = 3
    s1 = np.stack([spd(rng, d), spd(rng, d)])
    s2 = np.stack([s1[0] + 1e-10 * sym(rng, d), spd(rng, d)])
    m1, m2 = rng.standard_normal((2, d)), rng.standard_normal((2, d))
    expect = wasserstein(gd.Gaussian(m1, s1), gd.Gaussian(m2, s2))
    got = fw.result(wasserstein(gd.Gaussian(fw.array(m1), fw.array(s1)),
                                gd.Gaussian(fw.array(m2), fw.array(s2))), np.float64)
    np.testing.assert_allclose(got, expect, rtol=1e-13)
    v1, v2 = rng.uniform(0.5, 2, d), rng.uniform(0.5, 2, d)
    got = fw.result(wasserstein(gd.Gaussian.diag(fw.array(m1[0]), logvar=fw.array(np.log(v1))),
                                gd.Gaussian.diag(fw.array(m2[0]), std=fw.array(np.sqrt(v2))),
                                squared=True), np.float64)
    np.testing.assert_allclose(got, np.sum((m1[0] - m2[0]) ** 2 + (np.sqrt(v1) - np.sqrt(v2)) ** 2),
                               rtol=1e-13)
    same = gd.Gaussian(fw.array(m1), fw.array(s1))
    assert np.all(fw.result(wasserstein(same, same), np.float64) == 0)
    if fw.name == "jax":
        return  # float32 would compile every operation again; torch covers the dtype rule
    f32 = fw.result(wasserstein(gd.Gaussian(fw.array(m1, np.float32), fw.array(s1, np.float32)),
                                gd.Gaussian(fw.array(m2, np.float32), fw.array(s2, np.float32))),
                    np.float32)
    np.testing.assert_allclose(f32, expect, rtol=1e-5)


def test_float32_near_pairs():
    """float32 inputs (reference: the float32 numbers themselves, exactly): ≤ 1e-5."""
    rng = np.random.default_rng(32)
    d = 5
    s1 = spd(rng, d).astype(np.float32)
    e, m1 = sym(rng, d), rng.standard_normal(d).astype(np.float32)
    p = gd.Gaussian(m1, s1)
    for delta in (1e-1, 1e-3, 1e-5):
        s2 = (s1 + delta * e).astype(np.float32)
        m2 = (m1 + delta).astype(np.float32)
        ref = mp_w2(m1, mp_matrix(s1), m2, mp_matrix(s2))
        value = wasserstein(p, gd.Gaussian(m2, s2), squared=True)
        assert value.dtype == np.float32
        assert rel_err(value, ref) <= 1e-5, delta
    assert wasserstein(p, gd.Gaussian(m1.copy(), s1.copy())) == 0


# ------------------------------------------------------------------------------ gradients
def test_torch_gradients():
    """W₂² gradients: finite differences at a separated pair (gradcheck) and exactly 0 at P = Q,
    including Σ = I (repeated eigenvalues, where eigenvector derivatives are undefined)."""
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(4)
    d = 3
    s1, s2 = (torch.tensor(spd(rng, d)) for _ in range(2))
    m1, m2 = (torch.tensor(rng.standard_normal(d)) for _ in range(2))

    def w2(a: Any, b: Any, mean: Any) -> Any:
        a, b = (a + a.mT) / 2, (b + b.mT) / 2
        return wasserstein(gd.Gaussian(mean, a), gd.Gaussian(m2, b), squared=True)

    for x in (s1, s2, m1):
        x.requires_grad_(True)
    assert torch.autograd.gradcheck(w2, (s1, s2, m1))
    for cov in (s1.detach(), torch.eye(d, dtype=torch.float64)):
        a = cov.clone().requires_grad_(True)
        mean = torch.zeros(d, dtype=torch.float64, requires_grad=True)
        for squared in (True, False):
            value = wasserstein(gd.Gaussian(mean, a), gd.Gaussian(mean.detach(), cov),
                                squared=squared)
            grads = torch.autograd.grad(value, (a, mean))
            assert float(value.detach()) == 0.0
            assert all(torch.all(g.abs() < 1e-12) for g in grads), grads


def test_jax_grad_and_jit():
    """Under jax.jit every element takes the eigenbasis route (selected where needed); the
    gradient at P = Q = N(0, I) is 0 (finite differences: test_torch_gradients)."""
    jax = pytest.importorskip("jax")
    jax.config.update("jax_enable_x64", True)
    import jax.numpy as jnp

    rng = np.random.default_rng(2)
    d = 2
    s1, s2 = spd(rng, d), spd(rng, d)

    def w2(a: Any, b: Any) -> Any:
        return wasserstein(gd.Gaussian(jnp.zeros(d), a), gd.Gaussian(jnp.ones(d), b),
                           squared=True)

    expect = wasserstein(gd.Gaussian(np.zeros(d), s1), gd.Gaussian(np.ones(d), s2),
                         squared=True)
    np.testing.assert_allclose(float(jax.jit(w2)(jnp.asarray(s1), jnp.asarray(s2))), expect,
                               rtol=1e-13)
    eye = jnp.eye(d)
    grad = jax.grad(lambda a: wasserstein(gd.Gaussian(jnp.zeros(d), a),
                                          gd.Gaussian(jnp.zeros(d), eye), squared=True))(eye)
    assert np.all(np.abs(np.asarray(grad)) < 1e-12)  # repeated eigenvalues: no NaN


# ------------------------------------------------------------------------------ FID
def mp_fid(xa: np.ndarray, xb: np.ndarray, full: bool = False) -> mp.mpf:
    """FID from the samples in mpmath: means, ddof = 1 covariances Σ = AᵀA, and
    tr((Σ_a^½Σ_bΣ_a^½)^½) from the eigenvalues of AΣ_bAᵀ (n_a × n_a, the nonzero ones of
    Σ_aΣ_b), or with ``full`` by the definition (mp_sqrt_psd of Σ_a, then of Σ_a^½Σ_bΣ_a^½)."""
    with mp.workdps(DPS):
        def centred(x: np.ndarray) -> tuple[mp.matrix, list[mp.mpf]]:
            n = x.shape[0]
            mean = [mp.fsum(mp.mpf(float(v)) for v in x[:, j]) / n for j in range(x.shape[1])]
            rows = [[(mp.mpf(float(x[i, j])) - mean[j]) / mp.sqrt(n - 1)
                     for j in range(x.shape[1])] for i in range(n)]
            return mp.matrix(rows), mean

        a, mean_a = centred(xa)
        b, mean_b = centred(xb)
        if full:
            root = mp_trace_root(a.T * a, b.T * b)
        else:  # A Σ_b Aᵀ = GᵀG with G = B Aᵀ (n_b × n_a)
            g = b * a.T
            k = g.T * g
            root = mp.fsum(mp.sqrt(max(x, 0)) for x in mp.eigsy((k + k.T) / 2,
                                                                  eigvals_only=True))
        traces = mp.fsum(x ** 2 for x in a) + mp.fsum(x ** 2 for x in b)
        means = mp.fsum((u - v) ** 2 for u, v in zip(mean_a, mean_b, strict=True))
        return means + traces - 2 * root


def test_fid_nuclear_norm_identity():
    """Rank-deficient (n < d) against the definition with d×d square roots, and n > d."""
    rng = np.random.default_rng(12)
    xa, xb = rng.standard_normal((5, 12)), 0.5 + 2 * rng.standard_normal((7, 12))
    assert rel_err(frechet_distance(xa, xb), mp_fid(xa, xb, full=True)) <= TOL
    assert rel_err(frechet_distance(xb, xa), mp_fid(xa, xb, full=True)) <= TOL
    xa, xb = rng.standard_normal((30, 5)), rng.standard_normal((50, 5)) @ spd(rng, 5)
    assert rel_err(frechet_distance(xa, xb), mp_fid(xa, xb, full=True)) <= TOL
    ga = gd.Gaussian(xa.mean(0), np.cov(xa, rowvar=False))
    gb = gd.Gaussian(xb.mean(0), np.cov(xb, rowvar=False))
    assert frechet_distance(xa, xb) == pytest.approx(float(wasserstein(ga, gb, squared=True)),
                                                     rel=1e-12)


@pytest.mark.parametrize("n_a, n_b", [(40, 40), (40, 25)])
def test_fid_rank_deficient_d64(n_a, n_b):
    rng = np.random.default_rng(n_b)
    xa = rng.standard_normal((n_a, 64))
    xb = 0.3 + rng.standard_normal((n_b, 64)) * rng.uniform(0.5, 2, 64)
    assert rel_err(frechet_distance(xa, xb), mp_fid(xa, xb)) <= 1e-12


def test_fid_2048_features():
    """2048-d features of 500 and 400 samples against the float64 eigh route of the Gram matrix
    GᵀG, G = ABᵀ: tr Σ_a + tr Σ_b − 2 Σ √λᵢ, with the eigenvalues that are rounding noise
    (below n·u·λ_max: centring leaves rank n_b − 1) set to 0 — their square roots would add
    ≈ 1.5e-9 relative here — and against the singular values of G (nuclear norm)."""
    rng = np.random.default_rng(2048)
    xa = np.abs(rng.standard_normal((500, 2048)))
    xb = np.abs(0.1 + 0.9 * rng.standard_normal((400, 2048)))
    a = (xa - xa.mean(0)) / np.sqrt(499)
    b = (xb - xb.mean(0)) / np.sqrt(399)
    g = a @ b.T
    lam = np.linalg.eigvalsh(g.T @ g)
    lam = np.where(lam > 2048 * np.finfo(float).eps * lam.max(), lam, 0)
    base = np.sum((xa.mean(0) - xb.mean(0)) ** 2) + np.sum(a * a) + np.sum(b * b)
    value = float(frechet_distance(xa, xb))
    assert value == pytest.approx(base - 2 * np.sum(np.sqrt(lam)), rel=1e-12)
    assert value == pytest.approx(base - 2 * np.sum(np.linalg.svdvals(g)), rel=1e-12)


def test_fid_inputs():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((6, 3))
    assert frechet_distance(x, x) == 0.0
    assert frechet_distance(x, x.copy()) == 0.0
    assert frechet_distance(x.tolist(), (x + 1).tolist()) == pytest.approx(3.0, rel=1e-13)
    cases = [
        ((x, rng.standard_normal((6, 4))), DimensionMismatchError, "feature dimensions"),
        ((x[:1], x), ShapeError, "features_a needs at least 2"),
        ((x, x[0]), ShapeError, "features_b must be a 2-d"),
        ((x[None], x), ShapeError, "features_a must be a 2-d"),
        ((x, np.where(x > 1, np.nan, x)), NonFiniteError, "features_b"),
        ((x.astype(complex), x), DtypeError, "features_a"),
    ]
    for args, error, match in cases:
        with pytest.raises(error, match=match):
            frechet_distance(*args)


def test_fid_torch():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(1)
    xa, xb = rng.standard_normal((8, 20)), rng.standard_normal((10, 20)) + 0.2
    expect = frechet_distance(xa, xb)
    ta = torch.tensor(xa, requires_grad=True)
    value = frechet_distance(ta, torch.tensor(xb))
    assert isinstance(value, torch.Tensor) and value.dtype == torch.float64
    assert float(value.detach()) == pytest.approx(float(expect), rel=1e-13)
    (grad,) = torch.autograd.grad(value, ta)
    assert torch.all(torch.isfinite(grad))
    f32 = frechet_distance(ta.detach().float(), torch.tensor(xb, dtype=torch.float32))
    assert f32.dtype == torch.float32
    assert float(f32) == pytest.approx(float(frechet_distance(xa.astype(np.float32),
                                                              xb.astype(np.float32))), rel=1e-6)
    with pytest.raises(BackendMismatchError):
        frechet_distance(ta, xb)

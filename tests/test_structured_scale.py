"""Structured pairs at high dimension and extreme valid inputs, against mpmath references.

- d ≥ 3000: diagonal ‖ low-rank and back (exact O(d k²) route), Kronecker ‖ Kronecker with a
  scalar moved between the factors (exact O(p³ + q³) route), and diagonal ‖ Kronecker, which has
  no structured exact route: its fast value comes with an AccuracyWarning and stays within the
  bound the warning states. None of them allocates a d×d array.
- Variances from 1e-308 to 1e308 and subnormal, log-variances ±1400 and −1500: right values.

References are closed forms in mpmath evaluated on the float inputs as given (small k×k or
factor-sized problems, so they stay cheap at any d).
"""

from __future__ import annotations

import warnings

import mpmath as mp
import numpy as np
import pytest
from mpref import mpf_matrix, relative_error

import gaussdiv as gd

RTOL_STRUCTURED = 1e-12
U = np.finfo(np.float64).eps / 2


def _g(x: mp.mpf) -> mp.mpf:
    """x − ln(1 + x)."""
    return x - mp.log1p(x)


def _excess(lam: mp.mpf) -> mp.mpf:
    """λ − 1 − ln λ (for λ too small for 1 + (λ − 1) to keep it)."""
    return lam - 1 - mp.log(lam)


@pytest.mark.parametrize("delta", [1e-3, 1e-7, 1e-10])
def test_diagonal_against_lowrank_at_d_4000(delta):
    """Σ₁ = D, Σ₂ = D + WWᵀ: the eigenvalues of Σ₂⁻¹Σ₁ are 1/(1 + σⱼ) for the eigenvalues σⱼ of
    WᵀD⁻¹W (k×k) and 1 elsewhere, so KL(P‖Q) = ½ Σ g(1/(1+σⱼ) − 1), KL(Q‖P) = ½ Σ g(σⱼ)."""
    rng = np.random.default_rng(0)
    d, k = 4000, 2
    var = rng.uniform(0.5, 2.0, d)
    factor = delta * rng.standard_normal((d, k))
    p = gd.Gaussian.diag(np.zeros(d), var=var)
    q = gd.Gaussian.lowrank(np.zeros(d), factor, var)
    w = mpf_matrix(factor)
    inner = mp.matrix(k, k)
    for i in range(k):
        for j in range(k):
            inner[i, j] = mp.fsum(w[r, i] * w[r, j] / mp.mpf(float(var[r])) for r in range(d))
    sigma = mp.eigsy(inner, eigvals_only=True)
    forward = sum(_g(1 / (1 + s) - 1) for s in sigma) / 2
    backward = sum(_g(s) for s in sigma) / 2
    with warnings.catch_warnings():
        warnings.simplefilter("error", gd.AccuracyWarning)
        assert relative_error(gd.kl(p, q), forward) < RTOL_STRUCTURED
        assert relative_error(gd.kl(q, p), backward) < RTOL_STRUCTURED


@pytest.mark.parametrize("delta", [0.0, 1e-6, 1e-11])
def test_kronecker_with_a_scalar_moved_at_d_3000(delta):
    """(2A) ⊗ (B'/2) = A ⊗ B' exactly, so KL against A ⊗ B is p · ½ excess(B'‖B)."""
    rng = np.random.default_rng(1)
    p_dim, q_dim = 375, 8
    a = rng.standard_normal((p_dim, p_dim))
    a = a @ a.T / p_dim + np.eye(p_dim)
    b = rng.standard_normal((q_dim, q_dim))
    b = b @ b.T / q_dim + np.eye(q_dim)
    e = rng.standard_normal((q_dim, q_dim))
    b_near = b + delta * (e + e.T) / 4
    d = p_dim * q_dim
    near = gd.Gaussian.kronecker(np.zeros(d), 2 * a, b_near / 2)
    base = gd.Gaussian.kronecker(np.zeros(d), a, b)
    mp_b, mp_near = mpf_matrix(b), mpf_matrix(b_near)
    for first, second, value in ((mp_near, mp_b, gd.kl(near, base)),
                                 (mp_b, mp_near, gd.kl(base, near))):
        lam = mp.eigsy(mp.cholesky(second) ** -1 * first * mp.cholesky(second).T ** -1,
                       eigvals_only=True)
        reference = p_dim * sum(_g(x - 1) for x in lam) / 2
        if delta == 0.0:  # equal matrices, not equal inputs: only the moved scalar's rounding
            assert 0.0 <= value < d * U**2
        else:
            assert relative_error(value, reference) < RTOL_STRUCTURED


def test_diagonal_against_kronecker_warns_and_keeps_its_bound():
    """No structured exact route: the fast value stands, with an AccuracyWarning whose bound
    (a few u · (tr + d + |ln-ratio|), absolute) holds; nothing d×d is formed (d = 4000)."""
    rng = np.random.default_rng(2)
    a, b = rng.uniform(0.5, 2.0, 50), rng.uniform(0.5, 2.0, 80)
    d = a.size * b.size
    var = np.kron(a, b) * (1 + 1e-9 * rng.uniform(-1, 1, d))
    p = gd.Gaussian.diag(np.zeros(d), var=var)
    q = gd.Gaussian.kronecker(np.zeros(d), np.diag(a), np.diag(b))
    with pytest.warns(gd.AccuracyWarning, match="no structured exact route"):
        value = gd.kl(p, q)
    lam = [mp.mpf(float(v)) / (mp.mpf(float(x)) * mp.mpf(float(y)))
           for v, (x, y) in zip(var, ((x, y) for x in a for y in b), strict=True)]
    reference = sum(_g(x - 1) for x in lam) / 2
    magnitude = 2 * d + abs(float(sum(mp.log(x) for x in lam)))
    assert value >= 0
    assert abs(value - float(reference)) <= 8 * U * magnitude


def test_extreme_variances_and_log_variances():
    tiny, huge = gd.Gaussian.diag(np.zeros(1), var=[1e-308]), gd.Gaussian.diag(np.zeros(1),
                                                                                var=[1e308])
    ratio = mp.mpf(1e-308) / mp.mpf(1e308)
    assert relative_error(gd.kl(tiny, huge), _excess(ratio) / 2) < 1e-15
    assert gd.kl(huge, tiny) == np.inf  # ½(1e616 − …): beyond the float range, honestly
    # Identical subnormal isotropic Gaussians, and a d = 100 000 diagonal holding a subnormal.
    sub = gd.Gaussian.isotropic(np.zeros(3), 1e-310)
    assert gd.kl(sub, gd.Gaussian.isotropic(np.zeros(3), 1e-310)) == 0.0
    var = np.ones(100_000)
    var[5] = 1e-310
    big = gd.Gaussian.diag(np.zeros(var.size), var=var)
    assert gd.kl(big, gd.Gaussian.diag(np.zeros(var.size), var=var.copy())) == 0.0
    # Log-variances beyond the float range of e^ℓ: KL against N(0, I) = ½ Σ (e^ℓ − 1 − ℓ).
    standard, eye = gd.Gaussian.standard(2), gd.Gaussian(np.zeros(2), np.eye(2))
    for ell in (-1400.0, -1500.0):
        p = gd.Gaussian.diag(np.zeros(2), logvar=[ell, 0.0])
        expected = (mp.exp(ell) - 1 - ell) / 2
        for q in (standard, eye):
            assert relative_error(gd.kl(p, q), expected) < 1e-15
            assert gd.kl(q, p) == np.inf
    p = gd.Gaussian.diag(np.zeros(2), logvar=[-1500.0, 0.0])
    assert relative_error(gd.log_prob(p, [0.0, 0.0]), -mp.log(2 * mp.pi) + 750) < 1e-15
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no RuntimeWarning leaks on these valid inputs
        gd.kl(huge, tiny)
        gd.kl(gd.Gaussian.diag(np.zeros(2), logvar=[1400.0, 0.0]), standard)

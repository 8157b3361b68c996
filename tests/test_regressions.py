"""Bugs found in review of the core redesign, one test each (each failed before its fix)."""

from __future__ import annotations

import mpmath as mp
import numpy as np
import pytest
from mpref import kl as mp_kl
from mpref import mpf_matrix, mpf_vector, relative_error

import gaussdiv as gd


def test_offsets_broadcast_from_the_right_in_the_refinement_gate():
    """Covariance batch (4, 1) with means (3,): the Mahalanobis offsets are (4, 3) against a
    covariance pair of batch (4, 1); the gate reduced them along the wrong axes."""
    rng = np.random.default_rng(0)
    a = rng.standard_normal((4, 1, 3, 3))
    p = gd.Gaussian(rng.standard_normal((3, 3)), a @ np.swapaxes(a, -1, -2) + np.eye(3))
    q = gd.Gaussian(np.zeros(3), np.eye(3))
    values = gd.kl(p, q)
    assert values.shape == (4, 3)
    assert values[2, 1] == gd.kl(p[2, 1], q)


def test_lowrank_fast_terms_see_the_woodbury_cancellation():
    """W₁ = W₂ of size 1e8 against variances 1 and 5: the trace's two Woodbury terms cancel."""
    rng = np.random.default_rng(0)
    d = 6
    w, v = 1e8 * rng.standard_normal((d, 1)), rng.uniform(1, 2, d)
    p, q = gd.Gaussian.lowrank(np.zeros(d), w, v), gd.Gaussian.lowrank(np.zeros(d), w, 5 * v)
    wm = mpf_matrix(w)
    zero = mpf_vector(np.zeros(d))
    exact = mp_kl(zero, wm * wm.T + mp.diag(mpf_vector(v)), zero,
                  wm * wm.T + mp.diag(mpf_vector(5 * v)))
    assert relative_error(gd.kl(p, q), exact) < 1e-14


def test_numerically_singular_lowrank_against_dense_is_a_gaussian_error():
    p = gd.Gaussian.lowrank(np.zeros(3), 1e9 * np.ones((3, 1)), np.ones(3))
    with pytest.raises(gd.NotPositiveDefiniteError, match="W Wᵀ"):
        gd.kl(p, gd.Gaussian(np.zeros(3), np.eye(3)))


def test_renyi_beyond_one_never_raises_a_lapack_error():
    p = gd.Gaussian(np.zeros(2), np.eye(2))
    nearly = gd.Gaussian(np.zeros(2), np.diag([0.5, 2 / 3]))  # 3Σ₂ − 2Σ₁ ≈ diag(−0.5, 0)
    assert gd.renyi(p, nearly, 3.0) == np.inf


def test_one_dimensional_tv_is_shift_invariant():
    near = gd.tv_bounds(gd.Gaussian([0.0], [[1.0]]), gd.Gaussian([0.5], [[2.0]]))[0]
    far = gd.tv_bounds(gd.Gaussian([1e8], [[1.0]]), gd.Gaussian([1e8 + 0.5], [[2.0]]))[0]
    assert far == pytest.approx(near, rel=1e-8)  # 1e8 + 0.5 is exact; the rest is rounding


def test_joining_structures_held_differently_is_a_specific_error():
    full = gd.Gaussian(np.zeros(2), np.eye(2))
    with pytest.raises(gd.ShapeError, match="held the same way"):
        gd.stack([full, gd.Gaussian.from_scale_tril(np.zeros(2), np.eye(2))])
    with pytest.raises(gd.ShapeError, match="held the same way"):
        gd.stack([gd.Gaussian.isotropic(np.zeros(2), 1.0), gd.Gaussian.diag(np.zeros(2),
                                                                             var=[1.0, 2.0])])
    with pytest.raises(gd.DtypeError, match="dtype"):
        gd.stack([full, gd.Gaussian(np.zeros(2, np.float32), np.eye(2, dtype=np.float32))])


def test_kronecker_factors_whose_batches_do_not_broadcast():
    with pytest.raises(gd.ShapeError, match="batch shapes of a"):
        gd.Gaussian.kronecker(np.zeros(4), np.stack([np.eye(2)] * 3), np.stack([np.eye(2)] * 2))


def test_reshape_takes_numpy_integers():
    g = gd.Gaussian(np.zeros((6, 2)), np.eye(2))
    assert g.reshape(np.int64(2), np.int64(3)).batch_shape == (2, 3)
    assert g.reshape((np.int64(6),)).batch_shape == (6,)


def test_renyi_family_broadcasts_a_larger_p_batch_against_q():
    """αΣ₂ + (1−α)Σ₁ was formed in place in Q's batch shape (dense) and the low-rank factors
    were joined before broadcasting: P (2, 1) against Q (1, 3) raised ValueError."""
    rng = np.random.default_rng(0)
    a = rng.standard_normal((2, 3, 3))
    p = gd.Gaussian(rng.standard_normal((2, 1, 3)), (a @ a.transpose(0, 2, 1) + np.eye(3))[:, None])
    q = gd.Gaussian(rng.standard_normal((1, 3, 3)), np.eye(3))
    dense = gd.renyi(p, q, 0.5)
    assert dense.shape == (2, 3)
    assert dense[1, 2] == pytest.approx(float(gd.renyi(p[1, 0], q[0, 2], 0.5)), rel=1e-13)
    w = rng.standard_normal((2, 1, 3, 2))
    lp = gd.Gaussian.lowrank(np.zeros((2, 1, 3)), w, np.ones((2, 1, 3)))
    lq = gd.Gaussian.lowrank(np.zeros((1, 3, 3)), rng.standard_normal((1, 3, 3, 2)),
                             np.ones((1, 3, 3)))
    low = gd.bhattacharyya(lp, lq)
    assert low.shape == (2, 3)
    assert low[1, 2] == pytest.approx(float(gd.bhattacharyya(lp[1, 0], lq[0, 2])), rel=1e-13)


@pytest.mark.parametrize("divergence", [gd.kl, gd.jeffreys, gd.bhattacharyya, gd.wasserstein])
def test_a_zero_mean_prior_gives_the_values_of_its_expanded_copy(divergence):
    """mean_difference uses μ₁ itself for an unbatched NumPy zero μ₂: bit for bit the
    subtraction's values (signed zeros included), and a float64 prior still widens float32."""
    rng = np.random.default_rng(7)
    mean = rng.standard_normal((40, 6))
    mean[0, :3] = -0.0
    p = gd.Gaussian.diag(mean, logvar=0.3 * rng.standard_normal((40, 6)))
    prior = gd.Gaussian.standard(6)
    np.testing.assert_array_equal(divergence(p, prior), divergence(p, prior.expand((40,))))
    narrow = gd.Gaussian.diag(mean.astype(np.float32), var=np.ones(6, np.float32))
    assert divergence(narrow, prior).dtype == np.float64

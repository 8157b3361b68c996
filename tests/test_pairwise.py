"""gaussdiv.pairwise and gaussdiv.pairwise_topk: every entry as the single-pair function gives it
(and as mpmath does, for the product route's KL), exact zeros for identical pairs, symmetry,
shapes, the frameworks, top-k against a full sort, and bad input."""

from __future__ import annotations

import mpref
import numpy as np
import pytest

import gaussdiv as gd

DIVERGENCES = [
    (gd.kl, {}), (gd.jeffreys, {}), (gd.renyi, {"alpha": 0.5}), (gd.renyi, {"alpha": 2.0}),
    (gd.bhattacharyya, {}), (gd.bhattacharyya_coefficient, {}), (gd.hellinger, {}),
    (gd.wasserstein, {}),
]
KINDS = ["full", "precision", "scale_tril", "var", "logvar", "isotropic", "lowrank", "kronecker"]


def _spd(rng: np.random.Generator, n: int, d: int, condition: float = 30.0) -> np.ndarray:
    q, _ = np.linalg.qr(rng.standard_normal((n, d, d)))
    eig = np.exp(rng.uniform(0, np.log(condition), (n, d)))
    s = (q * eig[:, None, :]) @ np.swapaxes(q, -1, -2)
    return 0.5 * (s + np.swapaxes(s, -1, -2))


def _batch(kind: str, n: int, d: int, seed: int, near_of: gd.Gaussian | None = None
           ) -> gd.Gaussian:
    """n Gaussians of one structure; with ``near_of``, its first two copied exactly and the
    third perturbed by 1e-9 (an identical and a near-identical pair for every P)."""
    rng = np.random.default_rng(seed)
    mean = rng.standard_normal((n, d))
    if kind in ("full", "precision", "scale_tril"):
        s = _spd(rng, n, d)
        g = {"full": lambda: gd.Gaussian(mean, s),
             "precision": lambda: gd.Gaussian.from_precision(mean, s),
             "scale_tril": lambda: gd.Gaussian.from_scale_tril(mean, np.linalg.cholesky(s))}
        out = g[kind]()
        if near_of is not None and type(near_of.cov) is type(out.cov):
            m = np.array(mean)
            base = np.array(near_of.covariance_matrix if kind != "precision"
                            else near_of.cov.matrix)
            m[:2], m[2] = near_of.mean[:2], near_of.mean[2] + 1e-9
            s = np.array(s if kind != "scale_tril" else np.linalg.cholesky(s))
            src = base if kind != "scale_tril" else near_of.cov.factor
            s[:2], s[2] = src[:2], src[2] * (1 + 1e-9)
            out = {"full": gd.Gaussian, "precision": gd.Gaussian.from_precision,
                   "scale_tril": gd.Gaussian.from_scale_tril}[kind](m, s)
        return out
    if kind in ("var", "logvar"):
        v = rng.uniform(0.3, 3.0, (n, d))
        if near_of is not None and near_of.cov.__class__.__name__ == "DiagonalCovariance" \
                and near_of.cov.kind == kind:
            mean[:2], mean[2] = near_of.mean[:2], near_of.mean[2] + 1e-9
            src = np.array(near_of.cov.param)
            v = np.log(v) if kind == "logvar" else v
            v[:2], v[2] = src[:2], src[2] + 1e-9
            return gd.Gaussian.diag(mean, **{kind: v})
        return gd.Gaussian.diag(mean, **{kind: np.log(v) if kind == "logvar" else v})
    if kind == "isotropic":
        return gd.Gaussian.isotropic(mean, rng.uniform(0.5, 2.0, n))
    if kind == "lowrank":
        return gd.Gaussian.lowrank(mean, 0.5 * rng.standard_normal((n, d, 2)),
                                   rng.uniform(0.5, 2.0, (n, d)))
    a = _spd(rng, n, 2)
    b = _spd(rng, n, d // 2)
    return gd.Gaussian.kronecker(mean, a, b)


def _broadcast(function, p: gd.Gaussian, q: gd.Gaussian, **options) -> np.ndarray:
    n, m = len(p), len(q)
    return np.asarray(function(p.reshape(n, 1), q.reshape(1, m), **options))


def _assert_entries(matrix: np.ndarray, reference: np.ndarray, rel: float) -> None:
    infinite = np.isinf(reference)  # Rényi α > 1 where Σ_α is not definite
    assert np.array_equal(np.isinf(matrix), infinite)
    matrix, reference = matrix[~infinite], reference[~infinite]
    scale = np.where(reference == 0, 1.0, np.abs(reference))
    worst = np.max(np.abs(matrix - reference) / scale, initial=0.0)
    assert worst <= rel, worst
    assert np.all(matrix[reference == 0] == 0)


@pytest.mark.parametrize("kind_p", KINDS)
@pytest.mark.parametrize("kind_q", KINDS)
def test_kl_matrix_is_the_single_pair_function_for_every_structure_pair(kind_p, kind_q):
    d = 4
    p = _batch(kind_p, 7, d, seed=1)
    q = _batch(kind_q, 9, d, seed=2, near_of=p)
    for block in (None, (3, 4)):
        _assert_entries(gd.pairwise(gd.kl, p, q, block=block), _broadcast(gd.kl, p, q), 1e-13)
        _assert_entries(gd.pairwise(gd.jeffreys, p, q, block=block),
                        _broadcast(gd.jeffreys, p, q), 1e-13)


@pytest.mark.parametrize(("function", "options"), DIVERGENCES,
                         ids=lambda v: getattr(v, "__name__", str(v)))
@pytest.mark.parametrize("kind", KINDS)
def test_every_divergence_matrix_is_its_single_pair_function(function, options, kind):
    p = _batch(kind, 6, 4, seed=3)
    q = _batch(kind, 5, 4, seed=4, near_of=p)
    reference = _broadcast(function, p, q, **options)
    _assert_entries(gd.pairwise(function, p, q, block=(4, 2), **options), reference, 1e-13)
    # By name too, and P against itself: the diagonal is exactly the identical-pair value.
    own = gd.pairwise(function.__name__, p, **options)
    np.testing.assert_allclose(own, _broadcast(function, p, p, **options), rtol=1e-13,
                               atol=0)
    if function is not gd.bhattacharyya_coefficient:
        assert np.all(np.diag(own) == 0)


def test_symmetric_divergences_give_exactly_symmetric_matrices():
    p = _batch("full", 23, 5, seed=5)
    for function in (gd.jeffreys, gd.hellinger, gd.wasserstein, gd.bhattacharyya):
        for block in (None, 4, (5, 9)):
            m = gd.pairwise(function, p, block=block)
            assert np.array_equal(m, m.T), function.__name__
    kl = gd.pairwise(gd.kl, p, block=6)
    assert not np.array_equal(kl, kl.T)
    assert np.all(np.diag(kl) == 0)


@pytest.mark.parametrize("delta", [1e-3, 1e-6, 1e-9, 1e-12])
def test_product_route_kl_against_mpmath_near_and_separated(delta):
    """The product route's entries (separated pairs kept from the GEMM, near ones re-routed)
    against 50-digit references."""
    rng = np.random.default_rng(7)
    d = 6
    s = _spd(rng, 4, d, condition=100.0)
    m = rng.standard_normal((4, d))
    e = rng.standard_normal((4, d, d))
    t = s + delta * (e + np.swapaxes(e, -1, -2))
    n = m + delta * rng.standard_normal((4, d))
    s_all = np.concatenate([s, _spd(rng, 3, d)])
    m_all = np.concatenate([m, rng.standard_normal((3, d))])
    p = gd.Gaussian(m_all, s_all)
    q = gd.Gaussian(np.concatenate([n, m_all[4:]]), np.concatenate([t, s_all[4:]]))
    matrix = gd.pairwise(gd.kl, p, q)
    worst = 0.0
    for i in range(7):
        for j in range(7):
            reference = mpref.kl(mpref.mpf_vector(m_all[i]), mpref.mpf_matrix(s_all[i]),
                                 mpref.mpf_vector(q.mean[j]), mpref.mpf_matrix(q.cov.matrix[j]))
            worst = max(worst, mpref.relative_error(matrix[i, j], reference))
    assert worst <= 1e-13


@pytest.mark.parametrize("condition", [1e4, 1e8])
def test_ill_conditioned_and_far_means_keep_single_pair_accuracy(condition):
    rng = np.random.default_rng(8)
    d = 8
    p = gd.Gaussian(1e6 + rng.standard_normal((10, d)), _spd(rng, 10, d, condition))
    q = gd.Gaussian(1e6 + rng.standard_normal((12, d)), _spd(rng, 12, d, condition))
    _assert_entries(gd.pairwise(gd.kl, p, q), _broadcast(gd.kl, p, q), 1e-12)


def test_shapes_of_batched_and_unbatched_inputs():
    rng = np.random.default_rng(9)
    p = gd.Gaussian(rng.standard_normal((2, 3, 4)), np.eye(4))
    q = gd.Gaussian.diag(rng.standard_normal((5, 4)), var=np.ones((5, 4)))
    assert gd.pairwise(gd.kl, p, q).shape == (2, 3, 5)
    one = gd.Gaussian(np.zeros(4), np.eye(4))
    row = gd.pairwise(gd.kl, one, q)
    assert row.shape == (5,)
    np.testing.assert_allclose(row, gd.kl(one, q), rtol=1e-14)
    empty = gd.Gaussian(np.zeros((0, 4)), np.eye(4))
    assert gd.pairwise(gd.kl, empty, q).shape == (0, 5)
    index, value = gd.pairwise_topk(gd.kl, p, q, 2)
    assert index.shape == value.shape == (2, 3, 2)


def test_float32_inputs():
    rng = np.random.default_rng(10)
    s = _spd(rng, 6, 4)
    m = rng.standard_normal((6, 4))
    p64 = gd.Gaussian(m, s)
    p32 = gd.Gaussian(m.astype(np.float32), s.astype(np.float32))
    out = gd.pairwise(gd.kl, p32)
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, gd.pairwise(gd.kl, p64), rtol=2e-5, atol=0)
    assert np.all(np.diag(out) == 0)


@pytest.mark.parametrize(("function", "options"),
                         [(gd.kl, {}), (gd.hellinger, {}), (gd.renyi, {"alpha": 0.7})],
                         ids=["kl", "hellinger", "renyi"])
@pytest.mark.parametrize("largest", [False, True])
def test_topk_against_a_full_sort(function, options, largest):
    p = _batch("full", 11, 4, seed=11)
    q = _batch("full", 29, 4, seed=12, near_of=p)
    full = _broadcast(function, p, q, **options)
    for block in (None, (4, 5)):
        index, value = gd.pairwise_topk(function, p, q, 6, largest=largest, block=block,
                                        **options)
        order = np.argsort(-full if largest else full, axis=1, kind="stable")[:, :6]
        np.testing.assert_array_equal(index, order)
        np.testing.assert_allclose(value, np.take_along_axis(full, order, 1), rtol=1e-13,
                                   atol=0)
    # The identical pair is each P_i's nearest for i < 2 (KL exactly 0).
    if not largest and function is gd.kl:
        assert list(index[:2, 0]) == [0, 1] and np.all(value[:2, 0] == 0)


def test_topk_on_diagonal_gaussians_recomputes_only_candidates(monkeypatch):
    rng = np.random.default_rng(13)
    p = gd.Gaussian.diag(rng.standard_normal((40, 8)), logvar=rng.standard_normal((40, 8)))
    q_mean = rng.standard_normal((300, 8))
    q_mean[:40] = p.mean + 1e-10  # every P_i has a near twin: cancelling entries to resolve
    q = gd.Gaussian.diag(q_mean, logvar=np.concatenate(
        [np.asarray(p.cov.param), rng.standard_normal((260, 8))]))
    import gaussdiv.matrices.routes as routes

    calls = []
    original = routes.ProductRoute.exact

    def counting(self, i, j):
        calls.append(i.size)
        return original(self, i, j)

    monkeypatch.setattr(routes.ProductRoute, "exact", counting)
    index, _ = gd.pairwise_topk(gd.kl, p, q, 3, block=(16, 64))
    full = _broadcast(gd.kl, p, q)
    np.testing.assert_array_equal(index, np.argsort(full, axis=1, kind="stable")[:, :3])
    assert np.all(index[:, 0] == np.arange(40))
    assert sum(calls) <= 4 * 40  # the near twins, not the 40 × 300 entries


def test_ties_come_in_index_order():
    p = gd.Gaussian(np.zeros((2, 3)), np.eye(3))
    q = gd.Gaussian(np.zeros((5, 3)), np.eye(3))  # every entry is 0
    index, value = gd.pairwise_topk(gd.kl, p, q, 3)
    np.testing.assert_array_equal(index, [[0, 1, 2], [0, 1, 2]])
    assert np.all(value == 0)


def test_torch_matrix_values_and_gradients():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(14)
    s = _spd(rng, 5, 3)
    m = rng.standard_normal((5, 3))
    mean = torch.tensor(m, requires_grad=True)
    cov = torch.tensor(s)
    p = gd.Gaussian(mean, cov)
    q = gd.Gaussian(torch.tensor(m[::-1].copy()), torch.tensor(s[::-1].copy()))
    out = gd.pairwise(gd.kl, p, q)
    assert isinstance(out, torch.Tensor) and out.shape == (5, 5)
    reference = gd.kl(p.reshape(5, 1), q.reshape(1, 5))
    np.testing.assert_allclose(out.detach().numpy(), reference.detach().numpy(), rtol=1e-13)
    (grad,) = torch.autograd.grad(out.sum(), mean)
    (expected,) = torch.autograd.grad(reference.sum(), mean)
    np.testing.assert_allclose(grad.numpy(), expected.numpy(), rtol=1e-10, atol=1e-12)
    index, value = gd.pairwise_topk(gd.kl, p, q, 2)
    assert isinstance(index, torch.Tensor) and isinstance(value, torch.Tensor)
    assert value.requires_grad


@pytest.mark.timeout(120)
def test_jax_matrix_eager_and_jitted():
    jax = pytest.importorskip("jax")
    jnp = jax.numpy
    rng = np.random.default_rng(15)
    s = _spd(rng, 4, 3)
    m = rng.standard_normal((4, 3))
    p = gd.Gaussian(jnp.asarray(m), jnp.asarray(s))
    expected = _broadcast(gd.kl, gd.Gaussian(m, s), gd.Gaussian(m, s))
    rtol = 1e-12 if jax.config.jax_enable_x64 else 2e-5  # float32 without x64
    eager = gd.pairwise(gd.kl, p)
    np.testing.assert_allclose(np.asarray(eager), expected, rtol=rtol)
    assert np.all(np.diag(np.asarray(eager)) == 0)
    jitted = jax.jit(lambda g: gd.pairwise(gd.kl, g))(p)  # traced: the broadcast route
    np.testing.assert_allclose(np.asarray(jitted), expected, rtol=rtol)


def test_bad_input_is_named():
    p = gd.Gaussian(np.zeros((3, 2)), np.eye(2))
    q3 = gd.Gaussian(np.zeros((4, 3)), np.eye(3))
    with pytest.raises(gd.DimensionMismatchError, match="P has d=2, Q has d=3"):
        gd.pairwise(gd.kl, p, q3)
    with pytest.raises(gd.GaussianError, match="unknown divergence 'kll'"):
        gd.pairwise("kll", p)
    with pytest.raises(TypeError, match="divergence must be a function"):
        gd.pairwise(3, p)
    with pytest.raises(TypeError, match=r"P must be a gaussdiv\.Gaussian"):
        gd.pairwise(gd.kl, np.eye(2))
    with pytest.raises(gd.GaussianError, match="block must be a positive integer"):
        gd.pairwise(gd.kl, p, block=0)
    with pytest.raises(gd.GaussianError, match=r"block\[1\] must be a positive integer"):
        gd.pairwise(gd.kl, p, block=(2, -1))
    with pytest.raises(gd.GaussianError, match="too small for one row of a tile"):
        gd.pairwise(gd.hellinger, p, max_memory=10)
    for k in (0, 4, 2.5, True):
        with pytest.raises(gd.GaussianError, match="k must be an integer from 1 to the number "
                                                   r"of Q's \(3\)"):
            gd.pairwise_topk(gd.kl, p, p, k)
    torch = pytest.importorskip("torch")
    pt = gd.Gaussian(torch.zeros(3, 2, dtype=torch.float64), torch.eye(2, dtype=torch.float64))
    with pytest.raises(gd.BackendMismatchError, match="P holds numpy arrays and Q holds torch"):
        gd.pairwise(gd.kl, p, pt)


def test_inputs_are_not_modified():
    rng = np.random.default_rng(16)
    s = _spd(rng, 4, 3)
    m = rng.standard_normal((4, 3))
    s0, m0 = s.copy(), m.copy()
    gd.pairwise(gd.kl, gd.Gaussian(m, s))
    gd.pairwise_topk(gd.kl, gd.Gaussian(m, s), None, 2)
    assert np.array_equal(s, s0) and np.array_equal(m, m0)


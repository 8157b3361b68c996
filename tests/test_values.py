"""Gaussians as values: indexing, reshaping, broadcasting, joining, pickling, copies, read-only
arrays, JAX pytrees (jit / vmap / grad with Gaussian arguments) and torch.func transforms.

Every structure kind is built by MAKERS with a batch of 3; each check compares against the
same computation done element by element, so the batch protocol is tested on all structures.
"""

from __future__ import annotations

import copy
import pickle
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

import gaussdiv as gd

D = 4
BATCH = 3


def _spd(rng: np.random.Generator, *shape: int) -> np.ndarray:
    a = rng.standard_normal((*shape, D, D))
    return a @ np.swapaxes(a, -1, -2) / D + np.eye(D)


def _makers(x: Callable[[np.ndarray], Any]) -> dict[str, Callable[[np.random.Generator], Any]]:
    """Batched Gaussians (batch 3) of every structure, from ``x``'s arrays."""
    def mean(rng: np.random.Generator) -> Any:
        return x(rng.standard_normal((BATCH, D)))

    return {
        "cov": lambda r: gd.Gaussian(mean(r), x(_spd(r, BATCH))),
        "precision": lambda r: gd.Gaussian.from_precision(mean(r), x(_spd(r, BATCH))),
        "scale_tril": lambda r: gd.Gaussian.from_scale_tril(
            mean(r), x(np.linalg.cholesky(_spd(r, BATCH)))),
        "logvar": lambda r: gd.Gaussian.diag(mean(r), logvar=x(r.standard_normal((BATCH, D)))),
        "isotropic": lambda r: gd.Gaussian.isotropic(mean(r), x(r.uniform(0.5, 2, BATCH))),
        "lowrank": lambda r: gd.Gaussian.lowrank(mean(r), x(r.standard_normal((BATCH, D, 2))),
                                                 x(r.uniform(0.5, 2, (BATCH, D)))),
        "kronecker": lambda r: gd.Gaussian.kronecker(
            mean(r), x(_spd(r, BATCH)[..., :2, :2]), x(_spd(r, BATCH)[..., :2, :2])),
    }


KINDS = list(_makers(np.asarray))


def _pair(kind: str, x: Callable[[np.ndarray], Any] = np.asarray) -> tuple[Any, Any]:
    rng = np.random.default_rng(KINDS.index(kind))
    make = _makers(x)[kind]
    return make(rng), make(rng)


@pytest.mark.parametrize("kind", KINDS)
class TestBatchProtocol:
    def test_index_matches_elementwise(self, kind):
        p, q = _pair(kind)
        batch = gd.kl(p, q)
        for i in range(BATCH):
            assert p[i].batch_shape == ()
            assert gd.kl(p[i], q[i]) == batch[i]
        assert gd.kl(p[1:], q[1:]).tolist() == batch[1:].tolist()
        assert gd.kl(p[..., -1], q[-1]) == batch[-1]
        assert gd.kl(p[np.array([2, 0])], q[np.array([2, 0])]).tolist() == batch[[2, 0]].tolist()

    def test_reshape_broadcast_stack_concatenate(self, kind):
        p, q = _pair(kind)
        batch = gd.kl(p, q)
        assert gd.kl(p.reshape(3, 1), q.reshape((3, 1))).ravel().tolist() == batch.tolist()
        wide = p[0].broadcast_to((2, 5))
        assert wide.batch_shape == (2, 5)
        # Ten means against one covariance are solved as ten right-hand sides of one
        # triangular solve: the same values to rounding (OpenBLAS's multi-column kernel may
        # round differently from its one-column one, e.g. on AMD Zen without AVX-512).
        np.testing.assert_array_max_ulp(gd.kl(wide, q[0]), np.broadcast_to(batch[0], (2, 5)), 4)
        stacked = gd.stack([p[0], p[2]])
        assert gd.kl(stacked, gd.stack([q[0], q[2]])).tolist() == batch[[0, 2]].tolist()
        joined = gd.concatenate([p, p[:1]])
        assert joined.batch_shape == (4,)
        assert gd.kl(joined, gd.concatenate([q, q[:1]])).tolist() == [*batch, batch[0]]
        assert len(p) == BATCH

    def test_pickle_copy_and_read_only_arrays(self, kind):
        p, q = _pair(kind)
        back = pickle.loads(pickle.dumps(p))
        assert gd.kl(back, q).tolist() == gd.kl(p, q).tolist()
        assert copy.copy(p) is p and copy.deepcopy(p) is p
        for g in (p, back, p[0]):
            arrays = [g.mean, *_arrays(g.cov)]
            assert all(not a.flags.writeable for a in arrays if isinstance(a, np.ndarray))


def _arrays(cov: gd.Covariance) -> list[Any]:
    leaves, _ = cov.tree_flatten()
    out = []
    for leaf in leaves:
        out.extend(_arrays(leaf) if isinstance(leaf, gd.Covariance) else [leaf])
    return out


def test_index_errors_are_specific():
    p, _ = _pair("cov")
    with pytest.raises(gd.ShapeError, match="too many indices"):
        p[0, 0]
    with pytest.raises(gd.ShapeError, match="None"):
        p[None]
    with pytest.raises(TypeError, match="unbatched"):
        len(p[0])
    with pytest.raises(gd.ShapeError, match="one structure"):
        gd.stack([_pair("cov")[0], _pair("lowrank")[0]])


def test_editing_a_held_array_is_refused():
    p, _ = _pair("cov")
    with pytest.raises(ValueError, match="read-only"):
        p.cov.factor[0, 0, 0] = 1.0


@pytest.mark.timeout(300)
@pytest.mark.parametrize("kind", KINDS)
def test_jax_transforms_take_gaussian_arguments(kind):
    jax = pytest.importorskip("jax")
    jax.config.update("jax_enable_x64", True)
    import jax.numpy as jnp

    p, q = _pair(kind, jnp.asarray)
    eager = np.asarray(gd.kl(p, q))
    np.testing.assert_allclose(np.asarray(jax.jit(gd.kl)(p, q)), eager, rtol=1e-13)
    np.testing.assert_allclose(np.asarray(jax.vmap(gd.kl)(p, q)), eager, rtol=1e-13)
    assert np.all(np.asarray(jax.jit(gd.kl)(p, p)) == 0)
    # Gradient with respect to the Gaussian's own leaves: d KL / d μ₁ = Σ₂⁻¹(μ₁ − μ₂).
    grads = jax.grad(lambda a: gd.kl(a[0], q[0]))(p)
    expected = np.linalg.solve(np.asarray(q[0].covariance_matrix),
                               np.asarray(p[0].mean - q[0].mean))
    np.testing.assert_allclose(np.asarray(grads.mean[0]), expected, rtol=1e-10)


def test_torch_func_grad_and_vmap_match_autograd():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(0)
    cov = torch.tensor(_spd(rng))
    q = gd.Gaussian(torch.zeros(D, dtype=torch.float64), torch.tensor(_spd(rng)))
    mean = torch.tensor(rng.standard_normal(D), requires_grad=True)

    def kl_of(m: Any) -> Any:
        return gd.kl(gd.Gaussian(m, cov), q)

    kl_of(mean).backward()
    np.testing.assert_allclose(torch.func.grad(kl_of)(mean.detach()).numpy(),
                               mean.grad.numpy(), rtol=1e-13)
    means = torch.tensor(rng.standard_normal((BATCH, D)))
    np.testing.assert_allclose(torch.func.vmap(kl_of)(means).numpy(),
                               gd.kl(gd.Gaussian(means, cov), q).numpy(), rtol=1e-13)
    # At P = Q the exact route runs under the transform too: value 0, gradient 0.
    at_q = q.mean.clone()
    assert float(gd.kl(gd.Gaussian(at_q, q.covariance_matrix), q)) == 0.0
    assert torch.all(torch.func.grad(lambda m: gd.kl(gd.Gaussian(m, q.covariance_matrix),
                                                       q))(at_q) == 0)

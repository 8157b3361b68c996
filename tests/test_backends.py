"""One set of divergence test bodies, run over NumPy, PyTorch and JAX.

The frameworks come from the ``fw`` fixture of tests/conftest.py: a framework is skipped only
when it is not installed, JAX runs with x64 enabled (float64 cases) and keeps batches small
(jaxlib 0.10.2 on CPU has been seen to hang on large batched Cholesky + triangular solves
inside one jitted function), and every JAX test has a timeout.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np
import pytest

import gaussdiv as gd

if TYPE_CHECKING:  # never imported at run time: tests/cli/conftest.py shares the module name
    from conftest import Framework


def _spd(rng: np.random.Generator, d: int, batch: tuple[int, ...] = ()) -> np.ndarray:
    a = rng.standard_normal((*batch, d, d))
    return a @ np.swapaxes(a, -1, -2) / d + np.eye(d)


def _structures(fw: Framework, rng: np.random.Generator, d: int,
                dt: Any = np.float64) -> dict[str, tuple[gd.Gaussian, gd.Gaussian]]:
    """Each structure in ``fw`` arrays, with its NumPy twin built from the same numbers."""
    mean = rng.standard_normal(d)
    cov = _spd(rng, d)
    var = rng.uniform(0.5, 2.0, d)
    factor = rng.standard_normal((d, 2))
    a, b = _spd(rng, 2), _spd(rng, d // 2)
    x = lambda v: fw.array(v, dt)  # noqa: E731
    n = lambda v: np.asarray(v, dt)  # noqa: E731
    builders: dict[str, Callable[[Callable[[Any], Any]], gd.Gaussian]] = {
        "dense": lambda f: gd.Gaussian(f(mean), f(cov)),
        "precision": lambda f: gd.Gaussian.from_precision(f(mean), f(np.linalg.inv(cov))),
        "scale_tril": lambda f: gd.Gaussian.from_scale_tril(f(mean), f(np.linalg.cholesky(cov))),
        "diag": lambda f: gd.Gaussian.diag(f(mean), var=f(var)),
        "logvar": lambda f: gd.Gaussian.diag(f(mean), logvar=f(np.log(var))),
        "isotropic": lambda f: gd.Gaussian.isotropic(f(mean), f(np.float64(1.3))),
        "lowrank": lambda f: gd.Gaussian.lowrank(f(mean), f(factor), f(var)),
        "kronecker": lambda f: gd.Gaussian.kronecker(f(mean), f(a), f(b)),
    }
    return {name: (build(x), build(n)) for name, build in builders.items()}


PAIRS = [("dense", "dense"), ("precision", "scale_tril"), ("diag", "logvar"),
         ("logvar", "isotropic"), ("lowrank", "lowrank"), ("lowrank", "diag"),
         ("kronecker", "kronecker"), ("kronecker", "diag"), ("diag", "dense"),
         ("isotropic", "lowrank")]


@pytest.mark.parametrize("pair", PAIRS, ids=lambda p: f"{p[0]}-{p[1]}")
def test_kl_terms_match_numpy_in_every_framework(fw, pair):
    rng = np.random.default_rng(0)
    p_built = _structures(fw, rng, 4)
    q_built = _structures(fw, np.random.default_rng(1), 4)
    (p, p_np), (q, q_np) = p_built[pair[0]], q_built[pair[1]]
    terms, expected = gd.kl_terms(p, q), gd.kl_terms(p_np, q_np)
    assert isinstance(terms.kl, fw.array_type)
    for field in ("kl", "trace", "logdet_ratio", "mahalanobis"):
        np.testing.assert_allclose(fw.to_numpy(getattr(terms, field)), getattr(expected, field),
                                   rtol=1e-12)
    np.testing.assert_allclose(fw.to_numpy(gd.cross_entropy(p, q)), gd.cross_entropy(p_np, q_np),
                               rtol=1e-12)
    np.testing.assert_allclose(fw.to_numpy(gd.entropy(p)), gd.entropy(p_np), rtol=1e-12)
    x = rng.standard_normal((3, 4))
    np.testing.assert_allclose(fw.to_numpy(gd.log_prob(p, fw.array(x))), gd.log_prob(p_np, x),
                               rtol=1e-12)
    np.testing.assert_allclose(fw.to_numpy(gd.log_ratio(p, q, fw.array(x))),
                               gd.log_ratio(p_np, q_np, x), rtol=1e-11)
    assert gd.kl(p, p) == 0


def test_batched_near_identical_float32_is_exact_and_never_negative(fw):
    rng = np.random.default_rng(2)
    d, batch = 8, 6
    cov = _spd(rng, d, (batch,)).astype(np.float32)
    bump = (1e-4 * np.eye(d) * rng.uniform(0.5, 1.5, (batch, 1, 1))).astype(np.float32)
    p = gd.Gaussian(fw.array(np.zeros((batch, d)), np.float32), fw.array(cov + bump, np.float32))
    q = gd.Gaussian(fw.array(np.zeros(d), np.float32), fw.array(cov, np.float32))
    value = gd.kl(p, q)
    assert fw.to_numpy(value).dtype == np.float32
    exact = gd.kl(gd.Gaussian(np.zeros((batch, d)), (cov + bump).astype(np.float64)),
                  gd.Gaussian(np.zeros(d), cov.astype(np.float64)))
    assert np.all(fw.to_numpy(value) >= 0)
    # float32 inputs taken exactly; target 1e-5 relative (issue #2).
    np.testing.assert_allclose(fw.to_numpy(value), exact, rtol=1e-5)


def test_half_precision_is_computed_in_float32_and_returned_as_given(fw):
    if fw.name == "numpy":
        half = np.float16
    elif fw.name == "torch":
        import torch

        half = torch.float16
    else:
        import jax.numpy as jnp

        half = jnp.bfloat16
    mean = fw.array(np.full(6, 0.1))
    logvar = fw.array(np.full(6, 1e-2))
    p = gd.Gaussian.diag(mean.astype(half) if fw.name != "torch" else mean.to(half),
                         logvar=logvar.astype(half) if fw.name != "torch" else logvar.to(half))
    value = gd.kl(p, p)
    assert value.dtype == half
    assert float(value) == 0.0
    q = gd.Gaussian.standard(6, like=fw.array(np.zeros(1), np.float32))
    assert float(gd.kl(p, q)) > 0


def test_sampling_returns_framework_arrays(fw):
    rng = np.random.default_rng(3)
    p, p_np = _structures(fw, rng, 4)["lowrank"]
    x = gd.sample(p, 5000, seed=0)
    assert isinstance(x, fw.array_type) and tuple(x.shape) == (5000, 4)
    cov = np.cov(fw.to_numpy(x).T)
    np.testing.assert_allclose(cov, p_np.covariance_matrix, atol=0.25)
    mc = gd.kl_mc(p, gd.Gaussian.standard(4, like=fw.array(np.zeros(1))), n=20_000, seed=1)
    exact = gd.kl(p_np, gd.Gaussian.standard(4))
    assert abs(float((float(mc.value) - exact) / float(mc.stderr))) < 4.5


def test_mixing_frameworks_names_both(fw):
    if fw.name == "numpy":
        pytest.skip("needs a second framework")
    p = gd.Gaussian(fw.array(np.zeros(2)), fw.array(np.eye(2)))
    q = gd.Gaussian(np.zeros(2), np.eye(2))
    with pytest.raises(gd.BackendMismatchError, match="numpy"):
        gd.kl(p, q)
    with pytest.raises(gd.BackendMismatchError):
        gd.Gaussian(fw.array(np.zeros(2)), np.eye(2))


def test_import_never_imports_frameworks():
    import subprocess
    import sys

    code = "import sys, gaussdiv; print('torch' in sys.modules, 'jax' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]


# --------------------------------------------------------------------------- gradients
def _analytic_gradients(m1, s1, m2, s2):
    """∂KL/∂μ₁ = Σ₂⁻¹Δμ, ∂KL/∂Σ₁ = ½(Σ₂⁻¹ − Σ₁⁻¹), ∂KL/∂Σ₂ = ½(Σ₂⁻¹ − Σ₂⁻¹(Σ₁ + ΔμΔμᵀ)Σ₂⁻¹)."""
    inv1, inv2 = np.linalg.inv(s1), np.linalg.inv(s2)
    diff = m1 - m2
    return (inv2 @ diff, 0.5 * (inv2 - inv1),
            0.5 * (inv2 - inv2 @ (s1 + np.outer(diff, diff)) @ inv2))


def _sym(a):
    return 0.5 * (a + np.swapaxes(a, -1, -2))


def _grad_fn(fw: Framework):
    """grad(f)(*args) for scalar f in this framework (symmetric matrices symmetrised)."""
    if fw.name == "torch":
        import torch

        def grad(f, *args):
            leaves = [torch.tensor(a, requires_grad=True) for a in args]
            value = f(*leaves)
            return [g.numpy() for g in torch.autograd.grad(value, leaves)]

        return grad
    import jax

    def grad(f, *args):
        return [np.asarray(g) for g in jax.jit(jax.grad(f, argnums=tuple(range(len(args)))))(
            *args)]

    return grad


@pytest.mark.parametrize("near", [False, True], ids=["separated", "near-identical"])
def test_gradients_match_analytic(fw, near):
    if fw.name == "numpy":
        pytest.skip("NumPy has no autodiff")
    rng = np.random.default_rng(4)
    d = 4
    m2, s2 = rng.standard_normal(d), _spd(rng, d)
    m1, s1 = (m2 + 1e-7, s2 + 1e-7 * np.eye(d)) if near else (rng.standard_normal(d),
                                                               _spd(rng, d))

    def f(mu1, cov1, cov2):
        sym = (lambda a: 0.5 * (a + a.mT)) if fw.name == "torch" else (
            lambda a: 0.5 * (a + a.T))
        return gd.kl(gd.Gaussian(mu1, sym(cov1)), gd.Gaussian(fw.array(m2), sym(cov2)))

    g_mu, g_s1, g_s2 = _grad_fn(fw)(f, m1, s1, s2)
    e_mu, e_s1, e_s2 = _analytic_gradients(m1, s1, m2, s2)
    scale = max(np.abs(e_s1).max(), 1e-300)
    np.testing.assert_allclose(g_mu, e_mu, rtol=1e-9, atol=1e-14)
    # Symmetrised parameterisation: the gradient is the symmetric part of the analytic one.
    np.testing.assert_allclose(_sym(g_s1), _sym(e_s1), rtol=1e-7, atol=1e-12 * (1 + scale))
    np.testing.assert_allclose(_sym(g_s2), _sym(e_s2), rtol=1e-7, atol=1e-12 * (1 + scale))


STRUCTURE_PARAMS = {
    "dense": lambda m, p: gd.Gaussian(m, 0.5 * (p[0] + p[0].mT) + 3 * _eye_like(p[0])),
    "scale_tril": lambda m, p: gd.Gaussian.from_scale_tril(m, _tril_pos(p[0])),
    "diag": lambda m, p: gd.Gaussian.diag(m, logvar=p[0][:, 0]),
    "lowrank": lambda m, p: gd.Gaussian.lowrank(m, p[0][:, :2], 1 + p[0][:, 2] ** 2),
    "kronecker": lambda m, p: gd.Gaussian.kronecker(
        m, 0.5 * (p[0][:2, :2] + p[0][:2, :2].mT) + 3 * _eye_like(p[0][:2, :2]),
        0.5 * (p[0][2:, 2:] + p[0][2:, 2:].mT) + 3 * _eye_like(p[0][2:, 2:])),
}


def _eye_like(t):
    import torch

    return torch.eye(t.shape[-1], dtype=t.dtype)


def _tril_pos(t):
    import torch

    return torch.tril(t, -1) + torch.diag_embed(torch.exp(torch.diagonal(t)))


@pytest.mark.parametrize("structure", list(STRUCTURE_PARAMS))
def test_torch_gradcheck_every_structure(structure):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(5)
    build = STRUCTURE_PARAMS[structure]
    q = gd.Gaussian(torch.zeros(4, dtype=torch.float64), torch.tensor(_spd(rng, 4)))

    def f(mean, raw):
        p = build(mean, [raw])
        return gd.kl(p, q), gd.kl(q, p)

    mean = torch.tensor(rng.standard_normal(4), requires_grad=True)
    raw = torch.tensor(0.3 * rng.standard_normal((4, 4)), requires_grad=True)
    assert torch.autograd.gradcheck(f, (mean, raw))
    if structure in ("dense", "scale_tril"):  # second order elsewhere: the P = Q Hessian test
        assert torch.autograd.gradgradcheck(f, (mean, raw))


def test_gradient_is_zero_and_hessian_is_fisher_at_p_equals_q(fw):
    """At P = Q: ∇KL = 0 exactly, and the Hessian is the Fisher information.

    For the mean, ∂²KL/∂μ₁² = Σ⁻¹; for the covariance, the second directional derivative along
    a symmetric V is ½ tr(Σ⁻¹VΣ⁻¹V). Both pass through the near-identical (spectral) route.
    """
    if fw.name == "numpy":
        pytest.skip("NumPy has no autodiff")
    rng = np.random.default_rng(6)
    d = 3
    mean, cov = rng.standard_normal(d), _spd(rng, d)
    inv = np.linalg.inv(cov)
    directions = [_sym(rng.standard_normal((d, d))) for _ in range(3)]
    if fw.name == "torch":
        import torch

        def kl_of(mu, c):
            return gd.kl(gd.Gaussian(mu, 0.5 * (c + c.mT)),
                         gd.Gaussian(torch.tensor(mean), torch.tensor(cov)))

        mu_t, cov_t = torch.tensor(mean, requires_grad=True), torch.tensor(cov, requires_grad=True)
        value = kl_of(mu_t, cov_t)
        assert value.item() == 0.0
        g_mu, g_cov = torch.autograd.grad(value, (mu_t, cov_t))
        assert torch.all(g_mu == 0) and float(g_cov.abs().max()) < 1e-15
        h_mu = torch.autograd.functional.hessian(lambda m: kl_of(m, torch.tensor(cov)),
                                                 torch.tensor(mean)).numpy()
        h_cov = torch.autograd.functional.hessian(lambda c: kl_of(torch.tensor(mean), c),
                                                  torch.tensor(cov)).numpy()
    else:
        import jax
        import jax.numpy as jnp

        def kl_of(mu, c):
            return gd.kl(gd.Gaussian(mu, 0.5 * (c + c.T)),
                         gd.Gaussian(jnp.asarray(mean), jnp.asarray(cov)))

        args = (jnp.asarray(mean), jnp.asarray(cov))
        assert float(kl_of(*args)) == 0.0
        g_mu, g_cov = jax.jit(jax.grad(kl_of, argnums=(0, 1)))(*args)
        assert np.all(np.asarray(g_mu) == 0) and float(jnp.abs(g_cov).max()) < 1e-15
        hessian = jax.jit(jax.hessian(kl_of, argnums=(0, 1)))(*args)
        h_mu, h_cov = np.asarray(hessian[0][0]), np.asarray(hessian[1][1])
    np.testing.assert_allclose(h_mu, inv, rtol=1e-10)
    for v in directions:
        curvature = np.einsum("ij,ijkl,kl->", v, h_cov, v)
        np.testing.assert_allclose(curvature, 0.5 * np.trace(inv @ v @ inv @ v), rtol=1e-9)


# --------------------------------------------------------------------------- JAX transforms
@pytest.mark.timeout(120)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_jax_jit_vmap_grad(dtype):
    jax = pytest.importorskip("jax")
    jax.config.update("jax_enable_x64", True)
    import jax.numpy as jnp

    rng = np.random.default_rng(7)
    d, batch = 3, 4
    means_np = rng.standard_normal((batch, d)).astype(dtype)
    covs_np = _spd(rng, d, (batch,)).astype(dtype)
    expected = gd.kl(gd.Gaussian(means_np.astype(np.float64), covs_np.astype(np.float64)),
                     gd.Gaussian(np.zeros(d), np.eye(d)))
    # One framework per computation: NumPy constants inside traced code are a mixing error.
    means, covs = jnp.asarray(means_np), jnp.asarray(covs_np)
    prior = gd.Gaussian.standard(d, like=jnp.zeros(1, dtype))
    rtol = 1e-5 if dtype == np.float32 else 1e-12

    jitted = jax.jit(lambda m, c: gd.kl(gd.Gaussian(m, c), prior))
    np.testing.assert_allclose(np.asarray(jitted(means, covs)), expected, rtol=rtol)
    mapped = jax.vmap(lambda m, c: gd.kl(gd.Gaussian(m, c), prior))
    np.testing.assert_allclose(np.asarray(mapped(means, covs)), expected, rtol=rtol)
    grads = jax.jit(jax.grad(lambda m: gd.kl(gd.Gaussian(m, covs[0]), prior)))(means[0])
    np.testing.assert_allclose(np.asarray(grads), means_np[0], rtol=rtol)  # Σ₂ = I: ∇ = Δμ
    # Under jit the exact route sits behind one lax.cond on "some element cancels": calls
    # where none does skip it; near-identical pairs still get it.
    jaxpr = str(jax.make_jaxpr(lambda m, c: gd.kl(gd.Gaussian(m, c), prior))(means, covs))
    assert "cond[" in jaxpr
    near = jitted(jnp.zeros((batch, d), dtype), jnp.asarray(
        np.eye(d, dtype=dtype) * (1 + np.asarray([1e-3, 0.5, 2.0, 1e-2], dtype)[:, None, None])))
    e = np.asarray([1e-3, 0.5, 2.0, 1e-2])
    np.testing.assert_allclose(np.asarray(near), 0.5 * d * (e - np.log1p(e)), rtol=rtol * 10)
    # Structural checks still run on traced arrays.
    with pytest.raises(gd.ShapeError):
        jax.jit(lambda c: gd.kl(gd.Gaussian(jnp.zeros(d, dtype), c), prior))(covs[0, :2])

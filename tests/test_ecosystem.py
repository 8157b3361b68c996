"""Gaussians that behave like torch and SciPy distributions: the mirrored methods and
properties against the library's functions and against torch/SciPy, distributions accepted
directly, round trips, a standard normal joining its partner's framework, scalar inputs,
packaging (the torch extra, py.typed) and torch.compile without warnings."""

from __future__ import annotations

import importlib.resources
import json
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

import gaussdiv as gd


def _spd(rng: np.random.Generator, d: int) -> np.ndarray:
    a = rng.standard_normal((d, d))
    return a @ a.T / d + np.eye(d)


def test_methods_delegate_to_the_functions():
    rng = np.random.default_rng(0)
    s = _spd(rng, 3)
    g = gd.Gaussian(rng.standard_normal(3), s)
    x = rng.standard_normal((5, 3))
    np.testing.assert_array_equal(g.log_prob(x), gd.log_prob(g, x))
    np.testing.assert_array_equal(g.sample(4, seed=1), gd.sample(g, 4, seed=1))
    np.testing.assert_array_equal(g.rsample(4, seed=1), gd.sample(g, 4, seed=1))
    assert g.entropy() == gd.entropy(g)
    assert g.event_shape == (3,) and g.loc is g.mean
    np.testing.assert_allclose(g.covariance_matrix, s)
    np.testing.assert_allclose(g.precision_matrix, np.linalg.inv(s), rtol=1e-12)
    np.testing.assert_allclose(g.scale_tril, np.linalg.cholesky(s), rtol=1e-12)
    np.testing.assert_allclose(g.variance, np.diag(s))
    np.testing.assert_allclose(g.stddev, np.sqrt(np.diag(s)))
    assert g.expand((2, 4)).batch_shape == (2, 4)
    # every structure answers the same properties
    structured = [gd.Gaussian.diag(np.zeros(3), logvar=np.log([1.0, 2.0, 3.0])),
                  gd.Gaussian.from_precision(np.zeros(3), s),
                  gd.Gaussian.lowrank(np.zeros(3), np.ones((3, 1)), np.ones(3))]
    for h in structured:
        np.testing.assert_allclose(h.scale_tril @ h.scale_tril.T, h.covariance_matrix,
                                   rtol=1e-12, atol=1e-14)
        np.testing.assert_allclose(h.precision_matrix @ h.covariance_matrix, np.eye(3),
                                   atol=1e-12)


def test_methods_against_scipy():
    rng = np.random.default_rng(1)
    s, m = _spd(rng, 4), rng.standard_normal(4)
    g, ref = gd.Gaussian(m, s), stats.multivariate_normal(m, s)
    x = rng.standard_normal((6, 4))
    np.testing.assert_allclose(g.log_prob(x), ref.logpdf(x), rtol=1e-13)
    assert g.entropy() == pytest.approx(ref.entropy(), rel=1e-14)
    back = gd.to_scipy(g)
    np.testing.assert_allclose(back.cov, s)
    np.testing.assert_allclose(back.logpdf(x), ref.logpdf(x), rtol=1e-13)
    with pytest.raises(gd.GaussianError, match="to_scipy takes one Gaussian"):
        gd.to_scipy(gd.Gaussian(np.zeros((2, 4)), s))
    # frozen SciPy objects go straight into the functions
    other = stats.multivariate_normal(np.zeros(4), np.eye(4))
    assert gd.kl(ref, other) == gd.kl(g, gd.Gaussian(np.zeros(4), np.eye(4)))


def test_methods_and_distributions_against_torch():
    torch = pytest.importorskip("torch")
    td = torch.distributions
    rng = np.random.default_rng(2)
    s, m = torch.tensor(_spd(rng, 3)), torch.tensor(rng.standard_normal(3))
    mvn = td.MultivariateNormal(m, covariance_matrix=s)
    g = gd.from_torch(mvn)
    x = torch.tensor(rng.standard_normal((5, 3)))
    torch.testing.assert_close(g.log_prob(x), mvn.log_prob(x), rtol=1e-13, atol=1e-13)
    torch.testing.assert_close(g.entropy(), mvn.entropy(), rtol=1e-13, atol=0)
    torch.testing.assert_close(g.precision_matrix, mvn.precision_matrix, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(g.scale_tril, mvn.scale_tril)
    diag = td.Independent(td.Normal(torch.zeros(3, dtype=torch.float64),
                                    torch.full((3,), 2.0, dtype=torch.float64)), 1)
    low = td.LowRankMultivariateNormal(torch.ones(3, dtype=torch.float64),
                                       torch.ones(3, 1, dtype=torch.float64),
                                       torch.ones(3, dtype=torch.float64))
    for p, q in ((mvn, diag), (diag, low), (low, mvn)):
        assert gd.kl(p, q) == gd.kl(gd.from_torch(p), gd.from_torch(q))
    torch.testing.assert_close(gd.kl(mvn, low), td.kl_divergence(mvn, low), rtol=1e-10, atol=0)
    normal = td.Normal(torch.tensor([0.0, 1.0], dtype=torch.float64),
                       torch.tensor([1.0, 2.0], dtype=torch.float64))
    assert gd.kl(normal, normal).shape == (2,)
    # round trips keep the parameters
    for dist, fields in ((mvn, ("loc", "scale_tril")), (low, ("loc", "cov_factor", "cov_diag"))):
        back = gd.to_torch(gd.from_torch(dist))
        assert type(back) is type(dist)
        for name in fields:
            torch.testing.assert_close(getattr(back, name), getattr(dist, name))
    back = gd.to_torch(gd.from_torch(diag))
    torch.testing.assert_close(back.base_dist.scale, diag.base_dist.scale)
    # NumPy Gaussians of every structure convert, and read back to the same KL
    rng2 = np.random.default_rng(3)
    for h in (gd.Gaussian(np.zeros(3), _spd(rng2, 3)), gd.Gaussian.diag(np.ones(3), var=[1, 2, 3]),
              gd.Gaussian.from_precision(np.zeros(3), _spd(rng2, 3)),
              gd.Gaussian.kronecker(np.zeros(4), _spd(rng2, 2), _spd(rng2, 2))):
        t = gd.to_torch(h)
        ref = gd.Gaussian(torch.zeros(h.dim, dtype=torch.float64),
                          torch.eye(h.dim, dtype=torch.float64))
        hb = gd.Gaussian(torch.as_tensor(h.mean.copy()),
                         torch.as_tensor(h.covariance_matrix.copy()))
        assert float(gd.kl(t, ref)) == pytest.approx(float(gd.kl(hb, ref)), rel=1e-12)


def test_to_moves_device_and_dtype():
    torch = pytest.importorskip("torch")
    g = gd.Gaussian(torch.zeros(2, 3, dtype=torch.float64), torch.eye(3, dtype=torch.float64))
    h = g.to(dtype=torch.float32)
    assert h.dtype == torch.float32 and h.mean.dtype == torch.float32
    assert gd.kl(h, h).dtype == torch.float32
    assert g.to("cpu").mean.device.type == "cpu"
    n = gd.Gaussian(np.zeros(3), 2 * np.eye(3)).to(dtype=np.float32)
    assert n.dtype == np.float32 and gd.kl(n, n) == 0
    with pytest.raises(gd.GaussianError, match="device= is for torch tensors"):
        gd.Gaussian(np.zeros(3), np.eye(3)).to("cuda")


def test_standard_normal_joins_its_partner():
    torch = pytest.importorskip("torch")
    mean = torch.zeros(4, 3, requires_grad=True)
    p = gd.Gaussian.diag(mean, logvar=torch.zeros(4, 3))
    value = gd.kl(p, gd.Gaussian.standard(3))  # no like=: takes p's framework and float32
    assert isinstance(value, torch.Tensor) and value.dtype == torch.float32
    value.sum().backward()
    assert mean.grad is not None
    with pytest.raises(gd.BackendMismatchError):  # a NumPy Gaussian with data still cannot
        gd.kl(p, gd.Gaussian(np.zeros(3), np.eye(3)))


def test_scalars_lists_and_messages():
    g = gd.Gaussian(0.0, 2.0)
    assert g.dim == 1 and g.batch_shape == ()
    assert gd.kl(gd.Gaussian(0.0, 1.0), gd.Gaussian(1.0, 1.0)) == pytest.approx(0.5, rel=1e-15)
    torch = pytest.importorskip("torch")
    t = gd.Gaussian([0.0, 1.0], torch.eye(2, dtype=torch.float32))
    assert t.dtype == torch.float32
    with pytest.raises(gd.GaussianError, match=r"entry \(1,\) is -1\.0$"):
        gd.Gaussian.diag(torch.zeros(2), std=torch.tensor([1.0, -1.0]))
    with pytest.raises(TypeError, match=r"got numpy\.ndarray .*gaussdiv\.from_torch"):
        gd.kl(np.eye(2), g)


def test_package_is_typed():
    assert importlib.resources.files("gaussdiv").joinpath("py.typed").is_file()


def test_torch_compile_gives_no_gaussdiv_warnings():
    torch = pytest.importorskip("torch")
    standard = gd.Gaussian(torch.zeros(3, dtype=torch.float64), torch.eye(3, dtype=torch.float64))

    def f(m, c):
        return gd.kl(gd.Gaussian(m, c), standard)

    compiled = torch.compile(f, backend="eager")
    m, c = torch.zeros(3, dtype=torch.float64), 2 * torch.eye(3, dtype=torch.float64)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        torch.testing.assert_close(compiled(m, c), f(m, c))
    ours = [w for w in caught if "gaussdiv" in str(w.filename) or "lru_cache" in str(w.message)]
    assert not ours, [str(w.message)[:120] for w in ours]


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_installing_the_torch_extra_keeps_the_installed_torch(tmp_path):
    """pip, asked for ".[torch]" where torch 2.13.0 is installed, would install no torch (the
    extra is a range; only the test extra pins)."""
    pytest.importorskip("torch")
    root = Path(__file__).resolve().parent.parent
    report = tmp_path / "report.json"
    done = subprocess.run([sys.executable, "-m", "pip", "install", "--dry-run", "-q",
                           "--report", str(report), f"{root}[torch]"],
                          capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr[-800:]
    installs = {item["metadata"]["name"].lower(): item["metadata"]["version"]
                for item in json.loads(report.read_text())["install"]}
    assert "torch" not in installs, installs

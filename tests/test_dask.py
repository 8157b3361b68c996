"""Gaussians of Dask arrays: lazy until computed, chunk results the in-memory ones (bit for bit
where the same kernels run, else to a few ulp), errors with the global batch index, matrices
and top-k by chunk pairs, and a real dask.distributed LocalCluster (worker processes on
127.0.0.1) that survives a worker killed mid-computation."""

from __future__ import annotations

import os
import signal
import time

import numpy as np
import pytest

import gaussdiv as gd

da = pytest.importorskip("dask.array")
dask = pytest.importorskip("dask")

N, D, CHUNK = 96, 4, 32


def _spd(rng: np.random.Generator, n: int, d: int) -> np.ndarray:
    a = rng.standard_normal((n, d, d))
    return a @ a.transpose(0, 2, 1) / d + np.eye(d)


def _inputs(kind: str, seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    mean = rng.standard_normal((N, D))
    return {
        "full": {"mean": mean, "cov": _spd(rng, N, D)},
        "precision": {"mean": mean, "precision": _spd(rng, N, D)},
        "scale_tril": {"mean": mean, "scale_tril": np.linalg.cholesky(_spd(rng, N, D))},
        "var": {"mean": mean, "var": rng.uniform(0.5, 2.0, (N, D))},
        "logvar": {"mean": mean, "logvar": rng.standard_normal((N, D))},
        "isotropic": {"mean": mean, "var": rng.uniform(0.5, 2.0, N)},
        "lowrank": {"mean": mean, "factor": rng.standard_normal((N, D, 2)),
                    "var": rng.uniform(0.5, 2.0, (N, D))},
        "kronecker": {"mean": mean, "a": _spd(rng, N, 2), "b": _spd(rng, N, 2)},
    }[kind]


def _build(kind: str, arrays: dict[str, np.ndarray]) -> gd.Gaussian:
    constructor = {"full": lambda mean, cov: gd.Gaussian(mean, cov),
                   "precision": gd.Gaussian.from_precision,
                   "scale_tril": gd.Gaussian.from_scale_tril, "var": gd.Gaussian.diag,
                   "logvar": gd.Gaussian.diag, "isotropic": gd.Gaussian.isotropic,
                   "lowrank": gd.Gaussian.lowrank, "kronecker": gd.Gaussian.kronecker}[kind]
    return constructor(**arrays)


def _lazy(arrays: dict[str, np.ndarray]) -> dict[str, object]:
    return {k: da.from_array(v, chunks=(CHUNK, *v.shape[1:])) for k, v in arrays.items()}


KINDS = ["full", "precision", "scale_tril", "var", "logvar", "isotropic", "lowrank", "kronecker"]
FUNCTIONS = [(gd.kl, {}), (gd.jeffreys, {}), (gd.renyi, {"alpha": 0.5}), (gd.hellinger, {}),
             (gd.bhattacharyya_coefficient, {}), (gd.wasserstein, {}), (gd.cross_entropy, {})]
#: Bit for bit where every element takes the same kernels. A chunk's elements that need a
#: second pass (backward-error corrections, the exact route) are gathered, and how many there
#: are decides between LAPACK (< 16) and the compiled kernels: those agree to a few ulp of the
#: terms.
ULPS = 16 * np.finfo(np.float64).eps


@pytest.mark.parametrize("kind", KINDS)
def test_every_structure_chunk_by_chunk_is_the_in_memory_result(kind):
    p_arrays, q_arrays = _inputs(kind, 1), _inputs("full", 2)
    p, q = _build(kind, p_arrays), _build("full", q_arrays)
    lazy_p = _build(kind, _lazy(p_arrays))
    lazy_q = _build("full", _lazy(q_arrays))
    assert type(lazy_p).__name__ == "DaskGaussian" and lazy_p.batch_shape == (N,)
    for function, options in FUNCTIONS:
        out = function(lazy_p, lazy_q, **options)
        assert isinstance(out, da.Array) and out.chunks == ((CHUNK,) * (N // CHUNK),)
        np.testing.assert_allclose(out.compute(), function(p, q, **options), rtol=ULPS, atol=0,
                                   err_msg=function.__name__)
    np.testing.assert_array_equal(gd.entropy(lazy_p).compute(), gd.entropy(p))
    if kind in ("var", "logvar", "isotropic"):  # one kernel for every element: bit for bit
        other = _inputs(kind, 3)
        np.testing.assert_array_equal(gd.kl(lazy_p, _build(kind, _lazy(other))).compute(),
                                      gd.kl(p, _build(kind, other)))
    # an in-memory Gaussian on the other side: unbatched, or batched and sliced per chunk
    standard = gd.Gaussian(np.zeros(D), np.eye(D))
    np.testing.assert_array_equal(gd.kl(lazy_p, standard).compute(), gd.kl(p, standard))
    np.testing.assert_array_equal(gd.kl(q, lazy_p).compute(), gd.kl(q, p))


def test_points_and_bounds():
    arrays = _inputs("full", 3)
    p, lazy = _build("full", arrays), _build("full", _lazy(arrays))
    x = np.random.default_rng(4).standard_normal((5, N, D))
    lazy_x = da.from_array(x, chunks=(5, CHUNK, D))
    np.testing.assert_array_equal(gd.log_prob(lazy, lazy_x).compute(), gd.log_prob(p, x))
    q = _build("logvar", _inputs("logvar", 5))
    np.testing.assert_array_equal(gd.log_ratio(lazy, q, x).compute(), gd.log_ratio(p, q, x))
    lower, upper = gd.tv_bounds(lazy, q)
    expected = gd.tv_bounds(p, q)
    np.testing.assert_array_equal(lower.compute(), expected[0])
    np.testing.assert_array_equal(upper.compute(), expected[1])
    terms, expected_terms = gd.kl_terms(lazy, q), gd.kl_terms(p, q)
    assert terms.dim == expected_terms.dim
    for name in ("logdet_ratio", "trace", "mahalanobis", "kl"):
        np.testing.assert_array_equal(getattr(terms, name).compute(),
                                      getattr(expected_terms, name))


def test_results_are_lazy_until_computed():
    calls = []

    def counted(block):
        calls.append(len(block))
        return block

    arrays = _inputs("var", 6)
    mean = da.from_array(arrays["mean"], chunks=(CHUNK, D)).map_blocks(
        counted, meta=np.empty((0, 0)))
    lazy = gd.Gaussian.diag(mean, var=da.from_array(arrays["var"], chunks=(CHUNK, D)))
    results = [gd.kl(lazy, lazy), gd.pairwise(gd.kl, lazy), gd.sample(lazy, 3, seed=0),
               gd.pairwise_topk(gd.kl, lazy, lazy, 2)[0]]
    assert calls == []
    dask.compute(*results)
    assert calls


def test_global_batch_index_in_errors():
    arrays = _inputs("full", 7)
    arrays["cov"][70] = -np.eye(D)
    lazy = _build("full", _lazy(arrays))  # value checks wait for the compute
    result = gd.kl(lazy, lazy)
    with pytest.raises(gd.NotPositiveDefiniteError, match="at batch index 70"):
        result.compute()
    arrays = _inputs("logvar", 8)
    arrays["logvar"][2, 1] = np.nan
    arrays["logvar"][40, 1] = np.nan
    with pytest.raises(gd.NonFiniteError, match=r"logvar has a NaN entry at index \(40, 1\)|"
                                                r"at index \(2, 1\)"):
        gd.kl(_build("logvar", _lazy(arrays)), _build("logvar", _inputs("logvar", 9))).compute()


def test_chunked_event_axis_and_other_bad_input():
    mean = da.zeros((N, D), chunks=(CHUNK, 2))
    with pytest.raises(gd.ShapeError, match="chunked along its event axis"):
        gd.Gaussian(mean, np.eye(D))
    lazy = _build("full", _lazy(_inputs("full", 10)))
    with pytest.raises(gd.ShapeError, match="batch shapes do not broadcast"):
        gd.Gaussian(da.zeros((N, D), chunks=(CHUNK, D)), da.zeros((5, D, D)))
    with pytest.raises(gd.GaussianError, match=r"k must be an integer from 1 to the number of "
                                               r"Q's \(96\)"):
        gd.pairwise_topk(gd.kl, lazy, lazy, 0)
    torch = pytest.importorskip("torch")
    other = gd.Gaussian(torch.zeros(D, dtype=torch.float64), torch.eye(D, dtype=torch.float64))
    with pytest.raises(gd.BackendMismatchError, match="Dask Gaussian meets a torch"):
        gd.kl(lazy, other)


def test_pairwise_and_topk_by_chunk_pairs():
    p_arrays, q_arrays = _inputs("full", 11), _inputs("full", 12)
    q_arrays["cov"][:3], q_arrays["mean"][:3] = p_arrays["cov"][:3], p_arrays["mean"][:3]
    p, q = _build("full", p_arrays), _build("full", q_arrays)
    lazy_p, lazy_q = _build("full", _lazy(p_arrays)), _build("full", _lazy(q_arrays))
    for function in (gd.kl, gd.hellinger):
        matrix = gd.pairwise(function, lazy_p, lazy_q)
        assert matrix.chunks == ((CHUNK,) * 3, (CHUNK,) * 3)
        np.testing.assert_allclose(matrix.compute(), gd.pairwise(function, p, q), rtol=1e-13,
                                   atol=0)
    assert np.all(np.diag(gd.pairwise(gd.kl, lazy_p, lazy_q).compute())[:3] == 0)
    for largest in (False, True):
        index, value = gd.pairwise_topk(gd.kl, lazy_p, lazy_q, 5, largest=largest)
        expected_index, expected_value = gd.pairwise_topk(gd.kl, p, q, 5, largest=largest)
        np.testing.assert_array_equal(index.compute(), expected_index)
        np.testing.assert_allclose(value.compute(), expected_value, rtol=1e-13, atol=0)
    # Q in memory, P lazy; and a Q chunk smaller than k
    small = gd.Gaussian(q_arrays["mean"][:3], q_arrays["cov"][:3])
    index, value = gd.pairwise_topk(gd.kl, lazy_p, small, 3)
    np.testing.assert_array_equal(index.compute(), gd.pairwise_topk(gd.kl, p, small, 3)[0])


def test_sample_is_reproducible_per_chunking_and_has_the_right_moments():
    arrays = _inputs("var", 13)
    lazy = _build("var", _lazy(arrays))
    first = gd.sample(lazy, 2000, seed=5)
    assert first.shape == (2000, N, D) and first.dtype == np.float64
    a = first.compute()
    np.testing.assert_array_equal(a, gd.sample(lazy, 2000, seed=5).compute(scheduler="sync"))
    mean_error = np.abs(a.mean(0) - arrays["mean"]) / np.sqrt(arrays["var"] / 2000)
    assert mean_error.max() < 5.5
    assert not np.array_equal(a, gd.sample(lazy, 2000, seed=6).compute())


@pytest.fixture(scope="module")
def cluster():
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  host="127.0.0.1", dashboard_address=None,
                                  memory_limit="2GiB") as local, \
            distributed.Client(local) as client:
        yield client


@pytest.mark.slow
@pytest.mark.timeout(240)
def test_local_cluster_gives_the_in_memory_result(cluster):
    p_arrays, q_arrays = _inputs("full", 14), _inputs("logvar", 15)
    p, q = _build("full", p_arrays), _build("logvar", q_arrays)
    lazy_p, lazy_q = _build("full", _lazy(p_arrays)), _build("logvar", _lazy(q_arrays))
    np.testing.assert_array_equal(cluster.compute(gd.kl(lazy_p, lazy_q)).result(), gd.kl(p, q))
    np.testing.assert_allclose(cluster.compute(gd.pairwise(gd.kl, lazy_p, lazy_q)).result(),
                               gd.pairwise(gd.kl, p, q), rtol=1e-13, atol=0)
    arrays = _inputs("full", 16)
    arrays["cov"][50] = np.diag([1.0, -1.0, 1.0, 1.0])
    with pytest.raises(gd.NotPositiveDefiniteError, match="at batch index 50"):
        cluster.compute(gd.kl(_build("full", _lazy(arrays)), lazy_p)).result()


@pytest.mark.slow
@pytest.mark.timeout(240)
def test_a_worker_killed_mid_computation_is_retried(cluster):
    rng = np.random.default_rng(17)
    n = 40 * CHUNK

    def slow_kl(p, q):  # a divergence slow enough to be caught mid-way
        time.sleep(0.25)
        return gd.kl(p, q)

    mean, cov = rng.standard_normal((n, D)), _spd(rng, n, D)
    lazy = gd.Gaussian(da.from_array(mean, chunks=(CHUNK, D)),
                       da.from_array(cov, chunks=(CHUNK, D, D)))
    standard = gd.Gaussian(np.zeros(D), np.eye(D))
    future = cluster.compute(_lazy_map(slow_kl, lazy, standard))
    time.sleep(1.0)
    assert not future.done()
    pids = cluster.run(os.getpid)
    victim = next(iter(pids.values()))
    os.kill(victim, signal.SIGKILL)
    result = future.result(timeout=200)
    np.testing.assert_array_equal(result, gd.kl(gd.Gaussian(mean, cov), standard))
    assert victim not in cluster.run(os.getpid).values()


def _lazy_map(function, lazy, other):
    """``function`` over the chunks of a Dask Gaussian, as the library's own calls are."""
    from gaussdiv.lazy.blocks import lazy_elementwise

    return lazy_elementwise(function, (lazy, other), {})

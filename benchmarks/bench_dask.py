"""Scale-out on Dask: throughput on a LocalCluster of worker processes against the single-process
path, per core, and the scheduler's overhead per task (for the projection in the docs).

* VAE-like diagonal pairs, d = 32: KL(N(μ, diag e^ℓ) ‖ N(0, I)) for ``--pairs`` pairs (10⁸ by
  default), μ and ℓ drawn chunk by chunk by Dask (nothing is held in memory), the sum computed.
  Single-process path: the same chunk's work (draw + gaussdiv.kl + sum) in this process on one
  core, timed per chunk. Cluster: ``--workers`` worker processes with one thread each, BLAS and
  numba on one thread, on 127.0.0.1.
* top-k of diagonal Gaussians (d = 32, k = 10), P as Dask chunks against an in-memory Q, on
  the cluster against the single-process ``pairwise_topk``.
* scheduler overhead: seconds per task of a graph of tiny tasks.

    python benchmarks/bench_dask.py [--quick] [--pairs N] [--workers W] [--out FILE]
"""

from __future__ import annotations

import argparse
import os

for _name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS"):
    os.environ[_name] = "1"  # one core per process, here and in the workers (they inherit it)

import time  # noqa: E402

import numpy as np  # noqa: E402
from _machine import describe, emit  # noqa: E402
from bench_pairwise import fmt  # noqa: E402

import gaussdiv as gd  # noqa: E402

D = 32


def vae_graph(pairs: int, chunk: int):
    import dask.array as da

    rng = da.random.default_rng(0)
    mean = rng.standard_normal((pairs, D), chunks=(chunk, D))
    logvar = 0.5 * rng.standard_normal((pairs, D), chunks=(chunk, D))
    p = gd.Gaussian.diag(mean, logvar=logvar)
    return gd.kl(p, gd.Gaussian.standard(D)).sum()


def single_chunk_seconds(chunk: int, repeat: int = 5) -> float:
    """Median seconds of one chunk's work in this process."""
    rng = np.random.default_rng(0)
    standard = gd.Gaussian.standard(D)
    times = []
    for _ in range(repeat + 1):
        start = time.perf_counter()
        mean = rng.standard_normal((chunk, D))
        logvar = 0.5 * rng.standard_normal((chunk, D))
        float(gd.kl(gd.Gaussian.diag(mean, logvar=logvar), standard).sum())
        times.append(time.perf_counter() - start)
    return float(np.median(times[1:]))


def overhead_per_task(client, tasks: int = 2000) -> float:
    import dask.array as da

    x = da.ones(tasks, chunks=1)
    client.compute((x + 1).sum()).result()  # warm
    start = time.perf_counter()
    client.compute((x + 1).sum()).result()
    return (time.perf_counter() - start) / (2 * tasks)  # two tasks per chunk, plus the tree


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="10⁷ pairs and a small top-k")
    parser.add_argument("--pairs", type=int, default=None)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 2)
    parser.add_argument("--out", metavar="FILE")
    args = parser.parse_args()
    import dask.array as da
    import distributed

    pairs = args.pairs or (10**7 if args.quick else 10**8)
    chunk = 10**6
    per_chunk = single_chunk_seconds(chunk)
    single = chunk / per_chunk
    lines = ["## Scale-out on Dask (benchmarks/bench_dask.py)", "",
             *[line for line in describe(None, None) if "PyTorch" not in line],
             f"- dask {__import__('dask').__version__}, distributed "
             f"{distributed.__version__}; {args.workers} worker processes × 1 thread, "
             "127.0.0.1", ""]
    with distributed.LocalCluster(n_workers=args.workers, threads_per_worker=1,
                                  processes=True, host="127.0.0.1", dashboard_address=None,
                                  memory_limit="4GiB") as cluster, \
            distributed.Client(cluster) as client:
        client.compute(vae_graph(4 * chunk, chunk)).result()  # warm: imports, numba caches
        start = time.perf_counter()
        total = client.compute(vae_graph(pairs, chunk)).result()
        seconds = time.perf_counter() - start
        overhead = overhead_per_task(client)
        cluster_rate = pairs / seconds
        lines += [
            f"### KL of {pairs:.0e} VAE-like diagonal pairs (d = {D}), chunks of {chunk:.0e}",
            "",
            "| path | time | pairs/s | pairs/s per core | ÷ single process per core |",
            "|---|---|---|---|---|",
            f"| single process, one core (per chunk × {pairs // chunk}) | "
            f"{fmt(per_chunk * pairs / chunk)} | {single:.3g} | {single:.3g} | 1 |",
            f"| LocalCluster, {args.workers} processes | {fmt(seconds)} | {cluster_rate:.3g} | "
            f"{cluster_rate / args.workers:.3g} | {cluster_rate / args.workers / single:.2f} |",
            "",
            f"- sum of KL: {total:.6e}; scheduler overhead ≈ {overhead * 1e3:.2f} ms per task "
            f"(a graph of tiny tasks); {pairs // chunk} chunks → ≈ "
            f"{3 * pairs // chunk} tasks here", ""]
        n, m = (20_000, 2_000) if args.quick else (1_000_000, 10_000)
        rng = np.random.default_rng(1)
        q = gd.Gaussian.diag(rng.standard_normal((m, D)), logvar=0.5 * rng.standard_normal((m, D)))
        mean = da.random.default_rng(2).standard_normal((n, D), chunks=(max(n // 40, 1), D))
        logvar = 0.5 * da.random.default_rng(3).standard_normal((n, D),
                                                                 chunks=(max(n // 40, 1), D))
        p = gd.Gaussian.diag(mean, logvar=logvar)
        index, _ = gd.pairwise_topk(gd.kl, p, q, 10)
        start = time.perf_counter()
        lazy_index = client.compute(index).result()
        topk_seconds = time.perf_counter() - start
        p_small = gd.Gaussian.diag(np.asarray(mean[:2000]), logvar=np.asarray(logvar[:2000]))
        start = time.perf_counter()
        local_index, _ = gd.pairwise_topk(gd.kl, p_small, q, 10)
        local_rate = 2000 * m / (time.perf_counter() - start)
        lines += [
            f"### top-10 of {n} × {m} diagonal Gaussians (d = {D}), P in 40 Dask chunks", "",
            f"- LocalCluster: {fmt(topk_seconds)}, {n * m / topk_seconds:.3g} pairs/s "
            f"({n * m / topk_seconds / args.workers:.3g} per core)",
            f"- single process, one core, on 2000 rows: {local_rate:.3g} pairs/s",
            f"- the first 2000 rows agree with the single-process result: "
            f"{bool(np.array_equal(lazy_index[:2000], local_index))}"]
    emit(lines, args.out)


if __name__ == "__main__":
    main()

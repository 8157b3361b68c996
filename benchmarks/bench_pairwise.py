"""Divergence matrices and top-k, measured side by side in one process (NumPy float64).

* KL matrix N × M at d = 16 (full covariances; Q holds exact copies of 50 of the P's and 50
  copies perturbed by 1e-9, so identical and near-identical pairs are in it): the
  ``gaussdiv.pairwise`` call against one bare GEMM of packed moments, (N × (d(d+1)/2 + d)) @
  (· × M) of random arrays of that shape, and against broadcasting ``gaussdiv.kl`` over
  ``P[:, None]``, ``Q[None, :]`` (timed on a slab of rows and scaled to N rows). The worst
  relative error of the matrix against the single-pair function on sampled rows (identical and
  near pairs included), and the peak of NumPy allocations during one call (tracemalloc) against
  the output's size.
* top-k of diagonal (log-variance) Gaussians, d = 32, k = 10: time, throughput (pairs per
  second) and the peak of allocations, against computing the full matrix with ``pairwise`` and
  ``np.argpartition`` where that fits.

    OMP_NUM_THREADS=1 python benchmarks/bench_pairwise.py [--quick] [--repeat N] [--out FILE]
"""

from __future__ import annotations

import argparse
import time
import tracemalloc

import numpy as np
from _machine import describe, emit
from bench_targets import fmt, interleaved

import gaussdiv as gd

try:
    import torch
except ImportError:
    torch = None


def spd(rng: np.random.Generator, batch: int, d: int) -> np.ndarray:
    a = rng.standard_normal((batch, d, d))
    return a @ a.transpose(0, 2, 1) / d + np.eye(d)


def dense_pair(rng: np.random.Generator, n: int, m: int, d: int) -> tuple[gd.Gaussian, ...]:
    s1, s2 = spd(rng, n, d), spd(rng, m, d)
    m1, m2 = rng.standard_normal((n, d)), rng.standard_normal((m, d))
    s2[:50], m2[:50] = s1[:50], m1[:50]
    e = rng.standard_normal((50, d, d))
    s2[50:100] = s1[50:100] + 1e-9 * (e + e.transpose(0, 2, 1))
    m2[50:100] = m1[50:100] + 1e-9 * rng.standard_normal((50, d))
    return gd.Gaussian(m1, s1), gd.Gaussian(m2, s2)


def peak_bytes(fn) -> int:
    """Peak of NumPy allocations (tracemalloc) during one call of fn, above what was live."""
    tracemalloc.start()
    tracemalloc.reset_peak()
    base = tracemalloc.get_traced_memory()[0]
    fn()
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return peak - base


def matrix_rows(rng: np.random.Generator, n: int, d: int, slab: int, repeat: int) -> list[str]:
    p, q = dense_pair(rng, n, n, d)
    width = d * (d + 1) // 2 + d
    a, b = rng.standard_normal((n, width)), rng.standard_normal((width, n))
    slab_p = p[:slab].reshape(slab, 1)
    q_row = q.reshape(1, n)
    times = interleaved({
        "gaussdiv": lambda: gd.pairwise(gd.kl, p, q),
        "gemm": lambda: a @ b,
    }, repeat)
    gd.kl(p[:2].reshape(2, 1), q_row)  # warm-up: kernels compiled or loaded from the cache
    start = time.perf_counter()
    reference = np.asarray(gd.kl(slab_p, q_row))
    broadcast = (time.perf_counter() - start) * n / slab
    out = gd.pairwise(gd.kl, p, q)
    rows = np.r_[0:slab]
    scale = np.where(reference == 0, 1.0, reference)
    worst = float(np.max(np.abs(out[rows] - reference) / scale))
    zeros = int(np.sum(out[np.arange(50), np.arange(50)] == 0))
    peak = peak_bytes(lambda: gd.pairwise(gd.kl, p, q))
    output = n * n * 8
    return [
        f"### KL matrix {n} × {n}, d = {d} (full covariances)", "",
        "| method | time | ÷ bare GEMM | broadcasting kl ÷ method |",
        "|---|---|---|---|",
        f"| gaussdiv.pairwise(kl, P, Q) | {fmt(times['gaussdiv'])} | "
        f"{times['gaussdiv'] / times['gemm']:.2f} | {broadcast / times['gaussdiv']:.0f}× |",
        f"| one bare GEMM ({n} × {width}) @ ({width} × {n}) | {fmt(times['gemm'])} | 1 | |",
        f"| broadcasting gaussdiv.kl (timed on {slab} rows, × {n // slab}) | {fmt(broadcast)} | "
        f"{broadcast / times['gemm']:.0f} | 1 |", "",
        f"- worst relative error against the single-pair function over rows 0–{slab - 1} "
        f"(all {n} columns; 50 identical and 50 near-identical pairs among them): {worst:.1e}; "
        f"identical pairs exactly 0: {zeros}/50",
        f"- peak of allocations during the call: {peak / 2**20:.1f} MiB = "
        f"{peak / output:.2f} × the output ({output / 2**20:.1f} MiB)",
    ]


def topk_rows(rng: np.random.Generator, n: int, m: int, d: int, k: int,
              full_limit: int) -> list[str]:
    p = gd.Gaussian.diag(rng.standard_normal((n, d)), logvar=0.5 * rng.standard_normal((n, d)))
    q = gd.Gaussian.diag(rng.standard_normal((m, d)), logvar=0.5 * rng.standard_normal((m, d)))
    start = time.perf_counter()
    index, _ = gd.pairwise_topk(gd.kl, p, q, k)
    seconds = time.perf_counter() - start
    small = min(n, 2000)
    peak = peak_bytes(lambda: gd.pairwise_topk(gd.kl, p[:small], q, k))
    lines = [f"### top-{k}, diagonal Gaussians (log-variances), d = {d}: {n} × {m}", "",
             f"- gaussdiv.pairwise_topk: {fmt(seconds)}, {n * m / seconds:.3g} pairs/s",
             f"- peak of allocations for {small} rows × {m}: {peak / 2**20:.1f} MiB "
             f"(the full matrix would be {small * m * 8 / 2**20:.1f} MiB; the result "
             f"{small * k * 16 / 2**20:.2f} MiB)"]
    if n * m <= full_limit:
        def full() -> np.ndarray:
            return np.argpartition(gd.pairwise(gd.kl, p, q), k - 1, axis=1)[:, :k]

        start = time.perf_counter()
        full()
        full_seconds = time.perf_counter() - start
        lines.append(f"- full matrix + np.argpartition: {fmt(full_seconds)} "
                     f"(÷ top-k {full_seconds / seconds:.2f})")
    check = np.argsort(np.asarray(gd.pairwise(gd.kl, p[:20], q)), axis=1, kind="stable")[:, :k]
    lines.append(f"- first 20 rows equal a full sort: {bool(np.array_equal(index[:20], check))}")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="smaller sizes, fewer repeats")
    parser.add_argument("--repeat", type=int, default=None)
    parser.add_argument("--out", metavar="FILE", help="also write the markdown to FILE")
    parser.add_argument("--no-topk", action="store_true", help="the matrices only")
    args = parser.parse_args()
    repeat = args.repeat or (3 if args.quick else 7)
    rng = np.random.default_rng(0)
    matrices = [500] if args.quick else [2000, 4000]
    sizes = (20_000, 2000) if args.quick else (1_000_000, 10_000)
    lines = ["## Divergence matrices and top-k (benchmarks/bench_pairwise.py)", "",
             *describe(torch, torch.get_num_threads() if torch else None), ""]
    for n in matrices:
        lines += [*matrix_rows(rng, n, 16, 20, repeat), ""]
    if not args.no_topk:
        lines += topk_rows(rng, *sizes, 32, 10, full_limit=10**8)
    emit(lines, args.out)


if __name__ == "__main__":
    main()

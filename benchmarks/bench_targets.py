"""The performance issue's targets, measured side by side in one process (NumPy inputs).

For each case every method gets the same arrays; the methods are run round-robin (interleaved)
``--repeat`` times after a warm-up, and the median of each is reported with the ratio to
gaussdiv's time (> 1: gaussdiv is faster) or, for yardsticks, gaussdiv's time over theirs:

* dense batches (batch × d): the whole gaussdiv call (construction, validation, KL) against
  ``torch.distributions.kl_divergence`` of two ``MultivariateNormal`` (default validation;
  tensors made with ``torch.from_numpy`` beforehand), the textbook NumPy formula through
  Cholesky factors without checks, and one ``np.linalg.cholesky(S1)`` of the same batch;
* near-identical batches (S2 = S1 + 1e-8·E, same means): gaussdiv near / gaussdiv separated;
* one pair at d = 8: gaussdiv against the textbook formula and torch;
* the VAE term, logvar 10⁶ × 64 against N(0, I): against the one-line NumPy formula and the
  bandwidth floor (bytes of μ and ln σ² ÷ the read bandwidth of ``np.sum`` over them);
* one pair at large d: against the LAPACK floor — SciPy's ``dpotrf`` twice and ``dtrtrs`` once
  (the calls the formula needs, same BLAS).

``--plot FILE`` also draws time against batch (d = 8) and against d (batch 1000) on log–log
axes for gaussdiv, torch and the textbook formula, with the Cholesky yardstick.

    OMP_NUM_THREADS=1 python benchmarks/bench_targets.py [--quick] [--repeat N] [--plot PNG]
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from functools import partial
from typing import Any

import numpy as np
import scipy.linalg.lapack as lapack
from _machine import describe, emit

import gaussdiv as gd

try:
    import torch
    from torch.distributions import MultivariateNormal, kl_divergence
except ImportError:  # torch is optional: its column is left empty
    torch = None


def spd(rng: np.random.Generator, batch: int, d: int) -> np.ndarray:
    a = rng.standard_normal((batch, d, d))
    return a @ a.transpose(0, 2, 1) / d + np.eye(d)


def textbook(m1: np.ndarray, s1: np.ndarray, m2: np.ndarray, s2: np.ndarray) -> np.ndarray:
    """½(ln|S2|/|S1| + tr(S2⁻¹S1) + ΔᵀS2⁻¹Δ − d) through Cholesky factors, no checks."""
    l1, l2 = np.linalg.cholesky(s1), np.linalg.cholesky(s2)
    whitened = np.linalg.solve(l2, l1)
    delta = np.linalg.solve(l2, (m2 - m1)[..., None])[..., 0]
    logdet = 2 * np.sum(np.log(np.diagonal(l2, axis1=-2, axis2=-1)
                               / np.diagonal(l1, axis1=-2, axis2=-1)), -1)
    return 0.5 * (logdet + np.sum(whitened**2, (-2, -1)) + np.sum(delta**2, -1) - s1.shape[-1])


def torch_kl(m1: np.ndarray, s1: np.ndarray, m2: np.ndarray, s2: np.ndarray) -> Callable | None:
    if torch is None:
        return None
    t = [torch.from_numpy(x) for x in (m1, s1, m2, s2)]
    return lambda: kl_divergence(MultivariateNormal(t[0], t[1]), MultivariateNormal(t[2], t[3]))


def gaussdiv_kl(m1: np.ndarray, s1: np.ndarray, m2: np.ndarray, s2: np.ndarray) -> Callable:
    return lambda: gd.kl(gd.Gaussian(m1, s1), gd.Gaussian(m2, s2))


def interleaved(fns: dict[str, Callable | None], repeat: int) -> dict[str, float]:
    """Median seconds per call of each function, run round-robin after one warm-up each;
    functions faster than 20 ms are called in loops of 10."""
    live = {k: f for k, f in fns.items() if f is not None}
    loops = {}
    for name, f in live.items():
        start = time.perf_counter()
        f()
        loops[name] = 10 if time.perf_counter() - start < 0.02 else 1
    times: dict[str, list[float]] = {k: [] for k in live}
    for _ in range(repeat):
        for name, f in live.items():
            start = time.perf_counter()
            for _ in range(loops[name]):
                f()
            times[name].append((time.perf_counter() - start) / loops[name])
    return {k: statistics.median(v) for k, v in times.items()}


def fmt(seconds: float) -> str:
    if seconds < 1e-3:
        return f"{seconds * 1e6:.0f} µs"
    if seconds < 1:
        return f"{seconds * 1e3:.1f} ms"
    return f"{seconds:.2f} s"


def dense_rows(rng: np.random.Generator, shapes: list[tuple[int, int]], repeat: int) -> list[str]:
    rows = ["| batch × d | gaussdiv | torch.distributions (÷ gaussdiv) | textbook NumPy (÷) | "
            "gaussdiv ÷ np.linalg.cholesky(S1) | near-identical ÷ separated |",
            "|---|---:|---:|---:|---:|---:|"]
    for batch, d in shapes:
        s1, s2 = spd(rng, batch, d), spd(rng, batch, d)
        m1, m2 = rng.standard_normal((2, batch, d))
        e = rng.standard_normal((batch, d, d))
        s3 = s1 + 1e-8 * (e + e.transpose(0, 2, 1))
        t = interleaved({"gaussdiv": gaussdiv_kl(m1, s1, m2, s2),
                         "near": gaussdiv_kl(m1, s1, m1, s3),
                         "torch": torch_kl(m1, s1, m2, s2),
                         "textbook": partial(textbook, m1, s1, m2, s2),
                         "cholesky": partial(np.linalg.cholesky, s1)}, repeat)
        g = t["gaussdiv"]
        torch_cell = f"{fmt(t['torch'])} ({t['torch'] / g:.2f}×)" if "torch" in t else "—"
        rows.append(f"| {batch:,} × {d} | {fmt(g)} | {torch_cell} | "
                    f"{fmt(t['textbook'])} ({t['textbook'] / g:.2f}×) | "
                    f"{g / t['cholesky']:.2f} | {t['near'] / g:.2f} |")
    return rows


def single_pair_rows(rng: np.random.Generator, repeat: int) -> list[str]:
    s1, s2 = spd(rng, 1, 8)[0], spd(rng, 1, 8)[0]
    m1, m2 = rng.standard_normal((2, 8))
    t = interleaved({"gaussdiv": gaussdiv_kl(m1, s1, m2, s2),
                     "torch": torch_kl(m1, s1, m2, s2),
                     "textbook": partial(textbook, m1, s1, m2, s2)}, repeat * 5)
    g = t["gaussdiv"]
    torch_cell = f"{fmt(t['torch'])} ({t['torch'] / g:.2f}×)" if "torch" in t else "—"
    return ["| one pair, d = 8 | gaussdiv | torch.distributions (÷) | textbook (÷) | "
            "gaussdiv ÷ textbook |", "|---|---:|---:|---:|---:|",
            f"| | {fmt(g)} | {torch_cell} | {fmt(t['textbook'])} ({t['textbook'] / g:.2f}×) | "
            f"{g / t['textbook']:.2f} |"]


def vae_rows(rng: np.random.Generator, n: int, repeat: int) -> list[str]:
    d = 64
    mu = rng.standard_normal((n, d))
    logvar = 0.1 * rng.standard_normal((n, d))
    t = interleaved({
        "gaussdiv": lambda: gd.kl(gd.Gaussian.diag(mu, logvar=logvar), gd.Gaussian.standard(d)),
        "oneline": lambda: -0.5 * np.sum(1 + logvar - mu**2 - np.exp(logvar), -1),
        "read": lambda: (np.sum(mu), np.sum(logvar))}, max(3, repeat // 2))
    g = t["gaussdiv"]
    return [f"| VAE term, logvar {n:,} × {d} → N(0, I) | gaussdiv | one-line NumPy (÷) | "
            "bandwidth floor (read μ, ln σ²) | gaussdiv ÷ floor |", "|---|---:|---:|---:|---:|",
            f"| | {fmt(g)} | {fmt(t['oneline'])} ({t['oneline'] / g:.2f}×) | {fmt(t['read'])} | "
            f"{g / t['read']:.2f} |"]


def large_d_rows(rng: np.random.Generator, dims: list[int], repeat: int) -> list[str]:
    rows = ["| one pair, d | gaussdiv | LAPACK floor (2 potrf + 1 trtrs) | gaussdiv ÷ floor |",
            "|---|---:|---:|---:|"]
    for d in dims:
        s1, s2 = spd(rng, 1, d)[0], spd(rng, 1, d)[0]
        m1, m2 = rng.standard_normal((2, d))

        def floor(s1=s1, s2=s2) -> Any:
            l1, _ = lapack.dpotrf(s1, lower=1)
            l2, _ = lapack.dpotrf(s2, lower=1)
            return lapack.dtrtrs(l2, l1, lower=1)

        t = interleaved({"gaussdiv": gaussdiv_kl(m1, s1, m2, s2), "floor": floor},
                        max(3, repeat // 3))
        rows.append(f"| {d} | {fmt(t['gaussdiv'])} | {fmt(t['floor'])} | "
                    f"{t['gaussdiv'] / t['floor']:.2f} |")
    return rows


def plot(rng: np.random.Generator, path: str, repeat: int) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker

    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    sweeps = [("batch (d = 8)", [(b, 8) for b in (1, 10, 100, 1000, 10_000, 100_000)], 0),
              ("d (batch 1000)", [(1000, d) for d in (2, 4, 8, 16, 32, 64)], 1)]
    for label, shapes, axis in sweeps:
        series: dict[str, list[float]] = {}
        for batch, d in shapes:
            s1, s2 = spd(rng, batch, d), spd(rng, batch, d)
            m1, m2 = rng.standard_normal((2, batch, d))
            t = interleaved({"gaussdiv": gaussdiv_kl(m1, s1, m2, s2),
                             "torch.distributions": torch_kl(m1, s1, m2, s2),
                             "textbook NumPy": partial(textbook, m1, s1, m2, s2),
                             "np.linalg.cholesky(S1)": partial(np.linalg.cholesky, s1)},
                            max(3, repeat // 2))
            for name, value in t.items():
                series.setdefault(name, []).append(value)
        xs = [shape[axis] for shape in shapes]
        ax = axes[axis]
        for name, values in series.items():
            style = "--" if name.startswith("np.") else "-"
            ax.loglog(xs, values, style, marker="o", label=name)
        ax.set_xticks(xs, [f"{x:,}" for x in xs])
        ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
        ax.set_xlabel(label)
        ax.set_ylabel("seconds per call (construction + KL)")
        ax.grid(True, which="both", alpha=0.3)
    axes[0].legend()
    fig.suptitle("KL of dense Gaussians, NumPy float64 inputs")
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="smaller batches, fewer repeats")
    parser.add_argument("--repeat", type=int, default=None)
    parser.add_argument("--plot", metavar="PNG", help="also draw the scaling plot to PNG")
    parser.add_argument("--out", metavar="FILE", help="also write the markdown to FILE")
    args = parser.parse_args()
    repeat = args.repeat or (3 if args.quick else 9)
    rng = np.random.default_rng(0)
    shapes = ([(10_000, 2), (10_000, 8), (1000, 32)] if args.quick else
              [(100_000, 2), (100_000, 8), (10_000, 8), (1000, 8), (10_000, 32), (1000, 32)])
    lines = ["## Performance targets (benchmarks/bench_targets.py)", "",
             *describe(torch, torch.get_num_threads() if torch else None), "",
             *dense_rows(rng, shapes, repeat), "", *single_pair_rows(rng, repeat), "",
             *vae_rows(rng, 100_000 if args.quick else 1_000_000, repeat), "",
             *large_d_rows(rng, [256] if args.quick else [1024, 4096], repeat)]
    emit(lines, args.out)
    if args.plot:
        plot(rng, args.plot, repeat)


if __name__ == "__main__":
    main()

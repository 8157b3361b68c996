"""Speed of gaussdiv's W₂ against two textbook anchors, on one d = 2048 pair, one thread.

Every method gets the same arrays in one process, side by side:

* gaussdiv: ``wasserstein(p, q, squared=True)`` on prebuilt Gaussians (their Cholesky factors
  are cached at construction), and with both Gaussians built from the arrays inside the timed
  call (validation, private copies, two Cholesky factors) as a user with bare arrays pays it;
* SciPy eigh anchor: Σ₁^½ = U diag(√s) Uᵀ from ``scipy.linalg.eigh(Σ₁)``, then
  ``eigh(Σ₁^½ Σ₂ Σ₁^½, eigvals_only=True)`` and tr Σ₁ + tr Σ₂ − 2 Σ √λ;
* torchmetrics anchor: ``_compute_fid``'s formula, tr Σ₁ + tr Σ₂ −
  2 Re Σ √(``torch.linalg.eigvals(Σ₁ @ Σ₂)``) (complex square roots, then real parts).

Three pairs: "separated" (two independent Wishart-type Σ = AAᵀ/d + I/2, random means), "near"
(Σ₂ = Σ₁ + 1e-8·E, μ₂ = μ₁ + 1e-8·e), where gaussdiv's fast sum cancels and its eigenbasis
route runs as well, and "FID statistics": the ``np.cov`` of 500 and 400 samples (ranks 499 and
399), given to gaussdiv as ``Gaussian.semidefinite``. Each method is warmed up once, then run
``--repeat`` times; the median wall and process-CPU times are reported, and ratios gaussdiv /
fastest anchor (the target is ≤ 0.6). The last column is each value's relative deviation from
gaussdiv's (whose accuracy the mpmath tests establish) — for the FID statistics from
``frechet_distance`` of the samples, exact for such covariances: the anchors' deviation at the
near pair and at the FID statistics is their error.

Run ``python benchmarks/bench_wasserstein.py`` (about 4 minutes on one core of a 2020s x86
CPU at d = 2048), ``--dim 1024`` for a quicker look, ``--out FILE`` to also write the
markdown. Threads are fixed to ``--threads`` (default 1) through OMP/OpenBLAS/MKL environment
variables set before NumPy is imported, and ``torch.set_num_threads``.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any

THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


def parse() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dim", type=int, default=2048)
    parser.add_argument("--repeat", type=int, default=3, help="timed runs per method (median)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", help="also write the markdown report here")
    parser.add_argument("--pairs", default="separated,near,FID statistics",
                        help="comma-separated pairs to run (default: all three)")
    return parser.parse_args()


def machine(threads: int, np: Any, scipy: Any, torch: Any) -> list[str]:
    """Markdown lines describing the machine and libraries (platform and os only)."""
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            cpu = next((line.split(":", 1)[1].strip() for line in f
                        if line.startswith("model name")), cpu)
    except OSError:
        pass
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg()) if hasattr(os, "getloadavg") else "?"
    import gaussdiv

    return [
        f"- CPU: {cpu}; {cores} usable cores (os.cpu_count() = {os.cpu_count()})",
        f"- OS: {platform.platform()}; Python {platform.python_version()}",
        f"- NumPy {np.__version__}, SciPy {scipy.__version__}, PyTorch "
        f"{torch.__version__ if torch else 'not installed'}, gaussdiv {gaussdiv.__version__}",
        f"- threads: {', '.join(f'{k}={os.environ[k]}' for k in THREAD_VARIABLES)}, "
        f"torch.set_num_threads({threads})",
        f"- load average at start (1, 5, 15 min): {load}",
    ]


def timed(fn: Callable[[], float], repeat: int) -> tuple[float, float, float]:
    """(median wall s, median CPU s, value) over ``repeat`` runs after one warm-up."""
    value = fn()
    walls, cpus = [], []
    for _ in range(repeat):
        w0, c0 = time.perf_counter(), time.process_time()
        value = fn()
        cpus.append(time.process_time() - c0)
        walls.append(time.perf_counter() - w0)
    return statistics.median(walls), statistics.median(cpus), value


def main() -> None:
    args = parse()
    for key in THREAD_VARIABLES:
        os.environ[key] = str(args.threads)
    import numpy as np
    import scipy
    import scipy.linalg

    import gaussdiv as gd
    from gaussdiv.divergences.wasserstein import wasserstein

    try:
        import torch
    except ImportError:  # optional: its anchor is skipped
        torch = None
    if torch is not None:
        torch.set_num_threads(args.threads)

    d = args.dim
    rng = np.random.default_rng(args.seed)

    def spd() -> Any:
        a = rng.standard_normal((d, d))
        return a @ a.T / d + 0.5 * np.eye(d)

    s1, m1 = spd(), rng.standard_normal(d)
    e = rng.standard_normal((d, d))
    xa = rng.standard_normal((min(500, d // 2), d))
    xb = 1.2 * rng.standard_normal((min(400, d // 3), d)) + 0.1
    pairs = {
        "separated": (m1, s1, rng.standard_normal(d), spd()),
        "near": (m1, s1, m1 + 1e-8 * rng.standard_normal(d), s1 + 1e-8 * (e + e.T) / 2),
        "FID statistics": (xa.mean(0), np.cov(xa, rowvar=False), xb.mean(0),
                           np.cov(xb, rowvar=False)),
    }
    build = {"FID statistics": gd.Gaussian.semidefinite}
    trusted = {"FID statistics": float(gd.frechet_distance(xa, xb))}

    def scipy_eigh(m1: Any, s1: Any, m2: Any, s2: Any) -> float:
        w, u = scipy.linalg.eigh(s1)
        root = (u * np.sqrt(np.maximum(w, 0))) @ u.T
        lam = scipy.linalg.eigh(root @ s2 @ root, eigvals_only=True)
        return float(np.sum((m1 - m2) ** 2) + np.trace(s1) + np.trace(s2)
                     - 2 * np.sum(np.sqrt(np.maximum(lam, 0))))

    def torchmetrics(m1: Any, s1: Any, m2: Any, s2: Any) -> float:
        a = (m1 - m2).square().sum(dim=-1)
        b = s1.trace() + s2.trace()
        c = torch.linalg.eigvals(s1 @ s2).sqrt().real.sum(dim=-1)
        return float(a + b - 2 * c)

    lines = [f"## W₂ of one d = {d} pair, {args.threads} thread(s)", "",
             *machine(args.threads, np, scipy, torch), "",
             f"Median of {args.repeat} runs after a warm-up; ratios are gaussdiv / fastest "
             "anchor (target ≤ 0.6); deviation: |value − gaussdiv| / gaussdiv.", ""]
    chosen = [name.strip() for name in args.pairs.split(",")]
    for name, (m1, s1, m2, s2) in ((k, v) for k, v in pairs.items() if k in chosen):
        make = build.get(name, gd.Gaussian)
        p, q = make(m1, s1), make(m2, s2)
        methods: dict[str, Callable[[], float]] = {
            "gaussdiv (prebuilt Gaussians)": lambda p=p, q=q: float(
                wasserstein(p, q, squared=True)),
            "gaussdiv (build + W₂)": lambda a=(m1, s1, m2, s2), make=make: float(wasserstein(
                make(a[0], a[1]), make(a[2], a[3]), squared=True)),
            "SciPy eigh anchor": lambda a=(m1, s1, m2, s2): scipy_eigh(*a),
        }
        if torch is not None:
            tensors = tuple(torch.from_numpy(x) for x in (m1, s1, m2, s2))
            methods["torchmetrics anchor"] = lambda t=tensors: torchmetrics(*t)
        rows = {}
        for label, fn in methods.items():
            rows[label] = timed(fn, args.repeat)
            print(f"{name}: {label}: {rows[label][0]:.3f} s", file=sys.stderr, flush=True)
        anchors = [k for k in rows if "anchor" in k]
        fastest_wall = min(rows[k][0] for k in anchors)
        fastest_cpu = min(rows[k][1] for k in anchors)
        reference = trusted.get(name, rows["gaussdiv (prebuilt Gaussians)"][2])
        lines += [f"### {name} pair (W₂² = {reference:.6g})", "",
                  "| method | wall | CPU | ratio (wall) | ratio (CPU) | deviation |",
                  "|---|---:|---:|---:|---:|---:|"]
        for label, (wall, cpu, value) in rows.items():
            ratio = (f"{wall / fastest_wall:.2f}", f"{cpu / fastest_cpu:.2f}")
            deviation = abs(value - reference) / reference
            lines.append(f"| {label} | {wall * 1e3:,.0f} ms | {cpu * 1e3:,.0f} ms | "
                         f"{ratio[0]} | {ratio[1]} | {deviation:.1e} |")
        lines.append("")
    text = "\n".join(lines)
    print(text)
    if args.out:
        with open(args.out, "w", encoding="utf-8") as f:
            f.write(text + "\n")


if __name__ == "__main__":
    main()

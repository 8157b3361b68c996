"""What ``gaussdiv.compare`` costs on the data-scientist example (two 5000 × 20 data sets, a
shift in two columns), beside the per-column Kolmogorov–Smirnov test users reach for, run in
the same process (median of ``--repeats`` runs each).

    OMP_NUM_THREADS=1 python benchmarks/bench_compare.py
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import numpy as np
from scipy import stats

import gaussdiv


def drift_pair(n: int, d: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    scale = np.arange(1, d + 1, dtype=float)
    a, b = rng.standard_normal((n, d)) * scale, rng.standard_normal((n, d)) * scale
    b[:, [3, 7]] += 0.3 * scale[[3, 7]]
    return a, b


def median_time(run: Callable[[], object], repeats: int) -> float:
    run()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        run()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    print("| n × d | what | time | ÷ KS per column |")
    print("|---|---|---|---|")
    for n, d in ((5000, 20), (1000, 10), (50_000, 20)):
        a, b = drift_pair(n, d)
        ks = median_time(lambda a=a, b=b: [stats.ks_2samp(a[:, j], b[:, j])
                                           for j in range(a.shape[1])], args.repeats)
        runs = {
            "KS per column (scipy.stats.ks_2samp)": None,
            "compare, no resampling (plug-in, corrected, normal interval, columns)":
                dict(bootstrap=0, permutations=0),
            "compare, default (1000 bootstrap, 1000 permutations)":
                dict(bootstrap=1000, permutations=1000, seed=0),
        }
        for label, kwargs in runs.items():
            if kwargs is None:
                t = ks
            else:
                t = median_time(lambda a=a, b=b, kw=kwargs: gaussdiv.compare(a, b, **kw),
                                args.repeats)
            print(f"| {n} × {d} | {label} | {t * 1e3:.1f} ms | {t / ks:.1f} |", flush=True)
        result = gaussdiv.compare(a, b, bootstrap=0, permutations=0)
        print(f"|  | top columns: {[c.name for c in result.columns[:2]]} |  |  |")


if __name__ == "__main__":
    main()

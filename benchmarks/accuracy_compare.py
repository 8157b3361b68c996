"""Coverage and bias of :func:`gaussdiv.compare` on simulated data sets with a known true KL.

For each (d, n): ``reps`` pairs of data sets are drawn, A from N(0, I) and B from N(δ, D) with
δ = 0.1·(1, …, 1)·shift and D a diagonal of variances spread around 1, so KL(A‖B) is known
exactly; each pair is compared (maximum likelihood: the studentized bootstrap; OAS: the
jackknife interval around the plug-in), and we count how often each 95 % interval holds the
true value, and average value − truth (bias) for the unbiased estimate and the plug-in.
Under the null (B drawn like A), the p-values are tested for uniformity (Kolmogorov–Smirnov).

    python benchmarks/accuracy_compare.py             # the table in benchmarks/RESULTS.md
    python benchmarks/accuracy_compare.py --reps 100  # quicker
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from scipy import stats

import gaussdiv


def truth(d: int, shift: float) -> tuple[np.ndarray, np.ndarray, dict[str, float]]:
    """B's mean and variances, and the true KL(A‖B), KL(B‖A), J for A = N(0, I)."""
    delta = np.full(d, 0.1 * shift)
    var = np.linspace(0.7, 1.5, d) if d > 1 else np.array([1.3])
    p = gaussdiv.Gaussian(np.zeros(d), np.eye(d))
    q = gaussdiv.Gaussian.diag(delta, var=var)
    ab, ba = float(gaussdiv.kl(p, q)), float(gaussdiv.kl(q, p))
    return delta, var, {"kl_ab": ab, "kl_ba": ba, "jeffreys": ab + ba}


def simulate(d: int, n: int, reps: int, seed: int, estimator: str = "mle",
             bootstrap: int = 400, shift: float = 1.0) -> dict[str, dict[str, float]]:
    """Coverage and biases per estimate over ``reps`` simulated pairs."""
    rng = np.random.default_rng(seed)
    delta, var, true = truth(d, shift)
    hits = {k: 0 for k in true}
    bias = {k: 0.0 for k in true}
    plugin_bias = {k: 0.0 for k in true}
    for r in range(reps):
        a = rng.standard_normal((n, d))
        b = delta + rng.standard_normal((n, d)) * np.sqrt(var)
        result = gaussdiv.compare(a, b, estimator=estimator, bootstrap=bootstrap,
                                  permutations=0, seed=seed * 100_000 + r)
        for e in result.estimates:
            hits[e.name] += e.low <= true[e.name] <= e.high
            bias[e.name] += (e.unbiased - true[e.name]) / reps
            plugin_bias[e.name] += (e.plugin - true[e.name]) / reps
    return {k: {"true": true[k], "coverage": hits[k] / reps, "bias": bias[k],
                "plugin_bias": plugin_bias[k]} for k in true}


def null_p_values(d: int, n: int, reps: int, seed: int, permutations: int = 200) -> np.ndarray:
    """p-values of ``reps`` pairs drawn from one distribution."""
    rng = np.random.default_rng(seed)
    out = np.empty(reps)
    for r in range(reps):
        a, b = rng.standard_normal((n, d)), rng.standard_normal((n, d))
        out[r] = gaussdiv.compare(a, b, bootstrap=0, permutations=permutations,
                                  seed=seed * 100_000 + r).p_value
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=400)
    parser.add_argument("--bootstrap", type=int, default=400)
    args = parser.parse_args()
    print(f"{args.reps} data sets per row, {args.bootstrap} bootstrap resamples, 95 % intervals")
    print("| estimator | d | n | true KL(A‖B) | coverage KL(A‖B) / KL(B‖A) / J | "
          "bias unbiased (J) | bias plug-in (J) |")
    print("|---|---|---|---|---|---|---|")
    rows = [("mle", d, n) for d in (2, 10, 20) for n in (200, 1000)] + \
        [("mle", 10, 30), ("mle", 10, 60), ("mle", 20, 100),
         ("oas", 10, 60), ("oas", 10, 200), ("oas", 20, 100)]
    for estimator, d, n in rows:
        t0 = time.perf_counter()
        res = simulate(d, n, args.reps, seed=d * 1000 + n, estimator=estimator,
                       bootstrap=args.bootstrap)
        cov = " / ".join(f"{100 * res[k]['coverage']:.1f} %" for k in ("kl_ab", "kl_ba",
                                                                         "jeffreys"))
        print(f"| {estimator} | {d} | {n} | {res['kl_ab']['true']:.4f} | {cov} | "
              f"{res['jeffreys']['bias']:+.4f} | {res['jeffreys']['plugin_bias']:+.4f} | "
              f"({time.perf_counter() - t0:.0f} s)", flush=True)
    for d, n in ((2, 200), (10, 1000)):
        p = null_p_values(d, n, args.reps, seed=7)
        ks = stats.kstest(p, "uniform")
        print(f"null p-values d={d} n={n}: KS statistic {ks.statistic:.3f}, "
              f"p = {ks.pvalue:.3f}; fraction < 0.05: {np.mean(p < 0.05):.3f}")


if __name__ == "__main__":
    main()

"""How close the mixture-KL approximations and bounds come to the true KL, on random 1-D
mixture pairs (1–4 components each; means spread 0.3, 3 or 10: overlapping … separated),
against mpmath adaptive quadrature (``tests/mpref.py``).

Reports, per method, the median and 90th percentile of |estimate − KL| (nats), how often it is
negative and how often it falls below the true KL; for the bounds, how often they bracket it
and the median width.

    python benchmarks/accuracy_mixtures.py [--pairs N] [--out FILE]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
from _machine import emit

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
import mpref  # the tests' reference, on purpose

import gaussdiv as gd

METHODS = ("variational", "product", "matched", "variational_upper")


def random_mixture(rng: np.random.Generator, spread: float):
    k = int(rng.integers(1, 5))
    w, m, v = rng.dirichlet(np.ones(k)), rng.normal(0.0, spread, k), rng.uniform(0.1, 2.0, k)
    return gd.GaussianMixture(w, gd.Gaussian(m[:, None], v[:, None, None])), (w, m, v)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--pairs", type=int, default=300)
    parser.add_argument("--out", metavar="FILE")
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    estimates: dict[str, list[float]] = {m: [] for m in METHODS}
    lower, upper, exact = [], [], []
    for trial in range(args.pairs):
        spread = (0.3, 3.0, 10.0)[trial % 3]
        (f, pf), (g, pg) = random_mixture(rng, spread), random_mixture(rng, spread)
        exact.append(mpref.mixture_kl_1d(pf, pg))
        for m in METHODS:
            estimates[m].append(float(gd.mixture_kl(f, g, m)))
        lo, up = gd.mixture_kl_bounds(f, g)
        lower.append(float(lo))
        upper.append(float(up))
    truth = np.array(exact)
    lines = ["## Mixture KL against quadrature (benchmarks/accuracy_mixtures.py)", "",
             f"{args.pairs} random 1-D pairs, 1–4 components each; mpmath quadrature as truth.",
             "", "| method | median \\|error\\| | 90th percentile | negative | below the truth |",
             "|---|---|---|---|---|"]
    for m in METHODS:
        e = np.array(estimates[m])
        err = np.abs(e - truth)
        below = np.mean(e < truth - 1e-9 * np.maximum(1, truth))
        lines.append(f"| {m} | {np.median(err):.3g} | {np.quantile(err, 0.9):.3g} | "
                     f"{100 * np.mean(e < 0):.1f} % | {100 * below:.1f} % |")
    lo, up = np.array(lower), np.array(upper)
    slack = 1e-9 * np.maximum(1, truth)
    bracket = np.mean((lo - slack <= truth) & (truth <= up + slack))
    lines += ["", f"- bounds bracket the truth in {100 * bracket:.1f} % of the pairs; median "
                  f"width {np.median(up - lo):.3g} nats (90th percentile "
                  f"{np.quantile(up - lo, 0.9):.3g}); the upper bound's median excess "
                  f"{np.median(up - truth):.3g}, the lower bound's median shortfall "
                  f"{np.median(truth - lo):.3g}"]
    emit(lines, args.out)


if __name__ == "__main__":
    main()

"""The divergence family against KL of the same shape (benchmarks/RESULTS.md section 6): the
ratio of each divergence's time to ``gaussdiv.kl``'s, in one process. Run with
``OMP_NUM_THREADS=1``."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from _machine import best_of

import gaussdiv as gd

FAMILY: dict[str, Callable[[gd.Gaussian, gd.Gaussian], object]] = {
    "jeffreys": gd.jeffreys,
    "renyi0.5": lambda p, q: gd.renyi(p, q, 0.5),
    "renyi2": lambda p, q: gd.renyi(p, q, 2.0),
    "hellinger": gd.hellinger,
}


def report(label: str, p: gd.Gaussian, q: gd.Gaussian, names: tuple[str, ...]) -> None:
    base = best_of(lambda: gd.kl(p, q))
    ratios = "  ".join(f"{n} {best_of(lambda n=n: FAMILY[n](p, q)) / base:.2f}x" for n in names)
    print(f"{label:18s} kl {base * 1e3:8.2f} ms  {ratios}")


def main() -> None:
    rng = np.random.default_rng(0)
    for batch, d in ((10_000, 2), (10_000, 8), (2_000, 32), (1, 8)):
        a, b = rng.standard_normal((2, batch, d, d))
        s1 = a @ a.transpose(0, 2, 1) / d + np.eye(d)
        s2 = b @ b.transpose(0, 2, 1) / d + np.eye(d)
        m1, m2 = rng.standard_normal((2, batch, d))
        report(f"dense {batch}x{d}", gd.Gaussian(m1, s1), gd.Gaussian(m2, s2), tuple(FAMILY))
    for batch, d in ((100_000, 8), (10_000, 64)):
        v1, v2 = rng.uniform(0.5, 2, (2, batch, d))
        m = rng.standard_normal((batch, d))
        report(f"diag {batch}x{d}", gd.Gaussian.diag(m, var=v1),
               gd.Gaussian.diag(0 * m, logvar=np.log(v2)), ("jeffreys", "renyi0.5", "hellinger"))


if __name__ == "__main__":
    main()

"""A quick whole-call timing of a few KL cases (benchmarks/RESULTS.md section 6).

Run it on two checkouts (``PYTHONPATH=<checkout>/src``) to compare versions, with
``OMP_NUM_THREADS=1``. Best of several wall-clock runs of construction + validation + KL.
"""

from __future__ import annotations

import numpy as np
from _machine import best_of

import gaussdiv as gd


def spd(rng: np.random.Generator, batch: int, d: int) -> np.ndarray:
    a = rng.standard_normal((batch, d, d))
    return a @ a.transpose(0, 2, 1) / d + np.eye(d)


def main() -> None:
    rng = np.random.default_rng(0)
    s1, s2 = spd(rng, 10_000, 8), spd(rng, 10_000, 8)
    m1, m2 = rng.standard_normal((2, 10_000, 8))
    e = rng.standard_normal((10_000, 8, 8))
    s3 = s1 + 1e-8 * (e + e.transpose(0, 2, 1))
    mu = rng.standard_normal((200_000, 64))
    logvar = 0.1 * rng.standard_normal((200_000, 64))
    v1, v2 = rng.uniform(0.5, 2, (2, 200_000, 64))
    w = rng.standard_normal((1000, 64, 4))
    cases = {
        "dense 10000x8": lambda: gd.kl(gd.Gaussian(m1, s1), gd.Gaussian(m2, s2)),
        "near 10000x8": lambda: gd.kl(gd.Gaussian(m1, s1), gd.Gaussian(m1, s3)),
        "single d8": lambda: gd.kl(gd.Gaussian(m1[0], s1[0]), gd.Gaussian(m2[0], s2[0])),
        "diag logvar 2e5x64 vs N01": lambda: gd.kl(gd.Gaussian.diag(mu, logvar=logvar),
                                                   gd.Gaussian.standard(64)),
        "diag var 2e5x64": lambda: gd.kl(gd.Gaussian.diag(mu, var=v1),
                                         gd.Gaussian.diag(0 * mu, var=v2)),
        "lowrank 1000x64 k4": lambda: gd.kl(gd.Gaussian.lowrank(mu[:1000], w, v1[:1000]),
                                            gd.Gaussian.lowrank(0 * mu[:1000], 1.1 * w,
                                                                v2[:1000])),
    }
    for name, f in cases.items():
        repeats = 50 if name.startswith("single") else 3 if "2e5" in name else 5
        print(f"{name:32s} {best_of(f, repeats) * 1e3:9.2f} ms")


if __name__ == "__main__":
    main()

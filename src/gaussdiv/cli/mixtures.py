"""``compare --mixture K``: K-component Gaussian mixtures fitted to both sample files
(scikit-learn, full covariances), and KL between them both ways — the proven bounds, a Monte
Carlo estimate with its standard error, and the variational approximation."""

from __future__ import annotations

from typing import Any

import click
import numpy as np

import gaussdiv
from gaussdiv.cli.common import UserError, fmt, table

#: Draws of the Monte Carlo estimate per direction.
MIXTURE_DRAWS = 100_000


def mixture_option(function: Any) -> Any:
    return click.option("--mixture", "components", type=click.IntRange(min=1), default=None,
                        metavar="K",
                        help="Also fit K-component Gaussian mixtures (scikit-learn, full "
                             "covariances) to A and B and report KL between them both ways: "
                             "proven bounds, Monte Carlo ± its standard error, and the "
                             "variational approximation.")(function)


def fit_mixture(x: np.ndarray, components: int, seed: int, source: str
                ) -> gaussdiv.GaussianMixture:
    """The K-component mixture scikit-learn fits to the rows of x."""
    from sklearn.mixture import GaussianMixture

    if len(x) < 2 * components:
        raise UserError(f"{source}: {len(x)} rows are too few for a {components}-component "
                        "mixture (need at least 2 per component)")
    model = GaussianMixture(components, covariance_type="full", reg_covar=1e-6,
                            random_state=seed).fit(x)
    return gaussdiv.GaussianMixture.from_sklearn(model)


def mixture_report(xa: np.ndarray, xb: np.ndarray, components: int, seed: int,
                   sources: tuple[str, str]) -> dict[str, Any]:
    """{"components": K, "kl_ab": {...}, "kl_ba": {...}}, each direction with lower, mc,
    mc_stderr, upper and variational."""
    fa = fit_mixture(xa, components, seed, sources[0])
    fb = fit_mixture(xb, components, seed, sources[1])
    out: dict[str, Any] = {"components": components, "draws": MIXTURE_DRAWS, "seed": seed}
    for key, f, g in (("kl_ab", fa, fb), ("kl_ba", fb, fa)):
        lower, upper = gaussdiv.mixture_kl_bounds(f, g)
        mc = gaussdiv.mixture_kl(f, g, "mc", n=MIXTURE_DRAWS, seed=seed)
        out[key] = {"lower": float(lower), "mc": float(mc.value), "mc_stderr": float(mc.stderr),
                    "upper": float(upper),
                    "variational": float(gaussdiv.mixture_kl(f, g, "variational"))}
    return out


def mixture_table(report: dict[str, Any]) -> str:
    """The mixture report as a text table."""
    rows = [[name, r["lower"], f"{fmt(r['mc'], 4)} ± {fmt(r['mc_stderr'], 2)}", r["upper"],
             r["variational"]]
            for name, r in (("KL(A‖B)", report["kl_ab"]), ("KL(B‖A)", report["kl_ba"]))]
    caption = (f"{report['components']}-component Gaussian mixtures (scikit-learn, full "
               f"covariances); Monte Carlo: {report['draws']} draws, seed {report['seed']}")
    return caption + "\n\n" + table(rows, header=["mixtures", "lower bound", "Monte Carlo",
                                                  "upper bound", "variational"], digits=4)

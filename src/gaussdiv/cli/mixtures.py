"""``compare --mixture K``: K-component Gaussian mixtures fitted to both sample files
(scikit-learn, full covariances), and KL between them both ways — the proven bounds, a Monte
Carlo estimate with its standard error, and the variational approximation."""

from __future__ import annotations

import warnings
from typing import Any

import click
import numpy as np

import gaussdiv
from gaussdiv.cli.common import UserError, fmt, note, table

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
    """The K-component mixture scikit-learn fits to the rows of x; its ConvergenceWarnings (a
    fit that did not converge, fewer distinct points than components) become notes."""
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.mixture import GaussianMixture

    if len(x) < 2 * components:
        raise UserError(f"{source}: {len(x)} rows are too few for a {components}-component "
                        "mixture (need at least 2 per component)")
    model = GaussianMixture(components, covariance_type="full", reg_covar=1e-6,
                            random_state=seed)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ConvergenceWarning)
        try:
            model.fit(x)
        except ValueError as exc:  # scikit-learn: a component collapsed onto too few points
            raise UserError(f"{source}: the {components}-component mixture cannot be fitted "
                            f"({str(exc).split('.')[0].strip()}); try a smaller --mixture"
                            ) from None
    said = set()
    for w in caught:  # scikit-learn's doubts about the fit, as notes; other warnings as raised
        if not issubclass(w.category, ConvergenceWarning):
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
        elif (message := " ".join(str(w.message).split())) not in said:
            said.add(message)
            note(f"{source}: {components}-component mixture: {message}")
    try:
        return gaussdiv.GaussianMixture.from_sklearn(model)
    except gaussdiv.GaussianError as exc:  # a fitted component numerically singular
        raise UserError(f"{source}: {components}-component mixture: {exc}") from None


def mixture_report(xa: np.ndarray, xb: np.ndarray, components: int, seed: int,
                   sources: tuple[str, str]) -> dict[str, Any]:
    """{"components": K, "kl_ab": {...}, "kl_ba": {...}}, each direction with lower, mc,
    mc_stderr, upper and variational.

    Both data sets are first standardized by their pooled mean and standard deviation: one
    affine map for both, under which KL does not change, so scikit-learn's ``reg_covar``
    (1e-6) is relative to each column's spread, and data at any scale fit alike (at 1e100
    the mixtures' variances would otherwise overflow the Monte Carlo's squares)."""
    pooled = np.concatenate([xa, xb])
    center, scale = pooled.mean(axis=0), pooled.std(axis=0)
    scale = np.where(scale > 0, scale, 1.0)
    fa = fit_mixture((xa - center) / scale, components, seed, sources[0])
    fb = fit_mixture((xb - center) / scale, components, seed, sources[1])
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

"""The delete-a-group jackknife of a divergence between two fitted data sets.

For fits without an exact bias correction (shrinkage estimators, and divergences other than
KL), each data set's rows are split into g groups (g = min(n, :data:`GROUPS`), in row order);
the divergence is recomputed with each group left out of one data set, and
:func:`gaussdiv.inference.intervals.jackknife` turns the recomputed values into a
bias-corrected estimate and its standard error. Cost: 2g refits.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from gaussdiv.gaussian import Gaussian
from gaussdiv.inference.estimators import estimate
from gaussdiv.inference.intervals import jackknife

#: Groups per data set.
GROUPS = 50
#: Fits rows (n, d) → (mean (d,), covariance (d, d)).
Fitter = Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]
#: Batched fits of A and of B → values (k, *batch).
Statistic = Callable[[np.ndarray, np.ndarray, np.ndarray, np.ndarray], np.ndarray]


def leave_groups_out(xa: np.ndarray, xb: np.ndarray, fitter: Fitter,
                     statistic: Statistic) -> list[np.ndarray]:
    """Per data set, the statistic (k, g) with each of its g groups of rows left out."""
    out = []
    for k, x in enumerate((xa, xb)):
        groups = np.array_split(np.arange(len(x)), min(len(x), GROUPS))
        other_mean, other_cov = fitter((xb, xa)[k])
        fits = [fitter(np.delete(x, rows, axis=0)) for rows in groups]
        means, covs = np.stack([f[0] for f in fits]), np.stack([f[1] for f in fits])
        om = np.broadcast_to(other_mean, means.shape)
        oc = np.broadcast_to(other_cov, covs.shape)
        out.append(statistic(means, covs, om, oc) if k == 0 else statistic(om, oc, means, covs))
    return out


def divergence_estimates(xa: np.ndarray, xb: np.ndarray,
                         divergence: Callable[[Gaussian, Gaussian], object],
                         directions: Sequence[bool], estimator: str, scale: np.ndarray,
                         confidence: float
                         ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(plug-in, bias-corrected, low, high, stderr), each (k,), of ``divergence`` between the
    fits of rows ``xa`` and ``xb``, one value per entry of ``directions`` (True: D(A‖B),
    False: D(B‖A)), fitted by a resolved ``estimator`` with shrinkage ``scale``."""
    def fitter(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return estimate(x, estimator, scale=scale)

    def statistic(ma: np.ndarray, sa: np.ndarray, mb: np.ndarray, sb: np.ndarray) -> np.ndarray:
        p, q = Gaussian(ma, sa), Gaussian(mb, sb)
        return np.stack([np.asarray(divergence(p, q) if forward else divergence(q, p),
                                    dtype=np.float64) for forward in directions])

    (ma, sa), (mb, sb) = fitter(xa), fitter(xb)
    plugin = statistic(ma, sa, mb, sb)
    value, low, high, stderr = jackknife(plugin, leave_groups_out(xa, xb, fitter, statistic),
                                         confidence)
    return plugin, value, low, high, stderr

"""Fitting Gaussians to the rows of sample files, by the library (:func:`gaussdiv.fit`).

The estimators are the library's (``mle``, ``unbiased``, ``ledoit-wolf``, ``oas``, ``auto``;
see :mod:`gaussdiv.inference.estimators`). Every data set of one command is fitted with the
same estimator — ``auto`` is resolved once, at the smallest data set — and shrinkage is
applied in the units of the pooled standard deviations, so results do not depend on the
columns' units. Library errors about the data come back as one-line user errors naming the
file (and group).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import click
import numpy as np

from gaussdiv import Gaussian, GaussianError, SampleError
from gaussdiv.backends import NUMPY
from gaussdiv.cli.common import UserError
from gaussdiv.cli.samples import is_number
from gaussdiv.inference.estimators import AUTO_ROWS_PER_DIM, fit_samples, resolve
from gaussdiv.inference.samples import Samples

ESTIMATORS = ("auto", "mle", "unbiased", "ledoit-wolf", "oas")
__all__ = ["AUTO_COMPARE", "AUTO_FIT", "AUTO_ROWS_PER_DIM", "ESTIMATORS", "Fit",
           "estimator_option", "fit_groups",
           "resolve", "user_error"]


#: What ``auto`` means in pairwise and demo (gaussdiv.fit's rule).
AUTO_FIT = f"auto = mle when the smallest data set has n ≥ {AUTO_ROWS_PER_DIM}·d rows, else oas."
#: What ``auto`` means in compare (gaussdiv.compare's rule: where the exact bias correction
#: exists, maximum likelihood is the better choice).
AUTO_COMPARE = "auto = mle when both data sets have more than d + 2 rows, else oas."


def estimator_option(auto: str = AUTO_FIT) -> Any:
    """The ``--estimator`` choice shared by compare, pairwise and demo; ``auto`` says what
    ``auto`` stands for in the command."""
    return click.option(
        "--estimator", type=click.Choice(ESTIMATORS), default="auto", show_default=True,
        help="Covariance estimator, the same for every data set: maximum likelihood, "
             "unbiased (n − 1), or Ledoit-Wolf / OAS shrinkage (scikit-learn, in units of the "
             f"pooled standard deviations). {auto}")


@dataclass(frozen=True)
class Fit:
    """A fitted Gaussian with how it was fitted."""

    gaussian: Gaussian
    estimator: str
    n: int


def user_error(exc: SampleError) -> UserError:
    """A library data error as a CLI user error, with the CLI's spelling of the remedies."""
    message = str(exc).replace("estimator='oas' or 'ledoit_wolf'", "--estimator oas or "
                               "ledoit-wolf").replace("estimator='oas'", "--estimator oas")
    return UserError(message.replace("use estimator=", "use --estimator "))


def group_order(labels: np.ndarray) -> list[str]:
    """Distinct group labels, numerically sorted when they are all numbers (as a data file
    writes them: :func:`~gaussdiv.cli.samples.is_number`), else as text."""
    distinct = list(dict.fromkeys(labels.tolist()))
    return sorted(distinct, key=float) if all(map(is_number, distinct)) else sorted(distinct)


def fit_groups(x: np.ndarray, labels: np.ndarray, estimator: str, what: str,
               columns: Sequence[str]) -> dict[str, Fit]:
    """One Gaussian per group label (rows of ``x`` with that label), in :func:`group_order`,
    all by one estimator (``auto`` resolved at the smallest group)."""
    groups = group_order(labels)
    if len(groups) < 2:
        raise UserError(f"{what}: only {len(groups)} group ({', '.join(groups)}); pairwise "
                        "divergences need at least 2")
    rows = {g: x[labels == g] for g in groups}
    used = resolve(estimator, min(len(r) for r in rows.values()), x.shape[1])
    scale = x.std(axis=0)
    scale = np.where(scale > 0, scale, 1.0)  # a constant column is named by the fit
    out = {}
    for g, r in rows.items():
        samples = Samples(r, tuple(columns), NUMPY, f"{what}: group '{g}'")
        try:
            gaussian = fit_samples(samples, estimator=used, scale=scale)
        except SampleError as exc:
            raise user_error(exc) from None
        except GaussianError as exc:  # e.g. the fitted covariance numerically singular
            raise UserError(f"{samples.what}: {exc}") from None
        out[g] = Fit(gaussian, used, len(r))
    return out

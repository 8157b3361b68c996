"""Fitting a Gaussian to samples with scikit-learn's covariance estimators.

``mle`` is the maximum-likelihood fit (sample mean, and sample covariance with divisor n:
``np.cov(x, rowvar=False, bias=True)``, as ``sklearn.covariance.EmpiricalCovariance`` gives);
``ledoit-wolf`` and ``oas`` shrink that covariance towards a multiple of the identity
(``sklearn.covariance.LedoitWolf`` / ``OAS``), which keeps it well conditioned when there are
few rows per dimension. ``auto`` uses ``mle`` when a data set has at least
:data:`AUTO_ROWS_PER_DIM` rows per dimension (n ≥ 10·d) and ``oas`` otherwise.

Shrinkage pulls every variance towards their average, so it depends on the units of the
columns: with columns on very different scales, pass ``--standardize``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import click
import numpy as np

from gaussdiv import Gaussian, GaussianError
from gaussdiv.cli.common import UserError

ESTIMATORS = ("auto", "mle", "ledoit-wolf", "oas")
#: ``auto`` fits by maximum likelihood from this many rows per dimension on, else by OAS.
AUTO_ROWS_PER_DIM = 10


def estimator_option(func: Any) -> Any:
    """The ``--estimator`` choice shared by compare, pairwise and demo."""
    return click.option(
        "--estimator", type=click.Choice(ESTIMATORS), default="auto", show_default=True,
        help=f"Covariance estimator: maximum likelihood, or Ledoit-Wolf / OAS shrinkage "
             f"(scikit-learn). auto = mle when n ≥ {AUTO_ROWS_PER_DIM}·d rows, else oas."
    )(func)


def standardize_option(func: Any) -> Any:
    """The ``--standardize`` flag shared by compare, pairwise and demo."""
    return click.option(
        "--standardize", is_flag=True,
        help="Scale each column by its pooled mean and standard deviation before fitting "
             "(leaves maximum-likelihood KL unchanged; advised for shrinkage).")(func)


@dataclass(frozen=True)
class Fit:
    """A fitted Gaussian with how it was fitted."""

    gaussian: Gaussian
    estimator: str
    n: int


def resolve(estimator: str, n: int, d: int) -> str:
    """The estimator ``auto`` stands for at n rows in d dimensions (others are returned as is)."""
    if estimator != "auto":
        return estimator
    return "mle" if n >= AUTO_ROWS_PER_DIM * d else "oas"


def _sklearn_estimator(name: str) -> Any:
    from sklearn.covariance import OAS, LedoitWolf

    cls = {"ledoit-wolf": LedoitWolf, "oas": OAS}[name]
    return cls(store_precision=False)


def estimate(x: np.ndarray, estimator: str) -> tuple[np.ndarray, np.ndarray]:
    """(mean, covariance) of the rows of ``x`` with a resolved estimator name.

    ``mle`` is computed by NumPy, which gives the same numbers as scikit-learn's
    EmpiricalCovariance without importing scikit-learn (a second or more at start-up).
    """
    if estimator == "mle":
        return x.mean(axis=0), np.atleast_2d(np.cov(x, rowvar=False, bias=True))
    model = _sklearn_estimator(estimator).fit(x)
    return model.location_, model.covariance_


def fit(x: np.ndarray, estimator: str, what: str, columns: Sequence[str]) -> Fit:
    """Fit a Gaussian to the rows of ``x`` (n, d); ``what`` names the data in messages."""
    n, d = x.shape
    if n < 2:
        raise UserError(f"{what}: {n} row(s); at least 2 are needed to estimate a covariance")
    used = resolve(estimator, n, d)
    if used == "mle":
        if n <= d:
            raise UserError(f"{what}: {n} rows for {d} dimensions; fewer rows than dimensions "
                            "make the sample covariance singular; use shrinkage "
                            "(--estimator oas or ledoit-wolf)")
        _check_full_rank(x, what, columns)
    mean, cov = estimate(x, used)
    try:
        gaussian = Gaussian(mean, cov)
    except GaussianError as exc:
        raise UserError(f"{what}: the {used} covariance of columns {', '.join(columns)} is "
                        f"singular ({exc}); drop collinear columns with --columns or use "
                        "shrinkage (--estimator oas)") from None
    return Fit(gaussian, used, n)


def _check_full_rank(x: np.ndarray, what: str, columns: Sequence[str]) -> None:
    """A singular sample covariance named by its cause: a constant column, or a column that is
    a linear combination of the others (found by column-pivoted QR of the scaled data).

    The library accepts a covariance whose Cholesky factor has pivots at rounding level, so
    an exactly dependent column must be caught here, on the data, where it can be named.
    """
    from scipy.linalg import qr

    spread = x.std(axis=0)
    for name, s in zip(columns, spread, strict=True):
        if s == 0:
            raise UserError(f"{what}: column '{name}' is constant, so the sample covariance is "
                            "singular; leave it out with --columns or use shrinkage "
                            "(--estimator oas)")
    scaled = (x - x.mean(axis=0)) / spread
    rank = np.linalg.matrix_rank(scaled)
    if rank < x.shape[1]:
        pivots = qr(scaled, mode="r", pivoting=True)[1]
        name = columns[int(pivots[-1])]
        raise UserError(f"{what}: the sample covariance is singular (rank {rank} of "
                        f"{x.shape[1]}): column '{name}' is a linear combination of the others; "
                        "leave it out with --columns or use shrinkage (--estimator oas)")


def standardize(*blocks: np.ndarray) -> list[np.ndarray]:
    """Each block scaled by the mean and standard deviation of all blocks' rows pooled."""
    from sklearn.preprocessing import StandardScaler

    scaler = StandardScaler().fit(np.concatenate(blocks))
    return [scaler.transform(b) for b in blocks]


def group_order(labels: np.ndarray) -> list[str]:
    """Distinct group labels, numerically sorted when they are all numbers, else as text."""
    distinct = list(dict.fromkeys(labels.tolist()))
    try:
        return sorted(distinct, key=float)
    except ValueError:
        return sorted(distinct)


def fit_groups(x: np.ndarray, labels: np.ndarray, estimator: str, what: str,
               columns: Sequence[str]) -> dict[str, Fit]:
    """One Gaussian per group label (rows of ``x`` with that label), in :func:`group_order`."""
    groups = group_order(labels)
    if len(groups) < 2:
        raise UserError(f"{what}: only {len(groups)} group ({', '.join(groups)}); pairwise "
                        "divergences need at least 2")
    return {g: fit(x[labels == g], estimator, f"{what}: group '{g}'", columns) for g in groups}

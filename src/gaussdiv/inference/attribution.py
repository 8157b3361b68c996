"""Where two data sets differ: each column's part in their Jeffreys divergence.

For column j, with J the Jeffreys divergence of the fitted Gaussians over all d columns:

* ``marginal``: J of column j alone (the two fitted one-dimensional marginals);
* ``drop``: J − J₋ⱼ, how much the divergence falls when column j is left out (J₋ⱼ: the
  other d − 1 columns). Never negative for the plug-in (a marginal of two Gaussians is no
  further apart than the Gaussians); it also counts what j adds through its correlations, which
  a shift in the correlation between two columns shows and no marginal does;
* ``share``: drop / J. Shares need not sum to 1: columns that carry the same information
  share it, and each drop counts only what no other column carries.

Values are the unbiased estimates (:mod:`gaussdiv.inference.wishart`, with d = 1 for the
marginals and d − 1 for the drops) for maximum-likelihood and unbiased fits, the plug-in ones
for shrinkage fits; columns are ranked by ``drop``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from gaussdiv.inference.statistics import pair_statistics
from gaussdiv.inference.wishart import WishartFit


@dataclass(frozen=True)
class ColumnShare:
    """One column's part in the divergence (see the module docstring)."""

    name: str
    marginal: float
    drop: float
    share: float

    def to_dict(self) -> dict[str, object]:
        return {"name": self.name, "marginal": self.marginal, "drop": self.drop,
                "share": self.share}


def column_shares(ma: np.ndarray, sa: np.ndarray, mb: np.ndarray, sb: np.ndarray,
                  fits: tuple[WishartFit, WishartFit] | None,
                  names: Sequence[str]) -> list[ColumnShare]:
    """The columns ranked by ``drop``, for fitted means (d,) and covariances (d, d)."""
    d = len(ma)
    total = float(_jeffreys(ma, sa, mb, sb, fits))
    columns = np.arange(d)
    marginal = _jeffreys(ma[:, None], sa[columns, columns][:, None, None], mb[:, None],
                         sb[columns, columns][:, None, None], fits)
    if d == 1:
        rest = np.zeros(1)
    else:
        keep = np.array([np.delete(columns, j) for j in columns])
        rest = _jeffreys(ma[keep], sa[keep[:, :, None], keep[:, None, :]], mb[keep],
                         sb[keep[:, :, None], keep[:, None, :]], fits)
    drop = total - rest
    share = drop / total if total > 0 else np.full(d, np.nan)
    order = np.argsort(-drop, kind="stable")
    return [ColumnShare(str(names[j]), float(marginal[j]), float(drop[j]), float(share[j]))
            for j in order]


def _jeffreys(ma: np.ndarray, sa: np.ndarray, mb: np.ndarray, sb: np.ndarray,
              fits: tuple[WishartFit, WishartFit] | None) -> np.ndarray:
    stats = pair_statistics(ma, sa, mb, sb, fits)
    values = stats.plugin if stats.unbiased is None else stats.unbiased
    return np.asarray(values[2])

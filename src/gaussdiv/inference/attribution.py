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
    """One column's part in the Jeffreys divergence J of two data sets (see the module
    docstring): a field of :class:`Comparison`, ``columns``, ranked by ``drop``.

    Values are unbiased estimates for maximum-likelihood and unbiased fits (so they can be
    slightly negative for a column that does not differ), plug-in values for shrinkage fits.

    Attributes:
        name: the column's name (a DataFrame's label, else its position as a string).
        marginal: J of this column alone (the two fitted one-dimensional marginals).
        drop: J − J₋ⱼ, how much J falls when the column is left out (it also counts what the
            column adds through its correlations with the others).
        share: drop / J (NaN when J ≤ 0); shares need not sum to 1.

    Examples:
        >>> import numpy as np, gaussdiv
        >>> rng = np.random.default_rng(0)
        >>> a, b = rng.normal(size=(200, 3)), rng.normal(size=(200, 3))
        >>> b[:, 2] *= 2.0        # only column 2 differs: J = ½ (4 + ¼) − 1 = 1.125
        >>> top = gaussdiv.compare(a, b, bootstrap=0, permutations=0).columns[0]
        >>> top.name, top.drop > 0.5, round(top.share, 1)
        ('2', True, 1.0)
    """

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

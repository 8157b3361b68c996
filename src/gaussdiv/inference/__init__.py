"""Fitting Gaussians to data sets and comparing data sets through them.

:func:`fit` (samples.py checks the data, estimators.py the estimators) and :func:`compare`
(comparison.py), which reports bias-corrected divergences (wishart.py), intervals that cover
(intervals.py, stderr.py, resampling.py), a permutation p-value, and each column's part
(attribution.py).
"""

from gaussdiv.inference.attribution import ColumnShare
from gaussdiv.inference.comparison import Comparison, Estimate, TermValues, compare
from gaussdiv.inference.estimators import fit

__all__ = ["ColumnShare", "Comparison", "Estimate", "TermValues", "compare", "fit"]

"""Bootstrap confidence intervals for divergences between two fitted data sets.

Rows of A and of B are resampled independently with replacement by ``scipy.stats.bootstrap``
(percentile intervals); each resample is refitted with the estimator chosen on the full data
and its divergences recomputed with the library. A resample whose covariance is singular gives
NaN, and the interval is then reported as unavailable rather than guessed.
"""

from __future__ import annotations

import inspect
import sys
import warnings
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass

import numpy as np
from tqdm import tqdm

#: A statistic of two row sets (A's rows, B's rows) → a vector of values.
Statistic = Callable[[np.ndarray, np.ndarray], np.ndarray]


@dataclass(frozen=True)
class Interval:
    """Bootstrap percentile intervals, one per statistic value, and the resampling set-up."""

    low: np.ndarray
    high: np.ndarray
    stderr: np.ndarray
    n_resamples: int
    confidence: float
    seed: int | None


def _rng_kwarg(seed: int | None) -> dict[str, np.random.Generator]:
    # SciPy 1.15 renamed random_state to rng; keep both supported versions working.
    name = "rng" if "rng" in inspect.signature(_bootstrap()).parameters else "random_state"
    return {name: np.random.default_rng(seed)}


def _bootstrap() -> Callable[..., object]:
    from scipy.stats import bootstrap

    return bootstrap


def _fast_sklearn() -> AbstractContextManager[object]:
    """Skip scikit-learn's per-fit input validation (a third of a refit): the rows were checked
    when read. Only where scikit-learn is already in use; it is not imported for this."""
    if "sklearn" not in sys.modules:
        return nullcontext()
    from sklearn import config_context

    return config_context(assume_finite=True, skip_parameter_validation=True)


def bootstrap_interval(a: np.ndarray, b: np.ndarray, statistic: Statistic, n_resamples: int,
                       confidence: float, seed: int | None, progress: bool) -> Interval:
    """Percentile intervals of ``statistic(a_rows, b_rows)`` over ``n_resamples`` resamples.

    Rows are resampled by index (``scipy.stats.bootstrap`` resamples 1-D samples), so each
    resample keeps whole observations together.
    """
    bar = tqdm(total=n_resamples, desc="bootstrap", unit="resample", file=sys.stderr,
               disable=None if progress else True, leave=False)

    def on_indices(ia: np.ndarray, ib: np.ndarray) -> np.ndarray:
        bar.update(1)
        return statistic(a[ia.astype(np.intp)], b[ib.astype(np.intp)])

    try:
        with warnings.catch_warnings(), _fast_sklearn():
            # A NaN statistic (singular resample) is reported by us, not as SciPy's warning.
            warnings.simplefilter("ignore", RuntimeWarning)
            result = _bootstrap()(
                (np.arange(len(a)), np.arange(len(b))), on_indices, n_resamples=n_resamples,
                vectorized=False, paired=False, confidence_level=confidence,
                method="percentile", **_rng_kwarg(seed))
    finally:
        bar.close()
    ci = result.confidence_interval  # type: ignore[attr-defined]
    return Interval(np.asarray(ci.low), np.asarray(ci.high),
                    np.asarray(result.standard_error),  # type: ignore[attr-defined]
                    n_resamples, confidence, seed)

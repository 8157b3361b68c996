"""The definition itself, eq. (3)/(11): KL(P‖Q) = E_{X∼P}[ln p(X)/q(X)], by sampling."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from gaussdiv.density import log_ratio
from gaussdiv.divergence import _check_pair
from gaussdiv.gaussian import Gaussian

Seed = int | np.random.Generator | None

#: Points per chunk in :func:`kl_mc`, per batch element: memory stays O(chunk · batch · d).
DEFAULT_CHUNK = 65_536


@dataclass(frozen=True)
class MonteCarloEstimate:
    """A Monte Carlo mean with its standard error.

    Attributes:
        value: the sample mean, shape (*batch) (a NumPy scalar for one pair).
        stderr: its standard error s/√n, same shape.
        n: the number of samples per batch element.
    """

    value: Any
    stderr: Any
    n: int

    def zscore(self, exact: Any) -> Any:
        """(value − exact) / stderr: how many standard errors the estimate is from ``exact``."""
        return (self.value - exact) / self.stderr


def sample(p: Gaussian, n: int, seed: Seed = None) -> Any:
    """Draw n points X = μ + S Z with S Sᵀ = Σ and Z standard normal.

    Returns:
        Array of shape (n, *batch_shape, d) in the Gaussian's dtype.
    """
    rng = _generator(seed)
    return _draw(p, _check_count(n, "n"), rng)


def kl_mc(p: Gaussian, q: Gaussian, n: int = 100_000, seed: Seed = None,
          chunk: int = DEFAULT_CHUNK) -> MonteCarloEstimate:
    """Monte Carlo estimate of KL(P‖Q) as the mean of ln p(X)/q(X) over X ∼ P (eq. 11).

    Samples are drawn and reduced ``chunk`` at a time (Chan et al.'s pairwise update of mean and
    sum of squared deviations), so memory does not grow with n.

    Returns:
        :class:`MonteCarloEstimate` with value and stderr of shape broadcast(B₁, B₂).
    """
    _check_pair(p, q)
    n = _check_count(n, "n")
    chunk = _check_count(chunk, "chunk")
    rng = _generator(seed)
    count, mean, m2 = 0, 0.0, 0.0
    while count < n:
        size = min(chunk, n - count)
        values = np.asarray(log_ratio(p, q, _draw(p, size, rng)), dtype=np.float64)
        c_mean = values.mean(axis=0)
        c_m2 = ((values - c_mean) ** 2).sum(axis=0)
        total = count + size
        delta = c_mean - mean
        mean = mean + delta * (size / total)
        m2 = m2 + c_m2 + delta * delta * (count * size / total)
        count = total
    stderr = np.sqrt(m2 / max(n - 1, 1) / n)
    dtype = np.promote_types(p.dtype, q.dtype)
    return MonteCarloEstimate(_scalar(mean, dtype), _scalar(stderr, dtype), n)


def _draw(p: Gaussian, n: int, rng: np.random.Generator) -> Any:
    z = rng.standard_normal((n, *p.batch_shape, p.cov.noise_dim)).astype(p.dtype, copy=False)
    return p.mean + p.cov.color(z)


def _generator(seed: Seed) -> np.random.Generator:
    return seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)


def _check_count(n: Any, name: str) -> int:
    if isinstance(n, bool) or not isinstance(n, int | np.integer) or n < 1:
        raise ValueError(f"{name} must be a positive integer, got {n!r}")
    return int(n)


def _scalar(x: Any, dtype: Any) -> Any:
    out = np.asarray(x, dtype=dtype)
    return out[()] if out.ndim == 0 else out

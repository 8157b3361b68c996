"""The definition itself, eq. (3)/(11): KL(P‖Q) = E_{X∼P}[ln p(X)/q(X)], by sampling."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from gaussdiv.backends import broadcast_shapes
from gaussdiv.density import log_ratio
from gaussdiv.errors import GaussianError
from gaussdiv.gaussian import Gaussian, check_gaussian, check_pair

#: Points per chunk in :func:`kl_mc`, per batch element: memory stays O(chunk · batch · d).
DEFAULT_CHUNK = 65_536


@dataclass(frozen=True)
class MonteCarloEstimate:
    """A Monte Carlo mean with its standard error.

    Attributes:
        value: the sample mean, shape (*batch) (a NumPy scalar for one NumPy pair).
        stderr: its standard error s/√n, same shape.
        n: the number of samples per batch element.
    """

    value: Any
    stderr: Any
    n: int

    def zscore(self, exact: Any) -> Any:
        """(value − exact) / stderr: how many standard errors the estimate is from ``exact``."""
        return (self.value - exact) / self.stderr


def sample(p: Gaussian, n: int, seed: Any = None) -> Any:
    """Draw n points X = μ + S Z with S Sᵀ = Σ and Z standard normal.

    Args:
        seed: an int, None, or the framework's own generator (``np.random.Generator``,
            ``torch.Generator``, a ``jax.random`` key).

    Returns:
        Array of shape (n, *batch_shape, d) in the Gaussian's framework, dtype and device.
    """
    check_gaussian(p, "p")
    draw = p.cov.ops.random(seed)
    return p.cov.ops.result(_draw(p, _check_count(n, "n"), draw, p.batch_shape), p.dtype)


def kl_mc(p: Gaussian, q: Gaussian, n: int = 100_000, seed: Any = None,
          chunk: int = DEFAULT_CHUNK) -> MonteCarloEstimate:
    """Monte Carlo estimate of KL(P‖Q) as the mean of ln p(X)/q(X) over X ∼ P (eq. 11).

    Samples are drawn and reduced ``chunk`` at a time (Chan et al.'s pairwise update of mean and
    sum of squared deviations), so memory does not grow with n.

    Returns:
        :class:`MonteCarloEstimate` with value and stderr of shape broadcast(B₁, B₂).
    """
    check_pair(p, q)
    n = _check_count(n, "n")
    if n < 2:
        raise GaussianError("n must be at least 2 for kl_mc: one draw has no standard error")
    chunk = _check_count(chunk, "chunk")
    ops = p.cov.ops
    draw = ops.random(seed)
    batch = broadcast_shapes(p.batch_shape, q.batch_shape)
    count, mean, m2 = 0, 0.0, 0.0
    while count < n:
        size = min(chunk, n - count)
        values = log_ratio(p, q, _draw(p, size, draw, batch))
        c_mean = values.mean(0)
        c_m2 = ((values - c_mean) ** 2).sum(0)
        total = count + size
        delta = c_mean - mean
        mean = mean + delta * (size / total)
        m2 = m2 + c_m2 + delta * delta * (count * size / total)
        count = total
    stderr = ops.xp.sqrt(m2 / max(n - 1, 1) / n)
    dtype = values.dtype
    return MonteCarloEstimate(ops.result(mean, dtype), ops.result(stderr, dtype), n)


def _draw(p: Gaussian, n: int, draw: Callable[..., Any], batch: tuple[int, ...]) -> Any:
    """n draws from P for every element of ``batch`` (P's batch shape or a broadcast of it)."""
    z = draw((n, *batch, p.cov.noise_dim), p.cov.dtype, p.mean)
    return p.mean + p.cov.color(z)


def _check_count(n: Any, name: str) -> int:
    if isinstance(n, bool) or not isinstance(n, int | np.integer) or n < 1:
        raise GaussianError(f"{name} must be a positive integer, got {n!r}")
    return int(n)

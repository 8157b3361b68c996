r"""Confidence intervals for divergences of fitted Gaussians, and how each is formed.

``studentized`` (maximum-likelihood and unbiased fits, the default). The symmetric bootstrap-t
interval around the unbiased estimate U:

    U ± q·se,   q = the ``confidence`` quantile of |U* − θ*| / se*  over the resamples,

where θ* is the plug-in divergence of the data's own fits (the truth of the world the
resamples are drawn from), U* a resample's unbiased estimate and se, se* the delta-method
standard errors (:mod:`gaussdiv.inference.stderr`) of the data and of the resample. The
plain percentile interval of the plug-in fails here: the plug-in is biased upwards by about
(#parameters)/n and resampling adds the bias again, so its intervals can miss their own
estimate (measured: 0 % coverage at d = 10, n = 200). The basic interval of U corrects the
bias but not the spread, which grows with the divergence: resamples live in a world with the
*plug-in* divergence, larger than the truth, and over-cover (99.5 %). Dividing by se* cancels
that growth; the measured coverage is in ``docs/`` and ``benchmarks/RESULTS.md``.

``jackknife`` (shrinkage fits, and the divergences other than KL). The delete-a-group jackknife
of each data set (g groups of rows; A's and B's contributions add) gives a standard error and
a bias estimate Σ_s (g_s − 1)(mean θ̂₍₋ₖ₎ − θ̂). For maximum-likelihood fits of another
divergence the corrected value θ̂ − bias with U ± z·se is used (measured for Hellinger:
bias 0.0245 against the plug-in's 0.131 at d = 10, n = 200; coverage 77–92 %, below nominal).
For shrinkage fits the bias estimate is not used: shrinkage biases the fit itself towards a
multiple of the identity, which the jackknife does not see, and "correcting" with it was
measured to move the estimate away from the truth (mean error of J −0.32 against the
plug-in's +0.10 at d = 10, n = 60); their interval is plug-in ± z·se (coverage 97–99 % at
5–6 rows per dimension, 60 % at 20). Prefer maximum likelihood with the exact correction,
which ``compare``'s ``auto`` does from n > d + 2 on.

``normal`` (no bootstrap, maximum-likelihood fits): U ± z·se.

A divergence is ≥ 0, so every interval is clipped at 0 (which cannot lower its coverage).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy.special import ndtri


def studentized(value: np.ndarray, stderr: np.ndarray, resampled: np.ndarray,
                resampled_stderr: np.ndarray, world: np.ndarray,
                confidence: float) -> tuple[np.ndarray, np.ndarray]:
    """Symmetric bootstrap-t bounds, each (k,), for k statistics from (k, R) resamples."""
    t = np.abs(resampled - world[:, None]) / resampled_stderr
    q = np.quantile(t, confidence, axis=1)
    return _clipped(value - q * stderr, value + q * stderr)


def jackknife(plugin: np.ndarray, without: Sequence[np.ndarray], confidence: float,
              correct: bool = True) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(value, low, high, stderr), each (k,), from the plug-in (k,) and, per data set, the
    plug-in with each of its g groups left out (k, g); ``correct=False`` keeps the plug-in as
    the value (and the interval around it)."""
    value, variance = plugin.astype(np.float64), np.zeros_like(plugin, dtype=np.float64)
    with np.errstate(all="ignore"):  # an infinite divergence is handled below
        for leave_out in without:
            g = leave_out.shape[1]
            mean = leave_out.mean(axis=1)
            if correct:
                value = value - (g - 1) * (mean - plugin)
            variance = variance + (g - 1) / g * ((leave_out - mean[:, None]) ** 2).sum(axis=1)
        stderr = np.sqrt(variance)
        low, high = normal(value, stderr, confidence)
    infinite = np.isinf(plugin)  # e.g. a Rényi order beyond where it exists: +inf, no interval
    return (np.where(infinite, plugin, value), np.where(infinite, plugin, low),
            np.where(infinite, plugin, high), np.where(infinite, np.inf, stderr))


def normal(value: np.ndarray, stderr: np.ndarray,
           confidence: float) -> tuple[np.ndarray, np.ndarray]:
    """U ± z·se with z the normal quantile of (1 + confidence)/2."""
    z = float(ndtri((1 + confidence) / 2))
    return _clipped(value - z * stderr, value + z * stderr)


def _clipped(low: np.ndarray, high: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return np.maximum(low, 0.0), np.maximum(high, 0.0)

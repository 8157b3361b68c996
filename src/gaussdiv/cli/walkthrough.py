"""The derivation of KL(P‖Q) checked on a concrete pair: each identity, closed form beside a
Monte Carlo estimate from the library's own sampler.

Numbers are those of docs/derivation.md (eqs. 3–23). Draws X ∼ P come from
:func:`gaussdiv.sample`; the quadratic forms are the covariances' own ``mahalanobis``; the
KL estimate of eq. (11) is :func:`gaussdiv.kl_mc`; the densities are :func:`gaussdiv.log_prob`.
The cross term of eq. (19), 2(x−μ₁)ᵀΣ₂⁻¹(μ₁−μ₂), is read off eq. (16) as
(x−μ₂)ᵀΣ₂⁻¹(x−μ₂) − (x−μ₁)ᵀΣ₂⁻¹(x−μ₁) − (μ₁−μ₂)ᵀΣ₂⁻¹(μ₁−μ₂), since the library exposes
quadratic forms, not bilinear ones.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

import gaussdiv
from gaussdiv import Gaussian, MonteCarloEstimate
from gaussdiv.cli.common import UserError, argument_names

#: An identity holds when its Monte Carlo estimate is within this many standard errors.
Z_LIMIT = 5.0
#: The most values n·(d + 1) the draws may hold: the walk-through's peak memory is about
#: 8·n·(6d + 5) bytes (measured with tracemalloc), so this keeps it under 1 GB.
MAX_VALUES = 20_000_000


def max_draws(dim: int) -> int:
    """The largest number of draws :func:`derive` takes in ``dim`` dimensions."""
    return MAX_VALUES // (dim + 1)


def check_draws(n: int, dim: int) -> None:
    """Refuse more draws than :func:`max_draws` (a one-line user error naming the maximum)."""
    if n > max_draws(dim):
        raise UserError(f"--samples {n}: at most {max_draws(dim)} draws in d = {dim} dimensions "
                        f"(n·(d + 1) ≤ {MAX_VALUES:.0e}, to bound the memory the check takes)")


#: Floating-point warnings are off in the checks: where a Gaussian is extreme (a variance of
#: e^1500), a draw or a quadratic form overflows, and the step shows it — its estimate is not
#: finite, so it fails (|z| is NaN or ∞) and is printed — so a warning would only repeat it.
_CHECKED = np.errstate(all="ignore")


@dataclass(frozen=True)
class Step:
    """One identity: its equation number, statement, closed form and Monte Carlo estimate."""

    eq: str
    identity: str
    closed: float
    mc: MonteCarloEstimate | None = None
    detail: str = ""

    @property
    @_CHECKED
    def z(self) -> float | None:
        """Standard errors between the estimate and the closed form (0 for an exact match)."""
        if self.mc is None:
            return None
        diff = float(self.mc.value) - self.closed
        if float(self.mc.stderr) == 0:
            return 0.0 if diff == 0 else math.copysign(math.inf, diff)
        return float(self.mc.zscore(self.closed))

    @property
    def holds(self) -> bool:
        return self.z is None or abs(self.z) < Z_LIMIT


def builtin_pair() -> tuple[Gaussian, Gaussian]:
    """A correlated 3-d pair with different means and covariances (every term is non-trivial)."""
    p = Gaussian([0.0, 1.0, -1.0], [[2.0, 0.5, 0.0], [0.5, 1.0, 0.3], [0.0, 0.3, 1.5]])
    q = Gaussian([1.0, 0.0, 0.0], [[1.0, 0.2, 0.1], [0.2, 2.0, 0.0], [0.1, 0.0, 1.0]])
    return p, q


def mean_of(values: np.ndarray) -> MonteCarloEstimate:
    """The sample mean of i.i.d. draws with its standard error s/√n."""
    values = np.asarray(values, dtype=np.float64)
    n = values.shape[0]
    return MonteCarloEstimate(values.mean(), values.std(ddof=1) / math.sqrt(n), n)


def textbook_sum(terms: gaussdiv.KLTerms) -> float:
    """Eq. (23) summed as written, ½(ln|Σ₂|/|Σ₁| + tr + Mahalanobis − d): loses digits as P → Q."""
    return 0.5 * (float(terms.logdet_ratio) + float(terms.trace) + float(terms.mahalanobis)
                  - terms.dim)


@_CHECKED
def derive(p: Gaussian, q: Gaussian, n: int, seed: int) -> list[Step]:
    """Every identity of the derivation, on n draws from P (and kl_mc with the same seed)."""
    t = gaussdiv.kl_terms(p, q)
    with argument_names(q="p"):
        own_trace = float(gaussdiv.kl_terms(p, p).trace)  # tr(Σ₁⁻¹Σ₁)
    kl = float(t.kl)
    x = gaussdiv.sample(p, n, seed=seed)  # (n, d)
    r1, r2 = x - p.mean, x - q.mean
    shift = float(t.mahalanobis)  # (μ₁−μ₂)ᵀΣ₂⁻¹(μ₁−μ₂)
    quad_p1 = p.cov.mahalanobis(r1)  # (x−μ₁)ᵀΣ₁⁻¹(x−μ₁)
    quad_q1 = q.cov.mahalanobis(r1)  # (x−μ₁)ᵀΣ₂⁻¹(x−μ₁)
    quad_q2 = q.cov.mahalanobis(r2)  # (x−μ₂)ᵀΣ₂⁻¹(x−μ₂)
    log_p = gaussdiv.log_prob(p, x)
    with argument_names(p="q"):  # log_prob calls its Gaussian p
        log_q = gaussdiv.log_prob(q, x)
    entropy, cross = float(gaussdiv.entropy(p)), float(gaussdiv.cross_entropy(p, q))
    return [
        Step("(13)", "E_P[(x−μ₁)ᵀΣ₁⁻¹(x−μ₁)] = tr(Σ₁⁻¹Σ₁) = d", float(t.dim), mean_of(quad_p1),
             f"tr(Σ₁⁻¹Σ₁) by the library: {own_trace:.10g}"),
        Step("(18)", "E_P[(x−μ₁)ᵀΣ₂⁻¹(x−μ₁)] = tr(Σ₂⁻¹Σ₁)", float(t.trace), mean_of(quad_q1)),
        Step("(19)", "2 E_P[(x−μ₁)ᵀΣ₂⁻¹(μ₁−μ₂)] = 0", 0.0,
             mean_of(quad_q2 - quad_q1 - shift), "cross term of eq. (16)"),
        Step("(20)", "E_P[(x−μ₂)ᵀΣ₂⁻¹(x−μ₂)] = tr(Σ₂⁻¹Σ₁) + (μ₁−μ₂)ᵀΣ₂⁻¹(μ₁−μ₂)",
             float(t.trace) + float(t.mahalanobis), mean_of(quad_q2)),
        Step("(11)", "KL(P‖Q) = E_P[ln p(X)/q(X)]", kl, gaussdiv.kl_mc(p, q, n=n, seed=seed),
             "Monte Carlo by gaussdiv.kl_mc"),
        Step("(23)", "KL(P‖Q) = ½(ln|Σ₂|/|Σ₁| + tr(Σ₂⁻¹Σ₁) + (μ₁−μ₂)ᵀΣ₂⁻¹(μ₁−μ₂) − d)", kl,
             None, f"summed as written: {textbook_sum(t):.12g}; gaussdiv.kl (no cancellation): "
                   f"{kl:.12g}"),
        Step("H_p(q)", "H_p(q) = −E_P[ln q(X)]", cross, mean_of(-log_q),
             "gaussdiv.cross_entropy"),
        Step("H_p(p)", "H_p(p) = −E_P[ln p(X)]", entropy, mean_of(-log_p), "gaussdiv.entropy"),
        Step("KL", "KL(P‖Q) = H_p(q) − H_p(p)", cross - entropy, mean_of(log_p - log_q),
             f"gaussdiv.kl: {kl:.12g}"),
    ]

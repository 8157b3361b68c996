r"""The exact bias of the plug-in KL between two fitted Gaussians, and its removal.

Let x₁ … xₙ be independent rows from N(μ, Σ) in d dimensions, x̄ their mean and
W = Σ (xᵢ − x̄)(xᵢ − x̄)ᵀ. Then x̄ ~ N(μ, Σ/n), W ~ Wishart_d(Σ, m) with m = n − 1 degrees of
freedom, and x̄ and W are independent. A covariance estimate S = W/ν (ν = n: maximum
likelihood; ν = n − 1: unbiased) has the moments (Anderson, *An Introduction to Multivariate
Statistical Analysis*, 3rd ed., §7.2 and §7.7)

    E S        = (m/ν) Σ
    E S⁻¹      = κ Σ⁻¹,          κ = ν / (m − d − 1)                    (m > d + 1)
    E ln|S|    = ln|Σ| + L,      L = Σᵢ₌₁ᵈ [ψ((m − i + 1)/2) − ln(ν/2)]

(ψ the digamma function; E ln|W| = ln|Σ| + d ln 2 + Σ ψ((m − i + 1)/2) because |W|/|Σ| is a
product of independent χ² variables with m, m − 1, …, m − d + 1 degrees of freedom.)

For two independent data sets A (n_a rows) and B (n_b), with δ = x̄_a − x̄_b, Δ = μ_a − μ_b,
T = tr(Σ_b⁻¹Σ_a) and M = ΔᵀΣ_b⁻¹Δ, independence of the four estimates gives

    E [ln|S_b| − ln|S_a|] = ln|Σ_b|/|Σ_a| + L_b − L_a
    E tr(S_b⁻¹S_a)        = κ_b (m_a/ν_a) T
    E δᵀS_b⁻¹δ            = κ_b tr(Σ_b⁻¹ E δδᵀ) = κ_b (M + T/n_a + d/n_b)

since E δδᵀ = ΔΔᵀ + Σ_a/n_a + Σ_b/n_b. Each line is linear in its unknown, so solving it for
that unknown gives an unbiased estimator of each term of KL(P_a‖P_b) = ½(ln|Σ_b|/|Σ_a| + T +
M − d), and their sum is an exactly unbiased estimator of the KL itself — for every n_a,
n_b > d + 2, not only asymptotically. The plug-in KL, for comparison, is biased upwards by
about d(d + 3)/4 · (1/n_a + 1/n_b) per direction for maximum-likelihood fits (half the number
of parameters times 1/n_a + 1/n_b; more for few rows per dimension). An unbiased estimator of
a quantity that can be 0 is sometimes negative: when A and B come from one distribution it is
negative about half the time.

Diagonal structures and the one-column marginals are the case d = 1 of the same formulas.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.special import digamma


@dataclass(frozen=True)
class WishartFit:
    """How a covariance estimate was formed: S = W/ν from n Gaussian rows (W ~ Wishart(Σ, n−1)).

    Attributes:
        n: rows.
        divisor: ν (n for maximum likelihood, n − 1 for the unbiased estimate).
    """

    n: int
    divisor: float

    @classmethod
    def of(cls, estimator: str, n: int) -> WishartFit:
        """The fit an estimator name stands for (``mle`` or ``unbiased``)."""
        return cls(n, float(n if estimator == "mle" else n - 1))

    @property
    def dof(self) -> int:
        """m = n − 1."""
        return self.n - 1

    def logdet_offset(self, d: int) -> float:
        """L = E ln|S| − ln|Σ| = Σᵢ₌₁ᵈ [ψ((m − i + 1)/2) − ln(ν/2)]."""
        i = np.arange(1, d + 1)
        return float(np.sum(digamma((self.dof - i + 1) / 2) - np.log(self.divisor / 2)))

    def inverse_factor(self, d: int) -> float:
        """κ with E S⁻¹ = κ Σ⁻¹: ν / (m − d − 1); needs m > d + 1."""
        return self.divisor / (self.dof - d - 1)

    def mean_factor(self) -> float:
        """E S = (m/ν) Σ."""
        return self.dof / self.divisor

    def allows(self, d: int) -> bool:
        """Whether the inverse moment exists: n > d + 2."""
        return self.dof > d + 1


@dataclass(frozen=True)
class UnbiasedTerms:
    """Unbiased estimates of KL(P_a‖P_b) and its three terms (arrays of one shape)."""

    kl: Any
    logdet_ratio: Any
    trace: Any
    mahalanobis: Any


def unbiased_kl(plugin_kl: Any, logdet_ratio: Any, trace: Any, mahalanobis: Any,
                fa: WishartFit, fb: WishartFit, d: int) -> UnbiasedTerms:
    """The unbiased estimates from the plug-in KL(Â‖B̂) and its terms (ln|S_b|/|S_a|,
    tr(S_b⁻¹S_a), δᵀS_b⁻¹δ) of fits ``fa`` and ``fb`` in d dimensions.

    The KL is the plug-in (computed without cancellation) plus half the sum of the three term
    corrections, so it keeps the plug-in's accuracy where the corrections are small.
    """
    kappa = fb.inverse_factor(d)
    ld = logdet_ratio - (fb.logdet_offset(d) - fa.logdet_offset(d))
    tr = trace / (kappa * fa.mean_factor())
    maha = mahalanobis / kappa - tr / fa.n - d / fb.n
    kl = plugin_kl + 0.5 * ((ld - logdet_ratio) + (tr - trace) + (maha - mahalanobis))
    return UnbiasedTerms(kl, ld, tr, maha)

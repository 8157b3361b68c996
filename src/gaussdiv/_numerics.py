"""Cancellation-free scalar kernels shared by every divergence.

The KL between Gaussians reduces, in the eigenbasis of the whitened covariance difference
E = L₂⁻¹(Σ₁ − Σ₂)L₂⁻ᵀ, to a sum of

    g(ε) = ε − ln(1 + ε)  ≥ 0,        one term per eigenvalue ε > −1 of E,

because tr(Σ₂⁻¹Σ₁) − d − ln|Σ₂⁻¹Σ₁| = Σᵢ (λᵢ − 1 − ln λᵢ) with λᵢ = 1 + εᵢ. Evaluated directly,
g loses all its digits for small ε (ε and ln(1+ε) agree in their leading digits), which is
exactly the P ≈ Q regime. :func:`excess_log1p` evaluates it to full relative accuracy.
"""

from __future__ import annotations

from typing import Any

# g(ε) = ε² Σ_{k≥0} (−1)ᵏ εᵏ / (k + 2) converges for |ε| < 1. On |ε| ≤ _SERIES_RADIUS the
# truncation after _SERIES_TERMS terms is below 2⁻⁶⁰ relative, i.e. exact in float64.
_SERIES_RADIUS = 0.5
_SERIES_TERMS = 56
_SERIES_COEFFS = tuple((-1.0) ** k / (k + 2) for k in range(_SERIES_TERMS))


def excess_log1p(eps: Any, xp: Any, log_ratio: Any = None) -> Any:
    """Return g(ε) = ε − ln(1 + ε) elementwise, to full relative accuracy, for ε > −1.

    Uses the Taylor series (Horner form) for |ε| ≤ 1/2, where the direct form cancels, and the
    direct form elsewhere, where it loses at most a factor ≈ 5 to cancellation.

    Args:
        eps: array of any shape, entries > −1.
        xp: the array namespace of ``eps`` (numpy, torch or jax.numpy).
        log_ratio: optional ln(1 + ε) known more accurately than ``log1p(eps)`` can give it —
            when λ = 1 + ε is tiny, ε rounds towards −1 and only ln λ itself (e.g. a difference
            of log-variances, or the log of a ratio) still carries λ's digits.
    """
    small = xp.abs(eps) <= _SERIES_RADIUS
    e_small = xp.where(small, eps, 0.0 * eps)
    acc = 0.0 * eps + _SERIES_COEFFS[-1]
    for c in reversed(_SERIES_COEFFS[:-1]):
        acc = c + e_small * acc
    series = e_small * e_small * acc
    e_large = xp.where(small, 0.0 * eps, eps)
    log_large = xp.log1p(e_large) if log_ratio is None else xp.where(small, 0.0 * eps, log_ratio)
    return xp.where(small, series, e_large - log_large)

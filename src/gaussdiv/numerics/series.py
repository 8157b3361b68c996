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

# For |ε| ≤ 1/2, with u = ε/(2 + ε) (so ln(1 + ε) = 2 atanh u and ε = 2u/(1 − u)):
#     g(ε) = u ε − 2u³ S(u²),   S(t) = Σ_{n≥0} tⁿ/(2n + 3),
# where |u| ≤ 1/3, both terms have the sign that adds (no cancellation beyond 7 %), and 16 terms
# of S put the truncation below 2⁻⁶⁰ relative (7 terms below 2⁻²⁸, enough for float32).
# Elsewhere the direct form loses at most a factor ≈ 5 to cancellation.
_SERIES_RADIUS = 0.5
_SERIES_COEFFS = tuple(1.0 / (2 * n + 3) for n in range(16))
_SERIES_TERMS_NARROW = 7


def excess_log1p(eps: Any, xp: Any, log_ratio: Any = None) -> Any:
    """Return g(ε) = ε − ln(1 + ε) elementwise, to full relative accuracy, for ε > −1.

    Args:
        eps: array of any shape, entries > −1.
        xp: the array namespace of ``eps`` (numpy, torch or jax.numpy).
        log_ratio: optional ln(1 + ε) known more accurately than ``log1p(eps)`` can give it —
            when λ = 1 + ε is tiny, ε rounds towards −1 and only ln λ itself (e.g. a difference
            of log-variances, or the log of a ratio) still carries λ's digits.
    """
    small = xp.abs(eps) <= _SERIES_RADIUS
    e_small = xp.where(small, eps, 0.0 * eps)
    u = e_small / (2 + e_small)
    t = u * u
    coeffs = _SERIES_COEFFS if eps.dtype.itemsize >= 8 else _SERIES_COEFFS[:_SERIES_TERMS_NARROW]
    acc = 0.0 * eps + coeffs[-1]
    for c in reversed(coeffs[:-1]):
        acc = c + t * acc
    series = u * (e_small - 2 * t * acc)
    e_large = xp.where(small, 0.0 * eps, eps)
    log_large = xp.log1p(e_large) if log_ratio is None else xp.where(small, 0.0 * eps, log_ratio)
    return xp.where(small, series, e_large - log_large)

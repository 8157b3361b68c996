"""Rényi divergences of order α and the Bhattacharyya family built on them.

For P = N(μ₁, Σ₁), Q = N(μ₂, Σ₂), α > 0, α ≠ 1 and Σ_α = αΣ₂ + (1−α)Σ₁:

    D_α(P‖Q) = α/2 · ΔμᵀΣ_α⁻¹Δμ − 1/(2(α−1)) · ln(|Σ_α| / (|Σ₁|^(1−α) |Σ₂|^α)),   Δμ = μ₁ − μ₂,

finite exactly where Σ_α is positive definite (always for α < 1; for α > 1 the integral
diverges elsewhere and D_α = +inf). As α → 1, D_α → KL(P‖Q), which is what α = 1 returns.

In the eigenvalues λᵢ = 1 + εᵢ of Σ₂⁻¹Σ₁, with a = 1 − α and g(x) = x − ln(1 + x), the
covariance part is a sum of non-negative terms,

    −1/(2(α−1)) Σᵢ [ln(1 + aεᵢ) − a ln(1 + εᵢ)] = ½ Σᵢ [g(εᵢ) − g(aεᵢ)/a]   (≥ 0: g is convex),

which is how it is evaluated wherever the fast form (log-determinants of Σ_α, Σ₁, Σ₂) cancels:
the pair relation's exact spectrum, per batch element (see :mod:`gaussdiv.execution.refine`).
The two terms of the kernel share a sign; they cancel by a factor α/(2 − α) at most for
α < 1 (a few bits at α = 0.01) and not at all for α ≥ 1.

Cost: one factorisation of Σ_α (O(d³) dense; O(d) for two diagonals; O(d k²) for low-rank or
diagonal pairs with α ≤ 1) on top of the structures' own, and for cancelling elements the exact
spectrum (an eigendecomposition of a d×d matrix for dense pairs, O(d) for diagonals).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from gaussdiv.divergences.kl import kl
from gaussdiv.divergences.validity import check_valid
from gaussdiv.errors import GaussianError
from gaussdiv.execution.refine import refine_cancelling
from gaussdiv.gaussian import Gaussian, check_pair, entry_point, result
from gaussdiv.numerics.series import excess_log1p
from gaussdiv.relations import relation_for
from gaussdiv.relations.base import PairRelation, Spectrum
from gaussdiv.structures import Covariance, FullPrecision


@entry_point
def renyi(p: Gaussian, q: Gaussian, alpha: float) -> Any:
    """D_α(P‖Q), the Rényi divergence of order α > 0 (see the module doc for the formula).

    Args:
        p, q: Gaussians of one d, batch shapes broadcasting.
        alpha: the order, a positive real; α = 1 gives KL(P‖Q) (the limit).

    Returns:
        Array of shape broadcast(B₁, B₂), ≥ 0, exactly 0 for identical inputs, +inf where
        αΣ₂ + (1−α)Σ₁ is not positive definite (only possible for α > 1).

    Accuracy (mpmath, every ordered pair of structure kinds, ``tests/test_family_reference.py``):
    float64 ≤ 1e-13 relative, separated and near-identical pairs alike.
    """
    alpha = check_order(alpha)
    if alpha == 1.0:
        return kl(p, q)
    check_pair(p, q)
    with np.errstate(all="ignore"):
        value, definite = _renyi(p, q, alpha)
    if definite is not None:
        value = p.ops.xp.where(definite, value, math.inf)
    check_valid(value, p, q, f"the Rényi divergence of order {alpha:g}")
    return result(value, p, q)


@entry_point
def bhattacharyya(p: Gaussian, q: Gaussian) -> Any:
    """The Bhattacharyya distance D_B = −ln ∫√(pq) = D_½(P‖Q) / 2
    = ⅛ ΔμᵀΣ_m⁻¹Δμ + ½ ln(|Σ_m| / √(|Σ₁||Σ₂|)), Σ_m = (Σ₁ + Σ₂)/2; symmetric, ≥ 0."""
    return 0.5 * renyi(p, q, 0.5)


@entry_point
def bhattacharyya_coefficient(p: Gaussian, q: Gaussian) -> Any:
    """BC = ∫√(p q) = e^(−D_B) ∈ (0, 1]; exactly 1 for identical inputs."""
    value = bhattacharyya(p, q)
    return p.ops.xp.exp(-value) if not isinstance(value, np.generic) else np.exp(-value)


@entry_point
def hellinger(p: Gaussian, q: Gaussian) -> Any:
    """The Hellinger distance H = √(1 − BC) ∈ [0, 1), computed as √(−expm1(−D_B)): full
    relative accuracy however close P and Q are (1 − BC would stop at √eps ≈ 1.5e-8)."""
    value = bhattacharyya(p, q)
    xp = p.ops.xp if not isinstance(value, np.generic) else np
    return xp.sqrt(-xp.expm1(-value))


def check_order(alpha: Any) -> float:
    """α as a float, or a GaussianError naming ``alpha``."""
    if isinstance(alpha, bool) or not isinstance(alpha, int | float | np.integer | np.floating):
        raise GaussianError(f"alpha must be a real number > 0, got {alpha!r}")
    value = float(alpha)
    if not math.isfinite(value) or value <= 0:
        raise GaussianError(f"alpha must be a finite real number > 0, got {alpha!r}")
    return value


def _renyi(p: Gaussian, q: Gaussian, alpha: float) -> tuple[Any, Any]:
    """(D_α before broadcasting, where Σ_α is positive definite or None)."""
    relation = relation_for(type(p.cov), type(q.cov))
    mixed, definite = relation.mix(p.cov, q.cov, alpha)
    a = 1.0 - alpha
    mean_part = 0.5 * alpha * mixed.mahalanobis(p.mean - q.mean)
    logdet_mixed, logdet_q = mixed.logdet(), q.cov.logdet()
    logdet_ratio = relation.logdet_ratio(p.cov, q.cov)  # ln|Σ₂|/|Σ₁|, from ratios
    xp = p.ops.xp
    fast = ((logdet_mixed - logdet_q) + a * logdet_ratio) / (2 * a)
    magnitude = (xp.abs(logdet_mixed) + xp.abs(logdet_q) + abs(a) * xp.abs(logdet_ratio)) \
        / (2 * abs(a))
    if isinstance(p.cov, FullPrecision) or isinstance(q.cov, FullPrecision):
        # Σ_α formed from an inverted precision: its log-determinant errs by ≈ d·u·κ
        # relative to its terms, not u; judged as ≈ d·u.
        magnitude = magnitude * p.dim

    def exact(sub_p: Covariance, sub_q: Covariance, sub_fast: Any) -> Any:
        return _exact_covariance_part(relation, sub_p, sub_q, sub_fast, a)

    covariance_part = refine_cancelling(fast, magnitude, p.cov, q.cov, exact, mean_part,
                                        _spectrum_note(relation))
    return mean_part + covariance_part, definite


def _spectrum_note(relation: PairRelation) -> Any:
    """What holds where the relation has no exact spectrum for the pair (None where it has)."""

    def note(p: Covariance, q: Covariance) -> str | None:
        if relation.has_spectrum(p, q):
            return None
        return (f"{type(p).__name__} ‖ {type(q).__name__} at d = {p.dim}: no exact spectrum "
                "for this pair, so the fast Rényi value stands where it cancels; its absolute "
                "error is a few u·(|ln|Σ_α|| + |ln|Σ₂|| + |1−α|·|ln|Σ₂|/|Σ₁||) / |2(1−α)|")

    return note


def _exact_covariance_part(relation: PairRelation, p: Covariance, q: Covariance, fast: Any,
                           a: float) -> Any:
    """½ Σ [g(εᵢ) − g(aεᵢ)/a] from the relation's exact spectrum (``fast`` without one)."""
    spectrum = relation.spectrum(p, q)
    if spectrum is None:
        return fast
    return renyi_kernel(p.ops, spectrum, a)


def renyi_kernel(ops: Any, spectrum: Spectrum, a: float) -> Any:
    """½ Σᵢ [g(εᵢ) − g(aεᵢ)/a] over the spectrum's last axis, a = 1 − α ≠ 0; +inf where some
    1 + aεᵢ ≤ 0 (Σ_α not positive definite)."""
    xp = ops.xp
    eps = spectrum.eps
    scaled = a * eps
    definite = 1 + ops.amin(scaled, (-1,), keepdims=False) > 0
    safe = xp.where(1 + scaled > 0, scaled, 0.0 * scaled)
    terms = excess_log1p(eps, xp, spectrum.log_ratio) - excess_log1p(safe, xp) / a
    return xp.where(definite, 0.5 * ops.sum(terms, -1), math.inf + 0.0 * eps[..., 0])

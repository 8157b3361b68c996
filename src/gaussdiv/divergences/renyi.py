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
from gaussdiv.execution.refine import CANCELLATION_RATIO, refine_cancelling
from gaussdiv.gaussian import Gaussian, check_pair, entry_point, mean_difference, result
from gaussdiv.numerics.series import excess_log1p
from gaussdiv.relations import relation_for
from gaussdiv.relations.base import PairRelation, Spectrum
from gaussdiv.structures import Covariance, FullCovariance, FullPrecision
from gaussdiv.types import Array


@entry_point
def renyi(p: Gaussian, q: Gaussian, alpha: float) -> Array:
    """The Rényi divergence of order α > 0, D_α(P‖Q), in closed form.

    With Δμ = μ₁ − μ₂ and the mixed covariance Σ_α = αΣ₂ + (1−α)Σ₁, for α ≠ 1:

        D_α(P‖Q) = α/2 · ΔμᵀΣ_α⁻¹Δμ − 1/(2(α−1)) · ln(|Σ_α| / (|Σ₁|^(1−α) |Σ₂|^α)).

    Finite exactly where Σ_α is positive definite: always for α < 1; for α > 1 it can fail
    (Σ₂ much narrower than Σ₁), the defining integral diverges and the element is +inf.
    α = 1 returns KL(P‖Q) (the limit, by :func:`kl`). Where the log-determinants cancel
    (P ≈ Q) the covariance part is ½ Σᵢ [g(εᵢ) − g(aεᵢ)/a] over the eigenvalues 1 + εᵢ of
    Σ₂⁻¹Σ₁, a = 1 − α, g(x) = x − ln(1 + x), a sum of non-negative terms. Accuracy (mpmath, every
    ordered pair of structure kinds, ``tests/test_family_reference.py``): float64 ≤ 1e-13
    relative, separated and near-identical pairs alike (worst measured 6e-14).

    Args:
        p: N(μ₁, Σ₁), batch shape B₁.
        q: N(μ₂, Σ₂), batch shape B₂ broadcastable with B₁; same d and framework.
        alpha: the order α, a finite real number > 0 (Python or NumPy scalar, one for the
            whole batch); α = 1 gives KL(P‖Q).

    Returns:
        Array of shape broadcast(B₁, B₂) in the framework and dtype rules of :func:`kl`:
        ≥ 0, exactly 0 for identical inputs, +inf where αΣ₂ + (1−α)Σ₁ is not positive
        definite (only possible for α > 1).

    Raises:
        GaussianError: alpha is not a real number (a bool, a string, an array), not finite,
            or ≤ 0.
        DimensionMismatchError: p and q have different d.
        BackendMismatchError: p and q hold arrays of different frameworks.
        ShapeError: B₁ and B₂ do not broadcast.
        NotPositiveDefiniteError: a covariance is numerically singular in its dtype beyond
            what its construction caught (a result rounding negative or NaN, or a low-rank
            Σ densified for a mixed pair); the message names it.
        TypeError: p or q is not a Gaussian.

    Cost: one factorisation of Σ_α on top of the structures' own — O(d³) dense, O(d) for two
    diagonals, O(d k²) for low-rank or diagonal pairs with α ≤ 1 — and, for the cancelling
    elements, the exact spectrum (an eigendecomposition of a d×d matrix for dense pairs,
    O(d) for diagonals).

    Examples:
        >>> import numpy as np, gaussdiv
        >>> p, q = gaussdiv.Gaussian(0.0, 1.0), gaussdiv.Gaussian(1.0, 1.0)
        >>> float(gaussdiv.renyi(p, q, alpha=2.0))     # equal variances: α/2 · Δμ² = 1
        1.0
        >>> wide = gaussdiv.Gaussian([0.0, 0.0], np.eye(2))
        >>> narrow = gaussdiv.Gaussian([0.0, 0.0], 0.25 * np.eye(2))
        >>> float(gaussdiv.renyi(wide, narrow, alpha=2.0))   # 2·(¼I) − I is not definite
        inf
        >>> bool(np.isfinite(gaussdiv.renyi(narrow, wide, alpha=2.0)))   # 2·I − ¼I is
        True
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
def bhattacharyya(p: Gaussian, q: Gaussian) -> Array:
    """The Bhattacharyya distance D_B = −ln ∫√(p q) dx = D_½(P‖Q) / 2.

    With Δμ = μ₁ − μ₂ and Σ_m = (Σ₁ + Σ₂)/2:

        D_B = ⅛ ΔμᵀΣ_m⁻¹Δμ + ½ ln(|Σ_m| / √(|Σ₁||Σ₂|)).

    Half the Rényi divergence of order ½ (:func:`renyi`), so evaluated without its
    cancellation where P ≈ Q (worst measured float64 relative error 6e-14).

    Args:
        p: N(μ₁, Σ₁), batch shape B₁.
        q: N(μ₂, Σ₂), batch shape B₂ broadcastable with B₁; same d and framework.

    Returns:
        Array of shape broadcast(B₁, B₂) in the framework and dtype rules of :func:`kl`:
        symmetric, ≥ 0 and finite, exactly 0 for identical inputs.

    Raises:
        DimensionMismatchError: p and q have different d.
        BackendMismatchError: p and q hold arrays of different frameworks.
        ShapeError: B₁ and B₂ do not broadcast.
        NotPositiveDefiniteError: as for :func:`renyi`.
        TypeError: p or q is not a Gaussian.

    Cost: that of :func:`renyi` at α = ½ (one factorisation of Σ_m on top of the
    structures' own).

    Examples:
        >>> import gaussdiv
        >>> p, q = gaussdiv.Gaussian(0.0, 1.0), gaussdiv.Gaussian(1.0, 1.0)
        >>> float(gaussdiv.bhattacharyya(p, q))    # ⅛ Δμ²/σ² = ⅛
        0.125
    """
    return 0.5 * renyi(p, q, 0.5)


@entry_point
def bhattacharyya_coefficient(p: Gaussian, q: Gaussian) -> Array:
    """The Bhattacharyya coefficient BC = ∫√(p q) dx = e^(−D_B), the overlap of P and Q.

    With D_B from :func:`bhattacharyya`, Δμ = μ₁ − μ₂ and Σ_m = (Σ₁ + Σ₂)/2:

        BC = exp(−⅛ ΔμᵀΣ_m⁻¹Δμ) · (|Σ₁||Σ₂|)^¼ / |Σ_m|^½.

    Args:
        p: N(μ₁, Σ₁), batch shape B₁.
        q: N(μ₂, Σ₂), batch shape B₂ broadcastable with B₁; same d and framework.

    Returns:
        Array of shape broadcast(B₁, B₂) in the framework and dtype rules of :func:`kl`:
        symmetric, in (0, 1] (rounding to 0 once D_B passes the float range of e^(−D_B)),
        exactly 1 for identical inputs.

    Raises:
        DimensionMismatchError: p and q have different d.
        BackendMismatchError: p and q hold arrays of different frameworks.
        ShapeError: B₁ and B₂ do not broadcast.
        NotPositiveDefiniteError: as for :func:`renyi`.
        TypeError: p or q is not a Gaussian.

    Cost: that of :func:`bhattacharyya`.

    Examples:
        >>> import gaussdiv
        >>> p, q = gaussdiv.Gaussian(0.0, 1.0), gaussdiv.Gaussian(1.0, 1.0)
        >>> round(float(gaussdiv.bhattacharyya_coefficient(p, q)), 6)    # e^(−⅛)
        0.882497
        >>> float(gaussdiv.bhattacharyya_coefficient(p, p))
        1.0
    """
    value = bhattacharyya(p, q)
    return p.ops.xp.exp(-value) if not isinstance(value, np.generic) else np.exp(-value)


@entry_point
def hellinger(p: Gaussian, q: Gaussian) -> Array:
    """The Hellinger distance H(P, Q) = √(1 − BC), BC = e^(−D_B) the Bhattacharyya coefficient.

    Computed as √(−expm1(−D_B)) from :func:`bhattacharyya`: full relative accuracy however
    close P and Q are (forming 1 − BC would stop at √eps ≈ 1.5e-8); worst measured float64
    relative error 3e-14.

    Args:
        p: N(μ₁, Σ₁), batch shape B₁.
        q: N(μ₂, Σ₂), batch shape B₂ broadcastable with B₁; same d and framework.

    Returns:
        Array of shape broadcast(B₁, B₂) in the framework and dtype rules of :func:`kl`:
        symmetric, in [0, 1) (rounding to 1 for pairs far apart), exactly 0 for identical
        inputs.

    Raises:
        DimensionMismatchError: p and q have different d.
        BackendMismatchError: p and q hold arrays of different frameworks.
        ShapeError: B₁ and B₂ do not broadcast.
        NotPositiveDefiniteError: as for :func:`renyi`.
        TypeError: p or q is not a Gaussian.

    Cost: that of :func:`bhattacharyya`.

    Examples:
        >>> import gaussdiv
        >>> p, q = gaussdiv.Gaussian(0.0, 1.0), gaussdiv.Gaussian(1.0, 1.0)
        >>> round(float(gaussdiv.hellinger(p, q)), 6)    # √(1 − e^(−⅛))
        0.342787
        >>> float(gaussdiv.hellinger(p, p))
        0.0
    """
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
    mean_part = 0.5 * alpha * mixed.mahalanobis(mean_difference(p, q))
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

    dense = isinstance(p.cov, FullCovariance) and isinstance(q.cov, FullCovariance)
    covariance_part = refine_cancelling(fast, magnitude, p.cov, q.cov, exact, mean_part,
                                        _spectrum_note(relation),
                                        _DENSE_CANCELLATION_RATIO if dense else
                                        CANCELLATION_RATIO)
    return mean_part + covariance_part, definite


#: For two full covariances the fast value (plus the mean part) is kept where it is at least
#: this fraction of its rounding magnitude (plus the mean part): six bits rather than KL's
#: three. Measured on random separated pairs (α ∈ {0.1, 0.5, 2, 5}, d ∈ {2, 8, 32, 64},
#: against the exact spectrum): worst relative error 3.6e-14 for fractions in [2⁻⁶, 2⁻³),
#: 1.5e-13 in [2⁻⁹, 2⁻⁶); with 2⁻³, 9 % of such a batch at d = 8 (35 % at d = 2) went to the
#: eigenvalue route for no accuracy gain. Structured pairs keep three bits (their fast terms
#: round more: low rank ‖ standard at 2⁻⁶ gave 1.35e-13).
_DENSE_CANCELLATION_RATIO = 2.0**-6


def _spectrum_note(relation: PairRelation) -> Any:
    """What holds where the relation has no exact spectrum for the pair (None where it has)."""

    def note(p: Covariance, q: Covariance) -> str | None:
        if relation.has_spectrum(p, q):
            return None
        return (f"{type(p).__name__} ‖ {type(q).__name__} at d = {p.dim}: no exact spectrum "
                "for this pair, so the fast Rényi value stands where it cancels; its absolute "
                "error is a few u·(|ln|Σ_α|| + |ln|Σ₂|| + |1−α|·|ln|Σ₂|/|Σ₁||) / |2(1−α)|")

    return note


#: The exact route is kept where the spectrum's spread (1 + ε_max)/(1 + ε_min) is below this:
#: a dense spectrum's eigenvalues carry an absolute error ≈ u·max(1, |ε|), so the smallest
#: keep ≈ u·spread relative accuracy (√u here), while a pair that spread is far apart and its
#: fast sum does not cancel.
_SPECTRAL_MAX_SPREAD = 2.0**26


def _exact_covariance_part(relation: PairRelation, p: Covariance, q: Covariance, fast: Any,
                           a: float) -> Any:
    """½ Σ [g(εᵢ) − g(aεᵢ)/a] from the relation's exact spectrum (``fast`` without one), and
    ``fast`` where the spectrum does not resolve it: spread beyond _SPECTRAL_MAX_SPREAD, or an
    eigenvalue beyond the float range (reported as its limit, λ = 0 or +inf)."""
    spectrum = relation.spectrum(p, q)
    if spectrum is None:
        return fast
    ops = p.ops
    lam = 1 + spectrum.eps
    with np.errstate(divide="ignore", invalid="ignore"):
        spread = -ops.amin(-lam, (-1,), keepdims=False) / ops.amin(lam, (-1,), keepdims=False)
    return ops.xp.where(spread < _SPECTRAL_MAX_SPREAD, renyi_kernel(ops, spectrum, a), fast)


def renyi_kernel(ops: Any, spectrum: Spectrum, a: float) -> Any:
    """½ Σᵢ tᵢ over the spectrum's last axis, a = 1 − α ≠ 0; +inf where some 1 + aεᵢ ≤ 0
    (Σ_α not positive definite).

    tᵢ = g(εᵢ) − g(aεᵢ)/a = ln(1 + aεᵢ)/a − ln(1 + εᵢ): the first form for |εᵢ| ≤ ½ (g by its
    series, no cancellation), the second beyond, where the first cancels (g(ε) and g(aε)/a
    both ≈ ε for large ε)."""
    xp = ops.xp
    eps = spectrum.eps
    scaled = a * eps
    definite = 1 + ops.amin(scaled, (-1,), keepdims=False) > 0
    safe = xp.where(1 + scaled > 0, scaled, 0.0 * scaled)
    near = xp.abs(eps) <= 0.5
    zero = 0.0 * eps
    log_ratio = spectrum.log_ratio
    near_log = None if log_ratio is None else xp.where(near, log_ratio, zero)
    series = (excess_log1p(xp.where(near, eps, zero), xp, near_log)
              - excess_log1p(xp.where(near, safe, zero), xp) / a)
    with np.errstate(divide="ignore", invalid="ignore"):
        logs = xp.log1p(safe) / a - (xp.log1p(eps) if log_ratio is None else log_ratio)
    terms = xp.where(near, series, logs)
    return xp.where(definite, 0.5 * ops.sum(terms, -1), math.inf + 0.0 * eps[..., 0])

"""KL divergence, cross-entropy and entropy of Gaussians in closed form.

For P = N(μ₁, Σ₁) and Q = N(μ₂, Σ₂) in d dimensions:

    KL(P‖Q) = ½ ( ln|Σ₂|/|Σ₁| + tr(Σ₂⁻¹Σ₁) + (μ₁−μ₂)ᵀΣ₂⁻¹(μ₁−μ₂) − d )
            = ½ ( excess + mahalanobis ),

where excess = tr(Σ₂⁻¹Σ₁) − d + ln|Σ₂|/|Σ₁| = Σᵢ (λᵢ − 1 − ln λᵢ) ≥ 0 over the eigenvalues λᵢ
of Σ₂⁻¹Σ₁ comes from the pair relation of the two structures (:mod:`gaussdiv.relations`),
refined without cancellation where P ≈ Q (:mod:`gaussdiv.execution.refine`). Cross-entropy and
entropy satisfy KL(P‖Q) = H_P(Q) − H_P(P).
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import numpy as np

from gaussdiv.divergences.validity import check_valid
from gaussdiv.execution.refine import refined_excess
from gaussdiv.gaussian import Gaussian, check_gaussian, check_pair, entry_point, result
from gaussdiv.relations import relation_for
from gaussdiv.relations.base import PairTerms

_LOG_2PI = math.log(2 * math.pi)


class KLTerms(NamedTuple):
    """The pieces of KL(P‖Q), each of shape (*batch).

    Attributes:
        logdet_ratio: ln(|Σ₂| / |Σ₁|).
        trace: tr(Σ₂⁻¹Σ₁).
        mahalanobis: (μ₁−μ₂)ᵀ Σ₂⁻¹ (μ₁−μ₂).
        dim: d.
        kl: KL(P‖Q), computed without cancellation. Equal to
            ½(logdet_ratio + trace + mahalanobis − dim) up to the rounding of that sum, which
            loses every digit when P ≈ Q; ``kl`` does not.
    """

    logdet_ratio: Any
    trace: Any
    mahalanobis: Any
    dim: int
    kl: Any


def kl_terms(p: Gaussian, q: Gaussian) -> KLTerms:
    """KL(P‖Q) together with its three terms (log-determinant ratio, trace, Mahalanobis).

    ``kl_terms(p, q).kl`` is ``kl(p, q)``, bit for bit: both are one computation.
    """
    terms, mahalanobis, value = _kl_parts(p, q)
    return KLTerms(
        logdet_ratio=result(terms.logdet_ratio, p, q),
        trace=result(terms.trace, p, q),
        mahalanobis=result(mahalanobis, p, q),
        dim=p.dim,
        kl=result(value, p, q),
    )


@entry_point
def kl(p: Gaussian, q: Gaussian) -> Any:
    """KL(P‖Q) = E_P[ln p(X)/q(X)], in closed form, exact to the last few digits.

    Args:
        p: N(μ₁, Σ₁), batch shape B₁.
        q: N(μ₂, Σ₂), batch shape B₂ broadcastable with B₁; same d.

    Returns:
        Array of shape broadcast(B₁, B₂) (a NumPy scalar for one pair), ≥ 0, exactly 0 when P
        and Q are given by identical arrays.

    Cost: that of the two structures' pair relation — O(d³) for dense covariances (two
    Cholesky factors, cached on the Gaussians, and one triangular solve with a d×d right-hand
    side), O(d) for two diagonals, O(d k²) for low-rank and diagonal, O(p³ + q³) for two
    Kronecker products — plus, for the batch elements so close that the textbook terms
    cancel, the relation's exact route (an eigendecomposition of a d×d matrix for dense pairs).
    """
    return result(_kl_parts(p, q)[2], p, q)


def _kl_parts(p: Gaussian, q: Gaussian) -> tuple[PairTerms, Any, Any]:
    """(the pair's fast terms, the Mahalanobis term, KL), checked, before broadcasting."""
    check_pair(p, q)
    relation = relation_for(type(p.cov), type(q.cov))
    # Overflow to inf and underflow to 0 are results here (a KL beyond the float range, a
    # variance below it), checked below, never warnings.
    with np.errstate(all="ignore"):
        mahalanobis = q.cov.mahalanobis(p.mean - q.mean)
        terms = relation.terms(p.cov, q.cov)
        excess = refined_excess(relation, p.cov, q.cov, terms, offset=mahalanobis)
        value = 0.5 * (excess + mahalanobis)
    check_valid(value, p, q, "KL")
    return terms, mahalanobis, value


@entry_point
def entropy(p: Gaussian) -> Any:
    """Differential entropy H(P) = H_P(P) = ½ (d (1 + ln 2π) + ln|Σ|), shape (*batch)."""
    check_gaussian(p, "p")
    return result(0.5 * (p.dim * (1 + _LOG_2PI) + p.cov.logdet()), p)


@entry_point
def cross_entropy(p: Gaussian, q: Gaussian) -> Any:
    """Cross-entropy H_P(Q) = −E_P[ln q(X)] = H(P) + KL(P‖Q), shape broadcast(B₁, B₂).

    Written as entropy plus the cancellation-free KL, which equals the direct form
    ½ (d ln 2π + ln|Σ₂| + tr(Σ₂⁻¹Σ₁) + (μ₁−μ₂)ᵀΣ₂⁻¹(μ₁−μ₂)) and rounds only once.
    """
    check_pair(p, q)
    return result(entropy(p) + kl(p, q), p, q)

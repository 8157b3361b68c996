"""KL divergence, cross-entropy and entropy of Gaussians in closed form.

For P = N(μ₁, Σ₁) and Q = N(μ₂, Σ₂) in d dimensions:

    KL(P‖Q) = ½ ( ln|Σ₂|/|Σ₁| + tr(Σ₂⁻¹Σ₁) + (μ₁−μ₂)ᵀΣ₂⁻¹(μ₁−μ₂) − d )
            = ½ ( excess + mahalanobis ),

where excess = tr(Σ₂⁻¹Σ₁) − d + ln|Σ₂|/|Σ₁| = Σᵢ (λᵢ − 1 − ln λᵢ) ≥ 0 over the eigenvalues λᵢ
of Σ₂⁻¹Σ₁ comes from the pair relation of the two structures (:mod:`gaussdiv.relations`),
refined without cancellation where P ≈ Q (:mod:`gaussdiv.execution.refine`). Cross-entropy and
entropy satisfy KL(P‖Q) = H_P(Q) − H(P), H(P) = H_P(P) (eqs. (24), (25) and (26)
of docs/derivation.md).
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import numpy as np

from gaussdiv.divergences.validity import check_valid
from gaussdiv.execution.refine import refined_excess
from gaussdiv.gaussian import (
    Gaussian,
    check_gaussian,
    check_pair,
    entry_point,
    mean_difference,
    result,
)
from gaussdiv.relations import relation_for
from gaussdiv.relations.base import PairTerms
from gaussdiv.types import Array

_LOG_2PI = math.log(2 * math.pi)


class KLTerms(NamedTuple):
    """KL(P‖Q) with the three terms of its closed form, eq. (23), as :func:`kl_terms` gives it.

    Every array field has the pair's broadcast batch shape broadcast(B₁, B₂), in the inputs'
    framework and dtype (NumPy scalars for one NumPy pair).

    Attributes:
        logdet_ratio: ln(|Σ₂| / |Σ₁|), any sign.
        trace: tr(Σ₂⁻¹Σ₁) > 0, eq. (18).
        mahalanobis: (μ₁−μ₂)ᵀ Σ₂⁻¹ (μ₁−μ₂) ≥ 0, the second term of eq. (20).
        dim: d, a Python int.
        kl: KL(P‖Q) ≥ 0, computed without cancellation: bit for bit ``kl(p, q)``. Equal to
            ½(logdet_ratio + trace + mahalanobis − dim) up to the rounding of that sum, which
            loses every digit when P ≈ Q; ``kl`` does not.

    Examples:
        >>> import numpy as np, gaussdiv
        >>> p = gaussdiv.Gaussian([0.0, 0.0], np.eye(2))
        >>> q = gaussdiv.Gaussian([1.0, 1.0], 2 * np.eye(2))
        >>> t = gaussdiv.kl_terms(p, q)    # ln 4, tr(½I) = 1, ½‖(1, 1)‖² = 1, d = 2
        >>> [round(float(x), 6) for x in (t.logdet_ratio, t.trace, t.mahalanobis)], t.dim
        ([1.386294, 1.0, 1.0], 2)
        >>> round(float(t.kl), 6)          # ½ (ln 4 + 1 + 1 − 2) = ln 2
        0.693147
    """

    logdet_ratio: Array
    trace: Array
    mahalanobis: Array
    dim: int
    kl: Array


@entry_point
def kl_terms(p: Gaussian, q: Gaussian) -> KLTerms:
    """KL(P‖Q) together with the three terms of its closed form, eq. (23).

    KL(P‖Q) = ½ (logdet_ratio + trace + mahalanobis − d) with logdet_ratio = ln|Σ₂|/|Σ₁|,
    trace = tr(Σ₂⁻¹Σ₁) (eq. (18)) and mahalanobis = (μ₁−μ₂)ᵀΣ₂⁻¹(μ₁−μ₂) (eq. (20)).
    ``kl_terms(p, q).kl`` is ``kl(p, q)``, bit for bit: both are one computation, so the
    ``kl`` field keeps every digit where the sum of the other fields cancels (P ≈ Q).

    Args:
        p: N(μ₁, Σ₁), batch shape B₁.
        q: N(μ₂, Σ₂), batch shape B₂ broadcastable with B₁; same d and framework.

    Returns:
        A :class:`KLTerms` whose array fields have shape broadcast(B₁, B₂), in the inputs'
        framework and dtype as for :func:`kl` (NumPy scalars for one NumPy pair).

    Raises:
        DimensionMismatchError: p and q have different d.
        BackendMismatchError: p and q hold arrays of different frameworks.
        ShapeError: B₁ and B₂ do not broadcast.
        NotPositiveDefiniteError: as for :func:`kl`.
        TypeError: p or q is not a Gaussian.

    Cost: that of :func:`kl`.

    Examples:
        >>> import numpy as np, gaussdiv
        >>> p = gaussdiv.Gaussian([0.0, 0.0], np.eye(2))
        >>> q = gaussdiv.Gaussian([0.0, 0.0], 2 * np.eye(2))
        >>> t = gaussdiv.kl_terms(p, q)    # ln 4, tr(½I) = 1, 0
        >>> round(float(t.logdet_ratio), 6), round(float(t.trace), 6), float(t.mahalanobis)
        (1.386294, 1.0, 0.0)
        >>> bool(t.kl == gaussdiv.kl(p, q))
        True
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
def kl(p: Gaussian, q: Gaussian) -> Array:
    """The Kullback–Leibler divergence KL(P‖Q) = E_P[ln p(X)/q(X)] in closed form, eq. (23):

        KL(P‖Q) = ½ (ln|Σ₂|/|Σ₁| + tr(Σ₂⁻¹Σ₁) + (μ₁−μ₂)ᵀΣ₂⁻¹(μ₁−μ₂) − d).

    Accurate where that textbook sum cancels (P ≈ Q): the covariance part is evaluated as
    Σᵢ (λᵢ − 1 − ln λᵢ) ≥ 0 over the eigenvalues λᵢ of Σ₂⁻¹Σ₁, formed from Σ₁ − Σ₂ itself, for
    the batch elements that need it. Against 60-digit mpmath (docs/accuracy.md), the worst
    float64 relative error is 2.4e-15 on random pairs (κ ≤ 1e4, d = 1…64) and 1.9e-15 on
    near-identical ones (Σ₁ = Σ₂ + δE, δ = 1e-1 … 1e-12), where the textbook formula goes
    negative from δ ≈ 1e-8; float32 2.1e-7. The VAE case, eq. (27):
    KL(N(μ, diag σ²) ‖ N(0, I)) = ½ Σᵢ (σᵢ² + μᵢ² − 1 − ln σᵢ²), exact for log-variances
    ℓ = ln σ² from −1500 to +700 with ``Gaussian.diag(mu, logvar=...)``.

    Args:
        p: N(μ₁, Σ₁), batch shape B₁.
        q: N(μ₂, Σ₂), batch shape B₂ broadcastable with B₁; same d and framework.

    Returns:
        Array of shape broadcast(B₁, B₂) in the inputs' framework and dtype (a NumPy scalar
        for one NumPy pair; half precision computed in float32 and returned as given; two
        dtypes give the wider): ≥ 0, +inf only beyond the float range, exactly 0 when P and Q
        are given by identical arrays.

    Raises:
        DimensionMismatchError: p and q have different d (or differently named coordinates).
        BackendMismatchError: p and q hold arrays of different frameworks (a NumPy
            ``Gaussian.standard(d)`` is first rebuilt in its partner's).
        ShapeError: B₁ and B₂ do not broadcast.
        NotPositiveDefiniteError: a covariance is numerically singular in its dtype beyond
            what its construction caught (a low-rank Σ densified for a mixed pair, or a result
            rounding negative or NaN); the message names it.
        TypeError: p or q is not a Gaussian (torch.distributions normals and frozen SciPy
            ``multivariate_normal`` objects are converted first).

    Cost: that of the two structures' pair relation — O(d³) for dense covariances (two
    Cholesky factors, cached on the Gaussians, and one triangular solve with a d×d right-hand
    side), O(d) for two diagonals, O(d k²) for low-rank and diagonal, O(p³ + q³) for two
    Kronecker products — plus, for the batch elements so close that the textbook terms
    cancel, the relation's exact route (an eigendecomposition of a d×d matrix for dense pairs).

    Examples:
        >>> import numpy as np, gaussdiv
        >>> p = gaussdiv.Gaussian([0.0, 0.0], np.eye(2))
        >>> q = gaussdiv.Gaussian([1.0, 1.0], 2 * np.eye(2))
        >>> round(float(gaussdiv.kl(p, q)), 6)    # ½ (2 ln 2 + 1 + 1 − 2) = ln 2
        0.693147
        >>> float(gaussdiv.kl(p, p))
        0.0
        >>> post = gaussdiv.Gaussian.diag([0.5, -1.0], var=[1.0, 2.0])   # eq. (27)
        >>> round(float(gaussdiv.kl(post, gaussdiv.Gaussian.standard(2))), 6)  # 9/8 − ½ ln 2
        0.778426
    """
    return result(_kl_parts(p, q)[2], p, q)


def _kl_parts(p: Gaussian, q: Gaussian) -> tuple[PairTerms, Any, Any]:
    """(the pair's fast terms, the Mahalanobis term, KL), checked, before broadcasting."""
    check_pair(p, q)
    relation = relation_for(type(p.cov), type(q.cov))
    # Overflow to inf and underflow to 0 are results here (a KL beyond the float range, a
    # variance below it), checked below, never warnings.
    with np.errstate(all="ignore"):
        mahalanobis = q.cov.mahalanobis(mean_difference(p, q))
        terms = relation.terms(p.cov, q.cov)
        excess = refined_excess(relation, p.cov, q.cov, terms, offset=mahalanobis)
        value = 0.5 * (excess + mahalanobis)
    check_valid(value, p, q, "KL")
    return terms, mahalanobis, value


@entry_point
def entropy(p: Gaussian) -> Array:
    """The differential entropy of P, in nats, eq. (24):

        H(P) = H_P(P) = −E_P[ln p(X)] = ½ (d (1 + ln 2π) + ln|Σ|).

    With :func:`cross_entropy`, KL(P‖Q) = H_P(Q) − H(P), eq. (26).

    Args:
        p: N(μ, Σ), batch shape B.

    Returns:
        Array of shape B in p's framework and dtype (a NumPy scalar for one NumPy Gaussian;
        half precision computed in float32 and returned as given). Any sign: negative when
        |Σ| < (2πe)^(−d); it does not depend on μ.

    Raises:
        TypeError: p is not a Gaussian (torch.distributions normals and frozen SciPy
            ``multivariate_normal`` objects are converted first). No gaussdiv error: a
            Gaussian's covariance was validated when it was built.

    Cost: ln|Σ| from the factors cached at construction — O(d) for dense and diagonal
    covariances, O(d + k) for low-rank, O(p + q) for Kronecker (plus, once per
    ill-conditioned dense matrix, its O(d³) backward-error correction, then cached).

    Examples:
        >>> import numpy as np, gaussdiv
        >>> p = gaussdiv.Gaussian([0.0, 0.0], np.eye(2))
        >>> round(float(gaussdiv.entropy(p)), 6)    # ½ · 2 (1 + ln 2π) = 1 + ln 2π
        2.837877
    """
    check_gaussian(p, "p")
    return result(0.5 * (p.dim * (1 + _LOG_2PI) + p.cov.logdet()), p)


@entry_point
def cross_entropy(p: Gaussian, q: Gaussian) -> Array:
    """The cross-entropy of Q relative to P, in nats, eq. (25):

        H_P(Q) = −E_P[ln q(X)] = ½ (d ln 2π + ln|Σ₂| + tr(Σ₂⁻¹Σ₁) + (μ₁−μ₂)ᵀΣ₂⁻¹(μ₁−μ₂)).

    Computed as H(P) + KL(P‖Q) (eqs. (24) and (26): KL(P‖Q) = H_P(Q) − H(P)) with the
    cancellation-free :func:`kl`, so it rounds only once.

    Args:
        p: P = N(μ₁, Σ₁), the distribution of the draws, batch shape B₁.
        q: Q = N(μ₂, Σ₂), the model scored, batch shape B₂ broadcastable with B₁; same d and
            framework.

    Returns:
        Array of shape broadcast(B₁, B₂) in the framework and dtype rules of :func:`kl`; any
        sign, ≥ H(P), equal to H(P) when P and Q are given by identical arrays.

    Raises:
        DimensionMismatchError: p and q have different d.
        BackendMismatchError: p and q hold arrays of different frameworks.
        ShapeError: B₁ and B₂ do not broadcast.
        NotPositiveDefiniteError: as for :func:`kl`.
        TypeError: p or q is not a Gaussian.

    Cost: that of :func:`kl` plus ln|Σ₁| (:func:`entropy`).

    Examples:
        >>> import numpy as np, gaussdiv
        >>> p = gaussdiv.Gaussian([0.0, 0.0], np.eye(2))
        >>> q = gaussdiv.Gaussian([1.0, 1.0], 2 * np.eye(2))
        >>> h_pq = gaussdiv.cross_entropy(p, q)
        >>> round(float(h_pq), 6)    # ½ (2 ln 2π + ln 4 + 1 + 1) = 1 + ln 4π
        3.531024
        >>> round(float(h_pq - gaussdiv.entropy(p)), 6)    # KL(P‖Q) = ln 2, eq. (26)
        0.693147
    """
    check_pair(p, q)
    return result(entropy(p) + kl(p, q), p, q)

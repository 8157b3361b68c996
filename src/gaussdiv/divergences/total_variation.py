"""Bounds on the total-variation distance TV(P, Q) = sup_A |P(A) − Q(A)|, which has no closed
form for Gaussians in d > 1.

With h² = 1 − BC (BC the Bhattacharyya coefficient), the classical inequalities
h² ≤ TV ≤ h √(2 − h²) (Le Cam; e.g. Tsybakov, Introduction to Nonparametric Estimation, Lemma
2.3, with H² = 2h²) and Pinsker's TV ≤ √(KL/2), in either direction, give

    lower = h²,   upper = min(1, h √(2 − h²), √(KL(P‖Q)/2), √(KL(Q‖P)/2)).

In one dimension TV is exact: the densities cross at the roots of a quadratic and
TV = |ΔF(x₁) − ΔF(x₂)| with ΔF = F_P − F_Q (absolute accuracy ≈ 1e-16; relative accuracy is
lost when TV ≪ 1e-8). The constant-factor bounds of Devroye, Mehrabian & Reddad (2018) are not
used: their constants were not verified against the paper itself here.
"""

from __future__ import annotations

import math
from typing import Any

from gaussdiv.divergences.kl import kl
from gaussdiv.divergences.renyi import bhattacharyya
from gaussdiv.gaussian import Gaussian, check_pair, entry_point, result
from gaussdiv.types import Array


@entry_point
def tv_bounds(p: Gaussian, q: Gaussian) -> tuple[Array, Array]:
    """Lower and upper bounds on the total-variation distance TV(P, Q) = sup_A |P(A) − Q(A)|.

    TV has no closed form for Gaussians in d > 1. With h² = 1 − BC (BC the
    :func:`bhattacharyya_coefficient`, h² formed as −expm1(−D_B)), Le Cam's inequalities
    (Tsybakov, Introduction to Nonparametric Estimation, Lemma 2.3) and Pinsker's in both
    directions give

        lower = h²,   upper = min(1, h √(2 − h²), √(KL(P‖Q)/2), √(KL(Q‖P)/2)).

    In one dimension both are the exact TV = |ΔF(x₁) − ΔF(x₂)|, ΔF = F_P − F_Q at the
    crossing points x₁, x₂ of the densities (absolute accuracy ≈ 1e-16; relative accuracy is
    lost when TV ≪ 1e-8).

    Args:
        p: N(μ₁, Σ₁), batch shape B₁.
        q: N(μ₂, Σ₂), batch shape B₂ broadcastable with B₁; same d and framework.

    Returns:
        A tuple (lower, upper) of two arrays of shape broadcast(B₁, B₂), each in the
        framework and dtype rules of :func:`kl` (NumPy scalars for one NumPy pair), with
        0 ≤ lower ≤ TV ≤ upper ≤ 1; both 0 for identical inputs, lower == upper == TV for
        d = 1.

    Raises:
        DimensionMismatchError: p and q have different d.
        BackendMismatchError: p and q hold arrays of different frameworks.
        ShapeError: B₁ and B₂ do not broadcast.
        NotPositiveDefiniteError: as for :func:`kl` and :func:`renyi`.
        TypeError: p or q is not a Gaussian.

    Cost: a :func:`bhattacharyya` distance and two :func:`kl` calls (and O(1) per element
    for the exact 1-D value).

    Examples:
        >>> import numpy as np, gaussdiv
        >>> lower, upper = gaussdiv.tv_bounds(gaussdiv.Gaussian(0.0, 1.0),
        ...                                   gaussdiv.Gaussian(1.0, 1.0))
        >>> bool(lower == upper), round(float(lower), 6)    # d = 1: exact, 2Φ(½) − 1
        (True, 0.382925)
        >>> p = gaussdiv.Gaussian([0.0, 0.0], np.eye(2))
        >>> lower, upper = gaussdiv.tv_bounds(p, gaussdiv.Gaussian([1.0, 1.0], 2 * np.eye(2)))
        >>> bool(0 <= lower <= upper <= 1)
        True
    """
    check_pair(p, q)
    xp = p.ops.xp
    h2 = -xp.expm1(-bhattacharyya(p, q))
    hellinger_upper = xp.sqrt(h2 * (2 - h2))
    pinsker = xp.sqrt(0.5 * xp.minimum(kl(p, q), kl(q, p)))
    upper = xp.minimum(xp.minimum(hellinger_upper, pinsker), 1.0 + 0.0 * h2)
    if p.dim != 1:
        return result(h2, p, q), result(upper, p, q)
    exact = result(_tv_1d(p, q), p, q)
    return exact, exact


def _tv_1d(p: Gaussian, q: Gaussian) -> Any:
    """The exact TV of two 1-D Gaussians (batched)."""
    ops = p.ops
    xp = ops.xp
    # In coordinates centred on μ₂ (TV is shift-invariant; the quadratic's coefficients would
    # otherwise cancel for large means).
    m1, m2 = p.mean[..., 0] - q.mean[..., 0], 0.0 * q.mean[..., 0]
    v1, v2 = p.cov.diagonal()[..., 0], q.cov.diagonal()[..., 0]
    s1, s2 = xp.sqrt(v1), xp.sqrt(v2)

    def delta_cdf(x: Any) -> Any:  # F_P(x) − F_Q(x) = ½ (erf(z₁/√2) − erf(z₂/√2))
        return 0.5 * (ops.erf((x - m1) / (s1 * math.sqrt(2)))
                      - ops.erf((x - m2) / (s2 * math.sqrt(2))))

    # ln p = ln q  ⇔  A x² + B x + C = 0.
    a = 0.5 * (v1 - v2) / (v1 * v2)
    b = m1 / v1 - m2 / v2
    c = 0.5 * m2 * m2 / v2 - 0.5 * m1 * m1 / v1 + 0.5 * (ops.xp.log(v2) - ops.xp.log(v1))
    equal = a == 0
    a_safe = xp.where(equal, 1.0 + 0.0 * a, a)
    root = xp.sqrt(xp.maximum(b * b - 4 * a_safe * c, 0.0 * b))
    big = -0.5 * (b + xp.where(b >= 0, root, -root))
    big_safe = xp.where(big == 0, 1.0 + 0.0 * big, big)
    x1, x2 = big / a_safe, c / big_safe
    two_roots = xp.abs(delta_cdf(x1) - delta_cdf(x2))
    one_root = xp.abs(delta_cdf(0.5 * (m1 + m2)))
    return xp.where(equal, one_root, two_roots)

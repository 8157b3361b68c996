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

import numpy as np

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
    with np.errstate(all="ignore"):  # ln 0 for equal means, exp underflow: both handled
        exact = result(_tv_1d(p, q), p, q)
    return exact, exact


def _tv_1d(p: Gaussian, q: Gaussian) -> Any:
    """The exact TV of two 1-D Gaussians (batched).

    TV is invariant under x → (x − μ₂)/σ, so the densities are compared in coordinates
    centred on μ₂ and scaled by the larger standard deviation σ: there the variances are
    r₁, r₂ ≤ 1 (one of them 1), from the log-variances ln v = ln|Σ| (d = 1) without forming
    v, so that no variance under- or overflows (subnormal, or e^±1500 given as logvar), and the
    mean m = (μ₁ − μ₂)/σ. Where the ratio of the variances is beyond e^±``_LOG_RATIO_ONE`` or
    |m| > ``_MEAN_ONE``, TV is 1 to the dtype's rounding (the overlap ∫ min(p, q) is below
    its eps) and is returned as 1.
    """
    ops = p.ops
    xp = ops.xp
    l1, l2 = p.cov.logdet(), q.cov.logdet()
    top = xp.maximum(l1, l2)
    limit = min(_LOG_RATIO_ONE, 0.4 * math.log(float(np.finfo(ops.numpy_dtype(l1)).max)))
    delta = p.mean[..., 0] - q.mean[..., 0]
    # |m| = e^{ln|Δμ| − ln σ}, formed only where it is at most _MEAN_ONE (else TV is 1).
    log_m = xp.log(xp.abs(delta)) - 0.5 * top
    certain = (xp.abs(l1 - l2) > limit) | (log_m > math.log(_MEAN_ONE))
    m1 = xp.sign(delta) * xp.exp(xp.where(certain, 0.0 * log_m, log_m))
    l1n = xp.where(certain, 0.0 * l1, l1 - top)
    l2n = xp.where(certain, 0.0 * l2, l2 - top)
    v1, v2 = xp.exp(l1n), xp.exp(l2n)
    s1, s2 = xp.exp(0.5 * l1n), xp.exp(0.5 * l2n)

    def delta_cdf(x: Any) -> Any:  # F_P(x) − F_Q(x) = ½ (erf(z₁/√2) − erf(z₂/√2))
        return 0.5 * (ops.erf((x - m1) / (s1 * math.sqrt(2)))
                      - ops.erf(x / (s2 * math.sqrt(2))))

    # ln p = ln q  ⇔  A x² + B x + C = 0 (μ₂ = 0 here).
    a = 0.5 * (v1 - v2) / (v1 * v2)
    b = m1 / v1
    c = -0.5 * m1 * m1 / v1 + 0.5 * (l2n - l1n)
    equal = a == 0
    a_safe = xp.where(equal, 1.0 + 0.0 * a, a)
    root = xp.sqrt(xp.maximum(b * b - 4 * a_safe * c, 0.0 * b))
    big = -0.5 * (b + xp.where(b >= 0, root, -root))
    big_safe = xp.where(big == 0, 1.0 + 0.0 * big, big)
    x1, x2 = big / a_safe, c / big_safe
    two_roots = xp.abs(delta_cdf(x1) - delta_cdf(x2))
    one_root = xp.abs(delta_cdf(0.5 * m1))
    return xp.where(certain, 1.0 + 0.0 * a, xp.where(equal, one_root, two_roots))


# Beyond a variance ratio of e^±200 (float64; less in narrower dtypes, so that B² stays finite)
# the narrower density's peak holds mass ≈ its width √(r ln 1/r) < 1e-40 of the wider, and
# beyond |m| = 40 wider standard deviations the tails overlap by < 1e-300: TV = 1 in rounding.
_LOG_RATIO_ONE = 200.0
_MEAN_ONE = 40.0

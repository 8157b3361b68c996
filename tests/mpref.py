"""Arbitrary-precision reference values: float inputs taken as exact, 50 significant digits."""

from __future__ import annotations

from collections.abc import Sequence

import mpmath as mp

DPS = 50
# Set globally: reference covariances are built (products, exp) before kl() is called.
mp.mp.dps = DPS


def mpf_vector(values: Sequence[float]) -> mp.matrix:
    return mp.matrix([mp.mpf(float(v)) for v in values])


def mpf_matrix(values: Sequence[Sequence[float]]) -> mp.matrix:
    return mp.matrix([[mp.mpf(float(v)) for v in row] for row in values])


def kl(m1: mp.matrix, s1: mp.matrix, m2: mp.matrix, s2: mp.matrix) -> mp.mpf:
    """KL(N(m1, s1) ‖ N(m2, s2)) by eq. (23), every term in mpmath (Cholesky, no det overflow)."""
    d = s1.rows
    l1, l2 = mp.cholesky(s1), mp.cholesky(s2)
    logdet_ratio = 2 * sum(mp.log(l2[i, i] / l1[i, i]) for i in range(d))
    s2_inv = mp.inverse(s2)
    trace = sum((s2_inv * s1)[i, i] for i in range(d))
    diff = m1 - m2
    mahalanobis = (diff.T * s2_inv * diff)[0]
    return (logdet_ratio + trace + mahalanobis - d) / 2


def relative_error(value: float, reference: mp.mpf) -> float:
    if reference == 0:
        return abs(float(value))
    return float(abs((mp.mpf(float(value)) - reference) / reference))


def mixture_kl_1d(first: tuple, second: tuple) -> float:
    """KL(f‖g) of 1-D mixtures given as (weights, means, variances), by adaptive quadrature
    (20 digits), split at every component's mean and mean ± 8σ of either mixture."""
    with mp.workdps(20):
        f, g = (_mixture_terms(*params) for params in (first, second))
        cuts = {float(m + k * s) for terms in (f, g) for _, m, s in terms for k in (-8, 0, 8)}

        def integrand(x: mp.mpf) -> mp.mpf:
            fx = _mixture_density(f, x)
            return fx * (mp.log(fx) - mp.log(_mixture_density(g, x))) if fx > 0 else mp.mpf(0)

        return float(mp.quad(integrand, [-mp.inf, *sorted(cuts), mp.inf]))


def _mixture_terms(weights: Sequence[float], means: Sequence[float],
                   variances: Sequence[float]) -> list[tuple[mp.mpf, mp.mpf, mp.mpf]]:
    return [(mp.mpf(float(w)), mp.mpf(float(m)), mp.sqrt(mp.mpf(float(v))))
            for w, m, v in zip(weights, means, variances, strict=True)]


def _mixture_density(terms: list[tuple[mp.mpf, mp.mpf, mp.mpf]], x: mp.mpf) -> mp.mpf:
    return mp.fsum(w / (s * mp.sqrt(2 * mp.pi)) * mp.exp(-((x - m) / s) ** 2 / 2)
                   for w, m, s in terms)

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

"""Packed per-Gaussian moments: KL between every P_i and every Q_j as one matrix product.

For P_i = N(μ_i, Σ_i), Q_j = N(ν_j, Σ_j) with Λ_j = Σ_j⁻¹ and the means centred on a common
point (m_i = μ_i − c, n_j = ν_j − c; KL only sees μ_i − ν_j):

    2 KL(P_i‖Q_j) = tr(Λ_j (Σ_i + m_i m_iᵀ)) − 2 m_iᵀ Λ_j n_j + (n_jᵀ Λ_j n_j + ln|Σ_j|)
                    + (−ln|Σ_i| − d)
                  = a_i · b_j,

    a_i = [pack(Σ_i + m_i m_iᵀ), m_i, 1, −ln|Σ_i| − d],
    b_j = [w ∘ pack(Λ_j), −2 Λ_j n_j, n_jᵀ Λ_j n_j + ln|Σ_j|, 1],

``pack`` the upper triangle (d(d+1)/2 entries) and w = 1 on the diagonal, 2 off it: K = d(d+1)/2
+ d + 2 features. When every Q_j is diagonal, tr(Λ_j Σ_i) only sees diag Σ_i and K = 2d + 2.

The same products of the entries' absolute values, M_ij = |a_i|·|b_j| (every term of the sum
taken positive, the rounding of each feature included), bound the rounding of the product:
|fl(a_i·b_j) − a_i·b_j| ≲ √K·u·M_ij for blocked sums (the probabilistic bound of Higham & Mary,
SIAM J. Sci. Comput. 41, 2019; measured ≤ 0.8√K·u·M at d = 16). M is computed in float32: it
only has to be right to a few bits, and overflow (inf, NaN) counts as "no bound".

A side that has to invert its matrix (Λ_j from a covariance, Σ_i from a precision) does so from
the cached Cholesky factor, corrected for the factor's backward error as the single-pair route
is (:func:`factored_inverse`); the error left, measured per Gaussian in units of u, is its
``inverse_error`` (≈ √κ·u, where the uncorrected inverse is off by κ·u).
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

from gaussdiv.gaussian import Gaussian
from gaussdiv.structures import Covariance, DiagonalCovariance, Factored, FullPrecision

#: Above this measured deviation ‖XL − I‖ of an inverse factor, first-order bounds do not hold:
#: the Gaussian's entries all go through the exact pair route.
MAX_INVERSE_DEVIATION = 1 / 16


class Moments(NamedTuple):
    """The packed features of a flat batch of n Gaussians, for one side of the product.

    Attributes:
        values: (n, K) in the compute dtype.
        magnitudes: (n, K) float32, the absolute values that bound the product's rounding.
        inverse_error: (n,) NumPy float64: extra relative error of the features in units of u
            (0 where nothing was inverted); inf where the inverse is not to be trusted. It
            bounds the features' error in the product relative to tr(Λ_j(Σ_i + Δμ Δμᵀ)).
        trace_offset: (n,) NumPy float64 with 2 KL_ij + offset_i + offset_j =
            tr(Λ_j Σ_i) + Δμᵀ Λ_j Δμ (ln|Σ_i| + d for rows, −ln|Σ_j| for columns).
    """

    values: Any
    magnitudes: Any
    inverse_error: np.ndarray
    trace_offset: np.ndarray

    def take(self, start: int, stop: int) -> Moments:
        """The moments of Gaussians start to stop − 1."""
        return Moments(self.values[start:stop], self.magnitudes[start:stop],
                       self.inverse_error[start:stop], self.trace_offset[start:stop])


def uses_diagonal_layout(q: Gaussian) -> bool:
    """Whether the column side is diagonal, so that K = 2d + 2 features suffice."""
    return isinstance(q.cov, DiagonalCovariance)


def row_moments(p: Gaussian, center: Any, diagonal: bool) -> Moments:
    """½ a_i (see the module doc; halved, exactly, so that ½a_i·b_j is KL itself) for a flat
    batch P (n,)."""
    ops = p.ops
    xp = ops.xp
    m = p.mean - center
    n, d = m.shape
    logdet = p.cov.logdet()
    if diagonal and not isinstance(p.cov, FullPrecision):
        sigma = p.cov.diagonal()
        error = np.zeros(n)
        moment = sigma + m * m
        moment_abs = xp.abs(sigma) + m * m
    else:
        sigma, error = _covariance(p.cov)
        if diagonal:
            moment = ops.diagonal(sigma) + m * m
            moment_abs = xp.abs(ops.diagonal(sigma)) + m * m
        else:  # packed before adding: the outer product m mᵀ is never formed d×d
            fused = ops.packed_moments(sigma, m, logdet, column=False)
            if fused is not None:
                return Moments(*fused, error, _host(ops, logdet) + d)
            rows, cols = np.triu_indices(d)
            packed, outer = _packed(sigma, d), m[:, rows] * m[:, cols]
            moment = packed + outer
            moment_abs = xp.abs(packed) + xp.abs(outer)
    ones = (0 * logdet + 1)[:, None]
    constant = (-logdet - d)[:, None]
    values = 0.5 * xp.concatenate([moment, m, ones, constant], -1)
    magnitudes = 0.5 * xp.concatenate([moment_abs, xp.abs(m), ones,
                                       xp.abs(logdet)[:, None] + d], -1)
    return Moments(values, _float32(ops, magnitudes), error, _host(ops, logdet) + d)


def column_moments(q: Gaussian, center: Any, diagonal: bool) -> Moments:
    """b_j (see the module doc) for a flat batch Q (n,)."""
    ops = q.ops
    xp = ops.xp
    v = q.mean - center
    n, d = v.shape
    logdet = q.cov.logdet()
    if diagonal:
        precision = q.cov.inverse_diagonal()
        error = np.zeros(n)
        weighted = precision * v
        weighted_abs = precision * xp.abs(v)
        packed = precision
        packed_abs = precision
    else:
        precision, error = _precision(q.cov)
        fused = ops.packed_moments(precision, v, logdet, column=True)
        if fused is not None:
            return Moments(*fused, error, -_host(ops, logdet))
        rows, cols = np.triu_indices(d)
        weight = ops.asarray(np.where(rows == cols, 1.0, 2.0), q.cov.dtype, like=precision)
        upper = _packed(precision, d)
        packed = upper * weight
        packed_abs = xp.abs(upper) * weight
        weighted = (precision @ v[:, :, None])[:, :, 0]
        weighted_abs = (xp.abs(precision) @ xp.abs(v)[:, :, None])[:, :, 0]
    quadratic = ops.sum(v * weighted, -1)
    quadratic_abs = ops.sum(xp.abs(v) * weighted_abs, -1)
    ones = (0 * logdet + 1)[:, None]
    values = xp.concatenate([packed, -2 * weighted, (quadratic + logdet)[:, None], ones], -1)
    magnitudes = xp.concatenate([packed_abs, 2 * weighted_abs,
                                 (quadratic_abs + xp.abs(logdet))[:, None], ones], -1)
    return Moments(values, _float32(ops, magnitudes), error, -_host(ops, logdet))


def _covariance(cov: Covariance) -> tuple[Any, np.ndarray]:
    """Σ (n, d, d) and its extra error in units of u: as held, or a precision inverted."""
    if isinstance(cov, FullPrecision):
        return factored_inverse(cov)
    return cov.dense(), np.zeros(cov.batch_shape[0])


def _precision(cov: Covariance) -> tuple[Any, np.ndarray]:
    """Λ = Σ⁻¹ (n, d, d) and its extra error in units of u: as held, or inverted."""
    if isinstance(cov, FullPrecision):
        return cov.side_matrix(), np.zeros(cov.batch_shape[0])
    return factored_inverse(cov.to_full())


def factored_inverse(factored: Factored) -> tuple[Any, np.ndarray]:
    """M⁻¹ (n, d, d) for the factored matrix M ≈ L(I + F)Lᵀ, and its error in units of u.

    M⁻¹ = Xᵀ(I − F)X to first order in the factor's backward error F (the correction the
    single-pair route applies), X = L⁻¹. The rest of the error, in the sense that matters
    here — |tr((X̂ − M⁻¹)T)| ≤ ‖E‖·tr(M⁻¹T) for every T ⪰ 0 with E = LᵀX̂ᵀX̂L − I — is
    ≈ 2‖XL − I‖, measured: ``error`` = 2‖fl(X̂L) − I‖_F / u, inf where it is not small
    (2ε > 1/16) or not finite. Measured against the single-pair route on d = 16, κ up to 10⁸:
    the real error is below a tenth of this estimate.
    """
    ops = factored.ops
    correction = factored.backward_error
    fused = ops.factor_inverse(factored.factor, correction)
    if fused is not None:
        inverse, norm = fused
    else:
        inv_factor = factored.inverse_factor()
        transpose = ops.matrix_transpose(inv_factor)
        inverse = transpose @ inv_factor
        if correction is not None:  # (symmetric in exact arithmetic; its upper half is read)
            inverse = inverse - transpose @ (correction @ inv_factor)
        d = inverse.shape[-1]
        with ops.no_grad():
            product = ops.stop_gradient(inv_factor) @ ops.stop_gradient(factored.factor)
            deviation = product - ops.eye(d, factored.dtype, like=product)
            norm = np.asarray(ops.to_numpy(_frobenius(ops, deviation)), dtype=np.float64)
    u = float(np.finfo(factored.dtype).eps) / 2
    with np.errstate(over="ignore", invalid="ignore"):
        error = 2 * norm / u
        error[~(2 * norm <= MAX_INVERSE_DEVIATION)] = np.inf  # NaN is untrusted too
    return inverse, error


def _packed(a: Any, d: int) -> Any:
    """The upper triangle of a (n, d, d), row by row, as (n, d(d+1)/2)."""
    return a.reshape(a.shape[0], d * d)[:, _upper_flat(d)]


_UPPER: dict[int, np.ndarray] = {}


def _upper_flat(d: int) -> np.ndarray:
    if d not in _UPPER:
        rows, cols = np.triu_indices(d)
        _UPPER[d] = rows * d + cols
    return _UPPER[d]


def _frobenius(ops: Any, a: Any) -> Any:
    return ops.xp.sqrt(ops.sum(a * a, (-2, -1)))


def _host(ops: Any, x: Any) -> np.ndarray:
    with ops.no_grad():
        return np.asarray(ops.to_numpy(ops.stop_gradient(x)), dtype=np.float64)


def _float32(ops: Any, x: Any) -> Any:
    """``x`` in float32 without gradient (overflow to inf is the caller's "no bound")."""
    with np.errstate(over="ignore"), ops.no_grad():
        return ops.asarray(ops.stop_gradient(x), np.dtype(np.float32), like=x)

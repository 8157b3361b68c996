"""Two diagonal covariances: exact in O(d), the eigenvalues of Σ₂⁻¹Σ₁ are λᵢ = v₁ᵢ / v₂ᵢ."""

from __future__ import annotations

from typing import Any

import numpy as np

from gaussdiv.numerics.series import excess_log1p
from gaussdiv.relations.base import PairRelation, PairTerms, Spectrum
from gaussdiv.relations.registry import register
from gaussdiv.structures import DiagonalCovariance
from gaussdiv.structures.diagonal import sum_over_dim

# Where |ln λ| is below this, ε comes from the double-double variances (the series range of
# excess_log1p); beyond it from expm1(ln λ), which cannot overflow before ln λ does.
_DIRECT_RATIO_MAX_LOG = 0.75


@register(DiagonalCovariance, DiagonalCovariance)
class DiagonalRelation(PairRelation):
    """excess = Σ εᵢ − Σ ln λᵢ, summed directly: error a few u · Σ (|εᵢ| + |ln λᵢ| + cᵢ),
    which the magnitude bounds by excess + 2 Σ (|ln λᵢ| + cᵢ), cᵢ the error of converting
    between kinds (0 for two of one kind); the exact route sums g(εᵢ) termwise, from the
    double-double variances where the kinds differ."""

    def terms(self, p: DiagonalCovariance, q: DiagonalCovariance) -> PairTerms:
        ops = p.ops
        d = p.dim
        fused = _fused_terms(p, q)
        if fused is not None:
            eps_sum, log_sum, spread = fused
            excess = eps_sum - log_sum
            return PairTerms(d + eps_sum, -log_sum, excess, excess + 2 * spread)
        eps, log_lam, conversion = fast_eigenvalue_terms(p, q)
        eps_sum, log_sum = sum_over_dim(eps, d, ops), sum_over_dim(log_lam, d, ops)
        excess = eps_sum - log_sum
        magnitude = excess + 2 * sum_over_dim(ops.xp.abs(log_lam) + conversion, d, ops)
        return PairTerms(d + eps_sum, -log_sum, excess, magnitude)

    def exact_excess(self, p: DiagonalCovariance, q: DiagonalCovariance, fast: Any) -> Any:
        eps, log_lam = exact_eigenvalue_terms(p, q)
        return sum_over_dim(excess_log1p(eps, p.ops.xp, log_ratio=log_lam), p.dim, p.ops)

    def spectrum(self, p: DiagonalCovariance, q: DiagonalCovariance) -> Spectrum:
        eps, log_lam = exact_eigenvalue_terms(p, q)
        shape = (*eps.shape[:-1], p.dim)
        xp = p.ops.xp
        return Spectrum(xp.broadcast_to(eps, shape), xp.broadcast_to(log_lam, shape))

    def has_spectrum(self, p: DiagonalCovariance, q: DiagonalCovariance) -> bool:
        return True

    def mix(self, p: DiagonalCovariance, q: DiagonalCovariance,
            alpha: float) -> tuple[DiagonalCovariance, Any]:
        """α v₂ + (1 − α) v₁, elementwise; where some entry is ≤ 0 (α > 1), 1 instead.

        Formed from the variances, or — where a side is given by log-variances, or the sum
        leaves the normal float range (a variance beyond e^±709 or subnormal) — in log
        space, as ln v₂ + ln(α + (1 − α) e^{ln v₁ − ln v₂}), which neither overflows nor
        underflows before the divergence itself does.
        """
        ops = p.ops
        if "logvar" in (p.kind, q.kind):
            return _log_space_mix(p, q, alpha)
        with np.errstate(all="ignore"):
            mixed = alpha * q.var() + (1 - alpha) * p.var()
        if not ops.is_traced(mixed) and not _in_normal_range(ops, mixed):
            return _log_space_mix(p, q, alpha)
        if alpha <= 1:
            return DiagonalCovariance("var", mixed, p.dim), None
        definite = ops.amin(mixed, (-1,), keepdims=False) > 0
        safe = ops.xp.where(definite[..., None], mixed, 1.0 + 0.0 * mixed)
        return DiagonalCovariance("var", safe, p.dim), definite


def _in_normal_range(ops: Any, values: Any) -> bool:
    """Whether every |value| lies in the normal floating-point range of its dtype (α > 1 mixes
    may be negative: that is judged by the caller, not here)."""
    tiny = float(np.finfo(ops.numpy_dtype(values)).tiny)
    size = ops.xp.abs(values)
    return bool(ops.all_finite(values)) and float(ops.min_value(size)) >= tiny


def _log_space_mix(p: DiagonalCovariance, q: DiagonalCovariance,
                   alpha: float) -> tuple[DiagonalCovariance, Any]:
    """The mix of :meth:`DiagonalRelation.mix` as log-variances (see there)."""
    xp = p.ops.xp
    log_p, log_q = p.log_var(), q.log_var()
    fused = None if p.ops.is_traced(log_p) or p.ops.is_traced(log_q) else \
        p.ops.log_space_mix(log_p, log_q, alpha)
    if fused is not None:
        mixed, definite = fused
        return DiagonalCovariance("logvar", mixed, p.dim), definite if alpha > 1 else None
    with np.errstate(all="ignore"):
        if alpha <= 1:  # a sum of two positive terms
            mixed = xp.logaddexp(np.log(alpha) + log_q, np.log1p(-alpha) + log_p)
            return DiagonalCovariance("logvar", mixed, p.dim), None
        # α v₂ − (α − 1) v₁ = v₂ (α − (α − 1) e^{ln v₁ − ln v₂}): positive where the ratio
        # is below α / (α − 1); exp overflowing to inf makes the element indefinite, rightly.
        inner = alpha - (alpha - 1) * xp.exp(log_p - log_q)
        definite = p.ops.amin(inner, (-1,), keepdims=False) > 0
        safe = xp.where(definite[..., None], inner, 1.0 + 0.0 * inner)
        mixed = xp.where(definite[..., None], log_q + xp.log(safe), 0.0 * safe)
    return DiagonalCovariance("logvar", mixed, p.dim), definite


def _fused_terms(p: DiagonalCovariance, q: DiagonalCovariance) -> tuple[Any, Any, Any] | None:
    """The sums of :func:`fast_eigenvalue_terms` (Σ εᵢ, Σ ln λᵢ, Σ |ln λᵢ| + cᵢ) from one fused
    kernel, for its logvar case and for two variances, where the backend has it (None
    elsewhere)."""
    if max(p.param.shape[-1], q.param.shape[-1]) != p.dim:  # isotropic sides: d equal terms
        return None
    if "logvar" in (p.kind, q.kind):
        convert = 0 if p.kind == q.kind else 2 if p.kind == "logvar" else 1
        return p.ops.log_ratio_terms(p.log_var(), q.log_var(), convert)
    if p.kind == q.kind == "var":
        return p.ops.var_ratio_terms(p.param, q.param)
    return None


def fast_eigenvalue_terms(p: DiagonalCovariance, q: DiagonalCovariance) -> tuple[Any, Any, Any]:
    """(εᵢ, ln λᵢ, cᵢ) for λᵢ = v₁ᵢ / v₂ᵢ, εᵢ = λᵢ − 1, in a dozen elementwise operations.

    Two of one kind keep every digit: expm1(ℓ₁ − ℓ₂), (v₁ − v₂)/v₂, (s₁ − s₂)(s₁ + s₂)/s₂².
    Across kinds εᵢ carries a conversion error cᵢ·u: |ln v| of the side converted to log space
    (0 against N(0, I), whose ln v = 0), or 1 + |εᵢ| for a rounded s². Ratios are taken where
    they are normal numbers, differences of logarithms elsewhere (variances 1e-308 vs 1e308).
    """
    xp = p.ops.xp
    if "logvar" in (p.kind, q.kind):
        log_lam = p.log_var() - q.log_var()
        other = q if p.kind == "logvar" else p
        conversion = 0.0 if p.kind == q.kind else xp.abs(other.log_var())
        return xp.expm1(log_lam), log_lam, conversion
    if p.kind == q.kind == "std":
        s1, s2 = p.param, q.param
        ratio = s1 / s2
        eps = (s1 - s2) * (s1 + s2) / (s2 * s2)
        return eps, 2 * _log_ratio(p, ratio, xp.log(s1) - xp.log(s2)), 0.0
    v1, v2 = p.var(), q.var()
    eps = (v1 - v2) / v2
    conversion = 0.0 if p.kind == q.kind else 1 + xp.abs(eps)
    return eps, _log_ratio(p, v1 / v2, p.log_var() - q.log_var()), conversion


def _log_ratio(p: DiagonalCovariance, ratio: Any, log_difference: Any) -> Any:
    """ln(ratio), or the difference of logarithms where the ratio under- or overflowed."""
    xp = p.ops.xp
    tiny = np.finfo(p.dtype).tiny
    normal = (ratio >= tiny) & (ratio < np.inf)
    return xp.where(normal, xp.log(xp.where(normal, ratio, 1.0 + 0.0 * ratio)), log_difference)


def exact_eigenvalue_terms(p: DiagonalCovariance, q: DiagonalCovariance) -> tuple[Any, Any]:
    """(εᵢ, ln λᵢ) with εᵢ keeping its digits across kinds too (the exact route).

    From a log-variance difference expm1(ℓ₁ − ℓ₂) for two log-variances; otherwise from the
    double-double variances ((hi₁ − hi₂) + (lo₁ − lo₂)) / v₂ (exact s², e^ℓ), with
    ln λᵢ = log1p(εᵢ). Where |ln λᵢ| ≥ 0.75 (no cancellation to fear), ln λᵢ = ln v₁ − ln v₂ and
    εᵢ = expm1(ln λᵢ), which neither overflow nor lose λ at any scale.
    """
    xp = p.ops.xp
    if p.kind == q.kind == "logvar":
        log_lam = p.param - q.param
        return xp.expm1(log_lam), log_lam
    (hi1, lo1), (hi2, lo2) = p.var_dd(), q.var_dd()
    far_log = p.log_var() - q.log_var()
    near = xp.abs(far_log) < _DIRECT_RATIO_MAX_LOG
    one = 1.0 + 0.0 * hi1
    direct = xp.where(near, (hi1 - hi2) + (lo1 - lo2), 0.0 * hi1) / xp.where(near, hi2, one)
    log_lam = xp.where(near, xp.log1p(direct), far_log)
    return xp.where(near, direct, xp.expm1(far_log)), log_lam

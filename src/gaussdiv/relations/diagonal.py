"""Two diagonal covariances: exact in O(d), the eigenvalues of Σ₂⁻¹Σ₁ are λᵢ = v₁ᵢ / v₂ᵢ."""

from __future__ import annotations

from typing import Any

from gaussdiv.numerics.series import excess_log1p
from gaussdiv.relations.base import PairRelation, PairTerms
from gaussdiv.relations.registry import register
from gaussdiv.structures import DiagonalCovariance
from gaussdiv.structures.diagonal import sum_over_dim

# Where |ln λ| is below this, ε comes from the double-double variances (the series range of
# excess_log1p); beyond it from expm1(ln λ), which cannot overflow before ln λ does.
_DIRECT_RATIO_MAX_LOG = 0.75


@register(DiagonalCovariance, DiagonalCovariance)
class DiagonalRelation(PairRelation):
    """2·excess = Σ εᵢ − Σ ln λᵢ, summed directly: error a few u · Σ (|εᵢ| + |ln λᵢ|), which
    the magnitude bounds by excess + 2 Σ |ln λᵢ|; the exact route sums g(εᵢ) termwise."""

    def terms(self, p: DiagonalCovariance, q: DiagonalCovariance) -> PairTerms:
        ops = p.ops
        d = p.dim
        eps, log_lam = eigenvalue_terms(p, q)
        eps_sum, log_sum = sum_over_dim(eps, d, ops), sum_over_dim(log_lam, d, ops)
        excess = eps_sum - log_sum
        magnitude = excess + 2 * sum_over_dim(ops.xp.abs(log_lam), d, ops)
        return PairTerms(d + eps_sum, -log_sum, excess, magnitude)

    def exact_excess(self, p: DiagonalCovariance, q: DiagonalCovariance, fast: Any) -> Any:
        eps, log_lam = eigenvalue_terms(p, q)
        return sum_over_dim(excess_log1p(eps, p.ops.xp, log_ratio=log_lam), p.dim, p.ops)


def eigenvalue_terms(p: DiagonalCovariance, q: DiagonalCovariance) -> tuple[Any, Any]:
    """(εᵢ, ln λᵢ) for λᵢ = v₁ᵢ / v₂ᵢ, εᵢ = λᵢ − 1, shapes broadcast(*batch, d or 1).

    εᵢ keeps its digits when P ≈ Q: from a log-variance difference expm1(ℓ₁ − ℓ₂), otherwise
    from the double-double variances ((hi₁ − hi₂) + (lo₁ − lo₂)) / v₂ (exact s², e^ℓ), with
    ln λᵢ = log1p(εᵢ). Where |ln λᵢ| ≥ 0.75, ln λᵢ = ln v₁ − ln v₂ and εᵢ = expm1(ln λᵢ), so
    variances from 1e-308 to 1e308 (and log-variances beyond the float range) neither
    overflow nor lose λ.
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

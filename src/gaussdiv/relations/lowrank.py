"""Low-rank plus diagonal covariances against each other, and against diagonals (a diagonal is
the low-rank structure with W = 0): O(d k²) for both routes, no d×d matrix at any d."""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

from gaussdiv.backends import broadcast_shapes
from gaussdiv.numerics.series import excess_log1p
from gaussdiv.relations.base import PairRelation, PairTerms, Spectrum, terms_from
from gaussdiv.relations.dense import DenseRelation
from gaussdiv.relations.registry import register
from gaussdiv.structures import Covariance, DiagonalCovariance, LowRankCovariance


class LowRankParts(NamedTuple):
    """Σ = W Wᵀ + diag(v_hi + v_lo): the variances as a double-double (exact s², e^ℓ)."""

    factor: Any
    var: Any
    var_lo: Any


def lowrank_parts(cov: Covariance) -> LowRankParts:
    if isinstance(cov, LowRankCovariance):
        return LowRankParts(cov.factor, cov.var, 0.0 * cov.var)
    assert isinstance(cov, DiagonalCovariance)  # the relations below register no other type
    hi, lo = cov.var_dd()
    hi, lo = cov.full(hi), cov.full(lo)
    return LowRankParts(0.0 * hi[..., None], hi, lo)


def as_lowrank(cov: Covariance) -> LowRankCovariance:
    if isinstance(cov, LowRankCovariance):
        return cov
    parts = lowrank_parts(cov)
    return LowRankCovariance.from_valid_parts(parts.factor, parts.var)


@register(LowRankCovariance, LowRankCovariance)
@register(DiagonalCovariance, LowRankCovariance)
@register(LowRankCovariance, DiagonalCovariance)
class LowRankRelation(PairRelation):
    """Woodbury trace and determinant-lemma log-ratio, O(d (k₁ + k₂)²) per pair."""

    dense = DenseRelation()

    def terms(self, p: Covariance, q: Covariance) -> PairTerms:
        ops = p.ops
        log = ops.xp.log
        lp, lq = as_lowrank(p), as_lowrank(q)
        trace = lq.trace_solve(p)
        pieces = (ops.sum(log(lq.var / lp.var), -1),
                  2 * ops.sum(log(ops.diagonal(lq.capacitance_tril)), -1),
                  -2 * ops.sum(log(ops.diagonal(lp.capacitance_tril)), -1))
        logdet_ratio = pieces[0] + pieces[1] + pieces[2]
        terms = terms_from(trace, logdet_ratio, p.dim, ops)
        # Woodbury's trace is Σ diag(Σ₁)/v₂ minus a correction, and the log-ratio a sum of three
        # pieces: their sizes, not the results', bound the rounding.
        xp = ops.xp
        magnitude = (ops.sum(p.diagonal() / lq.var, -1) + p.dim
                     + xp.abs(pieces[0]) + xp.abs(pieces[1]) + xp.abs(pieces[2]))
        return terms._replace(magnitude=magnitude)

    def exact_excess(self, p: Covariance, q: Covariance, fast: Any) -> Any:
        return near_identical_excess(p.ops, lowrank_parts(p), lowrank_parts(q))

    def spectrum(self, p: Covariance, q: Covariance) -> Spectrum | None:
        """Densely (O(d³)) up to DENSE_EXACT_MAX_DIM: the O(d k²) route gives the excess only."""
        return self.dense.spectrum(p, q)

    def has_spectrum(self, p: Covariance, q: Covariance) -> bool:
        return self.dense.has_spectrum(p, q)

    def mix(self, p: Covariance, q: Covariance, alpha: float) -> tuple[Covariance, Any]:
        """[√α W₂, √(1−α) W₁] [·]ᵀ + diag(α v₂ + (1−α) v₁) for 0 < α ≤ 1 (low rank again);
        densely for α > 1, where the weights differ in sign."""
        if alpha > 1:
            return super().mix(p, q, alpha)
        xp = p.ops.xp
        first, second = lowrank_parts(p), lowrank_parts(q)
        var = alpha * second.var + (1 - alpha) * first.var
        shape = broadcast_shapes(tuple(first.factor.shape[:-2]),
                                 tuple(second.factor.shape[:-2]), tuple(var.shape[:-1]))
        factors = [xp.broadcast_to(w, (*shape, *w.shape[-2:]))  # batches broadcast first
                   for w in (np.sqrt(alpha) * second.factor, np.sqrt(1 - alpha) * first.factor)]
        return LowRankCovariance.from_valid_parts(xp.concatenate(factors, -1), var), None


def near_identical_excess(ops: Any, first: LowRankParts, second: LowRankParts) -> Any:
    """tr(Σ₂⁻¹Σ₁) − d − ln|Σ₂⁻¹Σ₁| without cancellation, for flat batches (n,).

    With Σᵢ = Dᵢ + WᵢWᵢᵀ and the intermediate M = D₁ + W₂W₂ᵀ, the excess φ splits exactly as

        φ(Σ₁‖Σ₂) = φ(Σ₁‖M) + φ(M‖Σ₂) + tr((Σ₂⁻¹ − M⁻¹)(Σ₁ − M)),

    and each piece is computed from differences of the inputs, so none subtracts large terms:

    - φ(Σ₁‖M): Σ₁ − M = H J Hᵀ has rank ≤ 2k (H = [W₁+W₂, W₁−W₂], J = ½[[0, I], [I, 0]];
      the narrower factor is padded with zero columns, which changes neither Σ nor the exact
      difference). With M^{-½}H = Q R (Householder, see :func:`_whitened_r`), the nonzero
      eigenvalues of M⁻¹(Σ₁ − M) are those of R J Rᵀ (2k×2k).
    - φ(M‖Σ₂): a diagonal difference δ = v₁ − v₂ (from the double-double variances) under the
      shared W = W₂. With r = δ/v₂, C the capacitance of Σ₂ and η the eigenvalues of
      C^{-½} Wᵀdiag(δ/(v₁v₂))W C^{-½}: Σᵢ g(rᵢ) + Σⱼ g(−ηⱼ) − tr(C⁻¹Wᵀdiag(δ²/(v₁v₂²))W),
      with g(x) = x − ln(1+x). Both k×k matrices are formed from the whitened factor
      Y = D₂^{-½}W and dimensionless weights, Wᵀdiag(δ/(v₁v₂))W = Yᵀdiag(δ/v₁)Y and
      Wᵀdiag(δ²/(v₁v₂²))W = Yᵀdiag(r²v₂/v₁)Y: products such as v₁v₂ under- or overflow for
      variances beyond 1e±154 (a low-rank Σ of entries 1e-200), the ratios never do.
    - the cross term: tr(J Hᵀ Σ₂⁻¹ diag(δ) M⁻¹ H), a product of two small differences.
    """
    xp = ops.xp
    tp = ops.matrix_transpose
    w1, w2 = _equal_ranks(ops, first.factor, second.factor)
    v1, v2 = first.var, second.var
    q = LowRankCovariance.from_valid_parts(w2, v2)
    mid = LowRankCovariance.from_valid_parts(w2, v1)
    delta = (v1 - v2) + (first.var_lo - second.var_lo)

    # φ(M‖Σ₂): diagonal difference under the shared low-rank part.
    ratio = delta / v2
    diag_part = ops.sum(excess_log1p(ratio, xp, log_ratio=xp.log(v1 / v2)), -1)
    lc = q.capacitance_tril
    whitened = w2 / xp.sqrt(v2)[..., None]  # Y = D₂^{-½}W
    mixed = ops.solve_triangular(lc, tp(whitened * (delta / v1)[..., None]), lower=True)
    n_prime = ops.solve_triangular(lc, tp(mixed @ whitened), lower=True)  # C^{-½}N'C^{-½}
    eta = ops.eigvalsh(0.5 * (n_prime + tp(n_prime)))
    second_order = ops.solve_triangular(
        lc, tp(whitened * (xp.abs(ratio) * xp.sqrt(v2 / v1))[..., None]), lower=True)
    diag_excess = (diag_part + ops.sum(excess_log1p(-eta, xp), -1)
                   - ops.sum(second_order * second_order, (-2, -1)))

    # φ(Σ₁‖M): the rank-2k difference of the factors, under M.
    h_left, h_right = w1 + w2, w1 - w2
    h = xp.concatenate([h_left, h_right], -1)
    r = _whitened_r(ops, v1, w2, h)
    k = h_left.shape[-1]
    r_left, r_right = r[..., :, :k], r[..., :, k:]
    core = 0.5 * (r_left @ tp(r_right) + r_right @ tp(r_left))
    lowrank_excess = ops.sum(excess_log1p(ops.eigvalsh(core), xp), -1)

    # Cross term tr(J Hᵀ Σ₂⁻¹ diag(δ) M⁻¹ H).
    inner = tp(q.solve(h)) @ (delta[..., None] * mid.solve(h))
    cross = 0.5 * (ops.sum(ops.diagonal(inner[..., :k, k:]), -1)
                   + ops.sum(ops.diagonal(inner[..., k:, :k]), -1))
    return diag_excess + lowrank_excess + cross


def _whitened_r(ops: Any, var: Any, factor: Any, h: Any) -> Any:
    """R of the QR factorisation of M^{-½}H, for M = diag(var) + factor·factorᵀ. O(d k²).

    M^{-½} = (I + UUᵀ)^{-½} D^{-½} with U = D^{-½}W = Q_U diag(s) Vᵀ (thin SVD) and
    (I + UUᵀ)^{-½} = I − Q_U diag(s²/(√(1+s²)(1+√(1+s²)))) Q_Uᵀ, written without cancellation.
    Householder QR is backward stable column by column, so a tiny column of H (the difference
    of two nearly equal factors) keeps its relative accuracy in R; R is never inverted, so rank
    deficiency (an exactly shared column) is harmless.
    """
    xp = ops.xp
    tp = ops.matrix_transpose
    inv_std = 1 / xp.sqrt(var)[..., None]
    q_u, s, _ = xp.linalg.svd(factor * inv_std, full_matrices=False)
    root = xp.sqrt(1 + s * s)
    shrink = (s * s / (root * (1 + root)))[..., None]
    x = h * inv_std
    x = x - q_u @ (shrink * (tp(q_u) @ x))
    return xp.linalg.qr(x)[1]


def _equal_ranks(ops: Any, w1: Any, w2: Any) -> tuple[Any, Any]:
    """Pad the narrower factor with zero columns (W Wᵀ unchanged)."""
    k1, k2 = w1.shape[-1], w2.shape[-1]
    if k1 == k2:
        return w1, w2
    xp = ops.xp
    if k1 < k2:
        return xp.concatenate([w1, 0.0 * w2[..., k1:]], -1), w2
    return w1, xp.concatenate([w2, 0.0 * w1[..., k2:]], -1)

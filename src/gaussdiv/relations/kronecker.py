"""Two Kronecker covariances with factors of the same sizes: O(p³ + q³ + d), never d×d.

With α, β the eigenvalues of A₂⁻¹A₁ and B₂⁻¹B₁, those of Σ₂⁻¹Σ₁ are the products αᵢβⱼ:
tr = tr(A₂⁻¹A₁) tr(B₂⁻¹B₁), ln-ratio = q ln|A₂|/|A₁| + p ln|B₂|/|B₁|. A ⊗ B = (A/c) ⊗ (cB) for
any c > 0, so a scalar may sit in either factor; the exact route first moves it: with c the
geometric mean of the α (from the fast log-ratio), α = c(1 + aᵢ) and β = (1 + bⱼ)/c where a, b
are the eigenvalues of the whitened differences of A₁/c against A₂ and of c·B₁ against B₂,
formed with error-free products. Then εᵢⱼ = aᵢ + bⱼ + aᵢbⱼ is small exactly when the pair is
close, whichever factor holds the scalar. Factors of different sizes go to the dense relation.
"""

from __future__ import annotations

from typing import Any

from gaussdiv.numerics.error_free import two_product
from gaussdiv.relations.base import PairRelation, PairTerms, Spectrum, terms_from
from gaussdiv.relations.dense import DenseRelation, factor_terms, matrix_difference_whitened
from gaussdiv.relations.registry import register
from gaussdiv.structures import FullCovariance, KroneckerCovariance


@register(KroneckerCovariance, KroneckerCovariance)
class KroneckerRelation(PairRelation):
    dense = DenseRelation()

    def terms(self, p: KroneckerCovariance, q: KroneckerCovariance) -> PairTerms:
        if not _same_sizes(p, q):
            return self.dense.terms(p, q)
        trace_a, logdet_a = factor_terms(p.a, q.a)
        trace_b, logdet_b = factor_terms(p.b, q.b)
        return terms_from(trace_a * trace_b, q.b.dim * logdet_a + q.a.dim * logdet_b, p.dim,
                          p.ops)

    def has_spectrum(self, p: KroneckerCovariance, q: KroneckerCovariance) -> bool:
        return _same_sizes(p, q) or self.dense.has_spectrum(p, q)

    def spectrum(self, p: KroneckerCovariance, q: KroneckerCovariance) -> Spectrum | None:
        if not _same_sizes(p, q):
            return self.dense.spectrum(p, q)
        ops = p.ops
        xp = ops.xp
        _, logdet_a = factor_terms(p.a, q.a)
        # c = the geometric mean of the α: ln c = ln(|A₁|/|A₂|) / p = −logdet_a / p.
        c = xp.exp(-logdet_a / p.a.dim)[..., None, None]
        a = ops.eigvalsh(matrix_difference_whitened(_divided(p.a, c), q.a))[..., :, None]
        b = ops.eigvalsh(matrix_difference_whitened(_multiplied(p.b, c), q.b))[..., None, :]
        eps = a + b + a * b
        log_lam = xp.log1p(a) + xp.log1p(b)
        n = eps.shape[0]
        return Spectrum(eps.reshape(n, p.dim), log_lam.reshape(n, p.dim))


def _same_sizes(p: KroneckerCovariance, q: KroneckerCovariance) -> bool:
    return (p.a.dim, p.b.dim) == (q.a.dim, q.b.dim)


def _divided(m: FullCovariance, c: Any) -> _DoubleDouble:
    """M/c to ≈ u²: hi = fl(M/c), lo from the exact remainder M − c·hi."""
    xp = m.ops.xp
    m_hi, m_lo = m.side_matrix_dd()
    hi = m_hi / c
    prod, prod_err = two_product(hi, c, xp)
    return _DoubleDouble(hi, (((m_hi - prod) - prod_err) + m_lo) / c)


def _multiplied(m: FullCovariance, c: Any) -> _DoubleDouble:
    """c·M to ≈ u², by an error-free product."""
    m_hi, m_lo = m.side_matrix_dd()
    hi, lo = two_product(m_hi, c, m.ops.xp)
    return _DoubleDouble(hi, lo + m_lo * c)


class _DoubleDouble:
    """A scaled Kronecker factor as its dense (hi, lo): all that matrix_difference_whitened
    asks of its first argument."""

    def __init__(self, hi: Any, lo: Any) -> None:
        self.hi, self.lo = hi, lo

    def dense_dd(self) -> tuple[Any, Any]:
        return self.hi, self.lo

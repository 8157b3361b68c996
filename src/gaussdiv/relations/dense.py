"""The generic relation, for any two structures: exact through dense matrices.

Fast terms: when a side is dense (full covariance or precision), both sides' full twins and
their Cholesky factors, B = L₂⁻¹L₁, tr = ‖B‖²_F and ln-ratio = 2 Σ ln(L₂,ᵢᵢ/L₁,ᵢᵢ) (ratios
before logs: no overflow at any scale, and a shared scale cancels exactly), corrected for the
factors' backward errors; against a diagonal, the same ratios with its standard deviations
(:func:`diagonal_log_ratio`) and tr(Σ₂⁻¹Σ₁) from quotients diag(Σ₁)/v. When no side is dense
(diagonal, low-rank, Kronecker mixed), tr(Σ₂⁻¹Σ₁) from what each side knows and the log-ratio
from each side's log-determinant: nothing d×d.

Exact route (the batch elements where those cancel): the eigenvalues ε of the whitened
difference E = Σ₂^-½(Σ₁ − Σ₂)Σ₂^-½, with Σ₁ − Σ₂ formed from both sides' double-double dense
matrices (:meth:`Covariance.dense_dd`: the user's matrix exactly, L Lᵀ, s², e^ℓ, W Wᵀ + D and
A ⊗ B carried to ≈ u²), so the difference keeps its digits however close the two are.
Precisions are never inverted: a precision Λ₂ = R₂R₂ᵀ whitens by E = R₂ᵀΣ₁R₂ − I formed with
error-free products; a precision Λ₁ against a covariance uses the eigenvalues of Σ₁⁻¹Σ₂
(λ ↦ 1/λ); two precisions use excess(Σ₁‖Σ₂) = excess(Λ₂‖Λ₁).

The double-double route runs for the pair rescaled to unit scale by a power of two (exact:
:func:`gaussdiv.relations.base.balanced`), since its residuals under- and overflow at the ends
of the float range; an element whose eigenvalues lie beyond the float range (a log-variance of
−1500 whitening Σ₁) keeps its fast value, and its spectrum reports the limit ε = +inf.

Cost O(d³) and O(d²) memory per refined element, for d ≤ DENSE_EXACT_MAX_DIM; above, the fast
value stands and :meth:`accuracy_note` says so (a warning at run time).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from gaussdiv.numerics.error_free import product_residual
from gaussdiv.numerics.residual import solve_triangular_refined
from gaussdiv.relations.base import (
    PairRelation,
    PairTerms,
    Spectrum,
    balanced,
    spectrum_excess,
    terms_from,
)
from gaussdiv.relations.registry import register
from gaussdiv.structures import (
    Covariance,
    DiagonalCovariance,
    Factored,
    FullCovariance,
    FullPrecision,
    KroneckerCovariance,
    LowRankCovariance,
)

#: Largest d for which a cancelling pair is re-evaluated densely (O(d³), O(d²) memory).
DENSE_EXACT_MAX_DIM = 2048


@register(Covariance, Covariance)
class DenseRelation(PairRelation):
    def terms(self, p: Covariance, q: Covariance) -> PairTerms:
        ops = p.ops
        dense = isinstance(p, Factored) or isinstance(q, Factored)
        if dense and not isinstance(p, DiagonalCovariance) \
                and not isinstance(q, DiagonalCovariance):
            trace, logdet_ratio = full_terms(p.to_full(), q.to_full())
            return terms_from(trace, logdet_ratio, p.dim, ops)
        if dense:
            if isinstance(p, DiagonalCovariance):
                # Whitening diag(√v₁) by Σ₂'s factor keeps its backward-error correction.
                trace = full_terms(p.to_full(), q.to_full())[0]
                logdet_ratio, rounding = diagonal_log_ratio(p, q)
                logdet_ratio = -logdet_ratio
            else:
                trace = structured_trace(p, q)
                logdet_ratio, rounding = diagonal_log_ratio(q, p)
            terms = terms_from(trace, logdet_ratio, p.dim, ops)
            return terms._replace(magnitude=terms.magnitude + rounding)
        trace = structured_trace(p, q)
        logdet_q, logdet_p = q.logdet(), p.logdet()
        terms = terms_from(trace, logdet_q - logdet_p, p.dim, ops)
        # A difference of two log-determinants rounds with their size, not the result's.
        return terms._replace(magnitude=terms.magnitude + ops.xp.abs(logdet_q)
                              + ops.xp.abs(logdet_p))

    def logdet_ratio(self, p: Covariance, q: Covariance) -> Any:
        if isinstance(p, Factored) and isinstance(q, Factored) and type(p) is type(q) \
                and p.backward_error is None and q.backward_error is None:
            # 2 Σ ln(L₂,ᵢᵢ/L₁,ᵢᵢ) from the factors (ratios before logs), no trace needed.
            ops = p.ops
            ratio = 2 * ops.sum(ops.xp.log(ops.diagonal(q.factor) / ops.diagonal(p.factor)), -1)
            return ratio if isinstance(p, FullCovariance) else -ratio
        return self.terms(p, q).logdet_ratio

    def spectrum(self, p: Covariance, q: Covariance) -> Spectrum | None:
        return dense_spectrum(p, q) if self.has_spectrum(p, q) else None

    def exact_excess(self, p: Covariance, q: Covariance, fast: Any) -> Any:
        return dense_exact_excess(p, q, fast) if self.has_spectrum(p, q) else fast

    def has_spectrum(self, p: Covariance, q: Covariance) -> bool:
        return p.dim <= DENSE_EXACT_MAX_DIM

    def accuracy_note(self, p: Covariance, q: Covariance) -> str | None:
        if p.dim <= DENSE_EXACT_MAX_DIM:
            return None
        return (f"{type(p).__name__} ‖ {type(q).__name__} at d = {p.dim} > "
                f"{DENSE_EXACT_MAX_DIM}: no structured exact route for this pair, so the fast "
                "sum stands where it cancels; its absolute error is a few u·(tr(Σ₂⁻¹Σ₁) + d + "
                "|ln|Σ₂|/|Σ₁||), which can exceed the KL itself when P ≈ Q")


def full_terms(p: Factored, q: Factored) -> tuple[Any, Any]:
    """tr(Σ₂⁻¹Σ₁) and ln|Σ₂|/|Σ₁| from two full structures' factors."""
    if p.dtype != q.dtype:  # a float32 with a float64 side: both in float64 (torch's matmul
        ops = p.ops         # does not promote)
        wide = p if p.dtype.itemsize > q.dtype.itemsize else q
        p, q = (s if s is wide else s.map_arrays(lambda a, _: ops.cast_like(a, wide.factor))
                for s in (p, q))
    p_prec, q_prec = isinstance(p, FullPrecision), isinstance(q, FullPrecision)
    if p_prec == q_prec:
        # Both on one side: tr(B⁻¹A), ln|B|/|A| for (A, B) = (Σ₁, Σ₂) or (Λ₂, Λ₁).
        return factor_terms(p, q) if not p_prec else factor_terms(q, p)
    return cross_side_terms(p, q)


def factor_terms(first: Factored, ref: Factored) -> tuple[Any, Any]:
    """tr(B⁻¹A) and ln|B|/|A| for A = first's matrix and B = ref's.

    With C = L_B⁻¹L_A and the factors' backward errors F_A, F_B, to first order
    tr(B⁻¹A) = ‖C‖² + tr(Cᵀ C F_A) − tr(Cᵀ F_B C) and
    ln|B|/|A| = 2 Σ ln(L_B,ᵢᵢ / L_A,ᵢᵢ) + tr F_B − tr F_A.
    """
    ops = first.ops
    fused = ops.whitened_trace(ref.factor, first.factor)
    if fused is None:
        return _corrected_factor_terms(first, ref)
    trace, logdet_ratio = fused
    shape = tuple(trace.shape)
    masks = [np.broadcast_to(side.refinement_mask, shape) for side in (first, ref)
             if side.matrix is not None and side.refinement_mask is not None]
    if not masks:
        return fused
    # The fused kernel has no backward-error corrections: redo just the elements that need them.
    rows = np.flatnonzero(np.logical_or.reduce(masks))
    some_trace, some_logdet_ratio = _corrected_factor_terms(first.take_flat(shape, rows),
                                                            ref.take_flat(shape, rows))
    return (ops.scatter(trace.reshape(-1), rows, some_trace).reshape(shape),
            ops.scatter(logdet_ratio.reshape(-1), rows, some_logdet_ratio).reshape(shape))


def _corrected_factor_terms(first: Factored, ref: Factored) -> tuple[Any, Any]:
    """:func:`factor_terms` through C = L_B⁻¹L_A, with the backward-error corrections."""
    ops = first.ops
    whitened = ops.solve_triangular(ref.factor, first.factor, lower=True)  # C = L_B⁻¹ L_A
    trace = ops.sum(whitened * whitened, (-2, -1))
    logdet_ratio = 2 * ops.sum(ops.xp.log(ops.diagonal(ref.factor) / ops.diagonal(first.factor)),
                               -1)
    if first.backward_error is not None:
        f_a = first.backward_error
        trace = trace + ops.sum(whitened * (whitened @ f_a), (-2, -1))
        logdet_ratio = logdet_ratio - ops.sum(ops.diagonal(f_a), -1)
    if ref.backward_error is not None:
        f_b = ref.backward_error
        trace = trace - ops.sum(whitened * (f_b @ whitened), (-2, -1))
        logdet_ratio = logdet_ratio + ops.sum(ops.diagonal(f_b), -1)
    return trace, logdet_ratio


def cross_side_terms(p: Factored, q: Factored) -> tuple[Any, Any]:
    """Terms when one side is held as Σ (factor L) and the other as Λ (factor R).

    Σ₂⁻¹Σ₁ is similar to GᵀG with G = R₂ᵀL₁ (Σ₁ given, Λ₂ given: a product) or
    G = L₂⁻¹R₁⁻ᵀ (Λ₁ given, Σ₂ given: two triangular operations), so tr = ‖G‖²_F; corrected to
    first order for both factors' backward errors.
    """
    ops = p.ops
    log_diag = ops.sum(ops.xp.log(ops.diagonal(p.factor) * ops.diagonal(q.factor)), -1)
    if isinstance(q, FullPrecision):  # G = R₂ᵀ L₁; Σ₁ = L(I+F₁)Lᵀ, Λ₂ = R(I+F₂)Rᵀ
        g = ops.matrix_transpose(q.factor) @ p.factor
        sign, logdet_ratio = 1, -2 * log_diag
    else:  # G = L₂⁻¹R₁⁻ᵀ; Λ₁ = R(I+F₁)Rᵀ, Σ₂ = L(I+F₂)Lᵀ enter inverted
        g = ops.solve_triangular(q.factor, ops.matrix_transpose(p.inverse_factor()), lower=True)
        sign, logdet_ratio = -1, 2 * log_diag
    trace = ops.sum(g * g, (-2, -1))
    if p.backward_error is not None:
        trace = trace + sign * ops.sum(g * (g @ p.backward_error), (-2, -1))
        logdet_ratio = logdet_ratio - sign * ops.sum(ops.diagonal(p.backward_error), -1)
    if q.backward_error is not None:
        trace = trace + sign * ops.sum(g * (q.backward_error @ g), (-2, -1))
        logdet_ratio = logdet_ratio - sign * ops.sum(ops.diagonal(q.backward_error), -1)
    return trace, logdet_ratio


def structured_trace(p: Covariance, q: Covariance) -> Any:
    """tr(Σ₂⁻¹Σ₁) for two non-dense structures, never d×d.

    A diagonal Σ₂ needs only diag(Σ₁); a diagonal Σ₁ only diag(Σ₂⁻¹). A low-rank Σ₂ needs
    diag(Σ₁) and Σ₁Y for its k columns Y (Woodbury); otherwise
    Σ₁ = WWᵀ + diag(v) (W absent for a diagonal Σ₁) needs diag(Σ₂⁻¹) and k Mahalanobis
    products: tr(Σ₂⁻¹Σ₁) = Σᵢ (Σ₂⁻¹)ᵢᵢ vᵢ + Σⱼ wⱼᵀ Σ₂⁻¹ wⱼ. A Kronecker pair of other sizes
    uses Σ₁'s diagonal against diag(Σ₂⁻¹) only when Σ₁ is diagonal.
    """
    ops = q.ops
    if isinstance(q, LowRankCovariance):
        return q.trace_solve(p)
    if isinstance(p, LowRankCovariance):
        total = ops.sum(q.inverse_diagonal() * p.var, -1)
        return total + ops.sum(q.mahalanobis(ops.xp.moveaxis(p.factor, -1, 0)), 0)
    if isinstance(q, DiagonalCovariance) and q.kind != "logvar":
        # diag(Σ₁)ᵢ / vᵢ as quotients: 1/v overflows for subnormal v (v = 1e-313) where the
        # ratio is ≈ 1; a standard deviation divides twice (s² may be subnormal).
        param = q.full(q.param)
        x = p.diagonal() / param
        return ops.sum(x if q.kind == "var" else x / param, -1)
    if isinstance(p, DiagonalCovariance) or isinstance(q, DiagonalCovariance):
        return ops.sum(q.inverse_diagonal() * p.diagonal(), -1)
    # Two Kronecker structures of different factor sizes: Σ₂⁻¹Σ₁ column by column would be
    # d×d work; their full twins cost the same and are exact.
    trace, _ = factor_terms(p.to_full(), q.to_full())
    return trace


def diagonal_log_ratio(diag: DiagonalCovariance, full: Factored) -> tuple[Any, Any]:
    """ln|Σ_diag|/|Σ_full| for a diagonal and a full structure, and its rounding magnitude
    beyond the d·u of :func:`terms_from`.

    Σᵢ 2 ln(√vᵢ / Lᵢᵢ) for a covariance's factor L (2 ln(√vᵢ Rᵢᵢ) for a precision's R), minus
    (plus) the trace of its backward error: ratios before logarithms, so a scale the two sides
    share cancels exactly (1e280 I against a covariance of 1e280's: the difference of their
    log-determinants, each ≈ 1934, would round to ≈ 4e-13). A coordinate whose ratio under-
    or overflows (log-variances beyond the float range) is a difference of logarithms,
    ½ ln vᵢ ∓ ln Lᵢᵢ, and its size is returned as the magnitude (0 where there is none; one
    host read decides).
    """
    ops = diag.ops
    xp = ops.xp
    pivots = ops.diagonal(full.factor)
    covariance = isinstance(full, FullCovariance)
    std = diag.std()  # (…, d) or (…, 1): broadcasts against the pivots
    logs = xp.log(std / pivots if covariance else std * pivots)  # callers ignore fp warnings
    value = 2 * ops.sum(logs, -1)
    rounding = 0.0
    if ops.is_traced(value) or not ops.all_finite(value):
        with np.errstate(all="ignore"):
            log_pivots = xp.log(pivots) if covariance else -xp.log(pivots)
            half_log_var = 0.5 * diag.full(diag.log_var())
            beyond = ~xp.isfinite(logs)
            logs = xp.where(beyond, half_log_var - log_pivots, logs)
            size = xp.abs(half_log_var) + xp.abs(log_pivots)
        value = 2 * ops.sum(logs, -1)
        rounding = 2 * ops.sum(xp.where(beyond, size, 0.0 * size), -1)
    f = full.backward_error
    if f is not None:
        trace_f = ops.sum(ops.diagonal(f), -1)
        value = value - trace_f if covariance else value + trace_f
    return value, rounding


def dense_spectrum(p: Covariance, q: Covariance) -> Spectrum:
    """The exact spectrum for a flat batch (n,), from the whitened difference (see module doc);
    ε = +inf for an element whose eigenvalues lie beyond the float range (see
    :func:`_beyond_range`). For the :func:`_balanced` pair."""
    p, q = _balanced(p, q)
    beyond = _beyond_range(p, q)
    if beyond is None:
        return _dense_spectrum(p, q)
    ops = p.ops
    n = (len(beyond),)
    inf = np.inf + ops.xp.zeros_like(q.diagonal())
    rows = ops.index_array(np.flatnonzero(~beyond), like=inf)
    if not len(rows):
        return Spectrum(inf)
    some = _dense_spectrum(p.take_flat(n, rows), q.take_flat(n, rows))
    log_ratio = None if some.log_ratio is None else ops.scatter(inf, rows, some.log_ratio)
    return Spectrum(ops.scatter(inf, rows, some.eps), log_ratio)


def _dense_spectrum(p: Covariance, q: Covariance) -> Spectrum:
    """:func:`dense_spectrum` for elements whose reference whitens.

    The eigenvalues e of a whitened E carry an absolute error of a few u·max(1, ‖E‖₂), so an
    eigenvalue 1 + e below d·u·max(1, |e|) of Σ₂⁻¹Σ₁ (of Σ₁⁻¹Σ₂ for a precision Λ₁) is not
    resolved at all: it is reported as its limit, λ = 0 (ε = −1), or λ = +inf for the flipped
    route; so is an element whose E is not finite, ε = +inf (the whitened Σ₁ overflowing;
    λ = 0 for the flipped route, where it is Σ₂ that overflows).
    """
    ops = p.ops
    xp = ops.xp
    whitened = dense_whitened(p, q)
    if whitened is not None:
        whitened, finite = _finite_rows(ops, whitened)
        eps = ops.eigvalsh(whitened)
        eps = xp.where(_resolved(ops, eps), eps, -1.0 + 0.0 * eps)
        return Spectrum(_where_rows(ops, finite, eps, np.inf))
    # A precision Λ₁ against a covariance Σ₂: the eigenvalues of Σ₁⁻¹Σ₂ are 1/λ, so
    # ε = 1/(1 + ε') − 1 with ln(1 + ε) = −ln(1 + ε').
    flipped, finite = _finite_rows(ops, precision_whitened(q.dense_dd(), p))
    flipped = ops.eigvalsh(flipped)
    flipped = xp.where(_resolved(ops, flipped), flipped, -1.0 + 0.0 * flipped)
    with np.errstate(divide="ignore", invalid="ignore"):
        eps, log_ratio = -flipped / (1 + flipped), -xp.log1p(flipped)
    # Σ₂ beyond the float range: the eigenvalues of Σ₁⁻¹Σ₂ overflow, λ = 0
    return Spectrum(_where_rows(ops, finite, eps, -1.0),
                    _where_rows(ops, finite, log_ratio, -np.inf))


def _resolved(ops: Any, e: Any) -> Any:
    """Where 1 + e exceeds the absolute error d·u·max(1, maxᵢ |eᵢ|) of eigenvalues e (n, d)."""
    size = ops.max_abs(e, -1)
    return 1 + e > e.shape[-1] * float(np.finfo(ops.numpy_dtype(e)).eps) * (1 + size)


def _beyond_range(p: Covariance, q: Covariance) -> np.ndarray | None:
    """Host mask (n,) of the elements whose whitening factor, Σ₂'s (of a diagonal or Kronecker
    Σ₂: full factors are validated, a low-rank one is refused where singular, and a
    precision Λ₁ whitens by its own), has a diagonal entry 0 or ±inf: a standard deviation
    e^(ℓ/2) beyond the float range (log-variances below −1490 or above 1420), or a Kronecker
    factor product that under- or overflows. Then Σ₂⁻¹Σ₁ has an eigenvalue beyond the float
    range too (λ ≥ Σ₁,ᵢᵢ/Σ₂,ᵢᵢ), and nothing float64 can hold whitens Σ₁. None where there
    are none, and under tracing (no host read; JAX's solves do not raise, and the non-finite E
    they give is set aside by :func:`_finite_rows`)."""
    if isinstance(p, FullPrecision):
        return None
    ops = q.ops
    if isinstance(q, DiagonalCovariance):
        pivots = q.std()
    elif isinstance(q, KroneckerCovariance):
        pivots = q.outer(ops.diagonal(q.a.factor), ops.diagonal(q.b.factor))
    else:
        return None
    if ops.is_traced(pivots):
        return None
    with np.errstate(all="ignore"):
        bad = ~ops.xp.all((pivots > 0) & ops.xp.isfinite(pivots), axis=-1)
    mask = np.asarray(ops.to_numpy(bad), dtype=bool).reshape(-1)
    return mask if mask.any() else None


def _finite_rows(ops: Any, e: Any) -> tuple[Any, Any]:
    """(E with its non-finite elements (n, d, d) replaced by 0, where E is finite (n,); None
    when every element is, which one host read decides): an element beyond the float range
    (Σ₁ or Σ₂⁻¹ overflowing) is never decomposed."""
    xp = ops.xp
    if not ops.is_traced(e) and ops.all_finite(e):
        return e, None
    finite = xp.all(xp.isfinite(e), axis=(-2, -1))
    return xp.where(finite[..., None, None], e, xp.zeros_like(e)), finite


def _where_rows(ops: Any, keep: Any, values: Any, other: float) -> Any:
    """values (n, d) where keep (n,) (everywhere for None), else ``other`` in every entry."""
    return values if keep is None else ops.xp.where(keep[..., None], values, other + 0.0 * values)


def dense_exact_excess(p: Covariance, q: Covariance, fast: Any) -> Any:
    """Σ g(εᵢ) for a flat batch: from the trace series of E where the backend has the fused
    kernels and ‖E‖_F is small (P ≈ Q), from E's eigenvalues elsewhere; ``fast`` for the
    elements beyond the float range (:func:`_beyond_range`, or E not finite)."""
    ops = p.ops
    beyond = _beyond_range(p, q)
    if beyond is not None:
        n = (len(beyond),)
        rows = ops.index_array(np.flatnonzero(~beyond), like=fast)
        if not len(rows):
            return fast
        return ops.scatter(fast, rows, dense_exact_excess(p.take_flat(n, rows),
                                                          q.take_flat(n, rows), fast[rows]))
    fused = _fused_difference_excess(p, q)
    if fused is None:
        return _whitened_excess(p, q, fast)
    values, done = fused
    if done.all():
        return values
    rows = ops.index_array(np.flatnonzero(~done), like=values)
    n = (int(values.shape[0]),)
    rest = _whitened_excess(p.take_flat(n, rows), q.take_flat(n, rows), fast[rows])
    return ops.scatter(values, rows, rest)


def _fused_difference_excess(p: Covariance, q: Covariance) -> tuple[Any, np.ndarray] | None:
    """The trace series of E straight from the two user-given matrices of one side (and the
    reference's factor) in one kernel, with a host mask of the elements it settled: ‖E‖_F
    small and no backward-error correction due for the reference. None where it does not
    apply (other structures, no kernel)."""
    p_prec, q_prec = isinstance(p, FullPrecision), isinstance(q, FullPrecision)
    if p_prec != q_prec:
        return None
    first, ref = (q, p) if p_prec else (p, q)
    a, b = _given_matrix(first), _given_matrix(ref)
    if a is None or b is None:
        return None
    fused = p.ops.difference_excess(a, b, ref.factor)
    if fused is None:
        return None
    values, done = fused
    if ref.refinement_mask is not None:
        done = done & ~np.broadcast_to(ref.refinement_mask, done.shape)
    return values, done


def _whitened_excess(p: Covariance, q: Covariance, fast: Any) -> Any:
    """Σ g(εᵢ) from E = :func:`dense_whitened` (trace series where small, else eigenvalues), for
    the :func:`_balanced` pair."""
    p, q = _balanced(p, q)
    ops = p.ops
    whitened = dense_whitened(p, q)
    if whitened is None:
        return spectrum_excess(ops, _dense_spectrum(p, q), fast)
    whitened, finite = _finite_rows(ops, whitened)
    series = ops.trace_series_excess(whitened)
    if series is None:
        values = spectrum_excess(ops, Spectrum(ops.eigvalsh(whitened)), fast)
    else:
        values, ok = series
        if not ok.all():
            rows = ops.index_array(np.flatnonzero(~ok), like=values)
            rest = spectrum_excess(ops, Spectrum(ops.eigvalsh(whitened[rows])), fast[rows])
            values = ops.scatter(values, rows, rest)
    return values if finite is None else ops.xp.where(finite, values, fast)


def dense_whitened(p: Covariance, q: Covariance) -> Any:
    """Symmetric E (n, d, d) whose eigenvalues are the ε of Σ₂⁻¹Σ₁ = I + (similar to) E, formed
    from differences of the inputs; None for a precision Λ₁ against a covariance Σ₂ (whose
    whitened matrix has the eigenvalues of Σ₁⁻¹Σ₂ instead)."""
    p_prec, q_prec = isinstance(p, FullPrecision), isinstance(q, FullPrecision)
    if p_prec and q_prec:
        return matrix_difference_whitened(q, p)
    if q_prec:
        return precision_whitened(p.dense_dd(), q)
    if p_prec:
        return None
    return matrix_difference_whitened(p, q)


def matrix_difference_whitened(first: Covariance, ref: Covariance) -> Any:
    """E = L_B⁻¹(A − B)L_B⁻ᵀ, symmetrised, for A = first's matrix and B = ref's (same side),
    (n, d, d). Two user-given factors use F = L_B⁻¹(L_A − L_B): E = F + Fᵀ + FFᵀ; otherwise
    A − B comes from the double-double matrices."""
    ops = ref.ops
    ref_full = ref.to_full()
    solve = _solver(ref_full)
    if isinstance(first, Factored) and isinstance(ref, Factored) and first.factor_given \
            and ref.factor_given:
        f = solve(ref.factor, first.factor - ref.factor, lower=True)
        f_t = ops.matrix_transpose(f)
        return _symmetric(ops, f + f_t + f @ f_t)
    if _given_matrix(first) is not None and _given_matrix(ref) is not None:
        diff = _given_matrix(first) - _given_matrix(ref)  # both exact: one rounding
    else:
        (a_hi, a_lo), (b_hi, b_lo) = _side_dd(first), _side_dd(ref)
        diff = (a_hi - b_hi) + (a_lo - b_lo)
    half = solve(ref_full.factor, diff, lower=True)  # L_B⁻¹ D
    e = solve(ref_full.factor, ops.matrix_transpose(half), lower=True)
    if ref_full.backward_error is not None:
        shift = ref_full.backward_error @ e
        e = e - 0.5 * (shift + ops.matrix_transpose(shift))
    return _symmetric(ops, e)


def precision_whitened(sigma_dd: tuple[Any, Any], ref: FullPrecision) -> Any:
    """E = W Σ Wᵀ − I for Σ = hi + lo and the whitening W of ref's precision Λ = R(I + F)Rᵀ
    (W = (I + F)^½ Rᵀ), formed with error-free products: ≈ u·|E| + u²κ accurate."""
    ops = ref.ops
    s_hi, s_lo = sigma_dd
    r = ref.factor
    r_t = ops.matrix_transpose(r)
    y_hi = s_hi @ r
    y_residual = product_residual(y_hi, s_hi, r, ops.xp)
    y_lo = s_lo @ r if y_residual is None else s_lo @ r - y_residual
    eye = ops.eye(ref.dim, ref.dtype, like=r)
    t_residual = product_residual(eye, r_t, y_hi, ops.xp)  # I − Rᵀ Y_hi
    e = (r_t @ y_hi - eye if t_residual is None else -t_residual) + r_t @ y_lo
    f = ref.whitened_residual()  # ≈ κu, added to an E that may be ≈ δ: needed at any κ
    if f is not None:
        e = e + f + 0.5 * (f @ e + e @ f)
    return _symmetric(ops, e)


def _balanced(p: Covariance, q: Covariance) -> tuple[Covariance, Covariance]:
    """The pair at unit scale (:func:`balanced`) where E is formed from double-double matrices,
    whose residuals under- and overflow at the ends of the float range (a product's error term
    of a Σ near 1e-300 is subnormal); as it is where E comes from exact differences of the
    inputs (two given matrices, or two given factors, of one side), which are scale-free."""
    same_side = isinstance(p, FullPrecision) == isinstance(q, FullPrecision)
    if same_side and isinstance(p, Factored) and isinstance(q, Factored) and \
            (p.matrix is None) == (q.matrix is None):
        return p, q
    return balanced(p, q)[:2]


def _given_matrix(cov: Covariance) -> Any:
    """The user's own matrix of a full structure (its side's: Λ for a precision), else None."""
    return cov.matrix if isinstance(cov, Factored) else None


def _side_dd(cov: Covariance) -> tuple[Any, Any]:
    """The matrix of cov's own side (Λ for a precision) as hi + lo."""
    return cov.side_matrix_dd() if isinstance(cov, Factored) else cov.dense_dd()


def _solver(ref: Factored) -> Any:
    if ref.needs_refinement:
        return lambda t, b, lower: solve_triangular_refined(ref.ops, t, b, lower)
    return ref.ops.solve_triangular


def _symmetric(ops: Any, e: Any) -> Any:
    return 0.5 * (e + ops.matrix_transpose(e))

"""What a pair relation computes: the covariance part of the divergences for Σ₁ (of P) and
Σ₂ (of Q), fast, plus a cancellation-free route for the elements where the fast one cancels.

Everything here is in terms of the eigenvalues λᵢ = 1 + εᵢ of Σ₂⁻¹Σ₁:

    trace = tr(Σ₂⁻¹Σ₁) = Σ λᵢ,   logdet_ratio = ln|Σ₂|/|Σ₁| = −Σ ln λᵢ,
    excess = trace − d + logdet_ratio = Σᵢ g(εᵢ),   g(ε) = ε − ln(1 + ε) ≥ 0.

The fast excess is a sum whose rounding error is a few u × ``magnitude``; when P ≈ Q it loses
every digit, and :mod:`gaussdiv.execution.refine` asks the relation's :meth:`exact_excess` for
just the batch elements that need it.
"""

from __future__ import annotations

import dataclasses
import math
from abc import ABC, abstractmethod
from typing import Any, NamedTuple

import numpy as np

from gaussdiv.backends import broadcast_shapes
from gaussdiv.backends.base import CHOLESKY_NOT_DEFINITE, CHOLESKY_NOT_FINITE, CHOLESKY_OK
from gaussdiv.numerics.error_free import _ldexp
from gaussdiv.numerics.series import excess_log1p
from gaussdiv.structures import (
    Covariance,
    DiagonalCovariance,
    Factored,
    FullCovariance,
    KroneckerCovariance,
    LowRankCovariance,
)

#: The exact routes work on the eigenvalues λ = 1 + ε; for λ below this the fast sum is already
#: accurate (the excess is then ≥ λ − 1 − ln λ ≈ 0.19) and is kept.
SPECTRAL_MIN_EIGENVALUE = 0.5

#: :func:`balanced` moves a pair to unit scale where the geometric mean of its variances lies
#: beyond 4^±BALANCE_MIN_EXPONENT ≈ 4e9^±1; nearer unit scale nothing is rescaled.
BALANCE_MIN_EXPONENT = 16


class PairTerms(NamedTuple):
    """Fast covariance terms for Σ₁ ‖ Σ₂, each of shape broadcast(batch₁, batch₂)."""

    trace: Any
    logdet_ratio: Any
    excess: Any
    magnitude: Any


class Spectrum(NamedTuple):
    """The eigenvalue offsets ε (n, d) of Σ₂^-½Σ₁Σ₂^-½ − I for a flat batch, formed without
    cancellation, and ln(1 + ε) where it is known better than log1p(ε) can give it (else None):
    what every divergence's exact route is a function of. An eigenvalue beyond the float range,
    or beyond what the route resolves, is reported as its limit: ε = +inf (λ = +inf) or
    ε = −1 (λ = 0), where a consumer keeps its fast value (:func:`spectrum_excess`)."""

    eps: Any
    log_ratio: Any = None


class PairRelation(ABC):
    """What two covariance structures know about each other."""

    @abstractmethod
    def terms(self, p: Covariance, q: Covariance) -> PairTerms:
        """The fast terms, for the whole broadcast batch."""

    def exact_excess(self, p: Covariance, q: Covariance, fast: Any) -> Any:
        """Σ g(εᵢ) without cancellation, for structures flattened to one batch axis (n,); by
        default from :meth:`spectrum`.

        ``fast`` (n,) is the fast excess there, returned where this route cannot do better.
        """
        spectrum = self.spectrum(p, q)
        return fast if spectrum is None else spectrum_excess(p.ops, spectrum, fast)

    def logdet_ratio(self, p: Covariance, q: Covariance) -> Any:
        """ln|Σ₂|/|Σ₁| alone, as :meth:`terms` has it (a relation may skip the trace)."""
        return self.terms(p, q).logdet_ratio

    def spectrum(self, p: Covariance, q: Covariance) -> Spectrum | None:
        """The exact spectrum for a flat batch, or None where this pair has no exact route."""
        return None

    def has_spectrum(self, p: Covariance, q: Covariance) -> bool:
        """Whether :meth:`spectrum` gives one for structures like these (shapes only)."""
        return False

    def mix(self, p: Covariance, q: Covariance, alpha: float) -> tuple[Covariance, Any]:
        """Σ_α = αΣ₂ + (1−α)Σ₁ as a structure, and a boolean (*batch) of where it is positive
        definite (None: everywhere). Non-definite elements hold I instead. Dense by default."""
        return dense_mix(p, q, alpha)

    def accuracy_note(self, p: Covariance, q: Covariance) -> str | None:
        """None when :meth:`exact_excess` is exact for this pair; else what holds instead."""
        return None


def terms_from(trace: Any, logdet_ratio: Any, d: int, ops: Any) -> PairTerms:
    """PairTerms whose fast excess is the plain sum (trace − d) + logdet_ratio."""
    excess = (trace - d) + logdet_ratio
    return PairTerms(trace, logdet_ratio, excess, trace + d + ops.xp.abs(logdet_ratio))


def spectrum_excess(ops: Any, spectrum: Spectrum, fast: Any) -> Any:
    """Σᵢ g(εᵢ) over the spectrum's last axis; ``fast`` where its smallest eigenvalue is below
    :data:`SPECTRAL_MIN_EIGENVALUE` (the fast sum is accurate there) or its largest is a limit
    (+inf: beyond what the route resolves, where the fast sum does not cancel)."""
    xp = ops.xp
    eps = spectrum.eps
    trusted = ((1 + ops.amin(eps, (-1,), keepdims=False) >= SPECTRAL_MIN_EIGENVALUE)
               & (ops.amin(-eps, (-1,), keepdims=False) > -np.inf))
    return xp.where(trusted, ops.sum(excess_log1p(eps, xp, spectrum.log_ratio), -1), fast)


def balanced(p: Covariance, q: Covariance) -> tuple[Covariance, Covariance, Any]:
    """(p', q', k): the pair in the units x' = 2⁻ᵏx, Σ' = 4⁻ᵏΣ (precisions Λ' = 4ᵏΛ), and the
    integer-valued exponents k (broadcast batch; None where nothing was rescaled).

    Every divergence here is invariant under a shared change of units x → x/s (Σ → Σ/s²,
    means → μ/s); for s = 2ᵏ that change is exact in floating point (each entry keeps its
    significand), so it costs no accuracy and moves the pair away from the ends of the float
    range, where dense matrices of a pair overflow (αΣ₂ + (1−α)Σ₁ for Σ near 1e308), the
    double-double residuals of Σ₁ − Σ₂ fall into the subnormals (Σ below ≈ 1e-292) and the
    log-determinants of the fast sums grow with the scale (|ln|Σ|| ≈ 1934 for Σ = 1e280 I₃,
    rounding to ≈ 4e-13 however close P and Q are). Per batch element
    k = round((ln|Σ₁| + ln|Σ₂|) / (2d ln 4)), the geometric mean of both sides' variances in
    powers of 4, where |k| > BALANCE_MIN_EXPONENT, else 0. O(batch) and one host read when
    nothing needs rescaling (then p and q come back as they are); O(size of the arrays)
    otherwise. A side given by log-variances is never rescaled (ℓ − k ln 4 would round:
    log-variance relations work in log space already); nor are traced values (no host read).
    """
    if _log_variances(p) or _log_variances(q):
        return p, q, None
    ops = p.ops
    centre = ops.stop_gradient(p.logdet() + q.logdet())
    if ops.is_traced(centre):
        return p, q, None
    k = np.round(ops.to_numpy(centre) / (2 * p.dim * math.log(4.0)))
    k = np.where(np.isfinite(k) & (np.abs(k) > BALANCE_MIN_EXPONENT), k, 0.0)
    if not k.any():
        return p, q, None
    k = ops.asarray(k, p.dtype, like=p.device_array)
    return rescaled(p, k), rescaled(q, k), k


def _log_variances(cov: Covariance) -> bool:
    return isinstance(cov, DiagonalCovariance) and cov.kind == "logvar"


def rescaled(cov: Covariance, k: Any) -> Covariance:
    """cov in the units x' = 2⁻ᵏx (Σ' = 4⁻ᵏΣ) for integer-valued k (*batch), exactly: powers
    of two scale every array (factors by 2⁻ᵏ, matrices and variances by 4⁻ᵏ, precisions by
    4ᵏ); a low-rank capacitance I + WᵀD⁻¹W and the cached results of a full structure
    (condition bound, backward error) are scale-free and carried over. Log-variances cannot
    be rescaled exactly and are refused (see :func:`balanced`)."""
    xp = cov.ops.xp
    shape = broadcast_shapes(cov.batch_shape, tuple(k.shape))
    cov = cov.broadcast_batch(shape)
    k = xp.broadcast_to(k, shape)
    if isinstance(cov, KroneckerCovariance):  # (A/4ᵏ) ⊗ B
        return dataclasses.replace(cov, a=rescaled(cov.a, k))
    if isinstance(cov, DiagonalCovariance):
        if _log_variances(cov):
            raise TypeError("log-variances cannot be rescaled exactly")
        step = 2 if cov.kind == "var" else 1
        return dataclasses.replace(cov, param=_ldexp(cov.param, -step * k[..., None], xp))
    if isinstance(cov, LowRankCovariance):
        return dataclasses.replace(cov, factor=_ldexp(cov.factor, -k[..., None, None], xp),
                                   var=_ldexp(cov.var, -2 * k[..., None], xp))
    assert isinstance(cov, Factored), type(cov)
    e = (k if isinstance(cov, FullCovariance) else -k)[..., None, None]
    out = dataclasses.replace(
        cov, factor=_ldexp(cov.factor, -e, xp),
        matrix=None if cov.matrix is None else _ldexp(cov.matrix, -2 * e, xp))
    for name in type(cov).cached_arrays:  # scale-free: carried over
        if name in cov.__dict__:
            out.__dict__[name] = cov.__dict__[name]
    return out


def dense_mix(p: Covariance, q: Covariance, alpha: float) -> tuple[FullCovariance, Any]:
    """αΣ₂ + (1−α)Σ₁ densely, factored; elements that are not positive definite hold I.

    Where that fails for some element, each is judged (:func:`factored`); where it overflows,
    the mix is formed again for the :func:`balanced` pair and scaled back exactly (the factor
    by 2ᵏ), and where a side's dense matrix overflows even so (L Lᵀ of a factor with entries
    near 1e300), from the sides' square roots (:func:`factor_mix`), never forming Σ.
    """
    ops = p.ops
    first, second = p.dense(), q.dense()  # formed once (d×d for structured sides)
    one_pass = _mixed_in_one_pass(ops, first, second, alpha)
    if one_pass is not None:
        return one_pass
    with np.errstate(over="ignore", invalid="ignore"):  # an overflow is handled below
        mixed = alpha * second + (1 - alpha) * first  # batches broadcast (not in place)
    fused = None if ops.is_traced(mixed) else ops.checked_cholesky(mixed)
    if fused is not None and np.all((fused[1] == CHOLESKY_OK)
                                    | (fused[1] == CHOLESKY_NOT_DEFINITE)):
        # Per element, in one pass (LAPACK's batched Cholesky fails for the whole batch).
        factor, status, bound = fused
        if not status.any():
            out = FullCovariance(mixed, factor)
            out.__dict__["_condition_bound"] = bound  # computed on the way, as at construction
            return out, None
        definite = status == CHOLESKY_OK
        eye = ops.eye(p.dim, p.dtype, like=mixed)
        keep = definite[..., None, None]
        return (FullCovariance(ops.xp.where(keep, mixed, eye), ops.xp.where(keep, factor, eye)),
                definite)
    if ops.is_traced(mixed):
        return factored(ops, mixed)
    if fused is None:
        try:
            factor = ops.cholesky(mixed)
        except ops.LinAlgError:  # NumPy and torch fail for the whole batch
            factor = None
        if factor is not None and ops.all_finite(factor):
            return FullCovariance(mixed, factor), None
    if ops.all_finite(mixed):  # some element not definite: judge each
        return factored(ops, mixed, batched=False)
    p, q, k = balanced(p, q)
    if k is not None:
        with np.errstate(over="ignore", invalid="ignore"):
            mixed = alpha * q.dense() + (1 - alpha) * p.dense()
    if not ops.all_finite(mixed):
        out, definite = factor_mix(p, q, alpha)
    else:
        out, definite = factored(ops, mixed)
    return _unscaled(out, k), definite


def _mixed_in_one_pass(ops: Any, a: Any, b: Any,
                       alpha: float) -> tuple[FullCovariance, Any] | None:
    """:func:`dense_mix` of the dense Σ₁ = ``a`` and Σ₂ = ``b`` by the backend's compiled
    kernel (mix, checks and factor in one pass, no temporaries), where it has one and both
    have one shape; None where it does not apply or some element overflowed (the general route
    then handles it)."""
    if ops.is_traced(a) or ops.is_traced(b):
        return None
    fused = ops.mix_cholesky(a, b, alpha)
    if fused is None:
        return None
    mixed, factor, status, bound = fused
    if np.any(status == CHOLESKY_NOT_FINITE):
        return None
    out = FullCovariance(mixed, factor)
    out.__dict__["_condition_bound"] = bound  # computed on the way, as at construction
    return out, (status == CHOLESKY_OK) if status.any() else None


def factored(ops: Any, mixed: Any, batched: bool = True) -> tuple[FullCovariance, Any]:
    """Finite symmetric matrices (*batch, d, d) as full covariances, with a boolean (*batch) of
    the elements definite enough for a Cholesky factorisation in their precision (None:
    every element), which hold I instead of their matrix elsewhere.

    One batched factorisation (skipped with ``batched=False``: the caller's failed); where it
    fails (NumPy and torch fail for the whole batch), the elements are judged by the
    eigenvalues of the unit-diagonal D^-½MD^-½ (D = diag M): definite where
    λ_min > d·u·λ_max. Scale-free, like the factorisation's own success (diag(1e-150, 1e150)
    is fine), and never an eigendecomposition of a matrix whose entries span the float range;
    a non-positive diagonal is not definite. Under tracing, definite where the factor is
    finite.
    """
    xp = ops.xp
    factor = None
    if batched:
        try:
            factor = ops.cholesky(mixed)
        except ops.LinAlgError:
            factor = None
    if factor is not None and ops.is_traced(factor):
        definite = xp.all(xp.isfinite(factor), axis=(-2, -1))
        eye = ops.eye(int(mixed.shape[-1]), ops.numpy_dtype(mixed), like=mixed)
        mixed = xp.where(definite[..., None, None], mixed, eye)
        return FullCovariance(mixed, ops.cholesky(mixed)), definite
    if factor is not None and ops.all_finite(factor):
        return FullCovariance(mixed, factor), None
    dim = int(mixed.shape[-1])
    eye = ops.eye(dim, ops.numpy_dtype(mixed), like=mixed)
    with np.errstate(all="ignore"):
        diagonal = ops.diagonal(mixed)
        positive = ops.amin(diagonal, (-1,), keepdims=False) > 0
        unit = 1 / xp.sqrt(xp.where(positive[..., None], diagonal, 1.0 + 0.0 * diagonal))
        scaled = mixed * unit[..., :, None] * unit[..., None, :]  # (not u uᵀ: 1e162² overflows)
        usable = positive
        if ops.is_traced(scaled) or not ops.all_finite(scaled):
            # |Mᵢⱼ| ≫ √(MᵢᵢMⱼⱼ), overflowing the product: never definite
            usable = usable & xp.all(xp.isfinite(scaled), axis=(-2, -1))
        eig = ops.eigvalsh(xp.where(usable[..., None, None], scaled, eye))
    tiny = dim * float(np.finfo(ops.numpy_dtype(mixed)).eps)
    definite = usable & (eig[..., 0] > tiny * xp.abs(eig[..., -1]))
    mixed = xp.where(definite[..., None, None], mixed, eye)
    return FullCovariance(mixed, ops.cholesky(mixed)), definite


def factor_mix(p: Covariance, q: Covariance, alpha: float) -> tuple[FullCovariance, Any]:
    """:func:`dense_mix` from square roots Sᵢ (SᵢSᵢᵀ = Σᵢ, :func:`square_root`), never forming
    Σ: for pairs whose dense matrices overflow although their factors do not.

    0 < α < 1: Σ_α = S Sᵀ for S = [√α S₂, √(1−α) S₁], factored from that square root
    (:meth:`FullCovariance.from_square_root`: QR, backward stable column by column).
    α > 1: with L₂ the lower factor of Σ₂ from S₂ and B = L₂⁻¹S₁,
    Σ_α = L₂(αI − (α−1)BBᵀ)L₂ᵀ, positive definite exactly where the inner matrix is (then
    ‖B‖² < α/(α−1): no overflow where it matters), factored as L₂ times its factor.
    Returned as a given factor (nothing to correct for a backward error of Σ_α).
    """
    ops = p.ops
    xp, tp = ops.xp, ops.matrix_transpose
    roots = [square_root(c) for c in (p, q)]
    shape = broadcast_shapes(*(tuple(r.shape[:-2]) for r in roots))
    root_p, root_q = (xp.broadcast_to(r, (*shape, *r.shape[-2:])) for r in roots)
    if alpha < 1:
        root = xp.concatenate([math.sqrt(alpha) * root_q, math.sqrt(1 - alpha) * root_p], -1)
        return FullCovariance.from_square_root(root), None
    lower_q = FullCovariance.from_square_root(root_q).factor
    with np.errstate(all="ignore"):
        whitened = ops.solve_triangular(lower_q, root_p, lower=True)
        eye = ops.eye(p.dim, p.dtype, like=whitened)
        inner = alpha * eye - (alpha - 1) * (whitened @ tp(whitened))
        finite = xp.all(xp.isfinite(inner), axis=(-2, -1))
        inner_mix, definite = factored(ops, xp.where(finite[..., None, None], inner,
                                                     -1.0 * eye))
    return FullCovariance(None, lower_q @ inner_mix.factor), definite


def square_root(cov: Covariance) -> Any:
    """S (*batch, d, n) with S Sᵀ = Σ, n = cov.noise_dim: the structure's own colouring applied
    to the unit vectors (L; R⁻ᵀ for a precision; [diag √v, W] for low rank; L_A ⊗ L_B), so
    never forming Σ, whose entries may lie beyond the float range where S's do not."""
    ops = cov.ops
    n = cov.noise_dim
    units = ops.eye(n, cov.dtype, like=cov.device_array)
    colored = cov.color(units.reshape(n, *(1,) * len(cov.batch_shape), n))  # (n, *batch, d)
    return ops.xp.moveaxis(colored, 0, -1)


def _unscaled(mixed: FullCovariance, k: Any) -> FullCovariance:
    """The mix of a :func:`balanced` pair back in the pair's own units (Σ_α = 4ᵏΣ'_α), exactly;
    where 4ᵏΣ'_α overflows, held by its factor with the backward error carried over."""
    if k is None:
        return mixed
    out = rescaled(mixed, -k)
    if out.matrix is not None and not out.ops.all_finite(out.matrix):
        # Formed while Σ'_α is at hand (scale-free): a factor alone would go uncorrected.
        kept = {"backward_error": mixed.backward_error, "_condition_bound": mixed.condition_bound()}
        out = dataclasses.replace(out, matrix=None)
        out.__dict__.update(kept)
    return out

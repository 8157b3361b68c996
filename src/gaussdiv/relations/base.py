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

from abc import ABC, abstractmethod
from typing import Any, NamedTuple

import numpy as np

from gaussdiv.backends.base import CHOLESKY_NOT_DEFINITE, CHOLESKY_OK
from gaussdiv.numerics.series import excess_log1p
from gaussdiv.structures import Covariance, FullCovariance

#: The exact routes work on the eigenvalues λ = 1 + ε; for λ below this the fast sum is already
#: accurate (the excess is then ≥ λ − 1 − ln λ ≈ 0.19) and is kept.
SPECTRAL_MIN_EIGENVALUE = 0.5


class PairTerms(NamedTuple):
    """Fast covariance terms for Σ₁ ‖ Σ₂, each of shape broadcast(batch₁, batch₂)."""

    trace: Any
    logdet_ratio: Any
    excess: Any
    magnitude: Any


class Spectrum(NamedTuple):
    """The eigenvalue offsets ε (n, d) of Σ₂^-½Σ₁Σ₂^-½ − I for a flat batch, formed without
    cancellation, and ln(1 + ε) where it is known better than log1p(ε) can give it (else None):
    what every divergence's exact route is a function of."""

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
    :data:`SPECTRAL_MIN_EIGENVALUE` (the fast sum is accurate there)."""
    xp = ops.xp
    eps = spectrum.eps
    trusted = 1 + ops.amin(eps, (-1,), keepdims=False) >= SPECTRAL_MIN_EIGENVALUE
    return xp.where(trusted, ops.sum(excess_log1p(eps, xp, spectrum.log_ratio), -1), fast)


def dense_mix(p: Covariance, q: Covariance, alpha: float) -> tuple[FullCovariance, Any]:
    """αΣ₂ + (1−α)Σ₁ densely, factored; elements that are not positive definite hold I."""
    ops = p.ops
    mixed = alpha * q.dense() + (1 - alpha) * p.dense()  # batches broadcast (not in place)
    fused = None if ops.is_traced(mixed) else ops.checked_cholesky(mixed)
    if fused is not None and np.all((fused[1] == CHOLESKY_OK)
                                    | (fused[1] == CHOLESKY_NOT_DEFINITE)):
        # Per element, in one pass (LAPACK's batched Cholesky fails for the whole batch).
        factor, status, _ = fused
        if not status.any():
            return FullCovariance(mixed, factor), None
        definite = status == CHOLESKY_OK
        eye = ops.eye(p.dim, p.dtype, like=mixed)
        keep = definite[..., None, None]
        return (FullCovariance(ops.xp.where(keep, mixed, eye), ops.xp.where(keep, factor, eye)),
                definite)
    try:
        factor = ops.cholesky(mixed)
    except ops.LinAlgError:  # NumPy and torch fail for the whole batch: find the elements
        factor = None
    if factor is not None and (ops.is_traced(factor) or ops.all_finite(factor)):
        if not ops.is_traced(factor):
            return FullCovariance(mixed, factor), None
        definite = ops.xp.all(ops.xp.isfinite(factor), axis=(-2, -1))
    else:  # definite enough for a Cholesky in this precision: λ_min > d·u·λ_max
        eig = ops.eigvalsh(mixed)
        tiny = p.dim * float(np.finfo(p.dtype).eps)
        definite = eig[..., 0] > tiny * ops.xp.abs(eig[..., -1])
    eye = ops.eye(p.dim, p.dtype, like=mixed)
    mixed = ops.xp.where(definite[..., None, None], mixed, eye)
    return FullCovariance(mixed, ops.cholesky(mixed)), definite

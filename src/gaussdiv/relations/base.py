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

from gaussdiv.numerics.series import excess_log1p
from gaussdiv.structures import Covariance

#: The exact routes work on the eigenvalues λ = 1 + ε; for λ below this the fast sum is already
#: accurate (the excess is then ≥ λ − 1 − ln λ ≈ 0.19) and is kept.
SPECTRAL_MIN_EIGENVALUE = 0.5


class PairTerms(NamedTuple):
    """Fast covariance terms for Σ₁ ‖ Σ₂, each of shape broadcast(batch₁, batch₂)."""

    trace: Any
    logdet_ratio: Any
    excess: Any
    magnitude: Any


class PairRelation(ABC):
    """What two covariance structures know about each other."""

    @abstractmethod
    def terms(self, p: Covariance, q: Covariance) -> PairTerms:
        """The fast terms, for the whole broadcast batch."""

    @abstractmethod
    def exact_excess(self, p: Covariance, q: Covariance, fast: Any) -> Any:
        """Σ g(εᵢ) without cancellation, for structures flattened to one batch axis (n,).

        ``fast`` (n,) is the fast excess there, returned where this route cannot do better.
        """

    def accuracy_note(self, p: Covariance, q: Covariance) -> str | None:
        """None when :meth:`exact_excess` is exact for this pair; else what holds instead."""
        return None


def terms_from(trace: Any, logdet_ratio: Any, d: int, ops: Any) -> PairTerms:
    """PairTerms whose fast excess is the plain sum (trace − d) + logdet_ratio."""
    excess = (trace - d) + logdet_ratio
    return PairTerms(trace, logdet_ratio, excess, trace + d + ops.xp.abs(logdet_ratio))


def spectrum_excess(ops: Any, eps: Any, fast: Any, log_ratio: Any = None) -> Any:
    """Σᵢ g(εᵢ) over the last axis of eigenvalue offsets ``eps`` (n, d), ascending; ``fast``
    where the smallest eigenvalue is below :data:`SPECTRAL_MIN_EIGENVALUE`."""
    xp = ops.xp
    trusted = 1 + eps[..., 0] >= SPECTRAL_MIN_EIGENVALUE
    return xp.where(trusted, ops.sum(excess_log1p(eps, xp, log_ratio), -1), fast)

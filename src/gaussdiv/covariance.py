"""The covariance-structure protocol, and the policy every pair routine shares.

A :class:`Covariance` holds a batch of d×d covariance matrices Σ in whatever structure the user
has. Every structure answers the same questions — ``logdet`` (ln|Σ|), ``mahalanobis``
(xᵀΣ⁻¹x), ``color`` (a square root applied to noise, for sampling), ``diagonal`` and
``inverse_diagonal`` (diag Σ, diag Σ⁻¹), ``matmul`` (Σ X) and ``dense`` (Σ itself, for tests) —
and the divergence code is written once against them plus one pair routine per structure
(:func:`gaussdiv.pairs.matrix_terms`), used when both sides share the structure.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import Any, NamedTuple

import numpy as np

from gaussdiv._backend import backend_of


class MatrixTerms(NamedTuple):
    """The covariance part of KL(P‖Q), for covariances Σ₁ (of P) and Σ₂ (of Q).

    Attributes:
        trace: tr(Σ₂⁻¹Σ₁), shape (*batch).
        logdet_ratio: ln(|Σ₂| / |Σ₁|), shape (*batch).
        excess: tr(Σ₂⁻¹Σ₁) − d + ln(|Σ₂| / |Σ₁|) = Σᵢ λᵢ − 1 − ln λᵢ ≥ 0 over the eigenvalues λᵢ
            of Σ₂⁻¹Σ₁, evaluated without cancellation (it is *not* the float sum of the other two
            fields when P ≈ Q), shape (*batch).
    """

    trace: Any
    logdet_ratio: Any
    excess: Any


class Covariance(ABC):
    """A batch of symmetric positive definite d×d matrices Σ, shape (*batch_shape, d, d)."""

    @property
    @abstractmethod
    def dim(self) -> int:
        """d, the dimension of the space."""

    @property
    @abstractmethod
    def batch_shape(self) -> tuple[int, ...]:
        """Leading (batch) shape; broadcasts like NumPy shapes."""

    @property
    @abstractmethod
    def dtype(self) -> Any:
        """The floating dtype computations are carried out in."""

    @property
    @abstractmethod
    def ops(self) -> Any:
        """The array backend of this structure's arrays."""

    @property
    def noise_dim(self) -> int:
        """Length of the standard-normal vector :meth:`color` maps to N(0, Σ)."""
        return self.dim

    @abstractmethod
    def logdet(self) -> Any:
        """ln|Σ|, shape (*batch_shape). Never overflows: computed from logs of factors."""

    @abstractmethod
    def mahalanobis(self, x: Any) -> Any:
        """xᵀΣ⁻¹x for x of shape (..., d), as a sum of squares; shape (...) broadcast with batch."""

    @abstractmethod
    def color(self, z: Any) -> Any:
        """S z for a square root S (S Sᵀ = Σ), z of shape (..., noise_dim); returns (..., d)."""

    @abstractmethod
    def diagonal(self) -> Any:
        """diag(Σ), shape (*batch_shape, d)."""

    @abstractmethod
    def inverse_diagonal(self) -> Any:
        """diag(Σ⁻¹), shape (*batch_shape, d)."""

    @abstractmethod
    def matmul(self, x: Any) -> Any:
        """Σ X for X of shape (..., d, n); returns (..., d, n)."""

    @abstractmethod
    def dense(self) -> Any:
        """Σ as a dense array of shape (*batch_shape, d, d)."""

    @abstractmethod
    def to_dense_covariance(self) -> Covariance:
        """The same Σ as a DenseCovariance (used to pair with a dense partner)."""

    @staticmethod
    @abstractmethod
    def pair_terms(cov_p: Any, cov_q: Any, offset: Any = 0) -> MatrixTerms:
        """MatrixTerms for two covariances of this very structure (P's first, then Q's).

        ``offset`` ≥ 0 is what the excess will be added to (the Mahalanobis term): cancellation
        only matters relative to the sum (see :func:`refine_cancelled`).
        """


# When tr − d + ln-ratio is at least this fraction of the magnitude of its terms, at most three
# bits were lost to cancellation and the sum is kept; below it the spectral route is taken.
CANCELLATION_RATIO = 1 / 8

Spectral = Callable[[np.ndarray, Any], Any]  # (batch mask, fast values there) -> excess


def _smallest_per_element(ops: Any, offset: Any, shape: tuple[int, ...]) -> Any:
    """``offset`` reduced by min to (a shape broadcastable with) ``shape``.

    One covariance pair may serve many means (offset has more or longer batch axes): it is
    refined when any of them needs it, i.e. against the smallest offset.
    """
    if not hasattr(offset, "shape") or tuple(offset.shape) == shape:
        return offset
    extra = len(offset.shape) - len(shape)
    if extra > 0:
        offset = ops.amin(offset, tuple(range(extra)), keepdims=False)
    axes = tuple(i for i, (a, b) in enumerate(zip(shape, offset.shape, strict=False))
                 if a == 1 and b != 1)
    return ops.amin(offset, axes, keepdims=True) if axes else offset


def refine_cancelled(trace: Any, logdet_ratio: Any, d: int, spectral: Spectral,
                     offset: Any = 0) -> MatrixTerms:
    """MatrixTerms from the fast sum (trace − d) + logdet_ratio, refined where it cancels.

    The sum's rounding error is a few u times trace + d + |logdet_ratio|; see
    :func:`refine_excess` for ``spectral`` and ``offset``.
    """
    ops = backend_of(trace, logdet_ratio)
    fast = (trace - d) + logdet_ratio
    magnitude = trace + d + ops.xp.abs(logdet_ratio)
    return MatrixTerms(trace, logdet_ratio, refine_excess(fast, magnitude, spectral, offset))


def refine_excess(fast: Any, magnitude: Any, spectral: Spectral, offset: Any = 0) -> Any:
    """The excess ``fast``, recomputed by ``spectral`` where it cancels.

    ``fast`` (*batch) is a quick evaluation of the excess whose rounding error is a few u times
    ``magnitude`` (*batch). An element is recomputed when fast + offset lost more than three
    bits (``offset``, the non-negative term the excess is added to, can make the cancellation
    harmless); see :func:`refine_where`.
    """
    ops = backend_of(fast)
    offset = _smallest_per_element(ops, offset, tuple(fast.shape))
    cancels = fast + offset < CANCELLATION_RATIO * (magnitude + offset)
    return refine_where(fast, cancels, spectral)


def refine_where(fast: Any, cancels: Any, spectral: Spectral) -> Any:
    """``fast`` (*batch), with the elements where ``cancels`` recomputed by ``spectral``.

    ``spectral(mask, fast)`` receives a boolean NumPy mask over the batch shape and ``fast`` on
    the masked elements (flattened), and returns the accurate values for them (keeping
    ``fast`` where it cannot do better). Frameworks that can index by a mask recompute only
    those elements; JAX (traceable, no data-dependent shapes) recomputes all and selects. The
    recomputation runs without gradient tracking: the result carries the derivatives of the
    fast formula, which equals it in exact arithmetic and is smooth where the eigenvalue route
    is not (P = Q).
    """
    ops = backend_of(fast)
    shape = tuple(fast.shape)
    if ops.masking:
        mask = np.asarray(ops.to_numpy(cancels), dtype=bool).reshape(shape)
        if not mask.any():
            return fast
    with ops.no_grad():
        plain = ops.stop_gradient(fast)
        if ops.masking:
            refined = ops.put(plain, mask, spectral(mask, ops.take(plain, mask, 0)))
        else:
            everything = np.ones(shape, dtype=bool)
            values = spectral(everything, plain.reshape(-1)).reshape(shape)
            refined = ops.xp.where(cancels, values, plain)
    return ops.with_gradient_of(refined, fast)

"""Covariance structures: what each knows about its matrix Σ, and the divergence between two.

A :class:`Covariance` holds a batch of d×d covariance matrices in whatever structure the user
has. Every structure answers the same few questions — ``logdet`` (ln|Σ|), ``mahalanobis``
(xᵀΣ⁻¹x), ``color`` (a square root applied to noise, for sampling) and ``dense`` (Σ itself, for
tests) — and the divergence code is written once against them plus one pair routine,
:func:`matrix_terms`, which structures specialise where their pair has a cheaper exact form.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, ClassVar, Literal, NamedTuple

import numpy as np

from gaussdiv._backend import backend_of
from gaussdiv._numerics import excess_log1p
from gaussdiv._validation import (
    check_dtype,
    check_finite,
    check_lower_triangular,
    check_square,
    check_symmetric,
    cholesky_checked,
)


class MatrixTerms(NamedTuple):
    """The covariance part of KL(P‖Q), for covariances Σ₁ (of P) and Σ₂ (of Q).

    Attributes:
        trace: tr(Σ₂⁻¹Σ₁), shape (*batch).
        logdet_ratio: ln(|Σ₂| / |Σ₁|), shape (*batch).
        excess: tr(Σ₂⁻¹Σ₁) − d + ln(|Σ₂| / |Σ₁|) ≥ 0, evaluated without cancellation (it is
            *not* the float sum of the other two fields when P ≈ Q), shape (*batch).
    """

    trace: Any
    logdet_ratio: Any
    excess: Any


class Covariance(ABC):
    """A batch of symmetric positive definite d×d matrices Σ, shape (*batch_shape, d, d)."""

    #: Order used to bring two different structures to a common one (higher is more general).
    generality: ClassVar[int] = 100

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
    def noise_dim(self) -> int:
        """Length of the standard-normal vector :meth:`color` maps to N(0, Σ)."""
        return self.dim

    @abstractmethod
    def logdet(self) -> Any:
        """ln|Σ|, shape (*batch_shape). Never overflows: computed from a factor's logs."""

    @abstractmethod
    def mahalanobis(self, x: Any) -> Any:
        """xᵀΣ⁻¹x for x of shape (..., d), as a sum of squares; shape (...) broadcast with batch."""

    @abstractmethod
    def color(self, z: Any) -> Any:
        """S z for a square root S (S Sᵀ = Σ), z of shape (..., noise_dim); returns (..., d)."""

    @abstractmethod
    def dense(self) -> Any:
        """Σ as a dense array of shape (*batch_shape, d, d)."""

    @abstractmethod
    def to_dense_covariance(self) -> DenseCovariance:
        """The same Σ as a :class:`DenseCovariance` (used to pair with a dense partner)."""


def matrix_terms(cov_p: Covariance, cov_q: Covariance) -> MatrixTerms:
    """The covariance part of KL(P‖Q) for any two structures (see :class:`MatrixTerms`).

    Two instances of one structure use that structure's own pair formula; different structures
    are brought to the more general of the two.
    """
    if type(cov_p) is type(cov_q):
        return type(cov_p).pair_terms(cov_p, cov_q)
    if cov_p.generality < cov_q.generality:
        cov_p = cov_p.to_dense_covariance()
    elif cov_q.generality < cov_p.generality:
        cov_q = cov_q.to_dense_covariance()
    return DenseCovariance.pair_terms(cov_p.to_dense_covariance(), cov_q.to_dense_covariance())


Side = Literal["covariance", "precision"]

# When tr − d + ln-ratio is at least this fraction of the magnitude of its terms, at most three
# bits were lost to cancellation and the sum is kept; below it the spectral route is taken.
_CANCELLATION_RATIO = 1 / 8
# The spectral route is exact for eigenvalues λ = 1 + ε of Σ₂⁻¹Σ₁ well above 0; below this the
# log-determinant route is more accurate (and the excess is then ≥ λ − 1 − ln λ ≈ 0.19).
_SPECTRAL_MIN_EIGENVALUE = 0.5


@dataclass(frozen=True, eq=False, repr=False)
class DenseCovariance(Covariance):
    """A full covariance, held as given: Σ, its Cholesky factor, Λ = Σ⁻¹, or Λ's factor.

    ``side`` says whether the stored objects describe Σ ("covariance") or the precision
    Λ = Σ⁻¹ ("precision"); ``matrix`` is the user's matrix if one was given and ``factor``
    the lower Cholesky factor of that side's matrix (given or computed once, here). Keeping the
    user's exact input lets :func:`matrix_terms` subtract like from like when P ≈ Q.

    Shapes: matrix and factor (*batch_shape, d, d).
    """

    side: Side
    matrix: Any
    factor: Any
    factor_given: bool

    generality: ClassVar[int] = 100

    @classmethod
    def from_matrix(cls, matrix: Any, side: Side = "covariance", *, name: str = "cov",
                    dtype: Any = None) -> DenseCovariance:
        """Validate a symmetric positive definite matrix and factor it once."""
        ops = backend_of(matrix)
        check_dtype(matrix, name, ops)
        matrix = _frozen_copy(ops, matrix, dtype)
        check_square(matrix, name)
        check_finite(matrix, name, ops)
        check_symmetric(matrix, name, ops)
        factor = cholesky_checked(matrix, name, ops)
        return cls(side, matrix, factor, factor_given=False)

    @classmethod
    def from_factor(cls, factor: Any, side: Side = "covariance", *, name: str = "scale_tril",
                    dtype: Any = None) -> DenseCovariance:
        """Validate a lower-triangular factor with positive diagonal (Σ or Λ = factor·factorᵀ)."""
        ops = backend_of(factor)
        check_dtype(factor, name, ops)
        factor = _frozen_copy(ops, factor, dtype)
        check_square(factor, name)
        check_finite(factor, name, ops)
        check_lower_triangular(factor, name, ops)
        return cls(side, None, factor, factor_given=True)

    @property
    def ops(self) -> Any:
        return backend_of(self.factor)

    @property
    def dim(self) -> int:
        return int(self.factor.shape[-1])

    @property
    def batch_shape(self) -> tuple[int, ...]:
        return tuple(self.factor.shape[:-2])

    @property
    def dtype(self) -> Any:
        return self.factor.dtype

    def __repr__(self) -> str:
        given = "factor" if self.factor_given else "matrix"
        return (f"DenseCovariance(side={self.side!r}, given={given}, d={self.dim}, "
                f"batch_shape={self.batch_shape}, dtype={self.dtype})")

    def logdet(self) -> Any:
        ops = self.ops
        half = ops.sum(ops.xp.log(ops.diagonal(self.factor)), -1)
        return 2 * half if self.side == "covariance" else -2 * half

    def whiten(self, x: Any) -> Any:
        """W x with W Σ Wᵀ = I: L⁻¹x on the covariance side, Rᵀx on the precision side."""
        ops = self.ops
        if self.side == "covariance":
            return ops.solve_triangular(self.factor, x[..., None], lower=True)[..., 0]
        return (ops.matrix_transpose(self.factor) @ x[..., None])[..., 0]

    def mahalanobis(self, x: Any) -> Any:
        w = self.whiten(x)
        return self.ops.sum(w * w, -1)

    def color(self, z: Any) -> Any:
        ops = self.ops
        if self.side == "covariance":
            return (self.factor @ z[..., None])[..., 0]
        upper = ops.matrix_transpose(self.factor)
        return ops.solve_triangular(upper, z[..., None], lower=False)[..., 0]

    def dense(self) -> Any:
        ops = self.ops
        if self.side == "covariance":
            if self.matrix is not None:
                return self.matrix
            return self.factor @ ops.matrix_transpose(self.factor)
        eye = ops.eye(self.dim, self.dtype, like=self.factor)
        inv_factor = ops.solve_triangular(self.factor, eye, lower=True)  # R⁻¹
        return ops.matrix_transpose(inv_factor) @ inv_factor  # Σ = R⁻ᵀR⁻¹

    def to_dense_covariance(self) -> DenseCovariance:
        return self

    def on_covariance_side(self) -> DenseCovariance:
        """The same Σ described by Σ itself (factorised anew when given as a precision)."""
        if self.side == "covariance":
            return self
        return DenseCovariance.from_matrix(self.dense(), "covariance", name="cov")

    def exact_difference(self, other: DenseCovariance) -> Any:
        """self − other for two matrices of one side, exact when both were given as matrices."""
        return _as_matrix(self) - _as_matrix(other)

    @staticmethod
    def pair_terms(cov_p: DenseCovariance, cov_q: DenseCovariance) -> MatrixTerms:
        """Covariance part of KL for two dense covariances. Cost O(d³) per pair.

        The fast route computes B = L₂⁻¹L₁, tr(Σ₂⁻¹Σ₁) = ‖B‖²_F and ln|Σ₂|/|Σ₁| =
        2 Σᵢ ln(L₂,ᵢᵢ / L₁,ᵢᵢ) (ratios before logs, so no overflow at any scale). Where those
        terms cancel (P ≈ Q) it switches, per batch element, to the spectral route:
        E = L₂⁻¹(Σ₁ − Σ₂)L₂⁻ᵀ with eigenvalues εᵢ and excess Σᵢ εᵢ − ln(1 + εᵢ), where the
        difference is taken on the user's own inputs (matrices or factors) before whitening.
        Two precisions Λ use the identity excess(Σ₁‖Σ₂) = excess(Λ₂‖Λ₁).
        """
        if cov_p.side != cov_q.side:
            cov_p, cov_q = cov_p.on_covariance_side(), cov_q.on_covariance_side()
        if cov_p.side == "covariance":
            return _dense_terms(first=cov_p, ref=cov_q)
        return _dense_terms(first=cov_q, ref=cov_p)


def _as_matrix(cov: DenseCovariance) -> Any:
    """The side's matrix: as given, or rebuilt from the factor (Σ = LLᵀ or Λ = RRᵀ)."""
    if cov.matrix is not None:
        return cov.matrix
    return cov.factor @ cov.ops.matrix_transpose(cov.factor)


def _dense_terms(first: DenseCovariance, ref: DenseCovariance) -> MatrixTerms:
    """MatrixTerms for A = first's matrix against B = ref's (both one side): tr(B⁻¹A), ln|B|/|A|."""
    ops = first.ops
    xp = ops.xp
    d = first.dim
    whitened = ops.solve_triangular(ref.factor, first.factor, lower=True)  # L_B⁻¹ L_A
    trace = ops.sum(whitened * whitened, (-2, -1))
    logdet_ratio = 2 * ops.sum(xp.log(ops.diagonal(ref.factor) / ops.diagonal(first.factor)), -1)
    excess = (trace - d) + logdet_ratio
    magnitude = trace + d + xp.abs(logdet_ratio)
    cancels = excess < _CANCELLATION_RATIO * magnitude
    cancels = np.broadcast_to(ops.to_numpy(cancels), np.shape(excess))
    if np.any(cancels):
        excess = np.array(excess, copy=True)
        excess[cancels] = _spectral_excess(first, ref, cancels, fallback=excess[cancels])
    return MatrixTerms(trace, logdet_ratio, excess)


def _spectral_excess(first: DenseCovariance, ref: DenseCovariance, mask: Any,
                     fallback: Any) -> Any:
    """Σᵢ εᵢ − ln(1 + εᵢ) over eigenvalues of E = L_B⁻¹(A − B)L_B⁻ᵀ, for batch elements in mask."""
    ops = ref.ops
    xp = ops.xp
    batch = mask.shape
    ref_factor = np.broadcast_to(ref.factor, (*batch, *ref.factor.shape[-2:]))[mask]
    if first.factor_given and ref.factor_given:
        # A − B = L_A L_Aᵀ − L_B L_Bᵀ; with F = L_B⁻¹(L_A − L_B): E = F + Fᵀ + F Fᵀ.
        diff = np.broadcast_to(first.factor - ref.factor, (*batch, *ref.factor.shape[-2:]))[mask]
        f = ops.solve_triangular(ref_factor, diff, lower=True)
        f_t = ops.matrix_transpose(f)
        excess_matrix = f + f_t + f @ f_t
    else:
        diff = np.broadcast_to(first.exact_difference(ref), (*batch, *ref.factor.shape[-2:]))[mask]
        half = ops.solve_triangular(ref_factor, diff, lower=True)  # L_B⁻¹ D
        excess_matrix = ops.solve_triangular(ref_factor, ops.matrix_transpose(half), lower=True)
    excess_matrix = 0.5 * (excess_matrix + ops.matrix_transpose(excess_matrix))
    eps = ops.eigvalsh(excess_matrix)
    spectral = ops.sum(excess_log1p(eps, xp), -1)
    trusted = 1 + eps[..., 0] >= _SPECTRAL_MIN_EIGENVALUE
    return xp.where(trusted, spectral, fallback)


def _frozen_copy(ops: Any, x: Any, dtype: Any) -> Any:
    """A private, read-only copy in the compute dtype: later edits by the caller can't reach it."""
    out = np.array(x, dtype=dtype if dtype is not None else _float_dtype(x), copy=True)
    out.flags.writeable = False
    return out


def _float_dtype(x: Any) -> Any:
    dtype = np.asarray(x).dtype
    if dtype.kind == "f" and dtype.itemsize <= 4:
        return np.float32
    return np.float64

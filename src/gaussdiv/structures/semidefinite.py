"""Positive semidefinite covariances: Σ ⪰ 0, possibly singular (rank-deficient).

A degenerate Gaussian N(μ, Σ) with |Σ| = 0 lives on the affine subspace μ + range(Σ): it has no
density, so KL and the rest of the density-based family are not finite for it, but the
2-Wasserstein distance, sampling and the moments are defined. This is what FID users hold (the
2048-d covariance of 1000 images has rank ≤ 999) and what pytorch-fid's statistics files store.

Σ is kept as given beside its eigendecomposition Σ = U diag(λ) Uᵀ, computed once. Eigenvalues
at or below the numerical-rank threshold d·eps·λ_max (``np.linalg.matrix_rank``'s) are rounding
of an exact zero and are set to 0: the square root F = U diag(√λ) used for W₂ and sampling then
carries no √u-sized spurious directions (√ of a rounded 1e-17 is 3e-9).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, ClassVar, NoReturn

import numpy as np

from gaussdiv.backends import ArrayContext, context_of
from gaussdiv.errors import NotPositiveDefiniteError, NotSemidefiniteError
from gaussdiv.structures.base import Covariance
from gaussdiv.validation import (
    check_dtype,
    check_finite,
    check_square,
    check_symmetric,
    describe_index,
    first_true,
)


@dataclass(frozen=True, eq=False, repr=False)
class SemidefiniteCovariance(Covariance):
    """Σ ⪰ 0 (*batch, d, d), possibly singular, with its eigendecomposition Σ = U diag(λ) Uᵀ.

    Made by ``Gaussian.semidefinite``. Only what a degenerate Gaussian has is defined: ``dense``
    (Σ as given), ``diagonal``, ``matmul``, ``color`` (F z with F = U diag(√λ)), ``root`` and
    ``rank``; ``logdet``, ``mahalanobis``, ``inverse_diagonal`` and ``to_full`` raise
    NotPositiveDefiniteError (ln|Σ| = −∞ and Σ⁻¹ do not exist at rank < d).

    Cost: O(d²) memory (Σ and U); O(d³) once (one ``eigh``); ``color`` O(d²) per vector.

    Attributes:
        matrix: Σ as given (*batch, d, d), symmetric.
        eigenvalues: λ (*batch, d), ascending, ≥ 0: those of Σ with every one at or below
            d·eps·max|λ| set to 0.
        eigenvectors: U (*batch, d, d), orthonormal columns, Σ ≈ U diag(λ) Uᵀ.

    Examples:
        >>> import numpy as np, gaussdiv
        >>> cov = gaussdiv.Gaussian.semidefinite(np.zeros(2), [[1.0, 1.0], [1.0, 1.0]]).cov
        >>> isinstance(cov, gaussdiv.SemidefiniteCovariance), int(cov.rank())
        (True, 1)
        >>> np.round(cov.eigenvalues, 12).tolist()           # Σ = 2 · (1, 1)(1, 1)ᵀ / 2
        [0.0, 2.0]
    """

    matrix: Any
    eigenvalues: Any
    eigenvectors: Any

    array_fields: ClassVar[dict[str, int]] = {"matrix": 2, "eigenvalues": 1, "eigenvectors": 2}

    @classmethod
    def from_matrix(cls, matrix: Any, *, name: str,
                    ctx: ArrayContext | None = None) -> SemidefiniteCovariance:
        """Validate a finite, symmetric, positive semidefinite matrix and decompose it once."""
        ctx = ctx or context_of(matrix)
        ops = ctx.ops
        check_dtype(matrix, name, ops)
        matrix = ctx.freeze(matrix)
        check_square(matrix, name)
        check_finite(matrix, name, ops)
        check_symmetric(matrix, name, ops)
        xp = ops.xp
        eigenvalues, eigenvectors = xp.linalg.eigh(0.5 * (matrix + ops.matrix_transpose(matrix)))
        threshold = _rank_threshold(ops, eigenvalues)
        if not ops.is_traced(eigenvalues):
            _check_semidefinite(ops, eigenvalues, threshold, name)
        # Under tracing nothing is checked: a negative eigenvalue beyond rounding becomes NaN
        # (as a failed Cholesky does for Gaussian(mean, cov)), not a silent 0.
        eigenvalues = xp.where(eigenvalues > threshold[..., None], eigenvalues,
                               xp.where(eigenvalues < -threshold[..., None],
                                        math.nan + 0 * eigenvalues, 0 * eigenvalues))
        return cls(matrix, eigenvalues, eigenvectors)

    def checked(self, name: str) -> None:
        type(self).from_matrix(self.matrix, name=name)

    @property
    def dim(self) -> int:
        return int(self.matrix.shape[-1])

    @property
    def batch_shape(self) -> tuple[int, ...]:
        return tuple(self.matrix.shape[:-2])

    def __repr__(self) -> str:
        return (f"SemidefiniteCovariance(d={self.dim}, batch_shape={self.batch_shape}, "
                f"dtype={self.dtype})")

    def root(self) -> Any:
        """F = U diag(√λ) (*batch, d, d): F Fᵀ = Σ (to rounding), zero columns for the null
        directions."""
        return self.eigenvectors * self.ops.xp.sqrt(self.eigenvalues)[..., None, :]

    def thin_root(self) -> Any:
        """F restricted to its last k columns (*batch, d, k), k the largest rank in the batch:
        the columns of the zero eigenvalues (ascending order puts them first) are dropped, so
        F Fᵀ is unchanged and products with F cost O(d k) per column instead of O(d²)."""
        if self.ops.is_traced(self.eigenvalues):
            return self.root()
        first = self.dim - max(int(np.max(self.ops.to_numpy(self.rank()), initial=0)), 1)
        values = self.eigenvalues[..., first:]
        return self.eigenvectors[..., first:] * self.ops.xp.sqrt(values)[..., None, :]

    def rank(self) -> Any:
        """The numerical rank, the number of eigenvalues above d·eps·λ_max (*batch), integers."""
        return self.ops.sum(self.ops.cast_like(self.eigenvalues > 0, self.eigenvalues), -1)

    def color(self, z: Any) -> Any:
        return (self.root() @ z[..., None])[..., 0]

    def diagonal(self) -> Any:
        return self.ops.diagonal(self.matrix)

    def matmul(self, x: Any) -> Any:
        return self.matrix @ x

    def dense(self) -> Any:
        return self.matrix

    def dense_dd(self) -> tuple[Any, Any]:
        return self.matrix, 0 * self.matrix

    def logdet(self) -> NoReturn:
        _undefined("ln|Σ|")

    def mahalanobis(self, x: Any) -> NoReturn:
        _undefined("xᵀΣ⁻¹x")

    def inverse_diagonal(self) -> NoReturn:
        _undefined("diag Σ⁻¹")

    def to_full(self) -> NoReturn:
        _undefined("a Cholesky factor")

    def condition_bound(self) -> NoReturn:
        _undefined("a condition number")


def _rank_threshold(ops: Any, eigenvalues: Any) -> Any:
    """d·eps·max|λ| per element (*batch): eigenvalues at or below it are rounding of 0."""
    eps = float(np.finfo(ops.numpy_dtype(eigenvalues)).eps)
    largest = ops.stop_gradient(ops.max_abs(eigenvalues, -1)[..., 0])
    return eigenvalues.shape[-1] * eps * largest


def _check_semidefinite(ops: Any, eigenvalues: Any, threshold: Any, name: str) -> None:
    """NotSemidefiniteError naming the first element with an eigenvalue below −threshold."""
    lowest = ops.to_numpy(eigenvalues[..., 0])
    bad = lowest < -ops.to_numpy(threshold)
    if not np.any(bad):
        return
    index = first_true(np.asarray(bad))
    largest = float(ops.to_numpy(eigenvalues[..., -1])[index])
    raise NotSemidefiniteError(
        f"{name} is not positive semidefinite{describe_index(index)}: its smallest eigenvalue "
        f"is {float(lowest[index]):.6g} (largest {largest:.6g}), below the rounding tolerance "
        f"−{float(ops.to_numpy(threshold)[index]):.3g} (d·eps·max|λ|); a covariance must be "
        "symmetric with no negative eigenvalues")


def _undefined(what: str) -> NoReturn:
    raise NotPositiveDefiniteError(
        f"{what} is not defined for a semidefinite covariance (Gaussian.semidefinite): a "
        "singular Σ has no inverse and ln|Σ| = −∞; only wasserstein, sampling and the moments "
        "accept it (build it with Gaussian(mean, cov) if Σ is positive definite)")

"""Kronecker covariances Σ = A ⊗ B (matrix-normal, separable space–time), never expanded.

A vector x of length d = p·q is read as the p×q matrix X (row-major), so that
(A ⊗ B) x = vec(A X Bᵀ) and (A ⊗ B)⁻¹ x = vec(A⁻¹ X B⁻ᵀ). With L_A, L_B the Cholesky factors,
L_A ⊗ L_B is a square root of Σ and everything costs O(p³ + q³) to build and O(d (p + q)) per
vector.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from gaussdiv.backends import broadcast_shapes
from gaussdiv.numerics.error_free import two_product
from gaussdiv.structures.base import Covariance
from gaussdiv.structures.full import FullCovariance


@dataclass(frozen=True, eq=False, repr=False)
class KroneckerCovariance(Covariance):
    """Σ = A ⊗ B, A (*batch, p, p) and B (*batch, q, q) full covariances; d = p q; never expanded.

    Made by ``Gaussian.kronecker``. A vector x of length d is read as the p×q matrix X
    (row-major: entry i q + j pairs row i of A with row j of B), so (A ⊗ B) x = vec(A X Bᵀ),
    xᵀΣ⁻¹x = ‖L_A⁻¹ X L_B⁻ᵀ‖²_F with L_A, L_B the Cholesky factors, and
    ln|Σ| = q ln|A| + p ln|B|.

    Cost: O(p² + q²) memory; O(p³ + q³) once (two Cholesky factors); then ln|Σ| O(p + q),
    xᵀΣ⁻¹x and ``color`` O(d (p + q)) per vector, diag Σ O(d); ``dense()`` O(d²).

    Attributes:
        a: A, a :class:`FullCovariance` (*batch, p, p).
        b: B, a :class:`FullCovariance` (*batch, q, q), batch shape broadcastable with A's.

    Examples:
        >>> import numpy as np, gaussdiv
        >>> cov = gaussdiv.Gaussian.kronecker(np.zeros(6), 2 * np.eye(2), np.eye(3)).cov
        >>> isinstance(cov, gaussdiv.KroneckerCovariance), cov.dim
        (True, 6)
        >>> round(float(cov.logdet()), 6)   # q ln|A| + p ln|B| = 3 ln 4 + 0 = ln 64
        4.158883
    """

    a: FullCovariance
    b: FullCovariance

    child_fields: ClassVar[tuple[str, ...]] = ("a", "b")

    def checked(self, name: str) -> None:
        self.a.checked("a")
        self.b.checked("b")

    @property
    def dim(self) -> int:
        return self.a.dim * self.b.dim

    @property
    def batch_shape(self) -> tuple[int, ...]:
        return broadcast_shapes(self.a.batch_shape, self.b.batch_shape)

    def __repr__(self) -> str:
        return (f"KroneckerCovariance({self.a.dim}×{self.a.dim} ⊗ {self.b.dim}×{self.b.dim}, "
                f"batch_shape={self.batch_shape}, dtype={self.dtype})")

    def logdet(self) -> Any:
        return self.b.dim * self.a.logdet() + self.a.dim * self.b.logdet()

    def mahalanobis(self, x: Any) -> Any:
        """‖L_A⁻¹ X L_B⁻ᵀ‖²_F."""
        ops = self.ops
        u = ops.solve_triangular(self.a.factor, self.unvec(x), lower=True)  # L_A⁻¹X
        w = ops.solve_triangular(self.b.factor, ops.matrix_transpose(u), lower=True)
        return ops.sum(w * w, (-2, -1))

    def color(self, z: Any) -> Any:
        ops = self.ops
        return self.vec(self.a.factor @ self.unvec(z) @ ops.matrix_transpose(self.b.factor))

    def diagonal(self) -> Any:
        return self.outer(self.a.diagonal(), self.b.diagonal())

    def inverse_diagonal(self) -> Any:
        return self.outer(self.a.inverse_diagonal(), self.b.inverse_diagonal())

    def matmul(self, x: Any) -> Any:
        ops = self.ops
        p, q = self.a.dim, self.b.dim
        cols = ops.xp.moveaxis(x, -1, -2)  # (..., n, d)
        grid = cols.reshape(*cols.shape[:-1], p, q)
        a = self.a.side_matrix()[..., None, :, :]
        b = self.b.side_matrix()[..., None, :, :]
        out = a @ grid @ ops.matrix_transpose(b)
        return ops.xp.moveaxis(out.reshape(*out.shape[:-2], p * q), -2, -1)

    def dense(self) -> Any:
        return self.kron(self.a.side_matrix(), self.b.side_matrix())

    def dense_dd(self) -> tuple[Any, Any]:
        """A ⊗ B entry by entry as error-free products (each factor's own hi + lo carried)."""
        (a_hi, a_lo), (b_hi, b_lo) = self.a.dense_dd(), self.b.dense_dd()
        hi, lo = two_product(*self.kron_pair(a_hi, b_hi), self.ops.xp)
        return hi, lo + self.kron(a_hi, b_lo) + self.kron(a_lo, b_hi)

    def to_full(self) -> FullCovariance:
        """A ⊗ B densely with the factor L_A ⊗ L_B (lower triangular, never fails); its
        backward error against A ⊗ B is corrected like any computed factor's."""
        return FullCovariance(self.dense(), self.kron(self.a.factor, self.b.factor))

    def condition_bound(self) -> Any:
        return self.a.condition_bound() * self.b.condition_bound()

    def unvec(self, x: Any) -> Any:
        return x.reshape(*x.shape[:-1], self.a.dim, self.b.dim)

    def vec(self, x: Any) -> Any:
        return x.reshape(*x.shape[:-2], self.dim)

    def outer(self, u: Any, v: Any) -> Any:
        return self.vec(u[..., :, None] * v[..., None, :])

    def kron_pair(self, a: Any, b: Any) -> tuple[Any, Any]:
        """(Aᵢₖ, Bⱼₘ) broadcast to the (d, d) layout of A ⊗ B, unmultiplied."""
        p, q = self.a.dim, self.b.dim
        big_a = a[..., :, None, :, None]
        big_b = b[..., None, :, None, :]
        shape = broadcast_shapes(tuple(big_a.shape), tuple(big_b.shape))
        xp = self.ops.xp
        return (xp.broadcast_to(big_a, shape).reshape(*shape[:-4], p * q, p * q),
                xp.broadcast_to(big_b, shape).reshape(*shape[:-4], p * q, p * q))

    def kron(self, a: Any, b: Any) -> Any:
        left, right = self.kron_pair(a, b)
        return left * right

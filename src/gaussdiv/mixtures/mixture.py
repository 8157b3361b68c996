"""Gaussian mixtures f = Σ_a π_a N(μ_a, Σ_a): densities, draws, moments, entropy bounds.

A :class:`GaussianMixture` is a batched Gaussian of components whose last batch axis indexes the
K components, with weights (*batch, K); batches of mixtures broadcast like Gaussians. Every
quantity is built from the components' exact closed forms: ``log_prob`` is a log-sum-exp over
``gaussdiv.log_prob`` of the components (no underflow far from every component, weights from
1 down to 0), the moments are the law of total covariance, and the entropy bounds are those of
Huber et al. (2008), proven by Jensen's inequality.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from gaussdiv.density import log_prob as gaussian_log_prob
from gaussdiv.divergences.kl import entropy
from gaussdiv.errors import DimensionMismatchError, GaussianError, NonFiniteError, ShapeError
from gaussdiv.gaussian import Gaussian, check_gaussian, stack
from gaussdiv.montecarlo import _check_count, _draw
from gaussdiv.types import Array, ArrayLike
from gaussdiv.validation import first_true

#: |Σ_a π_a − 1| allowed before the weights are taken as a distribution (they are then divided
#: by their sum, so every result is that of an exact distribution).
WEIGHT_SUM_TOLERANCE = 1e-6


class GaussianMixture:
    """A Gaussian mixture f = Σ_a π_a N(μ_a, Σ_a), or a batch of mixtures; immutable.

    Its density is ln f(x) = logsumexp_a (ln π_a + ln N(x; μ_a, Σ_a)), each term by eq. (8);
    :func:`mixture_kl` and :func:`mixture_kl_bounds` compare two mixtures.

    Args:
        weights: π (*batch, K), ≥ 0, summing to 1 within :data:`WEIGHT_SUM_TOLERANCE` along
            the last axis (then normalised by their sum).
        components: a Gaussian of any structure whose batch shape ends in K (the components;
            leading axes broadcast with the weights' batch).

    Attributes:
        weights: the normalised π (*batch, K) in the components' framework and dtype.
        log_weights: ln π (−inf for zero weights).
        components: the Gaussians (*batch, K).

    Raises:
        TypeError: components is not a Gaussian.
        ShapeError: components is unbatched (no K axis), the weights' last axis is not K,
            or the weights' batch does not broadcast with the components'.
        NonFiniteError: a weight is NaN or infinite.
        GaussianError: a weight is negative, or the weights do not sum to 1 within
            :data:`WEIGHT_SUM_TOLERANCE`.

    Examples:
        >>> import numpy as np, gaussdiv
        >>> components = gaussdiv.Gaussian([[-1.0], [1.0]], [[[1.0]], [[1.0]]])  # K = 2, d = 1
        >>> f = gaussdiv.GaussianMixture([0.5, 0.5], components)
        >>> f.n_components, f.dim, f.batch_shape
        (2, 1, ())
        >>> round(float(f.log_prob([0.0])), 6)  # ln N(0; ±1, 1) = −½ (ln 2π + 1)
        -1.418939
        >>> f.covariance()  # law of total covariance: 1 + 1
        array([[2.]])
        >>> f.sample(5, seed=0).shape
        (5, 1)
    """

    __slots__ = ("components", "log_weights", "weights")

    def __init__(self, weights: ArrayLike, components: Gaussian) -> None:
        check_gaussian(components, "components")
        if components.ndim < 1:
            raise ShapeError("components must have a batch axis of the K components; got an "
                             "unbatched Gaussian (reshape it to batch shape (1,) for K = 1)")
        ops = components.ops
        k = components.batch_shape[-1]
        w = ops.asarray(weights, components.cov.dtype, like=components.mean)
        shape = tuple(w.shape)
        if len(shape) < 1 or shape[-1] != k:
            raise ShapeError(f"weights have shape {shape} but the components' batch shape "
                             f"{components.batch_shape} has K = {k} components on its last axis")
        try:
            np.broadcast_shapes(shape[:-1], components.batch_shape[:-1])
        except ValueError:
            raise ShapeError(f"batch shapes do not broadcast: weights {shape[:-1]}, components "
                             f"{components.batch_shape[:-1]}") from None
        if not ops.is_traced(w):
            _check_weights(np.asarray(ops.to_numpy(w), dtype=np.float64))
        total = ops.sum(w, -1)[..., None]
        object.__setattr__(self, "components", components)
        object.__setattr__(self, "weights", w / total)
        with np.errstate(divide="ignore"):
            object.__setattr__(self, "log_weights", ops.xp.log(w) - ops.xp.log(total))

    @classmethod
    def from_components(cls, weights: Any, components: list[Gaussian]) -> GaussianMixture:
        """A mixture from a list of K Gaussians of one structure (stacked on a new last batch
        axis)."""
        if not components:
            raise ShapeError("a mixture needs at least one component")
        first = check_gaussian(components[0], "components[0]")
        for i, g in enumerate(components[1:], 1):
            check_gaussian(g, f"components[{i}]")
            if g.dim != first.dim:
                raise DimensionMismatchError(
                    f"components live in different dimensions: components[0] has d="
                    f"{first.dim}, components[{i}] has d={g.dim}")
        return cls(weights, stack(components, axis=-1))

    @classmethod
    def from_sklearn(cls, model: Any) -> GaussianMixture:
        """The mixture fitted by ``sklearn.mixture.GaussianMixture`` (or ``BayesianGaussian
        Mixture``), for each covariance type: full, tied, diag, spherical."""
        for name in ("weights_", "means_", "covariances_", "covariance_type"):
            if not hasattr(model, name):
                raise GaussianError(f"model has no {name}: pass a fitted "
                                    "sklearn.mixture.GaussianMixture")
        means = np.asarray(model.means_, dtype=np.float64)
        cov = np.asarray(model.covariances_, dtype=np.float64)
        kind = model.covariance_type
        if kind == "full":
            components = Gaussian(means, cov)
        elif kind == "tied":
            components = Gaussian(means, np.broadcast_to(cov, (len(means), *cov.shape)))
        elif kind == "diag":
            components = Gaussian.diag(means, var=cov)
        elif kind == "spherical":
            components = Gaussian.isotropic(means, cov)
        else:
            raise GaussianError(f"unknown covariance_type {kind!r}")
        return cls(np.asarray(model.weights_, dtype=np.float64), components)

    # ------------------------------------------------------------------ properties
    @property
    def dim(self) -> int:
        """d, the dimension of the components."""
        return self.components.dim

    @property
    def n_components(self) -> int:
        """K."""
        return self.components.batch_shape[-1]

    @property
    def batch_shape(self) -> tuple[int, ...]:
        """The shape of the batch of mixtures (the weights' and components' leading axes,
        broadcast)."""
        return np.broadcast_shapes(tuple(self.weights.shape[:-1]),
                                   self.components.batch_shape[:-1])

    @property
    def ops(self) -> Any:
        """The array framework's backend (internal: that of the components)."""
        return self.components.ops

    def __repr__(self) -> str:
        return (f"GaussianMixture(K={self.n_components}, d={self.dim}, "
                f"batch_shape={self.batch_shape}, components={self.components.cov!r})")

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError("GaussianMixture is immutable; build a new one instead")

    # ------------------------------------------------------------------ densities and draws
    def component_log_prob(self, x: ArrayLike) -> Array:
        """ln π_a + ln N(x; μ_a, Σ_a), shape broadcast(x.shape[:-1], batch) + (K,)."""
        xs = self.ops.asarray(x, self.components.cov.dtype, like=self.components.mean)
        return self.log_weights + gaussian_log_prob(self.components, xs[..., None, :])

    def log_prob(self, x: ArrayLike) -> Array:
        """ln f(x) = logsumexp_a (ln π_a + ln N(x; μ_a, Σ_a)) for points x (..., d), the leading
        shape broadcasting with the batch; shape broadcast(x.shape[:-1], batch)."""
        return logsumexp(self.ops, self.component_log_prob(x))

    def sample(self, n: int, seed: Any = None) -> Array:
        """n draws per mixture, (n, *batch, d): a component a ∼ π, then X ∼ N(μ_a, Σ_a).

        Draws one point from every component and keeps the chosen one (K× the work of one
        Gaussian draw; exact and differentiable in the components' parameters).
        """
        draw = self.ops.random(seed)
        return self._draws(_check_count(n, "n"), draw)

    def _draws(self, n: int, draw: Any) -> Any:
        ops = self.ops
        xp = ops.xp
        batch = (*self.batch_shape, self.n_components)
        points = _draw(self.components, n, draw, batch)  # (n, *batch, K, d)
        k = self.n_components
        z = draw((n, *self.batch_shape, 1), self.components.cov.dtype, self.components.mean)
        u = 0.5 * (1 + ops.erf(z / math.sqrt(2)))  # uniform on (0, 1)
        cumulative = xp.cumsum(self.weights, -1) + 0 * u
        # the component: how many partial sums lie below u (monotone, so exactly one is chosen;
        # u above the rounded total picks the last)
        chosen = ops.sum(ops.cast_like(cumulative < u, u), -1)
        chosen = xp.where(chosen > k - 1, 0 * chosen + (k - 1), chosen)
        labels = ops.asarray(np.arange(k), self.components.cov.dtype, like=points)
        onehot = ops.cast_like(chosen[..., None] == labels, points)
        return ops.sum(points * onehot[..., None], -2)

    # ------------------------------------------------------------------ moments
    def mean(self) -> Array:
        """E[X] = Σ_a π_a μ_a, (*batch, d)."""
        return self.ops.sum(self.weights[..., None] * self.components.mean, -2)

    def covariance(self) -> Array:
        """Cov[X] = Σ_a π_a (Σ_a + (μ_a − m)(μ_a − m)ᵀ), (*batch, d, d): the law of total
        covariance, with the means centred first (no cancellation)."""
        ops = self.ops
        centred = self.components.mean - self.mean()[..., None, :]
        outer = centred[..., :, None] * centred[..., None, :]
        w = self.weights[..., None, None]
        return ops.sum(w * (self.components.covariance_matrix + outer), -3)

    def moment_matched(self) -> Gaussian:
        """The Gaussian with the mixture's mean and covariance (the KL(f‖·)-closest Gaussian)."""
        return Gaussian(self.mean(), self.covariance())

    def entropy_bounds(self) -> tuple[Array, Array]:
        """(lower, upper) on the differential entropy H(f), each (*batch):

        lower = −Σ_a π_a ln Σ_b π_b z_ab,  z_ab = N(μ_a; μ_b, Σ_a + Σ_b) = ∫ f_a f_b
            (Jensen: E_{f_a}[ln f] ≤ ln E_{f_a}[f]);
        upper = Σ_a π_a (−ln π_a + H(f_a))  (H(f) ≤ H(a) + H(X | a)).
        Both are attained for one component (Huber, Bailey, Durrant-Whyte & Hanebeck 2008).
        """
        ops = self.ops
        cross = log_overlaps(self.components, self.components)
        inner = logsumexp(ops, self.log_weights[..., None, :] + cross)
        lower = -ops.sum(self.weights * inner, -1)
        plogp = ops.xp.where(self.weights > 0, self.weights * self.log_weights,
                             0 * self.weights)
        upper = ops.sum(self.weights * entropy(self.components) - plogp, -1)
        return lower, upper


def log_overlaps(f: Gaussian, g: Gaussian) -> Any:
    """ln ∫ f_a g_b = ln N(μ_a; μ_b, Σ_a + Σ_b) for components f (*B, K) and g (*B, L):
    shape (*B, K, L). Σ_a + Σ_b is formed densely (O(d³) per pair)."""
    k, m = f.batch_shape[-1], g.batch_shape[-1]
    fa = f.reshape(*f.batch_shape[:-1], k, 1)
    gb = g.reshape(*g.batch_shape[:-1], 1, m)
    joint = Gaussian(gb.mean, fa.covariance_matrix + gb.covariance_matrix)
    return gaussian_log_prob(joint, fa.mean)


def logsumexp(ops: Any, x: Any) -> Any:
    """ln Σ exp(x) over the last axis, exact for every finite x (and −inf where all are)."""
    xp = ops.xp
    top = ops.amin(-x, (-1,), keepdims=True)  # −max
    top = xp.where(xp.isfinite(top), top, 0 * top)
    return xp.log(ops.sum(xp.exp(x + top), -1)) - top[..., 0]


def _check_weights(w: np.ndarray) -> None:
    if not np.all(np.isfinite(w)):
        where = first_true(~np.isfinite(w))
        raise NonFiniteError(f"weights have a non-finite entry at index {where}")
    if np.any(w < 0):
        where = first_true(w < 0)
        raise GaussianError(f"weights must be ≥ 0; weights{list(where)} = {w[where]!r}")
    total = w.sum(-1)
    off = np.abs(total - 1) > WEIGHT_SUM_TOLERANCE
    if np.any(off):
        where = first_true(off)
        at = f" at batch index {where}" if where else ""
        raise GaussianError(f"weights must sum to 1 (within {WEIGHT_SUM_TOLERANCE:g}) along "
                            f"the last axis; they sum to {float(np.asarray(total)[where])!r}"
                            f"{at}")

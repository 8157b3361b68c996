"""Gaussians from other libraries' distribution objects, read through their public attributes.

- ``torch.distributions.MultivariateNormal`` → :meth:`Gaussian.from_scale_tril` (``loc``,
  ``scale_tril``: the Cholesky factor torch already holds, however the MVN was built — from a
  covariance, a precision or a factor — so nothing is factorised again).
- ``torch.distributions.LowRankMultivariateNormal`` → :meth:`Gaussian.lowrank` (``loc``,
  ``cov_factor``, ``cov_diag``): Σ = W Wᵀ + diag(v), never expanded to d×d.
- ``torch.distributions.Independent(Normal(loc, scale), 1)`` → :meth:`Gaussian.diag` with
  ``std=scale``.
- ``torch.distributions.Normal`` → a Gaussian with d = 1 (``loc[..., None]``, ``std=scale``).
- ``scipy.stats.multivariate_normal(mean, cov)`` (frozen) → ``Gaussian(mean, cov)``.

Batch shapes are kept (a torch batch_shape is the Gaussian's batch_shape), tensors keep their
dtype, device and autograd graph. torch broadcasts a distribution's parameters with ``expand``
(stride 0, no copy); a covariance shared across the batch stays shared here — one Cholesky
factor, not one per mean — because those batch dimensions are read back at size 1.

Anything else raises :class:`~gaussdiv.GaussianError` (a ``ValueError``) naming the type and
the supported ones. The library's functions accept these objects directly (converted once, by
these functions). :func:`to_torch` and :func:`to_scipy` go the other way. Importing this module
imports neither torch nor scipy.stats.
"""

from __future__ import annotations

import sys
from typing import Any

from gaussdiv.errors import GaussianError
from gaussdiv.gaussian import Gaussian

_TORCH_SUPPORTED = ("torch.distributions.MultivariateNormal, LowRankMultivariateNormal, "
                    "Independent(Normal, reinterpreted_batch_ndims=1) or Normal")


def from_torch(dist: Any) -> Gaussian:
    """The Gaussian of a ``torch.distributions`` normal, with the same batch shape.

    Supported: ``MultivariateNormal`` (any batch shape, event (d,)), ``LowRankMultivariateNormal``,
    ``Independent(Normal, 1)`` (a diagonal Gaussian, event (d,)) and ``Normal`` (event (), read
    as d = 1). Raises :class:`~gaussdiv.GaussianError` for any other distribution.
    """
    if "torch" not in sys.modules:  # then ``dist`` cannot be a torch distribution
        raise _unsupported(dist, _TORCH_SUPPORTED)
    from torch import distributions as td

    if isinstance(dist, td.MultivariateNormal):
        return Gaussian.from_scale_tril(dist.loc, _unexpanded(dist.scale_tril, 2))
    if isinstance(dist, td.LowRankMultivariateNormal):
        return Gaussian.lowrank(dist.loc, _unexpanded(dist.cov_factor, 2),
                                _unexpanded(dist.cov_diag, 1))
    if isinstance(dist, td.Normal):
        return Gaussian.diag(dist.loc[..., None], std=_unexpanded(dist.scale, 0)[..., None])
    if isinstance(dist, td.Independent) and isinstance(dist.base_dist, td.Normal):
        if dist.reinterpreted_batch_ndims != 1:
            raise GaussianError(
                "Independent(Normal) is a Gaussian with a vector event only for "
                f"reinterpreted_batch_ndims=1; got {dist.reinterpreted_batch_ndims} "
                f"(event_shape {tuple(dist.event_shape)}); reshape the Normal's loc and scale to "
                "(..., d) and use Independent(Normal(loc, scale), 1)")
        return Gaussian.diag(dist.base_dist.loc, std=_unexpanded(dist.base_dist.scale, 1))
    raise _unsupported(dist, _TORCH_SUPPORTED)


def from_scipy(frozen: Any) -> Gaussian:
    """The Gaussian of a frozen ``scipy.stats.multivariate_normal(mean, cov)`` (NumPy, no batch).

    Reads the public ``mean`` and ``cov``; a singular covariance (``allow_singular=True``) is
    rejected with :class:`~gaussdiv.NotPositiveDefiniteError`.
    """
    from scipy import stats

    if not isinstance(frozen, type(stats.multivariate_normal(mean=[0.0]))):
        raise _unsupported(frozen, "a frozen scipy.stats.multivariate_normal(mean, cov)")
    return Gaussian(frozen.mean, frozen.cov)


def to_torch(g: Gaussian) -> Any:
    """The ``torch.distributions`` normal of a Gaussian, with its batch shape: diagonal →
    ``Independent(Normal(loc, std), 1)``, low-rank → ``LowRankMultivariateNormal``, a precision
    → ``MultivariateNormal(precision_matrix=Λ)``, every other structure →
    ``MultivariateNormal(scale_tril=L)`` (the structure's own factor where it has one).
    NumPy Gaussians are converted with ``torch.as_tensor``; ``from_torch`` reads each back."""
    import torch
    from torch import distributions as td

    from gaussdiv.structures import DiagonalCovariance, FullPrecision, LowRankCovariance

    def tensor(a: Any) -> Any:
        return a if isinstance(a, torch.Tensor) else torch.as_tensor(a.copy())

    if not isinstance(g, Gaussian):
        raise TypeError(f"to_torch takes a gaussdiv.Gaussian, got {type(g).__name__}")
    if g.ops.name not in ("numpy", "torch"):
        raise GaussianError(f"to_torch takes NumPy or torch Gaussians; this one holds "
                            f"{g.ops.name} arrays")
    loc = tensor(g.ops.xp.broadcast_to(g.mean, (*g.batch_shape, g.dim)))
    cov = g.cov
    if isinstance(cov, DiagonalCovariance):
        return td.Independent(td.Normal(loc, tensor(cov.std()).expand(loc.shape)), 1)
    if isinstance(cov, LowRankCovariance):
        return td.LowRankMultivariateNormal(loc, tensor(cov.factor), tensor(cov.var))
    if isinstance(cov, FullPrecision):
        return td.MultivariateNormal(loc, precision_matrix=tensor(cov.side_matrix()))
    return td.MultivariateNormal(loc, scale_tril=tensor(g.scale_tril))


def to_scipy(g: Gaussian) -> Any:
    """A frozen ``scipy.stats.multivariate_normal(mean, cov)`` of one (unbatched) Gaussian."""
    from scipy import stats

    if not isinstance(g, Gaussian):
        raise TypeError(f"to_scipy takes a gaussdiv.Gaussian, got {type(g).__name__}")
    if g.batch_shape:
        raise GaussianError(f"to_scipy takes one Gaussian (scipy's multivariate_normal has no "
                            f"batch); this one has batch shape {g.batch_shape}: index it, "
                            "e.g. to_scipy(g[0])")
    return stats.multivariate_normal(g.ops.to_numpy(g.mean), g.ops.to_numpy(g.covariance_matrix))


def _unexpanded(tensor: Any, core_ndim: int) -> Any:
    """A view of ``tensor`` with size 1 along the batch dimensions torch expanded (stride 0).

    The result broadcasts back to ``tensor``; the mean keeps the full batch shape, so the
    Gaussian's batch shape is the distribution's. The last ``core_ndim`` dimensions are kept.
    """
    batch_ndim = tensor.dim() - core_ndim
    index = tuple(slice(0, 1) if stride == 0 and size > 1 else slice(None)
                  for size, stride in zip(tensor.shape[:batch_ndim], tensor.stride()[:batch_ndim],
                                          strict=True))
    return tensor[index]


def _unsupported(obj: Any, supported: str) -> GaussianError:
    kind = type(obj)
    what = kind.__name__
    if kind.__name__ == "Independent":
        what += f"({type(getattr(obj, 'base_dist', None)).__name__})"
    return GaussianError(f"cannot build a Gaussian from {kind.__module__}.{what}; "
                         f"supported: {supported}")

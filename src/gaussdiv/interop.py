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
from typing import TYPE_CHECKING, Any

from gaussdiv.errors import GaussianError, NotPositiveDefiniteError
from gaussdiv.gaussian import Gaussian

if TYPE_CHECKING:
    from scipy.stats._multivariate import multivariate_normal_frozen
    from torch.distributions import Distribution

_TORCH_SUPPORTED = ("torch.distributions.MultivariateNormal, LowRankMultivariateNormal, "
                    "Independent(Normal, reinterpreted_batch_ndims=1) or Normal")


def from_torch(dist: Any) -> Gaussian:
    """The Gaussian of a ``torch.distributions`` normal, with the same batch shape.

    Read through the public parameters, without refactorising: the same density N(x; μ, Σ),
    eq. (4). Every gaussdiv function of Gaussians also takes these objects directly.

    Args:
        dist: a ``MultivariateNormal`` (any batch shape, event (d,)),
            ``LowRankMultivariateNormal``, ``Independent(Normal, 1)`` (a diagonal Gaussian,
            event (d,)) or ``Normal`` (event (), read as d = 1).

    Returns:
        A :class:`~gaussdiv.Gaussian` of batch shape ``dist.batch_shape`` holding torch tensors
        of the distribution's dtype and device, in the autograd graph: a full covariance from
        ``scale_tril`` (however the MVN was built), a low-rank W Wᵀ + diag(v), or a diagonal.
        A parameter torch expanded over the batch (stride 0) stays shared.

    Raises:
        GaussianError: any other distribution (or object), or ``Independent(Normal)`` with
            ``reinterpreted_batch_ndims`` other than 1.
        NonFiniteError: a parameter has a NaN or infinite entry (possible with
            ``validate_args=False``).
        NotPositiveDefiniteError: a scale or factor is not positive (likewise).

    Examples:
        >>> import torch, gaussdiv
        >>> mvn = torch.distributions.MultivariateNormal(torch.zeros(3, 2), torch.eye(2))
        >>> g = gaussdiv.from_torch(mvn)
        >>> g.batch_shape, g.dim, type(g.cov).__name__, g.dtype
        ((3,), 2, 'FullCovariance', torch.float32)
        >>> normal = torch.distributions.Normal(torch.ones(2), torch.ones(2))
        >>> diag = torch.distributions.Independent(normal, 1)
        >>> type(gaussdiv.from_torch(diag).cov).__name__
        'DiagonalCovariance'
        >>> gaussdiv.kl(diag, mvn)  # converted by kl itself: ½ ‖μ₁ − μ₂‖² = 1
        tensor([1., 1., 1.])
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

    Reads the public ``mean`` and ``cov``: ``Gaussian(frozen.mean, frozen.cov)``, the same
    density N(x; μ, Σ), eq. (4). Every gaussdiv function of Gaussians also takes frozen
    objects directly.

    Args:
        frozen: a frozen ``scipy.stats.multivariate_normal``.

    Returns:
        An unbatched :class:`~gaussdiv.Gaussian` of NumPy float64 arrays with a full
        covariance, dimension d = ``len(frozen.mean)``.

    Raises:
        GaussianError: ``frozen`` is not a frozen ``multivariate_normal``.
        NotPositiveDefiniteError: its covariance is singular (``allow_singular=True``).
        ImportError: SciPy is not installed.

    Examples:
        >>> import numpy as np, gaussdiv
        >>> from scipy import stats
        >>> frozen = stats.multivariate_normal([0.0, 1.0], [[2.0, 0.0], [0.0, 1.0]])
        >>> g = gaussdiv.from_scipy(frozen)
        >>> g.batch_shape, g.dim
        ((), 2)
        >>> bool(np.isclose(gaussdiv.log_prob(g, [1.0, 1.0]), frozen.logpdf([1.0, 1.0])))
        True
    """
    from scipy import stats

    if not isinstance(frozen, type(stats.multivariate_normal(mean=[0.0]))):
        raise _unsupported(frozen, "a frozen scipy.stats.multivariate_normal(mean, cov)")
    return Gaussian(frozen.mean, frozen.cov)


def to_torch(g: Gaussian) -> Distribution:
    """The ``torch.distributions`` normal of a Gaussian, with its batch shape.

    The same density N(x; μ, Σ), eq. (4), in the form torch holds best for each structure.

    Args:
        g: a NumPy or torch Gaussian, batch shape B, dimension d.

    Returns:
        A distribution of batch shape B and event shape (d,): diagonal →
        ``Independent(Normal(loc, std), 1)``, low-rank → ``LowRankMultivariateNormal``, a
        precision → ``MultivariateNormal(precision_matrix=Λ)``, every other structure →
        ``MultivariateNormal(scale_tril=L)`` (the structure's own factor where it has one;
        dense d×d for a Kronecker product). Torch tensors are used as they are (dtype, device,
        graph); NumPy arrays are copied with ``torch.as_tensor`` (same dtype).
        :func:`from_torch` reads each back.

    Raises:
        TypeError: g is not a Gaussian.
        GaussianError: g holds arrays of another framework (JAX).
        NotPositiveDefiniteError: g is semidefinite (``Gaussian.semidefinite``):
            torch.distributions has no degenerate normal.
        ImportError: torch is not installed.

    Examples:
        >>> import numpy as np, torch, gaussdiv
        >>> dist = gaussdiv.to_torch(gaussdiv.Gaussian(np.zeros(2), np.eye(2)))
        >>> type(dist).__name__, dist.loc.dtype
        ('MultivariateNormal', torch.float64)
        >>> round(float(dist.log_prob(torch.zeros(2))), 6)  # −½ (2 ln 2π) = −ln 2π
        -1.837877
        >>> diag = gaussdiv.Gaussian.diag(np.zeros((4, 2)), var=np.ones((4, 2)))
        >>> type(gaussdiv.to_torch(diag)).__name__, gaussdiv.to_torch(diag).batch_shape
        ('Independent', torch.Size([4]))
    """
    import torch
    from torch import distributions as td

    from gaussdiv.structures import (
        DiagonalCovariance,
        FullPrecision,
        LowRankCovariance,
        SemidefiniteCovariance,
    )

    def tensor(a: Any) -> Any:
        return a if isinstance(a, torch.Tensor) else torch.as_tensor(a.copy())

    if not isinstance(g, Gaussian):
        raise TypeError(f"to_torch takes a gaussdiv.Gaussian, got {type(g).__name__}")
    if g.ops.name not in ("numpy", "torch"):
        raise GaussianError(f"to_torch takes NumPy or torch Gaussians; this one holds "
                            f"{g.ops.name} arrays")
    if isinstance(g.cov, SemidefiniteCovariance):
        raise NotPositiveDefiniteError(
            "to_torch: g has a semidefinite covariance (Gaussian.semidefinite), and "
            "torch.distributions has no degenerate multivariate normal (MultivariateNormal "
            "needs Σ positive definite); to_scipy keeps it (allow_singular=True)")
    loc = tensor(g.ops.xp.broadcast_to(g.mean, (*g.batch_shape, g.dim)))
    cov = g.cov
    if isinstance(cov, DiagonalCovariance):
        return td.Independent(td.Normal(loc, tensor(cov.std()).expand(loc.shape)), 1)
    if isinstance(cov, LowRankCovariance):
        return td.LowRankMultivariateNormal(loc, tensor(cov.factor), tensor(cov.var))
    if isinstance(cov, FullPrecision):
        return td.MultivariateNormal(loc, precision_matrix=tensor(cov.side_matrix()))
    return td.MultivariateNormal(loc, scale_tril=tensor(g.scale_tril))


def to_scipy(g: Gaussian) -> multivariate_normal_frozen:
    """A frozen ``scipy.stats.multivariate_normal(mean, cov)`` of one (unbatched) Gaussian.

    The same density N(x; μ, Σ), eq. (4), with Σ formed as a dense d×d matrix whatever the
    structure; a semidefinite Gaussian (``Gaussian.semidefinite``) with
    ``allow_singular=True``, SciPy's degenerate normal (its density on μ + range(Σ)).

    Args:
        g: an unbatched Gaussian of any framework and structure (its arrays are copied to the
            host as NumPy).

    Returns:
        A frozen ``multivariate_normal`` with ``mean`` μ (d,) and ``cov`` Σ (d, d) as NumPy
        arrays; :func:`from_scipy` reads it back.

    Raises:
        TypeError: g is not a Gaussian.
        GaussianError: g is batched (index it first, e.g. ``to_scipy(g[0])``).
        ImportError: SciPy is not installed.

    Examples:
        >>> import numpy as np, gaussdiv
        >>> frozen = gaussdiv.to_scipy(gaussdiv.Gaussian.diag(np.zeros(2), var=[1.0, 4.0]))
        >>> frozen.cov
        array([[1., 0.],
               [0., 4.]])
        >>> round(float(frozen.logpdf([0.0, 0.0])), 6)  # −½ (2 ln 2π + ln 4) = −ln 4π
        -2.531024
    """
    from scipy import stats

    if not isinstance(g, Gaussian):
        raise TypeError(f"to_scipy takes a gaussdiv.Gaussian, got {type(g).__name__}")
    if g.batch_shape:
        raise GaussianError(f"to_scipy takes one Gaussian (scipy's multivariate_normal has no "
                            f"batch); this one has batch shape {g.batch_shape}: index it, "
                            "e.g. to_scipy(g[0])")
    from gaussdiv.structures import SemidefiniteCovariance

    return stats.multivariate_normal(g.ops.to_numpy(g.mean), g.ops.to_numpy(g.covariance_matrix),
                                     allow_singular=isinstance(g.cov, SemidefiniteCovariance))


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

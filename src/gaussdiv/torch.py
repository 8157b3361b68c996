"""Opt-in: ``torch.distributions.kl_divergence`` computed by gaussdiv for Gaussian pairs.

>>> import gaussdiv.torch
>>> gaussdiv.torch.register()  # doctest: +SKIP

After :func:`register`, ``kl_divergence(p, q)`` for every ordered pair of
``MultivariateNormal``, ``LowRankMultivariateNormal`` and ``Independent(Normal, 1)`` (9 pairs)
returns ``gaussdiv.kl(from_torch(p), from_torch(q))``: differentiable, same dtype and device,
batch shapes broadcast, ≥ 0 and accurate when P ≈ Q (torch's own formulas are the textbook sum,
which can come out negative there). That adds the 4 pairs torch lacks — ``Independent(Normal)``
against either multivariate normal, both ways (pytorch issues #13545, #32406).

Only the Gaussian ``Independent`` is taken over. For any other base distribution, or another
``reinterpreted_batch_ndims``, ``Independent`` vs ``Independent`` keeps torch's rule (sum the
base distributions' KL over the reinterpreted dimensions; NotImplementedError when those counts
differ), and ``Independent`` vs a multivariate normal raises NotImplementedError as before.

Differences from torch's own formulas: inputs are validated (a NaN or a non-positive-definite
covariance raises a :class:`~gaussdiv.GaussianError`, a ``ValueError``; so does a mismatch of
event shapes, as in torch), which reads values on the host once per call.

Only ``kl_divergence`` is replaced: torch's own ``entropy``, ``log_prob`` and ``rsample`` of
these distributions are unchanged (they do not cancel the way KL does; gaussdiv's equal them to
rounding, ``tests/test_ecosystem.py``).

:func:`register` is idempotent and lasts for the process: torch has no public way to remove an
entry from its KL registry, so there is no ``unregister``. To get torch's own value for a pair,
compute it in a process that has not called :func:`register`.
"""

from __future__ import annotations

import torch
from torch.distributions import (
    Independent,
    LowRankMultivariateNormal,
    MultivariateNormal,
    Normal,
    kl_divergence,
    register_kl,
)

from gaussdiv.divergences.kl import kl
from gaussdiv.interop import from_torch

__all__ = ["register"]

_TYPES = (MultivariateNormal, LowRankMultivariateNormal, Independent)


def register() -> None:
    """Route ``torch.distributions.kl_divergence`` for the 9 Gaussian pairs to gaussdiv.

    For every ordered pair of ``MultivariateNormal``, ``LowRankMultivariateNormal`` and
    ``Independent(Normal, 1)``, ``kl_divergence(p, q)`` then returns
    ``gaussdiv.kl(from_torch(p), from_torch(q))``, the closed form of eq. (23) computed without
    cancellation: ≥ 0 and accurate when P ≈ Q, differentiable, in the inputs' dtype and device,
    batch shapes broadcast. Idempotent; it lasts for the process (torch has no public way to
    remove a rule, so there is no ``unregister``). An ``Independent`` of another base or
    ``reinterpreted_batch_ndims`` keeps torch's own rule against another ``Independent``, and
    has none against a multivariate normal.

    Returns:
        None. Only torch's KL registry changes (``entropy``, ``log_prob``, ``rsample`` are
        torch's own).

    Raises:
        NonFiniteError: not by ``register`` itself (it raises nothing), but by a later
            ``kl_divergence`` of a registered pair with a NaN or infinite parameter (the
            errors below likewise; all are ``ValueError``).
        NotPositiveDefiniteError: a scale or covariance that is not positive definite.
        DimensionMismatchError: the event shapes differ.
        ShapeError: the batch shapes do not broadcast.
        NotImplementedError: an ``Independent`` pair that gaussdiv does not handle (another
            base, or ``reinterpreted_batch_ndims`` ≠ 1) and torch has no rule for.

    Examples:
        >>> import torch, gaussdiv.torch
        >>> from torch.distributions import Independent, MultivariateNormal, Normal
        >>> gaussdiv.torch.register()  # doctest: +SKIP
        >>> q_z = Independent(Normal(torch.zeros(8, 3), torch.ones(8, 3)), 1)
        >>> p_z = MultivariateNormal(torch.zeros(3), scale_tril=2.0 * torch.eye(3))
        >>> torch.distributions.kl_divergence(q_z, p_z).shape  # doctest: +SKIP
        torch.Size([8])
    """
    for type_p in _TYPES:
        for type_q in _TYPES:
            register_kl(type_p, type_q)(_kl_gaussian)


def _kl_gaussian(p: torch.distributions.Distribution,
                 q: torch.distributions.Distribution) -> torch.Tensor:
    if _is_gaussian(p) and _is_gaussian(q):
        return kl(from_torch(p), from_torch(q))
    if isinstance(p, Independent) and isinstance(q, Independent):
        # torch's own Independent–Independent rule, for the bases gaussdiv does not handle.
        if p.reinterpreted_batch_ndims != q.reinterpreted_batch_ndims:
            raise NotImplementedError(
                f"No KL(p || q) is implemented for Independent distributions reinterpreting "
                f"{p.reinterpreted_batch_ndims} and {q.reinterpreted_batch_ndims} batch dims")
        result = kl_divergence(p.base_dist, q.base_dist)
        ndims = p.reinterpreted_batch_ndims
        return result.reshape(*result.shape[:result.dim() - ndims], -1).sum(-1)
    raise NotImplementedError(
        f"No KL(p || q) is implemented for p type {_describe(p)} and q type {_describe(q)}; "
        "gaussdiv handles Independent only with a Normal base and reinterpreted_batch_ndims=1")


def _is_gaussian(dist: torch.distributions.Distribution) -> bool:
    if isinstance(dist, Independent):
        return isinstance(dist.base_dist, Normal) and dist.reinterpreted_batch_ndims == 1
    return True  # MultivariateNormal or LowRankMultivariateNormal: the registered types


def _describe(dist: torch.distributions.Distribution) -> str:
    if isinstance(dist, Independent):
        return (f"Independent({type(dist.base_dist).__name__}, "
                f"reinterpreted_batch_ndims={dist.reinterpreted_batch_ndims})")
    return type(dist).__name__

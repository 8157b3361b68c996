"""The one refinement driver: fast values everywhere, the exact route where they cancel.

A pair relation gives fast terms for the whole batch; the driver decides, per batch element,
whether the fast excess could have lost more than three bits relative to what it is added to,
gathers just those elements of both structures (the batch protocol of
:class:`gaussdiv.structures.Covariance`), asks the relation's exact route for them, and puts
the values back. One host read per call (the mask) on NumPy and torch. Where values are traced
(``jax.jit``, torch.func transforms) nothing can be read: every element goes through the exact
route and a select keeps the ones that need it.

The recomputation runs without gradient tracking, and the result carries the derivatives of the
fast formula (equal in exact arithmetic, and smooth where eigenvalue routes are not: P = Q).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

import numpy as np

from gaussdiv.errors import AccuracyWarning
from gaussdiv.relations.base import PairRelation, PairTerms
from gaussdiv.structures import Covariance

#: When excess + offset is at least this fraction of its rounding magnitude, at most three bits
#: were lost to cancellation and the fast value is kept.
CANCELLATION_RATIO = 1 / 8

Exact = Callable[[Covariance, Covariance, Any], Any]
Note = Callable[[Covariance, Covariance], "str | None"]


def refined_excess(relation: PairRelation, p: Covariance, q: Covariance, terms: PairTerms,
                   offset: Any = 0) -> Any:
    """KL's excess ``terms.excess`` (*batch), recomputed by ``relation.exact_excess`` where it
    cancels (see :func:`refine_cancelling`)."""
    return refine_cancelling(terms.excess, terms.magnitude, p, q, relation.exact_excess,
                             offset, relation.accuracy_note)


def refine_cancelling(fast: Any, magnitude: Any, p: Covariance, q: Covariance, exact: Exact,
                      offset: Any = 0, note: Note | None = None,
                      ratio: float = CANCELLATION_RATIO) -> Any:
    """``fast`` (*batch), recomputed by ``exact`` where it cancels.

    ``fast`` is a quick evaluation whose rounding error is a few u × ``magnitude``; ``offset``
    ≥ 0 is the term it is added to (a Mahalanobis term): cancellation only matters relative to
    that sum. ``offset`` may have more batch axes than the covariance pair (one pair serving
    many means); then an element is refined when any of its offsets needs it.
    ``exact(p_flat, q_flat, fast_flat)`` gets both structures gathered to the elements that
    need it, flattened to one batch axis, and returns their values; ``note(p, q)``, if given,
    says what holds instead when ``exact`` is not exact for this pair (warned at run time).
    ``ratio``: the fraction of ``magnitude + offset`` below which ``fast + offset`` is
    recomputed (default :data:`CANCELLATION_RATIO`, three bits).
    """
    ops = p.ops
    shape = tuple(fast.shape)
    offset = _smallest_per_element(ops, offset, shape)
    cancels = fast + offset < ratio * (magnitude + offset)
    with ops.no_grad():
        plain = ops.stop_gradient(fast)
        if ops.is_traced(plain) or ops.is_traced(cancels):
            def every_element() -> Any:
                values = exact(p.take_flat(shape, slice(None)), q.take_flat(shape, slice(None)),
                               plain.reshape(-1))
                return ops.cast_like(ops.xp.where(cancels, values.reshape(shape), plain), plain)

            refined = ops.when_any(cancels, every_element, plain)
        else:
            mask = np.asarray(ops.to_numpy(cancels), dtype=bool).reshape(-1)
            if not mask.any():
                return fast
            message = note(p, q) if note is not None else None
            if message is not None:
                warnings.warn(message, AccuracyWarning, stacklevel=4)
            flat = plain.reshape(-1)
            if mask.all():  # views, no gather (a batch of near-identical pairs)
                values = exact(p.take_flat(shape, slice(None)), q.take_flat(shape, slice(None)),
                               flat)
                refined = values.reshape(shape)
            else:
                rows = ops.index_array(np.flatnonzero(mask), like=flat)
                values = exact(p.take_flat(shape, rows), q.take_flat(shape, rows), flat[rows])
                refined = ops.scatter(flat, rows, values).reshape(shape)
    return ops.with_gradient_of(refined, fast)


def _smallest_per_element(ops: Any, offset: Any, shape: tuple[int, ...]) -> Any:
    """``offset`` reduced by min to a shape broadcastable with ``shape``."""
    if not hasattr(offset, "shape") or tuple(offset.shape) == shape:
        return offset
    extra = len(offset.shape) - len(shape)
    if extra > 0:
        offset = ops.amin(offset, tuple(range(extra)), keepdims=False)
    elif extra < 0:  # broadcasting aligns shapes on the right
        offset = offset.reshape((1,) * -extra + tuple(offset.shape))
    axes = tuple(i for i, (a, b) in enumerate(zip(shape, offset.shape, strict=True))
                 if a == 1 and b != 1)
    return ops.amin(offset, axes, keepdims=True) if axes else offset

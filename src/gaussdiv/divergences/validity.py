"""The last check every divergence makes: never return a negative or NaN value."""

from __future__ import annotations

from typing import Any

import numpy as np

from gaussdiv.errors import NotPositiveDefiniteError
from gaussdiv.gaussian import Gaussian


def check_valid(value: Any, p: Gaussian, q: Gaussian, what: str) -> None:
    """Raise where ``value`` is negative or NaN: with validated inputs that only happens when an
    input is numerically singular beyond what its factorisation caught; say which one (O(d²)
    per structure at most, never a d×d eigendecomposition). Skipped under tracing."""
    ops = p.ops
    if ops.is_traced(value) or ops.min_value(value) >= 0:
        return
    bounds = {name: float(np.max(ops.to_numpy(g.cov.condition_bound()), initial=1.0))
              for name, g in (("p", p), ("q", q))}
    worst = max(bounds, key=lambda k: bounds[k])
    cov = (p if worst == "p" else q).cov
    kind = getattr(cov, "describes", "covariance")
    raise NotPositiveDefiniteError(
        f"{worst}'s {kind} is numerically singular: condition number at least "
        f"{bounds[worst]:.3g}, beyond what {np.dtype(cov.dtype).name} resolves "
        f"(1/eps = {1 / np.finfo(cov.dtype).eps:.3g}), so {what} is undefined in this "
        "precision (add jitter to the diagonal or use a shrinkage estimate)")

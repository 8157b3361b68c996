"""Fitting a Gaussian to a data set: :func:`fit`, and the estimators behind it.

=================  =======================================================================
estimator          mean and covariance of the n rows xᵢ (weights wᵢ, all 1 by default)
=================  =======================================================================
``mle``            x̄ = Σ wᵢxᵢ / Σ wᵢ;  Σ̂ = Σ wᵢ(xᵢ − x̄)(xᵢ − x̄)ᵀ / Σ wᵢ (maximum likelihood,
                   ``np.cov(x.T, bias=True)``, scikit-learn's ``EmpiricalCovariance``)
``unbiased``       the same sum divided by V₁ − V₂/V₁ (V₁ = Σ wᵢ, V₂ = Σ wᵢ²): n − 1 for
                   unit weights, ``np.cov(x.T, aweights=w)`` for reliability weights
``ledoit_wolf``    scikit-learn's ``LedoitWolf`` / ``OAS``: the sample covariance shrunk
``oas``            towards a multiple of the identity, which keeps it well conditioned when
                   there are few rows per dimension
``auto``           ``mle`` from :data:`AUTO_ROWS_PER_DIM` rows per dimension on (n ≥ 10·d),
                   ``oas`` below; always ``mle`` for ``structure="diag"``
=================  =======================================================================

Shrinkage pulls every variance towards their average, so on its own it depends on the units
of the columns (a column in millimetres would dominate one in metres). Here it is applied to
the columns divided by ``scale`` — by default each column's own standard deviation — and the
result is scaled back: the fit does not depend on the units. :func:`gaussdiv.compare` passes
the pooled scale of both data sets, so both are shrunk in the same coordinates.

``structure="diag"`` fits N(x̄, diag(σ̂²)) with the per-column variances (``mle`` or
``unbiased``).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from gaussdiv.backends import NUMPY
from gaussdiv.errors import NotPositiveDefiniteError, SampleError
from gaussdiv.gaussian import Gaussian
from gaussdiv.inference.samples import Samples, as_samples

ESTIMATORS = ("auto", "mle", "unbiased", "ledoit_wolf", "oas")
SHRINKAGE = ("ledoit_wolf", "oas")
STRUCTURES = ("full", "diag")
#: ``auto`` fits by maximum likelihood from this many rows per dimension on, else by OAS.
AUTO_ROWS_PER_DIM = 10


def fit(data: Any, *, estimator: str = "auto", structure: str = "full", weights: Any = None,
        scale: Any = None) -> Gaussian:
    """The Gaussian N(x̄, Σ̂) fitted to the rows xᵢ of ``data``.

    With weights wᵢ (all 1 by default): x̄ = Σᵢ wᵢxᵢ / Σᵢ wᵢ and, for ``mle``,
    Σ̂ = Σᵢ wᵢ(xᵢ − x̄)(xᵢ − x̄)ᵀ / Σᵢ wᵢ; ``unbiased`` divides the same sum by V₁ − V₂/V₁
    (V₁ = Σ wᵢ, V₂ = Σ wᵢ²: n − 1 for unit weights); ``ledoit_wolf`` and ``oas`` shrink the
    sample covariance towards a multiple of I in the coordinates x / ``scale`` (see the
    module docstring, which also says what ``auto`` picks).

    Args:
        data: (n, d) observations: a NumPy array, torch tensor, JAX array, nested list, or a
            pandas DataFrame (its column labels become ``feature_names``); a 1-D array is n
            observations of one feature.
        estimator: ``"auto"``, ``"mle"``, ``"unbiased"``, ``"ledoit_wolf"`` or ``"oas"`` (see
            the module docstring; ``ledoit-wolf`` is accepted too).
        structure: ``"full"`` (a full covariance) or ``"diag"`` (per-column variances).
        weights: (n,) non-negative weights of the rows (``mle`` and ``unbiased`` only).
        scale: (d,) column scales for shrinkage (default: the columns' standard deviations;
            a constant column takes the geometric mean of the others').

    Returns:
        An unbatched Gaussian (batch shape ()) in d dimensions, held as a
        :class:`FullCovariance` (``"full"``) or :class:`DiagonalCovariance` (``"diag"``),
        in the framework of ``data`` (DataFrames and lists: NumPy) and in its floating dtype
        (integers: float64). ``mle`` and ``unbiased`` fits of torch tensors are computed by
        torch, so gradients flow back to ``data``.

    Raises:
        SampleError: data that is not (n, d) real numbers, a non-finite value, fewer than 2
            rows, a constant column, n ≤ d or a column that is a linear combination of the
            others (the last two for a full covariance without shrinkage), bad weights (or
            weights with shrinkage), or a bad ``scale`` — each named.
        ValueError: an unknown ``estimator`` or ``structure``, or shrinkage with
            ``structure="diag"``.
        ImportError: ``ledoit_wolf`` or ``oas`` (also through ``auto``) without scikit-learn.

    Cost: O(n d²) for the covariance and as much for the rank check of a full fit.

    Examples:
        >>> import numpy as np, gaussdiv
        >>> x = [[0.0, 0.0], [2.0, 0.0], [0.0, 2.0], [2.0, 2.0]]    # x̄ = (1, 1), each ±1
        >>> g = gaussdiv.fit(x, estimator="mle")
        >>> g.mean.tolist(), g.covariance_matrix.tolist()
        ([1.0, 1.0], [[1.0, 0.0], [0.0, 1.0]])
        >>> gaussdiv.fit(x, estimator="unbiased").variance.tolist()  # 4 / (n − 1)
        [1.3333333333333333, 1.3333333333333333]
        >>> rng = np.random.default_rng(0)
        >>> big = gaussdiv.fit(rng.normal(size=(500, 3)), structure="diag")
        >>> big.dim, isinstance(big.cov, gaussdiv.DiagonalCovariance)
        (3, True)
    """
    return fit_samples(as_samples(data, "data"), estimator=estimator, structure=structure,
                       weights=weights, scale=scale)


def fit_samples(samples: Samples, *, estimator: str = "auto", structure: str = "full",
                weights: Any = None, scale: Any = None) -> Gaussian:
    """:func:`fit` of checked :class:`Samples` (whose ``what`` names them in messages)."""
    used = resolve(estimator, samples.n, samples.dim, structure)
    w = None if weights is None else check_weights(weights, samples.n)
    if used in SHRINKAGE and w is not None:
        raise SampleError(f"weights=: the {used} estimator takes no weights (scikit-learn's "
                          "shrinkage estimators do not); use estimator='mle' or 'unbiased'")
    check_fittable(samples, used, structure)
    try:
        return _fitted(samples, used, structure, w, scale)
    except NotPositiveDefiniteError as exc:  # full rank, yet singular in floating point
        raise singular_fit(samples.what, exc) from None


def singular_fit(what: str, exc: NotPositiveDefiniteError) -> SampleError:
    """The SampleError for data of full rank whose sample covariance the library refuses as
    numerically singular (``exc``, its error)."""
    return SampleError(f"{what}: the sample covariance is numerically singular ({exc}): some "
                       "column is a linear combination of the others up to rounding; leave it "
                       "out, or use shrinkage (estimator='oas')")


def _fitted(samples: Samples, used: str, structure: str, w: np.ndarray | None,
            scale: Any) -> Gaussian:
    """The Gaussian of :func:`fit_samples` (checked arguments, canonical estimator)."""
    if samples.ops is not NUMPY and used not in SHRINKAGE:
        return _fit_in_framework(samples, used, structure, w)
    x = samples.numpy()
    mean, cov = estimate(x, used, weights=w, scale=scale)
    dtype = samples.ops.numpy_dtype(samples.values)
    if structure == "diag":
        mean, var = _cast(samples, mean, dtype), _cast(samples, np.diagonal(cov).copy(), dtype)
        gaussian = Gaussian.diag(mean, var=var)
    else:
        gaussian = Gaussian(_cast(samples, mean, dtype), _cast(samples, cov, dtype))
    return gaussian.with_names(samples.names)


def resolve(estimator: str, n: int, d: int, structure: str = "full") -> str:
    """The estimator's canonical name; for ``auto``, the one it stands for at n rows in d
    dimensions."""
    name = str(estimator).strip().lower().replace("-", "_")
    if name not in ESTIMATORS:
        raise ValueError(f"estimator={estimator!r}: unknown; choose one of "
                         f"{', '.join(ESTIMATORS)}")
    if structure not in STRUCTURES:
        raise ValueError(f"structure={structure!r}: unknown; choose 'full' or 'diag'")
    if structure == "diag" and name in SHRINKAGE:
        raise ValueError(f"estimator={estimator!r} shrinks a full covariance; a diagonal fit "
                         "(structure='diag') takes 'mle' or 'unbiased'")
    if name != "auto":
        return name
    return "mle" if structure == "diag" or n >= AUTO_ROWS_PER_DIM * d else "oas"


def estimate(x: np.ndarray, estimator: str, *, weights: np.ndarray | None = None,
             scale: Any = None) -> tuple[np.ndarray, np.ndarray]:
    """(mean, covariance) in float64 of the rows of ``x`` (n, d) by a resolved estimator."""
    if estimator in SHRINKAGE:
        return _shrunk(x, estimator, scale)
    if weights is None:
        mean = x.mean(axis=0)
        z = x - mean
        divisor = x.shape[0] if estimator == "mle" else x.shape[0] - 1
        cov = z.T @ z / divisor
    else:
        total = weights.sum()
        mean = weights @ x / total
        z = x - mean
        divisor = total if estimator == "mle" else total - (weights @ weights) / total
        cov = (z * weights[:, None]).T @ z / divisor
    return mean, (cov + cov.T) / 2


def _shrunk(x: np.ndarray, estimator: str, scale: Any) -> tuple[np.ndarray, np.ndarray]:
    """Shrinkage in the coordinates x / scale, scaled back."""
    try:
        from sklearn.covariance import OAS, LedoitWolf
    except ImportError:
        raise ImportError(f"estimator={estimator!r} needs scikit-learn: "
                          'pip install "gaussdiv[stats]"') from None
    s = _column_scales(x) if scale is None else np.asarray(scale, dtype=np.float64)
    if s.shape != (x.shape[1],) or not np.all(np.isfinite(s) & (s > 0)):
        raise SampleError(f"scale=: need {x.shape[1]} finite positive column scales, got "
                          f"{np.asarray(scale)!r}")
    model = (LedoitWolf if estimator == "ledoit_wolf" else OAS)(store_precision=False)
    model.fit(x / s)
    cov = model.covariance_ * s[:, None] * s[None, :]
    return model.location_ * s, (cov + cov.T) / 2


def _column_scales(x: np.ndarray) -> np.ndarray:
    """The columns' standard deviations; a constant column (which shrinkage gives a positive
    variance) takes the geometric mean of the others'."""
    s = x.std(axis=0)
    constant = s == 0
    if constant.all():
        raise SampleError("data: every column is constant, so shrinkage has no scale to "
                          "shrink towards; pass scale= (the columns' units)")
    if constant.any():
        s = np.where(constant, np.exp(np.mean(np.log(s[~constant]))), s)
    return s


def check_weights(weights: Any, n: int) -> np.ndarray:
    """``weights`` as (n,) float64, finite, ≥ 0, with a positive sum; else a specific error."""
    raw = weights.detach().cpu().numpy() if hasattr(weights, "detach") else weights  # torch
    try:
        w = np.asarray(raw, dtype=np.float64)
    except (TypeError, ValueError):
        raise SampleError(f"weights=: not an array of numbers ({type(weights).__name__})") \
            from None
    if w.shape != (n,):
        raise SampleError(f"weights=: shape {w.shape}, expected ({n},): one weight per row")
    bad = np.flatnonzero(~np.isfinite(w) | (w < 0))
    if bad.size:
        raise SampleError(f"weights=: weight {bad[0]} is {w[bad[0]]}; weights must be finite "
                          "and non-negative")
    if not w.sum() > 0:
        raise SampleError("weights=: all weights are zero")
    return w


def check_fittable(samples: Samples, estimator: str, structure: str) -> None:
    """Enough rows, and no column that makes the covariance singular, named by its cause: a
    constant column, or (for a full covariance without shrinkage) one that is a linear
    combination of the others, found by column-pivoted QR of the scaled data."""
    n, d = samples.n, samples.dim
    if n < 2:
        raise SampleError(f"{samples.what}: {n} row(s); at least 2 are needed to estimate a "
                          "covariance")
    if estimator in SHRINKAGE:
        return
    x = samples.numpy()
    spread = x.std(axis=0)
    for j in np.flatnonzero(spread == 0):
        raise SampleError(f"{samples.what}: {samples.label(int(j))} is constant, so its "
                          "variance is zero; leave it out, or use shrinkage "
                          "(estimator='oas')")
    if structure == "diag":
        return
    if n <= d:
        raise SampleError(f"{samples.what}: {n} rows for {d} columns; with no more rows than "
                          "columns the sample covariance is singular; use shrinkage "
                          "(estimator='oas' or 'ledoit_wolf')")
    scaled = (x - x.mean(axis=0)) / spread
    rank = np.linalg.matrix_rank(scaled)
    if rank < d:
        from scipy.linalg import qr

        pivots = qr(scaled, mode="r", pivoting=True)[1]
        raise SampleError(f"{samples.what}: the sample covariance is singular (rank {rank} of "
                          f"{d}): {samples.label(int(pivots[-1]))} is a linear combination of "
                          "the others; leave it out, or use shrinkage (estimator='oas')")


def _cast(samples: Samples, a: np.ndarray, dtype: np.dtype) -> Any:
    """A float64 NumPy result in the data's framework and floating dtype."""
    target = dtype if dtype.kind == "f" else np.dtype(np.float64)
    return samples.ops.asarray(a.astype(target), target, like=samples.values)


def _fit_in_framework(samples: Samples, estimator: str, structure: str,
                      w: np.ndarray | None) -> Gaussian:
    """``mle``/``unbiased`` computed by the data's own framework (torch, JAX): differentiable
    with respect to the data, on its device."""
    ops, x = samples.ops, samples.values
    xp = ops.xp
    n = samples.n
    if w is None:
        mean = ops.sum(x, 0) / n
        z = x - mean
        weighted, divisor = z, float(n if estimator == "mle" else n - 1)
    else:
        wt = ops.asarray(w, ops.numpy_dtype(x), like=x)
        total = float(w.sum())
        mean = xp.matmul(wt, x) / total
        z = x - mean
        weighted = z * wt[:, None]
        divisor = total if estimator == "mle" else total - float(w @ w) / total
    if structure == "diag":
        var = ops.sum(weighted * z, 0) / divisor
        return Gaussian.diag(mean, var=var).with_names(samples.names)
    cov = xp.matmul(ops.matrix_transpose(weighted), z) / divisor
    cov = (cov + ops.matrix_transpose(cov)) / 2
    return Gaussian(mean, cov).with_names(samples.names)

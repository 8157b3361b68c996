"""The definition itself, eq. (3)/(11): KL(P‖Q) = E_{X∼P}[ln p(X)/q(X)], by sampling; and the
Jensen–Shannon divergence, which has no closed form, by the same sampling."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from gaussdiv.backends import Backend, broadcast_shapes
from gaussdiv.density import log_ratio
from gaussdiv.errors import GaussianError
from gaussdiv.gaussian import Gaussian, check_gaussian, check_pair, entry_point
from gaussdiv.numerics.series import excess_log1p
from gaussdiv.types import Array, ArrayLike

#: Sampling units per chunk in :func:`kl_mc` and :func:`js_mc`, per batch element: memory stays
#: O(chunk · batch · d).
DEFAULT_CHUNK = 65_536
#: The most draws :func:`kl_mc` and :func:`js_mc` take unless ``max_n`` says otherwise: about
#: a minute per batch element at d = 8 on one core (≈ 10⁸ draws/s), so a typo like n=10**30
#: is refused instead of running for ever.
MAX_DRAWS = 10**10
#: Draws a second, for the time estimate in the refusal.
_DRAWS_PER_SECOND = 1e8

#: The per-sample KL estimators of :func:`kl_mc` (Schulman, "Approximating KL divergence", 2020).
Estimator = Literal["k1", "k2", "k3"]
ESTIMATORS: tuple[str, ...] = ("k1", "k2", "k3")

_LN2 = math.log(2.0)


@dataclass(frozen=True)
class MonteCarloEstimate:
    """A Monte Carlo mean with its standard error.

    Returned by :func:`kl_mc`, :func:`js_mc` and :func:`mixture_kl` (``method="mc"``).

    Attributes:
        value: the sample mean, shape (*batch) (a NumPy scalar for one NumPy pair), in the
            inputs' framework and dtype.
        stderr: its standard error s/√m, ≥ 0, same shape, with s² the sample variance of the
            m i.i.d. units averaged (single draws; antithetic pairs; for :func:`js_mc`, pairs
            of one draw from P and one from Q).
        n: the number of draws per batch element (for :func:`js_mc`: from each of P and Q).

    Examples:
        >>> import numpy as np, gaussdiv
        >>> p = gaussdiv.Gaussian(np.zeros(2), np.eye(2))
        >>> q = gaussdiv.Gaussian(np.ones(2), 2 * np.eye(2))
        >>> est = gaussdiv.kl_mc(p, q, n=100_000, seed=0)
        >>> est.n, round(float(est.value), 2)  # KL(P‖Q) = ln 2 = 0.693…
        (100000, 0.69)
        >>> bool(abs(est.zscore(gaussdiv.kl(p, q))) < 4)  # within 4 standard errors
        True
    """

    value: Array
    stderr: Array
    n: int

    def zscore(self, exact: ArrayLike) -> Array:
        """(value − exact) / stderr: how many standard errors the estimate is from ``exact``."""
        return (self.value - exact) / self.stderr


@entry_point(semidefinite=True)
def sample(p: Gaussian, n: int, seed: Any = None) -> Array:
    """Draw n points from P: X = μ + S Z with S Sᵀ = Σ and Z standard normal.

    S is the structure's own square root: the Cholesky factor L of a dense Σ (L⁻ᵀ for a
    precision Λ = L Lᵀ), √v for a diagonal, [diag(√v), W] with Z of length d + k for a
    low-rank W Wᵀ + diag(v), the Kronecker product of the two factors' Cholesky factors;
    differentiable in μ and Σ (reparameterised).

    Args:
        p: the Gaussian N(μ, Σ), batch shape B, dimension d.
        n: the number of draws per batch element, a positive integer.
        seed: None (fresh randomness), a non-negative integer, or the framework's own
            generator (``np.random.Generator``, ``torch.Generator``, a ``jax.random`` key).

    Returns:
        Array of shape (n, *B, d) in the Gaussian's framework, dtype and device.

    Raises:
        TypeError: p is not a Gaussian (nor a torch / SciPy normal).
        GaussianError: n is not a positive integer; the draws would need more than 2⁶²
            bytes; seed is not one of the kinds above.

    Cost: n colourings S Z per batch element: O(d²) each for a dense Σ, O(d) diagonal,
    O(d k) low-rank, O(d (m₁ + m₂)) for a Kronecker product of m₁×m₁ and m₂×m₂ factors.

    Examples:
        >>> import numpy as np, gaussdiv
        >>> p = gaussdiv.Gaussian(np.zeros((3, 2)), np.eye(2))  # batch shape (3,), d = 2
        >>> gaussdiv.sample(p, 4, seed=0).shape
        (4, 3, 2)
        >>> x = gaussdiv.sample(gaussdiv.Gaussian([1.0], [[4.0]]), 100_000, seed=0)
        >>> np.round([x.mean(), x.var()], 1)  # μ = 1, Σ = 4
        array([1., 4.])
    """
    check_gaussian(p, "p")
    n = _check_count(n, "n")
    size = n * math.prod(p.batch_shape) * p.dim * p.cov.dtype.itemsize
    if size > 2**62:
        raise GaussianError(f"sample(n={n:.3g}) would need {size:.3g} bytes ({n:.3g} draws × "
                            f"batch shape {p.batch_shape} × d={p.dim}); draw fewer, or in "
                            "chunks")
    draw = p.cov.ops.random(seed)
    return p.cov.ops.result(_draw(p, n, draw, p.batch_shape), p.dtype)


@entry_point
def kl_mc(p: Gaussian, q: Gaussian, n: int = 100_000, seed: Any = None,
          chunk: int = DEFAULT_CHUNK, estimator: Estimator = "k1",
          antithetic: bool = False, max_n: int = MAX_DRAWS) -> MonteCarloEstimate:
    """Monte Carlo estimate of KL(P‖Q) = E_{X∼P}[ln p(X)/q(X)] (eq. 11) with its stderr.

    The definition itself, by sampling: X₁…Xₙ ∼ P, the log-ratios of eq. (10) at them
    (:func:`log_ratio`), and their sample mean with standard error s/√n. With the log-ratio
    ℓ = ln q(X) − ln p(X) at X ∼ P (note the sign: E[ℓ] = −KL), the estimate is the mean of
    one of the per-sample values

    - ``"k1"``: −ℓ = ln p(X)/q(X), the definition itself; unbiased; takes both signs; its
      variance Var_P[ℓ] ≈ 2 KL as P → Q, so its relative standard error is ≈ √(2/(n KL)).
    - ``"k2"``: ½ℓ², ≥ 0, **biased**: it estimates ½E[ℓ²] = ½(Var_P[ℓ] + KL²), which equals
      KL only to second order in P − Q. With εᵢ the eigenvalues of Σ₂⁻¹Σ₁ − I, δ = μ₁ − μ₂,
      b = SᵀΣ₂⁻¹δ and g(ε) = ε − ln(1 + ε): Var_P[ℓ] = ½Σεᵢ² + ‖b‖², and
      E[k2] − KL = ½KL² + ½Σᵢ(εᵢ²/2 − g(εᵢ)) + ½δᵀΣ₂⁻¹(Σ₁ − Σ₂)Σ₂⁻¹δ, the middle sum
      Σᵢ(εᵢ³/6 − εᵢ⁴/8 + …); for a pure mean shift exactly ½KL². Low variance near P = Q
      (stderr ∝ KL, like k3's), not in general (it can exceed k1's when P, Q are far apart).
    - ``"k3"``: (e^ℓ − 1) − ℓ, unbiased (E_P[e^ℓ] = E_P[q/p] = 1) and ≥ 0 sample by sample; its
      standard error vanishes with KL (≈ proportional to KL as P → Q, where k1's is ∝ √KL).
      Evaluated as g(e^ℓ − 1) with g(ε) = ε − ln(1 + ε) (``numerics.series.excess_log1p``, fed
      ln(1 + ε) = ℓ itself), so to full relative accuracy for every ℓ: ℓ²/2 at tiny ℓ, e^ℓ at
      ℓ ≫ 1 (inf beyond ℓ ≈ 709 in float64), −1 − ℓ at ℓ ≪ 0. Heavy-tailed: its variance
      is finite only if every eigenvalue of Σ₂⁻¹Σ₁ exceeds ½ (Q nowhere more than twice P's
      variance; E_P[(q/p)²] < ∞), and its stderr is itself reliable only above ¾.

    With ``antithetic=True`` each standard normal Z gives the two draws μ ± S Z, and the pair
    average of the per-sample values is the i.i.d. unit of the mean and its standard error. For
    k1 the log-ratio is ½ZᵀMZ + bᵀZ + c (M = SᵀΣ₂⁻¹S − I, b = SᵀΣ₂⁻¹(μ₁ − μ₂)): the odd part
    bᵀZ cancels in every pair, so at a fixed number n of draws the variance of the mean goes
    from (½ tr M² + bᵀb)/n to tr(M²)/n. It helps when the mean difference dominates (exact,
    zero variance, for Σ₁ = Σ₂) and is up to twice worse when the covariances dominate (no gain
    at all for μ₁ = μ₂, where both draws of a pair give the same value).

    Args:
        p: P = N(μ₁, Σ₁), batch shape B₁, dimension d.
        q: Q = N(μ₂, Σ₂), batch shape B₂ (broadcasts with B₁), same d and framework.
        n: draws from P per batch element, ≥ 2; with ``antithetic``, even and ≥ 4 (n/2 pairs).
        seed: as for :func:`sample`.
        chunk: sampling units (draws, or antithetic pairs) per chunk. Samples are drawn and
            reduced a chunk at a time (Chan et al.'s pairwise update of mean and sum of squared
            deviations), so memory is O(chunk · batch · d) whatever n.
        estimator: ``"k1"`` (default), ``"k2"`` or ``"k3"``.
        antithetic: draw Z and −Z in pairs.
        max_n: the largest n accepted (default :data:`MAX_DRAWS`, 10¹⁰); a larger n is refused
            with the time it would take.

    Returns:
        :class:`MonteCarloEstimate` with value and stderr of shape broadcast(B₁, B₂) (NumPy
        scalars for one NumPy pair) in the pair's framework and dtype, and n. The k1 value
        takes both signs; k2 and k3 values are ≥ 0.

    Raises:
        TypeError: p or q is not a Gaussian (nor a torch / SciPy normal).
        BackendMismatchError: p and q hold arrays of different frameworks.
        DimensionMismatchError: p and q have different d.
        ShapeError: B₁ and B₂ do not broadcast.
        GaussianError: n, chunk or max_n is not a positive integer; n > max_n; n < 2 (odd or
            < 4 with ``antithetic``); an unknown estimator; antithetic not a bool; a bad seed.

    Cost: n draws and n log-ratios: one colouring and two whitenings per draw (O(d²) for a
    dense Σ, O(d) diagonal, O(d k) low-rank, O(d (m₁ + m₂)) Kronecker), plus O(1) elementwise
    work per value; memory O(chunk · batch · d).

    Examples:
        >>> import numpy as np, gaussdiv
        >>> p = gaussdiv.Gaussian(np.zeros(2), np.eye(2))
        >>> q = gaussdiv.Gaussian(np.ones(2), 2 * np.eye(2))
        >>> exact = gaussdiv.kl(p, q)  # ½ (2 ln 2 + 1 + 1 − 2) = ln 2
        >>> est = gaussdiv.kl_mc(p, q, n=100_000, seed=0)
        >>> bool(abs(est.value - exact) < 4 * est.stderr)
        True
        >>> pairs = gaussdiv.kl_mc(p, q, n=100_000, seed=0, antithetic=True)
        >>> bool(abs(pairs.value - exact) < 4 * pairs.stderr), pairs.n
        (True, 100000)
    """
    check_pair(p, q)
    n = _check_draws(n, max_n)
    chunk = _check_count(chunk, "chunk")
    if not isinstance(estimator, str) or estimator not in ESTIMATORS:
        raise GaussianError(f"estimator must be one of {', '.join(map(repr, ESTIMATORS))}; "
                            f"got {estimator!r}")
    if not isinstance(antithetic, bool | np.bool_):
        raise GaussianError(f"antithetic must be True or False, got {antithetic!r}")
    if antithetic and (n % 2 or n < 4):
        raise GaussianError(f"n must be even and at least 4 for kl_mc with antithetic=True (n/2 "
                            f"pairs, and one pair has no standard error); got {n}")
    if n < 2:
        raise GaussianError("n must be at least 2 for kl_mc: one draw has no standard error")
    ops = p.cov.ops
    draw = ops.random(seed)
    batch = broadcast_shapes(p.batch_shape, q.batch_shape)

    def per_sample(x: Any) -> Any:
        return kl_samples(-log_ratio(p, q, x), estimator, ops.xp)

    if not antithetic:
        return _streamed_mean(lambda size: per_sample(_draw(p, size, draw, batch)), n, n, chunk,
                              ops)

    def pairs(size: int) -> Any:
        sz = _color(p, size, draw, batch)
        return 0.5 * (per_sample(p.mean + sz) + per_sample(p.mean - sz))

    return _streamed_mean(pairs, n // 2, n, chunk, ops)


@entry_point
def js_mc(p: Gaussian, q: Gaussian, n: int = 100_000, seed: Any = None,
          chunk: int = DEFAULT_CHUNK, max_n: int = MAX_DRAWS) -> MonteCarloEstimate:
    """Monte Carlo estimate of the Jensen–Shannon divergence, in nats:

        JS(P, Q) = ½ KL(P‖M) + ½ KL(Q‖M) = ½ E_{X∼P}[ln p(X)/m(X)] + ½ E_{Y∼Q}[ln q(Y)/m(Y)],

    with M = ½(P + Q), a mixture (no closed form). With ln m = logaddexp(ln p, ln q) − ln 2 and
    r = ln p(x)/q(x) (:func:`~gaussdiv.log_ratio`, in which the 2π terms cancel exactly),
    ln p(x)/m(x) = ln 2 − ln(1 + e^{−r}) = −log1p(½ expm1(−r)), evaluated without overflow or
    cancellation (see :func:`js_samples`); the Q-term is the same function of ln q(y)/p(y).

    X₁…Xₙ ∼ P and Y₁…Yₙ ∼ Q are independent; the units ½[ln p(Xᵢ)/m(Xᵢ) + ln q(Yᵢ)/m(Yᵢ)] are
    i.i.d. with mean JS, so the standard error is their sample s/√n. 0 ≤ JS ≤ ln 2, and every
    unit is ≤ ln 2 (since m ≥ p/2), so the estimate never exceeds ln 2 (beyond rounding); but
    units can be negative, so for P ≈ Q the estimate can fall slightly below 0. It is returned
    as is, not clipped: an unbiased value with its standard error (a clipped one is biased).
    JS(P, P) (one Gaussian passed twice) is exactly 0: every r is 0.

    Args:
        p: P, batch shape B₁, dimension d.
        q: Q, batch shape B₂ (broadcasts with B₁), same d and framework.
        n: draws from each of P and Q per batch element, ≥ 2.
        seed: as for :func:`sample` (one stream for the draws from P and Q).
        chunk: units (one draw from each of P and Q) per chunk: memory O(chunk · batch · d).
        max_n: as for :func:`kl_mc`.

    Returns:
        :class:`MonteCarloEstimate` with value and stderr of shape broadcast(B₁, B₂) (NumPy
        scalars for one NumPy pair) in the pair's framework and dtype, and n; the value is at
        most ln 2 (beyond rounding) and may fall slightly below 0 for P ≈ Q.

    Raises:
        TypeError: p or q is not a Gaussian (nor a torch / SciPy normal).
        BackendMismatchError: p and q hold arrays of different frameworks.
        DimensionMismatchError: p and q have different d.
        ShapeError: B₁ and B₂ do not broadcast.
        GaussianError: n, chunk or max_n is not a positive integer; n > max_n; n < 2; a bad
            seed.

    Cost: 2n draws and 2n log-ratios, twice :func:`kl_mc` at the same n; memory
    O(chunk · batch · d).

    Examples:
        >>> import numpy as np, gaussdiv
        >>> p = gaussdiv.Gaussian(np.zeros(2), np.eye(2))
        >>> far = gaussdiv.Gaussian(np.full(2, 100.0), np.eye(2))
        >>> round(float(gaussdiv.js_mc(p, far, n=1000, seed=0).value), 6)  # no overlap: ln 2
        0.693147
        >>> float(gaussdiv.js_mc(p, p, n=1000, seed=0).value)  # every r is 0
        0.0
    """
    check_pair(p, q)
    n = _check_draws(n, max_n)
    chunk = _check_count(chunk, "chunk")
    if n < 2:
        raise GaussianError("n must be at least 2 for js_mc: one draw has no standard error")
    ops = p.cov.ops
    xp = ops.xp
    draw = ops.random(seed)
    batch = broadcast_shapes(p.batch_shape, q.batch_shape)

    def units(size: int) -> Any:
        x, y = _draw(p, size, draw, batch), _draw(q, size, draw, batch)
        return 0.5 * (js_samples(log_ratio(p, q, x), xp) + js_samples(log_ratio(q, p, y), xp))

    return _streamed_mean(units, n, n, chunk, ops)


def kl_samples(ell: Any, estimator: Estimator, xp: Any) -> Any:
    """The per-sample value of a :func:`kl_mc` estimator from ℓ = ln q(x) − ln p(x), x ∼ P.

    k1 = −ℓ, k2 = ½ℓ², k3 = e^ℓ − 1 − ℓ = g(expm1 ℓ) with g(ε) = ε − ln(1 + ε), to full
    relative accuracy (never negative, and ℓ²/2 at |ℓ| ≪ 1, where e^ℓ − 1 − ℓ loses every digit).
    Elementwise on an array of any shape; ``xp`` its namespace (numpy, torch, jax.numpy).
    """
    if estimator == "k1":
        return -ell
    if estimator == "k2":
        return 0.5 * (ell * ell)
    with np.errstate(over="ignore", invalid="ignore"):  # e^ℓ beyond the float range: k3 = inf
        return excess_log1p(xp.expm1(ell), xp, log_ratio=ell)


def js_samples(r: Any, xp: Any) -> Any:
    """ln p(x)/m(x), m = ½(p + q), from r = ln p(x)/q(x): −log1p(½ expm1(−r)), ≤ ln 2.

    For r > −1 that form is accurate to a few ulps relative (r/2 at |r| ≪ 1, ln 2 as r → ∞);
    for r ≤ −1, where expm1(−r) grows (and overflows below r ≈ −709), ln 2 + r − log1p(e^r),
    without cancellation since the value is below −0.6. Each branch sees only its own inputs,
    so gradients stay finite. Elementwise; ``xp`` the namespace of ``r``.
    """
    upper = r > -1.0
    r_upper = xp.where(upper, r, 0.0 * r)
    r_lower = xp.where(upper, 0.0 * r - 1.0, r)
    return xp.where(upper, -xp.log1p(0.5 * xp.expm1(-r_upper)),
                    (_LN2 + r_lower) - xp.log1p(xp.exp(r_lower)))


def _streamed_mean(units: Callable[[int], Any], count: int, n: int, chunk: int,
                   ops: Backend) -> MonteCarloEstimate:
    """Mean and standard error of ``count`` (≥ 2) i.i.d. units, ``units(size)`` giving
    (size, *batch) of them at a time, reduced by Chan et al.'s pairwise update. ``n`` is the
    draw count the estimate reports."""
    done, mean, m2 = 0, 0.0, 0.0
    while done < count:
        size = min(chunk, count - done)
        values = units(size)
        c_mean = values.mean(0)
        c_m2 = ((values - c_mean) ** 2).sum(0)
        total = done + size
        delta = c_mean - mean
        mean = mean + delta * (size / total)
        m2 = m2 + c_m2 + delta * delta * (done * size / total)
        done = total
    stderr = ops.xp.sqrt(m2 / (count - 1) / count)
    dtype = values.dtype
    return MonteCarloEstimate(ops.result(mean, dtype), ops.result(stderr, dtype), n)


def _color(p: Gaussian, n: int, draw: Callable[..., Any], batch: tuple[int, ...]) -> Any:
    """S Z for n standard normals Z per element of ``batch`` (P's batch shape or a broadcast)."""
    return p.cov.color(draw((n, *batch, p.cov.noise_dim), p.cov.dtype, p.mean))


def _draw(p: Gaussian, n: int, draw: Callable[..., Any], batch: tuple[int, ...]) -> Any:
    """n draws from P for every element of ``batch`` (P's batch shape or a broadcast of it)."""
    return p.mean + _color(p, n, draw, batch)


def _check_draws(n: Any, max_n: Any) -> int:
    """n as an int, refused above max_n with how long it would take."""
    n, cap = _check_count(n, "n"), _check_count(max_n, "max_n")
    if n > cap:
        raise GaussianError(f"n={n:.3g} draws is more than max_n={cap:.3g} (at ~1e8 draws/s "
                            f"per batch element, about {_duration(n / _DRAWS_PER_SECOND)}); "
                            "pass a larger max_n to run it")
    return n


def _duration(seconds: float) -> str:
    """A time span in the largest unit it fills: '17 minutes', '3.2e+14 years'."""
    for unit, length in (("years", 3.15e7), ("days", 86400.0), ("hours", 3600.0),
                         ("minutes", 60.0)):
        if seconds >= length:
            return f"{seconds / length:.2g} {unit}"
    return f"{seconds:.2g} seconds"


def _check_count(n: Any, name: str) -> int:
    if isinstance(n, bool) or not isinstance(n, int | np.integer) or n < 1:
        raise GaussianError(f"{name} must be a positive integer, got {n!r}")
    return int(n)

"""``gaussdiv.compare``: how far apart two data sets are, as Gaussians, with honest statistics.

Both data sets are fitted with one estimator, in one coordinate system (centred and scaled by
the pooled rows, which leaves every divergence unchanged and makes shrinkage independent of
the units). Reported for KL(A‖B), KL(B‖A) and Jeffreys J = KL(A‖B) + KL(B‖A):

* ``value``: the bias-corrected estimate — exactly unbiased for maximum-likelihood and
  unbiased fits (:mod:`gaussdiv.inference.wishart`); the plug-in for shrinkage fits, which have
  no correction that helps (see :mod:`gaussdiv.inference.intervals`). ``auto`` therefore
  fits by maximum likelihood whenever the correction exists (n > d + 2 rows in both), and by
  OAS only below: measured over 150–200 simulated pairs, the corrected maximum-likelihood J
  has mean error 0.02–0.07 and 98.5–99.5 % coverage at 3–8 rows per dimension, OAS's plug-in
  −0.16…+0.18 and 60–99 % at 5–20;
* ``plugin``: the divergence of the two fitted Gaussians (biased upwards by about
  #parameters/n);
* ``low``/``high``: a confidence interval that covers (:mod:`gaussdiv.inference.intervals`);
* ``p_value``: a permutation test of "A and B come from one distribution", with plug-in J as
  the statistic: the fraction of random re-splits of the pooled rows whose J is at least the
  observed, (1 + #{J* ≥ J})/(1 + permutations), exact at any n;
* ``columns``: each column's part in J (:mod:`gaussdiv.inference.attribution`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import numpy as np

from gaussdiv.errors import NotPositiveDefiniteError, SampleError
from gaussdiv.gaussian import Gaussian
from gaussdiv.inference.attribution import ColumnShare, column_shares
from gaussdiv.inference.estimators import (
    SHRINKAGE,
    check_fittable,
    estimate,
    resolve,
    singular_fit,
)
from gaussdiv.inference.intervals import jackknife, normal, studentized
from gaussdiv.inference.jackknife import GROUPS, leave_groups_out
from gaussdiv.inference.resampling import Moments, bootstrap_counts, chunks, permutation_masks
from gaussdiv.inference.samples import aligned, as_samples
from gaussdiv.inference.statistics import (
    KEYS,
    PairStatistics,
    definite_pairs,
    gaussian_statistics,
    pair_statistics,
)
from gaussdiv.inference.wishart import WishartFit

LABELS = {"kl_ab": "KL(A‖B)", "kl_ba": "KL(B‖A)", "jeffreys": "J(A, B)"}
#: Columns listed by str(Comparison).
SUMMARY_COLUMNS = 5
#: Above this fraction of singular resamples no interval is given.
MAX_SINGULAR = 0.05
#: Called with how many resamples or permutations were just finished.
Progress = Callable[[int], None]


class TermValues(NamedTuple):
    """The three terms of one KL direction: ln|Σ_b|/|Σ_a|, tr(Σ_b⁻¹Σ_a), Mahalanobis."""

    logdet_ratio: float
    trace: float
    mahalanobis: float


@dataclass(frozen=True)
class Estimate:
    """One divergence estimated from the two data sets: a field of :class:`Comparison`.

    Values are Python floats, in nats, about the Gaussians fitted to A and B: KL(A‖B) is
    eq. (23) with μ₁, Σ₁ fitted to A and μ₂, Σ₂ to B.

    Attributes:
        name: ``kl_ab``, ``kl_ba`` or ``jeffreys``.
        label: ``KL(A‖B)``, ``KL(B‖A)``, ``J(A, B)``.
        value: the bias-corrected estimate, max(unbiased, 0): a divergence is ≥ 0, and the
            truncation only ever moves the estimate towards the truth (shrinkage fits: the
            plug-in).
        unbiased: the bias-corrected estimate before truncation — exactly unbiased for
            ``mle``/``unbiased`` fits, so slightly negative about half the time when A and B
            come from one distribution (shrinkage fits: the plug-in).
        plugin: the divergence of the fitted Gaussians, ≥ 0 (biased upwards by about
            #parameters/n).
        low: the lower end of the confidence interval, ≥ 0 (None without an interval).
        high: the upper end of the confidence interval (None without an interval).
        stderr: the standard error (delta method for maximum-likelihood and unbiased fits,
            jackknife for shrinkage).
        terms: the three KL terms (``logdet_ratio`` ln|Σ₂|/|Σ₁|, ``trace`` tr(Σ₂⁻¹Σ₁),
            ``mahalanobis``), bias-corrected, as a NamedTuple; None for J and for shrinkage
            fits.
        plugin_terms: the same three terms of the fitted Gaussians; None for J.

    Examples:
        >>> import numpy as np, gaussdiv
        >>> rng = np.random.default_rng(0)
        >>> a, b = rng.normal(size=(200, 2)), rng.normal(size=(200, 2)) + [1.0, 0.0]
        >>> e = gaussdiv.compare(a, b, bootstrap=0, permutations=0).kl_ab
        >>> e.name, e.label, e.low <= e.value <= e.high      # truth: ½ ‖μ_a − μ_b‖² = ½
        ('kl_ab', 'KL(A‖B)', True)
        >>> e.terms._fields
        ('logdet_ratio', 'trace', 'mahalanobis')
    """

    name: str
    label: str
    value: float
    unbiased: float
    plugin: float
    low: float | None
    high: float | None
    stderr: float | None
    terms: TermValues | None
    plugin_terms: TermValues | None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name, "label": self.label, "value": self.value,
                               "unbiased": self.unbiased, "plugin": self.plugin,
                               "low": self.low, "high": self.high, "stderr": self.stderr}
        if self.terms is not None and self.plugin_terms is not None:
            out["terms"] = self.terms._asdict()
            out["plugin_terms"] = self.plugin_terms._asdict()
        return out


@dataclass(frozen=True)
class Comparison:
    """The result of :func:`compare` (see the module docstring); ``str()`` of it is a readable
    report, ``to_dict()`` plain Python values (the CLI's JSON).

    Attributes:
        kl_ab: the :class:`Estimate` of KL(A‖B), eq. (23) with Σ₁, μ₁ fitted to A.
        kl_ba: the :class:`Estimate` of KL(B‖A).
        jeffreys: the :class:`Estimate` of J(A, B) = KL(A‖B) + KL(B‖A).
        p_value: the permutation p-value of "A and B come from one distribution",
            (1 + #{J* ≥ J})/(1 + permutations), in (0, 1]; None when ``permutations=0``.
        columns: one :class:`ColumnShare` per column, ranked by ``drop`` (largest first).
        a: the Gaussian fitted to A, in the data's units, named by ``names`` (NumPy,
            float64, batch shape ()).
        b: the Gaussian fitted to B, likewise.
        n_a: the number of rows of A.
        n_b: the number of rows of B.
        estimator: the estimator used (``auto`` resolved): ``mle``, ``unbiased``,
            ``ledoit_wolf`` or ``oas``.
        correction: ``wishart`` (the exact bias correction of ``mle``/``unbiased`` fits) or
            ``none`` (shrinkage fits: plug-in values).
        interval: how the intervals were formed — ``studentized``, ``normal`` or
            ``jackknife`` — or None when none could be given (see ``notes``).
        confidence: the intervals' level, in (0, 1).
        bootstrap: the bootstrap resamples the intervals used (singular ones left out; 0
            for the normal and jackknife intervals).
        permutations: the permutations behind ``p_value`` (0: none).
        seed: the seed given (None: fresh randomness).
        names: the d column names (a DataFrame's labels, else "0", "1", … by position).
        notes: what the numbers do not show (singular resamples left out, no interval);
            empty when there is nothing to say.

    Examples:
        >>> import numpy as np, gaussdiv
        >>> rng = np.random.default_rng(0)
        >>> a, b = rng.normal(size=(100, 2)), rng.normal(size=(100, 2))   # one distribution
        >>> c = gaussdiv.compare(a, b, bootstrap=0, permutations=50, seed=0)
        >>> c.n_a, c.n_b, c.estimator, c.correction, c.interval, c.names
        (100, 100, 'mle', 'wishart', 'normal', ('0', '1'))
        >>> c.jeffreys.low <= c.jeffreys.value <= c.jeffreys.high, c.p_value > 0.05
        (True, True)
        >>> print(str(c).splitlines()[0])
        A: 100 rows   B: 100 rows   d = 2   estimator: mle   bias correction: wishart
    """

    kl_ab: Estimate
    kl_ba: Estimate
    jeffreys: Estimate
    p_value: float | None
    columns: tuple[ColumnShare, ...]
    a: Gaussian
    b: Gaussian
    n_a: int
    n_b: int
    estimator: str
    correction: str
    interval: str | None
    confidence: float
    bootstrap: int
    permutations: int
    seed: int | None
    names: tuple[str, ...]
    notes: tuple[str, ...] = field(default=())

    @property
    def estimates(self) -> tuple[Estimate, Estimate, Estimate]:
        return self.kl_ab, self.kl_ba, self.jeffreys

    def to_dict(self) -> dict[str, Any]:
        """Plain Python values (the ``results`` of the CLI's JSON)."""
        return {
            "estimates": [e.to_dict() for e in self.estimates],
            "p_value": self.p_value,
            "columns": [c.to_dict() for c in self.columns],
            "rows": {"a": self.n_a, "b": self.n_b},
            "dim": len(self.names),
            "names": list(self.names),
            "estimator": self.estimator,
            "correction": self.correction,
            "interval": {"method": self.interval, "confidence": self.confidence,
                         "resamples": self.bootstrap, "seed": self.seed},
            "permutations": self.permutations,
            "notes": list(self.notes),
        }

    def __str__(self) -> str:
        return summary(self)


def compare(a: Any, b: Any, *, estimator: str = "auto", bootstrap: int = 1000,
            confidence: float = 0.95, permutations: int = 1000, seed: int | None = None,
            columns: Sequence[str | int] | None = None,
            progress: Progress | None = None) -> Comparison:
    """Compare data sets ``a`` and ``b`` (rows × columns) through their fitted Gaussians.

    With A = N(μ₁, Σ₁) and B = N(μ₂, Σ₂) fitted to ``a`` and ``b`` by one estimator, it
    estimates KL(A‖B) = ½ (ln|Σ₂|/|Σ₁| + tr(Σ₂⁻¹Σ₁) + (μ₁ − μ₂)ᵀΣ₂⁻¹(μ₁ − μ₂) − d), eq. (23),
    KL(B‖A) and J = KL(A‖B) + KL(B‖A): bias-corrected (exactly unbiased for ``mle`` and
    ``unbiased`` fits), with confidence intervals, the permutation p-value
    (1 + #{J* ≥ J})/(1 + permutations) of "A and B come from one distribution", and each
    column's part in J (see the module docstring).

    Args:
        a: (n_a, d) observations (NumPy, torch, JAX, lists, or a pandas DataFrame; torch and
            JAX data are compared in NumPy float64).
        b: (n_b, d) observations, the same columns: DataFrames are matched by column name —
            a different set of names is an error, another order is realigned.
        estimator: as in :func:`gaussdiv.fit`, used for both; ``auto`` is ``mle`` when both
            data sets have more than d + 2 rows (where the exact correction exists), else
            ``oas``.
        bootstrap: resamples for the studentized interval of ``mle`` and ``unbiased`` fits
            (0: the normal interval from the delta-method standard error). Shrinkage fits
            use the jackknife instead (see :mod:`gaussdiv.inference.intervals`).
        confidence: the interval's level.
        permutations: re-splits for the p-value (0: no p-value).
        seed: seeds both; None draws fresh randomness.
        columns: the columns to use, by name or position (default: all).
        progress: called with the number of resamples/permutations finished, for a bar.

    Returns:
        A :class:`Comparison` of Python floats (fits ``a``/``b`` as NumPy float64 Gaussians);
        ``str()`` of it is a readable report. Deterministic for a given ``seed``.

    Raises:
        ValueError: ``confidence`` not strictly between 0 and 1, ``bootstrap`` or
            ``permutations`` not a whole number ≥ 0, or an unknown ``estimator``.
        SampleError: a data set that :func:`fit` refuses (not (n, d) real numbers, a
            non-finite value, fewer than 2 rows, a constant or collinear column), columns that
            do not match, a bad ``columns`` entry, a column constant in both data sets, or no
            more than d + 2 rows for an ``mle``/``unbiased`` fit — each named.
        ImportError: a shrinkage fit (``ledoit_wolf``, ``oas``, or ``auto`` with few rows)
            without scikit-learn.

    Cost: O((bootstrap + permutations) · n · d²) in matrix products for ``mle``/``unbiased``
    (n = n_a + n_b); for shrinkage, 100 scikit-learn refits for the jackknife and two per
    permutation.

    Examples:
        >>> import numpy as np, gaussdiv
        >>> rng = np.random.default_rng(0)
        >>> a = rng.normal(size=(200, 2))
        >>> b = rng.normal(size=(200, 2)) + [1.0, 0.0]     # B shifted by 1 in column 0
        >>> c = gaussdiv.compare(a, b, bootstrap=100, permutations=100, seed=0)
        >>> round(c.jeffreys.value, 2)   # truth: J = ½ ‖Δμ‖² + ½ ‖Δμ‖² = 1 (unit covariances)
        1.05
        >>> c.jeffreys.low < 1.0 < c.jeffreys.high, c.p_value == 1 / 101, c.columns[0].name
        (True, True, '0')
    """
    if not 0 < confidence < 1:
        raise ValueError(f"confidence={confidence}: must be strictly between 0 and 1")
    for label, count in (("bootstrap", bootstrap), ("permutations", permutations)):
        if isinstance(count, bool) or not isinstance(count, int | np.integer) or count < 0:
            raise ValueError(f"{label}={count!r}: must be a whole number ≥ 0")
    sa, sb = aligned(as_samples(a, "a"), as_samples(b, "b"), columns)
    d = sa.dim
    used = resolve(estimator, min(sa.n, sb.n), d)
    if str(estimator).strip().lower() == "auto":  # the exact correction makes mle the better
        used = "mle" if min(sa.n, sb.n) > d + 2 else "oas"  # choice down to n = d + 3
    for s in (sa, sb):
        check_fittable(s, used, "full")
        if used not in SHRINKAGE and not WishartFit.of(used, s.n).allows(d):
            raise SampleError(f"{s.what}: {s.n} rows for {d} columns; the exact bias "
                              f"correction needs more than d + 2 = {d + 2} rows; use "
                              "shrinkage (estimator='oas')")
    names = sa.names
    assert names is not None  # aligned() names every column
    xa, xb = sa.numpy(), sb.numpy()
    center, scale = _pooled(xa, xb, names)
    za, zb = (xa - center) / scale, (xb - center) / scale
    rng_boot, rng_perm = np.random.default_rng(seed).spawn(2)
    return _Comparer(za, zb, used, confidence, progress).run(
        bootstrap, permutations, rng_boot, rng_perm, center, scale, names, seed)


def _pooled(xa: np.ndarray, xb: np.ndarray,
            names: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    pooled = np.concatenate([xa, xb])
    center, scale = pooled.mean(axis=0), pooled.std(axis=0)
    for j in np.flatnonzero(scale == 0):
        raise SampleError(f"column {names[j]!r} is constant in both data sets; leave it out")
    return center, scale


class _Comparer:
    """The statistics of one comparison in the pooled standardised coordinates."""

    def __init__(self, za: np.ndarray, zb: np.ndarray, estimator: str, confidence: float,
                 progress: Progress | None) -> None:
        self.za, self.zb = za, zb
        self.estimator = estimator
        self.exact = estimator not in SHRINKAGE
        self.fits = (WishartFit.of(estimator, len(za)), WishartFit.of(estimator, len(zb))) \
            if self.exact else None
        self.confidence = confidence
        self.progress = progress or (lambda k: None)
        self.notes: list[str] = []

    def fitted(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return estimate(x, self.estimator, scale=np.ones(x.shape[1]))

    def run(self, n_boot: int, n_perm: int, rng_boot: np.random.Generator,
            rng_perm: np.random.Generator, center: np.ndarray, scale: np.ndarray,
            names: tuple[str, ...], seed: int | None) -> Comparison:
        (ma, sa), (mb, sb) = self.fitted(self.za), self.fitted(self.zb)
        back = []  # the fits in the data's units; both they and the standardised ones must
        for what, mean, cov in (("a", ma, sa), ("b", mb, sb)):  # be definite in float64
            try:
                Gaussian(mean, cov)
                back.append(_original_units(mean, cov, center, scale, names))
            except NotPositiveDefiniteError as exc:
                raise singular_fit(what, exc) from None
        observed = pair_statistics(ma, sa, mb, sb, self.fits, with_stderr=self.exact)
        value, low, high, stderr, method, used = self.intervals(observed, ma, sa, mb, sb,
                                                                n_boot, rng_boot)
        p_value = self.p_value(float(observed.plugin[2]), n_perm, rng_perm) if n_perm else None
        shares = column_shares(ma, sa, mb, sb, self.fits, names)
        estimates = [_estimate(k, observed, value, low, high, stderr) for k in range(3)]
        return Comparison(*estimates, p_value=p_value, columns=tuple(shares), a=back[0],
                          b=back[1], n_a=len(self.za), n_b=len(self.zb),
                          estimator=self.estimator,
                          correction="wishart" if self.exact else "none",
                          interval=method, confidence=self.confidence, bootstrap=used,
                          permutations=n_perm, seed=seed, names=names,
                          notes=tuple(self.notes))

    # ------------------------------------------------------------------ intervals
    def intervals(self, observed: PairStatistics, ma: np.ndarray, sa: np.ndarray,
                  mb: np.ndarray, sb: np.ndarray, n_boot: int, rng: np.random.Generator
                  ) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None,
                             np.ndarray | None, str | None, int]:
        """(value, low, high, stderr, method, resamples used), each array (3,)."""
        if self.exact:
            value, stderr = observed.unbiased, observed.stderr
            assert value is not None and stderr is not None
            if n_boot == 0:
                low, high = normal(value, stderr, self.confidence)
                return value, low, high, stderr, "normal", 0
            resampled, resampled_se, world = self.resample_exact(n_boot, rng)
            if resampled is None:
                return value, None, None, stderr, None, 0
            low, high = studentized(value, stderr, resampled, resampled_se, world,
                                    self.confidence)
            return value, low, high, stderr, "studentized", resampled.shape[1]
        value, low, high, stderr = jackknife(observed.plugin, self.leave_groups_out(),
                                             self.confidence, correct=False)
        return value, low, high, stderr, "jackknife", 0

    def resample_exact(self, n_boot: int, rng: np.random.Generator
                       ) -> tuple[np.ndarray | None, np.ndarray, np.ndarray]:
        """Unbiased estimates and standard errors (3, R) of bootstrap resamples, and the
        plug-in divergences of the data's maximum-likelihood fits (their world's truth)."""
        moments = Moments(self.za), Moments(self.zb)
        (wa, wsa), (wb, wsb) = (estimate(z, "mle") for z in (self.za, self.zb))
        world = pair_statistics(wa, wsa, wb, wsb, None).plugin
        values, errors, singular = [], [], 0
        n_rows = len(self.za) + len(self.zb)
        for r in chunks(n_boot, n_rows):
            parts = []
            for m in moments:
                mean, cov = m.weighted(bootstrap_counts(rng, r, m.n))
                if self.estimator == "unbiased":
                    cov *= m.n / (m.n - 1)
                parts.append((mean, cov))
            ok, p, q = definite_pairs(*parts[0], *parts[1])
            singular += int((~ok).sum())
            if ok.any():
                stats = gaussian_statistics(p, q, self.fits, with_stderr=True)
                values.append(stats.unbiased)
                errors.append(stats.stderr)
            self.progress(r)
        if singular > MAX_SINGULAR * n_boot:
            self.notes.append(f"{singular} of {n_boot} bootstrap resamples have a singular "
                              "covariance (many tied rows?), so no interval is given; use "
                              "shrinkage (estimator='oas')")
            return None, world, world
        if singular:
            self.notes.append(f"{singular} of {n_boot} bootstrap resamples had a singular "
                              "covariance and were left out")
        return np.concatenate(values, axis=1), np.concatenate(errors, axis=1), world

    def leave_groups_out(self) -> list[np.ndarray]:
        """The jackknife's plug-in divergences (3, g) per data set."""
        def plugin(ma: np.ndarray, sa: np.ndarray, mb: np.ndarray, sb: np.ndarray
                   ) -> np.ndarray:
            return pair_statistics(ma, sa, mb, sb, None).plugin

        return leave_groups_out(self.za, self.zb, self.fitted, plugin)

    # ------------------------------------------------------------------ the p-value
    def p_value(self, observed: float, n_perm: int, rng: np.random.Generator) -> float:
        """(1 + #{J* ≥ J} + #singular)/(1 + permutations) over random re-splits of the pooled
        rows (a re-split with a singular covariance counts against A = B: conservative)."""
        pooled = np.concatenate([self.za, self.zb])
        n_a, n = len(self.za), len(pooled)
        exceed = 0
        if not self.exact:
            for _ in range(n_perm):
                order = rng.permutation(n)
                parts = [self.fitted(pooled[order[:n_a]]), self.fitted(pooled[order[n_a:]])]
                stats = pair_statistics(parts[0][0], parts[0][1], parts[1][0], parts[1][1],
                                        None)
                exceed += int(stats.plugin[2] >= observed)
                self.progress(1)
            return (1 + exceed) / (1 + n_perm)
        moments = Moments(pooled)
        for r in chunks(n_perm, n):
            mask = permutation_masks(rng, r, n_a, n)
            (ma, sa), (mb, sb) = moments.weighted(mask), moments.weighted(1 - mask)
            if self.estimator == "unbiased":
                sa *= n_a / (n_a - 1)
                sb *= (n - n_a) / (n - n_a - 1)
            ok, p, q = definite_pairs(ma, sa, mb, sb)
            exceed += int((~ok).sum())
            if ok.any():
                stats = gaussian_statistics(p, q, None)
                exceed += int((stats.plugin[2] >= observed).sum())
            self.progress(r)
        return (1 + exceed) / (1 + n_perm)


def _estimate(k: int, observed: PairStatistics, value: np.ndarray, low: np.ndarray | None,
              high: np.ndarray | None, stderr: np.ndarray | None) -> Estimate:
    key = KEYS[k]
    terms = plugin_terms = None
    if k < 2:
        plugin_terms = _term_values(observed.plugin_terms[k])
        if observed.unbiased_terms is not None:
            terms = _term_values(observed.unbiased_terms[k])
    return Estimate(key, LABELS[key], max(float(value[k]), 0.0), float(value[k]),
                    float(observed.plugin[k]),
                    None if low is None else float(low[k]),
                    None if high is None else float(high[k]),
                    None if stderr is None else float(stderr[k]), terms, plugin_terms)


def _term_values(t: Any) -> TermValues:
    return TermValues(float(t.logdet_ratio), float(t.trace), float(t.mahalanobis))


def _original_units(mean: np.ndarray, cov: np.ndarray, center: np.ndarray, scale: np.ndarray,
                    names: tuple[str, ...]) -> Gaussian:
    """The fit in standardised coordinates z = (x − c)/s mapped back to x."""
    return Gaussian(center + scale * mean, cov * scale[:, None] * scale[None, :]
                    ).with_names(names)


def summary(c: Comparison) -> str:
    """A readable report of a comparison."""
    level = f"{100 * c.confidence:g}% interval"
    lines = [f"A: {c.n_a} rows   B: {c.n_b} rows   d = {len(c.names)}   estimator: "
             f"{c.estimator}   bias correction: {c.correction}", ""]
    rows = [["", "value", level, "plug-in"]]
    for e in c.estimates:
        interval = "—" if e.low is None or e.high is None else \
            f"[{_fmt(e.low)}, {_fmt(e.high)}]"
        rows.append([e.label, _fmt(e.value), interval, _fmt(e.plugin)])
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    lines += ["  ".join([r[0].ljust(widths[0])] + [x.rjust(w) for x, w in
                                                    zip(r[1:], widths[1:], strict=True)])
              for r in rows]
    if c.interval is not None:
        how = {"studentized": f"studentized bootstrap, {c.bootstrap} resamples",
               "jackknife": f"normal, jackknife standard error ({GROUPS} groups per "
                            "data set)",
               "normal": "normal, from the delta-method standard error"}[c.interval]
        lines.append(f"(interval: {how})")
    if c.p_value is not None:
        smallest = " (the smallest possible)" if c.p_value * (c.permutations + 1) == 1 else ""
        lines.append(f"\np-value (A and B from one distribution; {c.permutations} "
                     f"permutations): {_fmt(c.p_value, 3)}{smallest}")
    if c.columns:
        lines.append("\ncolumns, by how much J falls without them (alone: J of the column "
                     "by itself):")
        shown = c.columns[:SUMMARY_COLUMNS]
        width = max(len(s.name) for s in shown)
        for s in shown:
            share = f" ({100 * s.share:.0f}% of J)" if s.share >= 0.005 else ""
            lines.append(f"  {s.name.ljust(width)}  drop {_fmt(s.drop)}{share}   "
                         f"alone {_fmt(s.marginal)}")
        if len(c.columns) > len(shown):
            lines.append(f"  ... {len(c.columns) - len(shown)} more")
    lines += [f"note: {n}" for n in c.notes]
    return "\n".join(lines)


def _fmt(x: float, digits: int = 4) -> str:
    return f"{x:.{digits}g}"

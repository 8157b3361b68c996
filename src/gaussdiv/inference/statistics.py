"""KL(A‖B), KL(B‖A) and Jeffreys for a batch of fitted pairs: plug-in, unbiased, standard error.

The plug-in values are the library's exact KL of the fitted Gaussians (:func:`gaussdiv.kl_terms`,
one batched call per direction); the unbiased values add the exact Wishart corrections of
:mod:`gaussdiv.inference.wishart` (maximum-likelihood and unbiased fits only); the standard
errors are the delta-method ones of :mod:`gaussdiv.inference.stderr`, from the factors the
fitted Gaussians computed at construction.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from gaussdiv.divergences.kl import KLTerms, kl_terms
from gaussdiv.errors import NotPositiveDefiniteError
from gaussdiv.gaussian import Gaussian
from gaussdiv.inference.stderr import kl_stderr
from gaussdiv.inference.wishart import UnbiasedTerms, WishartFit, unbiased_kl

#: Rows of the (3, ...) arrays below.
KEYS = ("kl_ab", "kl_ba", "jeffreys")


@dataclass(frozen=True)
class Terms:
    """ln-determinant ratio, trace and Mahalanobis terms of one direction (arrays)."""

    logdet_ratio: np.ndarray
    trace: np.ndarray
    mahalanobis: np.ndarray


@dataclass(frozen=True)
class PairStatistics:
    """Per pair of the batch; the (3, *batch) arrays hold KL(A‖B), KL(B‖A), J.

    Attributes:
        plugin: the divergences of the fitted Gaussians.
        unbiased: their exactly unbiased estimates (None for shrinkage fits).
        stderr: delta-method standard errors (None unless asked for).
        plugin_terms, unbiased_terms: the three KL terms, for (A‖B, B‖A).
    """

    plugin: np.ndarray
    unbiased: np.ndarray | None
    stderr: np.ndarray | None
    plugin_terms: tuple[Terms, Terms]
    unbiased_terms: tuple[Terms, Terms] | None


def pair_statistics(ma: np.ndarray, sa: np.ndarray, mb: np.ndarray, sb: np.ndarray,
                    fits: tuple[WishartFit, WishartFit] | None,
                    with_stderr: bool = False) -> PairStatistics:
    """The statistics of fitted pairs: means (*batch, d), covariances (*batch, d, d) of A and
    B; ``fits`` how the covariances were estimated (None: not from a Wishart, no correction)."""
    return gaussian_statistics(Gaussian(ma, sa), Gaussian(mb, sb), fits, with_stderr)


def gaussian_statistics(p: Gaussian, q: Gaussian, fits: tuple[WishartFit, WishartFit] | None,
                        with_stderr: bool = False) -> PairStatistics:
    """:func:`pair_statistics` of the fitted Gaussians A = ``p`` and B = ``q`` (full
    covariances, NumPy), whose factors it reuses."""
    ab, ba = kl_terms(p, q), kl_terms(q, p)
    d = p.dim
    plugin = np.stack([np.asarray(ab.kl), np.asarray(ba.kl)])
    plugin = np.concatenate([plugin, plugin.sum(axis=0, keepdims=True)])
    plugin_terms = (_terms(ab), _terms(ba))
    unbiased = unbiased_terms = None
    if fits is not None:
        fa, fb = fits
        u_ab, u_ba = _unbiased(ab, fa, fb, d), _unbiased(ba, fb, fa, d)
        unbiased = np.stack([u_ab.kl, u_ba.kl, u_ab.kl + u_ba.kl])
        unbiased_terms = (Terms(u_ab.logdet_ratio, u_ab.trace, u_ab.mahalanobis),
                          Terms(u_ba.logdet_ratio, u_ba.trace, u_ba.mahalanobis))
    stderr = None
    if with_stderr:
        if fits is None:
            raise ValueError("standard errors need the fits' row counts")
        stderr = kl_stderr(p, q, fits[0].n, fits[1].n)
    return PairStatistics(plugin, unbiased, stderr, plugin_terms, unbiased_terms)


def _terms(t: KLTerms) -> Terms:
    return Terms(np.asarray(t.logdet_ratio), np.asarray(t.trace), np.asarray(t.mahalanobis))


def _unbiased(t: KLTerms, fa: WishartFit, fb: WishartFit, d: int) -> UnbiasedTerms:
    return unbiased_kl(np.asarray(t.kl), np.asarray(t.logdet_ratio), np.asarray(t.trace),
                       np.asarray(t.mahalanobis), fa, fb, d)


def definite_pairs(ma: np.ndarray, sa: np.ndarray, mb: np.ndarray, sb: np.ndarray
                   ) -> tuple[np.ndarray, Gaussian, Gaussian]:
    """(ok, A, B) for resampled fits, means (R, d) and covariances (R, d, d): the mask (R,) of
    the pairs whose two covariances the library accepts (resamples of data with many ties can
    be singular) and those pairs as Gaussians, each factored once (one batched construction
    per data set, element by element only when it fails)."""
    (ok_a, p), (ok_b, q) = _definite(ma, sa), _definite(mb, sb)
    ok = ok_a & ok_b
    return ok, p if ok_b.all() else p[ok[ok_a]], q if ok_a.all() else q[ok[ok_b]]


def _definite(means: np.ndarray, covs: np.ndarray) -> tuple[np.ndarray, Gaussian]:
    """(mask (R,), the Gaussians of the masked elements)."""
    try:
        return np.ones(len(covs), dtype=bool), Gaussian(means, covs)
    except NotPositiveDefiniteError:
        pass
    mask = np.ones(len(covs), dtype=bool)
    zero = np.zeros(covs.shape[-1])
    for k, cov in enumerate(covs):
        try:
            Gaussian(zero, cov)
        except NotPositiveDefiniteError:
            mask[k] = False
    return mask, Gaussian(means[mask], covs[mask])

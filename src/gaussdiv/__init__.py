"""gaussdiv: exact divergences between multivariate Gaussians — KL, cross-entropy and entropy,
Jeffreys, Rényi, Bhattacharyya, Hellinger, 2-Wasserstein / FID, total-variation bounds —,
divergence matrices and nearest neighbours between many Gaussians, and Monte Carlo estimators
of the definitions.

>>> import numpy as np, gaussdiv
>>> p = gaussdiv.Gaussian(np.zeros(2), np.eye(2))
>>> q = gaussdiv.Gaussian(np.ones(2), 2 * np.eye(2))
>>> round(float(gaussdiv.kl(p, q)), 12)  # ½ (2 ln 2 + 1 + 1 − 2) = ln 2
0.69314718056
"""

from gaussdiv import relations as _relations  # noqa: F401 (registers the pair relations)
from gaussdiv.density import log_prob, log_ratio
from gaussdiv.divergences.jeffreys import jeffreys
from gaussdiv.divergences.kl import KLTerms, cross_entropy, entropy, kl, kl_terms
from gaussdiv.divergences.renyi import (
    bhattacharyya,
    bhattacharyya_coefficient,
    hellinger,
    renyi,
)
from gaussdiv.divergences.total_variation import tv_bounds
from gaussdiv.divergences.wasserstein import frechet_distance, wasserstein
from gaussdiv.errors import (
    AccuracyWarning,
    BackendMismatchError,
    DimensionMismatchError,
    DtypeError,
    GaussianError,
    NonFiniteError,
    NotPositiveDefiniteError,
    NotSemidefiniteError,
    NotSymmetricError,
    SampleError,
    ShapeError,
)
from gaussdiv.gaussian import Gaussian, check, concatenate, stack
from gaussdiv.inference import ColumnShare, Comparison, Estimate, compare, fit
from gaussdiv.interop import from_scipy, from_torch, to_scipy, to_torch
from gaussdiv.matrices import pairwise, pairwise_topk
from gaussdiv.mixtures import GaussianMixture, mixture_kl, mixture_kl_bounds
from gaussdiv.montecarlo import MonteCarloEstimate, js_mc, kl_mc, sample
from gaussdiv.structures import (
    Covariance,
    DiagonalCovariance,
    FullCovariance,
    FullPrecision,
    KroneckerCovariance,
    LowRankCovariance,
    SemidefiniteCovariance,
)

__version__ = "0.1.0"

__all__ = [
    "AccuracyWarning",
    "BackendMismatchError",
    "ColumnShare",
    "Comparison",
    "Covariance",
    "DiagonalCovariance",
    "DimensionMismatchError",
    "DtypeError",
    "Estimate",
    "FullCovariance",
    "FullPrecision",
    "Gaussian",
    "GaussianError",
    "GaussianMixture",
    "KLTerms",
    "KroneckerCovariance",
    "LowRankCovariance",
    "MonteCarloEstimate",
    "NonFiniteError",
    "NotPositiveDefiniteError",
    "NotSemidefiniteError",
    "NotSymmetricError",
    "SampleError",
    "SemidefiniteCovariance",
    "ShapeError",
    "bhattacharyya",
    "bhattacharyya_coefficient",
    "check",
    "compare",
    "concatenate",
    "cross_entropy",
    "entropy",
    "fit",
    "frechet_distance",
    "from_scipy",
    "from_torch",
    "hellinger",
    "jeffreys",
    "js_mc",
    "kl",
    "kl_mc",
    "kl_terms",
    "log_prob",
    "log_ratio",
    "mixture_kl",
    "mixture_kl_bounds",
    "pairwise",
    "pairwise_topk",
    "renyi",
    "sample",
    "stack",
    "to_scipy",
    "to_torch",
    "tv_bounds",
    "wasserstein",
]

"""gaussdiv: exact KL divergence, cross-entropy and entropy of multivariate Gaussians.

>>> import numpy as np, gaussdiv
>>> p = gaussdiv.Gaussian(np.zeros(2), np.eye(2))
>>> q = gaussdiv.Gaussian(np.ones(2), 2 * np.eye(2))
>>> round(float(gaussdiv.kl(p, q)), 12)  # ½ (2 ln 2 + 1 + 1 − 2) = ln 2
0.69314718056
"""

from gaussdiv.covariance import Covariance, MatrixTerms
from gaussdiv.dense import DenseCovariance
from gaussdiv.density import log_prob, log_ratio
from gaussdiv.diagonal import DiagonalCovariance
from gaussdiv.divergence import KLTerms, cross_entropy, entropy, kl, kl_terms
from gaussdiv.errors import (
    BackendMismatchError,
    DimensionMismatchError,
    DtypeError,
    GaussianError,
    NonFiniteError,
    NotPositiveDefiniteError,
    NotSymmetricError,
    ShapeError,
)
from gaussdiv.gaussian import Gaussian
from gaussdiv.interop import from_scipy, from_torch
from gaussdiv.kronecker import KroneckerCovariance
from gaussdiv.lowrank import LowRankCovariance
from gaussdiv.montecarlo import MonteCarloEstimate, kl_mc, sample

__version__ = "0.1.0"

__all__ = [
    "BackendMismatchError",
    "Covariance",
    "DenseCovariance",
    "DiagonalCovariance",
    "DimensionMismatchError",
    "DtypeError",
    "Gaussian",
    "GaussianError",
    "KLTerms",
    "KroneckerCovariance",
    "LowRankCovariance",
    "MatrixTerms",
    "MonteCarloEstimate",
    "NonFiniteError",
    "NotPositiveDefiniteError",
    "NotSymmetricError",
    "ShapeError",
    "cross_entropy",
    "entropy",
    "from_scipy",
    "from_torch",
    "kl",
    "kl_mc",
    "kl_terms",
    "log_prob",
    "log_ratio",
    "sample",
]

"""The exceptions gaussdiv raises for bad input.

Every error is a :class:`GaussianError`, itself a :class:`ValueError`, so callers can catch the
whole family or one kind. Messages name the argument, the shapes involved and, for batched
input, the batch index of the offending element.
"""

from __future__ import annotations


class GaussianError(ValueError):
    """Base class of every input error raised by gaussdiv."""


class ShapeError(GaussianError):
    """An argument has the wrong number of dimensions or sizes that do not fit together."""


class DimensionMismatchError(ShapeError):
    """Two Gaussians (or a Gaussian and a point) live in spaces of different dimension."""


class DtypeError(GaussianError):
    """An argument has a dtype gaussdiv cannot compute with (complex, boolean, object)."""


class NonFiniteError(GaussianError):
    """An argument contains NaN or infinite entries."""


class NotSymmetricError(GaussianError):
    """A matrix that must be symmetric (a covariance or precision) is not."""


class NotPositiveDefiniteError(GaussianError):
    """A matrix that must be positive definite is not (or is numerically singular)."""


class NotSemidefiniteError(NotPositiveDefiniteError):
    """A matrix that may be singular but must be positive semidefinite has an eigenvalue
    below zero beyond rounding (``Gaussian.semidefinite``)."""


class SampleError(GaussianError):
    """A data set given to ``fit`` or ``compare`` cannot be used as it is: a missing or infinite
    value, too few rows, a constant or collinear column, columns that do not match."""


class BackendMismatchError(GaussianError):
    """Arguments come from different array frameworks (e.g. NumPy and PyTorch)."""


class AccuracyWarning(UserWarning):
    """A result could not be computed to gaussdiv's usual accuracy; the message says what holds."""

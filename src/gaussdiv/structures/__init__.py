"""Covariance structures: one module each, all behind the protocol in :mod:`.base`."""

from gaussdiv.structures.base import Covariance
from gaussdiv.structures.diagonal import DiagonalCovariance
from gaussdiv.structures.full import Factored, FullCovariance, FullPrecision
from gaussdiv.structures.kronecker import KroneckerCovariance
from gaussdiv.structures.lowrank import LowRankCovariance
from gaussdiv.structures.semidefinite import SemidefiniteCovariance

__all__ = ["Covariance", "DiagonalCovariance", "Factored", "FullCovariance", "FullPrecision",
           "KroneckerCovariance", "LowRankCovariance", "SemidefiniteCovariance"]

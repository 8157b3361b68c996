"""Pair relations: what two covariance structures know about each other, registered by the
pair of structure types (see :mod:`.registry`). Importing this package registers them all."""

from gaussdiv.relations import dense, diagonal, kronecker, lowrank  # noqa: F401 (registers)
from gaussdiv.relations.base import PairRelation, PairTerms
from gaussdiv.relations.registry import register, relation_for

__all__ = ["PairRelation", "PairTerms", "register", "relation_for"]

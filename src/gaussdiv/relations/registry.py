"""Pair relations keyed by the pair of structure types.

A relation is registered for (type of Σ₁, type of Σ₂) and found for subclasses too: the
registered pair nearest in method-resolution order wins, so a relation for (Covariance,
Covariance) is the generic fallback. Registering a pair twice is an error.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from gaussdiv.relations.base import PairRelation

R = TypeVar("R", bound=type[PairRelation])

_RELATIONS: dict[tuple[type, type], PairRelation] = {}
#: relation_for's answers (a dict, not functools.cache: torch.compile traces it silently).
_FOUND: dict[tuple[type, type], PairRelation] = {}


def register(type_p: type, type_q: type) -> Callable[[R], R]:
    """Class decorator: the relation for Σ₁ of ``type_p`` against Σ₂ of ``type_q``."""

    def decorate(relation: R) -> R:
        key = (type_p, type_q)
        if key in _RELATIONS:
            raise TypeError(f"a relation for ({type_p.__name__}, {type_q.__name__}) is already "
                            f"registered: {type(_RELATIONS[key]).__name__}")
        _RELATIONS[key] = relation()
        _FOUND.clear()
        return relation

    return decorate


def relation_for(type_p: type, type_q: type) -> PairRelation:
    """The registered relation nearest to (type_p, type_q) in MRO distance (sum of both)."""
    key = (type_p, type_q)
    if key not in _FOUND:
        _FOUND[key] = _nearest(type_p, type_q)
    return _FOUND[key]


def _nearest(type_p: type, type_q: type) -> PairRelation:
    mro_p, mro_q = type_p.__mro__, type_q.__mro__
    found = sorted((mro_p.index(tp) + mro_q.index(tq), tp.__name__, tq.__name__, relation)
                   for (tp, tq), relation in _RELATIONS.items() if tp in mro_p and tq in mro_q)
    if not found:
        raise TypeError(f"no pair relation for ({type_p.__name__}, {type_q.__name__})")
    if len(found) > 1 and found[0][0] == found[1][0]:
        raise TypeError(f"ambiguous pair relations for ({type_p.__name__}, {type_q.__name__}): "
                        f"({found[0][1]}, {found[0][2]}) and ({found[1][1]}, {found[1][2]}); "
                        "register the pair itself")
    return found[0][3]

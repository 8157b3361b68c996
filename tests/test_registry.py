"""The pair-relation registry: MRO lookup, duplicates and ambiguities refused, the generic
dense relation as the fallback."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

import gaussdiv as gd
from gaussdiv.relations import dense, diagonal, lowrank, registry
from gaussdiv.structures import Covariance, DiagonalCovariance, LowRankCovariance


def test_lookup_follows_the_method_resolution_order():
    @dataclass(frozen=True, eq=False, repr=False)
    class Scaled(DiagonalCovariance):
        """A diagonal subclass: it inherits the diagonal relation, not the dense one."""

    assert isinstance(registry.relation_for(Scaled, DiagonalCovariance),
                      diagonal.DiagonalRelation)
    assert isinstance(registry.relation_for(Scaled, LowRankCovariance),
                      lowrank.LowRankRelation)
    assert isinstance(registry.relation_for(gd.FullCovariance, DiagonalCovariance),
                      dense.DenseRelation)


def test_a_pair_is_registered_once():
    with pytest.raises(TypeError, match="already registered"):
        registry.register(DiagonalCovariance, DiagonalCovariance)(diagonal.DiagonalRelation)


def test_ambiguous_lookups_are_errors_not_guesses():
    class Left(Covariance):  # abstract: only its place in the MRO matters here
        pass

    class Right(Covariance):
        pass

    class Both(Left, Right):
        pass

    key_a, key_b = (Left, Right), (Right, Left)  # for (Both, Both): distances 1 + 2 and 2 + 1
    try:
        registry.register(*key_a)(type("A", (dense.DenseRelation,), {}))
        registry.register(*key_b)(type("B", (dense.DenseRelation,), {}))
        with pytest.raises(TypeError, match="ambiguous"):
            registry.relation_for(Both, Both)
    finally:
        for key in (key_a, key_b):
            registry._RELATIONS.pop(key, None)
        registry._FOUND.clear()

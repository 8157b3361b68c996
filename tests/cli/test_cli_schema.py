"""The one --json schema: every command's output follows it (the ``invoke`` fixture validates
each --json output), and non-finite numbers come out as null with a reason or a pointer."""

from __future__ import annotations

import math

import jsonschema
import numpy as np
import pytest
from cli_helpers import SCHEMA, SPD_P, SPD_Q, parse_output, results, write_csv

import gaussdiv
from gaussdiv.cli.common import SCHEMA_ID, envelope, json_text, record

FAST = ("--bootstrap", "0", "--permutations", "0")


@pytest.fixture
def small_groups(tmp_path):
    """A grouped CSV with few rows per group, so that auto picks OAS shrinkage."""
    rng = np.random.default_rng(8)
    rows = [[g, *(repr(float(v)) for v in rng.standard_normal(3) + k)]
            for k, g in enumerate(("u", "v", "w")) for _ in range(12)]
    return write_csv(tmp_path / "small.csv", ["g", "x", "y", "z"], rows)


def test_the_schema_is_a_valid_json_schema():
    jsonschema.Draft202012Validator.check_schema(SCHEMA)
    assert SCHEMA["properties"]["schema"]["const"] == SCHEMA_ID
    assert SCHEMA["properties"]["command"]["enum"] == ["kl", "compare", "pairwise", "frechet",
                                                       "derive", "demo"]


@pytest.mark.parametrize(("command", "args"), [
    ("kl", ("{p}", "{q}")),
    ("kl", ("{p}", "{q}", "--divergence", "renyi:0.5")),
    ("kl", ("{p}", "{q}", "--divergence", "hellinger")),
    ("compare", ("{a}", "{b}", *FAST)),
    ("compare", ("{a}", "{b}", "--bootstrap", "20", "--permutations", "20", "--fail-above",
                 "100", "--fail-p", "0.001")),
    ("compare", ("{a}", "{b}", *FAST, "--divergence", "hellinger")),
    ("compare", ("{a}", "{b}", *FAST, "--divergence", "renyi:0.5", "--fail-above", "100")),
    ("compare", ("{a}", "{b}", *FAST, "--mixture", "2")),
    ("pairwise", ("{groups}", "--by", "species")),
    ("pairwise", ("{groups}", "--by", "species", "--divergence", "jeffreys")),
    ("pairwise", ("{groups}", "--by", "species", "--top-k", "1")),
    ("pairwise", ("{small}", "--by", "g")),
    ("frechet", ("{a}", "{b}")),
    ("derive", ("-n", "2000")),
    ("derive", ("{p}", "{q}", "-n", "2000")),
    ("demo", ("-n", "2000", "--out", "{out}")),
])
def test_every_command_follows_the_schema(invoke, tmp_path, gaussian_files, sample_csvs,
                                          grouped_csv, small_groups, command, args):
    if "--mixture" in args:
        pytest.importorskip("sklearn.mixture")
    paths = {"p": gaussian_files[0], "q": gaussian_files[1], "a": sample_csvs[0],
             "b": sample_csvs[1], "groups": grouped_csv, "small": small_groups,
             "out": tmp_path / "demo"}
    result = invoke(command, *(a.format(**paths) for a in args), "--json")
    got = parse_output(result.stdout)  # the fixture validated it too
    assert got["schema"] == SCHEMA_ID and got["command"] == command
    assert got["gaussdiv"] == gaussdiv.__version__
    assert got["results"] and len(results(got)) == len(got["results"])  # names are unique
    for r in got["results"]:
        assert r["value"] is not None or r["reason"]


def test_a_non_finite_value_is_null_with_a_reason(invoke, gaussian_files):
    # 2Σ_Q − Σ_P is not positive definite, so the Rényi divergence of order 2 is +inf
    # (see test_kl_command_infinite_renyi_is_reported_not_an_error)
    p, q = gaussdiv.Gaussian([0.0, 1.0, -1.0], SPD_P), gaussdiv.Gaussian([1.0, 0.0, 0.0], SPD_Q)
    assert float(gaussdiv.renyi(p, q, 2.0)) == float(gaussdiv.renyi(q, p, 2.0)) == math.inf
    result = invoke("kl", *gaussian_files, "--divergence", "renyi:2", "--json")
    assert "Infinity" not in result.stdout and "NaN" not in result.stdout
    got = parse_output(result.stdout)
    for key in ("renyi_pq", "renyi_qp"):
        assert results(got)[key]["value"] is None
        assert results(got)[key]["reason"] == "the value is +infinity"
    assert "non_finite" not in got


def test_non_finite_numbers_outside_results_are_listed():
    payload = envelope("kl", {"p": {"scale": -math.inf}},
                       [record("a", "A", 1.0, low=math.nan), record("b", "B", math.inf)],
                       matrix={"groups": ["a", "b"], "values": [[0.0, math.inf], [1.0, 0.0]]})
    got = parse_output(json_text(payload))
    assert got["results"][0] == {"name": "a", "label": "A", "value": 1.0, "low": None}
    assert got["results"][1] == {"name": "b", "label": "B", "value": None,
                                 "reason": "the value is +infinity"}
    assert got["matrix"]["values"] == [[0.0, None], [1.0, 0.0]]
    assert got["non_finite"] == [{"path": "/inputs/p/scale", "was": "-infinity"},
                                 {"path": "/results/0/low", "was": "not a number"},
                                 {"path": "/matrix/values/0/1", "was": "+infinity"}]


@pytest.mark.parametrize("bad", [
    {"results": [{"name": "x", "label": "X", "value": None}]},  # null without a reason
    {"results": [{"name": "x", "label": "X", "value": 1.0, "surprise": 1}]},
    {"surprise": {}},
    {"command": "frobnicate"},
    {"schema": "gaussdiv-cli/0"},
])
def test_the_schema_rejects_what_it_should(bad):
    good = envelope("kl", {}, [record("x", "X", 1.0)])
    parse_output(json_text(good))
    with pytest.raises(jsonschema.ValidationError):
        parse_output(json_text({**good, **bad}))

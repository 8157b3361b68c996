"""``gaussdiv derive``: each identity's closed form is the library's, each Monte Carlo estimate
comes from the library's sampler, and a failed check exits with status 1."""

from __future__ import annotations

import numpy as np
import pytest
from cli_helpers import parse_output, results

import gaussdiv
from gaussdiv.cli import cmd_derive
from gaussdiv.cli.walkthrough import Step, builtin_pair, mean_of

N = 20_000


def _steps(invoke, *args) -> tuple[dict, dict]:
    """The JSON of ``gaussdiv derive ARGS -n N``, and its records by equation id."""
    got = parse_output(invoke("derive", *args, "-n", N, "--json").stdout)
    assert got["command"] == "derive"
    return got, results(got)


def test_builtin_pair_every_identity_holds(invoke):
    got, steps = _steps(invoke)
    p, q = builtin_pair()
    t = gaussdiv.kl_terms(p, q)
    assert got["all_hold"] and got["inputs"]["samples"] == N and got["inputs"]["seed"] == 0
    assert got["inputs"]["source"] == "built-in pair" and got["inputs"]["z_limit"] == 5
    assert [s["name"] for s in got["results"]] == ["(13)", "(18)", "(19)", "(20)", "(11)",
                                                   "(23)", "H_p(q)", "H_p(p)", "KL"]
    assert steps["(13)"]["value"] == 3
    assert steps["(18)"]["value"] == float(t.trace)
    assert steps["(19)"]["value"] == 0
    assert steps["(20)"]["value"] == float(t.trace) + float(t.mahalanobis)
    for eq in ("(11)", "(23)"):
        assert steps[eq]["value"] == float(t.kl)
    assert steps["H_p(q)"]["value"] == float(gaussdiv.cross_entropy(p, q))
    assert steps["H_p(p)"]["value"] == float(gaussdiv.entropy(p))
    assert steps["KL"]["value"] == pytest.approx(float(t.kl), rel=1e-14)
    for s in got["results"]:
        assert s["holds"] and s["label"]  # the label is the identity
        if s["name"] != "(23)":
            assert abs(s["z"]) < 5 and s["stderr"] > 0


def test_estimates_come_from_the_library_sampler(invoke):
    _, steps = _steps(invoke, "--seed", "4")
    p, q = builtin_pair()
    mc = gaussdiv.kl_mc(p, q, n=N, seed=4)
    assert steps["(11)"]["monte_carlo"] == float(mc.value)
    assert steps["(11)"]["stderr"] == float(mc.stderr)
    x = gaussdiv.sample(p, N, seed=4)
    assert steps["(13)"]["monte_carlo"] == pytest.approx(
        float(np.mean(p.cov.mahalanobis(x - p.mean))), rel=1e-14)
    assert steps["(20)"]["monte_carlo"] == pytest.approx(
        float(np.mean(q.cov.mahalanobis(x - q.mean))), rel=1e-14)


def test_from_files(invoke, gaussian_files):
    got, _ = _steps(invoke, *gaussian_files)
    assert got["inputs"]["source"].startswith("P = ") and got["all_hold"]
    assert got["inputs"]["p"]["mean"] == [0.0, 1.0, -1.0]


def test_equal_means_make_the_cross_term_exactly_zero(invoke, tmp_path):
    from cli_helpers import SPD_P, SPD_Q, write_json
    p = write_json(tmp_path / "p.json", {"mean": [1.0, 2.0, 3.0], "cov": SPD_P})
    q = write_json(tmp_path / "q.json", {"mean": [1.0, 2.0, 3.0], "cov": SPD_Q})
    _, steps = _steps(invoke, p, q)
    assert steps["(19)"]["monte_carlo"] == 0 and steps["(19)"]["z"] == 0


def test_text_walkthrough(invoke):
    out = invoke("derive", "-n", N).stdout
    for text in ("(13)", "= d", "(18)", "tr(Σ₂⁻¹Σ₁)", "(19)", "(20)", "(23)", "summed as written",
                 "H_p(q) − H_p(p)", "Monte Carlo", "z =", "All 8 Monte Carlo checks agree"):
        assert text in out
    assert "Σ₁ = [[" in out


def test_a_failed_check_exits_1(invoke, monkeypatch):
    bad = Step("(13)", "E = d", 3.0, mean_of(np.array([10.0, 10.1, 9.9, 10.0])))
    monkeypatch.setattr(cmd_derive, "derive", lambda p, q, n, seed: [bad])
    result = invoke("derive", code=1)
    assert "✗" in result.stdout and "disagrees" in result.stderr


def test_only_one_file_is_a_usage_error(invoke, gaussian_files):
    result = invoke("derive", gaussian_files[0], code=2)
    assert "give both P and Q" in result.stderr

"""``--divergence`` on ``kl``, ``compare`` and ``pairwise``: every name gives the library's value
on the same Gaussians (both ways, once when symmetric), labelled; bad names are one-line errors;
the default output is what it was before the option existed."""

from __future__ import annotations

import json

import numpy as np
import pytest
from cli_helpers import SPD_P, SPD_Q, one_line_error, write_csv
from test_cli_pairwise import GROUPS, group_gaussians

import gaussdiv
from gaussdiv.cli import cmd_pairwise

NO_W2 = not hasattr(gaussdiv, "wasserstein")
W2 = pytest.mark.skipif(NO_W2, reason="gaussdiv.wasserstein is not in this version of the "
                                      "library yet")

#: --divergence NAME → (the library call, symmetric, JSON key prefix, label symbol)
LIBRARY = {
    "kl": (lambda p, q: gaussdiv.kl(p, q), False, "kl", "KL"),
    "jeffreys": (lambda p, q: gaussdiv.jeffreys(p, q), True, "jeffreys", "J"),
    "renyi:0.5": (lambda p, q: gaussdiv.renyi(p, q, 0.5), False, "renyi", "D_0.5"),
    "renyi:1.5": (lambda p, q: gaussdiv.renyi(p, q, 1.5), False, "renyi", "D_1.5"),
    "bhattacharyya": (lambda p, q: gaussdiv.bhattacharyya(p, q), True, "bhattacharyya", "D_B"),
    "hellinger": (lambda p, q: gaussdiv.hellinger(p, q), True, "hellinger", "H"),
    "wasserstein": (lambda p, q: gaussdiv.wasserstein(p, q), True, "wasserstein", "W₂"),
}
NAMES = [pytest.param(n, marks=W2) if n == "wasserstein" else n for n in LIBRARY]
OTHERS = [n for n in NAMES if n != "kl"]
P = gaussdiv.Gaussian([0.0, 1.0, -1.0], SPD_P)
Q = gaussdiv.Gaussian([1.0, 0.0, 0.0], SPD_Q)
ALLOWED = "kl, jeffreys, renyi:ALPHA"


def lib(name: str, p: gaussdiv.Gaussian, q: gaussdiv.Gaussian) -> float:
    return float(LIBRARY[name][0](p, q))


def mle(x: np.ndarray) -> gaussdiv.Gaussian:
    return gaussdiv.Gaussian(x.mean(axis=0), np.cov(x, rowvar=False, bias=True))


# ---------------------------------------------------------------- gaussdiv kl

@pytest.mark.parametrize("name", OTHERS)
def test_kl_command_reports_the_divergence_both_ways(invoke, gaussian_files, name):
    _, symmetric, key, symbol = LIBRARY[name]
    got = json.loads(invoke("kl", *gaussian_files, "--divergence", name, "--json").stdout)
    assert got["divergence"] == name and got["p"]["dim"] == got["q"]["dim"] == 3
    out = invoke("kl", *gaussian_files, "--divergence", name).stdout
    if symmetric:
        assert got[key] == pytest.approx(lib(name, P, Q), rel=1e-14)
        assert f"{key}_pq" not in got and f"{symbol}(P, Q)" in out
        assert f"{got[key]:.10g}" in out
    else:
        assert got[f"{key}_pq"] == pytest.approx(lib(name, P, Q), rel=1e-14)
        assert got[f"{key}_qp"] == pytest.approx(lib(name, Q, P), rel=1e-14)
        assert f"{symbol}(P‖Q)" in out and f"{symbol}(Q‖P)" in out
        assert f"{got[f'{key}_pq']:.10g}" in out and f"{got[f'{key}_qp']:.10g}" in out
    assert "tr(Σ₂⁻¹Σ₁)" not in out  # the terms are KL's, shown only for KL


def test_kl_command_default_and_explicit_kl_are_the_same(invoke, gaussian_files):
    default = invoke("kl", *gaussian_files, "--json").stdout
    assert invoke("kl", *gaussian_files, "--divergence", "kl", "--json").stdout == default
    assert "divergence" not in json.loads(default)
    assert invoke("kl", *gaussian_files, "--divergence", "KL").stdout == \
        invoke("kl", *gaussian_files).stdout


def test_kl_command_infinite_renyi_is_reported_not_an_error(invoke, gaussian_files):
    # 2Σ_Q − Σ_P is not positive definite, so D_2 = +inf both ways.
    got = json.loads(invoke("kl", *gaussian_files, "--divergence", "renyi:2", "--json").stdout)
    assert got["renyi_pq"] == got["renyi_qp"] == "inf"
    assert "inf" in invoke("kl", *gaussian_files, "--divergence", "renyi:2").stdout


def test_renyi_order_is_normalised_and_order_one_is_kl(invoke, gaussian_files):
    got = json.loads(invoke("kl", *gaussian_files, "--divergence", " Renyi:0.50 ",
                            "--json").stdout)
    assert got["divergence"] == "renyi:0.5"
    one = json.loads(invoke("kl", *gaussian_files, "--divergence", "renyi:1", "--json").stdout)
    assert one["renyi_pq"] == float(gaussdiv.kl(P, Q))


# ---------------------------------------------------------------- compare

def _compare(invoke, files, *args, code=0) -> dict:
    return json.loads(invoke("compare", *files, "--estimator", "mle", *args, "--json",
                             code=code).stdout)


@pytest.mark.parametrize("name", OTHERS)
def test_compare_reports_the_divergence_of_the_fitted_gaussians(invoke, sample_csvs, samples,
                                                                name):
    _, symmetric, key, symbol = LIBRARY[name]
    got = _compare(invoke, sample_csvs, "--divergence", name, "--bootstrap", "0")
    pa, pb = mle(samples[0]), mle(samples[1])
    assert got["divergence"] == name and got["bootstrap"] is None
    assert "kl_ab" not in got and got["a"]["rows"] == 400
    expected = {key: lib(name, pa, pb)} if symmetric else {
        f"{key}_ab": lib(name, pa, pb), f"{key}_ba": lib(name, pb, pa)}
    for k, value in expected.items():
        assert got[k] == {"value": pytest.approx(value, rel=1e-12)}
    out = invoke("compare", *sample_csvs, "--estimator", "mle", "--divergence", name,
                 "--bootstrap", "0").stdout
    labels = [f"{symbol}(A, B)"] if symmetric else [f"{symbol}(A‖B)", f"{symbol}(B‖A)"]
    assert all(label in out for label in labels)
    assert "tr(Σ₂⁻¹Σ₁)" not in out


def test_compare_default_output_is_unchanged_by_explicit_kl(invoke, sample_csvs):
    args = ("--bootstrap", "20", "--fail-above", "0.01")
    default = invoke("compare", *sample_csvs, *args, "--json", code=1).stdout
    explicit = invoke("compare", *sample_csvs, *args, "--divergence", "kl", "--json",
                      code=1).stdout
    assert explicit == default
    got = json.loads(default)
    assert list(got) == ["a", "b", "columns", "dim", "kl_ab", "kl_ba", "jeffreys", "bootstrap",
                         "gate"]
    assert got["gate"]["divergence"] == "jeffreys"


@pytest.mark.parametrize("name", ["hellinger", "renyi:0.5"])
def test_compare_bootstrap_interval_is_of_the_chosen_divergence(invoke, sample_csvs, name):
    _, symmetric, key, _ = LIBRARY[name]
    got = _compare(invoke, sample_csvs, "--divergence", name, "--bootstrap", "60", "--seed",
                   "2", "--no-progress")
    keys = [key] if symmetric else [f"{key}_ab", f"{key}_ba"]
    assert [k for k in got if k.startswith(key)] == keys
    assert got["bootstrap"]["resamples"] == 60
    for k in keys:
        low, high = got[k]["ci"]
        assert 0 < low < got[k]["value"] < high and got[k]["bootstrap_stderr"] > 0
    assert got == _compare(invoke, sample_csvs, "--divergence", name, "--bootstrap", "60",
                           "--seed", "2", "--no-progress")


def test_compare_gate_on_a_symmetric_divergence(invoke, sample_csvs, samples):
    value = lib("hellinger", mle(samples[0]), mle(samples[1]))
    result = invoke("compare", *sample_csvs, "--estimator", "mle", "--divergence", "hellinger",
                    "--bootstrap", "0", "--fail-above", value / 2, "--json", code=1)
    gate = json.loads(result.stdout)["gate"]
    assert gate["divergence"] == "hellinger" and gate["exceeded"] is True
    assert gate["value"] == pytest.approx(value, rel=1e-12)
    assert "drift gate: H(A, B)" in result.stderr
    passed = _compare(invoke, sample_csvs, "--divergence", "hellinger", "--bootstrap", "0",
                      "--fail-above", value * 2)
    assert passed["gate"]["exceeded"] is False


def test_compare_gate_on_a_directional_divergence(invoke, sample_csvs):
    got = _compare(invoke, sample_csvs, "--divergence", "renyi:0.5", "--bootstrap", "0")
    ab, ba = got["renyi_ab"]["value"], got["renyi_ba"]["value"]
    between = (ab + ba) / 2
    larger = _compare(invoke, sample_csvs, "--divergence", "renyi:0.5", "--bootstrap", "0",
                      "--fail-above", between, code=1)["gate"]
    assert larger["divergence"] == "max(renyi_ab, renyi_ba)"
    assert larger["value"] == max(ab, ba) and larger["exceeded"]
    smaller = "ab" if ab < ba else "ba"
    one_way = _compare(invoke, sample_csvs, "--divergence", "renyi:0.5", "--bootstrap", "0",
                       "--fail-above", between, "--gate", smaller)["gate"]
    assert one_way["divergence"] == f"renyi_{smaller}" and one_way["exceeded"] is False
    assert one_way["value"] == min(ab, ba)


@pytest.mark.parametrize(("divergence", "gate", "fragment"), [
    ("hellinger", "kl-ab", "symmetric"),
    ("jeffreys", "ab", "symmetric"),
    ("renyi:0.5", "jeffreys", "--gate ab or ba"),
    ("renyi:0.5", "kl-ba", "--gate ab or ba"),
])
def test_compare_gate_that_does_not_fit_the_divergence(invoke, sample_csvs, divergence, gate,
                                                       fragment):
    one_line_error(invoke("compare", *sample_csvs, "--divergence", divergence, "--gate", gate,
                          "--fail-above", "1", code=2), f"--gate {gate}", fragment)


def test_compare_gate_named_after_the_symmetric_divergence_is_fine(invoke, sample_csvs):
    got = _compare(invoke, sample_csvs, "--divergence", "jeffreys", "--gate", "jeffreys",
                   "--bootstrap", "0", "--fail-above", "100")
    assert got["gate"]["divergence"] == "jeffreys" and got["gate"]["exceeded"] is False


# ---------------------------------------------------------------- pairwise

@pytest.mark.parametrize("name", NAMES)
def test_pairwise_matrix_is_the_library_divergence_of_each_pair(invoke, grouped_csv, name):
    _, symmetric, _, symbol = LIBRARY[name]
    got = json.loads(invoke("pairwise", grouped_csv, "--by", "species", "--divergence", name,
                            "--json").stdout)
    assert got["divergence"] == name and got["groups"] == GROUPS
    gs = group_gaussians(grouped_csv)
    matrix = np.array(got["matrix"], dtype=np.float64)  # +inf (Rényi, α > 1) is "inf" in JSON
    expected = np.array([[lib(name, p, q) for q in gs] for p in gs])
    np.testing.assert_allclose(matrix, expected, rtol=1e-12, atol=1e-15)
    if symmetric:
        np.testing.assert_array_equal(matrix, matrix.T)
    label = f"{symbol}(P, Q)" if symmetric else f"{symbol}(P‖Q)"
    assert label in got["definition"]
    assert f"{label}" in invoke("pairwise", grouped_csv, "--by", "species", "--divergence",
                                name).stdout


def test_pairwise_default_is_kl(invoke, grouped_csv):
    default = invoke("pairwise", grouped_csv, "--by", "species", "--json").stdout
    assert json.loads(default)["definition"] == "KL(P‖Q), row P, column Q"
    assert invoke("pairwise", grouped_csv, "--by", "species", "--divergence", "kl",
                  "--json").stdout == default


def test_pairwise_heatmap_title_names_the_divergence(invoke, grouped_csv, monkeypatch):
    drawn = []
    monkeypatch.setattr(cmd_pairwise, "heatmap", lambda *args, **kw: drawn.append(args))
    invoke("pairwise", grouped_csv, "--by", "species", "--divergence", "hellinger",
           "--heatmap", "h.png")
    invoke("pairwise", grouped_csv, "--by", "species", "--divergence", "renyi:0.5",
           "--heatmap", "r.png")
    (_, _, _, title, value_label), (_, _, _, renyi_title, _) = drawn
    assert title.startswith("Hellinger distance H(P, Q) between groups of groups.csv")
    assert value_label == "Hellinger distance"
    assert renyi_title.startswith("Rényi divergence of order 0.5 D_0.5(P‖Q) between groups")


# ---------------------------------------------------------------- bad values

BAD = [
    ("bogus", "unknown divergence"),
    ("renyi", "give the Rényi order"),
    ("renyi:", "finite number > 0"),
    ("renyi:0", "finite number > 0"),
    ("renyi:-0.5", "finite number > 0"),
    ("renyi:abc", "finite number > 0"),
    ("renyi:inf", "finite number > 0"),
    ("renyi:nan", "finite number > 0"),
    ("hellinger:0.5", "unknown divergence"),
    ("kl-ab", "unknown divergence"),
]


@pytest.mark.parametrize("command", ["kl", "compare", "pairwise"])
@pytest.mark.parametrize(("value", "fragment"), BAD)
def test_bad_divergence_is_a_one_line_error_naming_the_allowed_values(
        invoke, gaussian_files, sample_csvs, grouped_csv, command, value, fragment):
    args = {"kl": gaussian_files, "compare": sample_csvs,
            "pairwise": (grouped_csv, "--by", "species")}[command]
    one_line_error(invoke(command, *args, "--divergence", value, code=2),
                   f"--divergence {value}", fragment, ALLOWED, "wasserstein")


def test_divergence_missing_from_the_library_is_a_user_error(invoke, gaussian_files,
                                                             monkeypatch):
    monkeypatch.delattr(gaussdiv, "wasserstein", raising=False)
    one_line_error(invoke("kl", *gaussian_files, "--divergence", "wasserstein", code=2),
                   "--divergence wasserstein", "gaussdiv.wasserstein", "lacks")


def test_bad_divergence_is_reported_before_the_files_are_read(invoke, tmp_path):
    one_line_error(invoke("compare", tmp_path / "none.csv", tmp_path / "none.csv",
                          "--divergence", "nope", code=2), "--divergence nope")


def test_help_lists_the_divergences(invoke):
    for command in ("kl", "compare", "pairwise"):
        out = invoke(command, "--help").stdout
        assert "--divergence NAME" in out and "renyi:ALPHA" in out and "wasserstein" in out


def test_pairwise_symmetric_small_groups_with_shrinkage(invoke, tmp_path):
    rng = np.random.default_rng(4)
    rows = [[g, *(repr(float(v)) for v in rng.standard_normal(4) + k)]
            for k, g in enumerate(("u", "v", "w")) for _ in range(6)]
    path = write_csv(tmp_path / "few.csv", ["g", "c1", "c2", "c3", "c4"], rows)
    got = json.loads(invoke("pairwise", path, "--by", "g", "--divergence", "bhattacharyya",
                            "--json").stdout)
    matrix = np.array(got["matrix"])
    assert got["fits"]["u"]["estimator"] == "oas"
    assert np.all(np.diag(matrix) == 0) and np.all(matrix[~np.eye(3, dtype=bool)] > 0)

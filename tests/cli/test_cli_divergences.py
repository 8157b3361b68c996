"""``--divergence`` on ``kl``, ``compare`` and ``pairwise``: every name gives the library's value
on the same Gaussians (both ways, once when symmetric), labelled; bad names are one-line errors;
the default output is what it was before the option existed."""

from __future__ import annotations

from statistics import NormalDist

import numpy as np
import pytest
from cli_helpers import SPD_P, SPD_Q, one_line_error, parse_output, restored, results, write_csv
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


def keys(name: str) -> list[str]:
    """The result names of a divergence reported both ways (once when symmetric)."""
    _, symmetric, key, _ = LIBRARY[name]
    return [key] if symmetric else [f"{key}_ab", f"{key}_ba"]


# ---------------------------------------------------------------- gaussdiv kl

def _kl(invoke, files, *args) -> dict:
    return parse_output(invoke("kl", *files, *args, "--json").stdout)


@pytest.mark.parametrize("name", OTHERS)
def test_kl_command_reports_the_divergence_both_ways(invoke, gaussian_files, name):
    _, symmetric, key, symbol = LIBRARY[name]
    got = _kl(invoke, gaussian_files, "--divergence", name)
    assert got["command"] == "kl" and got["inputs"]["divergence"] == name
    assert got["inputs"]["p"]["dim"] == got["inputs"]["q"]["dim"] == 3
    r = results(got)
    out = invoke("kl", *gaussian_files, "--divergence", name).stdout
    if symmetric:
        assert list(r) == [key] and r[key]["label"] == f"{symbol}(P, Q)"
        assert r[key]["value"] == pytest.approx(lib(name, P, Q), rel=1e-14)
        assert f"{symbol}(P, Q)" in out
        assert f"{r[key]['value']:.10g}" in out
    else:
        assert list(r) == [f"{key}_pq", f"{key}_qp"]
        assert r[f"{key}_pq"]["label"] == f"{symbol}(P‖Q)"
        assert r[f"{key}_qp"]["label"] == f"{symbol}(Q‖P)"
        assert r[f"{key}_pq"]["value"] == pytest.approx(lib(name, P, Q), rel=1e-14)
        assert r[f"{key}_qp"]["value"] == pytest.approx(lib(name, Q, P), rel=1e-14)
        assert f"{symbol}(P‖Q)" in out and f"{symbol}(Q‖P)" in out
        assert f"{r[f'{key}_pq']['value']:.10g}" in out
        assert f"{r[f'{key}_qp']['value']:.10g}" in out
    assert all("terms" not in record for record in r.values())
    assert "tr(Σ₂⁻¹Σ₁)" not in out  # the terms are KL's, shown only for KL


def test_kl_command_default_and_explicit_kl_are_the_same(invoke, gaussian_files):
    default = invoke("kl", *gaussian_files, "--json").stdout
    assert invoke("kl", *gaussian_files, "--divergence", "kl", "--json").stdout == default
    got = parse_output(default)
    assert got["inputs"]["divergence"] == "kl"
    assert list(results(got)) == ["kl_pq", "kl_qp", "jeffreys"]
    assert invoke("kl", *gaussian_files, "--divergence", "KL").stdout == \
        invoke("kl", *gaussian_files).stdout


def test_kl_command_infinite_renyi_is_reported_not_an_error(invoke, gaussian_files):
    # 2Σ_Q − Σ_P is not positive definite, so D_2 = +inf both ways.
    assert float(gaussdiv.renyi(P, Q, 2.0)) == float(gaussdiv.renyi(Q, P, 2.0)) == np.inf
    got = _kl(invoke, gaussian_files, "--divergence", "renyi:2")
    for key in ("renyi_pq", "renyi_qp"):
        assert results(got)[key]["value"] is None
        assert results(got)[key]["reason"] == "the value is +infinity"
    assert "non_finite" not in got  # result values say why they are null themselves
    assert "inf" in invoke("kl", *gaussian_files, "--divergence", "renyi:2").stdout


def test_renyi_order_is_normalised_and_order_one_is_kl(invoke, gaussian_files):
    got = _kl(invoke, gaussian_files, "--divergence", " Renyi:0.50 ")
    assert got["inputs"]["divergence"] == "renyi:0.5"
    assert results(got)["renyi_pq"]["label"] == "D_0.5(P‖Q)"
    one = _kl(invoke, gaussian_files, "--divergence", "renyi:1")
    assert results(one)["renyi_pq"]["value"] == float(gaussdiv.kl(P, Q))


# ---------------------------------------------------------------- compare

FAST = ("--bootstrap", "0", "--permutations", "0")
GROUPS_PER_SET = 50  # the delete-a-group jackknife's groups per data set


def _compare(invoke, files, *args, code=0) -> dict:
    return parse_output(invoke("compare", *files, "--estimator", "mle", *args, "--json",
                               code=code).stdout)


def jackknifed(name: str, a: np.ndarray, b: np.ndarray) -> list[tuple[float, float]]:
    """(bias-corrected value, standard error) of the divergence between the MLE fits, D(A‖B)
    then D(B‖A) (once when symmetric), by the delete-a-group jackknife: each data set's rows
    in 50 groups of consecutive rows, each group left out of its data set in turn."""
    out = []
    for forward in [True] if LIBRARY[name][1] else [True, False]:
        def d(x: np.ndarray, y: np.ndarray, forward: bool = forward) -> float:
            return lib(name, mle(x), mle(y)) if forward else lib(name, mle(y), mle(x))

        theta = d(a, b)
        value, variance = theta, 0.0
        for k, x in enumerate((a, b)):
            groups = np.array_split(np.arange(len(x)), GROUPS_PER_SET)
            left = np.array([d(np.delete(x, g, axis=0), b) if k == 0 else
                             d(a, np.delete(x, g, axis=0)) for g in groups])
            g = len(groups)
            value -= (g - 1) * (left.mean() - theta)
            variance += (g - 1) / g * np.sum((left - left.mean()) ** 2)
        out.append((value, float(np.sqrt(variance))))
    return out


@pytest.mark.parametrize("name", OTHERS)
def test_compare_reports_the_divergence_of_the_fitted_gaussians(invoke, sample_csvs, samples,
                                                                name):
    _, symmetric, _, symbol = LIBRARY[name]
    got = _compare(invoke, sample_csvs, "--divergence", name, *FAST)
    pa, pb = mle(samples[0]), mle(samples[1])
    assert got["inputs"]["divergence"] == name and got["inputs"]["estimator"] == "mle"
    assert got["interval"]["method"] == "jackknife" and got["interval"]["resamples"] == 0
    assert got["correction"] == "jackknife"
    r = results(got)
    assert list(r) == keys(name) and got["inputs"]["a"]["rows"] == 400
    plugins = [lib(name, pa, pb)] if symmetric else [lib(name, pa, pb), lib(name, pb, pa)]
    z = NormalDist().inv_cdf(0.975)
    for k, plugin, (unbiased, stderr) in zip(keys(name), plugins,
                                             jackknifed(name, *samples), strict=True):
        assert r[k]["plugin"] == pytest.approx(plugin, rel=1e-12)
        assert r[k]["unbiased"] == pytest.approx(unbiased, rel=1e-8)
        assert r[k]["value"] == max(r[k]["unbiased"], 0.0)
        assert r[k]["stderr"] == pytest.approx(stderr, rel=1e-8)
        assert r[k]["low"] == pytest.approx(max(unbiased - z * stderr, 0.0), rel=1e-8)
        assert r[k]["high"] == pytest.approx(unbiased + z * stderr, rel=1e-8)
        assert 0 <= r[k]["low"] <= r[k]["value"] <= r[k]["high"] and r[k]["stderr"] > 0
    out = invoke("compare", *sample_csvs, "--estimator", "mle", "--divergence", name,
                 *FAST).stdout
    labels = [f"{symbol}(A, B)"] if symmetric else [f"{symbol}(A‖B)", f"{symbol}(B‖A)"]
    assert [r[k]["label"] for k in keys(name)] == labels
    assert all(label in out for label in labels)
    assert "tr(Σ₂⁻¹Σ₁)" not in out


def test_compare_default_output_is_unchanged_by_explicit_kl(invoke, sample_csvs):
    args = ("--bootstrap", "20", "--permutations", "20", "--fail-above", "0.01")
    default = invoke("compare", *sample_csvs, *args, "--json", code=1).stdout
    explicit = invoke("compare", *sample_csvs, *args, "--divergence", "kl", "--json",
                      code=1).stdout
    assert explicit == default
    got = parse_output(default)
    assert list(got) == ["schema", "command", "gaussdiv", "inputs", "results", "p_value",
                         "permutations", "interval", "correction", "columns", "gate", "notes"]
    assert got["inputs"]["divergence"] == "kl"
    assert list(results(got)) == ["kl_ab", "kl_ba", "jeffreys"]
    assert got["gate"]["fail_above"]["tests"] == "jeffreys"


@pytest.mark.parametrize("name", ["hellinger", "renyi:0.5"])
def test_compare_interval_is_the_jackknife_of_the_chosen_divergence(invoke, sample_csvs,
                                                                    samples, name):
    # other divergences have no exact bias correction: jackknife, not bootstrap, intervals
    args = ("--divergence", name, "--bootstrap", "60", "--permutations", "0", "--seed", "2",
            "--confidence", "0.9", "--no-progress")
    got = _compare(invoke, sample_csvs, *args)
    assert list(results(got)) == keys(name)
    assert got["interval"] == {"method": "jackknife", "confidence": 0.9, "resamples": 0,
                               "seed": 2}
    z = NormalDist().inv_cdf(0.95)
    for k, (unbiased, stderr) in zip(keys(name), jackknifed(name, *samples), strict=True):
        record = results(got)[k]
        assert 0 < record["low"] < record["value"] < record["high"] and record["stderr"] > 0
        assert record["low"] == pytest.approx(unbiased - z * stderr, rel=1e-8)
        assert record["high"] == pytest.approx(unbiased + z * stderr, rel=1e-8)
    assert got == _compare(invoke, sample_csvs, *args)


def test_compare_gate_on_a_symmetric_divergence(invoke, sample_csvs, samples):
    got = _compare(invoke, sample_csvs, "--divergence", "hellinger", *FAST)
    value = results(got)["hellinger"]["value"]
    assert value == pytest.approx(jackknifed("hellinger", *samples)[0][0], rel=1e-8)
    result = invoke("compare", *sample_csvs, "--estimator", "mle", "--divergence", "hellinger",
                    *FAST, "--fail-above", value / 2, "--json", code=1)
    gate = parse_output(result.stdout)["gate"]
    assert gate["fired"] is True and gate["fail_above"]["fired"] is True
    assert gate["fail_above"]["tests"] == "hellinger"
    assert gate["fail_above"]["value"] == value
    assert gate["fail_above"]["threshold"] == value / 2
    assert "drift gate: H(A, B)" in result.stderr
    passed = _compare(invoke, sample_csvs, "--divergence", "hellinger", *FAST,
                      "--fail-above", value * 2)
    assert passed["gate"]["fired"] is False and passed["gate"]["fail_above"]["fired"] is False


def test_compare_gate_on_a_directional_divergence(invoke, sample_csvs):
    got = results(_compare(invoke, sample_csvs, "--divergence", "renyi:0.5", *FAST))
    ab, ba = got["renyi_ab"]["value"], got["renyi_ba"]["value"]
    between = (ab + ba) / 2
    larger = _compare(invoke, sample_csvs, "--divergence", "renyi:0.5", *FAST,
                      "--fail-above", between, code=1)["gate"]
    assert larger["fail_above"]["tests"] == ("renyi_ab" if ab > ba else "renyi_ba")
    assert larger["fail_above"]["value"] == max(ab, ba)
    assert larger["fail_above"]["fired"] and larger["fired"]
    smaller = "ab" if ab < ba else "ba"
    one_way = _compare(invoke, sample_csvs, "--divergence", "renyi:0.5", *FAST,
                       "--fail-above", between, "--gate", smaller)["gate"]
    assert one_way["fail_above"]["tests"] == f"renyi_{smaller}"
    assert one_way["fail_above"]["fired"] is False and one_way["fired"] is False
    assert one_way["fail_above"]["value"] == min(ab, ba)


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
                   *FAST, "--fail-above", "100")
    assert got["gate"]["fail_above"]["tests"] == "jeffreys"
    assert got["gate"]["fail_above"]["fired"] is False and got["gate"]["fired"] is False


# ---------------------------------------------------------------- pairwise

def _pairwise(invoke, path, *args) -> dict:
    return parse_output(invoke("pairwise", path, "--by", "species", *args, "--json").stdout)


@pytest.mark.parametrize("name", NAMES)
def test_pairwise_matrix_is_the_library_divergence_of_each_pair(invoke, grouped_csv, name):
    _, symmetric, _, symbol = LIBRARY[name]
    got = _pairwise(invoke, grouped_csv, "--divergence", name)
    assert got["inputs"]["divergence"] == name and got["matrix"]["groups"] == GROUPS
    gs = group_gaussians(grouped_csv)
    # +inf (Rényi, α > 1) is null in JSON, listed under non_finite
    matrix = np.array(restored(got, "matrix", "values"), dtype=np.float64)
    expected = np.array([[lib(name, p, q) for q in gs] for p in gs])
    np.testing.assert_allclose(matrix, expected, rtol=1e-12, atol=1e-15)
    r = results(got)
    pairs = [(i, j) for i in range(3) for j in range(3) if i != j and (i < j or not symmetric)]
    assert list(r) == [f"{GROUPS[i]}->{GROUPS[j]}" for i, j in pairs]
    for i, j in pairs:
        record = r[f"{GROUPS[i]}->{GROUPS[j]}"]
        if np.isfinite(expected[i, j]):
            assert record["value"] == matrix[i, j]
        else:
            assert record["value"] is None and record["reason"] == "the value is +infinity"
    if symmetric:
        np.testing.assert_array_equal(matrix, matrix.T)
    label = f"{symbol}(P, Q)" if symmetric else f"{symbol}(P‖Q)"
    assert label in got["inputs"]["definition"]
    assert f"{label}" in invoke("pairwise", grouped_csv, "--by", "species", "--divergence",
                                name).stdout


def test_pairwise_infinite_entries_are_null_and_listed(invoke, grouped_csv):
    gs = group_gaussians(grouped_csv)
    assert float(gaussdiv.renyi(gs[1], gs[2], 1.5)) == np.inf  # what the next lines rely on
    got = _pairwise(invoke, grouped_csv, "--divergence", "renyi:1.5")
    assert got["matrix"]["values"][1][2] is None
    assert got["non_finite"] == [{"path": "/matrix/values/1/2", "was": "+infinity"}]
    assert results(got)["versicolor->virginica"]["reason"] == "the value is +infinity"


def test_pairwise_default_is_kl(invoke, grouped_csv):
    default = invoke("pairwise", grouped_csv, "--by", "species", "--json").stdout
    got = parse_output(default)
    assert got["inputs"]["definition"] == "KL(P‖Q), row P, column Q"
    assert got["inputs"]["divergence"] == "kl"
    assert invoke("pairwise", grouped_csv, "--by", "species", "--divergence", "kl",
                  "--json").stdout == default


def test_pairwise_heatmap_title_names_the_divergence(invoke, grouped_csv, monkeypatch):
    drawn = []
    monkeypatch.setattr(cmd_pairwise, "heatmap",
                        lambda *args, **kw: drawn.append(args) or b"PNG")
    invoke("pairwise", grouped_csv, "--by", "species", "--divergence", "hellinger",
           "--heatmap", "h.png")
    invoke("pairwise", grouped_csv, "--by", "species", "--divergence", "renyi:0.5",
           "--heatmap", "r.png")
    (_, _, title, value_label), (_, _, renyi_title, _) = drawn
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
    result = invoke("pairwise", path, "--by", "g", "--divergence", "bhattacharyya", "--json")
    assert ("the smallest group has fewer than 40 rows for 4 dimensions; every group is "
            "fitted with oas shrinkage") in result.stderr
    got = parse_output(result.stdout)
    matrix = np.array(got["matrix"]["values"])
    assert got["inputs"]["estimator"] == "oas"
    assert np.all(np.diag(matrix) == 0) and np.all(matrix[~np.eye(3, dtype=bool)] > 0)
    assert list(results(got)) == ["u->v", "u->w", "v->w"]

"""Inputs a tester broke the command line with, each now a one-line user error (exit 2) or a
correct result: numbers beyond float64, extreme log-variances, text in Parquet files, data at
1e300, negative seeds, huge -n, non-ASCII digits, NaN thresholds, complex arrays; library errors
that name the files; no floating-point warnings on stderr; no partial output files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from cli_helpers import one_line_error, parse_output, quietly, results, write_csv, write_json

import gaussdiv
from gaussdiv.cli.samples import MAX_MAGNITUDE, is_number
from gaussdiv.cli.walkthrough import MAX_VALUES, max_draws

GOOD = {"mean": [0.0, 0.0], "cov": [[1.0, 0.0], [0.0, 1.0]]}


def _data(n: int = 40, d: int = 2, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((n, d))


# ---------------------------------------------------------------- numbers beyond float64

@pytest.mark.parametrize("number", ["1" + "0" * 399, "1e400", "-1e400"])
def test_number_beyond_float64_in_a_gaussian_file(invoke, tmp_path, number):
    big = tmp_path / "big.json"
    big.write_text(f'{{"mean": [{number}, 0], "cov": [[1, 0], [0, 1]]}}')
    good = write_json(tmp_path / "good.json", GOOD)
    one_line_error(invoke("kl", big, good, code=2), "big.json", "beyond the range of float64",
                   number[:12])


@pytest.mark.parametrize(("value", "fragment"), [
    ("[" * 40 + "0" + "]" * 40, "nested at most 32 deep"),
    ("[" * 100_000 + "]" * 100_000, "nested too deeply"),
    ('["1", "2"]', "'mean' is not a numeric array"),
    ("[true, false]", "'mean' is not a numeric array"),
    ("[0, null]", "'mean' is not a numeric array"),
    ('[[1, 2], [3]]', "'mean' is not a rectangular array"),
])
def test_json_arrays_hold_numbers_only(invoke, tmp_path, value, fragment):
    odd = tmp_path / "odd.json"
    odd.write_text(f'{{"mean": {value}, "cov": [[1, 0], [0, 1]]}}')
    good = write_json(tmp_path / "good.json", GOOD)
    one_line_error(invoke("kl", good, odd, code=2), "odd.json", fragment)


# ---------------------------------------------------------------- extreme log-variances

@pytest.mark.parametrize("divergence", ["kl", "jeffreys", "renyi:0.5", "bhattacharyya",
                                        "hellinger", "wasserstein"])
@pytest.mark.parametrize("logvar", [-1500.0, 1500.0])
def test_extreme_logvar_in_kl_is_a_result_or_a_user_error(invoke, tmp_path, divergence,
                                                          logvar):
    extreme = write_json(tmp_path / "extreme.json", {"mean": [0, 0], "logvar": [logvar, 0]})
    good = write_json(tmp_path / "good.json", GOOD)
    for p, q in ((extreme, good), (good, extreme)):
        result = invoke("kl", p, q, "--divergence", divergence, "--json", code=None)
        assert result.exit_code in (0, 2), result.stderr
        if result.exit_code == 2:  # which file the library blames is its own business
            one_line_error(result, ".json")
        else:
            parse_output(result.stdout)


@pytest.mark.parametrize("logvar", [-1500.0, 1500.0])
def test_derive_on_extreme_logvar_prints_no_warnings(invoke, tmp_path, logvar):
    extreme = write_json(tmp_path / "extreme.json", {"mean": [0, 0], "logvar": [logvar, 0]})
    good = write_json(tmp_path / "good.json", GOOD)
    for pair in ((extreme, good), (good, extreme)):
        for extra in ((), ("--json",)):
            result = quietly(invoke, "derive", *pair, "-n", "200", *extra, code=None)
            assert result.exit_code in (0, 1, 2), result.stderr
            assert "Warning" not in result.stderr


# ---------------------------------------------------------------- Parquet with text

@pytest.fixture
def text_parquets(tmp_path):
    pd = pytest.importorskip("pandas")
    pytest.importorskip("pyarrow")
    a, b = _data(60), _data(50, seed=1) + 0.3
    paths = []
    for name, x, tag in (("a", a, "u"), ("b", b, "v")):
        frame = pd.DataFrame({"x": x[:, 0], "y": x[:, 1], "tag": [tag] * len(x),
                              "g": np.where(np.arange(len(x)) % 2, "even", "odd")})
        frame.loc[3, "tag"] = None
        frame.to_parquet(tmp_path / f"{name}.parquet")
        paths.append(tmp_path / f"{name}.parquet")
    return paths


def test_parquet_text_column_in_compare_is_named(invoke, text_parquets):
    one_line_error(invoke("compare", *text_parquets, code=2), "a.parquet", "column 'tag'",
                   "not numeric", "row 1: 'u'")
    got = parse_output(invoke("compare", *text_parquets, "-c", "x,y", "--bootstrap", "20",
                              "--permutations", "20", "--json").stdout)
    assert got["inputs"]["columns"] == ["x", "y"]


def test_parquet_text_column_in_pairwise(invoke, text_parquets):
    one_line_error(invoke("pairwise", text_parquets[0], "--by", "g", code=2), "column 'tag'",
                   "not numeric")
    got = parse_output(invoke("pairwise", text_parquets[0], "--by", "g", "-c", "x,y",
                              "--json").stdout)
    assert got["matrix"]["groups"] == ["even", "odd"]


# ---------------------------------------------------------------- data at extreme scales

@pytest.mark.parametrize("estimator", ["oas", "mle", "auto"])
@pytest.mark.parametrize("scale", [1e300, 1e200, 1e-300])
def test_compare_on_data_float64_cannot_fit(invoke, tmp_path, estimator, scale):
    a = write_csv(tmp_path / "a.csv", ["x", "y"], _data() * scale)
    b = write_csv(tmp_path / "b.csv", ["x", "y"], _data(seed=1) * scale)
    result = quietly(invoke, "compare", a, b, "--estimator", estimator, "--bootstrap", "10",
                     "--permutations", "10", code=2)
    one_line_error(result, "a.csv", "column 'x'", "rescale it")


def test_pairwise_and_frechet_on_data_float64_cannot_fit(invoke, tmp_path):
    rows = [["a" if i % 2 else "b", *(repr(float(v)) for v in x)]
            for i, x in enumerate(_data() * 1e300)]
    groups = write_csv(tmp_path / "g.csv", ["g", "x", "y"], rows)
    one_line_error(quietly(invoke, "pairwise", groups, "--by", "g", "--estimator", "oas",
                           code=2), "g.csv", "column 'x'", f"above {MAX_MAGNITUDE:g}")
    np.save(tmp_path / "a.npy", _data() * 1e200)
    np.save(tmp_path / "b.npy", _data(seed=1))
    one_line_error(quietly(invoke, "frechet", tmp_path / "a.npy", tmp_path / "b.npy", code=2),
                   "a.npy", "column '0'", "row 1")


def test_extreme_but_representable_scales_still_work(invoke, tmp_path):
    for scale in (1e140, 1e-140):
        a = write_csv(tmp_path / "a.csv", ["x", "y"], _data() * scale)
        b = write_csv(tmp_path / "b.csv", ["x", "y"], (_data(seed=1) + 0.5) * scale)
        got = parse_output(quietly(invoke, "compare", a, b, "--bootstrap", "20",
                                   "--permutations", "20", "--json").stdout)
        plain = write_csv(tmp_path / "p.csv", ["x", "y"], _data())
        other = write_csv(tmp_path / "o.csv", ["x", "y"], _data(seed=1) + 0.5)
        ref = parse_output(invoke("compare", plain, other, "--bootstrap", "20",
                                  "--permutations", "20", "--json").stdout)
        assert results(got)["jeffreys"]["plugin"] == pytest.approx(
            results(ref)["jeffreys"]["plugin"], rel=1e-9)  # KL does not depend on units


# ---------------------------------------------------------------- seeds and -n

@pytest.mark.parametrize("args", [
    ["derive", "-n", "100"],
    ["compare", "a.csv", "b.csv", "--bootstrap", "5", "--permutations", "5"],
    ["demo", "-n", "100"],
])
@pytest.mark.parametrize("seed", ["-1", str(2**32)])
def test_seed_outside_0_to_2_32_is_a_usage_error(invoke, tmp_path, args, seed):
    write_csv(tmp_path / "a.csv", ["x", "y"], _data())
    write_csv(tmp_path / "b.csv", ["x", "y"], _data(seed=1))
    result = invoke(*args, "--seed", seed, code=2)
    assert "Invalid value for '--seed'" in result.stderr and "4294967295" in result.stderr
    assert "Traceback" not in result.stderr


def test_largest_seed_is_accepted(invoke, tmp_path):
    got = parse_output(invoke("derive", "-n", "100", "--seed", str(2**32 - 1), "--json").stdout)
    assert got["inputs"]["seed"] == 2**32 - 1


@pytest.mark.parametrize("n", [str(10**14), str(max_draws(3) + 1)])
def test_derive_refuses_more_draws_than_it_can_hold(invoke, n):
    one_line_error(invoke("derive", "-n", n, code=2), f"--samples {n}",
                   f"at most {MAX_VALUES // 4} draws in d = 3")


def test_derive_n_in_scientific_notation_is_a_usage_error(invoke):
    result = invoke("derive", "-n", "1e14", code=2)
    assert "'1e14' is not a valid integer" in result.stderr


def test_demo_refuses_too_many_draws_before_writing(invoke, tmp_path):
    one_line_error(invoke("demo", "--out", "d", "-n", str(10**9), code=2), "--samples")
    assert not (tmp_path / "d").exists()


# ---------------------------------------------------------------- what a number is

@pytest.mark.parametrize("cell", ["1_000", "١٢٣", "１２", "0x10", "1.0.0", "−1", "\u00a01"])
def test_non_ascii_or_python_only_numbers_are_not_numeric(invoke, tmp_path, cell):
    good = write_csv(tmp_path / "good.csv", ["x", "y"], _data())
    rows = [[repr(float(v)) for v in row] for row in _data(seed=1)]
    rows[4][1] = cell
    odd = write_csv(tmp_path / "odd.csv", ["x", "y"], rows)
    one_line_error(invoke("compare", good, odd, code=2), "odd.csv", "column 'y'",
                   "not numeric", "line 6")
    one_line_error(invoke("frechet", good, odd, code=2), "odd.csv", "column 'y'", "line 6")


def test_feature_file_without_header_detects_text_digits(invoke, tmp_path):
    (tmp_path / "a.csv").write_text("١,٢\n1,2\n3,5\n")  # not numbers, so a header
    (tmp_path / "b.csv").write_text("1,2\n3,4\n5,7\n")
    got = parse_output(invoke("frechet", tmp_path / "a.csv", tmp_path / "b.csv",
                              "--json").stdout)
    assert got["inputs"]["a"]["rows"] == 2 and got["inputs"]["b"]["rows"] == 3


@pytest.mark.parametrize("cell", ["1", "-2.5", "+.5", "5.", "1e5", "1E-5", " 3 ", "inf", "-nan",
                                  "Infinity"])
def test_plain_ascii_numbers_are_numbers(cell):
    assert is_number(cell)


def test_number_beyond_float64_in_a_csv(invoke, tmp_path):
    good = write_csv(tmp_path / "good.csv", ["x", "y"], _data())
    rows = [[repr(float(v)) for v in row] for row in _data(seed=1)]
    rows[0][0] = "1e400"
    odd = write_csv(tmp_path / "odd.csv", ["x", "y"], rows)
    one_line_error(invoke("compare", good, odd, code=2), "odd.csv", "column 'x'",
                   "beyond float64's range", "'1e400'")


# ---------------------------------------------------------------- thresholds

@pytest.mark.parametrize(("option", "value"), [
    ("--fail-above", "nan"), ("--fail-above", "inf"), ("--fail-above", "-inf"),
    ("--fail-p", "nan"), ("--confidence", "nan"),
])
def test_non_finite_thresholds_are_usage_errors(invoke, sample_csvs, option, value):
    result = invoke("compare", *sample_csvs, option, value, code=2)
    assert f"Invalid value for '{option}'" in result.stderr
    assert "is not a finite number" in result.stderr


# ---------------------------------------------------------------- library errors name files

def _raise_when(function, order, message):
    """``function`` of (p, q, ...), raising ``message`` instead when called on ``order`` (the
    first entries of p's and q's means)."""
    def wrapped(p, q, *args, **kwargs):
        if (float(np.asarray(p.mean)[0]), float(np.asarray(q.mean)[0])) == order:
            raise gaussdiv.NotPositiveDefiniteError(message)
        return function(p, q, *args, **kwargs)
    return wrapped


def test_kl_error_in_the_reverse_direction_names_the_files(invoke, tmp_path, monkeypatch):
    p = write_json(tmp_path / "p.json", {"mean": [1.0, 0.0], "cov": GOOD["cov"]})
    q = write_json(tmp_path / "q.json", GOOD)
    monkeypatch.setattr(gaussdiv, "kl_terms", _raise_when(
        gaussdiv.kl_terms, (0.0, 1.0),
        "p's covariance is numerically singular, so KL(p‖q) is undefined"))
    error = one_line_error(invoke("kl", p, q, code=2))  # KL(Q‖P): the library's p is Q
    assert f"{q}'s covariance is numerically singular, so KL({q}‖{p})" in error


def test_divergence_error_in_the_reverse_direction_names_the_files(invoke, tmp_path,
                                                                   monkeypatch):
    p = write_json(tmp_path / "p.json", {"mean": [1.0, 0.0], "cov": GOOD["cov"]})
    q = write_json(tmp_path / "q.json", GOOD)
    monkeypatch.setattr(gaussdiv, "renyi", _raise_when(gaussdiv.renyi, (0.0, 1.0),
                                                       "q's covariance: bad"))
    error = one_line_error(invoke("kl", p, q, "--divergence", "renyi:0.5", code=2))
    assert f"Error: {p}'s covariance: bad" == error


def test_derive_error_names_the_files(invoke, tmp_path, monkeypatch):
    p = write_json(tmp_path / "p.json", {"mean": [1.0, 0.0], "cov": GOOD["cov"]})
    q = write_json(tmp_path / "q.json", GOOD)
    log_prob = gaussdiv.log_prob

    def failing(g, x):  # the library calls its Gaussian p, whichever it is given
        if float(np.asarray(g.mean)[0]) == 0.0:
            raise gaussdiv.NonFiniteError("p has a log-density of -inf at a draw")
        return log_prob(g, x)

    monkeypatch.setattr(gaussdiv, "log_prob", failing)
    error = one_line_error(invoke("derive", p, q, "-n", "100", code=2))
    assert error == f"Error: {q} has a log-density of -inf at a draw"


def test_unnamed_fit_errors_name_the_files_and_groups(invoke, tmp_path, monkeypatch):
    from gaussdiv.cli import fitting

    def singular(*args, **kwargs):
        raise gaussdiv.NotPositiveDefiniteError("cov is not positive definite")

    a = write_csv(tmp_path / "a.csv", ["x", "y"], _data())
    b = write_csv(tmp_path / "b.csv", ["x", "y"], _data(seed=1))
    monkeypatch.setattr(gaussdiv, "compare", singular)
    one_line_error(invoke("compare", a, b, code=2), f"{a} vs {b}: cov is not positive")
    rows = [["u" if i % 2 else "v", *(repr(float(v)) for v in x)]
            for i, x in enumerate(_data())]
    groups = write_csv(tmp_path / "g.csv", ["g", "x", "y"], rows)
    monkeypatch.setattr(fitting, "fit_samples", singular)
    one_line_error(invoke("pairwise", groups, "--by", "g", code=2),
                   f"{groups}: group 'u': cov is not positive")


# ---------------------------------------------------------------- complex arrays

def test_complex_gaussian_npz_is_refused(invoke, tmp_path):
    np.savez(tmp_path / "c.npz", mean=np.zeros(2) + 1j, cov=np.eye(2))
    good = write_json(tmp_path / "good.json", GOOD)
    one_line_error(quietly(invoke, "kl", good, tmp_path / "c.npz", code=2), "c.npz",
                   "'mean' holds complex numbers")


def test_complex_sample_and_feature_files_are_refused(invoke, tmp_path):
    np.save(tmp_path / "c.npy", _data() + 0j)
    np.savez(tmp_path / "c.npz", features=_data() + 1j)
    np.save(tmp_path / "r.npy", _data(seed=1))
    one_line_error(invoke("compare", tmp_path / "r.npy", tmp_path / "c.npy", code=2), "c.npy",
                   "complex")
    for name in ("c.npy", "c.npz"):
        one_line_error(invoke("frechet", tmp_path / "r.npy", tmp_path / name, code=2), name,
                       "complex")


# ---------------------------------------------------------------- no partial output

def test_pairwise_leaves_no_partial_output(invoke, grouped_csv, tmp_path, monkeypatch):
    kept = tmp_path / "m.csv"
    kept.write_text("before")
    write_bytes = Path.write_bytes

    def failing(self, data):
        if self.name.endswith(".png.partial"):
            raise OSError(28, "No space left on device")
        return write_bytes(self, data)

    monkeypatch.setattr(Path, "write_bytes", failing)
    one_line_error(invoke("pairwise", grouped_csv, "--by", "species", "-o", kept,
                          "--heatmap", "h.png", "--force", code=2), "h.png", "No space left")
    assert kept.read_text() == "before"  # the file --force would have replaced is kept
    assert not (tmp_path / "h.png").exists()
    assert not list(tmp_path.glob(".*.partial"))


def test_demo_leaves_no_partial_output(invoke, tmp_path, monkeypatch):
    write_bytes = Path.write_bytes

    def failing(self, data):
        raise OSError(13, "Permission denied")

    monkeypatch.setattr(Path, "write_bytes", failing)
    one_line_error(invoke("demo", "--out", "d", "-n", "200", code=2), "heatmap.png",
                   "Permission denied")
    assert not (tmp_path / "d").exists()
    monkeypatch.setattr(Path, "write_bytes", write_bytes)
    invoke("demo", "--out", "d", "-n", "200")
    assert sorted(p.name for p in (tmp_path / "d").iterdir()) == [
        ".gaussdiv-demo", "heatmap.png", "kl_matrix.csv", "wine.csv"]


def test_mixture_kl_does_not_depend_on_units(invoke, tmp_path):
    pytest.importorskip("sklearn.mixture")
    got = {}
    for scale in (1.0, 1e100, 1e-100):  # at 1e100 the Monte Carlo's squares overflowed
        a = write_csv(tmp_path / "a.csv", ["x", "y"], _data(80) * scale)
        b = write_csv(tmp_path / "b.csv", ["x", "y"], (_data(70, seed=1) * [1.5, 0.7] + 0.4)
                      * scale)
        got[scale] = parse_output(quietly(invoke, "compare", a, b, "--bootstrap", "0",
                                          "--permutations", "0", "--mixture", "2",
                                          "--json").stdout)["mixture"]
    for scale in (1e100, 1e-100):
        for key in ("kl_ab", "kl_ba"):
            for field in ("lower", "mc", "mc_stderr", "upper", "variational"):
                assert got[scale][key][field] == pytest.approx(got[1.0][key][field], rel=1e-9,
                                                               abs=1e-12)


def test_mixture_convergence_doubts_are_notes(invoke, tmp_path):
    pytest.importorskip("sklearn.mixture")
    few = np.repeat(_data(4), 3, axis=0)  # 12 rows, 4 distinct points, 5 components
    a = write_csv(tmp_path / "a.csv", ["x", "y"], few)
    b = write_csv(tmp_path / "b.csv", ["x", "y"], _data(seed=1))
    result = quietly(invoke, "compare", a, b, "--mixture", "5", "--bootstrap", "0",
                     "--permutations", "0", "--estimator", "oas", code=None)
    assert result.exit_code in (0, 2), result.stderr
    assert "Warning" not in result.stderr
    assert f"{a}: 5-component mixture: Number of distinct clusters (4)" in result.stderr


def test_mixture_fit_failure_is_a_user_error(invoke, tmp_path, monkeypatch):
    mixture = pytest.importorskip("sklearn.mixture")

    def fail(self, x):
        raise ValueError("Fitting the mixture model failed because some components have "
                         "ill-defined empirical covariance. Try to decrease n_components.")

    monkeypatch.setattr(mixture.GaussianMixture, "fit", fail)
    a = write_csv(tmp_path / "a.csv", ["x", "y"], _data())
    b = write_csv(tmp_path / "b.csv", ["x", "y"], _data(seed=1))
    one_line_error(invoke("compare", a, b, "--mixture", "2", "--bootstrap", "0",
                          "--permutations", "0", code=2), "a.csv",
                   "the 2-component mixture cannot be fitted (Fitting the mixture model failed",
                   "try a smaller --mixture")


def test_identical_extreme_gaussians_are_zero_apart(invoke, tmp_path):
    p = write_json(tmp_path / "p.json", {"mean": [0, 0], "logvar": [-1500, 0]})
    got = results(parse_output(quietly(invoke, "kl", p, p, "--json").stdout))
    assert got["kl_pq"]["value"] == got["kl_qp"]["value"] == got["jeffreys"]["value"] == 0.0

"""Bad input: each gives one 'Error: ...' line on stderr naming the file or column, exit
status 2, and no traceback."""

from __future__ import annotations

import sys

import numpy as np
import pytest
from cli_helpers import SPD_P, one_line_error, write_csv, write_json

import gaussdiv
import gaussdiv.cli
import gaussdiv.cli.app

# ---------------------------------------------------------------- gaussdiv kl: Gaussian files

GOOD = {"mean": [0.0, 0.0], "cov": [[1.0, 0.0], [0.0, 1.0]]}


@pytest.mark.parametrize(("name", "content", "fragments"), [
    ("bad.json", "{not json", ["bad.json", "not valid JSON"]),
    ("list.json", "[1, 2]", ["list.json", "JSON object"]),
    ("nomean.json", '{"cov": [[1.0]]}', ["nomean.json", "no 'mean' key"]),
    ("keys.json", '{"mean": [0], "covariance": [[1]]}',
     ["keys.json", "cannot tell the covariance", "covariance"]),
    ("two.json", '{"mean": [0], "cov": [[1]], "precision": [[1]]}',
     ["two.json", "cov, precision"]),
    ("text.json", '{"mean": ["a", "b"], "cov": [[1, 0], [0, 1]]}',
     ["text.json", "'mean' is not a numeric array"]),
    ("indef.json", '{"mean": [0, 0], "cov": [[1, 2], [2, 1]]}',
     ["indef.json", "not positive definite"]),
    ("asym.json", '{"mean": [0, 0], "cov": [[1, 0.5], [0, 1]]}', ["asym.json", "symmetric"]),
    ("shape.json", '{"mean": [0, 0, 0], "cov": [[1, 0], [0, 1]]}', ["shape.json", "dimension"]),
    ("nan.json", '{"mean": [0, NaN], "cov": [[1, 0], [0, 1]]}', ["nan.json", "NaN"]),
    ("batch.json", '{"mean": [[0, 0], [1, 1]], "cov": [[1, 0], [0, 1]]}',
     ["batch.json", "batch"]),
    ("gauss.txt", "{}", ["gauss.txt", "unknown Gaussian file type"]),
])
def test_bad_gaussian_files(invoke, tmp_path, name, content, fragments):
    (tmp_path / name).write_text(content)
    good = write_json(tmp_path / "good.json", GOOD)
    one_line_error(invoke("kl", good, tmp_path / name, code=2), *fragments)


def test_missing_gaussian_file(invoke, tmp_path):
    good = write_json(tmp_path / "good.json", GOOD)
    one_line_error(invoke("kl", tmp_path / "nope.json", good, code=2), "nope.json",
                   "no such file")


def test_gaussian_file_is_a_folder(invoke, tmp_path):
    good = write_json(tmp_path / "good.json", GOOD)
    one_line_error(invoke("kl", good, tmp_path, code=2), "is a folder")


def test_corrupt_npz(invoke, tmp_path):
    (tmp_path / "bad.npz").write_bytes(b"not a zip file")
    good = write_json(tmp_path / "good.json", GOOD)
    one_line_error(invoke("kl", good, tmp_path / "bad.npz", code=2), "bad.npz")


def test_dimension_mismatch_names_the_second_file(invoke, tmp_path):
    good = write_json(tmp_path / "good.json", GOOD)
    three = write_json(tmp_path / "three.json", {"mean": [0, 0, 0], "cov": SPD_P})
    one_line_error(invoke("kl", good, three, code=2), "three.json", "d=3", "d=2")


def test_derive_with_a_bad_file(invoke, tmp_path):
    good = write_json(tmp_path / "good.json", GOOD)
    one_line_error(invoke("derive", good, tmp_path / "gone.json", code=2), "gone.json")


# ---------------------------------------------------------------- compare: sample files

def _data(n: int = 40, d: int = 3, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((n, d))


@pytest.fixture
def good_csv(tmp_path):
    return write_csv(tmp_path / "good.csv", ["x", "y", "z"], _data())


@pytest.mark.parametrize(("name", "text", "fragments"), [
    ("empty.csv", "", ["empty.csv", "empty file"]),
    ("header.csv", "x,y,z\n", ["header.csv", "no data rows"]),
    ("ragged.csv", "x,y,z\n1,2,3\n4,5\n", ["ragged.csv", "line 3 has 2 fields"]),
    ("words.csv", "x,y,z\n1,2,3\n4,five,6\n", ["words.csv", "column 'y'", "line 3", "'five'"]),
    ("inf.csv", "x,y,z\n1,2,3\n4,inf,6\n", ["inf.csv", "column 'y'", "infinite"]),
    ("dup.csv", "x,x,z\n1,2,3\n", ["dup.csv", "column 'x' appears twice"]),
    ("noname.csv", "x,,z\n1,2,3\n", ["noname.csv", "header field 2 is empty"]),
    ("data.txt", "x,y,z\n1,2,3\n", ["data.txt", "unknown sample file type"]),
])
def test_bad_sample_files(invoke, tmp_path, good_csv, name, text, fragments):
    (tmp_path / name).write_text(text)
    one_line_error(invoke("compare", good_csv, tmp_path / name, "--bootstrap", "0", code=2),
                   *fragments)


def test_missing_sample_file(invoke, tmp_path, good_csv):
    one_line_error(invoke("compare", tmp_path / "absent.csv", good_csv, code=2), "absent.csv",
                   "no such file")


def test_mismatched_columns_name_both_sides(invoke, tmp_path, good_csv):
    other = write_csv(tmp_path / "other.csv", ["x", "y", "w"], _data(seed=1))
    one_line_error(invoke("compare", good_csv, other, code=2), "other.csv", "lacks z",
                   "extra w", "--columns")


def test_unknown_selected_column(invoke, tmp_path, good_csv):
    other = write_csv(tmp_path / "other.csv", ["x", "y"], _data(d=2, seed=1))
    one_line_error(invoke("compare", good_csv, other, "-c", "x,z", code=2), "other.csv",
                   "no column 'z'")


def test_fewer_rows_than_dimensions_suggests_shrinkage(invoke, tmp_path, good_csv):
    few = write_csv(tmp_path / "few.csv", ["x", "y", "z"], _data(n=3))
    one_line_error(invoke("compare", good_csv, few, "--estimator", "mle", code=2), "few.csv",
                   "3 rows for 3 columns", "singular", "use shrinkage",
                   "(--estimator oas or ledoit-wolf)")


def test_exact_bias_correction_needs_more_than_d_plus_2_rows(invoke, tmp_path, good_csv):
    five = write_csv(tmp_path / "five.csv", ["x", "y", "z"], _data(n=5))
    error = one_line_error(invoke("compare", good_csv, five, "--estimator", "mle",
                                  "--bootstrap", "0", "--permutations", "0", code=2),
                           "five.csv", "5 rows for 3 columns",
                           "the exact bias correction needs more than d + 2 = 5 rows",
                           "--estimator oas")
    assert "estimator='" not in error  # the library's spelling is translated to the CLI's
    six = write_csv(tmp_path / "six.csv", ["x", "y", "z"], _data(n=6))
    invoke("compare", good_csv, six, "--estimator", "mle", "--bootstrap", "0",
           "--permutations", "0")
    invoke("compare", good_csv, five, "--estimator", "oas", "--bootstrap", "0",
           "--permutations", "0")


def test_one_row_is_too_few_even_for_shrinkage(invoke, tmp_path, good_csv):
    one = write_csv(tmp_path / "one.csv", ["x", "y", "z"], _data(n=1))
    one_line_error(invoke("compare", good_csv, one, code=2), "one.csv", "at least 2")


def test_constant_column_is_named(invoke, tmp_path, good_csv):
    x = _data()
    x[:, 1] = 4.0
    flat = write_csv(tmp_path / "flat.csv", ["x", "y", "z"], x)
    error = one_line_error(invoke("compare", flat, good_csv, "--estimator", "mle", code=2),
                           "flat.csv", "column 'y' is constant", "variance is zero",
                           "leave it out", "use shrinkage (--estimator oas)")
    assert "estimator='" not in error


def test_dependent_column_is_named(invoke, tmp_path, good_csv):
    x = _data()
    x[:, 2] = x[:, 0] - 2 * x[:, 1]
    dep = write_csv(tmp_path / "dep.csv", ["x", "y", "z"], x)
    one_line_error(invoke("compare", good_csv, dep, "--estimator", "mle", code=2), "dep.csv",
                   "singular", "rank 2 of 3", "linear combination")


def test_strict_rejects_missing_values(invoke, tmp_path, good_csv):
    gaps = tmp_path / "gaps.csv"
    gaps.write_text("x,y,z\n1,2,3\n4,,6\n7,8,9\n1,1,2\n2,2,1\n")
    one_line_error(invoke("compare", good_csv, gaps, "--strict", code=2), "gaps.csv",
                   "line 3, column 'y'", "--strict")


def test_bad_npy(invoke, tmp_path, good_csv):
    np.save(tmp_path / "cube.npy", np.zeros((2, 2, 2)))
    one_line_error(invoke("compare", good_csv, tmp_path / "cube.npy", code=2), "cube.npy",
                   "2-D array")
    (tmp_path / "junk.npy").write_bytes(b"junk")
    one_line_error(invoke("compare", good_csv, tmp_path / "junk.npy", code=2), "junk.npy")


def test_parquet_without_pandas_says_what_to_install(invoke, tmp_path, good_csv, monkeypatch):
    (tmp_path / "a.parquet").write_bytes(b"PAR1")
    monkeypatch.setitem(sys.modules, "pandas", None)
    one_line_error(invoke("compare", good_csv, tmp_path / "a.parquet", code=2), "a.parquet",
                   "pip install pandas pyarrow")


def test_corrupt_parquet(invoke, tmp_path, good_csv):
    pytest.importorskip("pandas")
    pytest.importorskip("pyarrow")
    (tmp_path / "bad.parquet").write_bytes(b"not parquet at all")
    one_line_error(invoke("compare", good_csv, tmp_path / "bad.parquet", code=2), "bad.parquet")


# ---------------------------------------------------------------- pairwise

def _grouped(tmp_path, sizes: dict[str, int], d: int = 3):
    rng = np.random.default_rng(1)
    rows = [[g, *(repr(float(v)) for v in rng.standard_normal(d))]
            for g, n in sizes.items() for _ in range(n)]
    return write_csv(tmp_path / "grouped.csv", ["g", *(f"c{k}" for k in range(d))], rows)


def test_group_with_fewer_rows_than_dimensions(invoke, tmp_path):
    path = _grouped(tmp_path, {"big": 40, "small": 2})
    one_line_error(invoke("pairwise", path, "--by", "g", "--estimator", "mle", code=2),
                   "grouped.csv", "group 'small'", "2 rows for 3 columns", "singular",
                   "use shrinkage (--estimator oas or ledoit-wolf)")


def test_constant_column_in_a_group_is_named(invoke, tmp_path):
    rng = np.random.default_rng(2)
    rows = [[g, *(repr(float(v)) for v in rng.standard_normal(2)),
             "1.0" if g == "flat" else repr(float(rng.standard_normal()))]
            for g in ("flat", "fine") for _ in range(40)]
    path = write_csv(tmp_path / "grouped.csv", ["g", "c0", "c1", "c2"], rows)
    one_line_error(invoke("pairwise", path, "--by", "g", "--estimator", "mle", code=2),
                   "grouped.csv: group 'flat': column 'c2' is constant", "variance is zero",
                   "use shrinkage (--estimator oas)")


def test_single_group(invoke, tmp_path):
    path = _grouped(tmp_path, {"only": 40})
    one_line_error(invoke("pairwise", path, "--by", "g", code=2), "only 1 group")


def test_missing_by_column(invoke, tmp_path):
    path = _grouped(tmp_path, {"a": 40, "b": 40})
    one_line_error(invoke("pairwise", path, "--by", "label", code=2), "grouped.csv",
                   "no column 'label'")


def test_by_column_cannot_be_fitted(invoke, tmp_path):
    path = _grouped(tmp_path, {"a": 40, "b": 40})
    one_line_error(invoke("pairwise", path, "--by", "c0", "-c", "c0,c1", code=2), "'c0'")


def test_text_column_suggests_columns(invoke, tmp_path):
    path = write_csv(tmp_path / "mixed.csv", ["g", "x", "note"],
                     [["a", "1", "hi"], ["b", "2", "yo"]])
    one_line_error(invoke("pairwise", path, "--by", "g", code=2), "mixed.csv", "column 'note'",
                   "--columns")


@pytest.mark.parametrize(("option", "target", "fragments"), [
    ("-o", "matrix.txt", ["matrix.txt", ".csv or .json"]),
    ("--heatmap", "plot.jpg", ["plot.jpg", ".png"]),
    ("-o", "no/such/dir/m.csv", ["m.csv", "does not exist"]),
])
def test_bad_output_paths(invoke, tmp_path, option, target, fragments):
    path = _grouped(tmp_path, {"a": 40, "b": 40})
    one_line_error(invoke("pairwise", path, "--by", "g", option, tmp_path / target, code=2),
                   *fragments)


def test_demo_out_is_a_file(invoke, tmp_path):
    (tmp_path / "taken").write_text("x")
    one_line_error(invoke("demo", "--out", tmp_path / "taken", code=2), "taken",
                   "not a folder")


# ---------------------------------------------------------------- the group and entry point

def test_library_errors_become_one_line_user_errors(invoke, gaussian_files, monkeypatch):
    def boom(p, q):
        raise gaussdiv.NotPositiveDefiniteError("cov is not positive definite at index 3")

    monkeypatch.setattr(gaussdiv, "kl_terms", boom)
    one_line_error(invoke("kl", *gaussian_files, code=2), "not positive definite")


def test_unknown_subcommand_and_option_are_usage_errors(invoke):
    assert invoke("frobnicate", code=2).exit_code == 2
    assert "No such option" in invoke("kl", "--bogus", code=2).stderr


def test_missing_cli_extra_says_what_to_install(monkeypatch, capsys):
    monkeypatch.delitem(sys.modules, "gaussdiv.cli.app")
    monkeypatch.setitem(sys.modules, "click", None)
    with pytest.raises(SystemExit) as exc:
        gaussdiv.cli.main(["--help"])
    assert exc.value.code == 2  # a usage error, like every other problem of the set-up
    out, err = capsys.readouterr()
    assert out == ""
    assert err.strip().splitlines() == [
        "gaussdiv: the command line needs the 'cli' extra (click is missing): "
        'pip install "gaussdiv[cli]"']

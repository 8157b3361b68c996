"""``gaussdiv frechet A B``: the FID of two feature files is :func:`gaussdiv.frechet_distance`
of their arrays (and the textbook formula with scipy's sqrtm), from every file format; bad
files are one-line errors naming the file."""

from __future__ import annotations

import numpy as np
import pytest
from cli_helpers import one_line_error, parse_output, results
from scipy.linalg import sqrtm

import gaussdiv


@pytest.fixture
def features() -> tuple[np.ndarray, np.ndarray]:
    """Two well-conditioned 5-d feature sets (120 and 90 rows) with different Gaussians."""
    rng = np.random.default_rng(21)
    mix = np.eye(5) + 0.3 * rng.standard_normal((5, 5))
    a = rng.standard_normal((120, 5)) @ mix.T + 1.0
    b = rng.standard_normal((90, 5)) * [1.0, 1.5, 0.8, 1.2, 1.0] + [0.5, 1.0, 0.0, -0.5, 2.0]
    return a, b


@pytest.fixture
def npy_files(tmp_path, features):
    np.save(tmp_path / "a.npy", features[0])
    np.save(tmp_path / "b.npy", features[1])
    return tmp_path / "a.npy", tmp_path / "b.npy"


def textbook_fid(a: np.ndarray, b: np.ndarray) -> float:
    """‖μ_a − μ_b‖² + tr(Σ_a + Σ_b − 2 (Σ_a Σ_b)^½), np.cov with ddof = 1."""
    sa, sb = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    root = np.real(sqrtm(sa @ sb))
    return float(np.sum((a.mean(0) - b.mean(0)) ** 2) + np.trace(sa + sb - 2 * root))


def _json(invoke, a, b, code=0) -> dict:
    return parse_output(invoke("frechet", a, b, "--json", code=code).stdout)


def _fid(invoke, a, b) -> float:
    """The one result, FID(A, B), of ``gaussdiv frechet A B --json``."""
    return results(_json(invoke, a, b))["fid"]["value"]


def test_fid_is_the_library_value_and_the_textbook_formula(invoke, npy_files, features):
    got = _json(invoke, *npy_files)
    a, b = features
    assert got["command"] == "frechet"
    assert [(r["name"], r["label"]) for r in got["results"]] == [("fid", "FID(A, B)")]
    fid = results(got)["fid"]["value"]
    assert fid == pytest.approx(float(gaussdiv.frechet_distance(a, b)), rel=1e-12)
    assert fid == pytest.approx(textbook_fid(a, b), rel=1e-8)
    assert got["inputs"]["a"] == {"path": str(npy_files[0]), "rows": 120, "dim": 5}
    assert got["inputs"]["b"] == {"path": str(npy_files[1]), "rows": 90, "dim": 5}
    assert "ddof=1" in got["inputs"]["definition"]


def test_table_output(invoke, npy_files):
    out = invoke("frechet", *npy_files).stdout
    fid = _fid(invoke, *npy_files)
    assert "(n = 120, d = 5)" in out and "(n = 90, d = 5)" in out
    assert f"FID = {fid:.10g}" in out


def test_same_features_give_zero(invoke, npy_files):
    assert _fid(invoke, npy_files[0], npy_files[0]) == pytest.approx(0.0, abs=1e-10)


def test_every_file_format_gives_the_npy_value(invoke, tmp_path, npy_files, features):
    a = features[0]
    expected = _fid(invoke, *npy_files)
    np.savez(tmp_path / "one.npz", a)
    np.savez(tmp_path / "named.npz", labels=np.arange(len(a)), features=a)
    np.savetxt(tmp_path / "plain.csv", a, delimiter=",")  # no header
    np.savetxt(tmp_path / "plain.tsv", a, delimiter="\t")
    header = ",".join(f"f{k}" for k in range(5))
    np.savetxt(tmp_path / "named.csv", a, delimiter=",", header=header, comments="")
    numbered = ",".join(str(k) for k in range(5))  # pandas' header for unnamed columns
    np.savetxt(tmp_path / "numbered.csv", a, delimiter=",", header=numbered, comments="")
    for name in ("one.npz", "named.npz", "plain.csv", "plain.tsv", "named.csv",
                 "numbered.csv"):
        got = _json(invoke, tmp_path / name, npy_files[1])
        assert got["inputs"]["a"]["rows"] == 120 and got["inputs"]["a"]["dim"] == 5, name
        assert results(got)["fid"]["value"] == pytest.approx(expected, rel=1e-12), name


def test_float32_and_integer_features_are_read_as_float64(invoke, tmp_path, features):
    a, b = features
    np.save(tmp_path / "a32.npy", a.astype(np.float32))
    np.save(tmp_path / "bint.npy", np.round(b * 10).astype(np.int64))
    got = _fid(invoke, tmp_path / "a32.npy", tmp_path / "bint.npy")
    expected = gaussdiv.frechet_distance(a.astype(np.float32).astype(np.float64),
                                         np.round(b * 10))
    assert got == pytest.approx(float(expected), rel=1e-12)


# ---------------------------------------------------------------- errors

def test_different_dimensions_name_the_second_file(invoke, tmp_path, npy_files):
    np.save(tmp_path / "four.npy", np.random.default_rng(0).standard_normal((50, 4)))
    one_line_error(invoke("frechet", npy_files[0], tmp_path / "four.npy", code=2), "four.npy",
                   "d=4", "d=5")


@pytest.mark.parametrize(("name", "write", "fragments"), [
    ("one.npy", lambda p: np.save(p, np.ones((1, 5))), ["one.npy", "1 row(s)", "at least 2"]),
    ("flat.npy", lambda p: np.save(p, np.ones(5)), ["flat.npy", "2-D array", "(5,)"]),
    ("cube.npy", lambda p: np.save(p, np.ones((2, 2, 2))), ["cube.npy", "2-D array"]),
    ("text.npy", lambda p: np.save(p, np.array([["a", "b"], ["c", "d"]])),
     ["text.npy", "dtype", "expected numbers"]),
    ("nan.npy", lambda p: np.save(p, np.array([[1.0, 2.0], [3.0, np.nan], [1.0, 1.0]])),
     ["nan.npy", "row 2", "non-finite"]),
    ("junk.npy", lambda p: p.write_bytes(b"junk"), ["junk.npy", "not a .npy file"]),
    ("two.npz", lambda p: np.savez(p, x=np.ones((3, 2)), y=np.ones((3, 2))),
     ["two.npz", "2 arrays (x, y)", "'features'"]),
    ("junk.npz", lambda p: p.write_bytes(b"not a zip"), ["junk.npz", "not a .npz file"]),
    ("words.csv", lambda p: p.write_text("a,b\n1,2\n3,oops\n"),
     ["words.csv", "column 'b'", "line 3", "'oops'"]),
    ("gap.csv", lambda p: p.write_text("1,2\n3,\n5,6\n"), ["gap.csv", "missing values"]),
    ("empty.csv", lambda p: p.write_text(""), ["empty.csv", "empty file"]),
    ("header.tsv", lambda p: p.write_text("a\tb\n"), ["header.tsv", "no data rows"]),
    ("ragged.tsv", lambda p: p.write_text("1\t2\n3\n"), ["ragged.tsv", "line 2 has 1 field"]),
    ("features.txt", lambda p: p.write_text("1,2\n"), ["features.txt", "unknown feature file"]),
])
def test_bad_feature_files(invoke, tmp_path, npy_files, name, write, fragments):
    write(tmp_path / name)
    one_line_error(invoke("frechet", tmp_path / name, npy_files[1], code=2), *fragments)


def test_missing_file_and_folder(invoke, tmp_path, npy_files):
    one_line_error(invoke("frechet", npy_files[0], tmp_path / "gone.npy", code=2), "gone.npy",
                   "no such file")
    one_line_error(invoke("frechet", tmp_path, npy_files[0], code=2), "is a folder")




def test_help_describes_the_formats(invoke):
    out = invoke("frechet", "--help").stdout
    for text in (".npy", ".npz", ".csv", ".tsv", "features", "ddof", "--json"):
        assert text in out


# ------------------------------------------------------------------ statistics files (mu, sigma)
def test_statistics_archives_give_the_feature_value(invoke, tmp_path):
    """pytorch-fid's --save-stats archive (mu, sigma) in place of either feature file: the same
    FID as from the features, also with rank-deficient covariances (n < d)."""
    rng = np.random.default_rng(5)
    a, b = rng.standard_normal((40, 64)), 1.2 * rng.standard_normal((30, 64)) + 0.1
    np.save(tmp_path / "a.npy", a)
    np.save(tmp_path / "b.npy", b)
    np.savez(tmp_path / "a.npz", mu=a.mean(0), sigma=np.cov(a, rowvar=False))
    np.savez(tmp_path / "b.npz", mu=b.mean(0), sigma=np.cov(b, rowvar=False))
    expected = float(gaussdiv.frechet_distance(a, b))
    for pair in (("a.npz", "b.npy"), ("a.npy", "b.npz"), ("a.npz", "b.npz")):
        got = _json(invoke, *(tmp_path / name for name in pair))
        assert results(got)["fid"]["value"] == pytest.approx(expected, rel=1e-12)
    got = _json(invoke, tmp_path / "a.npz", tmp_path / "b.npy")
    assert got["inputs"]["a"] == {"path": str(tmp_path / "a.npz"), "statistics": True, "dim": 64}
    table = invoke("frechet", tmp_path / "a.npz", tmp_path / "b.npy").stdout
    assert "(statistics, d = 64)" in table


@pytest.mark.parametrize(("mu", "sigma", "message"), [
    (np.zeros(3), -np.eye(3), "'sigma' is not positive semidefinite"),
    (np.zeros(3), np.eye(2), "'sigma' must be the 3 × 3 covariance"),
    (np.zeros((3, 1)), np.eye(3), "'mu' must be a vector"),
    (np.array([0.0, np.nan, 0.0]), np.eye(3), "'mu' has a non-finite value"),
])
def test_bad_statistics_are_one_line_errors(invoke, tmp_path, mu, sigma, message):
    np.savez(tmp_path / "s.npz", mu=mu, sigma=sigma)
    np.save(tmp_path / "x.npy", np.random.default_rng(0).standard_normal((10, 3)))
    error = one_line_error(invoke("frechet", tmp_path / "s.npz", tmp_path / "x.npy", code=2))
    assert message in error and "s.npz" in error


def test_float32_statistics_keep_float32_rounding(invoke, tmp_path):
    """A float32 sigma is semidefinite to float32's rounding only (eigenvalues ≈ −1e-7 of the
    largest): accepted as such, and the FID is the features' to float32 accuracy."""
    rng = np.random.default_rng(7)
    mix = 0.1 * rng.standard_normal((64, 64))
    a = rng.standard_normal((40, 64)) @ mix + 1.0
    b = rng.standard_normal((30, 64)) @ mix
    for name, x in (("a", a), ("b", b)):
        np.savez(tmp_path / f"{name}.npz", mu=x.mean(0).astype(np.float32),
                 sigma=np.cov(x, rowvar=False).astype(np.float32))
    expected = float(gaussdiv.frechet_distance(a, b))
    assert _fid(invoke, tmp_path / "a.npz", tmp_path / "b.npz") == pytest.approx(expected,
                                                                             rel=1e-4)

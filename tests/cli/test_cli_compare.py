"""``gaussdiv compare``: numbers equal to the library's on the fitted Gaussians, intervals,
the drift gate, column handling and every sample file format."""

from __future__ import annotations

import json

import numpy as np
import pytest
from cli_helpers import write_csv
from sklearn.covariance import OAS

import gaussdiv


def mle(x: np.ndarray) -> gaussdiv.Gaussian:
    return gaussdiv.Gaussian(x.mean(axis=0), np.cov(x, rowvar=False, bias=True))


def _json(invoke, *args, code=0) -> dict:
    return json.loads(invoke("compare", *args, "--json", code=code).stdout)


def test_mle_matches_the_library_on_np_cov(invoke, sample_csvs, samples):
    got = _json(invoke, *sample_csvs, "--estimator", "mle", "--bootstrap", "0")
    pa, pb = mle(samples[0]), mle(samples[1])
    ab, ba = gaussdiv.kl_terms(pa, pb), gaussdiv.kl_terms(pb, pa)
    for key, terms in (("kl_ab", ab), ("kl_ba", ba)):
        for field in ("kl", "trace", "logdet_ratio", "mahalanobis"):
            assert got[key][field] == pytest.approx(float(getattr(terms, field)), rel=1e-12)
    assert got["jeffreys"]["value"] == pytest.approx(float(ab.kl + ba.kl), rel=1e-12)
    assert got["a"] == {"path": str(sample_csvs[0]), "rows": 400, "estimator": "mle"}
    assert got["columns"] == ["x", "y", "z"] and got["dim"] == 3


def test_table_output(invoke, sample_csvs):
    out = invoke("compare", *sample_csvs, "--bootstrap", "20").stdout
    for text in ("KL(A‖B)", "KL(B‖A)", "Jeffreys", "95% interval", "20 resamples",
                 "columns: x, y, z", "(400 rows, mle)"):
        assert text in out


def test_bootstrap_interval_brackets_the_estimate_and_is_reproducible(invoke, sample_csvs):
    args = (*sample_csvs, "--bootstrap", "200", "--seed", "3", "--confidence", "0.9")
    first, second = _json(invoke, *args), _json(invoke, *args)
    assert first == second
    assert first["bootstrap"] == {"resamples": 200, "confidence": 0.9, "seed": 3,
                                  "method": "percentile"}
    for key in ("kl_ab", "kl_ba", "jeffreys"):
        value = first[key]["kl"] if key != "jeffreys" else first[key]["value"]
        low, high = first[key]["ci"]
        assert 0 < low < value < high
        assert first[key]["bootstrap_stderr"] > 0
    other = _json(invoke, *sample_csvs, "--bootstrap", "200", "--seed", "4")
    assert other["kl_ab"]["ci"] != first["kl_ab"]["ci"]


@pytest.mark.parametrize(("threshold", "gate", "code"), [
    (0.01, "jeffreys", 1), (100.0, "jeffreys", 0), (0.01, "kl-ba", 1), (100.0, "kl-ab", 0)])
def test_drift_gate(invoke, sample_csvs, threshold, gate, code):
    result = invoke("compare", *sample_csvs, "--bootstrap", "0", "--fail-above", threshold,
                    "--gate", gate, "--json", code=code)
    got = json.loads(result.stdout)
    assert got["gate"]["exceeded"] is bool(code)
    assert got["gate"]["divergence"] == gate and got["gate"]["threshold"] == threshold
    assert ("drift gate" in result.stderr) is bool(code)


def test_gate_on_the_same_data_passes(invoke, sample_csvs):
    got = _json(invoke, sample_csvs[0], sample_csvs[0], "--bootstrap", "0", "--fail-above", "0")
    assert got["jeffreys"]["value"] == 0.0 and not got["gate"]["exceeded"]


def test_columns_are_matched_by_name_and_can_be_selected(invoke, tmp_path, samples):
    a, b = samples
    a_file = write_csv(tmp_path / "a.csv", ["x", "y", "z"], a)
    b_file = write_csv(tmp_path / "b.csv", ["z", "x", "y", "extra"],
                       np.column_stack([b[:, 2], b[:, 0], b[:, 1], b[:, 0]]))
    got = _json(invoke, a_file, b_file, "-c", "x,y", "-c", "z", "--estimator", "mle",
                "--bootstrap", "0")
    assert got["kl_ab"]["kl"] == pytest.approx(float(gaussdiv.kl(mle(a), mle(b))), rel=1e-12)
    two = _json(invoke, a_file, b_file, "-c", "z,x", "--bootstrap", "0")
    assert two["columns"] == ["z", "x"] and two["dim"] == 2
    expected = gaussdiv.kl(mle(a[:, [2, 0]]), mle(b[:, [2, 0]]))
    assert two["kl_ab"]["kl"] == pytest.approx(float(expected), rel=1e-12)


def test_rows_with_missing_values_are_reported_and_dropped(invoke, tmp_path, samples):
    a, b = samples
    rows = [[repr(float(v)) for v in row] for row in a]
    rows[4][1] = ""
    rows[9][2] = "NA"
    a_file = write_csv(tmp_path / "gaps.csv", ["x", "y", "z"], rows)
    b_file = write_csv(tmp_path / "b.csv", ["x", "y", "z"], b)
    result = invoke("compare", a_file, b_file, "--bootstrap", "0", "--json")
    assert "dropped 2 row(s) with missing values (lines 6, 11)" in result.stderr
    got = json.loads(result.stdout)
    kept = np.delete(a, [4, 9], axis=0)
    assert got["a"]["rows"] == 398
    assert got["kl_ab"]["kl"] == pytest.approx(float(gaussdiv.kl(mle(kept), mle(b))), rel=1e-12)


def test_auto_uses_oas_when_rows_are_few(invoke, tmp_path):
    rng = np.random.default_rng(11)
    a, b = rng.standard_normal((25, 4)), rng.standard_normal((30, 4)) + 0.5
    names = ["c1", "c2", "c3", "c4"]
    files = write_csv(tmp_path / "a.csv", names, a), write_csv(tmp_path / "b.csv", names, b)
    result = invoke("compare", *files, "--bootstrap", "0", "--json")
    assert "using oas shrinkage" in result.stderr
    got = json.loads(result.stdout)
    assert got["a"]["estimator"] == got["b"]["estimator"] == "oas"
    fa, fb = OAS().fit(a), OAS().fit(b)
    expected = gaussdiv.kl(gaussdiv.Gaussian(fa.location_, fa.covariance_),
                           gaussdiv.Gaussian(fb.location_, fb.covariance_))
    assert got["kl_ab"]["kl"] == pytest.approx(float(expected), rel=1e-12)


@pytest.mark.parametrize("estimator", ["ledoit-wolf", "oas"])
def test_shrinkage_estimators_are_named_in_the_output(invoke, sample_csvs, estimator):
    got = _json(invoke, *sample_csvs, "--estimator", estimator, "--bootstrap", "0")
    assert got["a"]["estimator"] == got["b"]["estimator"] == estimator


def test_standardize_leaves_mle_kl_unchanged(invoke, sample_csvs):
    plain = _json(invoke, *sample_csvs, "--estimator", "mle", "--bootstrap", "0")
    scaled = _json(invoke, *sample_csvs, "--estimator", "mle", "--bootstrap", "0",
                   "--standardize")
    for key in ("kl_ab", "kl_ba"):
        assert scaled[key]["kl"] == pytest.approx(plain[key]["kl"], rel=1e-10)


def test_npy_and_parquet_files_give_the_csv_numbers(invoke, tmp_path, samples, sample_csvs):
    pd = pytest.importorskip("pandas")
    pytest.importorskip("pyarrow")
    a, b = samples
    np.save(tmp_path / "a.npy", a)
    np.save(tmp_path / "b.npy", b)
    pd.DataFrame(a, columns=["x", "y", "z"]).to_parquet(tmp_path / "a.parquet")
    pd.DataFrame(b, columns=["x", "y", "z"]).to_parquet(tmp_path / "b.parquet")
    csv = _json(invoke, *sample_csvs, "--bootstrap", "0")
    npy = _json(invoke, tmp_path / "a.npy", tmp_path / "b.npy", "--bootstrap", "0")
    parquet = _json(invoke, tmp_path / "a.parquet", tmp_path / "b.parquet", "--bootstrap", "0")
    assert npy["columns"] == ["0", "1", "2"]
    for got in (npy, parquet):
        assert got["kl_ab"]["kl"] == pytest.approx(csv["kl_ab"]["kl"], rel=1e-13)
        assert got["kl_ba"]["kl"] == pytest.approx(csv["kl_ba"]["kl"], rel=1e-13)
    mixed = _json(invoke, sample_csvs[0], tmp_path / "b.parquet", "--bootstrap", "0")
    assert mixed["kl_ab"]["kl"] == pytest.approx(csv["kl_ab"]["kl"], rel=1e-13)


def test_mixture_option_reports_bounds_around_monte_carlo(invoke, sample_csvs, samples):
    mixture = pytest.importorskip("sklearn.mixture")
    got = _json(invoke, *sample_csvs, "--bootstrap", "0", "--mixture", "2")["mixture"]
    assert got["components"] == 2 and got["draws"] == 100_000
    a, b = samples
    fa = gaussdiv.GaussianMixture.from_sklearn(
        mixture.GaussianMixture(2, covariance_type="full", reg_covar=1e-6,
                                random_state=0).fit(a))
    fb = gaussdiv.GaussianMixture.from_sklearn(
        mixture.GaussianMixture(2, covariance_type="full", reg_covar=1e-6,
                                random_state=0).fit(b))
    lower, upper = gaussdiv.mixture_kl_bounds(fa, fb)
    assert got["kl_ab"]["lower"] == pytest.approx(float(lower), rel=1e-12)
    assert got["kl_ab"]["upper"] == pytest.approx(float(upper), rel=1e-12)
    for key in ("kl_ab", "kl_ba"):
        r = got[key]
        assert r["lower"] <= r["mc"] + 4 * r["mc_stderr"]
        assert r["mc"] - 4 * r["mc_stderr"] <= r["upper"]
    text = invoke("compare", *sample_csvs, "--bootstrap", "0", "--mixture", "2").stdout
    assert "2-component Gaussian mixtures" in text and "upper bound" in text


def test_mixture_with_too_few_rows(invoke, tmp_path):
    rows = np.random.default_rng(0).standard_normal((5, 2))
    a = write_csv(tmp_path / "a.csv", ["x", "y"], rows)
    b = write_csv(tmp_path / "b.csv", ["x", "y"], rows + 1)
    result = invoke("compare", a, b, "--bootstrap", "0", "--estimator", "oas", "--mixture",
                    "3", code=2)
    assert "too few for a 3-component mixture" in result.stderr

"""``gaussdiv compare``: numbers equal to the library's (gaussdiv.compare) on the fitted
Gaussians, intervals, p-value, columns, the gates, column handling and every input format."""

from __future__ import annotations

import numpy as np
import pytest
from cli_helpers import parse_output, results, write_csv
from sklearn.covariance import OAS

import gaussdiv


def mle(x: np.ndarray) -> gaussdiv.Gaussian:
    return gaussdiv.Gaussian(x.mean(axis=0), np.cov(x, rowvar=False, bias=True))


def _json(invoke, *args, code=0) -> dict:
    return parse_output(invoke("compare", *args, "--json", code=code).stdout)


FAST = ("--bootstrap", "0", "--permutations", "0")


def test_mle_matches_the_library_on_np_cov(invoke, sample_csvs, samples):
    got = _json(invoke, *sample_csvs, "--estimator", "mle", *FAST)
    r = results(got)
    pa, pb = mle(samples[0]), mle(samples[1])
    ab, ba = gaussdiv.kl_terms(pa, pb), gaussdiv.kl_terms(pb, pa)
    for key, terms in (("kl_ab", ab), ("kl_ba", ba)):
        assert r[key]["plugin"] == pytest.approx(float(terms.kl), rel=1e-12)
        for field in ("trace", "logdet_ratio", "mahalanobis"):
            assert r[key]["plugin_terms"][field] == pytest.approx(float(getattr(terms, field)),
                                                                  rel=1e-12)
    assert r["jeffreys"]["plugin"] == pytest.approx(float(ab.kl + ba.kl), rel=1e-12)
    library = gaussdiv.compare(*samples, estimator="mle", bootstrap=0, permutations=0)
    for e in library.estimates:
        assert r[e.name]["value"] == pytest.approx(e.value, rel=1e-12)
        assert r[e.name]["low"] == pytest.approx(e.low, rel=1e-12)
    assert got["inputs"]["a"] == {"path": str(sample_csvs[0]), "rows": 400}
    assert got["inputs"]["columns"] == ["x", "y", "z"] and got["inputs"]["dim"] == 3
    assert got["inputs"]["estimator"] == "mle" and got["correction"] == "wishart"
    assert got["interval"]["method"] == "normal" and got["p_value"] is None


def test_table_output(invoke, sample_csvs):
    out = invoke("compare", *sample_csvs, "--bootstrap", "20", "--permutations", "20").stdout
    for text in ("KL(A‖B)", "KL(B‖A)", "J(A, B)", "95% interval", "20 resamples", "plug-in",
                 "columns: x, y, z", "p-value", "20 permutations", "drop", "estimator: mle"):
        assert text in out


def test_interval_holds_the_estimate_and_is_reproducible(invoke, sample_csvs):
    args = (*sample_csvs, "--bootstrap", "200", "--permutations", "50", "--seed", "3",
            "--confidence", "0.9")
    first, second = _json(invoke, *args), _json(invoke, *args)
    assert first == second
    assert first["interval"] == {"method": "studentized", "confidence": 0.9, "resamples": 200,
                                 "seed": 3}
    for r in first["results"]:
        assert 0 <= r["low"] <= r["value"] <= r["high"]
        assert r["plugin"] > r["value"]  # the bias correction lowers the plug-in
        assert r["stderr"] > 0
    other = _json(invoke, *sample_csvs, "--bootstrap", "200", "--seed", "4")
    assert results(other)["kl_ab"]["low"] != results(first)["kl_ab"]["low"]


def test_p_value_and_columns(invoke, sample_csvs):
    got = _json(invoke, *sample_csvs, "--bootstrap", "0", "--permutations", "99")
    assert got["p_value"] == pytest.approx(0.01)  # the smallest possible: a real difference
    assert got["permutations"] == 99
    assert sorted(c["name"] for c in got["columns"]) == ["x", "y", "z"]
    drops = [c["drop"] for c in got["columns"]]
    assert drops == sorted(drops, reverse=True)


@pytest.mark.parametrize(("threshold", "gate", "code"), [
    (0.01, "jeffreys", 1), (100.0, "jeffreys", 0), (0.01, "kl-ba", 1), (100.0, "kl-ab", 0)])
def test_fail_above_gates_on_the_bias_corrected_value(invoke, sample_csvs, threshold, gate,
                                                      code):
    result = invoke("compare", *sample_csvs, *FAST, "--fail-above", threshold, "--gate", gate,
                    "--json", code=code)
    got = parse_output(result.stdout)
    tested = got["gate"]["fail_above"]
    assert got["gate"]["fired"] is tested["fired"] is bool(code)
    assert tested["tests"] == {"jeffreys": "jeffreys", "kl-ab": "kl_ab",
                               "kl-ba": "kl_ba"}[gate]
    assert tested["value"] == results(got)[tested["tests"]]["value"]
    assert ("drift gate" in result.stderr) is bool(code)


def test_fail_p_gates_on_the_p_value(invoke, sample_csvs):
    result = invoke("compare", *sample_csvs, "--bootstrap", "0", "--permutations", "50",
                    "--fail-p", "0.05", code=1)
    assert "p-value" in result.stderr and "below --fail-p 0.05" in result.stderr
    same = invoke("compare", sample_csvs[0], sample_csvs[0], "--bootstrap", "0",
                  "--permutations", "50", "--fail-p", "0.05", "--json")
    assert parse_output(same.stdout)["p_value"] == 1.0
    invoke("compare", *sample_csvs, "--permutations", "0", "--fail-p", "0.05", code=2)


def test_gate_on_the_same_data_passes(invoke, sample_csvs):
    got = _json(invoke, sample_csvs[0], sample_csvs[0], *FAST, "--fail-above", "0")
    assert results(got)["jeffreys"]["value"] == 0.0 and not got["gate"]["fired"]


def test_columns_are_matched_by_name_and_can_be_selected(invoke, tmp_path, samples):
    a, b = samples
    a_file = write_csv(tmp_path / "a.csv", ["x", "y", "z"], a)
    b_file = write_csv(tmp_path / "b.csv", ["z", "x", "y", "extra"],
                       np.column_stack([b[:, 2], b[:, 0], b[:, 1], b[:, 0]]))
    got = _json(invoke, a_file, b_file, "-c", "x,y", "-c", "z", "--estimator", "mle", *FAST)
    assert results(got)["kl_ab"]["plugin"] == pytest.approx(float(gaussdiv.kl(mle(a), mle(b))),
                                                            rel=1e-12)
    two = _json(invoke, a_file, b_file, "-c", "z,x", *FAST)
    assert two["inputs"]["columns"] == ["z", "x"] and two["inputs"]["dim"] == 2
    expected = gaussdiv.kl(mle(a[:, [2, 0]]), mle(b[:, [2, 0]]))
    assert results(two)["kl_ab"]["plugin"] == pytest.approx(float(expected), rel=1e-12)
    reordered = write_csv(tmp_path / "r.csv", ["z", "x", "y"],
                          np.column_stack([b[:, 2], b[:, 0], b[:, 1]]))
    by_name = _json(invoke, a_file, reordered, *FAST)
    assert results(by_name)["kl_ab"]["plugin"] == pytest.approx(
        float(gaussdiv.kl(mle(a), mle(b))), rel=1e-12)


def test_rows_with_missing_values_are_reported_and_dropped(invoke, tmp_path, samples):
    a, b = samples
    rows = [[repr(float(v)) for v in row] for row in a]
    rows[4][1] = ""
    rows[9][2] = "NA"
    a_file = write_csv(tmp_path / "gaps.csv", ["x", "y", "z"], rows)
    b_file = write_csv(tmp_path / "b.csv", ["x", "y", "z"], b)
    result = invoke("compare", a_file, b_file, *FAST, "--json")
    assert "dropped 2 row(s) with missing values (lines 6, 11)" in result.stderr
    got = parse_output(result.stdout)
    kept = np.delete(a, [4, 9], axis=0)
    assert got["inputs"]["a"]["rows"] == 398
    assert results(got)["kl_ab"]["plugin"] == pytest.approx(float(gaussdiv.kl(mle(kept),
                                                                              mle(b))), rel=1e-12)


def test_auto_uses_oas_for_both_when_rows_are_few(invoke, tmp_path):
    rng = np.random.default_rng(11)
    a, b = rng.standard_normal((6, 4)), rng.standard_normal((300, 4)) + 0.5  # 6 ≤ d + 2
    names = ["c1", "c2", "c3", "c4"]
    files = write_csv(tmp_path / "a.csv", names, a), write_csv(tmp_path / "b.csv", names, b)
    got = _json(invoke, *files, *FAST)
    assert got["inputs"]["estimator"] == "oas" and got["correction"] == "none"
    pooled = np.concatenate([a, b]).std(axis=0)
    fa, fb = OAS().fit(a / pooled), OAS().fit(b / pooled)
    expected = gaussdiv.kl(gaussdiv.Gaussian(fa.location_, fa.covariance_),
                           gaussdiv.Gaussian(fb.location_, fb.covariance_))
    assert results(got)["kl_ab"]["plugin"] == pytest.approx(float(expected), rel=1e-9)


def test_shrinkage_does_not_depend_on_units(invoke, tmp_path, samples):
    a, b = samples
    units = np.array([1e-6, 1.0, 1e6])
    plain = [write_csv(tmp_path / f"{k}.csv", ["x", "y", "z"], x) for k, x in (("a", a),
                                                                              ("b", b))]
    scaled = [write_csv(tmp_path / f"{k}s.csv", ["x", "y", "z"], x * units)
              for k, x in (("a", a), ("b", b))]
    one = results(_json(invoke, *plain, "--estimator", "oas", *FAST))
    two = results(_json(invoke, *scaled, "--estimator", "oas", *FAST))
    for key in one:
        assert two[key]["plugin"] == pytest.approx(one[key]["plugin"], rel=1e-8)


@pytest.mark.parametrize("estimator", ["ledoit-wolf", "oas", "unbiased"])
def test_estimators_are_named_in_the_output(invoke, sample_csvs, estimator):
    got = _json(invoke, *sample_csvs, "--estimator", estimator, *FAST)
    assert got["inputs"]["estimator"] == estimator.replace("-", "_")


def test_stdin_and_tsv(invoke, tmp_path, samples, sample_csvs):
    from click.testing import CliRunner

    from gaussdiv.cli.app import cli

    _, b = samples
    tsv = tmp_path / "b.tsv"
    tsv.write_text("x\ty\tz\n" + "\n".join("\t".join(repr(float(v)) for v in row)
                                              for row in b) + "\n", encoding="utf-8")
    csv = results(_json(invoke, *sample_csvs, *FAST))
    from_tsv = results(_json(invoke, sample_csvs[0], tsv, *FAST))
    assert from_tsv["kl_ab"]["plugin"] == pytest.approx(csv["kl_ab"]["plugin"], rel=1e-13)
    for text in (sample_csvs[1].read_text(encoding="utf-8"), tsv.read_text(encoding="utf-8")):
        run = CliRunner().invoke(cli, ["compare", str(sample_csvs[0]), "-", *FAST, "--json"],
                                 input=text)
        assert run.exit_code == 0, run.output
        piped = results(parse_output(run.stdout))
        assert piped["kl_ab"]["plugin"] == pytest.approx(csv["kl_ab"]["plugin"], rel=1e-13)
    invoke("compare", "-", "-", code=2)


def test_npy_and_parquet_files_give_the_csv_numbers(invoke, tmp_path, samples, sample_csvs):
    pd = pytest.importorskip("pandas")
    pytest.importorskip("pyarrow")
    a, b = samples
    np.save(tmp_path / "a.npy", a)
    np.save(tmp_path / "b.npy", b)
    pd.DataFrame(a, columns=["x", "y", "z"]).to_parquet(tmp_path / "a.parquet")
    pd.DataFrame(b, columns=["x", "y", "z"]).to_parquet(tmp_path / "b.parquet")
    csv = _json(invoke, *sample_csvs, *FAST)
    npy = _json(invoke, tmp_path / "a.npy", tmp_path / "b.npy", *FAST)
    parquet = _json(invoke, tmp_path / "a.parquet", tmp_path / "b.parquet", *FAST)
    assert npy["inputs"]["columns"] == ["0", "1", "2"]
    for got in (npy, parquet):
        for key in ("kl_ab", "kl_ba"):
            assert results(got)[key]["plugin"] == pytest.approx(results(csv)[key]["plugin"],
                                                                rel=1e-13)
    mixed = _json(invoke, sample_csvs[0], tmp_path / "b.parquet", *FAST)
    assert results(mixed)["kl_ab"]["plugin"] == pytest.approx(results(csv)["kl_ab"]["plugin"],
                                                              rel=1e-13)


def test_mixture_option_reports_bounds_around_monte_carlo(invoke, sample_csvs, samples):
    mixture = pytest.importorskip("sklearn.mixture")
    got = _json(invoke, *sample_csvs, *FAST, "--mixture", "2")["mixture"]
    assert got["components"] == 2 and got["draws"] == 100_000
    a, b = samples
    pooled = np.concatenate([a, b])  # both standardized alike: KL is the same in any units
    center, scale = pooled.mean(axis=0), pooled.std(axis=0)
    fa = gaussdiv.GaussianMixture.from_sklearn(
        mixture.GaussianMixture(2, covariance_type="full", reg_covar=1e-6,
                                random_state=0).fit((a - center) / scale))
    fb = gaussdiv.GaussianMixture.from_sklearn(
        mixture.GaussianMixture(2, covariance_type="full", reg_covar=1e-6,
                                random_state=0).fit((b - center) / scale))
    lower, upper = gaussdiv.mixture_kl_bounds(fa, fb)
    assert got["kl_ab"]["lower"] == pytest.approx(float(lower), rel=1e-12)
    assert got["kl_ab"]["upper"] == pytest.approx(float(upper), rel=1e-12)
    for key in ("kl_ab", "kl_ba"):
        r = got[key]
        assert r["lower"] <= r["mc"] + 4 * r["mc_stderr"]
        assert r["mc"] - 4 * r["mc_stderr"] <= r["upper"]
    text = invoke("compare", *sample_csvs, *FAST, "--mixture", "2").stdout
    assert "2-component Gaussian mixtures" in text and "upper bound" in text


def test_mixture_with_too_few_rows(invoke, tmp_path):
    rows = np.random.default_rng(0).standard_normal((5, 2))
    a = write_csv(tmp_path / "a.csv", ["x", "y"], rows)
    b = write_csv(tmp_path / "b.csv", ["x", "y"], rows + 1)
    result = invoke("compare", a, b, *FAST, "--estimator", "oas", "--mixture", "3", code=2)
    assert "too few for a 3-component mixture" in result.stderr

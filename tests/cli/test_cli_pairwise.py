"""``gaussdiv pairwise``: the matrix is the library's KL between the groups' Gaussians; CSV,
JSON and heatmap outputs; existing files are kept unless --force."""

from __future__ import annotations

import csv

import numpy as np
import pytest
from cli_helpers import parse_output, results, write_csv
from matplotlib.image import imread
from sklearn.covariance import OAS, LedoitWolf

import gaussdiv
from gaussdiv.cli.plot import HEIGHT, WIDTH

GROUPS = ["setosa", "versicolor", "virginica"]


def group_gaussians(path) -> list[gaussdiv.Gaussian]:
    data = np.genfromtxt(path, delimiter=",", names=True, dtype=None, encoding="utf-8")
    out = []
    for g in GROUPS:
        x = np.column_stack([data["a"][data["species"] == g], data["b"][data["species"] == g]])
        out.append(gaussdiv.Gaussian(x.mean(0), np.cov(x, rowvar=False, bias=True)))
    return out


def _json(invoke, *args, code=0) -> dict:
    return parse_output(invoke("pairwise", *args, "--json", code=code).stdout)


def test_matrix_is_the_library_kl_of_each_pair(invoke, grouped_csv):
    got = _json(invoke, grouped_csv, "--by", "species")
    assert got["command"] == "pairwise" and got["matrix"]["groups"] == GROUPS
    inputs = got["inputs"]
    assert inputs["path"] == str(grouped_csv) and inputs["by"] == "species"
    assert inputs["columns"] == ["a", "b"] and inputs["dim"] == 2
    assert inputs["estimator"] == "mle" and inputs["divergence"] == "kl"
    assert inputs["groups"] == [{"name": g, "rows": 80} for g in GROUPS]
    gs = group_gaussians(grouped_csv)
    matrix = np.array(got["matrix"]["values"])
    expected = np.array([[float(gaussdiv.kl(p, q)) for q in gs] for p in gs])
    np.testing.assert_allclose(matrix, expected, rtol=1e-12, atol=0)
    assert np.all(np.diag(matrix) == 0)
    r = results(got)
    assert list(r) == [f"{p}->{q}" for p in GROUPS for q in GROUPS if p != q]
    for i, p in enumerate(GROUPS):
        for j, q in enumerate(GROUPS):
            if i != j:
                assert r[f"{p}->{q}"] == {"name": f"{p}->{q}", "label": f"KL({p}‖{q})",
                                          "value": matrix[i, j], "first": p, "second": q}


def test_jeffreys_matrix_is_symmetric(invoke, grouped_csv):
    kl = np.array(_json(invoke, grouped_csv, "--by", "species")["matrix"]["values"])
    got = _json(invoke, grouped_csv, "--by", "species", "--divergence", "jeffreys")
    matrix = np.array(got["matrix"]["values"])
    np.testing.assert_array_equal(matrix, kl + kl.T)
    # a symmetric divergence lists each unordered pair once, first before second
    r = results(got)
    assert list(r) == ["setosa->versicolor", "setosa->virginica", "versicolor->virginica"]
    assert r["setosa->virginica"]["label"] == "J(setosa, virginica)"
    assert r["setosa->virginica"]["value"] == matrix[0, 2]


def test_table_output_says_which_way_round(invoke, grouped_csv):
    out = invoke("pairwise", grouped_csv, "--by", "species").stdout
    assert "KL(P‖Q): row P, column Q" in out
    assert all(g in out for g in GROUPS)


def test_csv_and_json_outputs(invoke, grouped_csv, tmp_path):
    result = invoke("pairwise", grouped_csv, "--by", "species", "-o", tmp_path / "m.csv")
    assert f"wrote {tmp_path / 'm.csv'}" in result.stderr
    with (tmp_path / "m.csv").open() as f:
        rows = list(csv.reader(f))
    assert rows[0] == ["P\\Q", *GROUPS]
    assert [r[0] for r in rows[1:]] == GROUPS
    from_csv = np.array([[float(v) for v in r[1:]] for r in rows[1:]])
    stdout = invoke("pairwise", grouped_csv, "--by", "species", "-o", tmp_path / "m.json",
                    "--json").stdout
    text = (tmp_path / "m.json").read_text(encoding="utf-8")
    from_json = parse_output(text)
    assert from_json == parse_output(stdout)  # the file holds what --json prints
    np.testing.assert_array_equal(from_csv, np.array(from_json["matrix"]["values"]))


def test_heatmap_png_decodes_at_the_documented_size(invoke, grouped_csv, tmp_path):
    png = tmp_path / "heat.png"
    invoke("pairwise", grouped_csv, "--by", "species", "--heatmap", png)
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    image = imread(png)
    assert image.shape[:2] == (HEIGHT, WIDTH)
    assert image.std() > 0.05  # not a blank canvas


def test_existing_outputs_are_kept_without_force(invoke, grouped_csv, tmp_path):
    out = tmp_path / "m.csv"
    out.write_text("precious\n")
    result = invoke("pairwise", grouped_csv, "--by", "species", "-o", out, code=2)
    assert "already exists; pass --force" in result.stderr
    assert out.read_text() == "precious\n"
    invoke("pairwise", grouped_csv, "--by", "species", "-o", out, "--force")
    assert out.read_text().startswith("P\\Q,")


def test_numeric_group_labels_sort_numerically_and_missing_labels_drop(invoke, tmp_path):
    rng = np.random.default_rng(5)
    rows = [[str(g), *(repr(float(v)) for v in rng.standard_normal(2) + g)]
            for g in (10, 2, 1) for _ in range(30)]
    rows.append(["", "0.5", "0.5"])
    path = write_csv(tmp_path / "num.csv", ["k", "u", "v"], rows)
    result = invoke("pairwise", path, "--by", "k", "--json")
    assert "dropped 1 row(s) with missing values (lines 92)" in result.stderr
    got = parse_output(result.stdout)
    assert got["matrix"]["groups"] == ["1", "2", "10"]
    assert got["inputs"]["groups"] == [{"name": g, "rows": 30} for g in ("1", "2", "10")]


def shrunk(x: np.ndarray, model, pooled: np.ndarray) -> gaussdiv.Gaussian:
    """scikit-learn's shrinkage fit of x / pooled, scaled back by the pooled deviations."""
    fitted = model(store_precision=False).fit(x / pooled)
    return gaussdiv.Gaussian(fitted.location_ * pooled,
                             fitted.covariance_ * pooled[:, None] * pooled[None, :])


@pytest.mark.parametrize(("estimator", "model"), [("oas", OAS), ("ledoit-wolf", LedoitWolf)])
def test_small_groups_fit_with_shrinkage(invoke, tmp_path, estimator, model):
    rng = np.random.default_rng(9)
    x = rng.standard_normal((8, 5)) * [1.0, 2.0, 0.5, 3.0, 1.0]
    rows = [[g, *(repr(float(v)) for v in row)] for g, row in zip("uuuuvvvv", x, strict=True)]
    path = write_csv(tmp_path / "few.csv", ["g", "c1", "c2", "c3", "c4", "c5"], rows)
    got = _json(invoke, path, "--by", "g", "--estimator", estimator)
    assert got["inputs"]["estimator"] == estimator.replace("-", "_")
    assert got["inputs"]["groups"] == [{"name": "u", "rows": 4}, {"name": "v", "rows": 4}]
    matrix = np.array(got["matrix"]["values"])
    assert np.all(np.isfinite(matrix))
    pooled = x.std(axis=0)  # shrinkage in units of the pooled deviations of all rows
    u, v = shrunk(x[:4], model, pooled), shrunk(x[4:], model, pooled)
    expected = [[0.0, float(gaussdiv.kl(u, v))], [float(gaussdiv.kl(v, u)), 0.0]]
    np.testing.assert_allclose(matrix, expected, rtol=1e-9, atol=0)


@pytest.mark.parametrize("estimator", ["oas", "ledoit-wolf"])
def test_shrinkage_does_not_depend_on_units(invoke, tmp_path, estimator):
    rng = np.random.default_rng(12)
    x = rng.standard_normal((24, 3)) + np.repeat([[0.0, 0.0, 0.0], [1.0, 0.5, 0.0],
                                                  [0.0, 1.0, 2.0]], 8, axis=0)
    labels = np.repeat(["u", "v", "w"], 8)
    units = np.array([1e-6, 1.0, 1e6])
    files = [write_csv(tmp_path / name, ["g", "c1", "c2", "c3"],
                       [[g, *(repr(float(v)) for v in row)] for g, row in zip(labels, data,
                                                                             strict=True)])
             for name, data in (("plain.csv", x), ("scaled.csv", x * units))]
    plain, scaled = (np.array(_json(invoke, f, "--by", "g", "--estimator",
                                    estimator)["matrix"]["values"]) for f in files)
    assert np.all(plain[~np.eye(3, dtype=bool)] > 0)
    np.testing.assert_allclose(scaled, plain, rtol=1e-8, atol=1e-12)


def test_top_k_lists_the_nearest_other_groups(invoke, grouped_csv):
    got = _json(invoke, grouped_csv, "--by", "species", "--top-k", "2")
    assert got["inputs"]["groups"] == [{"name": g, "rows": 80} for g in GROUPS]
    assert "matrix" not in got
    gs = group_gaussians(grouped_csv)
    matrix = np.array([[float(gaussdiv.kl(p, q)) for q in gs] for p in gs])
    np.fill_diagonal(matrix, np.inf)  # a group is not its own neighbour
    assert [r["group"] for r in got["results"]] == [g for g in GROUPS for _ in range(2)]
    for i, g in enumerate(GROUPS):
        order = np.argsort(matrix[i], kind="stable")[:2]
        entries = [r for r in got["results"] if r["group"] == g]
        assert [e["rank"] for e in entries] == [1, 2]
        assert [e["neighbour"] for e in entries] == [GROUPS[j] for j in order]
        assert [e["name"] for e in entries] == [f"{g}->{GROUPS[j]}" for j in order]
        assert [e["label"] for e in entries] == [f"KL({g}‖{GROUPS[j]})" for j in order]
        np.testing.assert_allclose([e["value"] for e in entries], matrix[i, order], rtol=1e-12)
    table = invoke("pairwise", grouped_csv, "--by", "species", "--top-k", "1").stdout
    assert "nearest groups by KL(group‖neighbour)" in table
    assert "neighbour" in table and "rank" in table


def test_top_k_errors(invoke, grouped_csv, tmp_path):
    too_many = invoke("pairwise", grouped_csv, "--by", "species", "--top-k", "3", code=2)
    assert "there are 3 groups, so at most 2 others per group" in too_many.stderr
    with_file = invoke("pairwise", grouped_csv, "--by", "species", "--top-k", "1", "-o",
                       tmp_path / "m.csv", code=2)
    assert "--top-k lists neighbours" in with_file.stderr
    assert invoke("pairwise", grouped_csv, "--by", "species", "--top-k", "0", code=2)

"""``gaussdiv pairwise``: the matrix is the library's KL between the groups' Gaussians; CSV,
JSON and heatmap outputs; existing files are kept unless --force."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
from cli_helpers import write_csv
from matplotlib.image import imread

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


def test_matrix_is_the_library_kl_of_each_pair(invoke, grouped_csv):
    got = json.loads(invoke("pairwise", grouped_csv, "--by", "species", "--json").stdout)
    assert got["groups"] == GROUPS and got["columns"] == ["a", "b"]
    assert got["fits"]["setosa"] == {"rows": 80, "estimator": "mle"}
    gs = group_gaussians(grouped_csv)
    matrix = np.array(got["matrix"])
    expected = np.array([[float(gaussdiv.kl(p, q)) for q in gs] for p in gs])
    np.testing.assert_allclose(matrix, expected, rtol=1e-12, atol=0)
    assert np.all(np.diag(matrix) == 0)


def test_jeffreys_matrix_is_symmetric(invoke, grouped_csv):
    kl = np.array(json.loads(invoke("pairwise", grouped_csv, "--by", "species",
                                    "--json").stdout)["matrix"])
    got = json.loads(invoke("pairwise", grouped_csv, "--by", "species", "--divergence",
                            "jeffreys", "--json").stdout)
    np.testing.assert_array_equal(np.array(got["matrix"]), kl + kl.T)


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
    invoke("pairwise", grouped_csv, "--by", "species", "-o", tmp_path / "m.json")
    from_json = json.loads((tmp_path / "m.json").read_text())
    np.testing.assert_array_equal(from_csv, np.array(from_json["matrix"]))


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
    assert json.loads(result.stdout)["groups"] == ["1", "2", "10"]


@pytest.mark.parametrize("estimator", ["oas", "ledoit-wolf"])
def test_small_groups_fit_with_shrinkage(invoke, tmp_path, estimator):
    rng = np.random.default_rng(9)
    rows = [[g, *(repr(float(v)) for v in rng.standard_normal(5))]
            for g in ("u", "v") for _ in range(4)]
    path = write_csv(tmp_path / "few.csv", ["g", "c1", "c2", "c3", "c4", "c5"], rows)
    got = json.loads(invoke("pairwise", path, "--by", "g", "--estimator", estimator,
                            "--json").stdout)
    assert got["fits"]["u"] == {"rows": 4, "estimator": estimator}
    assert np.all(np.isfinite(got["matrix"]))


def test_top_k_lists_the_nearest_other_groups(invoke, grouped_csv):
    got = json.loads(invoke("pairwise", grouped_csv, "--by", "species", "--top-k", "2",
                            "--json").stdout)
    gs = group_gaussians(grouped_csv)
    matrix = np.array([[float(gaussdiv.kl(p, q)) for q in gs] for p in gs])
    np.fill_diagonal(matrix, np.inf)  # a group is not its own neighbour
    for i, g in enumerate(GROUPS):
        order = np.argsort(matrix[i], kind="stable")[:2]
        entries = got["nearest"][g]
        assert [e["neighbour"] for e in entries] == [GROUPS[j] for j in order]
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

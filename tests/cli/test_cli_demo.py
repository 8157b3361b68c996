"""``gaussdiv demo``: runs on scikit-learn's bundled data in seconds, prints the table, writes
its own files, and can be run again; a folder it does not own is left alone."""

from __future__ import annotations

import time

import numpy as np
import pytest
from cli_helpers import parse_output, results
from matplotlib.image import imread

from gaussdiv.cli.cmd_demo import MARKER
from gaussdiv.cli.plot import HEIGHT, WIDTH


def test_demo_prints_the_table_writes_its_files_and_reruns(invoke, tmp_path):
    start = time.perf_counter()
    out = invoke("demo", "-n", "5000").stdout
    elapsed = time.perf_counter() - start
    folder = tmp_path / "gaussdiv-demo"
    assert "KL(P‖Q): row P, column Q" in out
    assert all(f"class_{k}" in out for k in range(3))
    assert "The derivation checked on the two closest classes" in out
    assert "8 of 8 agree within 5 standard errors" in out
    assert "fitted by oas (auto: fewer than 10 rows per dimension in the smallest class)" in out
    assert "gaussdiv pairwise gaussdiv-demo/wine.csv --by class\n" in out
    assert "Files in gaussdiv-demo/" in out
    for name in ("heatmap.png", "kl_matrix.csv", "wine.csv", MARKER):
        assert (folder / name).is_file(), name
    assert imread(folder / "heatmap.png").shape[:2] == (HEIGHT, WIDTH)
    matrix = np.genfromtxt(folder / "kl_matrix.csv", delimiter=",", skip_header=1)[:, 1:]
    assert matrix.shape == (3, 3) and np.all(np.diag(matrix) == 0) and np.all(matrix >= 0)
    assert elapsed < 30
    again = invoke("demo", "-n", "5000").stdout
    assert again.split("Done in")[0] == out.split("Done in")[0]


def test_demo_table_matches_pairwise_on_its_own_data(invoke, tmp_path):
    invoke("demo", "--out", "d", "-n", "2000")
    invoke("pairwise", "d/wine.csv", "--by", "class", "-o", "m.csv")  # as the demo suggests
    demo = np.genfromtxt(tmp_path / "d" / "kl_matrix.csv", delimiter=",", skip_header=1)[:, 1:]
    pairwise = np.genfromtxt(tmp_path / "m.csv", delimiter=",", skip_header=1)[:, 1:]
    np.testing.assert_allclose(pairwise, demo, rtol=1e-9)


def test_demo_leaves_a_foreign_folder_alone_unless_forced(invoke, tmp_path):
    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / "notes.txt").write_text("keep me")
    result = invoke("demo", "--out", folder, "-n", "2000", code=2)
    assert "not made by gaussdiv demo" in result.stderr
    assert not (folder / "heatmap.png").exists()
    invoke("demo", "--out", folder, "-n", "2000", "--force")
    assert (folder / "notes.txt").read_text() == "keep me"
    assert (folder / "heatmap.png").is_file()


def test_demo_json(invoke, tmp_path):
    result = invoke("demo", "--out", tmp_path / "j", "-n", "2000", "--json")
    got = parse_output(result.stdout)  # nothing but the JSON on stdout
    assert got["command"] == "demo"
    assert got["inputs"]["dataset"] == "wine" and got["inputs"]["rows"] == 178
    assert got["inputs"]["estimator"] == "oas" and len(got["inputs"]["features"]) == 13
    assert got["inputs"]["samples"] == 2000 and got["inputs"]["seed"] == 0
    groups = [f"class_{k}" for k in range(3)]
    assert [g["name"] for g in got["inputs"]["groups"]] == groups
    assert sum(g["rows"] for g in got["inputs"]["groups"]) == 178
    assert got["matrix"]["groups"] == groups
    matrix = np.array(got["matrix"]["values"])
    written = np.genfromtxt(tmp_path / "j" / "kl_matrix.csv", delimiter=",",
                            skip_header=1)[:, 1:]
    np.testing.assert_array_equal(matrix, written)
    r = results(got)
    assert len(r) == 6  # KL is not symmetric: every ordered pair of different classes
    for i, p in enumerate(groups):
        for j, q in enumerate(groups):
            if i != j:
                assert r[f"{p}->{q}"]["value"] == matrix[i, j]
                assert r[f"{p}->{q}"]["label"] == f"KL({p}‖{q})"
                assert (r[f"{p}->{q}"]["first"], r[f"{p}->{q}"]["second"]) == (p, q)
    jeffreys = matrix + matrix.T
    np.fill_diagonal(jeffreys, np.inf)
    i, j = np.unravel_index(np.argmin(jeffreys), jeffreys.shape)
    assert (got["derive"]["p"], got["derive"]["q"]) == (groups[i], groups[j])
    steps = {s["name"]: s for s in got["derive"]["steps"]}
    assert steps["KL"]["value"] == pytest.approx(matrix[i, j], rel=1e-12)
    assert all(s["holds"] for s in steps.values())
    assert got["files"] == {"data": str(tmp_path / "j" / "wine.csv"),
                            "matrix": str(tmp_path / "j" / "kl_matrix.csv"),
                            "heatmap": str(tmp_path / "j" / "heatmap.png")}
    assert all((tmp_path / "j" / name).is_file() for name in ("wine.csv", "heatmap.png"))

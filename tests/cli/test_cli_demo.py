"""``gaussdiv demo``: runs on scikit-learn's bundled data in seconds, prints the table, writes
its own files, and can be run again; a folder it does not own is left alone."""

from __future__ import annotations

import time

import numpy as np
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
    assert "fitted by oas (auto: fewer than 10 rows per dimension)" in out
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
    invoke("pairwise", "d/wine.csv", "--by", "class", "--standardize", "-o", "m.csv")
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

"""Each subcommand once as a real process: ``python -m gaussdiv ...`` and the console script,
with real exit codes, stdout/stderr separation, and no traceback on bad input."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from cli_helpers import parse_output, results
from matplotlib.image import imread

from gaussdiv.cli.plot import HEIGHT, WIDTH


def run(cwd: Path, *args: object, code: int = 0) -> subprocess.CompletedProcess[str]:
    """``python -m gaussdiv ARGS`` in ``cwd``; checks the exit status."""
    done = subprocess.run([sys.executable, "-m", "gaussdiv", *map(str, args)], cwd=cwd,
                          capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == code, (done.stdout, done.stderr)
    assert "Traceback" not in done.stderr
    return done


def test_no_arguments_prints_help(tmp_path):
    done = run(tmp_path, code=2)  # click's convention for a group called without a command
    assert "Usage: gaussdiv" in done.stderr + done.stdout
    for command in ("kl", "compare", "pairwise", "frechet", "derive", "demo"):
        assert command in done.stderr + done.stdout


def test_console_script_is_installed(tmp_path):
    script = shutil.which("gaussdiv", path=str(Path(sys.executable).parent))
    if script is None:
        pytest.skip("the gaussdiv console script is not installed next to this Python")
    done = subprocess.run([script, "--version"], capture_output=True, text=True, timeout=60,
                          check=False)
    assert done.returncode == 0 and "gaussdiv" in done.stdout


def test_kl(tmp_path, gaussian_files):
    done = run(tmp_path, "kl", *gaussian_files, "--json")
    got = parse_output(done.stdout)
    assert got["command"] == "kl" and done.stderr == ""
    assert results(got)["kl_pq"]["value"] > 0 and results(got)["kl_qp"]["value"] > 0


@pytest.mark.slow
def test_compare_gate_and_bad_input(tmp_path, sample_csvs):
    done = run(tmp_path, "compare", *sample_csvs, "--bootstrap", "50", "--permutations", "50",
               "--fail-above", "0.01", code=1)
    assert "J(A, B)" in done.stdout and "drift gate: J(A, B)" in done.stderr
    gated = run(tmp_path, "compare", *sample_csvs, "--bootstrap", "0", "--permutations", "0",
                "--fail-above", "0.01", "--json", code=1)
    assert parse_output(gated.stdout)["gate"]["fired"] is True
    bad = run(tmp_path, "compare", sample_csvs[0], tmp_path / "missing.csv", code=2)
    assert bad.stderr.strip().splitlines() == [f"Error: {tmp_path / 'missing.csv'}: no such file"]


def test_pairwise(tmp_path, grouped_csv):
    run(tmp_path, "pairwise", grouped_csv, "--by", "species", "--heatmap", "h.png", "-o", "m.csv")
    assert imread(tmp_path / "h.png").shape[:2] == (HEIGHT, WIDTH)
    assert (tmp_path / "m.csv").read_text().startswith("P\\Q,setosa,versicolor,virginica")


def test_derive(tmp_path):
    done = run(tmp_path, "derive", "-n", "5000")
    assert "All 8 Monte Carlo checks agree" in done.stdout


@pytest.mark.slow
def test_demo(tmp_path):
    done = run(tmp_path, "demo", "-n", "5000")
    assert "KL(P‖Q): row P, column Q" in done.stdout and "Files in gaussdiv-demo/" in done.stdout
    assert imread(tmp_path / "gaussdiv-demo" / "heatmap.png").shape[:2] == (HEIGHT, WIDTH)

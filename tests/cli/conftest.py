"""Shared fixtures for the command-line tests: a runner, and small data and Gaussian files."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from cli_helpers import (
    FUZZ_EXAMPLES,
    FUZZ_KNOWN,
    SPD_P,
    SPD_Q,
    parse_output,
    runner,
    write_csv,
    write_json,
)
from click.testing import Result

from gaussdiv.cli.app import cli

Invoke = Callable[..., Result]


@pytest.fixture
def invoke(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Invoke:
    """Run ``gaussdiv ARGS`` in-process, in tmp_path; a Python exception is a test failure."""
    monkeypatch.chdir(tmp_path)
    cli_runner = runner()

    def run(*args: Any, code: int | None = 0) -> Result:
        result = cli_runner.invoke(cli, [str(a) for a in args], catch_exceptions=True)
        if result.exception is not None and not isinstance(result.exception, SystemExit):
            raise result.exception
        if code is not None:
            assert result.exit_code == code, (result.stdout, result.stderr)
        if "--json" in args and result.exit_code in (0, 1) and result.stdout.strip():
            parse_output(result.stdout)  # every --json output follows the one schema
        return result

    return run


@pytest.fixture
def samples() -> tuple[np.ndarray, np.ndarray]:
    """Two 3-d data sets with different means and covariances (400 and 300 rows)."""
    rng = np.random.default_rng(7)
    a = rng.standard_normal((400, 3)) @ np.linalg.cholesky(np.array(SPD_P)).T
    b = rng.standard_normal((300, 3)) @ np.linalg.cholesky(np.array(SPD_Q)).T + [0.3, 0.0, -0.2]
    return a, b


@pytest.fixture
def sample_csvs(tmp_path: Path, samples: tuple[np.ndarray, np.ndarray]) -> tuple[Path, Path]:
    a, b = samples
    return (write_csv(tmp_path / "a.csv", ["x", "y", "z"], a),
            write_csv(tmp_path / "b.csv", ["x", "y", "z"], b))


@pytest.fixture
def gaussian_files(tmp_path: Path) -> tuple[Path, Path]:
    """P and Q as JSON files in the plain mean + cov layout."""
    return (write_json(tmp_path / "p.json", {"mean": [0.0, 1.0, -1.0], "cov": SPD_P}),
            write_json(tmp_path / "q.json", {"mean": [1.0, 0.0, 0.0], "cov": SPD_Q}))


@pytest.fixture
def grouped_csv(tmp_path: Path) -> Path:
    """Three groups of 2-d points (80 rows each) with a text label column first."""
    rng = np.random.default_rng(3)
    rows = []
    for label, shift, scale in (("setosa", 0.0, 1.0), ("versicolor", 1.0, 1.5),
                                ("virginica", 2.0, 0.7)):
        for x in rng.standard_normal((80, 2)) * scale + shift:
            rows.append([label, *(repr(float(v)) for v in x)])
    return write_csv(tmp_path / "groups.csv", ["species", "a", "b"], rows)


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """How many examples the CLI fuzzer (test_cli_fuzz.py) ran, per test and in all, and how
    many hit each known library issue."""
    if FUZZ_EXAMPLES:
        each = ", ".join(f"{name} {n}" for name, n in sorted(FUZZ_EXAMPLES.items()))
        terminalreporter.write_line(f"CLI fuzz: {sum(FUZZ_EXAMPLES.values())} examples ({each})")
    for issue, n in sorted(FUZZ_KNOWN.items()):
        terminalreporter.write_line(f"CLI fuzz: {n} examples hit the known library issue in "
                                    f"{issue}")

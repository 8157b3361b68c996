"""Helpers for the command-line tests: writing input files, checking a one-line user error."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from click.testing import Result

SPD_P = [[2.0, 0.5, 0.0], [0.5, 1.0, 0.3], [0.0, 0.3, 1.5]]
SPD_Q = [[1.0, 0.2, 0.1], [0.2, 2.0, 0.0], [0.1, 0.0, 1.0]]


def write_csv(path: Path, columns: list[str], rows: Any) -> Path:
    """A CSV with a header; ``rows`` may hold numbers or strings ('' for missing)."""
    lines = [",".join(columns)]
    lines += [",".join(v if isinstance(v, str) else repr(float(v)) for v in row) for row in rows]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def write_json(path: Path, payload: dict[str, Any]) -> Path:
    path.write_text(json.dumps(payload), encoding="utf-8")
    return path


def one_line_error(result: Result, *fragments: str) -> str:
    """Assert a user error: status 2, one 'Error: ...' line on stderr holding each fragment."""
    assert result.exit_code == 2, (result.stdout, result.stderr)
    errors = [line for line in result.stderr.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1, result.stderr
    assert "Traceback" not in result.stderr
    for fragment in fragments:
        assert fragment in errors[0], (fragment, errors[0])
    return errors[0]

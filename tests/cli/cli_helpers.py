"""Helpers for the command-line tests: writing input files, checking a one-line user error,
reading --json output (strict JSON, validated against the schema every command follows)."""

from __future__ import annotations

import json
import math
import warnings
from collections import Counter
from pathlib import Path
from typing import Any

import jsonschema
from click.testing import CliRunner, Result

from gaussdiv.cli.common import SCHEMA_FILE

SCHEMA = json.loads(SCHEMA_FILE.read_text(encoding="utf-8"))

#: Examples the CLI fuzzer ran in this session, by test, and those that hit a known library
#: issue, by issue (both reported in the terminal summary).
FUZZ_EXAMPLES: Counter[str] = Counter()
FUZZ_KNOWN: Counter[str] = Counter()

SPD_P = [[2.0, 0.5, 0.0], [0.5, 1.0, 0.3], [0.0, 0.3, 1.5]]
SPD_Q = [[1.0, 0.2, 0.1], [0.2, 2.0, 0.0], [0.1, 0.0, 1.0]]


def runner() -> CliRunner:
    """A CliRunner that keeps stderr apart from stdout."""
    try:  # click < 8.2 mixes stderr into stdout unless told not to
        return CliRunner(mix_stderr=False)  # type: ignore[call-arg]
    except TypeError:
        return CliRunner()


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


def quietly(invoke: Any, *args: Any, code: int | None = 0) -> Result:
    """``invoke(*args)``, asserting that it raised no warning (numpy's RuntimeWarnings
    included: outside pytest they would be printed on stderr)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = invoke(*args, code=code)
    assert not caught, [f"{w.category.__name__}: {w.message} ({w.filename}:{w.lineno})"
                        for w in caught]
    return result


def _no_constants(name: str) -> Any:
    raise AssertionError(f"not strict JSON: {name}")


def parse_output(text: str) -> dict[str, Any]:
    """--json output: strict JSON (no NaN or Infinity) that follows the output schema."""
    payload = json.loads(text, parse_constant=_no_constants)
    jsonschema.validate(payload, SCHEMA)
    return payload


def results(payload: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The result records of a payload by name."""
    return {r["name"]: r for r in payload["results"]}


#: The ``was`` of a ``non_finite`` entry → the number it was.
NON_FINITE = {"+infinity": math.inf, "-infinity": -math.inf, "not a number": math.nan}


def restored(payload: dict[str, Any], *path: str | int) -> Any:
    """The part of ``payload`` at ``path`` (keys and indices), with each number that
    ``non_finite`` lists under it put back as the float it was (inf, -inf or nan)."""
    part = json.loads(json.dumps(payload))
    for key in path:
        part = part[key]
    prefix = "".join(f"/{key}" for key in path)
    for entry in payload.get("non_finite", []):
        if not entry["path"].startswith(prefix + "/"):
            continue
        *parents, last = entry["path"][len(prefix) + 1:].split("/")
        target = part
        for key in parents:
            target = target[int(key) if isinstance(target, list) else key]
        assert target[int(last) if isinstance(target, list) else last] is None, entry
        target[int(last) if isinstance(target, list) else last] = NON_FINITE[entry["was"]]
    return part

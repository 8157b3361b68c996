"""What every subcommand shares: the user-error type, output formatting, and safe file writing.

Exit codes: 0 success; 1 a check failed (a ``compare`` gate, or a ``derive`` identity off by
5+ standard errors); 2 bad usage or bad input (click's usage errors, and a missing ``cli``
extra); 130 interrupted (Ctrl-C). A user error is one
line on stderr, ``Error: <file or column>: <what>``, never a traceback.
"""

from __future__ import annotations

import json
import math
import os
import re
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click
import numpy as np

from gaussdiv import GaussianError

#: Exit status when a check fails: the drift gate (``--fail-above``) or a derive identity.
EXIT_GATE = 1
#: Exit status for bad usage and bad input (click's own usage errors use it too).
EXIT_USER = 2
#: Exit status when interrupted (128 + SIGINT, the shell's convention).
EXIT_INTERRUPTED = 130


class UserError(click.ClickException):
    """Bad input from the user: printed as one line on stderr, exit status 2."""

    exit_code = EXIT_USER


@contextmanager
def argument_names(**names: str) -> Iterator[None]:
    """Inside, a :class:`gaussdiv.GaussianError` that names the library's arguments (its
    divergences call the Gaussians p and q) is raised again, of the same type, with each name
    replaced by ``names[name]``: ``argument_names(p="q.json", q="p.json")`` around
    ``kl(q, p)`` makes "p's covariance is ..." read "q.json's covariance is ...". A name is
    replaced where it stands alone, not inside a word, a file name or "p-value"."""
    try:
        yield
    except GaussianError as exc:
        alone = re.compile(rf"(?<![\w./-])({'|'.join(map(re.escape, names))})(?![\w-])")
        raise type(exc)(alone.sub(lambda m: names[m.group(1)], str(exc))) from exc


def json_option(func: Callable[..., Any]) -> Callable[..., Any]:
    """The ``--json`` flag shared by the subcommands: machine-readable output on stdout."""
    return click.option("--json", "as_json", is_flag=True,
                        help="Print the results as JSON instead of a table.")(func)


def force_option(func: Callable[..., Any]) -> Callable[..., Any]:
    """The ``--force`` flag: allow replacing existing output files."""
    return click.option("--force", is_flag=True,
                        help="Replace output files that already exist.")(func)


class FiniteFloat(click.FloatRange):
    """A float option that must be finite: click's ``float`` and ``FloatRange`` let ``nan`` (and,
    without bounds, ``inf``) through, and a gate at NaN would never fire."""

    name = "finite float"

    def _describe_range(self) -> str:
        if self.min is None and self.max is None:
            return "finite"
        return super()._describe_range()

    def convert(self, value: Any, param: click.Parameter | None,
                ctx: click.Context | None) -> float:
        number = super().convert(value, param, ctx)
        if not math.isfinite(number):
            self.fail(f"{value!r} is not a finite number", param, ctx)
        return float(number)


#: The largest ``--seed``: seeds are 0 ≤ seed < 2³², the range of every generator the commands
#: seed (NumPy's ``default_rng`` takes no negative seed, scikit-learn's ``random_state`` nothing
#: from 2³² on), so one seed means the same draws in every command.
SEED_MAX = 2**32 - 1


def seed_option(help_text: str) -> Callable[[Any], Any]:
    """The ``--seed`` option (default 0) of the commands that draw random numbers."""
    return click.option("--seed", type=click.IntRange(0, SEED_MAX), default=0, show_default=True,
                        help=help_text)


#: The ``schema`` field of every command's JSON output (see :data:`SCHEMA_FILE`).
SCHEMA_ID = "gaussdiv-cli/1"
#: The JSON Schema every command's ``--json`` output follows.
SCHEMA_FILE = Path(__file__).with_name("output.schema.json")


def to_python(x: Any) -> Any:
    """NumPy scalars and arrays, paths, tuples (nested in dicts and lists) as plain Python
    values; non-finite floats are kept (see :func:`strict`)."""
    if isinstance(x, dict):
        return {str(k): to_python(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [to_python(v) for v in x]
    if isinstance(x, Path):
        return str(x)
    if isinstance(x, np.ndarray):
        return to_python(x.tolist())
    if isinstance(x, np.generic):
        return x.item()
    return x


def _non_finite(x: float) -> str:
    return "not a number" if math.isnan(x) else ("+infinity" if x > 0 else "-infinity")


def strict(x: Any, path: str = "", found: list[dict[str, str]] | None = None) -> Any:
    """``x`` (plain Python values) with every NaN and infinity replaced by null, so that any
    JSON parser reads it. A result record (a dict with a ``value``) whose value is not finite
    gets a ``reason``; every other replaced number is listed in ``found`` as
    {"path": JSON Pointer, "was": ...}."""
    found = [] if found is None else found
    if isinstance(x, dict):
        out = {k: strict(v, f"{path}/{k}", found) for k, v in x.items()}
        value = x.get("value")
        if isinstance(value, float) and not math.isfinite(value):
            out.setdefault("reason", f"the value is {_non_finite(value)}")
            found.pop(next(i for i, f in enumerate(found) if f["path"] == f"{path}/value"))
        return out
    if isinstance(x, list):
        return [strict(v, f"{path}/{k}", found) for k, v in enumerate(x)]
    if isinstance(x, float) and not math.isfinite(x):
        found.append({"path": path, "was": _non_finite(x)})
        return None
    return x


def envelope(command: str, inputs: dict[str, Any], results: list[dict[str, Any]],
             **sections: Any) -> dict[str, Any]:
    """The one layout of every command's JSON: schema id, command, gaussdiv version, the
    inputs, a list of result records (:func:`record`), and command-specific sections."""
    import gaussdiv

    return {"schema": SCHEMA_ID, "command": command, "gaussdiv": gaussdiv.__version__,
            "inputs": inputs, "results": results, **sections}


def record(name: str, label: str, value: Any, **fields: Any) -> dict[str, Any]:
    """One reported number: a machine name, a human label, the value, and more fields."""
    return {"name": name, "label": label, "value": value, **fields}


def json_text(payload: dict[str, Any]) -> str:
    """``payload`` as strict, indented JSON (non-finite numbers as null, listed under
    ``non_finite`` or with the record's ``reason``)."""
    found: list[dict[str, str]] = []
    clean = strict(to_python(payload), "", found)
    if found:
        clean["non_finite"] = found
    return json.dumps(clean, indent=2, ensure_ascii=False, allow_nan=False)


def echo_json(payload: dict[str, Any]) -> None:
    """Write ``payload`` as strict JSON (:func:`json_text`) on stdout."""
    click.echo(json_text(payload))


def fmt(x: Any, digits: int = 6) -> str:
    """A number for a table: ``digits`` significant digits, integers as integers."""
    if isinstance(x, int | np.integer):
        return str(int(x))
    return f"{float(x):.{digits}g}"


def table(rows: Sequence[Sequence[Any]], header: Sequence[str] | None = None,
          digits: int = 6) -> str:
    """A plain-text table: first column left-aligned, the others right-aligned."""
    cells = [[c if isinstance(c, str) else fmt(c, digits) for c in row] for row in rows]
    if header is not None:
        cells.insert(0, list(header))
    widths = [max(len(row[i]) for row in cells) for i in range(len(cells[0]))]
    lines = []
    for k, row in enumerate(cells):
        parts = [row[0].ljust(widths[0])]
        parts += [c.rjust(w) for c, w in zip(row[1:], widths[1:], strict=True)]
        lines.append("  ".join(parts).rstrip())
        if header is not None and k == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def note(message: str) -> None:
    """An informational line on stderr (kept off stdout so ``--json`` output stays parseable)."""
    click.echo(message, err=True)


def check_writable(path: Path, force: bool) -> None:
    """Refuse to replace an existing file unless ``force``; the folder must exist."""
    if path.is_dir():
        raise UserError(f"{path}: is a folder; give a file name")
    if path.exists() and not force:
        raise UserError(f"{path}: already exists; pass --force to replace it")
    if not path.parent.is_dir():
        raise UserError(f"{path}: folder {path.parent} does not exist")


def write_files(files: dict[Path, str | bytes]) -> None:
    """Write every file (text as UTF-8) or none: each is written beside its target under a
    temporary name, and renamed into place only once all are written, so a failed command
    leaves no partial output (and keeps the files it would have replaced). OS errors become
    one-line user errors."""
    staged: list[tuple[Path, Path]] = []
    try:
        for path, content in files.items():
            temporary = path.with_name(f".{path.name}.partial")
            staged.append((temporary, path))
            if isinstance(content, str):
                temporary.write_text(content, encoding="utf-8")
            else:
                temporary.write_bytes(content)
        for temporary, path in staged:
            os.replace(temporary, path)
    except OSError as exc:
        raise UserError(f"{path}: cannot write ({exc.strerror or exc})") from None
    finally:
        for temporary, _ in staged:
            temporary.unlink(missing_ok=True)


def terms_dict(terms: Any) -> dict[str, Any]:
    """The three terms of a :class:`gaussdiv.KLTerms` (or any object with them) as a dict."""
    return {"logdet_ratio": terms.logdet_ratio, "trace": terms.trace,
            "mahalanobis": terms.mahalanobis}


#: Rows of a terms table: label and KLTerms field. In each column Σ₁, μ₁ belong to the first
#: argument of KL(·‖·) and Σ₂, μ₂ to the second, as in eq. (23).
TERM_ROWS = (
    ("ln|Σ₂|/|Σ₁|", "logdet_ratio"),
    ("tr(Σ₂⁻¹Σ₁)", "trace"),
    ("(μ₁−μ₂)ᵀΣ₂⁻¹(μ₁−μ₂)", "mahalanobis"),
    ("d", "dim"),
    ("KL", "kl"),
)


def terms_table(columns: dict[str, Any]) -> str:
    """The three terms, d and KL of each named :class:`gaussdiv.KLTerms`, side by side."""
    rows = [[label, *(getattr(t, field) for t in columns.values())] for label, field in TERM_ROWS]
    return table(rows, header=["term", *columns], digits=10)

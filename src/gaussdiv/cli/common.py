"""What every subcommand shares: the user-error type, output formatting, and safe file writing.

Exit codes (click's conventions): 0 success; 1 a check failed (``compare --fail-above``, or a
``derive`` identity off by 5+ standard errors); 2 bad usage or bad input. A user error is one
line on stderr, ``Error: <file or column>: <what>``, never a traceback.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import click
import numpy as np

#: Exit status when a check fails: the drift gate (``--fail-above``) or a derive identity.
EXIT_GATE = 1
#: Exit status for bad usage and bad input (click's own usage errors use it too).
EXIT_USER = 2


class UserError(click.ClickException):
    """Bad input from the user: printed as one line on stderr, exit status 2."""

    exit_code = EXIT_USER


def json_option(func: Callable[..., Any]) -> Callable[..., Any]:
    """The ``--json`` flag shared by the subcommands: machine-readable output on stdout."""
    return click.option("--json", "as_json", is_flag=True,
                        help="Print the results as JSON instead of a table.")(func)


def force_option(func: Callable[..., Any]) -> Callable[..., Any]:
    """The ``--force`` flag: allow replacing existing output files."""
    return click.option("--force", is_flag=True,
                        help="Replace output files that already exist.")(func)


def to_python(x: Any) -> Any:
    """NumPy scalars and arrays (nested in dicts and lists) as plain JSON-able Python values."""
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
    if isinstance(x, float) and not math.isfinite(x):
        return None if math.isnan(x) else ("inf" if x > 0 else "-inf")
    return x


def echo_json(payload: dict[str, Any]) -> None:
    """Write ``payload`` as indented JSON on stdout."""
    click.echo(json.dumps(to_python(payload), indent=2, ensure_ascii=False))


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


def write_text(path: Path, text: str) -> None:
    """Write ``text`` to ``path``, turning OS errors into one-line user errors."""
    try:
        path.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise UserError(f"{path}: cannot write ({exc.strerror or exc})") from None


def kl_terms_dict(terms: Any) -> dict[str, Any]:
    """A :class:`gaussdiv.KLTerms` as a JSON-able dict."""
    return {"kl": terms.kl, "logdet_ratio": terms.logdet_ratio, "trace": terms.trace,
            "mahalanobis": terms.mahalanobis, "dim": terms.dim}


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

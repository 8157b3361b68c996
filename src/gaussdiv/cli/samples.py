"""Reading sample files: CSV or TSV with a header row, .npy, Parquet (when pandas is
installed), and ``-`` for CSV/TSV on standard input (TSV when the header has tabs and no
commas); :func:`read_delimited` also reads files without a header row.

A file is read into a :class:`Table` of named columns; :func:`numeric_matrix` then picks the
columns to fit, reports rows with missing values and drops them (or rejects them, ``strict``).
Every problem is a one-line :class:`~gaussdiv.cli.common.UserError` naming the file and, where
there is one, the column and the line.
"""

from __future__ import annotations

import csv
import io
import re
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from gaussdiv.cli.common import UserError, note

#: Cells read as a missing value (case-insensitive, surrounding blanks ignored).
MISSING = frozenset({"", "na", "nan", "n/a", "null", "none"})
SUFFIXES = (".csv", ".tsv", ".npy", ".parquet", ".pq")
#: A number in a text cell: ASCII decimal or scientific notation, or an inf/nan spelling.
#: Python's float() takes more (``1_000``, digits of other scripts such as ``١٢٣``), which a
#: data file does not mean as a number.
NUMBER = re.compile(r"[+-]?(?:(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?"
                    r"|inf|infinity|nan)", re.IGNORECASE)
#: Blanks around a number in a cell (ASCII only, like the digits).
BLANKS = " \t\r\n\f\v"
#: The largest magnitude of a value: the squares and products a covariance sums (at most
#: 1e150² = 1e300 each, over up to 10⁸ rows) stay below float64's largest number, 1.8e308.
MAX_MAGNITUDE = 1e150
#: The smallest spread (largest − smallest value) of a column that is not constant: its
#: variance (about spread²/n) stays well above float64's smallest normal number, 2.2e-308.
MIN_SPREAD = 1e-150
#: The path that stands for standard input.
STDIN = Path("-")


@dataclass(frozen=True)
class Table:
    """Named columns of one file.

    Attributes:
        path: the file.
        columns: column names in file order (for .npy: "0", "1", ...).
        data: column name → 1-D array (numbers, or strings as read from a CSV).
        rows: where each row is in the file, for messages (CSV: line numbers; else 1-based).
        row_word: "line" for CSV, "row" otherwise.
    """

    path: Path
    columns: list[str]
    data: dict[str, np.ndarray]
    rows: np.ndarray
    row_word: str

    @property
    def n_rows(self) -> int:
        return len(self.rows)


def parse_columns(values: Iterable[str]) -> list[str] | None:
    """``--columns a,b --columns c`` → ["a", "b", "c"]; nothing given → None (all columns)."""
    names = [name.strip() for value in values for name in value.split(",") if name.strip()]
    return names or None


def read_table(path: Path) -> Table:
    """Read a sample file, choosing the reader by extension (``-``: standard input)."""
    if path == STDIN:
        return read_stdin(header=True)
    if not path.exists():
        raise UserError(f"{path}: no such file")
    if path.is_dir():
        raise UserError(f"{path}: is a folder, not a sample file")
    suffix = path.suffix.lower()
    if suffix not in SUFFIXES:
        raise UserError(f"{path}: unknown sample file type {suffix!r}; use .csv or .tsv (with "
                        "a header row), .npy, .parquet, or - for standard input")
    try:
        if suffix in (".csv", ".tsv"):
            table = read_delimited(path, "\t" if suffix == ".tsv" else ",")
        elif suffix == ".npy":
            table = _read_npy(path)
        else:
            table = _read_parquet(path)
    except OSError as exc:
        raise UserError(f"{path}: cannot read ({exc.strerror or exc})") from None
    if table.n_rows == 0:
        raise UserError(f"{path}: no data rows")
    return table


def read_stdin(header: bool | None) -> Table:
    """CSV or TSV (tabs and no commas in the first line) from standard input, as
    :func:`read_delimited` reads a file."""
    text = sys.stdin.read()
    first = text.split("\n", 1)[0]
    delimiter = "\t" if "\t" in first and "," not in first else ","
    table = _read_delimited_stream(io.StringIO(text), STDIN, delimiter, header)
    if table.n_rows == 0:
        raise UserError("-: no data rows on standard input")
    return table


def read_delimited(path: Path, delimiter: str = ",", header: bool | None = True) -> Table:
    """A CSV (or, with ``delimiter="\t"``, TSV) file as a :class:`Table` of text columns.

    With ``header=None`` the first line is a header unless it is all numbers other than the
    column numbers 0, 1, ..., d−1 (the header pandas writes for unnamed columns); without a
    header the columns are named 0, 1, ... and the first line is data.
    """
    try:
        with path.open(newline="", encoding="utf-8-sig") as f:
            return _read_delimited_stream(f, path, delimiter, header)
    except UnicodeDecodeError:
        kind = "TSV" if delimiter == "\t" else "CSV"
        raise UserError(f"{path}: not a text {kind} file (not UTF-8)") from None


def _read_delimited_stream(f: Any, path: Path, delimiter: str, header: bool | None) -> Table:
    kind = "TSV" if delimiter == "\t" else "CSV"
    try:
        reader = csv.reader(f, delimiter=delimiter)
        first = next(reader, None)
        if first is None:
            raise UserError(f"{path}: empty file" + (f" (a {kind} needs a header row)"
                                                     if header else ""))
        first = [h.strip() for h in first]
        if header is None:
            header = not _all_numbers(first) or first == [str(j) for j in range(len(first))]
        names = first if header else [str(j) for j in range(len(first))]
        rows, lines = ([], []) if header else ([first], [reader.line_num])
        if header:
            _check_header(path, names)
        for row in reader:
            if not row or all(not cell.strip() for cell in row):
                continue
            if len(row) != len(names):
                raise UserError(f"{path}: line {reader.line_num} has {len(row)} fields, "
                                f"the {'header' if header else 'first line'} has "
                                f"{len(names)}")
            rows.append(row)
            lines.append(reader.line_num)
    except csv.Error as exc:
        raise UserError(f"{path}: not a readable {kind} file ({exc})") from None
    cells = np.array(rows, dtype=str).reshape(len(rows), len(names))
    data = {name: cells[:, j] for j, name in enumerate(names)}
    return Table(path, names, data, np.array(lines, dtype=np.int64), "line")


def is_number(cell: str) -> bool:
    """Whether a text cell is a number (:data:`NUMBER`, surrounded by ASCII blanks or none)."""
    return NUMBER.fullmatch(cell.strip(BLANKS)) is not None


def _all_numbers(cells: Sequence[str]) -> bool:
    return all(is_number(cell) for cell in cells)


def _check_header(path: Path, header: Sequence[str]) -> None:
    for j, name in enumerate(header):
        if not name:
            raise UserError(f"{path}: header field {j + 1} is empty; every column needs a name")
    seen: set[str] = set()
    for name in header:
        if name in seen:
            raise UserError(f"{path}: column '{name}' appears twice in the header")
        seen.add(name)


def _read_npy(path: Path) -> Table:
    with path.open("rb") as f:
        if f.read(6) != b"\x93NUMPY":
            raise UserError(f"{path}: not a .npy file (no NumPy header; save with np.save)")
    try:
        array = np.load(path, allow_pickle=False)
    except ValueError as exc:
        raise UserError(f"{path}: not a readable .npy file ({exc})") from None
    if array.ndim == 1:
        array = array[:, None]
    if array.ndim != 2:
        raise UserError(f"{path}: expected a 2-D array (rows × columns), got shape {array.shape}")
    check_real(path, array.dtype)
    columns = [str(j) for j in range(array.shape[1])]
    data = {name: array[:, j] for j, name in enumerate(columns)}
    return Table(path, columns, data, np.arange(1, array.shape[0] + 1), "row")


def check_real(path: Path, dtype: np.dtype, what: str = "array") -> None:
    """Refuse an array of anything but real numbers (integers or floats): complex values
    would lose their imaginary part when read as float64."""
    if dtype.kind == "c":
        raise UserError(f"{path}: {what} holds complex numbers ({dtype}); expected real numbers")
    if dtype.kind not in "fiu":
        raise UserError(f"{path}: {what} has dtype {dtype}; expected numbers")


def _read_parquet(path: Path) -> Table:
    try:
        import pandas as pd
    except ImportError:
        raise UserError(f"{path}: reading Parquet needs pandas and pyarrow "
                        "(pip install pandas pyarrow)") from None
    try:
        frame = pd.read_parquet(path)
    except ImportError as exc:
        raise UserError(f"{path}: reading Parquet needs pyarrow ({exc})") from None
    except (ValueError, OSError) as exc:
        raise UserError(f"{path}: not a readable Parquet file ({exc})") from None
    columns = [str(c) for c in frame.columns]
    _check_header(path, columns)
    data = {}
    for name, column in zip(columns, frame.columns, strict=True):
        series = frame[column]
        numeric = series.dtype.kind in "fiub"
        data[name] = (series.to_numpy(dtype=np.float64, na_value=np.nan) if numeric else
                      np.array(series.astype(object).where(series.notna(), "").astype(str),
                               dtype=str))
    return Table(path, columns, data, np.arange(1, len(frame) + 1), "row")


def select_columns(table: Table, columns: Sequence[str] | None,
                   exclude: Iterable[str] = ()) -> list[str]:
    """The requested columns (all but ``exclude`` when None), each checked to exist."""
    if columns is None:
        chosen = [c for c in table.columns if c not in set(exclude)]
    else:
        chosen = list(columns)
        for name in chosen:
            if name not in table.data:
                raise UserError(f"{table.path}: no column '{name}' "
                                f"(columns: {', '.join(table.columns)})")
        if len(set(chosen)) != len(chosen):
            raise UserError(f"{table.path}: a column is selected twice in --columns")
    if not chosen:
        raise UserError(f"{table.path}: no columns left to fit")
    return chosen


def numeric_column(table: Table, name: str) -> np.ndarray:
    """Column ``name`` as float64, NaN where the value is missing; non-numbers are an error."""
    values = table.data[name]
    if values.dtype.kind in "fiub":
        out = values.astype(np.float64)
    else:
        blank = np.isin(np.char.lower(np.char.strip(values)), list(MISSING))
        out = np.full(values.shape, np.nan)
        for i in np.flatnonzero(~blank):
            cell = str(values[i])
            if not is_number(cell):
                raise UserError(
                    f"{table.path}: column '{name}' is not numeric ({table.row_word} "
                    f"{table.rows[i]}: {cell!r}); choose numeric columns with --columns")
            out[i] = float(cell.strip(BLANKS))
            if np.isinf(out[i]) and "inf" not in cell.lower():
                raise UserError(f"{table.path}: column '{name}' has a number beyond float64's "
                                f"range ({table.row_word} {table.rows[i]}: {cell.strip()!r})")
    infinite = np.flatnonzero(np.isinf(out))
    if infinite.size:
        raise UserError(f"{table.path}: column '{name}' has an infinite value "
                        f"({table.row_word} {table.rows[infinite[0]]})")
    check_range(table.path, f"column '{name}'", out, table.rows, table.row_word)
    return out


def check_range(path: Path, what: str, values: np.ndarray, rows: np.ndarray,
                row_word: str) -> None:
    """Refuse a column whose covariance float64 cannot compute: a value beyond
    :data:`MAX_MAGNITUDE`, or a spread below :data:`MIN_SPREAD` but not zero (a constant
    column is the fit's to name). NaN (missing) values are ignored."""
    finite = values[np.isfinite(values)]
    large = np.flatnonzero(np.abs(values) > MAX_MAGNITUDE)
    if large.size:
        raise UserError(f"{path}: {what} has a value of magnitude above {MAX_MAGNITUDE:g} "
                        f"({row_word} {rows[large[0]]}: {values[large[0]]:.6g}), beyond what a "
                        "covariance in float64 can hold; rescale it")
    spread = float(np.ptp(finite)) if finite.size else 0.0
    if 0 < spread < MIN_SPREAD:
        raise UserError(f"{path}: {what} varies by only {spread:.3g}, below {MIN_SPREAD:g}, too "
                        "little for a covariance in float64 (its variance underflows); rescale "
                        "it")


def numeric_matrix(table: Table, columns: Sequence[str], strict: bool,
                   by: str | None = None) -> tuple[np.ndarray, np.ndarray | None]:
    """The (n, d) matrix of ``columns`` and, with ``by``, that column's group labels.

    Rows with a missing value (in ``columns`` or ``by``) are dropped and reported on stderr, or
    rejected when ``strict``.
    """
    matrix = np.column_stack([numeric_column(table, c) for c in columns])
    missing, named = np.isnan(matrix), list(columns)
    group = None
    if by is not None:
        group = labels(table, by)
        missing = np.column_stack([np.isin(np.char.lower(group), list(MISSING)), missing])
        named = [by, *named]
    keep = drop_missing(table, ~missing.any(axis=1), strict,
                        lambda i: named[int(np.argmax(missing[i]))])
    return matrix[keep], None if group is None else group[keep]


def drop_missing(table: Table, complete: np.ndarray, strict: bool, column_of: Any) -> np.ndarray:
    """Report (or, when ``strict``, reject) the rows where ``complete`` is False."""
    missing = np.flatnonzero(~complete)
    if missing.size == 0:
        return complete
    first = f"{table.row_word} {table.rows[missing[0]]}, column '{column_of(missing[0])}'"
    if strict:
        raise UserError(f"{table.path}: {missing.size} row(s) with missing values (first: "
                        f"{first}); leave out --strict to drop them")
    shown = ", ".join(str(r) for r in table.rows[missing[:10]])
    more = ", ..." if missing.size > 10 else ""
    note(f"{table.path}: dropped {missing.size} row(s) with missing values "
         f"({table.row_word}s {shown}{more})")
    return complete


def labels(table: Table, by: str) -> np.ndarray:
    """Column ``by`` as strings (group names); must exist."""
    if by not in table.data:
        raise UserError(f"{table.path}: no column '{by}' for --by "
                        f"(columns: {', '.join(table.columns)})")
    values = table.data[by]
    if values.dtype.kind == "f":
        ints = np.isfinite(values) & (values == np.round(values))
        return np.array([str(int(v)) if ok else ("" if np.isnan(v) else str(v))
                         for v, ok in zip(values, ints, strict=True)])
    return np.char.strip(values.astype(str))

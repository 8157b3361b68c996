"""``gaussdiv pairwise FILE --by COLUMN``: one Gaussian per group, the N×N divergence matrix."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

import click
import numpy as np

import gaussdiv
from gaussdiv.cli import fitting
from gaussdiv.cli.common import (
    UserError,
    check_writable,
    echo_json,
    force_option,
    json_option,
    note,
    table,
    to_python,
    write_text,
)
from gaussdiv.cli.plot import heatmap
from gaussdiv.cli.samples import labels, numeric_matrix, parse_columns, read_table, select_columns

DIVERGENCES = {"kl": "KL(P‖Q)", "jeffreys": "KL(P‖Q) + KL(Q‖P)"}


def divergence_matrix(gaussians: list[gaussdiv.Gaussian], divergence: str) -> np.ndarray:
    """M[i, j] = KL(G_i‖G_j) (or the Jeffreys sum), each entry by :func:`gaussdiv.kl`."""
    n = len(gaussians)
    m = np.array([[float(gaussdiv.kl(gaussians[i], gaussians[j])) for j in range(n)]
                  for i in range(n)])
    return m + m.T if divergence == "jeffreys" else m


def matrix_csv(matrix: np.ndarray, names: list[str]) -> str:
    """The matrix as CSV: a header of group names, one row per group (row = P, column = Q)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["P\\Q", *names])
    for name, row in zip(names, matrix, strict=True):
        writer.writerow([name, *(repr(float(v)) for v in row)])
    return out.getvalue()


def matrix_payload(matrix: np.ndarray, fits: dict[str, fitting.Fit], columns: list[str],
                   divergence: str) -> dict[str, Any]:
    """The matrix and how each group was fitted, for JSON."""
    return {"divergence": divergence, "definition": DIVERGENCES[divergence] + ", row P, column Q",
            "columns": columns, "groups": list(fits), "matrix": matrix,
            "fits": {g: {"rows": f.n, "estimator": f.estimator} for g, f in fits.items()}}


def matrix_table(matrix: np.ndarray, names: list[str], divergence: str) -> str:
    """The matrix as a text table with a caption saying which way round it is."""
    rows = [[name, *row] for name, row in zip(names, matrix, strict=True)]
    caption = f"{DIVERGENCES[divergence]}: row P, column Q"
    return caption + "\n\n" + table(rows, header=["P \\ Q", *names], digits=4)


def note_shrinkage(fits: dict[str, fitting.Fit], estimator: str, dim: int) -> None:
    """Say which groups ``auto`` fitted with shrinkage."""
    shrunk = [g for g, f in fits.items() if f.estimator != "mle"]
    if estimator == "auto" and shrunk:
        note(f"groups {', '.join(shrunk)}: fewer than {fitting.AUTO_ROWS_PER_DIM * dim} rows "
             f"for {dim} dimensions; fitted with oas shrinkage")


@click.command("pairwise", short_help="Divergence matrix and heatmap between groups of one file.")
@click.argument("file", type=click.Path(path_type=Path))
@click.option("--by", required=True, metavar="COLUMN", help="Column whose values name the groups.")
@click.option("--columns", "-c", multiple=True, metavar="NAMES",
              help="Columns to fit, comma-separated (repeatable). Default: all but --by.")
@fitting.estimator_option
@fitting.standardize_option
@click.option("--strict", is_flag=True, help="Reject rows with missing values instead of "
                                             "dropping them.")
@click.option("--divergence", type=click.Choice(list(DIVERGENCES)), default="kl",
              show_default=True, help="KL(P‖Q), or the symmetric Jeffreys sum.")
@click.option("--output", "-o", type=click.Path(path_type=Path), default=None,
              help="Write the matrix to this .csv or .json file.")
@click.option("--heatmap", "heatmap_path", type=click.Path(path_type=Path), default=None,
              help="Write a heatmap of the matrix to this .png file.")
@force_option
@json_option
def pairwise_command(file: Path, by: str, columns: tuple[str, ...], estimator: str,
                     standardize: bool, strict: bool, divergence: str, output: Path | None,
                     heatmap_path: Path | None, force: bool, as_json: bool) -> None:
    """One Gaussian per group of FILE's rows (grouped by --by), and the N×N matrix of
    divergences between them: entry (P, Q) is KL(P‖Q).

    FILE is a CSV with a header row, a .npy array (columns named 0, 1, ...) or Parquet.
    """
    for path, suffixes in ((output, (".csv", ".json")), (heatmap_path, (".png",))):
        if path is not None:
            if path.suffix.lower() not in suffixes:
                raise UserError(f"{path}: use a {' or '.join(suffixes)} file name")
            check_writable(path, force)
    data = read_table(file)
    labels(data, by)  # a missing --by column is reported before the fitted columns
    names = select_columns(data, parse_columns(columns), exclude=[by])
    if by in names:
        raise UserError(f"{file}: --by column '{by}' cannot also be a fitted column")
    x, group = numeric_matrix(data, names, strict, by=by)
    if standardize:
        (x,) = fitting.standardize(x)
    fits = fitting.fit_groups(x, group, estimator, str(file), names)
    note_shrinkage(fits, estimator, len(names))
    matrix = divergence_matrix([f.gaussian for f in fits.values()], divergence)
    groups = list(fits)
    if output is not None:
        text = (matrix_csv(matrix, groups) if output.suffix.lower() == ".csv" else
                json.dumps(to_python(matrix_payload(matrix, fits, names, divergence)), indent=2,
                           ensure_ascii=False))
        write_text(output, text)
        note(f"wrote {output}")
    if heatmap_path is not None:
        heatmap(matrix, groups, heatmap_path, f"{DIVERGENCES[divergence]} between groups of "
                f"{file.name} by '{by}'", f"{divergence} divergence (nats)")
        note(f"wrote {heatmap_path}")
    if as_json:
        echo_json(matrix_payload(matrix, fits, names, divergence))
    else:
        click.echo(matrix_table(matrix, groups, divergence))

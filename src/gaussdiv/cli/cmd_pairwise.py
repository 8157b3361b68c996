"""``gaussdiv pairwise FILE --by COLUMN``: one Gaussian per group, the N×N divergence matrix."""

from __future__ import annotations

import csv
import io
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
    envelope,
    force_option,
    json_option,
    json_text,
    note,
    record,
    table,
    write_files,
)
from gaussdiv.cli.divergences import Divergence, divergence_option
from gaussdiv.cli.plot import heatmap
from gaussdiv.cli.samples import labels, numeric_matrix, parse_columns, read_table, select_columns


def divergence_matrix(gaussians: list[gaussdiv.Gaussian], divergence: Divergence) -> np.ndarray:
    """M[i, j] = D(G_i‖G_j) by :func:`gaussdiv.pairwise` over the stacked Gaussians (a
    symmetric divergence comes out exactly symmetric)."""
    return divergence.matrix(gaussdiv.stack(gaussians))


def nearest_table(names: list[str], index: np.ndarray, value: np.ndarray,
                  divergence: Divergence) -> str:
    """Each group's nearest other groups, one row per (group, rank)."""
    rows = [[name, rank + 1, names[j], v] for name, ks, vs in zip(names, index, value, strict=True)
            for rank, (j, v) in enumerate(zip(ks, vs, strict=True))]
    caption = f"nearest groups by {divergence.describe('group', 'neighbour')}"
    return caption + "\n\n" + table(rows, header=["group", "rank", "neighbour", "value"],
                                     digits=4)


def nearest_records(names: list[str], index: np.ndarray, value: np.ndarray,
                    divergence: Divergence) -> list[dict[str, Any]]:
    """One result record per (group, rank): the group's rank-th nearest other group."""
    return [record(f"{name}->{names[j]}", divergence.label(name, names[j]), v, group=name,
                   neighbour=names[j], rank=rank + 1)
            for name, ks, vs in zip(names, index, value, strict=True)
            for rank, (j, v) in enumerate(zip(ks, vs, strict=True))]


def matrix_csv(matrix: np.ndarray, names: list[str]) -> str:
    """The matrix as CSV: a header of group names, one row per group (row = P, column = Q)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["P\\Q", *names])
    for name, row in zip(names, matrix, strict=True):
        writer.writerow([name, *(repr(float(v)) for v in row)])
    return out.getvalue()


def matrix_records(matrix: np.ndarray, names: list[str],
                   divergence: Divergence) -> list[dict[str, Any]]:
    """One result record per pair of different groups (each unordered pair once when the
    divergence is symmetric)."""
    return [record(f"{p}->{q}", divergence.label(p, q), matrix[i, j], first=p, second=q)
            for i, p in enumerate(names) for j, q in enumerate(names)
            if i != j and (i < j or not divergence.symmetric)]


def pairwise_inputs(file: Path, by: str, columns: list[str], fits: dict[str, fitting.Fit],
                    divergence: Divergence) -> dict[str, Any]:
    """The ``inputs`` of the JSON: file, grouping, columns, the fits and the divergence."""
    first = next(iter(fits.values()))
    return {"path": file, "by": by, "columns": columns, "dim": len(columns),
            "estimator": first.estimator, "divergence": divergence.spec,
            "definition": divergence.describe() + ", row P, column Q",
            "groups": [{"name": g, "rows": f.n} for g, f in fits.items()]}


def matrix_payload(inputs: dict[str, Any], matrix: np.ndarray, names: list[str],
                   divergence: Divergence) -> dict[str, Any]:
    """The JSON of the matrix: one record per pair, and the matrix itself (row P, column Q)."""
    return envelope("pairwise", inputs, matrix_records(matrix, names, divergence),
                    matrix={"groups": names, "values": matrix})


def matrix_table(matrix: np.ndarray, names: list[str], divergence: Divergence) -> str:
    """The matrix as a text table with a caption saying which divergence and which way round."""
    rows = [[name, *row] for name, row in zip(names, matrix, strict=True)]
    caption = f"{divergence.describe()}: row P, column Q"
    return caption + "\n\n" + table(rows, header=["P \\ Q", *names], digits=4)


def note_shrinkage(fits: dict[str, fitting.Fit], estimator: str, dim: int) -> None:
    """Say when ``auto`` fitted the groups with shrinkage, and why."""
    used = next(iter(fits.values())).estimator
    if estimator == "auto" and used != "mle":
        note(f"the smallest group has fewer than {fitting.AUTO_ROWS_PER_DIM * dim} rows for "
             f"{dim} dimensions; every group is fitted with {used} shrinkage")


@click.command("pairwise", short_help="Divergence matrix and heatmap between groups of one file.")
@click.argument("file", type=click.Path(path_type=Path))
@click.option("--by", required=True, metavar="COLUMN", help="Column whose values name the groups.")
@click.option("--columns", "-c", multiple=True, metavar="NAMES",
              help="Columns to fit, comma-separated (repeatable). Default: all but --by.")
@fitting.estimator_option()
@click.option("--strict", is_flag=True, help="Reject rows with missing values instead of "
                                             "dropping them.")
@divergence_option("Divergence of each entry (row P, column Q): KL(P‖Q) by default; the "
                   "symmetric ones give a symmetric matrix.")
@click.option("--output", "-o", type=click.Path(path_type=Path), default=None,
              help="Write the matrix to this .csv or .json file.")
@click.option("--heatmap", "heatmap_path", type=click.Path(path_type=Path), default=None,
              help="Write a heatmap of the matrix to this .png file.")
@click.option("--top-k", "top_k", type=click.IntRange(min=1), default=None, metavar="K",
              help="Instead of the matrix, list each group's K nearest other groups "
                   "(gaussdiv.pairwise_topk).")
@force_option
@json_option
def pairwise_command(file: Path, by: str, columns: tuple[str, ...], estimator: str,
                     strict: bool, divergence: Divergence,
                     output: Path | None, heatmap_path: Path | None, top_k: int | None,
                     force: bool, as_json: bool) -> None:
    """One Gaussian per group of FILE's rows (grouped by --by), and the N×N matrix of
    divergences between them: entry (P, Q) is KL(P‖Q), or the --divergence chosen.

    FILE is a CSV or TSV with a header row, a .npy array (columns named 0, 1, ...), Parquet,
    or - for CSV/TSV on standard input.

    \b
    Examples:
      gaussdiv pairwise iris.csv --by species --heatmap kl.png
      gaussdiv pairwise iris.csv --by species --divergence hellinger -o h.csv
      gaussdiv pairwise iris.csv --by species --top-k 1
    """
    if top_k is not None and (output is not None or heatmap_path is not None):
        raise UserError("--top-k lists neighbours; it does not write a matrix (-o) or a "
                        "heatmap: run without --top-k for those")
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
    fits = fitting.fit_groups(x, group, estimator, str(file), names)
    note_shrinkage(fits, estimator, len(names))
    groups = list(fits)
    inputs = pairwise_inputs(file, by, names, fits, divergence)
    if top_k is not None:
        if top_k >= len(groups):
            raise UserError(f"--top-k {top_k}: there are {len(groups)} groups, so at most "
                            f"{len(groups) - 1} others per group")
        index, value = divergence.nearest(gaussdiv.stack([f.gaussian for f in fits.values()]),
                                          top_k)
        if as_json:
            echo_json(envelope("pairwise", inputs,
                               nearest_records(groups, index, value, divergence)))
        else:
            click.echo(nearest_table(groups, index, value, divergence))
        return
    matrix = divergence_matrix([f.gaussian for f in fits.values()], divergence)
    files: dict[Path, str | bytes] = {}
    if output is not None:
        files[output] = (matrix_csv(matrix, groups) if output.suffix.lower() == ".csv" else
                         json_text(matrix_payload(inputs, matrix, groups, divergence)))
    if heatmap_path is not None:
        files[heatmap_path] = heatmap(matrix, groups, f"{divergence.describe()} between groups "
                                      f"of {file.name} by '{by}'", divergence.value_label())
    write_files(files)
    for path in files:
        note(f"wrote {path}")
    if as_json:
        echo_json(matrix_payload(inputs, matrix, groups, divergence))
    else:
        click.echo(matrix_table(matrix, groups, divergence))

"""``gaussdiv frechet A B``: the Fréchet distance (FID) between the Gaussians fitted to two
feature files, by :func:`gaussdiv.frechet_distance`."""

from __future__ import annotations

from pathlib import Path

import click

import gaussdiv
from gaussdiv.cli.common import UserError, echo_json, envelope, json_option, record
from gaussdiv.cli.features import read_features

DEFINITION = "W₂²(N(μ_A, Σ_A), N(μ_B, Σ_B)), μ and Σ the mean and covariance (np.cov, ddof=1) " \
             "of each file's rows"


@click.command("frechet", short_help="Fréchet distance (FID) between two feature files.")
@click.argument("a_file", metavar="A", type=click.Path(path_type=Path))
@click.argument("b_file", metavar="B", type=click.Path(path_type=Path))
@json_option
def frechet_command(a_file: Path, b_file: Path, as_json: bool) -> None:
    """The Fréchet distance between feature sets A and B (FID when the features are an
    Inception network's): the squared 2-Wasserstein distance between the Gaussians fitted to
    the rows of each, ‖μ_A − μ_B‖² + tr(Σ_A + Σ_B − 2 (Σ_A Σ_B)^½), with the sample covariance
    of divisor n − 1 (ddof=1, np.cov's default).

    A and B each hold n × d numbers, one feature vector per row (same d, n ≥ 2): a .npy array,
    a .npz archive with one array (or one named "features"), a .csv / .tsv file (a first
    line of names is a header and is skipped), or - for CSV/TSV on standard input.

    \b
    Example:
      gaussdiv frechet real.npy generated.npy --json
    """
    xa, xb = read_features(a_file), read_features(b_file)
    if xa.shape[1] != xb.shape[1]:
        raise UserError(f"{b_file}: has d={xb.shape[1]} features per row but {a_file} has "
                        f"d={xa.shape[1]}")
    try:
        fid = float(gaussdiv.frechet_distance(xa, xb))
    except gaussdiv.GaussianError as exc:
        raise UserError(f"{a_file} vs {b_file}: {exc}") from None
    files = {"a": {"path": a_file, "rows": xa.shape[0], "dim": xa.shape[1]},
             "b": {"path": b_file, "rows": xb.shape[0], "dim": xb.shape[1]}}
    if as_json:
        echo_json(envelope("frechet", {**files, "definition": DEFINITION},
                           [record("fid", "FID(A, B)", fid)]))
        return
    for name, path, x in (("A", a_file, xa), ("B", b_file, xb)):
        click.echo(f"{name}: {path}  (n = {x.shape[0]}, d = {x.shape[1]})")
    click.echo(f"\nFID = {fid:.10g}\n({DEFINITION})")

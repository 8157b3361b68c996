"""``gaussdiv frechet A B``: the Fréchet distance (FID) between the Gaussians fitted to two
feature files, by :func:`gaussdiv.frechet_distance`; where a file holds statistics (μ, Σ)
instead, by :func:`gaussdiv.wasserstein` of ``Gaussian.semidefinite`` Gaussians."""

from __future__ import annotations

from pathlib import Path

import click
import numpy as np

import gaussdiv
from gaussdiv.cli.common import UserError, echo_json, envelope, json_option, record
from gaussdiv.cli.features import Statistics, read_features_or_statistics
from gaussdiv.structures import SemidefiniteCovariance

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
    line of names is a header and is skipped), or - for CSV/TSV on standard input. A .npz
    archive with arrays "mu" (d) and "sigma" (d × d) holds the statistics instead (pytorch-fid's
    --save-stats files; sigma may be singular, as for fewer images than features).

    \b
    Example:
      gaussdiv frechet real.npy generated.npy --json
      gaussdiv frechet real_stats.npz generated.npy
    """
    a, b = read_features_or_statistics(a_file), read_features_or_statistics(b_file)
    da, db = _dim(a), _dim(b)
    if da != db:
        raise UserError(f"{b_file}: has d={db} features per row but {a_file} has d={da}")
    try:
        if isinstance(a, Statistics) or isinstance(b, Statistics):
            fid = float(gaussdiv.wasserstein(_gaussian(a, "A"), _gaussian(b, "B"),
                                             squared=True))
        else:
            fid = float(gaussdiv.frechet_distance(a, b))
    except gaussdiv.GaussianError as exc:
        raise UserError(f"{a_file} vs {b_file}: {exc}") from None
    files = {"a": _described(a_file, a), "b": _described(b_file, b)}
    if as_json:
        echo_json(envelope("frechet", {**files, "definition": DEFINITION},
                           [record("fid", "FID(A, B)", fid)]))
        return
    for name, path, x in (("A", a_file, a), ("B", b_file, b)):
        what = f"statistics, d = {x.dim}" if isinstance(x, Statistics) else \
            f"n = {x.shape[0]}, d = {x.shape[1]}"
        click.echo(f"{name}: {path}  ({what})")
    click.echo(f"\nFID = {fid:.10g}\n({DEFINITION})")


def _dim(x: np.ndarray | Statistics) -> int:
    return x.dim if isinstance(x, Statistics) else int(x.shape[1])


def _gaussian(x: np.ndarray | Statistics, name: str) -> gaussdiv.Gaussian:
    """N(μ, Σ) of stored statistics, or fitted to features as FID fits them (np.cov, ddof=1);
    semidefinite, since Σ is singular for n ≤ d."""
    if isinstance(x, Statistics):
        mean, cov = x.mean, x.cov
    else:
        mean, cov = x.mean(axis=0), np.atleast_2d(np.cov(x, rowvar=False))
    what = "'sigma'" if isinstance(x, Statistics) else "the covariance of the rows"
    try:  # the structure named as the user knows the array
        return gaussdiv.Gaussian(mean, SemidefiniteCovariance.from_matrix(cov, name=what))
    except gaussdiv.GaussianError as exc:
        raise gaussdiv.GaussianError(f"{name}: {exc}") from None


def _described(path: Path, x: np.ndarray | Statistics) -> dict[str, object]:
    if isinstance(x, Statistics):
        return {"path": path, "statistics": True, "dim": x.dim}
    return {"path": path, "rows": int(x.shape[0]), "dim": int(x.shape[1])}

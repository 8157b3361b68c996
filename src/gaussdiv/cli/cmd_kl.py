"""``gaussdiv kl P Q``: KL both ways between two Gaussians given as files, with its terms — or
another ``--divergence``, both ways (once when symmetric)."""

from __future__ import annotations

from pathlib import Path

import click

import gaussdiv
from gaussdiv.cli.common import (
    UserError,
    argument_names,
    echo_json,
    envelope,
    json_option,
    record,
    table,
    terms_dict,
    terms_table,
)
from gaussdiv.cli.divergences import Divergence, divergence_option
from gaussdiv.cli.gaussian_io import load_gaussian

FILE = click.Path(path_type=Path, dir_okay=True)


@click.command("kl", short_help="KL (or another divergence) both ways between two Gaussian "
                                "files.")
@click.argument("p_file", metavar="P", type=FILE)
@click.argument("q_file", metavar="Q", type=FILE)
@divergence_option("Divergence to report: kl prints KL(P‖Q), KL(Q‖P) and their terms; any "
                   "other prints it both ways, or once when it is symmetric.")
@json_option
def kl_command(p_file: Path, q_file: Path, divergence: Divergence, as_json: bool) -> None:
    """KL(P‖Q), KL(Q‖P) and their three terms, for Gaussians P and Q read from files; with
    --divergence, that divergence between them instead.

    P and Q are JSON or .npz files holding "mean" and one covariance layout, e.g.
    {"mean": [0, 1], "cov": [[2, 0.5], [0.5, 1]]}; "precision", "scale_tril",
    "precision_tril", "var"/"std"/"logvar" (diagonal) and more are read by key
    (see gaussdiv.cli.gaussian_io).

    \b
    In each column, eq. (23) of the derivation:
      KL = ½ ( ln|Σ₂|/|Σ₁| + tr(Σ₂⁻¹Σ₁) + (μ₁−μ₂)ᵀΣ₂⁻¹(μ₁−μ₂) − d )
    with (μ₁, Σ₁) the first argument and (μ₂, Σ₂) the second.

    \b
    Examples:
      gaussdiv kl p.json q.json
      gaussdiv kl p.json q.npz --divergence renyi:0.5 --json
    """
    p, p_how = load_gaussian(p_file)
    q, q_how = load_gaussian(q_file)
    for path, g in ((p_file, p), (q_file, q)):
        if g.batch_shape:
            raise UserError(f"{path}: holds a batch of Gaussians (batch shape {g.batch_shape}); "
                            "gaussdiv kl compares one pair — use the Python API for batches")
    if p.dim != q.dim:
        raise UserError(f"{q_file}: has dimension d={q.dim} but {p_file} has d={p.dim}")
    files = {"p": {"path": p_file, "constructor": p_how, "dim": p.dim},
             "q": {"path": q_file, "constructor": q_how, "dim": q.dim}}
    if divergence.kind != "kl":
        values = divergence.both_ways(p, q, "P", "Q", (str(p_file), str(q_file)))
        if as_json:
            inputs = {**files, "divergence": divergence.spec,
                      "definition": divergence.describe()}
            echo_json(envelope("kl", inputs, [record(key, label, value)
                                              for key, label, value in values]))
            return
        _print_files(p_file, p_how, q_file, q_how, p.dim)
        click.echo(divergence.describe() + "\n")
        click.echo(table([[label, value] for _, label, value in values],
                         header=["divergence", "value"], digits=10))
        return
    with argument_names(p=str(p_file), q=str(q_file)):
        pq = gaussdiv.kl_terms(p, q)
    with argument_names(p=str(q_file), q=str(p_file)):
        qp = gaussdiv.kl_terms(q, p)
    jeffreys = pq.kl + qp.kl
    if as_json:
        inputs = {**files, "divergence": "kl", "definition": "KL(P‖Q) and KL(Q‖P)"}
        echo_json(envelope("kl", inputs, [
            record("kl_pq", "KL(P‖Q)", pq.kl, terms=terms_dict(pq)),
            record("kl_qp", "KL(Q‖P)", qp.kl, terms=terms_dict(qp)),
            record("jeffreys", "J(P, Q)", jeffreys)]))
        return
    _print_files(p_file, p_how, q_file, q_how, p.dim)
    click.echo(terms_table({"KL(P‖Q)": pq, "KL(Q‖P)": qp}))
    click.echo(f"\nJeffreys KL(P‖Q) + KL(Q‖P) = {jeffreys:.10g}")


def _print_files(p_file: Path, p_how: str, q_file: Path, q_how: str, dim: int) -> None:
    click.echo(f"P: {p_file}  ({p_how}, d = {dim})")
    click.echo(f"Q: {q_file}  ({q_how}, d = {dim})\n")

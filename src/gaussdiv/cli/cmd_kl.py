"""``gaussdiv kl P Q``: KL both ways between two Gaussians given as files, with its terms."""

from __future__ import annotations

from pathlib import Path

import click

import gaussdiv
from gaussdiv.cli.common import UserError, echo_json, json_option, kl_terms_dict, terms_table
from gaussdiv.cli.gaussian_io import load_gaussian

FILE = click.Path(path_type=Path, dir_okay=True)


@click.command("kl", short_help="KL both ways between two Gaussian files, with its terms.")
@click.argument("p_file", metavar="P", type=FILE)
@click.argument("q_file", metavar="Q", type=FILE)
@json_option
def kl_command(p_file: Path, q_file: Path, as_json: bool) -> None:
    """KL(P‖Q), KL(Q‖P) and their three terms, for Gaussians P and Q read from files.

    P and Q are JSON or .npz files holding "mean" and one covariance layout, e.g.
    {"mean": [0, 1], "cov": [[2, 0.5], [0.5, 1]]}; "precision", "scale_tril",
    "precision_tril", "var"/"std"/"logvar" (diagonal) and more are read by key
    (see gaussdiv.cli.gaussian_io).

    \b
    In each column, eq. (23) of the derivation:
      KL = ½ ( ln|Σ₂|/|Σ₁| + tr(Σ₂⁻¹Σ₁) + (μ₁−μ₂)ᵀΣ₂⁻¹(μ₁−μ₂) − d )
    with (μ₁, Σ₁) the first argument and (μ₂, Σ₂) the second.
    """
    p, p_how = load_gaussian(p_file)
    q, q_how = load_gaussian(q_file)
    for path, g in ((p_file, p), (q_file, q)):
        if g.batch_shape:
            raise UserError(f"{path}: holds a batch of Gaussians (batch shape {g.batch_shape}); "
                            "gaussdiv kl compares one pair — use the Python API for batches")
    if p.dim != q.dim:
        raise UserError(f"{q_file}: has dimension d={q.dim} but {p_file} has d={p.dim}")
    pq, qp = gaussdiv.kl_terms(p, q), gaussdiv.kl_terms(q, p)
    jeffreys = pq.kl + qp.kl
    if as_json:
        echo_json({
            "p": {"path": p_file, "constructor": p_how, "dim": p.dim},
            "q": {"path": q_file, "constructor": q_how, "dim": q.dim},
            "kl_pq": kl_terms_dict(pq), "kl_qp": kl_terms_dict(qp), "jeffreys": jeffreys,
        })
        return
    click.echo(f"P: {p_file}  ({p_how}, d = {p.dim})")
    click.echo(f"Q: {q_file}  ({q_how}, d = {q.dim})\n")
    click.echo(terms_table({"KL(P‖Q)": pq, "KL(Q‖P)": qp}))
    click.echo(f"\nJeffreys KL(P‖Q) + KL(Q‖P) = {jeffreys:.10g}")

"""``gaussdiv derive``: the derivation of KL(P‖Q), each identity checked numerically."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click
import numpy as np

from gaussdiv import Gaussian
from gaussdiv.cli.common import (
    EXIT_GATE,
    UserError,
    argument_names,
    echo_json,
    envelope,
    json_option,
    note,
    record,
    seed_option,
    table,
)
from gaussdiv.cli.gaussian_io import dense_covariance, gaussian_payload, load_gaussian
from gaussdiv.cli.walkthrough import (
    MAX_VALUES,
    Z_LIMIT,
    Step,
    builtin_pair,
    check_draws,
    derive,
)

SHOW_PARAMETERS_UP_TO = 6


def steps_records(steps: list[Step]) -> list[dict[str, Any]]:
    """One result record per identity: its closed form is the value, the Monte Carlo estimate
    (where there is one) beside it."""
    return [record(s.eq, s.identity, s.closed,
                   monte_carlo=None if s.mc is None else s.mc.value,
                   stderr=None if s.mc is None else s.mc.stderr, z=s.z, holds=s.holds,
                   detail=s.detail) for s in steps]


def steps_text(steps: list[Step]) -> str:
    """The walk-through: each identity, its closed form, its estimate ± stderr and z."""
    lines = []
    for s in steps:
        lines.append(f"{s.eq:<7} {s.identity}")
        lines.append(f"{'':8}closed form  {s.closed: .10g}")
        if s.mc is not None:
            mark = "✓" if s.holds else f"✗ (|z| ≥ {Z_LIMIT:g})"
            lines.append(f"{'':8}Monte Carlo  {float(s.mc.value): .6g} ± {float(s.mc.stderr):.2g}"
                         f"   z = {s.z: .2f}  {mark}")
        if s.detail:
            lines.append(f"{'':8}{s.detail}")
    checked = [s for s in steps if s.mc is not None]
    failed = [s.eq for s in checked if not s.holds]
    n = checked[0].mc.n if checked and checked[0].mc is not None else 0
    lines.append("")
    lines.append(f"All {len(checked)} Monte Carlo checks agree with the closed forms within "
                 f"{Z_LIMIT:g} standard errors (n = {n})." if not failed else
                 f"{len(failed)} check(s) off by {Z_LIMIT:g}+ standard errors: {', '.join(failed)}")
    return "\n".join(lines)


def steps_table(steps: list[Step]) -> str:
    """The checks in brief: one row per identity with a Monte Carlo estimate."""
    rows = [[s.eq, s.closed, f"{float(s.mc.value):.6g} ± {float(s.mc.stderr):.2g}",
             f"{s.z:.2f}", "✓" if s.holds else "✗"] for s in steps if s.mc is not None]
    return table(rows, header=["eq.", "closed form", "Monte Carlo ± stderr", "z", ""],
                 digits=10)


def pair_text(p: Gaussian, q: Gaussian) -> str:
    """P and Q written out when small, else just their dimension."""
    if p.dim > SHOW_PARAMETERS_UP_TO:
        return f"P = N(μ₁, Σ₁), Q = N(μ₂, Σ₂) in d = {p.dim} dimensions"
    with np.printoptions(precision=4, suppress=True, linewidth=100):
        parts = []
        for name, g, k in (("P", p, "₁"), ("Q", q, "₂")):
            rows = str(dense_covariance(g)).replace("\n", "\n" + " " * 8)
            parts.append(f"{name}: μ{k} = {np.asarray(g.mean)}\n   Σ{k} = {rows}")
    return "\n".join(parts)


@click.command("derive", short_help="Check each step of the derivation of KL numerically.")
@click.argument("p_file", metavar="[P Q]", required=False, type=click.Path(path_type=Path))
@click.argument("q_file", metavar="", required=False, type=click.Path(path_type=Path))
@click.option("--samples", "-n", type=click.IntRange(min=2), default=200_000, show_default=True,
              help=f"Monte Carlo draws from P (at most {MAX_VALUES:.0e} / (d + 1)).")
@seed_option("Sampling seed.")
@json_option
@click.pass_context
def derive_command(ctx: click.Context, p_file: Path | None, q_file: Path | None, samples: int,
                   seed: int, as_json: bool) -> None:
    """Walk through the derivation of KL(P‖Q) on a concrete pair, checking each identity.

    \b
    Eqs. (13) = d, (18) = tr(Σ₂⁻¹Σ₁), (19) = 0, (20), (11) and (23) of the derivation, and
    KL = H_p(q) − H_p(p): each closed form beside a Monte Carlo estimate over draws X ∼ P
    (gaussdiv.sample, gaussdiv.kl_mc), its standard error and z-score.

    P and Q are Gaussian files (as for `gaussdiv kl`); without them a built-in 3-d pair is
    used. Exit status 1 if an estimate is 5 or more standard errors from its closed form.
    """
    if (p_file is None) != (q_file is None):
        raise click.UsageError("give both P and Q, or neither for the built-in pair")
    if p_file is None or q_file is None:
        (p, q), source = builtin_pair(), "built-in pair"
    else:
        (p, _), (q, _) = load_gaussian(p_file), load_gaussian(q_file)
        source = f"P = {p_file}, Q = {q_file}"
        for path, g in ((p_file, p), (q_file, q)):
            if g.batch_shape:
                raise UserError(f"{path}: holds a batch of Gaussians; derive takes one pair")
        if p.dim != q.dim:
            raise UserError(f"{q_file}: has dimension d={q.dim} but {p_file} has d={p.dim}")
    check_draws(samples, p.dim)
    with argument_names(p=str(p_file or "P"), q=str(q_file or "Q")):
        steps = derive(p, q, samples, seed)
    if as_json:
        inputs = {"source": source, "p": gaussian_payload(p), "q": gaussian_payload(q),
                  "samples": samples, "seed": seed, "z_limit": Z_LIMIT}
        echo_json(envelope("derive", inputs, steps_records(steps),
                           all_hold=all(s.holds for s in steps)))
    else:
        click.echo(f"KL(P‖Q) step by step ({source}), Monte Carlo over n = {samples} draws "
                   f"X ∼ P, seed {seed}\n")
        click.echo(pair_text(p, q) + "\n")
        click.echo(steps_text(steps))
    if not all(s.holds for s in steps):
        note("derive: a Monte Carlo estimate disagrees with its closed form")
        ctx.exit(EXIT_GATE)

"""``gaussdiv compare A B``: two sample files compared through their fitted Gaussians, by
:func:`gaussdiv.compare`.

Reported: KL(A‖B), KL(B‖A) and Jeffreys J — each bias-corrected, with a confidence interval
that covers and the plug-in value —, a permutation p-value for "A and B come from one
distribution", and the columns ranked by their part in J. With ``--divergence`` another
divergence is reported instead (plug-in, jackknife bias-corrected, normal interval), beside
the same p-value and columns.

Gates: ``--fail-above X`` fires when the gated bias-corrected value exceeds X; ``--fail-p P``
when the p-value is below P. Either gives exit status 1.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click
import numpy as np
from tqdm import tqdm

import gaussdiv
from gaussdiv.backends import NUMPY
from gaussdiv.cli import fitting
from gaussdiv.cli.common import (
    EXIT_GATE,
    FiniteFloat,
    UserError,
    echo_json,
    envelope,
    fmt,
    json_option,
    note,
    record,
    seed_option,
    table,
    terms_dict,
)
from gaussdiv.cli.divergences import Divergence, divergence_option
from gaussdiv.cli.mixtures import mixture_option, mixture_report, mixture_table
from gaussdiv.cli.samples import (
    STDIN,
    Table,
    numeric_matrix,
    parse_columns,
    read_table,
    select_columns,
)
from gaussdiv.inference.jackknife import divergence_estimates
from gaussdiv.inference.samples import Samples

#: --gate → the KL estimate it tests.
GATES = {"jeffreys": "jeffreys", "kl-ab": "kl_ab", "kl-ba": "kl_ba", "ab": "kl_ab",
         "ba": "kl_ba"}
#: Columns listed in the text report.
TOP_COLUMNS = 5


def shared_columns(a: Table, b: Table, requested: list[str] | None) -> list[str]:
    """The columns to fit: those requested (in both files), else A's, which B must match by
    name (in any order)."""
    if requested is not None:
        select_columns(b, requested)
        return select_columns(a, requested)
    missing = [c for c in a.columns if c not in b.data]
    extra = [c for c in b.columns if c not in a.data]
    if missing or extra:
        parts = ([f"lacks {', '.join(missing)}"] if missing else []) + (
            [f"has extra {', '.join(extra)}"] if extra else [])
        raise UserError(f"{b.path}: columns do not match {a.path}: it {' and '.join(parts)}; "
                        "pick the shared ones with --columns")
    return select_columns(a, None)


@click.command("compare", short_help="Compare two sample files: bias-corrected KL, intervals, "
                                     "p-value, columns, drift gates.")
@click.argument("a_file", metavar="A", type=click.Path(path_type=Path))
@click.argument("b_file", metavar="B", type=click.Path(path_type=Path))
@click.option("--columns", "-c", multiple=True, metavar="NAMES",
              help="Columns to use, comma-separated (repeatable). Default: all columns, "
                   "which must be the same in A and B (matched by name, in any order).")
@fitting.estimator_option(fitting.AUTO_COMPARE)
@click.option("--strict", is_flag=True, help="Reject rows with missing values instead of "
                                             "dropping them.")
@click.option("--bootstrap", "n_boot", type=click.IntRange(min=0), default=1000,
              show_default=True, help="Bootstrap resamples for the intervals (0: the normal "
                                      "interval from the delta-method standard error).")
@click.option("--permutations", "n_perm", type=click.IntRange(min=0), default=1000,
              show_default=True, help="Permutations for the p-value (0: no p-value).")
@click.option("--confidence", type=FiniteFloat(0, 1, min_open=True, max_open=True),
              default=0.95, show_default=True, help="Confidence level of the intervals.")
@seed_option("Seed of the bootstrap, the permutations and --mixture.")
@click.option("--progress/--no-progress", default=True, show_default=True,
              help="Progress bar on stderr while resampling (only on a terminal).")
@click.option("--fail-above", type=FiniteFloat(), default=None, metavar="X",
              help="Drift gate: exit 1 when the --gate value (bias-corrected) exceeds X.")
@click.option("--fail-p", type=FiniteFloat(0, 1), default=None, metavar="P",
              help="Drift gate: exit 1 when the p-value is below P.")
@click.option("--gate", type=click.Choice(list(GATES)), default="jeffreys", show_default=True,
              help="Which value --fail-above tests: jeffreys, kl-ab or kl-ba (ab, ba). With "
                   "another --divergence: its value when symmetric, else ab or ba (default: "
                   "the larger direction).")
@divergence_option("Divergence to report: kl gives KL(A‖B), KL(B‖A) and Jeffreys with their "
                   "terms; any other gives it both ways (once when symmetric), "
                   "jackknife-corrected.")
@mixture_option
@json_option
@click.pass_context
def compare_command(ctx: click.Context, a_file: Path, b_file: Path, columns: tuple[str, ...],
                    estimator: str, strict: bool, n_boot: int, n_perm: int, confidence: float,
                    seed: int, progress: bool, fail_above: float | None, fail_p: float | None,
                    gate: str, divergence: Divergence, components: int | None,
                    as_json: bool) -> None:
    """Fit one Gaussian to the rows of A and one to the rows of B (the same estimator for
    both) and report how far apart they are: KL(A‖B), KL(B‖A) and the Jeffreys divergence J,
    each bias-corrected with its confidence interval and plug-in value; a permutation p-value
    for "A and B come from one distribution"; and the columns that carry the difference.

    A and B are CSV or TSV files with a header row, .npy arrays (columns named 0, 1, ...),
    Parquet files (needs pandas), or - for CSV/TSV on standard input. Rows with missing
    values are reported and dropped (--strict: rejected).

    Setting a gate: --fail-p 0.01 fires when a difference this large would arise by chance
    in under 1 % of same-distribution splits, whatever n and d; --fail-above X fires when the
    bias-corrected J exceeds X nats — pick X as the smallest drift that matters (e.g. a shift
    of s standard deviations in one column adds s² to J).

    \b
    Examples:
      gaussdiv compare ref.csv new.csv --fail-p 0.01
      gaussdiv compare ref.csv new.csv --fail-above 0.05 --json
      cat new.tsv | gaussdiv compare ref.csv - --divergence hellinger

    Exit status: 0 ok, 1 a gate fired, 2 bad input.
    """
    if a_file == STDIN and b_file == STDIN:
        raise UserError("A and B are both - (standard input); at most one can be")
    if fail_p is not None and n_perm == 0:
        raise UserError("--fail-p needs a p-value; leave out --permutations 0")
    # --gate naming the divergence itself (--divergence jeffreys --gate jeffreys) is its default
    explicit = ctx.get_parameter_source("gate") is not click.core.ParameterSource.DEFAULT \
        and gate != divergence.kind
    if divergence.kind != "kl" and divergence.symmetric and explicit:
        raise UserError(f"--gate {gate}: {divergence.spec} is symmetric, so --fail-above tests "
                        "its one value; leave out --gate")
    if divergence.kind != "kl" and explicit and gate not in ("ab", "ba"):
        raise UserError(f"--gate {gate}: is for --divergence kl; with {divergence.spec} use "
                        "--gate ab or ba (default: the larger of the two directions)")
    if divergence.kind != "kl" and \
            ctx.get_parameter_source("n_boot") is not click.core.ParameterSource.DEFAULT:
        note(f"--bootstrap: not used with --divergence {divergence.spec}, whose interval is the "
             "jackknife's (the bootstrap-t needs KL's standard error)")
    a, b = read_table(a_file), read_table(b_file)
    names = shared_columns(a, b, parse_columns(columns))
    (xa, _), (xb, _) = numeric_matrix(a, names, strict), numeric_matrix(b, names, strict)
    frames = [_samples(x, names, path) for x, path in ((xa, a_file), (xb, b_file))]
    kl_only = divergence.kind == "kl"
    total = (n_boot if kl_only else 0) + n_perm
    bar = tqdm(total=total, desc="resampling", unit="draw", file=sys.stderr, leave=False,
               disable=None if progress else True)
    try:
        result = gaussdiv.compare(*frames, estimator=estimator.replace("-", "_"),
                                  bootstrap=n_boot if kl_only else 0, confidence=confidence,
                                  permutations=n_perm, seed=seed, progress=bar.update)
    except gaussdiv.SampleError as exc:
        raise fitting.user_error(exc) from None
    except gaussdiv.GaussianError as exc:  # e.g. a fitted covariance numerically singular
        raise UserError(f"{a_file} vs {b_file}: {exc}") from None
    finally:
        bar.close()
    records = _kl_records(result) if kl_only else \
        _divergence_records(xa, xb, divergence, result.estimator, confidence)
    gates = _gates(records, divergence, gate, explicit, fail_above, fail_p, result.p_value)
    mixtures = None if components is None else \
        mixture_report(xa, xb, components, seed, (str(a_file), str(b_file)))
    if as_json:
        sections: dict[str, Any] = {
            "p_value": result.p_value, "permutations": result.permutations,
            "interval": {"method": result.interval if kl_only else "jackknife",
                         "confidence": confidence,
                         "resamples": result.bootstrap if kl_only else 0, "seed": seed},
            "correction": result.correction if kl_only else "jackknife",
            "columns": [c.to_dict() for c in result.columns], "gate": gates,
            "notes": list(result.notes)}
        if mixtures is not None:
            sections["mixture"] = mixtures
        inputs = {"a": {"path": a_file, "rows": result.n_a},
                  "b": {"path": b_file, "rows": result.n_b}, "columns": names,
                  "dim": len(names), "estimator": result.estimator,
                  "divergence": divergence.spec}
        echo_json(envelope("compare", inputs, records, **sections))
    else:
        click.echo(f"A = {a_file}\nB = {b_file}")
        click.echo(f"columns: {', '.join(names)}\n")
        if kl_only:
            click.echo(str(result))
        else:
            _print_divergence(records, divergence, confidence, result)
        if mixtures is not None:
            click.echo("\n" + mixture_table(mixtures))
    for fired in (g for g in (gates or {}).values() if isinstance(g, dict) and g["fired"]):
        note(f"drift gate: {fired['message']}")
    if gates is not None and gates["fired"]:
        ctx.exit(EXIT_GATE)


def _samples(x: np.ndarray, names: list[str], path: Path) -> Samples:
    """The rows as a named data set for the library, named by its file in messages."""
    return Samples(x, tuple(names), NUMPY, str(path))


def _kl_records(result: gaussdiv.Comparison) -> list[dict[str, Any]]:
    out = []
    for e in result.estimates:
        extra: dict[str, Any] = {}
        if e.terms is not None and e.plugin_terms is not None:
            extra = {"terms": terms_dict(e.terms), "plugin_terms": terms_dict(e.plugin_terms)}
        out.append(record(e.name, e.label, e.value, unbiased=e.unbiased, plugin=e.plugin,
                          low=e.low, high=e.high, stderr=e.stderr, **extra))
    return out


def _divergence_records(xa: np.ndarray, xb: np.ndarray, divergence: Divergence, estimator: str,
                        confidence: float) -> list[dict[str, Any]]:
    """The divergence both ways (once when symmetric), jackknife bias-corrected, in the data's
    own units (W₂ depends on them), shrinkage in pooled-deviation units."""
    directions = [True] if divergence.symmetric else [True, False]
    pooled = np.concatenate([xa, xb]).std(axis=0)
    plugin, value, low, high, stderr = divergence_estimates(
        xa, xb, lambda p, q: divergence.function(p, q, **dict(divergence.options)),
        directions, estimator, pooled, confidence)
    keys = [(divergence.kind, divergence.label("A", "B"))] if divergence.symmetric else \
        [(f"{divergence.kind}_ab", divergence.label("A", "B")),
         (f"{divergence.kind}_ba", divergence.label("B", "A"))]
    return [record(key, label, max(float(value[k]), 0.0), unbiased=float(value[k]),
                   plugin=float(plugin[k]), low=float(low[k]), high=float(high[k]),
                   stderr=float(stderr[k]))
            for k, (key, label) in enumerate(keys)]


def _gates(records: list[dict[str, Any]], divergence: Divergence, gate: str, explicit: bool,
           fail_above: float | None, fail_p: float | None,
           p_value: float | None) -> dict[str, Any] | None:
    """What the gates tested, and whether they fired."""
    if fail_above is None and fail_p is None:
        return None
    out: dict[str, Any] = {"fired": False}
    if fail_above is not None:
        if divergence.kind == "kl":
            chosen = [r for r in records if r["name"] == GATES[gate]]
        elif divergence.symmetric or not explicit:
            chosen = [max(records, key=lambda r: r["value"])]
        else:
            chosen = [records[0 if gate == "ab" else 1]]
        tested = chosen[0]
        fired = tested["value"] > fail_above
        out["fail_above"] = {"tests": tested["name"], "threshold": fail_above,
                             "value": tested["value"], "fired": fired,
                             "message": f"{tested['label']} = {fmt(tested['value'])} "
                                        f"(bias-corrected) exceeds --fail-above {fail_above:g}"}
        out["fired"] |= fired
    if fail_p is not None:
        assert p_value is not None
        fired = p_value < fail_p
        out["fail_p"] = {"threshold": fail_p, "value": p_value, "fired": fired,
                         "message": f"p-value {fmt(p_value, 3)} is below --fail-p {fail_p:g}"}
        out["fired"] |= fired
    return out


def _print_divergence(records: list[dict[str, Any]], divergence: Divergence, confidence: float,
                      result: gaussdiv.Comparison) -> None:
    click.echo(divergence.describe("A", "B") + f"   (estimator: {result.estimator})\n")
    level = f"{100 * confidence:g}% interval"
    rows = [[r["label"], r["value"], f"[{fmt(r['low'], 4)}, {fmt(r['high'], 4)}]", r["plugin"]]
            for r in records]
    click.echo(table(rows, header=["", "value", level, "plug-in"], digits=4))
    click.echo("(jackknife bias correction and normal interval)")
    if result.p_value is not None:
        click.echo(f"\np-value (A and B from one distribution; {result.permutations} "
                   f"permutations of Jeffreys): {fmt(result.p_value, 3)}")
    click.echo("\ncolumns, by how much Jeffreys falls without them:")
    for c in result.columns[:TOP_COLUMNS]:
        click.echo(f"  {c.name}  drop {fmt(c.drop, 4)}   alone {fmt(c.marginal, 4)}")

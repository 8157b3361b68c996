"""``gaussdiv compare A B``: fit a Gaussian to each of two sample files and compare them.

By default the report is KL(A‖B), KL(B‖A) (with their terms) and the Jeffreys sum; with
``--divergence`` it is that divergence both ways, or once when it is symmetric. The bootstrap
intervals and the drift gate are of whatever is reported.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click
import numpy as np

import gaussdiv
from gaussdiv.cli import fitting
from gaussdiv.cli.bootstrap import Interval, bootstrap_interval
from gaussdiv.cli.common import (
    EXIT_GATE,
    UserError,
    echo_json,
    fmt,
    json_option,
    kl_terms_dict,
    note,
    table,
    terms_table,
)
from gaussdiv.cli.divergences import Divergence, divergence_option
from gaussdiv.cli.mixtures import mixture_option, mixture_report, mixture_table
from gaussdiv.cli.samples import numeric_matrix, parse_columns, read_table, select_columns

#: --gate → index into the KL report (KL(A‖B), KL(B‖A), Jeffreys).
GATES = {"jeffreys": 2, "kl-ab": 0, "kl-ba": 1, "ab": 0, "ba": 1}
NAMES = ("KL(A‖B)", "KL(B‖A)", "Jeffreys")
#: A reported value: JSON key, label, value.
Row = tuple[str, str, float]


def shared_columns(a: Any, b: Any, requested: list[str] | None) -> list[str]:
    """The columns to fit: those requested (in both files), else A's, which B must match."""
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


def report(divergence: Divergence, pa: gaussdiv.Gaussian, pb: gaussdiv.Gaussian) -> list[Row]:
    """What compare reports, by the library: for KL, KL(A‖B), KL(B‖A) and Jeffreys; for
    another divergence, it both ways (once when symmetric)."""
    if divergence.kind != "kl":
        return divergence.both_ways(pa, pb, "A", "B")
    ab, ba = float(gaussdiv.kl(pa, pb)), float(gaussdiv.kl(pb, pa))
    return [(key, name, v) for key, name, v in
            zip(("kl_ab", "kl_ba", "jeffreys"), NAMES, (ab, ba, ab + ba), strict=True)]


def gate_index(divergence: Divergence, gate: str, explicit: bool) -> int | None:
    """Which reported value --fail-above tests (None: the larger of the two directions)."""
    if divergence.kind == "kl":
        return GATES[gate]
    if not explicit or gate == divergence.kind:
        return 0 if divergence.symmetric else None
    if divergence.symmetric:
        raise UserError(f"--gate {gate}: {divergence.spec} is symmetric, so --fail-above tests "
                        "its one value; leave out --gate")
    if gate not in ("ab", "ba"):
        raise UserError(f"--gate {gate}: is for --divergence kl; with {divergence.spec} use "
                        "--gate ab or ba (default: the larger of the two directions)")
    return GATES[gate]


@click.command("compare",
               short_help="Fit and compare two sample files (bootstrap CIs, drift gate).")
@click.argument("a_file", metavar="A", type=click.Path(path_type=Path))
@click.argument("b_file", metavar="B", type=click.Path(path_type=Path))
@click.option("--columns", "-c", multiple=True, metavar="NAMES",
              help="Columns to use, comma-separated (repeatable). Default: all columns, "
                   "which must be the same in A and B.")
@fitting.estimator_option
@fitting.standardize_option
@click.option("--strict", is_flag=True, help="Reject rows with missing values instead of "
                                             "dropping them.")
@click.option("--bootstrap", "n_boot", type=click.IntRange(min=0), default=1000,
              show_default=True, help="Bootstrap resamples for the intervals (0: none).")
@click.option("--confidence", type=click.FloatRange(0, 1, min_open=True, max_open=True),
              default=0.95, show_default=True, help="Confidence level of the intervals.")
@click.option("--seed", type=int, default=0, show_default=True, help="Bootstrap seed.")
@click.option("--progress/--no-progress", default=True, show_default=True,
              help="Progress bar on stderr while bootstrapping (only on a terminal).")
@click.option("--fail-above", type=float, default=None, metavar="X",
              help="Drift gate: exit with status 1 when the --gate value exceeds X.")
@click.option("--gate", type=click.Choice(list(GATES)), default="jeffreys", show_default=True,
              help="Which value --fail-above tests. KL: jeffreys, kl-ab or kl-ba (ab, ba). "
                   "Another --divergence: its value when symmetric; else ab or ba, by "
                   "default the larger of the two directions.")
@divergence_option("Divergence to report, with its intervals: kl gives KL(A‖B), KL(B‖A), "
                   "their terms and the Jeffreys sum; any other gives it both ways, or once "
                   "when it is symmetric.")
@mixture_option
@json_option
@click.pass_context
def compare_command(ctx: click.Context, a_file: Path, b_file: Path, columns: tuple[str, ...],
                    estimator: str, standardize: bool, strict: bool, n_boot: int,
                    confidence: float, seed: int, progress: bool, fail_above: float | None,
                    gate: str, divergence: Divergence, components: int | None,
                    as_json: bool) -> None:
    """Fit a Gaussian to the samples in A and in B; report KL(A‖B), KL(B‖A), their sum
    (Jeffreys divergence), the three terms of each, and bootstrap confidence intervals —
    or, with --divergence, that divergence and its intervals.

    A and B are CSV files with a header row, .npy arrays (columns named 0, 1, ...) or
    Parquet files (needs pandas). Rows with missing values are reported and dropped.

    \b
    Examples:
      gaussdiv compare ref.csv new.csv --fail-above 0.1
      gaussdiv compare ref.csv new.csv --divergence hellinger --bootstrap 200 --json
      gaussdiv compare ref.csv new.csv --mixture 3

    Exit status: 0 ok, 1 the --fail-above gate was exceeded, 2 bad input.
    """
    explicit = ctx.get_parameter_source("gate") is not click.core.ParameterSource.DEFAULT
    tested = gate_index(divergence, gate, explicit)
    a, b = read_table(a_file), read_table(b_file)
    names = shared_columns(a, b, parse_columns(columns))
    (xa, _), (xb, _) = numeric_matrix(a, names, strict), numeric_matrix(b, names, strict)
    if standardize:
        xa, xb = fitting.standardize(xa, xb)
    fa = fitting.fit(xa, estimator, str(a_file), names)
    fb = fitting.fit(xb, estimator, str(b_file), names)
    for path, f in ((a_file, fa), (b_file, fb)):
        if estimator == "auto" and f.estimator != "mle":
            note(f"{path}: {f.n} rows for {len(names)} dimensions (< {fitting.AUTO_ROWS_PER_DIM}"
                 f" per dimension); using {f.estimator} shrinkage")
    rows = report(divergence, fa.gaussian, fb.gaussian)
    terms = None
    if divergence.kind == "kl":
        terms = gaussdiv.kl_terms(fa.gaussian, fb.gaussian), gaussdiv.kl_terms(fb.gaussian,
                                                                               fa.gaussian)
    values = np.array([v for _, _, v in rows], dtype=np.float64)
    interval = _interval(xa, xb, fa.estimator, fb.estimator, divergence, len(rows), n_boot,
                         confidence, seed, progress)
    if tested is None:
        gate_key = f"max({', '.join(key for key, _, _ in rows)})"
        gate_label = f"max({', '.join(label for _, label, _ in rows)})"
        gate_value = float(max(values))
    else:
        gate_key = gate if divergence.kind == "kl" else rows[tested][0]
        gate_label, gate_value = rows[tested][1], float(values[tested])
    exceeded = fail_above is not None and gate_value > fail_above
    mixtures = None if components is None else \
        mixture_report(xa, xb, components, seed, (str(a_file), str(b_file)))
    if as_json:
        payload = _payload(a_file, b_file, fa, fb, names, divergence, rows, terms, interval,
                           None if fail_above is None else {
                               "divergence": gate_key, "threshold": fail_above,
                               "value": gate_value, "exceeded": exceeded})
        echo_json(payload if mixtures is None else {**payload, "mixture": mixtures})
    else:
        _print(a_file, b_file, fa, fb, names, divergence, rows, terms, interval)
        if mixtures is not None:
            click.echo("\n" + mixture_table(mixtures))
    if exceeded:
        note(f"drift gate: {gate_label} = {fmt(gate_value)} exceeds --fail-above "
             f"{fail_above:g}")
        ctx.exit(EXIT_GATE)


def _interval(xa: np.ndarray, xb: np.ndarray, est_a: str, est_b: str, divergence: Divergence,
              n_values: int, n_boot: int, confidence: float, seed: int,
              progress: bool) -> Interval | None:
    if n_boot == 0:
        return None

    def statistic(ra: np.ndarray, rb: np.ndarray) -> np.ndarray:
        try:
            rows = report(divergence, gaussdiv.Gaussian(*fitting.estimate(ra, est_a)),
                          gaussdiv.Gaussian(*fitting.estimate(rb, est_b)))
        except gaussdiv.GaussianError:
            return np.full(n_values, np.nan)
        return np.array([v for _, _, v in rows])

    interval = bootstrap_interval(xa, xb, statistic, n_boot, confidence, seed, progress)
    if np.isnan(interval.low).any():
        note("bootstrap: some resamples have a singular covariance, so no interval is given; "
             "use shrinkage (--estimator oas) or more rows")
    return interval


def _payload(a_file: Path, b_file: Path, fa: fitting.Fit, fb: fitting.Fit, names: list[str],
             divergence: Divergence, rows: list[Row], terms: tuple[Any, Any] | None,
             interval: Interval | None, gate: dict[str, Any] | None) -> dict[str, Any]:
    results: dict[str, Any] = {key: {"value": v} for key, _, v in rows}
    chosen: dict[str, Any] = {"divergence": divergence.spec,
                              "definition": divergence.describe("A", "B")}
    if terms is not None:  # KL: keys and layout as before --divergence existed
        results.update(kl_ab=kl_terms_dict(terms[0]), kl_ba=kl_terms_dict(terms[1]))
        chosen = {}
    if interval is not None:
        for k, (key, _, _) in enumerate(rows):
            results[key]["ci"] = [interval.low[k], interval.high[k]]
            results[key]["bootstrap_stderr"] = interval.stderr[k]
    return {
        "a": {"path": a_file, "rows": fa.n, "estimator": fa.estimator},
        "b": {"path": b_file, "rows": fb.n, "estimator": fb.estimator},
        "columns": names, "dim": len(names), **chosen, **results,
        "bootstrap": None if interval is None else {
            "resamples": interval.n_resamples, "confidence": interval.confidence,
            "seed": interval.seed, "method": "percentile"},
        "gate": gate,
    }


def _print(a_file: Path, b_file: Path, fa: fitting.Fit, fb: fitting.Fit, names: list[str],
           divergence: Divergence, rows: list[Row], terms: tuple[Any, Any] | None,
           interval: Interval | None) -> None:
    click.echo(f"A: {a_file}  ({fa.n} rows, {fa.estimator})")
    click.echo(f"B: {b_file}  ({fb.n} rows, {fb.estimator})")
    click.echo(f"columns: {', '.join(names)}  (d = {len(names)})\n")
    if terms is not None:
        click.echo(terms_table({"KL(A‖B)": terms[0], "KL(B‖A)": terms[1]}))
    else:
        click.echo(divergence.describe("A", "B"))
    click.echo("")
    if interval is None:
        click.echo(table([[label, v] for _, label, v in rows], header=["divergence", "value"]))
        return
    level = f"{100 * interval.confidence:g}% interval"
    cells = [[label, v, f"[{fmt(lo, 4)}, {fmt(hi, 4)}]"]
             for (_, label, v), lo, hi in zip(rows, interval.low, interval.high, strict=True)]
    click.echo(table(cells, header=["divergence", "value", level]))
    click.echo(f"(bootstrap: {interval.n_resamples} resamples of the rows of A and of B, "
               f"percentile intervals, seed {interval.seed})")

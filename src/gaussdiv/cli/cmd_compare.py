"""``gaussdiv compare A B``: fit a Gaussian to each of two sample files and compare them."""

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
from gaussdiv.cli.samples import numeric_matrix, parse_columns, read_table, select_columns

GATES = {"jeffreys": 2, "kl-ab": 0, "kl-ba": 1}
NAMES = ("KL(A‖B)", "KL(B‖A)", "Jeffreys")


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


def divergences(pa: gaussdiv.Gaussian, pb: gaussdiv.Gaussian) -> np.ndarray:
    """[KL(A‖B), KL(B‖A), Jeffreys] by the library."""
    ab, ba = float(gaussdiv.kl(pa, pb)), float(gaussdiv.kl(pb, pa))
    return np.array([ab, ba, ab + ba])


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
              help="Drift gate: exit with status 1 when the --gate divergence exceeds X.")
@click.option("--gate", type=click.Choice(list(GATES)), default="jeffreys", show_default=True,
              help="Which divergence --fail-above tests.")
@json_option
@click.pass_context
def compare_command(ctx: click.Context, a_file: Path, b_file: Path, columns: tuple[str, ...],
                    estimator: str, standardize: bool, strict: bool, n_boot: int,
                    confidence: float, seed: int, progress: bool, fail_above: float | None,
                    gate: str, as_json: bool) -> None:
    """Fit a Gaussian to the samples in A and in B; report KL(A‖B), KL(B‖A), their sum
    (Jeffreys divergence), the three terms of each, and bootstrap confidence intervals.

    A and B are CSV files with a header row, .npy arrays (columns named 0, 1, ...) or
    Parquet files (needs pandas). Rows with missing values are reported and dropped.

    Exit status: 0 ok, 1 the --fail-above gate was exceeded, 2 bad input.
    """
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
    ab, ba = gaussdiv.kl_terms(fa.gaussian, fb.gaussian), gaussdiv.kl_terms(fb.gaussian,
                                                                            fa.gaussian)
    values = np.array([ab.kl, ba.kl, ab.kl + ba.kl], dtype=np.float64)
    interval = _interval(xa, xb, fa.estimator, fb.estimator, n_boot, confidence, seed, progress)
    exceeded = fail_above is not None and bool(values[GATES[gate]] > fail_above)
    if as_json:
        echo_json(_payload(a_file, b_file, fa, fb, names, ab, ba, values, interval, fail_above,
                           gate, exceeded))
    else:
        _print(a_file, b_file, fa, fb, names, ab, ba, values, interval)
    if exceeded:
        note(f"drift gate: {NAMES[GATES[gate]]} = {fmt(values[GATES[gate]])} exceeds "
             f"--fail-above {fail_above:g}")
        ctx.exit(EXIT_GATE)


def _interval(xa: np.ndarray, xb: np.ndarray, est_a: str, est_b: str, n_boot: int,
              confidence: float, seed: int, progress: bool) -> Interval | None:
    if n_boot == 0:
        return None

    def statistic(ra: np.ndarray, rb: np.ndarray) -> np.ndarray:
        try:
            return divergences(gaussdiv.Gaussian(*fitting.estimate(ra, est_a)),
                               gaussdiv.Gaussian(*fitting.estimate(rb, est_b)))
        except gaussdiv.GaussianError:
            return np.full(3, np.nan)

    interval = bootstrap_interval(xa, xb, statistic, n_boot, confidence, seed, progress)
    if np.isnan(interval.low).any():
        note("bootstrap: some resamples have a singular covariance, so no interval is given; "
             "use shrinkage (--estimator oas) or more rows")
    return interval


def _payload(a_file: Path, b_file: Path, fa: fitting.Fit, fb: fitting.Fit, names: list[str],
             ab: Any, ba: Any, values: np.ndarray, interval: Interval | None,
             fail_above: float | None, gate: str, exceeded: bool) -> dict[str, Any]:
    results: dict[str, Any] = {"kl_ab": kl_terms_dict(ab), "kl_ba": kl_terms_dict(ba),
                               "jeffreys": {"value": values[2]}}
    if interval is not None:
        for k, key in enumerate(("kl_ab", "kl_ba", "jeffreys")):
            results[key]["ci"] = [interval.low[k], interval.high[k]]
            results[key]["bootstrap_stderr"] = interval.stderr[k]
    return {
        "a": {"path": a_file, "rows": fa.n, "estimator": fa.estimator},
        "b": {"path": b_file, "rows": fb.n, "estimator": fb.estimator},
        "columns": names, "dim": len(names), **results,
        "bootstrap": None if interval is None else {
            "resamples": interval.n_resamples, "confidence": interval.confidence,
            "seed": interval.seed, "method": "percentile"},
        "gate": None if fail_above is None else {
            "divergence": gate, "threshold": fail_above, "value": values[GATES[gate]],
            "exceeded": exceeded},
    }


def _print(a_file: Path, b_file: Path, fa: fitting.Fit, fb: fitting.Fit, names: list[str],
           ab: Any, ba: Any, values: np.ndarray, interval: Interval | None) -> None:
    click.echo(f"A: {a_file}  ({fa.n} rows, {fa.estimator})")
    click.echo(f"B: {b_file}  ({fb.n} rows, {fb.estimator})")
    click.echo(f"columns: {', '.join(names)}  (d = {len(names)})\n")
    click.echo(terms_table({"KL(A‖B)": ab, "KL(B‖A)": ba}))
    click.echo("")
    if interval is None:
        click.echo(table([[n, v] for n, v in zip(NAMES, values, strict=True)],
                         header=["divergence", "value"]))
        return
    level = f"{100 * interval.confidence:g}% interval"
    rows = [[n, v, f"[{fmt(lo, 4)}, {fmt(hi, 4)}]"]
            for n, v, lo, hi in zip(NAMES, values, interval.low, interval.high, strict=True)]
    click.echo(table(rows, header=["divergence", "value", level]))
    click.echo(f"(bootstrap: {interval.n_resamples} resamples of the rows of A and of B, "
               f"percentile intervals, seed {interval.seed})")

"""``gaussdiv demo``: class-conditional Gaussians on a data set that ships with scikit-learn,
their pairwise KL table and heatmap, and the derivation checked on two of them.

Nothing is downloaded. Results go to an output folder the demo owns (marked by a
``.gaussdiv-demo`` file), so running it again replaces its own earlier results and nothing
else.
"""

from __future__ import annotations

import csv
import io
import time
from pathlib import Path

import click
import numpy as np

from gaussdiv.cli import fitting
from gaussdiv.cli.cmd_derive import steps_records, steps_table
from gaussdiv.cli.cmd_pairwise import divergence_matrix, matrix_csv, matrix_records, matrix_table
from gaussdiv.cli.common import (
    UserError,
    echo_json,
    envelope,
    json_option,
    seed_option,
    write_files,
)
from gaussdiv.cli.divergences import parse_divergence
from gaussdiv.cli.plot import heatmap
from gaussdiv.cli.walkthrough import MAX_VALUES, Z_LIMIT, check_draws, derive

MARKER = ".gaussdiv-demo"
MARKER_TEXT = "Output folder of `gaussdiv demo`; it replaces its own files here when run again.\n"
DATASETS = ("wine", "digits")


def load_dataset(name: str) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """(features, class labels as text, feature names) of a scikit-learn bundled data set."""
    from sklearn.datasets import load_digits, load_wine

    bunch = {"wine": load_wine, "digits": load_digits}[name]()
    names = [str(n) for n in bunch.target_names]
    return bunch.data, np.array([names[t] for t in bunch.target]), list(bunch.feature_names)


def check_folder(out: Path, force: bool) -> None:
    """Refuse an --out that is not a folder, or a non-empty folder the demo does not own
    (unless ``force``)."""
    if out.exists() and not out.is_dir():
        raise UserError(f"{out}: exists and is not a folder; choose another --out")
    if out.is_dir() and any(out.iterdir()) and not (out / MARKER).exists() and not force:
        raise UserError(f"{out}: folder has other files and was not made by gaussdiv demo; "
                        "choose another --out or pass --force")


def write_folder(out: Path, files: dict[Path, str | bytes]) -> None:
    """Create the demo's folder and write its marker and ``files`` into it, all or none (see
    :func:`~gaussdiv.cli.common.write_files`); a folder made here is removed again when the
    files cannot be written."""
    made = not out.exists()
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UserError(f"{out}: cannot create the output folder ({exc.strerror or exc})") from None
    try:
        write_files({out / MARKER: MARKER_TEXT, **files})
    except UserError:
        if made:
            out.rmdir()
        raise


def data_csv(x: np.ndarray, labels: np.ndarray, features: list[str]) -> str:
    """The data set as CSV with a ``class`` column, for trying the other subcommands on."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow([*features, "class"])
    for row, label in zip(x, labels, strict=True):
        writer.writerow([*(repr(float(v)) for v in row), label])
    return out.getvalue()


@click.command("demo", short_help="Class-conditional Gaussians on scikit-learn's wine data.")
@click.option("--out", type=click.Path(path_type=Path), default=Path("gaussdiv-demo"),
              show_default=True, help="Folder for the demo's files (its own; re-runs replace "
                                      "them).")
@click.option("--dataset", type=click.Choice(DATASETS), default="wine", show_default=True,
              help="Data set bundled with scikit-learn.")
@fitting.estimator_option()
@click.option("--samples", "-n", type=click.IntRange(min=2), default=100_000, show_default=True,
              help=f"Monte Carlo draws for the derivation check (at most "
                   f"{MAX_VALUES:.0e} / (d + 1)).")
@seed_option("Sampling seed.")
@click.option("--force", is_flag=True,
              help="Write into an --out folder that has other files in it.")
@json_option
def demo_command(out: Path, dataset: str, estimator: str, samples: int, seed: int,
                 force: bool, as_json: bool) -> None:
    """Fit a Gaussian to each class of a scikit-learn data set (wine or digits, no download),
    print the pairwise KL table, write its heatmap, and check the derivation of KL on the two
    closest classes. Finishes in seconds."""
    start = time.perf_counter()
    say = (lambda text: None) if as_json else click.echo
    check_folder(out, force)
    x, labels, features = load_dataset(dataset)
    check_draws(samples, x.shape[1])
    fits = fitting.fit_groups(x, labels, estimator, dataset, features)
    groups = list(fits)
    used = next(iter(fits.values())).estimator
    why = (f" (auto: fewer than {fitting.AUTO_ROWS_PER_DIM} rows per dimension in the "
           "smallest class)" if estimator == "auto" and used != "mle" else "")
    say(f"{dataset}: {len(x)} rows, {len(features)} features, {len(groups)} classes; one "
        f"Gaussian per class, fitted by {used}{why}\n")
    kl = parse_divergence("kl")
    matrix = divergence_matrix([f.gaussian for f in fits.values()], kl)
    say(matrix_table(matrix, groups, kl))

    jeffreys = matrix + matrix.T
    np.fill_diagonal(jeffreys, np.inf)
    i, j = np.unravel_index(np.argmin(jeffreys), jeffreys.shape)
    say(f"\nThe derivation checked on the two closest classes, P = {groups[i]}, "
        f"Q = {groups[j]}:\nclosed forms of eqs. (13) = d, (18), (19) = 0, (20), (11), "
        f"H_p(q), H_p(p) and KL = H_p(q) − H_p(p)\nbeside Monte Carlo means over "
        f"{samples} draws X ∼ P (seed {seed})\n")
    steps = derive(fits[groups[i]].gaussian, fits[groups[j]].gaussian, samples, seed)

    files = {"data": out / f"{dataset}.csv", "matrix": out / "kl_matrix.csv",
             "heatmap": out / "heatmap.png"}
    write_folder(out, {
        files["data"]: data_csv(x, labels, features),
        files["matrix"]: matrix_csv(matrix, groups),
        files["heatmap"]: heatmap(matrix, groups, f"KL(P‖Q) between the classes of {dataset}",
                                  "KL divergence (nats)", row_label="P (class)",
                                  col_label="Q (class)")})
    if as_json:
        inputs = {"dataset": dataset, "rows": len(x), "features": features,
                  "estimator": used, "samples": samples, "seed": seed, "out": out,
                  "groups": [{"name": g, "rows": f.n} for g, f in fits.items()]}
        echo_json(envelope("demo", inputs, matrix_records(matrix, groups, kl),
                           matrix={"groups": groups, "values": matrix},
                           derive={"p": groups[i], "q": groups[j],
                                   "steps": steps_records(steps)},
                           files=files))
        return
    click.echo(steps_table(steps))
    held = sum(s.holds for s in steps if s.mc is not None)
    click.echo(f"{held} of {sum(s.mc is not None for s in steps)} agree within {Z_LIMIT:g} "
               "standard errors; `gaussdiv derive` walks through each step.")

    click.echo(f"\nFiles in {out}/:")
    click.echo(f"  {files['heatmap'].name:<16} heatmap of the KL table")
    click.echo(f"  {files['matrix'].name:<16} the KL table as CSV (row P, column Q)")
    click.echo(f"  {files['data'].name:<16} the data, to try: gaussdiv pairwise "
               f"{files['data']} --by class")
    click.echo(f"\nDone in {time.perf_counter() - start:.1f} s.")

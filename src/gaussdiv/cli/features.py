"""Reading feature files for ``gaussdiv frechet``: an (n × d) array of numbers per file, or the
statistics (μ, Σ) already fitted to one.

=================  ===========================================================================
file               holds
=================  ===========================================================================
``.npy``           one 2-D numeric array (``np.save``)
``.npz``           one 2-D numeric array, or several with one named ``features`` (``np.savez``);
                   or statistics: ``mu`` (d,) and ``sigma`` (d, d), pytorch-fid's
                   ``--save-stats`` archive (Σ may be singular: n ≤ d images)
``.csv``/``.tsv``  n lines of d numbers, read by :func:`gaussdiv.cli.samples.read_delimited`;
                   a first line that is not all numbers (or is 0, 1, ..., d−1) is a header
``-``              the same, on standard input (TSV when the first line has tabs, no commas)
=================  ===========================================================================

Every value must be a finite, real number (a missing or non-numeric cell is an error naming its
file, column and line; so is a complex array) of magnitude at most
:data:`~gaussdiv.cli.samples.MAX_MAGNITUDE` (see :func:`~gaussdiv.cli.samples.check_range`); the
array is returned as float64. Every problem is a one-line :class:`~gaussdiv.cli.common.UserError`
naming the file.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from gaussdiv.cli.common import UserError
from gaussdiv.cli.samples import (
    STDIN,
    check_range,
    check_real,
    numeric_matrix,
    read_delimited,
    read_stdin,
)

SUFFIXES = (".npy", ".npz", ".csv", ".tsv")
#: The array of a .npz file holding several.
NPZ_KEY = "features"
#: The arrays of a statistics archive (pytorch-fid's names).
MEAN_KEY, COV_KEY = "mu", "sigma"


@dataclass(frozen=True)
class Statistics:
    """The moments of a feature set, read from a statistics archive: μ (d,) and Σ (d, d)."""

    mean: np.ndarray
    cov: np.ndarray

    @property
    def dim(self) -> int:
        return int(self.mean.shape[0])


def read_features_or_statistics(path: Path) -> np.ndarray | Statistics:
    """What ``path`` holds: the statistics of a ``.npz`` archive with ``mu`` and ``sigma`` (and
    no ``features``), else the feature array of :func:`read_features`."""
    if path != STDIN and path.suffix.lower() == ".npz" and path.is_file():
        statistics = _read_statistics(path)
        if statistics is not None:
            return statistics
    return read_features(path)


def read_features(path: Path) -> np.ndarray:
    """The (n, d) float64 feature array in ``path`` (n ≥ 2, every value finite; ``-``: CSV or
    TSV on standard input)."""
    if path == STDIN:
        table = read_stdin(header=None)
        x, _ = numeric_matrix(table, table.columns, strict=True)
        return _enough_rows(path, x)
    if not path.exists():
        raise UserError(f"{path}: no such file")
    if path.is_dir():
        raise UserError(f"{path}: is a folder, not a feature file")
    suffix = path.suffix.lower()
    if suffix not in SUFFIXES:
        raise UserError(f"{path}: unknown feature file type {suffix!r}; use .npy, .npz, .csv or "
                        ".tsv")
    try:
        if suffix in (".csv", ".tsv"):
            table = read_delimited(path, "\t" if suffix == ".tsv" else ",", header=None)
            if table.n_rows == 0:
                raise UserError(f"{path}: no data rows")
            x, _ = numeric_matrix(table, table.columns, strict=True)
        else:
            x = _checked(path, _read_npy(path) if suffix == ".npy" else _read_npz(path))
    except OSError as exc:
        raise UserError(f"{path}: cannot read ({exc.strerror or exc})") from None
    return _enough_rows(path, x)


def _enough_rows(path: Path, x: np.ndarray) -> np.ndarray:
    if x.shape[0] < 2:
        raise UserError(f"{path}: {x.shape[0]} row(s); at least 2 feature vectors are needed to "
                        "estimate a covariance")
    return x


def _read_npy(path: Path) -> np.ndarray:
    with path.open("rb") as f:
        if f.read(6) != b"\x93NUMPY":
            raise UserError(f"{path}: not a .npy file (no NumPy header; save with np.save)")
    try:
        return np.load(path, allow_pickle=False)
    except ValueError as exc:
        raise UserError(f"{path}: not a readable .npy file ({exc})") from None


def _read_npz(path: Path) -> np.ndarray:
    with path.open("rb") as f:
        if f.read(2) != b"PK":
            raise UserError(f"{path}: not a .npz file (not a zip archive; save with np.savez)")
    try:
        with np.load(path, allow_pickle=False) as npz:
            names = list(npz.files)
            if NPZ_KEY in names:
                return npz[NPZ_KEY]
            if len(names) == 1:
                return npz[names[0]]
    except ValueError as exc:  # a corrupt archive, or one holding pickled objects
        raise UserError(f"{path}: not a readable .npz file ({exc})") from None
    raise UserError(f"{path}: holds {len(names)} arrays ({', '.join(names) or 'none'}); save "
                    f"one, or name the features '{NPZ_KEY}'")


def _read_statistics(path: Path) -> Statistics | None:
    """The (μ, Σ) of a statistics archive, checked for shape and values; None for an archive
    of features (or an unreadable one: :func:`read_features` then says what is wrong)."""
    try:
        with np.load(path, allow_pickle=False) as npz:
            names = set(npz.files)
            if NPZ_KEY in names or not {MEAN_KEY, COV_KEY} <= names:
                return None
            mean, cov = npz[MEAN_KEY], npz[COV_KEY]
    except (OSError, ValueError):
        return None
    for name, array in ((MEAN_KEY, mean), (COV_KEY, cov)):
        check_real(path, array.dtype)
        if not np.isfinite(array.astype(np.float64)).all():
            raise UserError(f"{path}: '{name}' has a non-finite value (NaN or infinity)")
    if mean.ndim != 1 or mean.shape[0] == 0:
        raise UserError(f"{path}: '{MEAN_KEY}' must be a vector of d numbers, got shape "
                        f"{mean.shape}")
    d = mean.shape[0]
    if cov.shape != (d, d):
        raise UserError(f"{path}: '{COV_KEY}' must be the {d} × {d} covariance of the d = {d} "
                        f"features of '{MEAN_KEY}', got shape {cov.shape}")
    # sigma's floating dtype is kept (mu follows it): a float32 sigma is positive semidefinite
    # only to float32's rounding, which is what Gaussian.semidefinite then allows.
    dtype = cov.dtype if cov.dtype.kind == "f" else np.dtype(np.float64)
    return Statistics(mean.astype(dtype), cov.astype(dtype))


def _checked(path: Path, array: np.ndarray) -> np.ndarray:
    """A loaded array as (n, d) float64, or a user error saying what is wrong with it."""
    check_real(path, array.dtype)
    if array.ndim != 2:
        raise UserError(f"{path}: expected a 2-D array (n rows × d features), got shape "
                        f"{array.shape}")
    x = array.astype(np.float64)
    bad = np.flatnonzero(~np.isfinite(x).all(axis=1))
    if bad.size:
        raise UserError(f"{path}: row {bad[0] + 1} has a non-finite value (NaN or infinity)")
    rows = np.arange(1, x.shape[0] + 1)
    for j in range(x.shape[1]):
        check_range(path, f"column '{j}'", x[:, j], rows, "row")
    return x

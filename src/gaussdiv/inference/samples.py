"""Data sets as the fitting functions take them: rows of observations, columns of features.

A data set is an (n, d) NumPy array, PyTorch tensor or JAX array (a 1-D one is n observations
of one feature), a nested list, or a pandas DataFrame / Series, whose column labels become the
feature names. :func:`as_samples` checks it once — a 2-D array of real numbers, every value
finite — and :func:`aligned` puts two of them on the same columns, by name where both have
names, never silently by position.

Every problem is a :class:`~gaussdiv.errors.SampleError` naming the argument and, where there
is one, the row and the column.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from gaussdiv.backends import NUMPY, Backend, backend_of
from gaussdiv.errors import SampleError


@dataclass(frozen=True)
class Samples:
    """One checked data set.

    Attributes:
        values: the (n, d) array as given (NumPy, torch or JAX), or a float64 NumPy array
            for lists and DataFrames.
        names: the d column names, or None when the data had none.
        ops: the backend of ``values``.
        what: the argument's name, for messages.
    """

    values: Any
    names: tuple[str, ...] | None
    ops: Backend
    what: str

    @property
    def n(self) -> int:
        return int(self.values.shape[0])

    @property
    def dim(self) -> int:
        return int(self.values.shape[1])

    def numpy(self) -> np.ndarray:
        """The values as a float64 NumPy array (a copy only where a conversion is needed)."""
        return np.asarray(self.ops.to_numpy(self.values), dtype=np.float64)

    def label(self, j: int) -> str:
        """Column ``j`` for a message: its name, or its position."""
        return f"column {self.names[j]!r}" if self.names is not None else f"column {j}"

    def select(self, columns: Sequence[int]) -> Samples:
        """The data set restricted to (and reordered by) column positions ``columns``."""
        index = list(columns)
        if index == list(range(self.dim)):
            return self
        picked = self.values[:, self.ops.index_array(np.asarray(index), self.values)]
        names = None if self.names is None else tuple(self.names[j] for j in index)
        return Samples(picked, names, self.ops, self.what)


def as_samples(data: Any, what: str) -> Samples:
    """``data`` as checked :class:`Samples`; ``what`` names it in messages (Samples are
    taken as they are)."""
    if isinstance(data, Samples):
        return data
    if _is_frame(data):
        return _from_frame(data, what)
    if hasattr(data, "shape") and hasattr(data, "dtype"):
        ops = backend_of(data)
        values = data
    else:
        try:
            values = np.asarray(data)
        except ValueError:
            raise SampleError(f"{what}: rows of different lengths; give an (n, d) array") from None
        ops = NUMPY
    kind = ops.numpy_dtype(values).kind
    if kind not in "fiu":
        raise SampleError(f"{what}: values of dtype {values.dtype}; expected real numbers")
    if values.ndim == 1:
        values = values[:, None]
    if values.ndim != 2:
        raise SampleError(f"{what}: expected an (n, d) array of n rows (observations) of d "
                          f"columns (features), got shape {tuple(values.shape)}")
    if kind != "f":
        values = ops.asarray(values, np.dtype(np.float64), like=values)
    samples = Samples(values, None, ops, what)
    _check_finite(samples)
    return samples


def _is_frame(data: Any) -> bool:
    module = type(data).__module__.split(".")[0]
    return module == "pandas" and hasattr(data, "to_numpy")


def _from_frame(frame: Any, what: str) -> Samples:
    if frame.ndim == 1:  # a Series: one column, named by the series
        frame = frame.to_frame(name=str(frame.name) if frame.name is not None else "0")
    names = tuple(str(c) for c in frame.columns)
    if len(set(names)) != len(names):
        repeated = next(n for n in names if names.count(n) > 1)
        raise SampleError(f"{what}: column {repeated!r} appears twice")
    for name, column in zip(names, frame.columns, strict=True):
        kind = frame[column].dtype.kind
        if kind not in "fiub":
            raise SampleError(f"{what}: column {name!r} is not numeric (dtype "
                              f"{frame[column].dtype}); select numeric columns with columns=")
    samples = Samples(frame.to_numpy(dtype=np.float64, na_value=np.nan), names, NUMPY, what)
    _check_finite(samples)
    return samples


def _check_finite(samples: Samples) -> None:
    values = samples.numpy() if samples.ops is not NUMPY else samples.values
    finite = np.isfinite(values)
    if finite.all():
        return
    row, col = (int(k) for k in np.argwhere(~finite)[0])
    kind = "missing (NaN)" if np.isnan(values[row, col]) else "infinite"
    count = int((~finite).sum())
    raise SampleError(f"{samples.what}: row {row}, {samples.label(col)} is {kind} ({count} "
                      "non-finite value(s) in all); drop or impute them first")


def aligned(a: Samples, b: Samples, columns: Sequence[str | int] | None
            ) -> tuple[Samples, Samples]:
    """``a`` and ``b`` on the same columns in the same order.

    Where both have names, ``b``'s columns are matched to ``a``'s by name (a different set of
    names is an error listing the difference); otherwise the widths must agree, and a named
    side lends its names to the other. ``columns`` then picks columns by name (needs names) or
    by position.
    """
    if a.names is not None and b.names is not None:
        if set(a.names) != set(b.names):
            missing = [c for c in a.names if c not in b.names]
            extra = [c for c in b.names if c not in a.names]
            parts = ([f"lacks {', '.join(map(repr, missing))}"] if missing else []) + (
                [f"has extra {', '.join(map(repr, extra))}"] if extra else [])
            raise SampleError(f"{b.what}: columns do not match {a.what}'s: it "
                              f"{' and '.join(parts)}; pick the shared ones with columns=")
        b = b.select([b.names.index(name) for name in a.names])
    elif a.dim != b.dim:
        raise SampleError(f"{a.what} has {a.dim} columns and {b.what} has {b.dim}; the data "
                          "sets must have the same columns")
    names = a.names if a.names is not None else b.names
    if names is None:  # unnamed columns are named by their positions in the data given
        names = tuple(str(j) for j in range(a.dim))
    a, b = (Samples(s.values, names, s.ops, s.what) for s in (a, b))
    if columns is None:
        return a, b
    index = _positions(columns, names, a.dim)
    return a.select(index), b.select(index)


def _positions(columns: Sequence[str | int], names: tuple[str, ...], d: int) -> list[int]:
    if isinstance(columns, str):
        columns = [columns]
    index = []
    for c in columns:
        if isinstance(c, str):
            if c not in names:
                raise SampleError(f"columns=: no column {c!r} (columns: {', '.join(names)})")
            index.append(names.index(c))
        elif isinstance(c, int | np.integer) and not isinstance(c, bool):
            if not -d <= int(c) < d:
                raise SampleError(f"columns=: position {int(c)} is out of range for {d} "
                                  "columns")
            index.append(int(c) % d)
        else:
            raise SampleError(f"columns=: {c!r} is neither a column name nor a position")
    if not index:
        raise SampleError("columns=: no columns selected")
    if len(set(index)) != len(index):
        raise SampleError("columns=: a column is selected twice")
    return index

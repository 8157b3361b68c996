"""KL(P_i‖Q_j) for a tile of pairs as one matrix product of packed moments, entry by entry
gated on its rounding bound (see :mod:`gaussdiv.matrices.moments` for the features).

An entry is kept when its bound u·(2√K + e_i + e_j)·M_ij — M the product of absolute values,
e the features' extra error from inverting a matrix — is at most :data:`TOLERANCE_UNITS` units
of u relative to the value; the others (P ≈ Q, identical pairs, near means far from the
centre, ill-conditioned inverses, overflow) are left to the exact pair route.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from gaussdiv.matrices.moments import Moments

#: Kept entries are within this many units of u (relative) of the exact KL: 2⁹u ≈ 5.7e-14 in
#: float64, 3.1e-5 in float32.
TOLERANCE_UNITS = 2.0**9


@dataclass(frozen=True)
class ProductTile:
    """One tile (r, c) of the product route.

    Attributes:
        value: ½a_i·b_j (framework array): KL where ``kept``.
        plain: the same values as a NumPy float array, without gradient.
        kept: (r, c) NumPy bool, the entries within tolerance.
    """

    value: Any
    plain: np.ndarray
    kept: np.ndarray
    magnitude: np.ndarray
    units: tuple[float, np.ndarray, np.ndarray]
    u: float

    def error(self, ii: np.ndarray, jj: np.ndarray) -> np.ndarray:
        """A bound on |value − KL| at the entries (ii, jj): u·(2√K + e_i + e_j)·M_ij, inf where
        none holds (the inverses' error taken against M ≥ tr(Λ_j T_ij))."""
        rounding, row_error, col_error = self.units
        with np.errstate(invalid="ignore", over="ignore"):
            bound = self.u * (rounding + row_error[ii] + col_error[jj]) * \
                self.magnitude[ii, jj].astype(np.float64)
        bound[~np.isfinite(bound)] = np.inf
        return bound


def product_tile(ops: Any, rows: Moments, cols: Moments, dtype: np.dtype) -> ProductTile:
    """The product tile of rows (r, K) against columns (c, K)."""
    value = rows.values @ ops.matrix_transpose(cols.values)
    magnitude = ops.to_numpy(rows.magnitudes @ ops.matrix_transpose(cols.magnitudes))
    plain = np.asarray(ops.to_numpy(ops.stop_gradient(value)))
    rounding = 2 * math.sqrt(rows.values.shape[-1])
    row_error, col_error = rows.inverse_error, cols.inverse_error
    finite_rows, finite_cols = np.isfinite(row_error), np.isfinite(col_error)
    worst_col = float(col_error[finite_cols].max()) if finite_cols.any() else 0.0
    with np.errstate(invalid="ignore", over="ignore"):
        # First pass, every entry: the inverses' error taken against M ≥ tr(Λ_j T_ij).
        factor = ((rounding + row_error + worst_col) / TOLERANCE_UNITS).astype(np.float32)
        kept = magnitude * factor[:, None] < plain  # NaN and inf are never kept
    kept[~finite_rows] = False
    kept[:, ~finite_cols] = False
    if worst_col > 0 or row_error[finite_rows].any():
        _recheck(kept, plain, magnitude, rows, cols, rounding, finite_rows, finite_cols)
    return ProductTile(value, plain, kept, magnitude, (rounding, row_error, col_error),
                       float(np.finfo(dtype).eps) / 2)


def _recheck(kept: np.ndarray, plain: np.ndarray, magnitude: np.ndarray, rows: Moments,
             cols: Moments, rounding: float, finite_rows: np.ndarray,
             finite_cols: np.ndarray) -> None:
    """Second pass, the entries the first did not keep (in place): the inverses' error taken
    against tr(Λ_j T_ij) = 2 KL + offsets itself, which is often far below M."""
    ii, jj = np.nonzero(~kept & finite_rows[:, None] & finite_cols[None, :])
    if not ii.size:
        return
    value = plain[ii, jj]
    with np.errstate(invalid="ignore", over="ignore"):
        trace = np.maximum(2 * value + rows.trace_offset[ii] + cols.trace_offset[jj], 0)
        bound = rounding * magnitude[ii, jj] + \
            (rows.inverse_error[ii] + cols.inverse_error[jj]) * trace
        kept[ii, jj] = bound < TOLERANCE_UNITS * value

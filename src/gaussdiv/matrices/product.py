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
        scaled: (r, c) float32, the magnitudes M_ij·(2√K + e_i)(2√K + e_j)/(2√K·2⁹) ≥
            M_ij·(2√K + e_i + e_j)/2⁹: an entry is kept where its value exceeds this.
        u: the unit roundoff of the values' dtype.
    """

    value: Any
    plain: np.ndarray
    kept: np.ndarray
    scaled: np.ndarray
    u: float

    def error(self, ii: np.ndarray, jj: np.ndarray) -> np.ndarray:
        """A bound on |value − KL| at the entries (ii, jj) (inf where none holds)."""
        with np.errstate(invalid="ignore", over="ignore"):
            bound = self.u * TOLERANCE_UNITS * self.scaled[ii, jj].astype(np.float64)
        bound[~np.isfinite(bound)] = np.inf
        return bound


def product_tile(ops: Any, rows: Moments, cols: Moments, dtype: np.dtype,
                 out: np.ndarray | None = None) -> ProductTile:
    """The product tile of rows (r, K) against columns (c, K), written into ``out`` (a
    C-contiguous NumPy (r, c) block of the result) when given.

    The bound's weights go into the magnitude product itself (rows scaled by 2√K + e_i,
    columns by (2√K + e_j)/(2√K·2⁹)), so keeping an entry is one comparison.
    """
    if out is not None:
        value = np.matmul(rows.values, cols.values.T, out=out)
    else:
        value = rows.values @ ops.matrix_transpose(cols.values)
    plain = np.asarray(ops.to_numpy(ops.stop_gradient(value)))
    rounding = 2 * math.sqrt(rows.values.shape[-1])
    row_weight = _weight(ops, rounding + rows.inverse_error, rows.magnitudes)
    col_weight = _weight(ops, (rounding + cols.inverse_error) / (rounding * TOLERANCE_UNITS),
                         cols.magnitudes)
    with np.errstate(invalid="ignore", over="ignore"):
        scaled = ops.to_numpy((rows.magnitudes * row_weight[:, None])
                              @ ops.matrix_transpose(cols.magnitudes * col_weight[:, None]))
        kept = scaled < plain  # NaN (an untrusted inverse, overflow) and inf are never kept
    inverted = rows.inverse_error.any() or cols.inverse_error.any()
    if inverted and not kept.all():
        _recheck(kept, plain, scaled, rows, cols, rounding)
    return ProductTile(value, plain, kept, scaled, float(np.finfo(dtype).eps) / 2)


def unkept(kept: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(rows, cols) of the entries not kept: a row reduction first, then an index scan of just
    the rows that have any (4M-entry scans cost ≈ 16 ms; usually there are a handful)."""
    rows = np.flatnonzero(~kept.all(1))
    ii, jj = np.nonzero(~kept[rows])
    return rows[ii], jj


def _weight(ops: Any, weight: np.ndarray, like: Any) -> Any:
    return ops.asarray(weight.astype(np.float32), np.dtype(np.float32), like=like)


def _recheck(kept: np.ndarray, plain: np.ndarray, scaled: np.ndarray, rows: Moments,
             cols: Moments, rounding: float) -> None:
    """Second pass, the entries the first did not keep (in place): the inverses' error taken
    against tr(Λ_j T_ij) = 2 KL + offsets itself, which is often far below M."""
    ii, jj = unkept(kept)
    row_error, col_error = rows.inverse_error[ii], cols.inverse_error[jj]
    trusted = np.isfinite(row_error) & np.isfinite(col_error)
    ii, jj, row_error, col_error = ii[trusted], jj[trusted], row_error[trusted], \
        col_error[trusted]
    if not ii.size:
        return
    value = plain[ii, jj]
    with np.errstate(invalid="ignore", over="ignore"):
        magnitude = scaled[ii, jj].astype(np.float64) * (rounding * TOLERANCE_UNITS) / \
            ((rounding + row_error) * (rounding + col_error))
        trace = np.maximum(2 * value + rows.trace_offset[ii] + cols.trace_offset[jj], 0)
        bound = rounding * magnitude + (row_error + col_error) * trace
        kept[ii, jj] = bound < TOLERANCE_UNITS * value

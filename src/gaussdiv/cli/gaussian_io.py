"""Reading a Gaussian from a file: JSON or .npz, in any parameterisation the library takes.

A file holds ``mean`` and the arrays of exactly one layout; the keys pick the public
constructor, so the file says what the numbers are:

=================================  =========================================================
keys besides ``mean``              built with
=================================  =========================================================
``cov``                            ``Gaussian(mean, cov)``
``precision``                      ``Gaussian.from_precision(mean, precision)``
``scale_tril``                     ``Gaussian.from_scale_tril(mean, scale_tril)``
``precision_tril``                 ``Gaussian.from_precision_tril(mean, precision_tril)``
``var`` (a vector)                 ``Gaussian.diag(mean, var=var)``
``var`` (a number)                 ``Gaussian.isotropic(mean, var)``
``std`` / ``logvar``               ``Gaussian.diag(mean, std=...)`` / ``(mean, logvar=...)``
``factor`` and ``var``             ``Gaussian.lowrank(mean, factor, var)``  (Σ = F Fᵀ + diag)
``a`` and ``b``                    ``Gaussian.kronecker(mean, a, b)``  (Σ = A ⊗ B)
=================================  =========================================================

JSON example: ``{"mean": [0, 1], "cov": [[2, 0.5], [0.5, 1]]}``; a .npz file (``np.savez``)
holds the same names as arrays. In one dimension scalars do: ``{"mean": 0, "var": 2}``.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from gaussdiv import Gaussian, GaussianError
from gaussdiv.cli.common import UserError
from gaussdiv.cli.samples import check_real

Builder = Callable[[dict[str, Any]], Gaussian]


def _public(name: str) -> Callable[..., Gaussian]:
    """The public constructor ``Gaussian.<name>``; a user error if this version lacks it."""
    constructor = getattr(Gaussian, name, None)
    if constructor is None:
        raise LookupError(name)
    return constructor


def _var(arrays: dict[str, Any]) -> Gaussian:
    if np.ndim(arrays["var"]) == 0:
        return _public("isotropic")(arrays["mean"], arrays["var"])
    return _public("diag")(arrays["mean"], var=arrays["var"])


#: Key sets (besides ``mean``) → how to build the Gaussian. Order only matters for help text.
LAYOUTS: dict[frozenset[str], tuple[str, Builder]] = {
    frozenset({"cov"}): ("Gaussian", lambda a: Gaussian(a["mean"], a["cov"])),
    frozenset({"precision"}): (
        "Gaussian.from_precision", lambda a: Gaussian.from_precision(a["mean"], a["precision"])),
    frozenset({"scale_tril"}): (
        "Gaussian.from_scale_tril", lambda a: Gaussian.from_scale_tril(a["mean"], a["scale_tril"])),
    frozenset({"precision_tril"}): (
        "Gaussian.from_precision_tril",
        lambda a: Gaussian.from_precision_tril(a["mean"], a["precision_tril"])),
    frozenset({"var"}): ("Gaussian.diag / Gaussian.isotropic", _var),
    frozenset({"std"}): ("Gaussian.diag", lambda a: _public("diag")(a["mean"], std=a["std"])),
    frozenset({"logvar"}): (
        "Gaussian.diag", lambda a: _public("diag")(a["mean"], logvar=a["logvar"])),
    frozenset({"factor", "var"}): (
        "Gaussian.lowrank", lambda a: _public("lowrank")(a["mean"], a["factor"], a["var"])),
    frozenset({"a", "b"}): (
        "Gaussian.kronecker", lambda a: _public("kronecker")(a["mean"], a["a"], a["b"])),
}


def _layout_names() -> str:
    return "; ".join("+".join(sorted(keys)) for keys in LAYOUTS)


def read_arrays(path: Path) -> dict[str, Any]:
    """The named arrays in a JSON or .npz Gaussian file, as float64 NumPy arrays: JSON numbers
    (or nested lists of them) that float64 can hold, or real .npz arrays."""
    if not path.exists():
        raise UserError(f"{path}: no such file")
    if path.is_dir():
        raise UserError(f"{path}: is a folder, not a Gaussian file")
    suffix = path.suffix.lower()
    try:
        if suffix == ".json":
            with path.open(encoding="utf-8") as f:
                raw = json.load(f, parse_int=_json_number, parse_float=_json_number)
            if not isinstance(raw, dict):
                raise UserError(f"{path}: expected a JSON object with 'mean' and a covariance")
        elif suffix == ".npz":
            with path.open("rb") as f:
                if f.read(2) != b"PK":
                    raise UserError(f"{path}: not a .npz file (not a zip archive; save with "
                                    "np.savez)")
            with np.load(path, allow_pickle=False) as npz:
                raw = {k: npz[k] for k in npz.files}
        else:
            raise UserError(f"{path}: unknown Gaussian file type {suffix!r}; use .json or .npz")
    except OSError as exc:
        raise UserError(f"{path}: cannot read ({exc.strerror or exc})") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise UserError(f"{path}: not valid JSON ({exc})") from None
    except RecursionError:  # the JSON parser's own limit, near 1000 levels
        raise UserError(f"{path}: not valid JSON for a Gaussian (nested too deeply)") from None
    except OverflowError as exc:  # from _json_number
        raise UserError(f"{path}: the number {_shortened(exc.args[0])} is beyond the range of "
                        f"float64 (±{np.finfo(np.float64).max:.3g})") from None
    except ValueError as exc:  # a corrupt .npz, or one holding pickled objects
        raise UserError(f"{path}: not a readable .npz file ({exc})") from None
    return {key: _float_array(path, key, value) for key, value in raw.items()}


def _json_number(text: str) -> float:
    """A JSON number as a float; OverflowError(text) when float64 cannot hold it (a 400-digit
    integer, 1e400): such a number would otherwise become infinity, or fail to convert."""
    value = float(text)
    if math.isinf(value):
        raise OverflowError(text)
    return value


def _shortened(text: str, keep: int = 12) -> str:
    return text if len(text) <= 2 * keep else f"{text[:keep]}...{text[-keep:]} " \
                                              f"({len(text)} characters)"


#: The deepest nesting of lists a JSON array may have (NumPy arrays have at most 64 axes; a
#: Gaussian's have two, and its batch axes).
MAX_NESTING = 32


def _numbers_only(value: Any, depth: int = 0) -> bool:
    """Whether a value read from JSON is a number or lists of numbers nested at most
    :data:`MAX_NESTING` deep (no strings, booleans, nulls or objects, which NumPy would
    otherwise convert or reject obscurely)."""
    if isinstance(value, list):
        return depth < MAX_NESTING and all(_numbers_only(v, depth + 1) for v in value)
    return isinstance(value, float)  # _json_number makes every JSON number a float


def _float_array(path: Path, key: str, value: Any) -> np.ndarray:
    """One array of a Gaussian file as float64; a user error naming the key when it is not
    a rectangular array of real numbers."""
    if isinstance(value, np.ndarray):  # from a .npz
        check_real(path, value.dtype, f"'{key}'")
        return value.astype(np.float64)
    if not _numbers_only(value):
        raise UserError(f"{path}: '{key}' is not a numeric array (numbers, or lists of them "
                        f"nested at most {MAX_NESTING} deep)")
    try:
        return np.asarray(value, dtype=np.float64)
    except ValueError:  # nested lists of different lengths
        raise UserError(f"{path}: '{key}' is not a rectangular array (its rows have different "
                        "lengths)") from None


def load_gaussian(path: Path) -> tuple[Gaussian, str]:
    """The Gaussian in ``path`` and the name of the constructor that built it."""
    arrays = read_arrays(path)
    if "mean" not in arrays:
        raise UserError(f"{path}: no 'mean' key (found: {', '.join(sorted(arrays)) or 'none'})")
    keys = frozenset(arrays) - {"mean"}
    if keys not in LAYOUTS:
        found = ", ".join(sorted(keys)) or "nothing"
        raise UserError(f"{path}: cannot tell the covariance from the keys besides 'mean' "
                        f"({found}); use exactly one of: {_layout_names()}")
    constructor, build = LAYOUTS[keys]
    try:
        return build(_one_dimensional(arrays)), constructor
    except LookupError as exc:
        raise UserError(f"{path}: keys {'+'.join(sorted(keys))} need Gaussian.{exc.args[0]}, "
                        "which this version of gaussdiv lacks") from None
    except GaussianError as exc:
        raise UserError(f"{path}: {exc}") from None


#: The matrix-valued keys (a scalar is a 1×1 matrix when d = 1).
_MATRICES = ("cov", "precision", "scale_tril", "precision_tril", "a", "b")


def _one_dimensional(arrays: dict[str, Any]) -> dict[str, Any]:
    """A scalar mean is d = 1: scalars beside it become 1-vectors (var, std, logvar) or 1×1
    matrices (``{"mean": 0, "var": 2}`` is N(0, 2) on the line)."""
    if np.ndim(arrays["mean"]) != 0:
        return arrays
    return {k: np.reshape(v, (1, 1) if k in _MATRICES else (1,)) if np.ndim(v) == 0 else v
            for k, v in arrays.items()}


def dense_covariance(g: Gaussian) -> np.ndarray:
    """The covariance as a dense matrix, to show: a variance beyond float64's range (from a
    ``logvar`` of 1500) shows as inf, without floating-point warnings that would only repeat
    it."""
    with np.errstate(all="ignore"):
        return np.asarray(g.covariance_matrix)


def gaussian_payload(g: Gaussian) -> dict[str, Any]:
    """A Gaussian as the JSON layout ``{"mean": ..., "cov": ...}`` (dense covariance)."""
    return {"mean": np.asarray(g.mean), "cov": dense_covariance(g)}

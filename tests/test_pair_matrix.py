"""KL(P‖Q) for every ordered pair of structure kinds, against a 60-digit mpmath reference.

The reference file is made by ``tests/reference/make_pair_matrix.py`` (run by hand; see its
docstring for how the cases are drawn and how the reference is computed). It covers the 11
structure kinds of the public constructors — cov, precision, scale_tril, precision_tril,
diag(var=), diag(std=), diag(logvar=), isotropic, standard, lowrank (rank 2), kronecker — for
every ordered pair (A, B) (P of kind A, Q of kind B) at d ∈ {3, 20, 64}:

  * ``separated``: independent random P and Q (κ ≤ 100);
  * ``near``: P and Q a relative δ ∈ {1e-1, 1e-4, 1e-8, 1e-12} apart, on a base covariance both
    kinds can represent, each side perturbed inside its own kind's family;
  * ``float32``: the near case at δ = 1e-4, d = 20, every input cast to float32;
  * ``identical``: one Gaussian used as P and Q, and a second one built from the same arrays.

Targets (from the issue), applied as stated: float64 relative error ≤ 1e-14 for every separated
and near case; float32 ≤ 1e-5; identical inputs give exactly 0.0; never negative, never NaN, no
exception (in particular no false NotPositiveDefiniteError); ``kl_terms(p, q).kl`` is
``kl(p, q)`` bit for bit. Errors are measured in mpmath against the 40-digit reference strings.

Every case runs on NumPy. Torch and JAX (the ``fw`` fixture of tests/conftest.py) run a subset
(``runs_on``: d ∈ {3, 20}; separated, identical and near at δ ∈ {1e-1, 1e-12}) — eager JAX
compiles every operation anew for each new shape, so its cost grows with the number of distinct
(kind pair, d) combinations.

``python tests/test_pair_matrix.py [numpy|torch|jax]`` prints, per ordered pair, the worst
relative error of the near-identical float64 cases (rows: kind of P, columns: kind of Q), the
same for the separated and float32 cases, and lists every case that raised, returned a negative
or NaN value, or where kl_terms(p, q).kl differs from kl(p, q).
"""

from __future__ import annotations

import math
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from mpmath import mp

import gaussdiv
from gaussdiv import Gaussian

REF_PATH = Path(__file__).parent / "reference" / "pair_matrix.npz"
ERR_DPS = 50  # digits used to compare a float result with the 40-digit reference string

KL_RTOL_F64 = 1e-14  # the float64 target, separated and near-identical alike
KL_RTOL_F32 = 1e-5  # the float32 target
FRAMEWORKS = ("numpy", "torch", "jax")  # the names tests/conftest.py's ``fw`` fixture takes
SUBSET_DIMS = (3, 20)  # torch and JAX
SUBSET_DELTAS = (1e-1, 1e-12)

KINDS = ("cov", "precision", "scale_tril", "precision_tril", "var", "std", "logvar",
         "isotropic", "standard", "lowrank", "kronecker")
# Parameters stored as their lower triangle (see make_pair_matrix.py's output format).
SYMMETRIC = {"cov": ("a",), "precision": ("a",), "kronecker": ("a", "b")}
CONSTRUCTORS = {
    "cov": lambda m, a, b: Gaussian(m, a),
    "precision": lambda m, a, b: Gaussian.from_precision(m, a),
    "scale_tril": lambda m, a, b: Gaussian.from_scale_tril(m, a),
    "precision_tril": lambda m, a, b: Gaussian.from_precision_tril(m, a),
    "var": lambda m, a, b: Gaussian.diag(m, var=a),
    "std": lambda m, a, b: Gaussian.diag(m, std=a),
    "logvar": lambda m, a, b: Gaussian.diag(m, logvar=a),
    "isotropic": lambda m, a, b: Gaussian.isotropic(m, a),
    "lowrank": lambda m, a, b: Gaussian.lowrank(m, a, b),
    "kronecker": lambda m, a, b: Gaussian.kronecker(m, a, b),
}


@cache
def _data() -> dict[str, np.ndarray]:
    with np.load(REF_PATH, allow_pickle=False) as f:
        return {k: f[k] for k in f.files}


class Case:
    """One row of the reference file."""

    def __init__(self, index: int) -> None:
        data = _data()
        self.index = index
        self.category = str(data["category"][index])
        self.kind1 = str(data["kind1"][index])
        self.kind2 = str(data["kind2"][index])
        self.dim = int(data["dim"][index])
        self.dtype = str(data["dtype"][index])
        self.delta = float(data["delta"][index])

    @property
    def id(self) -> str:
        tail = {"separated": "separated", "identical": "identical",
                "near": f"near{self.delta:.0e}",
                "float32": f"near{self.delta:.0e}-float32"}[self.category]
        return f"{self.kind1}-{self.kind2}-d{self.dim}-{tail}"

    def __repr__(self) -> str:
        return self.id


CASES = [Case(i) for i in range(len(_data()["category"]))]


def unpack_symmetric(t: np.ndarray) -> np.ndarray:
    t = np.tril(t)
    return t + np.tril(t, -1).T


def inputs(case: Case, side: int) -> tuple[np.ndarray | None, ...]:
    """(mean, a, b) of P (side 1) or Q (side 2) as NumPy arrays; None where the kind has none."""
    data = _data()
    kind = case.kind1 if side == 1 else case.kind2
    out = []
    for name in ("m", "a", "b"):
        j = int(data[f"{name}{side}"][case.index])
        value = None if j < 0 else data[f"x{j:05d}"]
        if value is not None and name in SYMMETRIC.get(kind, ()):
            value = unpack_symmetric(value)
        out.append(value)
    return tuple(out)


def build(kind: str, d: int, arrays: tuple[Any, ...], fw: Any, dtype: str) -> Gaussian:
    """The Gaussian of ``kind`` from ``arrays`` (already ``fw``'s arrays)."""
    mean, a, b = arrays
    if kind == "standard":
        if fw.name == "numpy":
            return Gaussian.standard(d, np.dtype(dtype))
        return Gaussian.standard(d, like=fw.array(np.zeros(d), np.dtype(dtype).type))
    return CONSTRUCTORS[kind](mean, a, b)


def fw_arrays(case: Case, side: int, fw: Any) -> tuple[Any, ...]:
    dt = np.dtype(case.dtype).type
    return tuple(None if x is None else fw.array(x, dt) for x in inputs(case, side))


def gaussians(case: Case, fw: Any) -> tuple[Gaussian, Gaussian]:
    p = build(case.kind1, case.dim, fw_arrays(case, 1, fw), fw, case.dtype)
    q = build(case.kind2, case.dim, fw_arrays(case, 2, fw), fw, case.dtype)
    return p, q


def ref(case: Case) -> mp.mpf:
    with mp.workdps(ERR_DPS):
        return mp.mpf(str(_data()["ref_kl"][case.index]))


def rel_err(value: float, exact: mp.mpf) -> float:
    """|value − exact| / |exact| in mpmath (inf for a non-finite value; 0 when both are 0)."""
    value = float(value)
    if not math.isfinite(value):
        return math.inf
    with mp.workdps(ERR_DPS):
        diff = abs(mp.mpf(value) - exact)
        if exact == 0:
            return 0.0 if diff == 0 else math.inf
        return float(diff / abs(exact))


def tolerance(case: Case) -> float:
    return KL_RTOL_F32 if case.dtype == "float32" else KL_RTOL_F64


def runs_on(name: str, case: Case) -> bool:
    """NumPy: every case. Torch: d ∈ SUBSET_DIMS; separated, identical, and near at
    δ ∈ SUBSET_DELTAS (no float32). JAX, which compiles anew for every case (≈ 0.1 s each),
    the same at the smallest d and nearest δ only: its numerics are the code NumPy runs."""
    if name == "numpy":
        return True
    if case.dim not in SUBSET_DIMS:
        return False
    if name == "jax" and (case.dim != min(SUBSET_DIMS)
                          or (case.category == "near" and case.delta != min(SUBSET_DELTAS))):
        return False
    return (case.category in ("separated", "identical")
            or (case.category == "near" and case.delta in SUBSET_DELTAS))


def params(*categories: str) -> list:
    return [pytest.param(name, c, id=f"{name}-{c.id}") for name in FRAMEWORKS for c in CASES
            if c.category in categories and runs_on(name, c)]


# ---------------------------------------------------------------------------- the file itself
def test_reference_file_covers_every_pair():
    data = _data()
    assert int(data["dps"]) >= 40 and int(data["ref_digits"]) >= 30
    assert data["digits"].min() >= 30
    assert REF_PATH.stat().st_size < 10_000_000
    seen = {(c.kind1, c.kind2, c.dim, c.category, c.delta) for c in CASES}
    for a in KINDS:
        for b in KINDS:
            for d in (3, 20, 64):
                assert (a, b, d, "identical", 0.0) in seen or a != b
                if a == b == "standard":
                    continue
                assert (a, b, d, "separated", 0.0) in seen, (a, b, d)
                for delta in (1e-1, 1e-4, 1e-8, 1e-12):
                    assert (a, b, d, "near", delta) in seen, (a, b, d, delta)
            assert (a, b, 20, "float32", 1e-4) in seen or a == b == "standard"
    refs = data["ref_kl_f64"][data["category"] != "identical"]
    assert np.all(refs >= 1e-25)


# ---------------------------------------------------------------------------- KL
@pytest.mark.parametrize("fw,case", params("separated", "near", "float32"), indirect=["fw"])
def test_kl_matches_reference(fw, case: Case):
    p, q = gaussians(case, fw)
    value = fw.result(gaussdiv.kl(p, q), case.dtype)
    from_terms = fw.result(gaussdiv.kl_terms(p, q).kl, case.dtype)
    assert value.shape == ()
    failures = []
    if np.isnan(value) or value < 0:
        failures.append(f"KL = {float(value)!r} (negative or NaN)")
    err = rel_err(value, ref(case))
    if not err <= tolerance(case):
        failures.append(f"KL relative error {err:.3g} misses the target {tolerance(case):.0e} "
                        f"(KL = {float(value)!r}, exact {mp.nstr(ref(case), 17)})")
    if value.tobytes() != from_terms.tobytes():
        failures.append(f"kl_terms(p, q).kl = {float(from_terms)!r} differs from kl(p, q) = "
                        f"{float(value)!r}")
    if failures:
        pytest.fail("\n".join(failures))


@pytest.mark.parametrize("fw,case", params("identical"), indirect=["fw"])
def test_identical_inputs_give_exactly_zero(fw, case: Case):
    arrays = fw_arrays(case, 1, fw)
    p = build(case.kind1, case.dim, arrays, fw, case.dtype)
    again = build(case.kind1, case.dim, arrays, fw, case.dtype)  # same arrays, a new Gaussian
    result = lambda v: fw.result(v, case.dtype)  # noqa: E731
    values = {"kl(p, p)": result(gaussdiv.kl(p, p)),
              "kl(p, p')": result(gaussdiv.kl(p, again)),
              "kl(p', p)": result(gaussdiv.kl(again, p)),
              "kl_terms(p, p).kl": result(gaussdiv.kl_terms(p, p).kl),
              "kl_terms(p, p').kl": result(gaussdiv.kl_terms(p, again).kl)}
    bad = {k: float(v) for k, v in values.items() if not v == 0.0}
    assert not bad, f"not exactly 0: {bad}"


# ---------------------------------------------------------------------------- report
SHORT = {"cov": "cov", "precision": "prec", "scale_tril": "L", "precision_tril": "R",
         "var": "var", "std": "std", "logvar": "logv", "isotropic": "iso", "standard": "N01",
         "lowrank": "lowr", "kronecker": "kron"}


def evaluate(case: Case, fw: Any) -> tuple[float, str]:
    """(relative error, problem) of one case on ``fw``; problem '' when none."""
    try:
        p, q = gaussians(case, fw)
        value = fw.to_numpy(gaussdiv.kl(p, q))
        from_terms = fw.to_numpy(gaussdiv.kl_terms(p, q).kl)
    except Exception as exc:  # reported, not hidden
        return math.inf, f"raised {type(exc).__name__}: {str(exc)[:120]}"
    problems = []
    if np.isnan(value):
        problems.append("NaN")
    elif value < 0:
        problems.append(f"negative ({float(value):.3g})")
    if value.tobytes() != from_terms.tobytes():
        problems.append("kl_terms.kl != kl")
    return rel_err(value, ref(case)), ", ".join(problems)


def error_tables(fw: Any) -> str:
    worst: dict[str, dict[tuple[str, str], float]] = {"near": {}, "separated": {},
                                                      "float32": {}}
    problems: list[str] = []
    n_fail = dict.fromkeys(worst, 0)
    n_case = dict.fromkeys(worst, 0)
    for c in CASES:
        if not runs_on(fw.name, c) or c.category == "identical":
            continue
        err, problem = evaluate(c, fw)
        table = worst[c.category]
        key = (c.kind1, c.kind2)
        table[key] = max(table.get(key, 0.0), err)
        n_case[c.category] += 1
        n_fail[c.category] += not err <= tolerance(c)
        if problem:
            problems.append(f"{c.id}: {problem} (rel. error {err:.2g})")
    lines = []
    for category, table in worst.items():
        if not table:
            continue
        target = KL_RTOL_F32 if category == "float32" else KL_RTOL_F64
        lines.append(f"\n{fw.name}: worst relative KL error, {category} "
                     f"({n_fail[category]} of {n_case[category]} cases miss {target:.0e}); "
                     "rows P, columns Q")
        lines.append("| P \\ Q | " + " | ".join(SHORT[k] for k in KINDS) + " |")
        lines.append("|---" * (len(KINDS) + 1) + "|")
        for a in KINDS:
            cells = []
            for b in KINDS:
                e = table.get((a, b))
                cells.append("—" if e is None else "exc" if e == math.inf else f"{e:.0e}")
            lines.append(f"| {SHORT[a]} | " + " | ".join(cells) + " |")
    lines.append(f"\n{fw.name}: {len(problems)} cases raised, were negative/NaN, or had "
                 "kl_terms.kl != kl")
    lines += problems
    return "\n".join(lines)


if __name__ == "__main__":
    import sys

    from conftest import framework  # as a script only: under pytest, use the ``fw`` fixture

    for name in sys.argv[1:] or ["numpy"]:
        print(error_tables(framework(name)))

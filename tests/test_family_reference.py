"""Rényi, Bhattacharyya, Hellinger and Jeffreys for every ordered pair of structure kinds,
against mpmath references.

The reference file ``tests/reference/family_reference.npz`` is made by
``tests/reference/make_family_reference.py`` (run by hand; see its docstring for how the
references are computed and checked). It draws no inputs of its own: each row names a case of
``tests/reference/pair_matrix.npz`` (the KL pair matrix of tests/test_pair_matrix.py: the 11
structure kinds of the public constructors, every ordered pair (A, B), P of kind A, Q of kind
B), and the Gaussians are built here from those stored inputs exactly as test_pair_matrix does.
The subset: d ∈ {3, 20}; separated; near with δ ∈ {1e-1, 1e-4, 1e-12}; float32 (near δ = 1e-4
at d = 20, float32 inputs); identical. Per case:

    renyi(p, q, α), α ∈ {0.5, 2.0, 0.1}   (+inf where Σ_α = αΣ_Q + (1−α)Σ_P is not PD)
    bhattacharyya(p, q)                    D_½ / 2
    bhattacharyya_coefficient(p, q)        exp(−D_B)
    hellinger(p, q)                        √(−expm1(−D_B))
    jeffreys(p, q)                         KL(P‖Q) + KL(Q‖P)

Targets (from the issue), applied as stated: float64 relative error ≤ 1e-13 for every
separated and near case; float32 ≤ 1e-5; +inf exactly where the reference is +inf; never
negative, never NaN, no exception (the coefficient and Hellinger also stay ≤ 1); identical
inputs give exactly 0.0 (renyi at each α, bhattacharyya, hellinger, jeffreys) and exactly 1.0
(bhattacharyya_coefficient), for the same Gaussian as P and Q and for a second Gaussian built
from the same arrays. Errors are measured in mpmath against the 40-digit reference strings.

One test item per (framework, case) checks every divergence of that case (a call costs a few
milliseconds whatever d, so per-divergence items would spend as much time in pytest as in the
library); its failure message names each divergence that misses. Every case and divergence runs
on NumPy. Torch and JAX (the ``fw`` fixture of tests/conftest.py) run a subset (``runs_on``):
d = 3; separated, identical and near at δ ∈ {1e-1, 1e-12}; Rényi at α = 0.5 only.

``python tests/test_family_reference.py [numpy|torch|jax]`` prints, per divergence, the worst
relative error per ordered pair (rows: kind of P, columns: kind of Q) over the float64 cases,
a divergence × category summary, and lists every case that missed its target, raised, or
returned a negative, NaN or out-of-range value.
"""

from __future__ import annotations

import hashlib
import math
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from mpmath import mp
from test_pair_matrix import build, fw_arrays, gaussians  # one way to build a case

import gaussdiv
from gaussdiv import Gaussian

HERE = Path(__file__).parent
REF_PATH = HERE / "reference" / "family_reference.npz"
PAIR_PATH = HERE / "reference" / "pair_matrix.npz"
ERR_DPS = 50  # digits used to compare a float result with the 40-digit reference string

RTOL_F64 = 1e-13  # the issue's float64 target
RTOL_F32 = 1e-5  # the issue's float32 target
FRAMEWORKS = ("numpy", "torch", "jax")  # the names tests/conftest.py's ``fw`` fixture takes
SUBSET_DIMS = (3,)  # torch and JAX
SUBSET_DELTAS = (1e-1, 1e-12)
SUBSET_ALPHAS = (0.5,)
DIMS = (3, 20)
DELTAS = (1e-1, 1e-4, 1e-12)
ALPHAS = (0.5, 2.0, 0.1)
KINDS = ("cov", "precision", "scale_tril", "precision_tril", "var", "std", "logvar",
         "isotropic", "standard", "lowrank", "kronecker")

# (name, α) of every divergence checked; DIVERGENCES[key] computes it.
KEYS = [("renyi", a) for a in ALPHAS] + [
    (n, None) for n in ("bhattacharyya", "bhattacharyya_coefficient", "hellinger", "jeffreys")]
BOUNDED = ("bhattacharyya_coefficient", "hellinger")  # values in [0, 1]


def label(key: tuple[str, float | None]) -> str:
    name, alpha = key
    return name if alpha is None else f"renyi{alpha:g}"


def divergence(key: tuple[str, float | None], p: Gaussian, q: Gaussian) -> Any:
    name, alpha = key
    if name == "renyi":
        return gaussdiv.renyi(p, q, alpha)
    return getattr(gaussdiv, name)(p, q)


# ---------------------------------------------------------------------------- inputs
@cache
def _pairs() -> dict[str, np.ndarray]:
    with np.load(PAIR_PATH, allow_pickle=False) as f:
        return {k: f[k] for k in f.files}


@cache
def _refs() -> dict[str, np.ndarray]:
    with np.load(REF_PATH, allow_pickle=False) as f:
        return {k: f[k] for k in f.files}


class Case:
    """One case of pair_matrix.npz with its references (``refs[key]``: 40-digit strings)."""

    def __init__(self, index: int, rows: list[int]) -> None:
        refs = _refs()
        self.index = index
        self.category = str(refs["category"][rows[0]])
        self.kind1 = str(refs["kind1"][rows[0]])
        self.kind2 = str(refs["kind2"][rows[0]])
        self.dim = int(refs["dim"][rows[0]])
        self.dtype = str(refs["dtype"][rows[0]])
        self.delta = float(refs["delta"][rows[0]])
        self.refs: dict[tuple, str] = {}
        self.lmin: dict[float, float] = {}  # λ_min/λ_max of Σ_α (float64), for messages
        for j in rows:
            name = str(refs["name"][j])
            alpha = float(refs["alpha"][j]) if name == "renyi" else None
            self.refs[name, alpha] = str(refs["ref"][j])
            if name == "renyi":
                self.lmin[alpha] = float(refs["alpha_lmin"][j])

    @property
    def tail(self) -> str:
        return {"separated": "separated", "identical": "identical",
                "near": f"near{self.delta:.0e}",
                "float32": f"near{self.delta:.0e}-float32"}[self.category]

    @property
    def id(self) -> str:
        return f"{self.kind1}-{self.kind2}-d{self.dim}-{self.tail}"

    def __repr__(self) -> str:
        return self.id


def _cases() -> list[Case]:
    rows: dict[int, list[int]] = {}
    for j, i in enumerate(_refs()["case"]):
        rows.setdefault(int(i), []).append(j)
    return [Case(i, r) for i, r in rows.items()]


CASES = _cases()


# ---------------------------------------------------------------------------- errors
def ref(case: Case, key: tuple) -> mp.mpf:
    with mp.workdps(ERR_DPS):
        return mp.mpf(case.refs[key])


def rel_err(value: float, exact: mp.mpf) -> float:
    """|value − exact| / |exact| in mpmath; 0 when both are +inf or both 0, else inf for a
    non-finite value or a nonzero value against 0."""
    value = float(value)
    if mp.isinf(exact):
        return 0.0 if value == math.inf else math.inf
    if not math.isfinite(value):
        return math.inf
    with mp.workdps(ERR_DPS):
        diff = abs(mp.mpf(value) - exact)
        if exact == 0:
            return 0.0 if diff == 0 else math.inf
        return float(diff / abs(exact))


def tolerance(case: Case) -> float:
    return RTOL_F32 if case.dtype == "float32" else RTOL_F64


def problems(key: tuple, value: np.ndarray) -> list[str]:
    """Negative, NaN or (coefficient, Hellinger) above 1."""
    out = []
    if np.isnan(value):
        out.append("NaN")
    elif value < 0:
        out.append(f"negative ({float(value)!r})")
    elif key[0] in BOUNDED and value > 1:
        out.append(f"above 1 ({float(value)!r})")
    return out


def runs_on(name: str, case: Case, key: tuple | None = None) -> bool:
    """NumPy: every case and divergence. Torch: d ∈ SUBSET_DIMS; separated, identical, and near
    at δ ∈ SUBSET_DELTAS (no float32); Rényi at α ∈ SUBSET_ALPHAS. JAX: the same but only the
    identical and the nearest cases."""
    if name == "numpy":
        return True
    if key is not None and key[0] == "renyi" and key[1] not in SUBSET_ALPHAS:
        return False
    if case.dim not in SUBSET_DIMS:
        return False
    if name == "jax":  # eager JAX compiles per case: the hardest class and the zeros only
        return case.category == "identical" or (case.category == "near"
                                                and case.delta == min(SUBSET_DELTAS))
    return (case.category in ("separated", "identical")
            or (case.category == "near" and case.delta in SUBSET_DELTAS))


def params(identical: bool) -> list:
    return [pytest.param(name, c, id=f"{name}-{c.id}") for name in FRAMEWORKS for c in CASES
            if (c.category == "identical") == identical and runs_on(name, c)]


# ---------------------------------------------------------------------------- the file itself
def test_reference_file_covers_every_pair():
    refs, pairs = _refs(), _pairs()
    assert REF_PATH.stat().st_size < 3_000_000
    assert int(refs["dps"]) >= 50 and int(refs["ref_digits"]) >= 30
    assert refs["digits"].min() >= 30
    assert str(refs["pair_matrix_sha256"]) == hashlib.sha256(PAIR_PATH.read_bytes()).hexdigest()
    for k in ("category", "kind1", "kind2", "dim", "dtype", "delta"):  # rows point right
        assert np.array_equal(refs[k], pairs[k][refs["case"]]), k
    for c in CASES:
        assert set(c.refs) == set(KEYS), c.id
    seen = {(c.kind1, c.kind2, c.dim, c.category, c.delta) for c in CASES}
    for a in KINDS:
        for b in KINDS:
            for d in DIMS:
                assert (a, b, d, "identical", 0.0) in seen or a != b
                if a == b == "standard":
                    continue
                assert (a, b, d, "separated", 0.0) in seen, (a, b, d)
                for delta in DELTAS:
                    assert (a, b, d, "near", delta) in seen, (a, b, d, delta)
            assert (a, b, 20, "float32", 1e-4) in seen or a == b == "standard"
    finite = (refs["category"] != "identical") & (refs["ref"] != "inf")
    assert np.all(refs["ref_f64"][finite] > 0)
    assert set(refs["name"][refs["ref"] == "inf"]) <= {"renyi"}
    assert np.all(refs["alpha"][refs["ref"] == "inf"] > 1)


# ---------------------------------------------------------------------------- divergences
@pytest.mark.parametrize("fw,case", params(identical=False), indirect=["fw"])
def test_divergences_match_reference(fw, case: Case):
    p, q = gaussians(case, fw)
    failures = []
    for key in KEYS:
        if not runs_on(fw.name, case, key):
            continue
        try:
            value = fw.result(divergence(key, p, q), case.dtype)
        except Exception as exc:  # every divergence of the case is tried and reported
            failures.append(f"{label(key)} raised {type(exc).__name__}: {exc}")
            continue
        if value.shape != ():
            failures.append(f"{label(key)}: shape {value.shape}, not ()")
            continue
        failures += [f"{label(key)}: {m}" for m in problems(key, value)]
        exact = ref(case, key)
        err = rel_err(value, exact)
        if not err <= tolerance(case):
            extra = f"; Σ_α λ_min/λ_max {case.lmin[key[1]]:.2g}" if key[0] == "renyi" else ""
            failures.append(f"{label(key)} relative error {err:.3g} misses the target "
                            f"{tolerance(case):.0e} (value {float(value)!r}, exact "
                            f"{mp.nstr(exact, 17)}{extra})")
    if failures:
        pytest.fail("\n".join(failures))


@pytest.mark.parametrize("fw,case", params(identical=True), indirect=["fw"])
def test_identical_inputs_give_exact_values(fw, case: Case):
    arrays = fw_arrays(case, 1, fw)
    p = build(case.kind1, case.dim, arrays, fw, case.dtype)
    again = build(case.kind1, case.dim, arrays, fw, case.dtype)  # same arrays, a new Gaussian
    bad = {}
    for key in KEYS:
        if not runs_on(fw.name, case, key):
            continue
        expected = 1.0 if key[0] == "bhattacharyya_coefficient" else 0.0
        for tag, (a, b) in (("p, p", (p, p)), ("p, p'", (p, again)), ("p', p", (again, p))):
            value = fw.result(divergence(key, a, b), case.dtype)
            if not value == expected:
                bad[f"{label(key)}({tag})"] = float(value)
    assert not bad, f"not exactly 0 (coefficient: 1): {bad}"


# ---------------------------------------------------------------------------- report
SHORT = {"cov": "cov", "precision": "prec", "scale_tril": "L", "precision_tril": "R",
         "var": "var", "std": "std", "logvar": "logv", "isotropic": "iso", "standard": "N01",
         "lowrank": "lowr", "kronecker": "kron"}


def evaluate(case: Case, key: tuple, fw: Any, pq: tuple[Gaussian, Gaussian]) -> tuple[float, str]:
    """(relative error, problem) of one case and divergence on ``fw``; problem '' when none."""
    try:
        value = fw.to_numpy(divergence(key, *pq))
    except Exception as exc:  # reported, not hidden
        return math.inf, f"raised {type(exc).__name__}: {str(exc)[:120]}"
    return rel_err(value, ref(case, key)), ", ".join(problems(key, value))


def error_tables(fw: Any) -> str:
    worst: dict[str, dict[tuple[str, str], float]] = {label(k): {} for k in KEYS}
    summary: dict[tuple[str, str], list] = {}  # (divergence, category tail) -> [worst, fail, n]
    listed: list[str] = []
    for c in CASES:
        if c.category == "identical":
            continue
        try:
            pq = gaussians(c, fw)
        except Exception as exc:  # reported, not hidden
            listed.append(f"{c.id}: building the Gaussians raised {type(exc).__name__}: {exc}")
            continue
        for key in KEYS:
            if not runs_on(fw.name, c, key):
                continue
            err, problem = evaluate(c, key, fw, pq)
            if c.category != "float32":
                table = worst[label(key)]
                table[c.kind1, c.kind2] = max(table.get((c.kind1, c.kind2), 0.0), err)
            s = summary.setdefault((label(key), c.tail.replace(f"d{c.dim}-", "")), [0.0, 0, 0])
            s[0] = max(s[0], err)
            s[1] += not err <= tolerance(c)
            s[2] += 1
            if problem or not err <= tolerance(c):
                lm = (f", Σ_α λ_min/λ_max {c.lmin[key[1]]:.2g}" if key[0] == "renyi" else "")
                listed.append(f"{label(key)} {c.id}: rel. error {err:.2g}"
                              f"{'; ' + problem if problem else ''}{lm}")
    lines = []
    for name, table in worst.items():
        if not table:
            continue
        lines.append(f"\n{fw.name}: worst relative error of {name}, float64 separated and near "
                     f"(target {RTOL_F64:.0e}); rows P, columns Q")
        lines.append("| P \\ Q | " + " | ".join(SHORT[k] for k in KINDS) + " |")
        lines.append("|---" * (len(KINDS) + 1) + "|")
        for a in KINDS:
            cells = []
            for b in KINDS:
                e = table.get((a, b))
                cells.append("—" if e is None else "exc" if e == math.inf else f"{e:.0e}")
            lines.append(f"| {SHORT[a]} | " + " | ".join(cells) + " |")
    tails = sorted({t for _, t in summary}, key=lambda t: (t.endswith("float32"), t))
    lines.append(f"\n{fw.name}: worst relative error (cases missing the target / cases)")
    lines.append("| divergence | " + " | ".join(tails) + " |")
    lines.append("|---" * (len(tails) + 1) + "|")
    for key in KEYS:
        cells = []
        for t in tails:
            s = summary.get((label(key), t))
            cells.append("—" if s is None else f"{s[0]:.0e} ({s[1]}/{s[2]})")
        lines.append(f"| {label(key)} | " + " | ".join(cells) + " |")
    lines.append(f"\n{fw.name}: {len(listed)} (divergence, case) pairs missed the target, "
                 "raised, or were negative/NaN/above 1")
    lines += listed
    return "\n".join(lines)


if __name__ == "__main__":
    import sys

    from conftest import framework  # as a script only: under pytest, use the ``fw`` fixture

    for name in sys.argv[1:] or ["numpy"]:
        print(error_tables(framework(name)))

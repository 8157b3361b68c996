"""Generate the mpmath reference for Rényi, Bhattacharyya, Hellinger and Jeffreys divergences
over the structure-kind pairs of pair_matrix.npz.

Run by hand from the repository root (tests/test_family_reference.py only *reads* the result):

    python tests/reference/make_family_reference.py            # writes family_reference.npz
    python tests/reference/make_family_reference.py --quick    # d = 3 only, for trying out changes
    python tests/reference/make_family_reference.py --jobs 1   # no worker processes

It needs numpy and mpmath only (not gaussdiv). It draws no inputs of its own: every Gaussian is
a stored case of tests/reference/pair_matrix.npz (made by make_pair_matrix.py, whose helpers it
imports: the Spec and Case classes, MpGaussian — Σ reduced to an exact factor — ``reference``
for KL, and ``dense_mp`` — Σ formed in mpmath from the raw inputs). About two minutes on two
cores.

Cases (a subset of pair_matrix.npz, every ordered pair of the 11 kinds that it holds)
-----------------------------------------------------------------------------------
d ∈ DIMS = {3, 20}; categories separated, near with δ ∈ DELTAS = {1e-1, 1e-4, 1e-12}, float32
(near δ = 1e-4 at d = 20, inputs float32) and identical (float64 at d = 3 and 20, float32 at
d = 20). Each case is referred to by its row index in pair_matrix.npz (``case``).

Divergences (P = N(μ₁, Σ₁), Q = N(μ₂, Σ₂), Δμ = μ₁ − μ₂)
---------------------------------------------------------
    renyi (α ∈ ALPHAS = {0.5, 2.0, 0.1})
        D_α = α/2 · Δμᵀ Σ_α⁻¹ Δμ − 1/(2(α−1)) · (ln|Σ_α| − (1−α) ln|Σ₁| − α ln|Σ₂|),
        Σ_α = α Σ₂ + (1−α) Σ₁; +inf when Σ_α is not positive definite (α > 1 only).
        α is the float64 number passed to gaussdiv.renyi (0.1 is taken as the float 0.1).
    bhattacharyya               D_B = D_½ / 2
    bhattacharyya_coefficient   exp(−D_B)
    hellinger                   √(−expm1(−D_B))  (= √(1 − BC))
    jeffreys                    KL(P‖Q) + KL(Q‖P)
Identical cases: 0 for every divergence, 1 for the coefficient (no computation).

Reference
---------
Every stored float is exact (``mp.mpf(float(x))``; float32 inputs are taken as exact too).
Σ₁ and Σ₂ are formed densely in mpmath from the raw inputs by make_pair_matrix.dense_mp (cov:
the matrix; precision: mp.inverse(Λ); scale_tril: L Lᵀ; precision_tril: (R Rᵀ)⁻¹; diagonal
kinds: diag(v), diag(s²), diag(exp l); isotropic c I; standard I; lowrank W Wᵀ + diag(v);
kronecker A ⊗ B), Σ_α = αΣ₂ + (1−α)Σ₁ in mpmath, and ln|Σ_α| and Δμᵀ Σ_α⁻¹ Δμ from its mpmath
Cholesky factor (a non-positive pivot ⇒ +inf). ln|Σ₁|, ln|Σ₂| and both KLs come from
make_pair_matrix's exact-factor route (MpGaussian, ``reference``). Near cases cancel about
2·log10(1/δ) digits in the log-determinant combination (D ≈ δ²), so every case is computed at
DPS = 70 and again at CHECK_DPS = 90 digits; the number of significant digits on which the two
agree is stored (``digits``), and the script refuses to write a file where it is below
MIN_DIGITS = 30. Further checks before writing (any failure aborts):
  * self-check: for every ordered pair at d = 3 (separated and near δ = 1e-1), D_α for each α
    against the textbook formula at 100 digits (mp.det, mp.inverse on the dense Σ_α), and the
    +inf decision against the sign of Σ_α's smallest eigenvalue (mp.eigsy);
  * the KL(P‖Q) computed here agrees with pair_matrix.npz's ``ref_kl`` to 1e-30 (the indices
    point at the intended rows);
  * Rényi is nondecreasing in α: D_0.1 ≤ D_0.5 ≤ KL(P‖Q) ≤ D_2.

Output format (``family_reference.npz``, read with ``allow_pickle=False``)
-------------------------------------------------------------------------
One row per (case, divergence[, α]), arrays of length n_rows:
``case`` (row index in pair_matrix.npz), ``category``, ``kind1``, ``kind2``, ``dim``, ``dtype``,
``delta`` (copied from pair_matrix.npz, for checking and for test ids), ``name`` (one of the
divergence names above), ``alpha`` (α for renyi, NaN otherwise), ``ref`` (decimal string with
REF_DIGITS = 40 significant digits, or "inf", "0", "1"), ``ref_f64`` (the same rounded to
float64), ``digits`` (verified digits; CHECK_DPS for exact values), ``alpha_lmin`` (for renyi:
λ_min/λ_max of Σ_α, from float64 eigvalsh of the mpmath Σ_α rounded to float64 — negative
where the reference is +inf; NaN for other rows). Provenance: ``pair_matrix_sha256``, ``dps``,
``check_dps``, ``ref_digits``, ``generator``.
"""

from __future__ import annotations

import argparse
import hashlib
import itertools
import math
import os
import sys
import time
from multiprocessing import Pool
from pathlib import Path

import numpy as np
from mpmath import mp

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import make_pair_matrix as pm  # noqa: E402  (Spec, Case, MpGaussian, reference, dense_mp, …)
import make_reference as mr  # noqa: E402  (mp_cholesky, mp_lower_solve)

DPS = 70
CHECK_DPS = 90
SELF_CHECK_DPS = 100
MIN_DIGITS = 30
REF_DIGITS = 40
DIMS = (3, 20)
DELTAS = (1e-1, 1e-4, 1e-12)
ALPHAS = (0.5, 2.0, 0.1)
NAMES = ("renyi", "bhattacharyya", "bhattacharyya_coefficient", "hellinger", "jeffreys")
PAIR_PATH = HERE / "pair_matrix.npz"
OUT = HERE / "family_reference.npz"

_DATA: dict[str, np.ndarray] | None = None


def data() -> dict[str, np.ndarray]:
    global _DATA
    if _DATA is None:
        with np.load(PAIR_PATH, allow_pickle=False) as f:
            _DATA = {k: f[k] for k in f.files}
    return _DATA


# ---------------------------------------------------------------------------- cases
def selected(index: int, dims=DIMS) -> bool:
    d = data()
    cat, dim, delta = str(d["category"][index]), int(d["dim"][index]), float(d["delta"][index])
    if dim not in dims:
        return False
    return (cat in ("separated", "identical", "float32")
            or (cat == "near" and delta in DELTAS))


def spec(index: int, side: int) -> pm.Spec:
    """P (side 1) or Q (side 2) of pair_matrix.npz's row ``index``, with its stored arrays."""
    d = data()
    kind = str(d[f"kind{side}"][index])
    arrays = []
    for name in ("m", "a", "b"):
        j = int(d[f"{name}{side}"][index])
        value = None if j < 0 else d[f"x{j:05d}"]
        if value is not None and name in pm.SYMMETRIC.get(kind, ()):
            value = pm.unpack_symmetric(value).astype(value.dtype)
        arrays.append(value)
    return pm.Spec(kind, int(d["dim"][index]), *arrays)


def case(index: int) -> pm.Case:
    d = data()
    return pm.Case(str(d["category"][index]), spec(index, 1), spec(index, 2),
                   dtype=str(d["dtype"][index]), delta=float(d["delta"][index]))


# ---------------------------------------------------------------------------- mpmath
def dense(s: pm.Spec) -> list[list]:
    m = pm.dense_mp(s)
    return [[m[i, j] for j in range(s.dim)] for i in range(s.dim)]


def mean(s: pm.Spec) -> list:
    return [mp.zero] * s.dim if s.mean is None else pm.mpv(s.mean)


def values(c: pm.Case, dps: int) -> tuple[dict, dict]:
    """({(name, α): mpf or +inf}, {α: λ_min/λ_max of Σ_α}) of one case at ``dps`` digits."""
    with mp.workdps(dps):
        p, q = pm.MpGaussian.build(c.p), pm.MpGaussian.build(c.q)
        ld1, ld2 = p.logdet(), q.logdet()
        s1, s2 = dense(c.p), dense(c.q)
        dmu = [a - b for a, b in zip(mean(c.p), mean(c.q), strict=True)]
        d = c.dim
        out: dict = {}
        lmin: dict = {}
        for alpha in ALPHAS:
            a = mp.mpf(alpha)
            sa = [[a * s2[i][j] + (1 - a) * s1[i][j] for j in range(d)] for i in range(d)]
            w = np.linalg.eigvalsh(np.array([[float(x) for x in row] for row in sa]))
            lmin[alpha] = float(w[0] / w[-1])
            try:
                f = mr.mp_cholesky(sa)
            except ValueError:
                out["renyi", alpha] = mp.inf
                continue
            lda = 2 * mp.fsum(mp.log(f[i][i]) for i in range(d))
            z = mr.mp_lower_solve(f, [dmu])[0]
            maha = mp.fdot(z, z)
            out["renyi", alpha] = a / 2 * maha - (lda - (1 - a) * ld1 - a * ld2) / (2 * (a - 1))
        db = out["renyi", 0.5] / 2
        out["bhattacharyya", None] = db
        out["bhattacharyya_coefficient", None] = mp.exp(-db)
        out["hellinger", None] = mp.sqrt(-mp.expm1(-db))
        kl_pq = pm.reference(c, dps)["kl"]
        kl_qp = pm.reference(pm.Case(c.category, c.q, c.p, c.dtype, c.delta), dps)["kl"]
        out["jeffreys", None] = kl_pq + kl_qp
        out["kl", None] = kl_pq  # checks only (not stored)
        return out, lmin


def agreement(a, b) -> float:
    if a == b:
        return float(CHECK_DPS)
    if mp.isinf(a) or mp.isinf(b) or b == 0:
        return -math.inf
    return float(-mp.log10(abs(a - b) / abs(b)))


def compute(index: int) -> list[tuple]:
    """Rows (name, α, ref string, float64, digits, λ_min ratio) of pair_matrix row ``index``."""
    c = case(index)
    keys = [("renyi", a) for a in ALPHAS] + [(n, None) for n in NAMES[1:]]
    if c.category == "identical":
        return [(n, a, "1" if n == "bhattacharyya_coefficient" else "0",
                 1.0 if n == "bhattacharyya_coefficient" else 0.0, float(CHECK_DPS),
                 1.0 if n == "renyi" else math.nan) for n, a in keys]
    ref, lmin = values(c, DPS)
    check, _ = values(c, CHECK_DPS)
    # checks (raise in the worker; the message names the case)
    with mp.workdps(DPS):
        stored = mp.mpf(str(data()["ref_kl"][index]))
        if not abs(ref["kl", None] - stored) <= 1e-30 * abs(stored):
            raise AssertionError(f"{c.id}: KL(P‖Q) {ref['kl', None]} ≠ stored {stored}")
        chain = [ref["renyi", 0.1], ref["renyi", 0.5], ref["kl", None], ref["renyi", 2.0]]
        for lo, hi in itertools.pairwise(chain):
            if not lo <= hi * (1 + mp.mpf(10) ** (-25)):
                raise AssertionError(f"{c.id}: Rényi not monotone in α: {chain}")
    rows = []
    for key in keys:
        name, alpha = key
        v, w = ref[key], check[key]
        digits = agreement(v, w)
        with mp.workdps(DPS):
            s = "inf" if mp.isinf(v) else mp.nstr(v, REF_DIGITS, strip_zeros=False)
        rows.append((name, alpha, s, float(v), digits,
                     lmin[alpha] if name == "renyi" else math.nan))
    return rows


# ---------------------------------------------------------------------------- self-check
def textbook(c: pm.Case, alpha: float) -> tuple[mp.mpf, bool]:
    """(D_α by mp.det / mp.inverse on dense Σ_α, whether Σ_α is PD by mp.eigsy)."""
    s1, s2 = pm.dense_mp(c.p), pm.dense_mp(c.q)
    a = mp.mpf(alpha)
    sa = a * s2 + (1 - a) * s1
    pd = min(mp.eigsy(sa, eigvals_only=True)) > 0
    dmu = mp.matrix(mean(c.p)) - mp.matrix(mean(c.q))
    maha = (dmu.T * mp.inverse(sa) * dmu)[0]
    ratio = mp.det(sa) / (mp.det(s1) ** (1 - a) * mp.det(s2) ** a)
    return a / 2 * maha - mp.log(ratio) / (2 * (a - 1)), pd


def self_check() -> None:
    d = data()
    idx = [i for i in range(len(d["category"])) if int(d["dim"][i]) == 3
           and (str(d["category"][i]) == "separated"
                or (str(d["category"][i]) == "near" and float(d["delta"][i]) == 1e-1))]
    worst, n_inf = 0.0, 0
    for i in idx:
        c = case(i)
        ours, _ = values(c, DPS)
        with mp.workdps(SELF_CHECK_DPS):
            for alpha in ALPHAS:
                alt, pd = textbook(c, alpha)
                v = ours["renyi", alpha]
                if not pd:
                    n_inf += 1
                    if not mp.isinf(v):
                        raise AssertionError(f"self-check: {c.id} α={alpha}: Σ_α not PD, "
                                             f"D = {v}")
                    continue
                if mp.isinf(v):
                    raise AssertionError(f"self-check: {c.id} α={alpha}: Σ_α PD, D = inf")
                err = float(abs(v - alt) / abs(alt))
                worst = max(worst, err)
                if err > mp.mpf(10) ** (10 - DPS):
                    raise AssertionError(f"self-check: {c.id} α={alpha}: {err:.3g}")
    print(f"self-check: {len(idx)} pairs × {len(ALPHAS)} α agree with the textbook formula "
          f"to {worst:.1e}; {n_inf} not-PD Σ_α (+inf) confirmed by eigenvalues", flush=True)


# ---------------------------------------------------------------------------- main
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="d = 3 only")
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument("--jobs", type=int, default=min(2, os.cpu_count() or 1))
    args = parser.parse_args(argv)
    start = time.perf_counter()
    d = data()
    indices = [i for i in range(len(d["category"]))
               if selected(i, (3,) if args.quick else DIMS)]
    print(f"{len(indices)} cases of {PAIR_PATH.name}; {args.jobs} worker(s)", flush=True)
    if args.jobs > 1:
        with Pool(args.jobs) as pool:
            check = pool.apply_async(self_check)
            results = pool.map(compute, indices, chunksize=4)
            check.get()
    else:
        self_check()
        results = [compute(i) for i in indices]
    cols = {k: [] for k in ("case", "category", "kind1", "kind2", "dim", "dtype", "delta",
                            "name", "alpha", "ref", "ref_f64", "digits", "alpha_lmin")}
    for i, rows in zip(indices, results, strict=True):
        for name, alpha, s, f64, digits, lmin in rows:
            if digits < MIN_DIGITS:
                raise AssertionError(f"row {i} {name} α={alpha}: only {digits:.1f} digits")
            for k in ("category", "kind1", "kind2", "dim", "dtype", "delta"):
                cols[k].append(d[k][i])
            cols["case"].append(i)
            cols["name"].append(name)
            cols["alpha"].append(math.nan if alpha is None else alpha)
            cols["ref"].append(s)
            cols["ref_f64"].append(f64)
            cols["digits"].append(digits)
            cols["alpha_lmin"].append(lmin)
    out = {k: np.array(v) for k, v in cols.items()}
    out["case"] = out["case"].astype(np.int32)
    out["pair_matrix_sha256"] = np.array(hashlib.sha256(PAIR_PATH.read_bytes()).hexdigest())
    out["dps"] = np.array(DPS)
    out["check_dps"] = np.array(CHECK_DPS)
    out["ref_digits"] = np.array(REF_DIGITS)
    out["generator"] = np.array("tests/reference/make_family_reference.py")
    np.savez_compressed(args.out, **out)
    elapsed = time.perf_counter() - start
    renyi = out["name"] == "renyi"
    n_inf = int(np.sum(out["ref"] == "inf"))
    finite_lmin = out["alpha_lmin"][renyi]
    print(f"wrote {args.out} ({args.out.stat().st_size / 1e6:.2f} MB, {len(indices)} cases, "
          f"{len(out['name'])} rows) in {elapsed:.0f} s; fewest verified digits "
          f"{out['digits'].min():.1f}; {n_inf} +inf references (Rényi α = 2); smallest "
          f"|λ_min/λ_max| of Σ_α {np.min(np.abs(finite_lmin)):.2g}; smallest positive ref "
          f"{out['ref_f64'][out['ref_f64'] > 0].min():.3g}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

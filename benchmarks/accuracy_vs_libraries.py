"""Relative error of KL(P‖Q) from gaussdiv, torch.distributions and the textbook formulas.

The reference is computed with mpmath at 60 significant digits from the very floats each
method receives (every float is an exact rational, so the reference is the exact KL of those
inputs, up to 60 digits). Methods:

* gaussdiv f64: ``gaussdiv.kl`` pair by pair (unbatched arrays);
* gaussdiv f64 batched: the same pairs in one call, tiled to a batch of 12, which takes the
  batched ``np.linalg.solve`` branch of gaussdiv's triangular solve (batch > 8, d < 128);
* torch f64 / f32: ``kl_divergence(MultivariateNormal(...), MultivariateNormal(...))``;
* textbook slogdet: ``½(slogdet S2 − slogdet S1 + tr(inv(S2) S1) + Δᵀ inv(S2) Δ − d)``;
* textbook det: the same with ``log(det S2 / det S1)``;
* gaussdiv f32: ``gaussdiv.kl`` on float32 arrays (computed in float32).

Float32 columns get the case's arrays rounded to float32 and are compared with the exact KL of
*those* arrays (a separate 60-digit reference), so they are charged only for their arithmetic.

Each case holds a few random pairs; a cell is the largest relative error over them. "NEG" marks
a negative KL (impossible: the exact value is ≥ 0). Run ``python
benchmarks/accuracy_vs_libraries.py [--out FILE]``; about a minute on 2 cores.
"""

from __future__ import annotations

import argparse
import datetime
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import mpmath
import numpy as np
from _machine import describe, emit

import gaussdiv

try:
    import torch
    from torch.distributions import MultivariateNormal, kl_divergence
except ImportError:  # torch is optional: its columns are skipped
    torch = None

DIGITS = 60
PAIRS = 10
NEAR_DELTAS = tuple(10.0 ** -k for k in range(2, 13))
TILE = 12  # batch size for the "batched" gaussdiv column (> 8 selects np.linalg.solve)


@dataclass
class Case:
    """Pairs (m1, s1, m2, s2) with a leading batch axis; ``blocks`` for a block-diagonal case."""

    name: str
    m1: np.ndarray
    s1: np.ndarray
    m2: np.ndarray
    s2: np.ndarray
    blocks: np.ndarray | None = None  # index sets of the diagonal blocks, shape (nblocks, size)
    float32_ok: bool = True


# ---------------------------------------------------------------------------- reference
def _mp_cholesky(a: list[list[Any]]) -> list[list[Any]]:
    d = len(a)
    low = [[mpmath.mpf(0)] * d for _ in range(d)]
    for j in range(d):
        s = a[j][j] - mpmath.fsum(low[j][k] ** 2 for k in range(j))
        if s <= 0:
            raise ValueError("reference: matrix is not positive definite")
        low[j][j] = mpmath.sqrt(s)
        for i in range(j + 1, d):
            low[i][j] = (a[i][j] - mpmath.fdot(low[i][:j], low[j][:j])) / low[j][j]
    return low


def _mp_forward(low: list[list[Any]], b: list[Any]) -> list[Any]:
    """low⁻¹ b for a lower-triangular low."""
    x: list[Any] = []
    for i in range(len(b)):
        x.append((b[i] - mpmath.fdot(low[i][:i], x)) / low[i][i])
    return x


def reference_kl(m1: np.ndarray, s1: np.ndarray, m2: np.ndarray, s2: np.ndarray) -> Any:
    """Exact KL (to DIGITS digits) of one pair, every float input taken as the exact rational.

    KL = ½(2 Σ ln(L₂ᵢᵢ/L₁ᵢᵢ) + ‖L₂⁻¹L₁‖²_F + ‖L₂⁻¹(m1 − m2)‖² − d), all in mpmath.
    """
    d = s1.shape[-1]

    def exact(m: np.ndarray) -> list[list[Any]]:
        return [[mpmath.mpf(float(v)) for v in row] for row in m]

    l1 = _mp_cholesky(exact(s1))
    l2 = _mp_cholesky(exact(s2))
    trace = mpmath.mpf(0)
    for j in range(d):  # column j of L₂⁻¹L₁ (rows < j vanish)
        col = _mp_forward(l2, [l1[i][j] for i in range(d)])
        trace += mpmath.fsum(c * c for c in col)
    diff = [mpmath.mpf(float(a)) - mpmath.mpf(float(b)) for a, b in zip(m1, m2, strict=True)]
    w = _mp_forward(l2, diff)
    maha = mpmath.fsum(c * c for c in w)
    logdet = 2 * mpmath.fsum(mpmath.log(l2[i][i]) - mpmath.log(l1[i][i]) for i in range(d))
    return (logdet + trace + maha - d) / 2


def reference_batch(case: Case, m1: np.ndarray, s1: np.ndarray, m2: np.ndarray,
                    s2: np.ndarray) -> list[Any]:
    """Reference KL for every pair; a block-diagonal case is the sum over its blocks."""
    out = []
    for k in range(m1.shape[0]):
        if case.blocks is None:
            out.append(reference_kl(m1[k], s1[k], m2[k], s2[k]))
        else:
            out.append(mpmath.fsum(
                reference_kl(m1[k][b], s1[k][np.ix_(b, b)], m2[k][b], s2[k][np.ix_(b, b)])
                for b in case.blocks))
    return out


# ---------------------------------------------------------------------------- cases
def random_spd(rng: np.random.Generator, n: int, d: int) -> np.ndarray:
    a = rng.standard_normal((n, d, d))
    s = a @ np.swapaxes(a, -1, -2) / d + 0.5 * np.eye(d)
    return (s + np.swapaxes(s, -1, -2)) / 2  # exactly symmetric


def near_case(rng: np.random.Generator, d: int, delta: float) -> Case:
    """S1 = S2 + δE with ‖E‖₂ = 1 (E symmetric), m1 = m2: KL ≈ δ²‖…‖ from cancelling terms."""
    s2 = random_spd(rng, PAIRS, d)
    e = rng.standard_normal((PAIRS, d, d))
    e = e + np.swapaxes(e, -1, -2)
    e /= np.linalg.norm(e, ord=2, axis=(-2, -1), keepdims=True)
    s1 = s2 + delta * e
    m = rng.standard_normal((PAIRS, d))
    return Case(f"near d={d} δ=1e{round(np.log10(delta))}", m.copy(), s1, m.copy(), s2)


def vae_case(rng: np.random.Generator, d: int = 32) -> Case:
    """Float32 posterior N(μ, diag(v)) close to the prior N(0, I), as dense matrices."""
    mu = (5e-5 * rng.standard_normal((PAIRS, d))).astype(np.float32)
    var = (1 + 1e-4 * rng.standard_normal((PAIRS, d))).astype(np.float32)
    s1 = np.zeros((PAIRS, d, d), np.float32)
    s1[:, np.arange(d), np.arange(d)] = var
    s2 = np.broadcast_to(np.eye(d, dtype=np.float32), (PAIRS, d, d)).copy()
    return Case(f"VAE f32 d={d}", mu, s1, np.zeros((PAIRS, d), np.float32), s2)


def separated_case(rng: np.random.Generator, d: int) -> Case:
    return Case(f"separated d={d}", rng.standard_normal((PAIRS, d)), random_spd(rng, PAIRS, d),
                rng.standard_normal((PAIRS, d)), random_spd(rng, PAIRS, d))


def ill_conditioned_case(rng: np.random.Generator, d: int, cond: float,
                         delta: float | None) -> Case:
    """Σ₂ = U diag(logspace(0, −log₁₀ κ)) Uᵀ (random U); Σ₁ random of the same κ, or, with δ,
    Σ₁ = Σ₂ + δ Σ₂^½ E Σ₂^½ (‖E‖₂ = 1: whitened difference of size δ) and m1 = m2."""

    def spd_with_cond() -> tuple[np.ndarray, np.ndarray]:
        u, _ = np.linalg.qr(rng.standard_normal((PAIRS, d, d)))
        lam = np.logspace(0, -np.log10(cond), d)
        s = (u * lam[None, None, :]) @ np.swapaxes(u, -1, -2)
        root = (u * np.sqrt(lam)[None, None, :]) @ np.swapaxes(u, -1, -2)
        return (s + np.swapaxes(s, -1, -2)) / 2, root

    s2, root2 = spd_with_cond()
    m2 = rng.standard_normal((PAIRS, d))
    if delta is None:
        s1, _ = spd_with_cond()
        m1 = rng.standard_normal((PAIRS, d))
        name = f"ill-cond κ=1e{round(np.log10(cond))} d={d} separated"
    else:
        e = rng.standard_normal((PAIRS, d, d))
        e = e + np.swapaxes(e, -1, -2)
        e /= np.linalg.norm(e, ord=2, axis=(-2, -1), keepdims=True)
        s1 = s2 + delta * (root2 @ e @ root2)
        s1 = (s1 + np.swapaxes(s1, -1, -2)) / 2
        m1 = m2.copy()
        name = f"ill-cond κ=1e{round(np.log10(cond))} d={d} near δ=1e{round(np.log10(delta))}"
    return Case(name, m1, s1, m2, s2, float32_ok=False)


def scale_case(rng: np.random.Generator, d: int = 400, pairs: int = 2) -> Case:
    """Variances 1e±150: 2×2 blocks at scales 10^U(−150, 150), rows/columns permuted.

    |Σ| over- or underflows float64, so det() fails; the KL itself is moderate. Block-diagonal
    (up to the permutation) so the 60-digit reference is a sum over the blocks.
    """
    nb = d // 2
    perm = rng.permutation(d)
    blocks = np.argsort(perm).reshape(nb, 2)  # where each original block lands after permuting
    m1 = np.empty((pairs, d))
    m2 = np.empty((pairs, d))
    s1 = np.zeros((pairs, d, d))
    s2 = np.zeros((pairs, d, d))
    for k in range(pairs):
        scale = 10.0 ** rng.uniform(-150, 150, nb)
        for which, s in ((0, s1), (1, s2)):
            blk = random_spd(rng, nb, 2) * scale[:, None, None]
            for i in range(nb):
                s[k, 2 * i:2 * i + 2, 2 * i:2 * i + 2] = blk[i]
            m = (m1, m2)[which]
            m[k] = np.repeat(np.sqrt(scale), 2) * rng.standard_normal(d)
    s1 = s1[:, perm][:, :, perm]
    s2 = s2[:, perm][:, :, perm]
    m1, m2 = m1[:, perm], m2[:, perm]
    return Case(f"scale 1e±150 d={d}", m1, s1, m2, s2, blocks=blocks, float32_ok=False)


def all_cases(rng: np.random.Generator) -> list[Case]:
    cases = [near_case(rng, d, delta) for d in (8, 32) for delta in NEAR_DELTAS]
    cases.append(vae_case(rng))
    cases += [separated_case(rng, d) for d in (8, 32)]
    cases += [ill_conditioned_case(rng, 32, 1e10, delta) for delta in (None, 1e-6)]
    cases.append(scale_case(rng))
    return cases


# ---------------------------------------------------------------------------- methods
def gd_pairwise(m1: Any, s1: Any, m2: Any, s2: Any) -> np.ndarray:
    return np.array([gaussdiv.kl(gaussdiv.Gaussian(m1[k], s1[k]), gaussdiv.Gaussian(m2[k], s2[k]))
                     for k in range(m1.shape[0])])


def gd_batched(m1: Any, s1: Any, m2: Any, s2: Any) -> np.ndarray:
    n = m1.shape[0]
    reps = -(-TILE // n)

    def tile(a: np.ndarray) -> np.ndarray:
        return np.concatenate([a] * reps)

    out = gaussdiv.kl(gaussdiv.Gaussian(tile(m1), tile(s1)), gaussdiv.Gaussian(tile(m2), tile(s2)))
    return np.asarray(out)[:n]


def torch_kl(m1: Any, s1: Any, m2: Any, s2: Any) -> np.ndarray:
    t = [torch.from_numpy(np.ascontiguousarray(a)) for a in (m1, s1, m2, s2)]
    p = MultivariateNormal(t[0], covariance_matrix=t[1])
    q = MultivariateNormal(t[2], covariance_matrix=t[3])
    return kl_divergence(p, q).numpy()


def textbook_slogdet(m1: Any, s1: Any, m2: Any, s2: Any) -> np.ndarray:
    d = s1.shape[-1]
    inv2 = np.linalg.inv(s2)
    _, ld1 = np.linalg.slogdet(s1)
    _, ld2 = np.linalg.slogdet(s2)
    diff = m2 - m1
    trace = np.trace(inv2 @ s1, axis1=-2, axis2=-1)
    maha = np.einsum("...i,...ij,...j->...", diff, inv2, diff)
    return 0.5 * (ld2 - ld1 + trace + maha - d)


def textbook_det(m1: Any, s1: Any, m2: Any, s2: Any) -> np.ndarray:
    d = s1.shape[-1]
    inv2 = np.linalg.inv(s2)
    diff = m2 - m1
    trace = np.trace(inv2 @ s1, axis1=-2, axis2=-1)
    maha = np.einsum("...i,...ij,...j->...", diff, inv2, diff)
    with np.errstate(all="ignore"):
        return 0.5 * (np.log(np.linalg.det(s2) / np.linalg.det(s1)) + trace + maha - d)


def method_table() -> list[tuple[str, Any, Callable[..., np.ndarray] | None]]:
    """(column name, dtype fed, function); None where the library is missing."""
    have_torch = torch is not None
    return [
        ("gaussdiv f64", np.float64, gd_pairwise),
        ("gaussdiv f64 batched", np.float64, gd_batched),
        ("torch f64", np.float64, torch_kl if have_torch else None),
        ("textbook slogdet f64", np.float64, textbook_slogdet),
        ("textbook det f64", np.float64, textbook_det),
        ("gaussdiv f32", np.float32, gd_pairwise),
        ("torch f32", np.float32, torch_kl if have_torch else None),
    ]


# ---------------------------------------------------------------------------- evaluation
def cell(values: np.ndarray, refs: list[Any]) -> tuple[str, bool]:
    """Largest relative error over the pairs, formatted; and whether any value was negative."""
    worst = mpmath.mpf(0)
    negative = bool(np.any(values < 0))
    abs_only = []
    for v, r in zip(values, refs, strict=True):
        if not np.isfinite(v):
            return ("nan" if np.isnan(v) else "inf"), negative
        if r == 0:
            abs_only.append(abs(float(v)))
            continue
        worst = max(worst, abs(mpmath.mpf(float(v)) - r) / abs(r))
    if len(abs_only) == len(refs):
        text = "0 (= exact 0)" if max(abs_only) == 0 else f"got {max(abs_only):.1e}, exact 0"
    else:
        text = f"{float(worst):.1e}"
        if abs_only and max(abs_only) > 0:
            text += f" (got {max(abs_only):.1e} where exact 0)"
    if negative:
        text = f"**{text} NEG**"
    return text, negative


def evaluate(case: Case) -> tuple[list[str], str, list[str]]:
    """Cells for one case, the reference KL range, and notes (errors, negatives)."""
    refs: dict[Any, list[Any]] = {}
    arrays: dict[Any, tuple[np.ndarray, ...]] = {}
    for dtype in (np.float64, np.float32):
        if dtype == np.float32 and not case.float32_ok:
            continue
        arrs = tuple(np.ascontiguousarray(a, dtype=dtype)
                     for a in (case.m1, case.s1, case.m2, case.s2))
        arrays[dtype] = arrs
        if dtype == np.float32 and all(np.array_equal(a, b) for a, b in
                                       zip(arrs, arrays[np.float64], strict=True)):
            refs[dtype] = refs[np.float64]  # float32 inputs, upcast exactly
        else:
            refs[dtype] = reference_batch(case, *arrs)
    cells, notes = [], []
    for name, dtype, fn in method_table():
        if fn is None:
            cells.append("—")
            continue
        if dtype not in arrays:
            cells.append("n/a")
            continue
        try:
            values = np.asarray(fn(*arrays[dtype]), dtype=np.float64)
        except Exception as exc:  # a library refusing the input is a result too
            cells.append(f"error: {type(exc).__name__}")
            notes.append(f"{case.name}, {name}: {type(exc).__name__}: {str(exc)[:120]}")
            continue
        text, negative = cell(values, refs[dtype])
        cells.append(text)
        if negative:
            notes.append(f"{case.name}, {name}: negative KL {values.min():.3g}")
    r = [float(x) for x in refs[np.float64]]
    kl_range = f"{min(r):.2g}" if np.isclose(min(r), max(r), rtol=0.5) else \
        f"{min(r):.2g} … {max(r):.2g}"
    return cells, kl_range, notes


def self_check(case: Case) -> str:
    """Agreement of the reference at DIGITS and DIGITS + 20 digits on the hardest case."""
    arrs = (case.m1, case.s1, case.m2, case.s2)
    low = reference_batch(case, *arrs)
    with mpmath.workdps(DIGITS + 20):
        high = reference_batch(case, *arrs)
        worst = max(abs(a - b) / abs(b) for a, b in zip(low, high, strict=True))
    return (f"Reference self-check on \"{case.name}\": {DIGITS} vs {DIGITS + 20} digits agree "
            f"to a relative {float(worst):.1e}.")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", metavar="FILE", help="also write the markdown to FILE")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    mpmath.mp.dps = DIGITS
    machine = describe(torch, None)
    started = time.perf_counter()
    rng = np.random.default_rng(args.seed)
    cases = all_cases(rng)
    names = [m[0] for m in method_table()]
    table = ["| case | KL (exact) | " + " | ".join(names) + " |",
             "|---|---:|" + "---:|" * len(names)]
    notes: list[str] = []
    for case in cases:
        cells, kl_range, case_notes = evaluate(case)
        table.append(f"| {case.name} | {kl_range} | " + " | ".join(cells) + " |")
        print(table[-1], file=sys.stderr, flush=True)
        notes += case_notes
    hardest = next(c for c in cases if c.name == "near d=32 δ=1e-12")
    check = self_check(hardest)
    elapsed = time.perf_counter() - started

    command = "python benchmarks/accuracy_vs_libraries.py " + " ".join(
        sys.argv[1:] if argv is None else argv)
    out = [
        "## KL accuracy: relative error against a 60-digit reference",
        "",
        f"Run {datetime.datetime.now().isoformat(timespec='seconds')} as `{command.strip()}` "
        f"({elapsed:.0f} s).",
        "",
        *machine,
        "",
        f"Each cell: the largest |computed − exact| / exact over the case's pairs ({PAIRS} pairs, "
        "2 for the d=400 case). Float32 columns are compared with the exact KL of the "
        "float32-rounded inputs. **NEG** = a negative KL came out. \"n/a\": float32 cannot "
        "represent or factor the inputs. \"near\" cases: S1 = S2 + δE with ‖E‖₂ = 1, m1 = m2. "
        "\"VAE f32\": N(μ, diag v) against N(0, I) given as dense float32 matrices, "
        "μ ~ 5e-5, v − 1 ~ 1e-4. \"ill-cond\": eigenvalues of S2 (and S1) log-spaced over 10 "
        "decades; its \"near\" variant is S1 = S2 + δ S2^½ E S2^½, m1 = m2. \"scale\": "
        "permuted 2×2 blocks with variances 10^U(−150, 150).",
        "",
        *table,
        "",
        check,
    ]
    if notes:
        out += ["", "Notes:", "", *[f"- {n}" for n in notes]]
    emit(out, args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

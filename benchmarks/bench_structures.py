"""Time and peak memory of gaussdiv.kl for each covariance structure, and how they grow.

Each measurement builds both Gaussians from arrays (validation, private copies, factorisations)
and calls ``gaussdiv.kl``, as a user pays it, and runs in a fresh subprocess so that one
measurement's allocations cannot raise another's peak. In the subprocess:

1. the input arrays are generated (not measured; their total size is the "input MB" column);
2. the same pair is run once at a tiny size, so lazy imports and thread pools are set up;
3. memory: one cold call under ``tracemalloc`` (NumPy registers its buffers with it, so the
   traced peak is every array the call allocated, the result and temporaries included), and the
   resident-set high-water mark over that call: ``/proc/self/clear_refs`` resets it, then
   VmHWM after the call minus VmRSS before ("RSS Δ"; it also sees memory that tracemalloc does
   not, such as LAPACK workspaces and torch tensors). ``ru_maxrss`` is the fallback where the
   reset is unavailable; it cannot serve by default, as a child inherits its parent's peak;
4. time: warm calls, timeit-style (calls per run grow until a run lasts ``--min-time``), the
   median of ``--repeat`` runs, per call.

Sections: (a) diagonal pairs up to d = 10⁷, (b) low-rank pairs up to d = 10⁶ and ranks k,
(c) Kronecker pairs by their factors against the same pairs densified, (d) mixed structures,
(e) a diagonal Gaussian posed as a dense one (and torch.distributions, if importable),
(f) structured pairs whose fast terms cancel, around the dense-refinement limit d = 2048.
Growth exponents are least-squares slopes of log(time) and log(peak) against log(size).

Run ``python benchmarks/bench_structures.py`` (full grid, ~5-10 min on 2 cores), ``--quick``
for a small grid (~2 min), ``--out FILE`` to also write the markdown, ``--only a,c`` for some
sections, ``--threads 1`` to run the workers with single-threaded BLAS (and torch): on a
machine whose cores are busy with other work, multithreaded OpenBLAS makes even 8×8 solves
take milliseconds, which swamps the growth being measured.
"""

from __future__ import annotations

import argparse
import datetime
import gc
import importlib.util
import json
import math
import os
import resource
import statistics
import subprocess
import sys
import time
import tracemalloc
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from _machine import describe, emit, numpy_blas_threads

MB = 1e6
WORKER_TIMEOUT_S = 600


# --------------------------------------------------------------------------- the cases
@dataclass(frozen=True)
class Case:
    """One measurement: a pair of structures (``family``) at one size."""

    section: str
    family: str
    d: int
    k: int = 0  # low-rank rank
    p: int = 0  # Kronecker factor sizes (p = q here)

    def params(self) -> dict[str, Any]:
        return {"section": self.section, "family": self.family, "d": self.d, "k": self.k,
                "p": self.p}


def _spd(rng: np.random.Generator, n: int) -> np.ndarray:
    x = rng.standard_normal((n, n))
    return x @ x.T / n + 0.5 * np.eye(n)


def build_inputs(case: Case, seed: int) -> dict[str, Any]:
    """The arrays a user would hold for this pair (generated outside the measurement)."""
    rng = np.random.default_rng(seed)
    d, k, p = case.d, case.k, case.p
    fam = case.family
    if fam == "diag(logvar)|standard":
        return {"m1": rng.standard_normal(d), "lv1": rng.normal(0.0, 0.5, d)}
    near = fam.endswith(" near")
    sides = ("diag", "diag") if fam.startswith("torch") else fam.removesuffix(" near").split("|")
    x: dict[str, Any] = {}
    for i, side in zip("12", sides, strict=True):
        x["m" + i] = rng.standard_normal(d)
        if side in ("diag", "lowrank", "dense(diag)"):
            v = rng.uniform(0.5, 2.0, d)
            if side == "dense(diag)":
                x["s" + i] = np.diag(v)
            else:
                x["v" + i] = v
        if side == "lowrank":
            scale = 1e-4 if near else 1 / math.sqrt(k)
            x["w" + i] = scale * rng.standard_normal((d, k))
        if side == "kron":
            x["a" + i], x["b" + i] = _spd(rng, p), _spd(rng, p)
        if side == "dense(kron)":
            x["s" + i] = np.kron(_spd(rng, p), _spd(rng, p))
    if near:
        # P ≈ Q: same mean and variances; Q's factor 1e-4 in size, and for two low-rank sides
        # P's factor 1e-7 away from Q's, so that the fast trace and log-ratio cancel.
        x["m2"], x["v2"] = x["m1"], x["v1"]
        if "w1" in x:
            x["w1"] = x["w2"] + 1e-7 * rng.standard_normal((d, k))
    if fam.startswith("torch"):
        import torch

        x = {"m1": torch.from_numpy(x["m1"]), "m2": torch.from_numpy(x["m2"]),
             "s1": torch.from_numpy(np.sqrt(x["v1"])), "s2": torch.from_numpy(np.sqrt(x["v2"]))}
        if fam == "torch MVN(diag)|MVN(diag)":
            x["s1"], x["s2"] = torch.diag(x["s1"] ** 2), torch.diag(x["s2"] ** 2)
    return x


def pair_function(case: Case, x: dict[str, Any]) -> tuple[Callable[[], Any], Callable[[], Any]]:
    """Two no-argument functions that build both Gaussians from ``x``: one returns their KL,
    the other ``gaussdiv.kl_terms`` (same work; its terms tell whether the cancellation test
    fired) or, for torch, the KL again."""
    import gaussdiv

    g = gaussdiv.Gaussian

    def diag(i: str) -> Any:
        return g.diag(x["m" + i], var=x["v" + i])

    def lowrank(i: str) -> Any:
        return g.lowrank(x["m" + i], x["w" + i], x["v" + i])

    def kron(i: str) -> Any:
        return g.kronecker(x["m" + i], x["a" + i], x["b" + i])

    def dense(i: str) -> Any:
        return g(x["m" + i], x["s" + i])

    makers = {"diag": diag, "lowrank": lowrank, "kron": kron, "dense(kron)": dense,
              "dense(diag)": dense}
    fam = case.family
    if fam.startswith("torch"):
        from torch.distributions import Independent, MultivariateNormal, Normal, kl_divergence

        if fam == "torch Independent(Normal)|Independent(Normal)":
            def run() -> Any:
                return kl_divergence(Independent(Normal(x["m1"], x["s1"]), 1),
                                     Independent(Normal(x["m2"], x["s2"]), 1))
        else:
            def run() -> Any:
                return kl_divergence(MultivariateNormal(x["m1"], covariance_matrix=x["s1"]),
                                     MultivariateNormal(x["m2"], covariance_matrix=x["s2"]))
        return run, run
    if fam == "diag(logvar)|standard":
        def build() -> tuple[Any, Any]:
            return g.diag(x["m1"], logvar=x["lv1"]), g.standard(case.d)
    else:
        first, second = fam.removesuffix(" near").split("|")

        def build() -> tuple[Any, Any]:
            return makers[first]("1"), makers[second]("2")
    return (lambda: gaussdiv.kl(*build())), (lambda: gaussdiv.kl_terms(*build()))


def cancellation_test_fired(terms: Any) -> bool | None:
    """Whether gaussdiv judged the fast covariance terms cancelling (its spectral/dense route).

    Recomputes the library's criterion from the public terms: (tr − d) + ln-ratio below
    ``gaussdiv.execution.refine.CANCELLATION_RATIO`` × (tr + d + |ln-ratio|). None if unknown.
    """
    import gaussdiv
    from gaussdiv.execution import refine

    ratio = getattr(refine, "CANCELLATION_RATIO", None)
    if ratio is None or not isinstance(terms, gaussdiv.KLTerms):
        return None
    trace, logdet, d = np.asarray(terms.trace), np.asarray(terms.logdet_ratio), terms.dim
    return bool(np.any((trace - d) + logdet < ratio * (trace + d + np.abs(logdet))))


def input_bytes(x: dict[str, Any]) -> int:
    total = 0
    for a in x.values():
        total += a.nbytes if hasattr(a, "nbytes") else a.element_size() * a.nelement()
    return total


# --------------------------------------------------------------------------- the worker
def _status_bytes(field_name: str) -> int | None:
    """A memory line of /proc/self/status (VmRSS, VmHWM) in bytes; None where unavailable."""
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith(field_name + ":"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def _reset_peak_rss() -> bool:
    """Reset the resident-set high-water mark (Linux ≥ 4.0); False where that is not possible."""
    try:
        with open("/proc/self/clear_refs", "w", encoding="ascii") as f:
            f.write("5")
        return True
    except OSError:
        return False


def _tiny(case: Case) -> Case:
    if case.p:
        return Case(case.section, case.family, 16, case.k, 4)
    return Case(case.section, case.family, 64, case.k, 0)


def worker(case: Case, seed: int, repeat: int, min_time: float) -> dict[str, Any]:
    """Measure one case in this (fresh) process; returns a JSON-able dict."""
    blas_threads = numpy_blas_threads()
    if case.family.startswith("torch"):
        import torch

        if blas_threads:
            torch.set_num_threads(blas_threads)
    pair_function(_tiny(case), build_inputs(_tiny(case), seed))[0]()  # imports, thread pools
    x = build_inputs(case, seed)
    fn, terms_fn = pair_function(case, x)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")

    # Memory: one cold call. The resident-set high-water mark is reset first (clear_refs);
    # ru_maxrss cannot serve here, as it keeps the parent's peak inherited at exec.
    gc.collect()
    reset = _reset_peak_rss()
    rss_before = _status_bytes("VmRSS")
    maxrss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    tracemalloc.start()
    t0 = time.perf_counter()
    terms = terms_fn()
    cold = time.perf_counter() - t0
    traced_peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    hwm = _status_bytes("VmHWM")
    if reset and hwm is not None and rss_before is not None:
        rss_delta = hwm - rss_before
    else:  # only meaningful when this call raised the process's peak
        rss_delta = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 - maxrss_before
    value = float(terms.kl if hasattr(terms, "logdet_ratio") else terms)
    fired = cancellation_test_fired(terms)
    del terms

    # Time: warm calls. Slow cases get two single-call runs (> 3 s cold) or one (> 10 s).
    if cold > 3.0:
        number, runs = 1, min(repeat, 1 if cold > 10.0 else 2)
    else:
        t0 = time.perf_counter()
        fn()
        single = time.perf_counter() - t0
        number, runs = max(1, math.ceil(min_time / max(single, 1e-9))), repeat
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        for _ in range(number):
            fn()
        times.append((time.perf_counter() - t0) / number)
    return {**case.params(), "time": statistics.median(times), "best": min(times),
            "cold": cold, "traced_mb": traced_peak / MB, "rss_mb": rss_delta / MB,
            "rss_exact": bool(reset), "input_mb": input_bytes(x) / MB, "kl": value,
            "cancel": fired, "calls": number * runs, "load": load,
            "blas_threads": blas_threads}


def measure(case: Case, args: argparse.Namespace) -> dict[str, Any] | None:
    """Run one case in a fresh subprocess; None (with a note on stderr) if it failed."""
    cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", json.dumps(case.params()),
           "--seed", str(args.seed), "--repeat", str(args.repeat), "--min-time",
           str(args.min_time)]
    env = dict(os.environ)
    if args.threads:
        for name in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
            env[name] = str(args.threads)
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=WORKER_TIMEOUT_S,
                              check=False, env=env)
    except subprocess.TimeoutExpired:
        print(f"  {case}: timed out after {WORKER_TIMEOUT_S} s", file=sys.stderr)
        return None
    if done.returncode != 0:
        tail = done.stderr.strip().splitlines()[-1:] or ["(no output)"]
        print(f"  {case}: failed: {tail[0]}", file=sys.stderr)
        return None
    result = json.loads(done.stdout.strip().splitlines()[-1])
    print(f"  {case.family:<45} d={case.d:<9} k={case.k:<3} p={case.p:<4} "
          f"{fmt_time(result['time']):>9}  traced {result['traced_mb']:9.1f} MB  "
          f"RSS Δ {result['rss_mb']:9.1f} MB  input {result['input_mb']:8.1f} MB",
          file=sys.stderr, flush=True)
    return result


# --------------------------------------------------------------------------- the grid
def torch_available() -> bool:
    """Whether torch is installed (not imported here: the parent's peak would reach workers)."""
    return importlib.util.find_spec("torch") is not None


@dataclass
class Grid:
    diag_dims: tuple[int, ...]
    lowrank_dims: tuple[int, ...]
    ranks: tuple[int, ...]
    rank_dim: int
    kron_sizes: tuple[int, ...]
    kron_dense_max: int
    mixed_sides: tuple[int, ...]
    dense_dims: tuple[int, ...]
    near_dims: tuple[int, ...]


FULL = Grid(diag_dims=(10**3, 10**4, 10**5, 10**6, 10**7),
            lowrank_dims=(10**3, 10**4, 10**5, 10**6), ranks=(4, 16, 64), rank_dim=10**5,
            kron_sizes=(8, 16, 32, 64, 128, 256), kron_dense_max=32,
            mixed_sides=(64, 128, 256), dense_dims=(64, 256, 1024),
            near_dims=(1024, 2048, 2049))
QUICK = Grid(diag_dims=(10**3, 10**4, 10**5), lowrank_dims=(10**3, 10**4), ranks=(4, 16),
             rank_dim=10**4, kron_sizes=(8, 16), kron_dense_max=16, mixed_sides=(32,),
             dense_dims=(64, 256), near_dims=(256,))


def make_cases(grid: Grid, sections: set[str], with_torch: bool) -> list[Case]:
    cases: list[Case] = []
    if "a" in sections:
        for fam in ("diag|diag", "diag(logvar)|standard"):
            cases += [Case("a", fam, d) for d in grid.diag_dims]
    if "b" in sections:
        cases += [Case("b", "lowrank|lowrank", d, 16) for d in grid.lowrank_dims]
        cases += [Case("b", "lowrank|lowrank", grid.rank_dim, k) for k in grid.ranks
                  if not (k == 16 and grid.rank_dim in grid.lowrank_dims)]
    if "c" in sections:
        cases += [Case("c", "kron|kron", p * p, 0, p) for p in grid.kron_sizes]
        cases += [Case("c", "dense(kron)|dense(kron)", p * p, 0, p) for p in grid.kron_sizes
                  if p <= grid.kron_dense_max]
    if "d" in sections:
        for fam in ("diag|lowrank", "lowrank|diag", "kron|diag", "diag|kron", "lowrank|kron"):
            cases += [Case("d", fam, p * p, 16 if "lowrank" in fam else 0, p)
                      for p in grid.mixed_sides]
    if "e" in sections:
        families = ["diag|diag", "dense(diag)|dense(diag)"]
        if with_torch:
            families += ["torch Independent(Normal)|Independent(Normal)",
                         "torch MVN(diag)|MVN(diag)"]
        cases += [Case("e", fam, d) for fam in families for d in grid.dense_dims]
    if "f" in sections:
        for fam in ("diag|lowrank", "lowrank|lowrank near"):
            cases += [Case("f", fam, d, 16) for d in grid.near_dims]
    return cases


# --------------------------------------------------------------------------- reporting
def fmt_time(t: float) -> str:
    if t < 1e-3:
        return f"{t * 1e6:.0f} µs"
    if t < 1:
        return f"{t * 1e3:.1f} ms"
    return f"{t:.2f} s"


def fmt_mb(x: float) -> str:
    if abs(x) < 0.1:
        return f"{x:.3f}"
    return f"{x:.1f}" if abs(x) < 1000 else f"{x:,.0f}"


def slope(xs: list[float], ys: list[float]) -> float | None:
    """Least-squares slope of log y against log x (None with fewer than two usable points)."""
    pts = [(math.log(a), math.log(b)) for a, b in zip(xs, ys, strict=True) if a > 0 and b > 0]
    if len(pts) < 2:
        return None
    return float(np.polyfit([a for a, _ in pts], [b for _, b in pts], 1)[0])


def fmt_slope(s: float | None) -> str:
    return "—" if s is None else f"{s:.2f}"


def growth(rows: list[dict[str, Any]], key: str, expected: str, tail: int = 3) -> str:
    """Log-log slopes of time (median, best) and traced peak against ``key``: over all points,
    and over the largest ``tail`` (where fixed per-call costs no longer dominate)."""
    rows = sorted(rows, key=lambda r: r[key])
    xs = [float(r[key]) for r in rows]

    def slopes(field_name: str) -> str:
        ys = [r[field_name] for r in rows]
        text = fmt_slope(slope(xs, ys))
        if len(rows) > tail:
            text += f" ({fmt_slope(slope(xs[-tail:], ys[-tail:]))} over the largest {tail})"
        return text

    return (f"exponent in {key} over {len(rows)} points: time {slopes('time')} median, "
            f"{slopes('best')} best; traced peak {slopes('traced_mb')} "
            f"(documented: {expected})")


HEAD = ("| pair | d | k | time (median) | best | traced peak MB | RSS Δ MB | input MB "
        "| peak / input | cancel test |\n|---|---:|---:|---:|---:|---:|---:|---:|---:|:-:|")
HEAD_KL = HEAD.replace("| cancel test |\n", "| cancel test | KL |\n") + "---:|"


def both(r: dict[str, Any]) -> str:
    return f"{fmt_time(r['time'])} / {fmt_time(r['best'])}"


def ratios(num: dict[str, Any], den: dict[str, Any]) -> str:
    return f"{num['time'] / den['time']:,.0f}× / {num['best'] / den['best']:,.0f}×"


def fmt_cancel(r: dict[str, Any]) -> str:
    return {True: "fired", False: "—", None: "?"}[r.get("cancel")]


def row(r: dict[str, Any], with_kl: bool = False) -> str:
    ratio = r["traced_mb"] / r["input_mb"] if r["input_mb"] else float("nan")
    line = (f"| {r['family'].replace('|', '‖')} | {r['d']:,} | {r['k'] or '—'} | "
            f"{fmt_time(r['time'])} | {fmt_time(r['best'])} | {fmt_mb(r['traced_mb'])} | "
            f"{fmt_mb(r['rss_mb'])} | {fmt_mb(r['input_mb'])} | {ratio:.2f} | {fmt_cancel(r)} |")
    return line + (f" {r['kl']:.6g} |" if with_kl else "")


def pick(results: list[dict[str, Any]], section: str, family: str | None = None,
         **where: int) -> list[dict[str, Any]]:
    return [r for r in results if r["section"] == section
            and (family is None or r["family"] == family)
            and all(r[k] == v for k, v in where.items())]


def report(results: list[dict[str, Any]], grid: Grid, with_torch: bool) -> list[str]:
    out: list[str] = []
    sec = pick(results, "a")
    if sec:
        out += ["### (a) Diagonal pairs, documented O(d)", "", HEAD]
        out += [row(r) for r in sec]
        out.append("")
        for fam in ("diag|diag", "diag(logvar)|standard"):
            rows = pick(results, "a", fam)
            if rows:
                out.append(f"- {fam.replace('|', '‖')}: "
                           f"{growth(rows, 'd', 'time 1, memory 1')}")
        out.append("")
    sec = pick(results, "b")
    if sec:
        out += ["### (b) Low-rank plus diagonal pairs, documented O(d k²)", "", HEAD]
        out += [row(r) for r in sorted(sec, key=lambda r: (r["k"] != 16, r["d"], r["k"]))]
        out.append("")
        rows = pick(results, "b", k=16)
        if rows:
            out.append(f"- k = 16, growth in d: {growth(rows, 'd', 'time 1, memory 1')}")
        rows = pick(results, "b", d=grid.rank_dim)
        if rows:
            out.append(f"- d = {grid.rank_dim:,}, growth in k: "
                       f"{growth(rows, 'k', 'time 2, memory 1', tail=2)}")
        out.append("")
    sec = pick(results, "c")
    if sec:
        out += ["### (c) Kronecker pairs by their factors, against the same pairs densified",
                "", "Documented O(p³ + q³ + d) by the factors; the densified pair is "
                "`Gaussian(mean, np.kron(A, B))`, O(d³) time and O(d²) memory. Times are "
                "median / best; ratios dense / Kronecker.", "",
                "| p = q | d | Kronecker time | traced MB | RSS Δ MB | input MB "
                "| dense time | traced MB | RSS Δ MB | input MB | time ratio | peak ratio "
                "| dense cancel test |",
                "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|:-:|"]
        for r in pick(results, "c", "kron|kron"):
            dense = pick(results, "c", "dense(kron)|dense(kron)", p=r["p"])
            if dense:
                dn = dense[0]
                extra = (f"{both(dn)} | {fmt_mb(dn['traced_mb'])} | {fmt_mb(dn['rss_mb'])} | "
                         f"{fmt_mb(dn['input_mb'])} | {ratios(dn, r)} | "
                         f"{dn['traced_mb'] / r['traced_mb']:,.0f}× | {fmt_cancel(dn)}")
            else:
                extra = f"not run (p > {grid.kron_dense_max}) | | | | | |"
            out.append(f"| {r['p']} | {r['d']:,} | {both(r)} | {fmt_mb(r['traced_mb'])} | "
                       f"{fmt_mb(r['rss_mb'])} | {fmt_mb(r['input_mb'])} | {extra} |")
        out.append("")
        out.append(f"- Densified pairs run up to p = {grid.kron_dense_max} only, to bound the "
                   "run time: their cost grows as d³ (extrapolate with the exponent below).")
        for fam, expected in (("kron|kron", "time p³ + d = d^1.5, memory d^1"),
                              ("dense(kron)|dense(kron)", "time 3, memory 2")):
            rows = pick(results, "c", fam)
            if rows:
                out.append(f"- {fam.replace('|', '‖')}: {growth(rows, 'd', expected)}")
        out.append("")
    sec = pick(results, "d")
    if sec:
        out += ["### (d) Mixed pairs (k = 16 for the low-rank side, p = q = √d for the "
                "Kronecker side)", "", HEAD]
        out += [row(r) for r in sec]
        out.append("")
        for fam in dict.fromkeys(r["family"] for r in sec):
            expected = ("time p³ + d (k + p) = d^1.5, memory 1" if "kron" in fam
                        else "time 1 (d k²), memory 1")
            out.append(f"- {fam.replace('|', '‖')}: "
                       f"{growth(pick(results, 'd', fam), 'd', expected)}")
        out.append("")
    sec = pick(results, "e")
    if sec:
        out += ["### (e) A diagonal Gaussian posed as a dense one", "",
                "`Gaussian.diag(m, var=v)` against `Gaussian(m, np.diag(v))`, same arrays."
                + (" torch: `Independent(Normal(m, √v), 1)` against "
                   "`MultivariateNormal(m, covariance_matrix=diag(v))`, "
                   "default argument validation, tensors shared with the NumPy arrays."
                   if with_torch else "")
                + " Times are median / best; ratios dense / diagonal.", "",
                "| d | gaussdiv diag | gaussdiv dense | ratio | diag traced MB "
                "| dense traced MB | dense cancel test | torch Independent(Normal) "
                "| torch MVN(diag) | torch ratio | torch RSS Δ MB (Ind. / MVN) |",
                "|---:|---:|---:|---:|---:|---:|:-:|---:|---:|---:|---:|"]
        for d in grid.dense_dims:
            got = {r["family"]: r for r in pick(results, "e", d=d)}
            dg, dn = got.get("diag|diag"), got.get("dense(diag)|dense(diag)")
            ti = got.get("torch Independent(Normal)|Independent(Normal)")
            tm = got.get("torch MVN(diag)|MVN(diag)")
            if dg is None or dn is None:
                continue
            cells = [f"{d:,}", both(dg), both(dn), ratios(dn, dg), fmt_mb(dg["traced_mb"]),
                     fmt_mb(dn["traced_mb"]), fmt_cancel(dn)]
            cells += [both(ti) if ti else "—", both(tm) if tm else "—",
                      ratios(tm, ti) if ti and tm else "—",
                      f"{fmt_mb(ti['rss_mb'])} / {fmt_mb(tm['rss_mb'])}" if ti and tm else "—"]
            out.append("| " + " | ".join(cells) + " |")
        out.append("")
        if with_torch:
            out.append("- torch.distributions registers no KL for Independent(Normal) against "
                       "MultivariateNormal (`kl_divergence` raises NotImplementedError), so a "
                       "diagonal posterior against a full-covariance prior must be densified "
                       "there; gaussdiv pairs any two structures.")
        else:
            out.append("- torch is not importable here: its columns are empty.")
        out.append("")
    sec = pick(results, "f")
    if sec:
        from gaussdiv.relations import dense

        limit = getattr(dense, "DENSE_EXACT_MAX_DIM", "?")
        out += ["### (f) Structured pairs whose fast terms cancel", "",
                "Where the cancellation test fires, diag‖lowrank and lowrank‖lowrank pairs are "
                "re-evaluated by the low-rank relation's exact route "
                "(`gaussdiv.relations.lowrank.near_identical_excess`, O(d k²), no d×d matrix, "
                "any d); other mixed pairs by the dense relation from the whitened double-double "
                f"difference when d ≤ DENSE_EXACT_MAX_DIM = {limit}. "
                "diag‖lowrank: the section (d) inputs (v ∈ [0.5, 2], W of scale 1/√k), a "
                "well-separated pair (KL ≈ d) on which the test fires all the same. "
                "lowrank‖lowrank near: same mean and variances, factors of scale 1e-4 and "
                "1e-7 apart (P ≈ Q).", "", HEAD_KL]
        out += [row(r, with_kl=True) for r in sec]
        out.append("")
    return out


def load_lines(results: list[dict[str, Any]]) -> list[str]:
    lines = []
    loads = [r["load"] for r in results if not math.isnan(r["load"])]
    if loads:
        lines.append(f"- 1-min load average when each measurement started: {min(loads):.1f} to "
                     f"{max(loads):.1f} (median {statistics.median(loads):.1f})")
    threads = sorted({r["blas_threads"] for r in results if r.get("blas_threads")})
    if threads:
        lines.append(f"- BLAS threads in the measuring subprocesses: "
                     f"{', '.join(map(str, threads))}")
    return lines


def torch_note() -> str:
    """What torch says when asked for KL(Independent(Normal) ‖ MultivariateNormal)."""
    try:
        import torch
        from torch.distributions import Independent, MultivariateNormal, Normal, kl_divergence
    except ImportError:
        return "torch not importable"
    p = Independent(Normal(torch.zeros(2), torch.ones(2)), 1)
    q = MultivariateNormal(torch.zeros(2), covariance_matrix=torch.eye(2))
    try:
        kl_divergence(p, q)
    except NotImplementedError as e:
        return f"NotImplementedError: {e}"
    return "supported"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small grid (about a minute)")
    parser.add_argument("--out", type=Path, help="also write the markdown to this file")
    parser.add_argument("--only", default="abcdef", help="sections to run, e.g. 'a,c'")
    parser.add_argument("--repeat", type=int, default=5, help="timed runs per case (median)")
    parser.add_argument("--min-time", type=float, default=0.2,
                        help="seconds per timed run (calls per run grow to reach it)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=0,
                        help="BLAS (and torch) threads in the workers; default: NumPy's own")
    parser.add_argument("--json", type=Path, help="also write the raw measurements (JSON)")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.worker:
        case = Case(**json.loads(args.worker))
        print(json.dumps(worker(case, args.seed, args.repeat, args.min_time)))
        return

    grid = QUICK if args.quick else FULL
    sections = {c for c in args.only if c in "abcdef"}
    with_torch = torch_available()
    cases = make_cases(grid, sections, with_torch)
    started = time.perf_counter()
    print(f"{len(cases)} measurements, one subprocess each", file=sys.stderr)
    results = [r for r in (measure(c, args) for c in cases) if r is not None]
    elapsed = time.perf_counter() - started

    torch_mod = None
    if with_torch:
        import torch as torch_mod
    threads = numpy_blas_threads()
    lines = [
        f"Measured {datetime.date.today().isoformat()} with "
        f"`python benchmarks/{' '.join([Path(__file__).name, *sys.argv[1:]])}` "
        f"({len(results)} of {len(cases)} measurements, {elapsed:.0f} s in all).",
        "",
        *describe(torch_mod, (args.threads or threads) if with_torch else None),
        *load_lines(results),
        "",
        "Time: median of warm runs per call, building both Gaussians included. Traced peak: "
        "tracemalloc peak over one cold call in a fresh process (every NumPy buffer the call "
        "allocated: private copies of the inputs, temporaries, the result). RSS Δ: resident-set "
        "high-water mark over that call minus the resident set before it. Input MB: the arrays "
        "handed to the constructors. Cancel test: whether gaussdiv's cancellation criterion "
        "(fast excess below ⅛ of the magnitude of its terms, recomputed from `kl_terms`) fired "
        "for the pair; what that costs depends on the structures: for two diagonals, "
        "`kl` itself tests the whole sum, Mahalanobis term included, and runs an O(d) series "
        "only where that sum cancels, the factors' eigenvalues for two Kroneckers, an O(d³) "
        "`eigvalsh` for dense pairs, the low-rank pair routine's own O(d k²) route for two "
        "low-rank covariances, and for mixed pairs a dense O(d³) re-evaluation when "
        "d ≤ 2048 (see (f)).",
        "",
        *report(results, grid, with_torch),
    ]
    if with_torch and pick(results, "e"):
        lines += [f"torch KL(Independent(Normal) ‖ MultivariateNormal): {torch_note()}", ""]
    emit(lines, args.out)
    if args.json:
        args.json.write_text(json.dumps(results, indent=1) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()

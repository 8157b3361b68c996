"""Speed of gaussdiv.kl against torch.distributions and the textbook NumPy formula.

Every method gets the same arrays in one process: for each (scenario, dtype, batch, d) the
script builds the means and covariances once, then times

* gaussdiv: ``kl(Gaussian(m1, S1), Gaussian(m2, S2))``, construction (validation, copies,
  Cholesky) included because users pay for it; and ``kl(p, q)`` alone on prebuilt Gaussians;
* torch: ``kl_divergence(MultivariateNormal(m1, S1), MultivariateNormal(m2, S2))`` with torch's
  default argument validation, and with ``validate_args=False`` (tensors made from the same
  arrays with ``torch.from_numpy`` beforehand, no copy);
* textbook: ``½(slogdet(S2) − slogdet(S1) + tr(inv(S2) S1) + Δᵀ inv(S2) Δ − d)`` in NumPy.

Each is warmed up, then timed timeit-style: the number of calls per run grows until a run
takes ``--min-time`` seconds, and the median of ``--repeat`` runs is reported per call. Ratios
are anchor time / gaussdiv time (construction included): above 1 means gaussdiv is faster.

Run ``python benchmarks/bench_kl.py`` (full grid, a few minutes on 2 cores), ``--quick`` for a
small grid, ``--out FILE`` to also write the markdown. ``--threads N`` restarts the script with
N BLAS/OpenMP threads for NumPy, SciPy and torch alike; ``--clock cpu`` measures process CPU
time instead of wall time, which, with ``--threads 1``, is robust against other processes
competing for the cores (with more threads it would count their spin-waiting too).
"""

from __future__ import annotations

import argparse
import datetime
import gc
import os
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from _machine import describe, emit, numpy_blas_threads

import gaussdiv

try:
    import torch
    from torch.distributions import MultivariateNormal, kl_divergence
except ImportError:  # torch is optional: its columns are skipped
    torch = None

FULL_BATCHES = (1, 100, 10_000)
FULL_DIMS = (2, 8, 32, 128)
QUICK_BATCHES = (1, 100)
QUICK_DIMS = (2, 32)
# Peak memory of the slowest method is several times one batch of d×d matrices (inputs, private
# copies, factors, solves, temporaries); combos above this estimate are skipped.
MEMORY_LIMIT_BYTES = 4 * 2**30
PEAK_COPIES = 16
NEAR_DELTA = 1e-4  # relative size of the perturbation S1 = S2 + δE in the "near" scenario


@dataclass
class Inputs:
    m1: np.ndarray
    s1: np.ndarray
    m2: np.ndarray
    s2: np.ndarray


def make_inputs(rng: np.random.Generator, batch: int, d: int, dtype: Any,
                scenario: str) -> Inputs:
    """Random SPD pairs, well separated ("random") or with S1 = S2 + δE, m1 = m2 ("near").

    batch == 1 gives unbatched arrays (shape (d,) and (d, d)), as a user with one pair has.
    """
    shape = () if batch == 1 else (batch,)

    def spd() -> np.ndarray:
        a = rng.standard_normal((*shape, d, d))
        return a @ np.swapaxes(a, -1, -2) / d + 0.5 * np.eye(d)

    s2 = spd()
    m2 = rng.standard_normal((*shape, d))
    if scenario == "random":
        s1 = spd()
        m1 = rng.standard_normal((*shape, d))
    else:
        e = rng.standard_normal((*shape, d, d))
        e = e + np.swapaxes(e, -1, -2)
        e /= np.linalg.norm(e, ord=2, axis=(-2, -1), keepdims=True)
        s1 = s2 + NEAR_DELTA * e
        m1 = m2.copy()
    cast = [np.ascontiguousarray(x, dtype=dtype) for x in (m1, s1, m2, s2)]
    return Inputs(*cast)


def textbook_kl(m1: np.ndarray, s1: np.ndarray, m2: np.ndarray, s2: np.ndarray) -> np.ndarray:
    """The formula as printed, batched: inv, slogdet and trace."""
    d = s1.shape[-1]
    inv2 = np.linalg.inv(s2)
    _, logdet1 = np.linalg.slogdet(s1)
    _, logdet2 = np.linalg.slogdet(s2)
    trace = np.trace(inv2 @ s1, axis1=-2, axis2=-1)
    diff = m2 - m1
    maha = np.einsum("...i,...ij,...j->...", diff, inv2, diff)
    return 0.5 * (logdet2 - logdet1 + trace + maha - d)


def methods(x: Inputs) -> dict[str, Callable[[], Any]]:
    """Zero-argument callables, one per column, all on the same arrays."""
    p = gaussdiv.Gaussian(x.m1, x.s1)
    q = gaussdiv.Gaussian(x.m2, x.s2)
    out: dict[str, Callable[[], Any]] = {
        "gaussdiv": lambda: gaussdiv.kl(gaussdiv.Gaussian(x.m1, x.s1),
                                        gaussdiv.Gaussian(x.m2, x.s2)),
        "gaussdiv kl only": lambda: gaussdiv.kl(p, q),
    }
    if torch is not None:
        tm1, ts1, tm2, ts2 = (torch.from_numpy(a) for a in (x.m1, x.s1, x.m2, x.s2))
        out["torch"] = lambda: kl_divergence(MultivariateNormal(tm1, covariance_matrix=ts1),
                                             MultivariateNormal(tm2, covariance_matrix=ts2))
        out["torch no-validate"] = lambda: kl_divergence(
            MultivariateNormal(tm1, covariance_matrix=ts1, validate_args=False),
            MultivariateNormal(tm2, covariance_matrix=ts2, validate_args=False))
    out["textbook"] = lambda: textbook_kl(x.m1, x.s1, x.m2, x.s2)
    return out


def measure(fn: Callable[[], Any], min_time: float, repeat: int) -> float:
    """Median seconds per call: warm up, grow the call count until a run takes min_time."""
    fn()
    fn()
    number = 1
    while True:
        elapsed = _run(fn, number)
        if elapsed >= min_time:
            break
        number = max(number * 2, int(number * 1.2 * min_time / max(elapsed, 1e-9)))
    runs = [elapsed] + [_run(fn, number) for _ in range(repeat - 1)]
    return statistics.median(runs) / number


CLOCK = time.perf_counter  # set from --clock


def _run(fn: Callable[[], Any], number: int) -> float:
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        start = CLOCK()
        for _ in range(number):
            fn()
        return CLOCK() - start
    finally:
        if gc_was_enabled:
            gc.enable()


def as_numpy(value: Any) -> np.ndarray:
    if torch is not None and isinstance(value, torch.Tensor):
        return value.numpy()
    return np.asarray(value)


def fmt_time(seconds: float) -> str:
    if seconds < 1e-3:
        return f"{seconds * 1e6:.0f} µs"
    if seconds < 1:
        return f"{seconds * 1e3:.2f} ms"
    return f"{seconds:.2f} s"


def fmt_ratio(anchor: float | None, base: float) -> str:
    return "—" if anchor is None else f"{anchor / base:.2f}×"


def run_grid(args: argparse.Namespace) -> tuple[list[str], list[str]]:
    """Time every combo; return the markdown table lines and notes."""
    batches = QUICK_BATCHES if args.quick else FULL_BATCHES
    dims = QUICK_DIMS if args.quick else FULL_DIMS
    dtypes = (np.float64, np.float32)
    scenarios = ("random", "near") if args.scenario == "both" else (args.scenario,)
    cols = ["gaussdiv", "gaussdiv kl only", "torch", "torch no-validate", "textbook"]
    header = ("| scenario | dtype | batch | d | spectral | gaussdiv (build + kl) | "
              "gaussdiv kl only | torch | torch no-validate | textbook NumPy | torch / gd | "
              "torch no-val / gd | textbook / gd |")
    lines = [header, "|" + "---|" * 4 + "---:|" * 9]
    notes: list[str] = []
    rng = np.random.default_rng(args.seed)
    for scenario in scenarios:
        for dtype in dtypes:
            for batch in batches:
                for d in dims:
                    itemsize = np.dtype(dtype).itemsize
                    peak = PEAK_COPIES * batch * d * d * itemsize
                    label = f"{scenario} {np.dtype(dtype).name} batch={batch} d={d}"
                    if peak > MEMORY_LIMIT_BYTES:
                        notes.append(f"skipped {label}: estimated peak memory {peak / 2**30:.1f} "
                                     f"GiB > {MEMORY_LIMIT_BYTES / 2**30:.0f} GiB")
                        continue
                    x = make_inputs(rng, batch, d, dtype, scenario)
                    fns = methods(x)
                    notes.extend(check_agreement(label, fns, scenario, dtype))
                    times: dict[str, float | None] = dict.fromkeys(cols)
                    for name, fn in fns.items():
                        times[name] = measure(fn, args.min_time, args.repeat)
                    base = times["gaussdiv"]
                    assert base is not None
                    spectral = spectral_fraction(x)
                    cells = [scenario, np.dtype(dtype).name, f"{batch:,}", str(d),
                             "?" if np.isnan(spectral) else f"{spectral:.0%}"]
                    cells += ["—" if times[c] is None else fmt_time(times[c]) for c in cols]
                    cells += [fmt_ratio(times[c], base)
                              for c in ("torch", "torch no-validate", "textbook")]
                    lines.append("| " + " | ".join(cells) + " |")
                    print(lines[-1], file=sys.stderr, flush=True)
                    del fns, x
    return lines, notes


def spectral_fraction(x: Inputs) -> float:
    """Fraction of the batch that gaussdiv sends to its exact (eigendecomposition) route.

    Counted by wrapping, for one untimed call, the dense relation's exact route, which receives
    just the cancelling batch elements (its ``fast`` argument has one entry each). The timed
    calls run the unwrapped library.
    """
    from gaussdiv.relations.dense import DenseRelation

    original = DenseRelation.exact_excess
    taken = 0

    def counting(self: Any, p: Any, q: Any, fast: Any) -> Any:
        nonlocal taken
        taken += int(np.size(fast))
        return original(self, p, q, fast)

    DenseRelation.exact_excess = counting  # type: ignore[method-assign]
    try:
        gaussdiv.kl(gaussdiv.Gaussian(x.m1, x.s1), gaussdiv.Gaussian(x.m2, x.s2))
    finally:
        DenseRelation.exact_excess = original  # type: ignore[method-assign]
    return taken / max(1, x.s1.size // (x.s1.shape[-1] ** 2))


def check_agreement(label: str, fns: dict[str, Callable[[], Any]], scenario: str,
                    dtype: Any) -> list[str]:
    """One evaluation of each method; note disagreements (expected only for "near" pairs)."""
    if scenario != "random":
        return []
    ref = as_numpy(fns["gaussdiv"]()).astype(np.float64)
    tol = 1e-8 if dtype == np.float64 else 1e-3
    notes = []
    for name, fn in fns.items():
        value = as_numpy(fn()).astype(np.float64)
        err = float(np.max(np.abs(value - ref) / np.maximum(np.abs(ref), 1e-300)))
        if not err <= tol:
            notes.append(f"{label}: {name} differs from gaussdiv by {err:.2g} (relative)")
    return notes


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help="small grid: batch {1, 100} x d {2, 32}, shorter runs")
    parser.add_argument("--out", metavar="FILE", help="also write the markdown to FILE")
    parser.add_argument("--scenario", choices=("random", "near", "both"), default="both",
                        help="well-separated pairs, near-identical pairs (S1 = S2 + 1e-4 E), "
                             "or both (default)")
    parser.add_argument("--min-time", type=float, default=None,
                        help="seconds per timed run (default 0.2, quick 0.05)")
    parser.add_argument("--repeat", type=int, default=None,
                        help="timed runs per measurement; the median is kept (default 5, quick 3)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=None,
                        help="BLAS/OpenMP threads for every library (restarts the script with "
                             "OPENBLAS_NUM_THREADS, OMP_NUM_THREADS, MKL_NUM_THREADS set); "
                             "default: NumPy's own default")
    parser.add_argument("--clock", choices=("wall", "cpu"), default="wall",
                        help="wall time (default) or this process's CPU time (use with "
                             "--threads 1 on a busy machine)")
    args = parser.parse_args(argv)
    if args.threads is not None and os.environ.get("OPENBLAS_NUM_THREADS") != str(args.threads):
        _restart_with_threads(args.threads, sys.argv[1:] if argv is None else argv)
    global CLOCK
    CLOCK = time.process_time if args.clock == "cpu" else time.perf_counter
    if args.min_time is None:
        args.min_time = 0.05 if args.quick else 0.2
    if args.repeat is None:
        args.repeat = 3 if args.quick else 5

    blas_threads = numpy_blas_threads()
    torch_threads = None
    if torch is not None:
        torch_threads = blas_threads or 1
        torch.set_num_threads(torch_threads)

    machine = describe(torch, torch_threads)
    started = time.perf_counter()
    table, notes = run_grid(args)
    elapsed = time.perf_counter() - started

    command = "python benchmarks/bench_kl.py " + " ".join(sys.argv[1:] if argv is None else argv)
    out = [
        "## KL speed: gaussdiv vs torch.distributions vs textbook NumPy",
        "",
        f"Run {datetime.datetime.now().isoformat(timespec='seconds')} as `{command.strip()}` "
        f"({elapsed:.0f} s).",
        "",
        *machine,
        "",
        f"Clock: {'process CPU time' if args.clock == 'cpu' else 'wall time'}. "
        "Times are the median per call (whole batch) of "
        f"{args.repeat} runs of ≥ {args.min_time} s each, after warm-up. "
        "Ratios = anchor time / gaussdiv (build + kl) time: **> 1 means gaussdiv is faster**. "
        "batch = 1 means unbatched arrays. \"near\": S1 = S2 + 1e-4·E (‖E‖₂ = 1), m1 = m2, "
        "which sends gaussdiv to its spectral route (an extra eigendecomposition); "
        "\"spectral\" is the fraction of the batch that took that route.",
        "",
        *table,
    ]
    if torch is None:
        out += ["", "PyTorch is not importable: its columns are empty."]
    if notes:
        out += ["", "Notes:", "", *[f"- {n}" for n in notes]]
    emit(out, args.out)
    return 0


def _restart_with_threads(threads: int, argv: list[str]) -> None:
    """Re-execute this script with the thread variables set before NumPy and torch load."""
    env = dict(os.environ)
    for name in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        env[name] = str(threads)
    sys.stdout.flush()
    os.execve(sys.executable, [sys.executable, os.path.abspath(__file__), *argv], env)


if __name__ == "__main__":
    raise SystemExit(main())

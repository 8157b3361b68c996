"""Machine and library description, and report output, shared by the benchmark scripts
(not part of gaussdiv)."""

from __future__ import annotations

import ctypes
import glob
import os
import platform
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import scipy


def cpu_model() -> str:
    """CPU model name (with family/model numbers) from /proc/cpuinfo, else platform's guess."""
    fields: dict[str, str] = {}
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if not line.strip():
                    break  # the first processor's block is enough
                key, _, value = line.partition(":")
                fields.setdefault(key.strip(), value.strip())
    except OSError:
        return platform.processor() or platform.machine()
    name = fields.get("model name", platform.processor() or platform.machine())
    extra = [f"{k} {fields[k]}" for k in ("cpu family", "model", "stepping") if k in fields]
    return f"{name} ({', '.join(extra)})" if extra else name


def usable_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def numpy_blas() -> str:
    """Name and version of the BLAS NumPy was built against."""
    try:
        info = np.show_config(mode="dicts")["Build Dependencies"]["blas"]
        return f"{info.get('name', '?')} {info.get('version', '')}".strip()
    except Exception:  # older NumPy: no dict mode
        return "unknown"


def numpy_blas_threads() -> int | None:
    """Threads NumPy's BLAS uses now: threadpoolctl if installed, else ask OpenBLAS directly."""
    try:
        from threadpoolctl import threadpool_info

        for pool in threadpool_info():
            if pool.get("user_api") == "blas" and "numpy" in pool.get("filepath", ""):
                return int(pool["num_threads"])
    except ImportError:
        pass
    libs = Path(np.__file__).parent.parent / "numpy.libs"
    for path in sorted(glob.glob(str(libs / "lib*openblas*.so*"))):
        try:
            lib = ctypes.CDLL(path)
        except OSError:
            continue
        for symbol in ("scipy_openblas_get_num_threads64_", "openblas_get_num_threads64_",
                       "openblas_get_num_threads"):
            fn = getattr(lib, symbol, None)
            if fn is not None:
                fn.restype = ctypes.c_int
                return int(fn())
    return None


def gaussdiv_source(module_file: str) -> str:
    """Where gaussdiv was imported from, with its git commit and whether src/ had edits."""
    folder = Path(module_file).resolve().parent
    try:
        commit = subprocess.run(["git", "-C", str(folder), "rev-parse", "--short", "HEAD"],
                                capture_output=True, text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(folder), "status", "--porcelain", "--", "."],
                               capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return f"(from {folder})"
    state = "with uncommitted edits" if dirty else "clean"
    return f"(commit {commit}, {state})"


def describe(torch_module: object | None, torch_threads: int | None) -> list[str]:
    """Markdown bullet lines describing the machine and the libraries."""
    blas_threads = numpy_blas_threads()
    lines = [
        f"- CPU: {cpu_model()}; {usable_cores()} usable cores (os.cpu_count() = {os.cpu_count()})",
        f"- OS: {platform.system()} {platform.release()}; Python {sys.version.split()[0]}",
        f"- NumPy {np.__version__} (BLAS: {numpy_blas()}, "
        f"{blas_threads if blas_threads is not None else 'unknown'} BLAS threads); "
        f"SciPy {scipy.__version__}",
    ]
    try:
        import gaussdiv

        lines.append(f"- gaussdiv {gaussdiv.__version__} {gaussdiv_source(gaussdiv.__file__)}")
    except ImportError:
        pass
    if torch_module is None:
        lines.append("- PyTorch: not installed (its columns are skipped)")
    else:
        lines.append(f"- PyTorch {torch_module.__version__}" + (
            "" if torch_threads is None else
            f", torch.set_num_threads({torch_threads}) to match NumPy's BLAS threads"))
    if hasattr(os, "getloadavg"):
        load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
        lines.append(f"- load average at start (1, 5, 15 min): {load}")
    env = {k: os.environ[k] for k in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")
           if k in os.environ}
    if env:
        lines.append(f"- thread environment: {env}")
    return lines


def emit(lines: list[str], out: str | os.PathLike[str] | None) -> None:
    """Print the Markdown report and, when ``out`` is given, also write it there."""
    text = "\n".join(lines).rstrip("\n") + "\n"
    print(text, end="")
    if out:
        Path(out).write_text(text, encoding="utf-8")


def best_of(f: Callable[[], object], n: int = 5) -> float:
    """The best wall-clock time of ``n`` calls of ``f`` after one warm-up call, in seconds."""
    f()
    best = float("inf")
    for _ in range(n):
        start = time.perf_counter()
        f()
        best = min(best, time.perf_counter() - start)
    return best

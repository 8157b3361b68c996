"""gaussdiv on PyTorch tensors against torch.distributions: forward and forward + backward.

For each (family, dtype, batch, d) the same tensors go to

* gaussdiv: ``kl(Gaussian..., Gaussian...)`` built from the tensors each call;
* torch: ``kl_divergence`` of ``MultivariateNormal`` (full family, ``scale_tril`` given, as a
  Cholesky-parameterised posterior would) or ``Independent(Normal)`` (diagonal family), with
  torch's default validation and with ``validate_args=False``; the prior family is a VAE's KL
  term, ``Gaussian.diag(logvar=...)`` against ``Gaussian.standard(d, like=...)`` vs
  ``Independent(Normal)`` against ``Independent(Normal(0, 1))``.

"forward" times the KL of the whole batch; "fwd+bwd" adds ``.sum().backward()`` to the
parameters (leaf tensors with requires_grad). Ratios are torch / gaussdiv: > 1 means gaussdiv is
faster. Timings: warm-up, then the median of ``--repeat`` runs of ≥ ``--min-time`` seconds,
with ``torch.cuda.synchronize()`` around each run on CUDA. ``--device cuda`` when a GPU is
present. JAX (``--jax``) runs the same full-family forward pass, jit-compiled, in a subprocess
with a timeout (jaxlib 0.10.2 on CPU has hung on large batched Cholesky + triangular solves).

    python benchmarks/bench_torch.py [--quick] [--device cpu|cuda] [--jax] [--threads N]
                                     [--out FILE]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from typing import Any

import torch
from _machine import describe, emit
from torch.distributions import Independent, MultivariateNormal, Normal, kl_divergence

import gaussdiv

FULL_BATCHES = (1, 256, 4096)
FULL_DIMS = (2, 8, 32, 128)
QUICK_BATCHES = (1, 256)
QUICK_DIMS = (4, 32)


def make_params(family: str, batch: int, d: int, dtype: torch.dtype,
                device: str) -> list[torch.Tensor]:
    """Leaf tensors: posterior mean and scale parameters, prior mean and scale parameters."""
    gen = torch.Generator().manual_seed(batch * 1000 + d)
    shape = (batch,) if batch > 1 else ()

    def leaf(*size: int, scale: float = 1.0, shift: float = 0.0) -> torch.Tensor:
        t = shift + scale * torch.randn(*shape, *size, generator=gen, dtype=torch.float64)
        return t.to(dtype=dtype, device=device).requires_grad_(True)

    if family == "diag":
        return [leaf(d), leaf(d, scale=0.3), leaf(d), leaf(d, scale=0.3)]
    if family == "prior":
        return [leaf(d), leaf(d, scale=0.3)]
    return [leaf(d), leaf(d, d, scale=0.3 / d ** 0.5), leaf(d), leaf(d, d, scale=0.3 / d ** 0.5)]


def scale_tril(raw: torch.Tensor) -> torch.Tensor:
    """A Cholesky factor from unconstrained parameters: exp on the diagonal."""
    return torch.tril(raw, -1) + torch.diag_embed(torch.exp(torch.diagonal(raw, dim1=-2, dim2=-1)))


def methods(family: str, params: list[torch.Tensor]) -> dict[str, Callable[[], torch.Tensor]]:
    if family == "prior":
        return prior_methods(*params)
    m1, s1, m2, s2 = params
    if family == "diag":
        return {
            "gaussdiv": lambda: gaussdiv.kl(gaussdiv.Gaussian.diag(m1, logvar=2 * s1),
                                            gaussdiv.Gaussian.diag(m2, logvar=2 * s2)),
            "torch": lambda: kl_divergence(Independent(Normal(m1, torch.exp(s1)), 1),
                                           Independent(Normal(m2, torch.exp(s2)), 1)),
            "torch no-validate": lambda: kl_divergence(
                Independent(Normal(m1, torch.exp(s1), validate_args=False), 1,
                            validate_args=False),
                Independent(Normal(m2, torch.exp(s2), validate_args=False), 1,
                            validate_args=False)),
        }
    return {
        "gaussdiv": lambda: gaussdiv.kl(gaussdiv.Gaussian.from_scale_tril(m1, scale_tril(s1)),
                                        gaussdiv.Gaussian.from_scale_tril(m2, scale_tril(s2))),
        "torch": lambda: kl_divergence(MultivariateNormal(m1, scale_tril=scale_tril(s1)),
                                       MultivariateNormal(m2, scale_tril=scale_tril(s2))),
        "torch no-validate": lambda: kl_divergence(
            MultivariateNormal(m1, scale_tril=scale_tril(s1), validate_args=False),
            MultivariateNormal(m2, scale_tril=scale_tril(s2), validate_args=False)),
    }


def prior_methods(m: torch.Tensor, s: torch.Tensor) -> dict[str, Callable[[], torch.Tensor]]:
    """A VAE's KL term: the encoder's N(m, diag(exp(2 s))) against the prior N(0, I)."""
    d = m.shape[-1]

    def torch_prior(validate: bool | None) -> Callable[[], torch.Tensor]:
        def kl() -> torch.Tensor:
            zeros, ones = torch.zeros_like(m), torch.ones_like(s)
            return kl_divergence(
                Independent(Normal(m, torch.exp(s), validate_args=validate), 1,
                            validate_args=validate),
                Independent(Normal(zeros, ones, validate_args=validate), 1,
                            validate_args=validate))
        return kl

    return {
        "gaussdiv": lambda: gaussdiv.kl(gaussdiv.Gaussian.diag(m, logvar=2 * s),
                                        gaussdiv.Gaussian.standard(d, like=m)),
        "torch": torch_prior(None),
        "torch no-validate": torch_prior(False),
    }


def measure(fn: Callable[[], Any], device: str, min_time: float, repeat: int) -> float:
    """Median seconds per call over ``repeat`` runs of ≥ ``min_time`` each, after warm-up."""
    sync = torch.cuda.synchronize if device.startswith("cuda") else (lambda: None)
    fn()
    sync()
    number = 1
    while True:
        start = time.perf_counter()
        for _ in range(number):
            fn()
        sync()
        if time.perf_counter() - start >= min_time:
            break
        number *= 2
    runs = []
    for _ in range(repeat):
        start = time.perf_counter()
        for _ in range(number):
            fn()
        sync()
        runs.append((time.perf_counter() - start) / number)
    return statistics.median(runs)


def backward_of(fn: Callable[[], torch.Tensor], params: list[torch.Tensor]) -> Callable[[], None]:
    def step() -> None:
        for p in params:
            p.grad = None
        fn().sum().backward()
    return step


def fmt(seconds: float) -> str:
    return f"{seconds * 1e6:.0f} µs" if seconds < 1e-3 else f"{seconds * 1e3:.2f} ms"


def run_jax(batches: tuple[int, ...], dims: tuple[int, ...], timeout: float) -> dict[str, str]:
    """Forward time of jit-compiled gaussdiv on JAX (full family, float32), one subprocess per
    cell with its own timeout, so that a hang (seen with jaxlib 0.10.2 on CPU after many calls
    of a batched Cholesky + triangular solve) costs one cell and is reported as such."""
    code = textwrap.dedent("""
        import json, sys, time, statistics, jax, jax.numpy as jnp, numpy as np, gaussdiv
        batch, d = int(sys.argv[1]), int(sys.argv[2])
        rng = np.random.default_rng(batch * 1000 + d)
        shape = (batch,) if batch > 1 else ()
        a = rng.standard_normal((*shape, d, d)) * (0.3 / d ** 0.5)
        def tril(r):
            diag = jnp.exp(jnp.diagonal(r, axis1=-2, axis2=-1))
            return jnp.tril(r, -1) + diag[..., None] * jnp.eye(d)
        m = jnp.asarray(rng.standard_normal((*shape, d)), jnp.float32)
        s = jnp.asarray(a, jnp.float32)
        f = jax.jit(lambda m, s: gaussdiv.kl(gaussdiv.Gaussian.from_scale_tril(m, tril(s)),
                    gaussdiv.Gaussian.from_scale_tril(m * 0.5, tril(0.5 * s))))
        f(m, s).block_until_ready()
        runs = []
        for _ in range(5):
            t = time.perf_counter()
            for _ in range(10):
                f(m, s).block_until_ready()
            runs.append((time.perf_counter() - t) / 10)
        print(json.dumps(statistics.median(runs)))
    """)
    out = {}
    for batch in batches:
        for d in dims:
            key = f"batch {batch}, d {d}"
            try:
                done = subprocess.run([sys.executable, "-c", code, str(batch), str(d)],
                                      capture_output=True, text=True, timeout=timeout,
                                      check=True)
                out[key] = fmt(json.loads(done.stdout.strip().splitlines()[-1]))
            except subprocess.TimeoutExpired:
                out[key] = f"hung (killed after {timeout:.0f} s)"
            except subprocess.CalledProcessError as exc:
                out[key] = "failed: " + (exc.stderr.strip().splitlines() or ["?"])[-1]
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--jax", action="store_true", help="add jit-compiled JAX timings")
    parser.add_argument("--jax-timeout", type=float, default=60.0, help="seconds per JAX cell")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch threads (default 1: stable timings on a small machine)")
    parser.add_argument("--min-time", type=float, default=0.1)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--family", choices=("full", "diag", "prior", "all"), default="all")
    parser.add_argument("--max-elements", type=int, default=4096 * 32 * 32,
                        help="skip combinations with batch·d² above this (default 4096·32²)")
    parser.add_argument("--out", metavar="FILE")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    batches = QUICK_BATCHES if args.quick else FULL_BATCHES
    dims = QUICK_DIMS if args.quick else FULL_DIMS
    device = args.device
    command = " ".join(["python", "benchmarks/bench_torch.py", *(argv or sys.argv[1:])])
    lines = [f"Run {time.strftime('%Y-%m-%dT%H:%M:%S')} as `{command}`.", "",
             *describe(torch, torch.get_num_threads()), "", f"Device: {device}"
             + (f" ({torch.cuda.get_device_name()})" if device.startswith("cuda") else "")
             + f"; torch threads: {torch.get_num_threads()}.", "",
             "| family | dtype | batch | d | pass | gaussdiv | torch | torch no-validate "
             "| torch / gd | torch no-val / gd |",
             "|---|---|---:|---:|---|---:|---:|---:|---:|---:|"]
    families = ("full", "diag", "prior") if args.family == "all" else (args.family,)
    skipped = []
    for family in families:
        for dtype in (torch.float32, torch.float64):
            for batch in batches:
                for d in dims:
                    if batch * d * d > args.max_elements:
                        skipped.append(f"{family} {dtype} batch {batch} d {d}")
                        continue
                    params = make_params(family, batch, d, dtype, device)
                    fns = methods(family, params)
                    for label in ("forward", "fwd+bwd"):
                        t = {name: measure(fn if label == "forward" else backward_of(fn, params),
                                           device, args.min_time, args.repeat)
                             for name, fn in fns.items()}
                        row = (f"| {family} | {str(dtype).removeprefix('torch.')} | {batch} | {d} "
                               f"| {label} | {fmt(t['gaussdiv'])} | {fmt(t['torch'])} "
                               f"| {fmt(t['torch no-validate'])} "
                               f"| {t['torch'] / t['gaussdiv']:.2f}× "
                               f"| {t['torch no-validate'] / t['gaussdiv']:.2f}× |")
                        lines.append(row)
                        print(row, file=sys.stderr, flush=True)
    if skipped:
        lines += ["", f"Skipped (batch·d² > {args.max_elements}): " + "; ".join(skipped) + "."]
    if args.jax:
        lines += ["", "JAX, jit-compiled gaussdiv (full family, float32, forward, CPU), "
                  "median per call:", ""]
        lines += [f"- {cell}: {value}"
                  for cell, value in run_jax(batches, dims, args.jax_timeout).items()]
    emit(lines, args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""A small VAE on scikit-learn's 8×8 digits, with its KL term computed by gaussdiv.

Two posterior families, trained one after the other (``--family both``, the default):

* ``diag``: q(z|x) = N(μ, diag exp(logvar)), built with ``Gaussian.diag(mu, logvar=logvar)``;
* ``full``: q(z|x) = N(μ, L Lᵀ) with L lower triangular, its diagonal exp(·) of an encoder
  output and its strictly-lower entries free, built with ``Gaussian.from_scale_tril(mu, L)``.

The prior is ``Gaussian.standard(d, like=mu)``, the KL term is ``gaussdiv.kl(posterior, prior)``
(one value per example, differentiable), and z is drawn with ``gaussdiv.sample``, which is
μ + L ε and keeps the gradient to μ and L (the reparameterisation trick). The decoder is a
Bernoulli likelihood on the pixels scaled to [0, 1].

Every batch also checks the KL values: gaussdiv's must all be ≥ 0 (the run stops otherwise),
and for contrast the example counts how many of torch.distributions' values for the same
posteriors come out negative (its KL is the textbook sum, which cancels near the prior).

Run::

    python examples/vae_digits.py              # both families, about a minute on 2 CPU cores
    python examples/vae_digits.py --quick      # a few epochs on a subset (CI)

It writes a PNG of the loss terms per epoch (``--out``, default
``./vae-digits-out/vae_digits_losses.png``) and the numbers behind it as JSON next to it.
Needs torch, scikit-learn and matplotlib; float32 on the CPU; seeded, so reruns agree.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # before pyplot: no display needed

import matplotlib.pyplot as plt
import numpy as np
import torch
from sklearn.datasets import load_digits
from torch import nn
from torch.distributions import (
    Independent,
    MultivariateNormal,
    Normal,
    kl_divergence,
)

import gaussdiv

FAMILIES = ("diag", "full")
DEFAULT_DIR = "vae-digits-out"
DEFAULT_OUT = Path(DEFAULT_DIR) / "vae_digits_losses.png"
LABELS = {"diag": "diagonal posterior", "full": "full-covariance posterior (Cholesky)"}


# ---------------------------------------------------------------------------------- model
class VAE(nn.Module):
    """MLP encoder 64 → h → h → posterior parameters; MLP decoder d → h → h → 64 logits."""

    def __init__(self, family: str, latent_dim: int, hidden: int) -> None:
        super().__init__()
        self.family = family
        self.latent_dim = k = latent_dim
        # diag: μ and logvar; full: μ, ln diag(L) and the k(k−1)/2 strictly-lower entries of L.
        n_params = 2 * k if family == "diag" else 2 * k + k * (k - 1) // 2
        self.encoder = nn.Sequential(
            nn.Linear(64, hidden), nn.SiLU(), nn.Linear(hidden, hidden), nn.SiLU(),
            nn.Linear(hidden, n_params),
        )
        self.decoder = nn.Sequential(
            nn.Linear(k, hidden), nn.SiLU(), nn.Linear(hidden, hidden), nn.SiLU(),
            nn.Linear(hidden, 64),
        )
        self.register_buffer("tril_rows", torch.tril_indices(k, k, -1)[0], persistent=False)
        self.register_buffer("tril_cols", torch.tril_indices(k, k, -1)[1], persistent=False)

    def posterior(self, x: torch.Tensor) -> Posterior:
        k = self.latent_dim
        out = self.encoder(x)
        mu = out[:, :k]
        if self.family == "diag":
            logvar = out[:, k:]
            return Posterior(gaussdiv.Gaussian.diag(mu, logvar=logvar), mu, logvar=logvar)
        log_diag = out[:, k:2 * k]
        lower = out.new_zeros(out.shape[0], k, k)
        lower[:, self.tril_rows, self.tril_cols] = out[:, 2 * k:]
        scale_tril = lower + torch.diag_embed(torch.exp(log_diag))
        return Posterior(gaussdiv.Gaussian.from_scale_tril(mu, scale_tril), mu,
                         scale_tril=scale_tril)


@dataclass
class Posterior:
    """q(z|x) as a gaussdiv.Gaussian, with the raw parameters for the torch.distributions twin."""

    gaussian: gaussdiv.Gaussian
    mu: torch.Tensor
    logvar: torch.Tensor | None = None
    scale_tril: torch.Tensor | None = None

    def torch_kl_to_standard(self, dtype: torch.dtype = torch.float32) -> torch.Tensor:
        """torch.distributions' KL(q ‖ N(0, I)) for the same posteriors (the textbook sum).

        ``dtype=torch.float64`` gives the reference: the float32 parameters taken as exact,
        computed in float64, where the textbook sum is accurate to about 1e-16·d/KL relative:
        far below float32 rounding for every KL ≥ 1e-6 (the smallest in a run here is ~1e-3).
        """
        mu = self.mu.to(dtype)
        zeros = torch.zeros_like(mu)
        if self.logvar is not None:
            q = Independent(Normal(mu, torch.exp(0.5 * self.logvar.to(dtype))), 1)
            prior = Independent(Normal(zeros, torch.ones_like(mu)), 1)
        else:
            scale_tril = self.scale_tril.to(dtype)
            q = MultivariateNormal(mu, scale_tril=scale_tril)
            eye = torch.eye(mu.shape[-1], dtype=dtype)
            prior = MultivariateNormal(zeros, scale_tril=eye.expand_as(scale_tril))
        return kl_divergence(q, prior)


def negative_elbo_terms(model: VAE, x: torch.Tensor, prior: gaussdiv.Gaussian,
                        noise: torch.Generator) -> tuple[torch.Tensor, torch.Tensor, Posterior]:
    """Per-example reconstruction term −ln p(x|z) (one z ∼ q) and KL(q(z|x) ‖ p(z))."""
    q = model.posterior(x)
    z = gaussdiv.sample(q.gaussian, 1, seed=noise)[0]  # μ + L ε: differentiable in μ and L
    logits = model.decoder(z)
    recon = nn.functional.binary_cross_entropy_with_logits(logits, x, reduction="none").sum(-1)
    kl = gaussdiv.kl(q.gaussian, prior)
    return recon, kl, q


# ---------------------------------------------------------------------------------- training
@dataclass
class History:
    """Per-epoch means over the training examples (nats per image), and the KL sign checks."""

    family: str
    recon: list[float] = field(default_factory=list)
    kl: list[float] = field(default_factory=list)
    elbo: list[float] = field(default_factory=list)
    kl_values: int = 0  # how many per-example KL values were checked
    gaussdiv_negative: int = 0
    torch_negative: int = 0
    gaussdiv_min: float = math.inf
    torch_min: float = math.inf
    # largest |KL − reference| / reference over all values, the reference being the same KL in
    # float64 (see Posterior.torch_kl_to_standard)
    gaussdiv_max_rel_error: float = 0.0
    torch_max_rel_error: float = 0.0
    test_recon: float = math.nan
    test_kl: float = math.nan
    test_elbo: float = math.nan
    seconds: float = 0.0


def load_data(subset: int | None, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The 1797 digits, pixels scaled to [0, 1], float32; 10 % held out as a test set."""
    pixels = load_digits().data.astype(np.float32) / 16.0
    order = np.random.default_rng(seed).permutation(len(pixels))
    n_test = len(pixels) // 10
    test, train = pixels[order[:n_test]], pixels[order[n_test:]]
    if subset is not None:
        train, test = train[:subset], test[: max(subset // 4, 1)]
    return torch.from_numpy(train), torch.from_numpy(test)


def train_family(family: str, train: torch.Tensor, test: torch.Tensor,
                 args: argparse.Namespace) -> History:
    torch.manual_seed(args.seed)  # the same initial weights and data order for each run
    model = VAE(family, args.latent_dim, args.hidden)
    optimiser = torch.optim.Adam(model.parameters(), lr=args.lr)
    prior = gaussdiv.Gaussian.standard(args.latent_dim, like=train)
    noise = torch.Generator().manual_seed(args.seed + 1)
    shuffle = torch.Generator().manual_seed(args.seed + 2)
    history = History(family)
    start = time.perf_counter()
    for _ in range(args.epochs):
        model.train()
        sums = np.zeros(2)
        for index in torch.randperm(len(train), generator=shuffle).split(args.batch_size):
            x = train[index]
            recon, kl, q = negative_elbo_terms(model, x, prior, noise)
            loss = (recon + kl).mean()
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            with torch.no_grad():
                _check_kl(history, kl, q)
            sums += (float(recon.detach().sum()), float(kl.detach().sum()))
        recon_mean, kl_mean = sums / len(train)
        history.recon.append(recon_mean)
        history.kl.append(kl_mean)
        history.elbo.append(-(recon_mean + kl_mean))
    model.eval()
    with torch.no_grad():
        recon, kl, q = negative_elbo_terms(model, test, prior, noise)
        _check_kl(history, kl, q)
    history.test_recon = float(recon.mean())
    history.test_kl = float(kl.mean())
    history.test_elbo = -(history.test_recon + history.test_kl)
    history.seconds = time.perf_counter() - start
    return history


def _check_kl(history: History, ours: torch.Tensor, q: Posterior) -> None:
    """Count the negative KL values of both libraries (one from gaussdiv is a bug), and compare
    both with the float64 reference."""
    ours = ours.detach()
    theirs = q.torch_kl_to_standard()
    reference = q.torch_kl_to_standard(torch.float64)
    history.kl_values += ours.numel()
    history.gaussdiv_negative += int((ours < 0).sum())
    history.torch_negative += int((theirs < 0).sum())
    history.gaussdiv_min = min(history.gaussdiv_min, float(ours.min()))
    history.torch_min = min(history.torch_min, float(theirs.min()))
    for name, values in (("gaussdiv", ours), ("torch", theirs)):
        error = float(((values.double() - reference).abs() / reference).max())
        attr = f"{name}_max_rel_error"
        setattr(history, attr, max(getattr(history, attr), error))
    if history.gaussdiv_negative:
        raise RuntimeError(f"gaussdiv.kl returned a negative KL ({float(ours.min())!r}) for the "
                           f"{history.family} posterior; please report this as a gaussdiv bug")


# ---------------------------------------------------------------------------------- output
def plot(histories: Sequence[History], path: Path, title: str) -> None:
    fig, axes = plt.subplots(1, 3, figsize=(14, 4.2), constrained_layout=True)
    panels = [("recon", "reconstruction −ln p(x|z)"), ("kl", "KL(q(z|x) ‖ N(0, I))"),
              ("elbo", "ELBO")]
    for ax, (key, name) in zip(axes, panels, strict=True):
        for h in histories:
            values = getattr(h, key)
            ax.plot(range(1, len(values) + 1), values, label=LABELS[h.family])
        ax.set_title(name)
        ax.set_xlabel("epoch")
        ax.set_ylabel("nats per image (training-set mean)")
        ax.grid(alpha=0.3)
        ax.legend()
    fig.suptitle(title)
    fig.savefig(path, dpi=100)
    plt.close(fig)


def print_summary(histories: Sequence[History], args: argparse.Namespace) -> None:
    print(f"\nVAE on sklearn digits (8×8), latent d={args.latent_dim}, {args.epochs} epochs, "
          f"float32, CPU, {args.threads} thread(s); nats per image")
    group = f"{'min KL':>10}{'KL<0':>6}{'rel err':>9}"
    header = (f"{'posterior':<10}{'recon':>8}{'KL':>7}{'ELBO':>9}{'test ELBO':>11}{'time s':>8}"
              f"{'KL values':>11}{group}{group}")
    print(f"{'':<64}{'gaussdiv.kl':^25}{'torch.distributions':^25}")
    print(header)
    print("-" * len(header))
    for h in histories:
        print(f"{h.family:<10}{h.recon[-1]:>8.3f}{h.kl[-1]:>7.3f}{h.elbo[-1]:>9.3f}"
              f"{h.test_elbo:>11.3f}{h.seconds:>8.1f}{h.kl_values:>11}"
              f"{h.gaussdiv_min:>10.2e}{h.gaussdiv_negative:>6}{h.gaussdiv_max_rel_error:>9.1e}"
              f"{h.torch_min:>10.2e}{h.torch_negative:>6}{h.torch_max_rel_error:>9.1e}")
    print("recon, KL, ELBO: last-epoch training means; test ELBO: the held-out 10 %, one z per\n"
          "image. Over every per-example KL value of every batch: min KL, how many were < 0,\n"
          "and the largest relative error against the same KL computed in float64.")


def output_paths(out: Path, force: bool) -> tuple[Path, Path]:
    """The PNG path (``out``, or ``out``/vae_digits_losses.png for a folder) and its JSON twin.

    Files inside a folder named vae-digits-out (the example's own) are overwritten freely; an
    existing file anywhere else needs --force.
    """
    png = out / DEFAULT_OUT.name if out.is_dir() or out.suffix.lower() != ".png" else out
    metrics = png.with_suffix(".json")
    if not force and png.parent.name != DEFAULT_DIR:
        for path in (png, metrics):
            if path.exists():
                raise SystemExit(f"vae_digits: {path} exists; pass --force to overwrite it")
    png.parent.mkdir(parents=True, exist_ok=True)
    return png, metrics


def parse_args(argv: Sequence[str | os.PathLike[str]] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--family", choices=[*FAMILIES, "both"], default="both",
                        help="posterior family; 'both' trains diag then full (default)")
    parser.add_argument("--quick", action="store_true",
                        help="a few epochs on a subset of the data, for CI (< 20 s)")
    parser.add_argument("--epochs", type=int, default=None,
                        help="training epochs per family (default 100, or 4 with --quick)")
    parser.add_argument("--latent-dim", type=int, default=4, help="latent dimension d (2..8)")
    parser.add_argument("--hidden", type=int, default=128, help="hidden units per MLP layer")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--lr", type=float, default=1e-3, help="Adam learning rate")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1,
                        help="torch CPU threads (default 1: these MLPs are too small to gain "
                             "from more, and extra threads are much slower on a busy machine)")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT,
                        help=f"PNG path, or a folder for {DEFAULT_OUT.name} "
                             f"(default {DEFAULT_OUT})")
    parser.add_argument("--force", action="store_true",
                        help="overwrite existing output files outside ./vae-digits-out")
    args = parser.parse_args(None if argv is None else [os.fspath(a) for a in argv])
    if not 2 <= args.latent_dim <= 8:
        parser.error(f"--latent-dim must be between 2 and 8, got {args.latent_dim}")
    if args.epochs is None:
        args.epochs = 4 if args.quick else 100
    if min(args.epochs, args.batch_size, args.hidden, args.threads) < 1 or not args.lr > 0:
        parser.error("--epochs, --batch-size, --hidden, --threads and --lr must be positive")
    args.subset = 512 if args.quick else None
    return args


def main(argv: Sequence[str | os.PathLike[str]] | None = None) -> int:
    args = parse_args(argv)
    png, metrics = output_paths(args.out, args.force)
    train, test = load_data(args.subset, args.seed)
    families = FAMILIES if args.family == "both" else (args.family,)
    histories = []
    threads = torch.get_num_threads()
    torch.set_num_threads(args.threads)
    try:
        for family in families:
            print(f"training the {LABELS[family]} on {len(train)} digits ...", flush=True)
            histories.append(train_family(family, train, test, args))
    finally:
        torch.set_num_threads(threads)  # main() may run inside a larger process (the tests)
    plot(histories, png, f"VAE on 8×8 digits (latent d={args.latent_dim}): ELBO terms per "
                         "epoch, KL from gaussdiv.kl")
    report = {"settings": {k: (str(v) if isinstance(v, Path) else v)
                           for k, v in vars(args).items()},
              "torch": torch.__version__, "gaussdiv": gaussdiv.__version__,
              "families": [asdict(h) for h in histories]}
    metrics.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print_summary(histories, args)
    print(f"\nwrote {png} and {metrics}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

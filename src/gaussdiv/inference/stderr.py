r"""Standard errors of KL(A‖B), KL(B‖A) and Jeffreys between two fitted Gaussians.

First order (the delta method). A divergence D(μ_a, Σ_a, μ_b, Σ_b) with gradient g_s = ∂D/∂μ_s
and G_s = ∂D/∂Σ_s (symmetric) varies, for Gaussian rows, as

    Var D̂ ≈ Σ_{s ∈ {a, b}} [ g_sᵀ Σ_s g_s + 2 tr(G_s Σ_s G_s Σ_s) ] / n_s

because Var x̄ = Σ/n and Var tr(G S) = 2 tr(GΣGΣ)/n. For KL(A‖B), with Δ = μ_a − μ_b and
C_a = Σ_a + ΔΔᵀ:

    g_a = Σ_b⁻¹Δ,   G_a = ½(Σ_b⁻¹ − Σ_a⁻¹),   g_b = −Σ_b⁻¹Δ,   G_b = ½(Σ_b⁻¹ − Σ_b⁻¹C_aΣ_b⁻¹)

(KL(B‖A) swaps the roles; Jeffreys adds the two gradients). Second order. At A = B the
gradient vanishes and the plug-in behaves as ½hχ²_k, h = 1/n_a + 1/n_b, k = d + d(d + 1)/2
parameters, whose variance h²k/2 is added (×4 for Jeffreys ≈ twice a KL there), so the error
does not collapse to zero near the null.

Used to studentise the bootstrap (:mod:`gaussdiv.inference.intervals`), where it only needs to
track how the spread changes with the parameters, and for the normal interval when no
bootstrap is run.
"""

from __future__ import annotations

import numpy as np


def kl_stderr(ma: np.ndarray, sa: np.ndarray, mb: np.ndarray, sb: np.ndarray, na: int,
              nb: int) -> np.ndarray:
    """(3, *batch) standard errors of KL(A‖B), KL(B‖A), J for means (*batch, d) and
    covariances (*batch, d, d) fitted to n_a and n_b rows."""
    d = ma.shape[-1]
    ai, bi = np.linalg.inv(sa), np.linalg.inv(sb)
    delta = ma - mb
    outer = delta[..., :, None] * delta[..., None, :]
    ai_delta = np.einsum("...ij,...j->...i", ai, delta)
    bi_delta = np.einsum("...ij,...j->...i", bi, delta)
    ab = (bi_delta, 0.5 * (bi - ai), -bi_delta, 0.5 * (bi - bi @ (sa + outer) @ bi))
    ba = (ai_delta, 0.5 * (ai - ai @ (sb + outer) @ ai), -ai_delta, 0.5 * (ai - bi))
    jeffreys = tuple(x + y for x, y in zip(ab, ba, strict=True))
    h, k = 1 / na + 1 / nb, d + d * (d + 1) / 2
    out = []
    for grads, c in ((ab, 1.0), (ba, 1.0), (jeffreys, 2.0)):
        g_a, big_a, g_b, big_b = grads
        var = (_variance(g_a, big_a, sa) / na + _variance(g_b, big_b, sb) / nb
               + c * c * h * h * k / 2)
        out.append(np.sqrt(np.maximum(var, 0.0)))  # rounding can push a near-0 sum below 0
    return np.stack(out)


def _variance(g: np.ndarray, big_g: np.ndarray, cov: np.ndarray) -> np.ndarray:
    """gᵀΣg + 2 tr(GΣGΣ): the variance of one data set's contribution, times its n."""
    gs = big_g @ cov
    return np.einsum("...i,...ij,...j->...", g, cov, g) + 2 * np.einsum("...ij,...ji->...",
                                                                         gs, gs)

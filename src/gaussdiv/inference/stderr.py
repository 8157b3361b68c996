r"""Standard errors of KL(A‖B), KL(B‖A) and Jeffreys between two fitted Gaussians.

First order (the delta method). A divergence D(μ_a, Σ_a, μ_b, Σ_b) with gradient g_s = ∂D/∂μ_s
and G_s = ∂D/∂Σ_s (symmetric) varies, for Gaussian rows, as

    Var D̂ ≈ Σ_{s ∈ {a, b}} [ g_sᵀ Σ_s g_s + 2 tr(G_s Σ_s G_s Σ_s) ] / n_s

because Var x̄ = Σ/n and Var tr(G S) = 2 tr(GΣGΣ)/n. For KL(A‖B), with Δ = μ_a − μ_b and
C_a = Σ_a + ΔΔᵀ:

    g_a = Σ_b⁻¹Δ,   G_a = ½(Σ_b⁻¹ − Σ_a⁻¹),   g_b = −Σ_b⁻¹Δ,   G_b = ½(Σ_b⁻¹ − Σ_b⁻¹C_aΣ_b⁻¹)

(KL(B‖A) swaps the roles; Jeffreys adds the two gradients).

Computed as sums of squares in whitened coordinates, never through an inverse. With the
Cholesky factors Σ_s = L_s L_sᵀ each term is a squared norm, gᵀΣg = ‖L_sᵀg‖² and
tr(GΣGΣ) = ‖L_sᵀGL_s‖²_F (L_sᵀGL_s is symmetric), and every whitened gradient is a polynomial
in the triangular M = L_b⁻¹L_a, N = L_a⁻¹L_b (= M⁻¹), δ_b = L_b⁻¹Δ and δ_a = L_a⁻¹Δ
(L_aᵀΣ_b⁻¹L_a = MᵀM, L_b⁻¹Σ_aL_b⁻ᵀ = MMᵀ, likewise for N). Per data set, times its n:

    KL(A‖B):  a: ‖Mᵀδ_b‖² + ½‖MᵀM − I‖²_F              b: ‖δ_b‖² + ½‖MMᵀ + δ_bδ_bᵀ − I‖²_F
    KL(B‖A):  a: ‖δ_a‖² + ½‖NNᵀ + δ_aδ_aᵀ − I‖²_F       b: ‖Nᵀδ_a‖² + ½‖NᵀN − I‖²_F
    J:        a: ‖Mᵀδ_b + δ_a‖² + ½‖MᵀM − NNᵀ − δ_aδ_aᵀ‖²_F
              b: ‖δ_b + Nᵀδ_a‖² + ½‖NᵀN − MMᵀ − δ_bδ_bᵀ‖²_F

So the variance is ≥ 0 by construction, whatever the conditioning. The factors are the fitted
Gaussians' own (computed once, at construction), corrected to first order for their backward
error F_s where the Gaussian has it (condition bound ≥ 4; see :func:`_corrected`). Explicit
inverses instead, and differences of their products such as Σ_b⁻¹ − Σ_b⁻¹C_aΣ_b⁻¹, lost every
digit for nearly collinear columns (κ ≈ 10¹³: relative errors up to 2·10³, and negative
variances); this form is within ≈ (κu)² of the mpmath value (measured: 6·10⁻⁶ there, 10⁻¹⁰
at κ ≈ 10¹¹, 10⁻¹⁵ at κ ≈ 10³).

Second order. At A = B the gradient vanishes and the plug-in behaves as ½hχ²_k,
h = 1/n_a + 1/n_b, k = d + d(d + 1)/2 parameters, whose variance h²k/2 is added (×4 for
Jeffreys ≈ twice a KL there), so the error does not collapse to zero near the null (and is
never 0, which the studentized bootstrap divides by).

Used to studentise the bootstrap (:mod:`gaussdiv.inference.intervals`), where it only needs to
track how the spread changes with the parameters, and for the normal interval when no
bootstrap is run.
"""

from __future__ import annotations

import numpy as np

from gaussdiv.gaussian import Gaussian


def kl_stderr(p: Gaussian, q: Gaussian, na: int, nb: int) -> np.ndarray:
    """(3, *batch) standard errors of KL(A‖B), KL(B‖A), J for the full-covariance Gaussians
    A = ``p`` and B = ``q`` (NumPy; batch shapes broadcast) fitted to n_a and n_b rows."""
    ops, d = p.cov.ops, p.dim
    shape = (*np.broadcast_shapes(p.batch_shape, q.batch_shape), d)
    la, lb = (np.broadcast_to(g.cov.factor, (*shape, d)) for g in (p, q))
    delta = np.broadcast_to(np.asarray(p.mean) - np.asarray(q.mean), shape)[..., None]
    # [M | δ_b] = L_b⁻¹[L_a | Δ] and [N | δ_a] = L_a⁻¹[L_b | Δ]: one solve each.
    m_db = ops.solve_triangular(lb, np.concatenate([la, delta], axis=-1), lower=True)
    n_da = ops.solve_triangular(la, np.concatenate([lb, delta], axis=-1), lower=True)
    m_db, n_da = _corrected(m_db, n_da, p.cov.backward_error, q.cov.backward_error, d)
    m, db, n, da = m_db[..., :d], m_db[..., d:], n_da[..., :d], n_da[..., d:]
    mt, nt = np.swapaxes(m, -1, -2), np.swapaxes(n, -1, -2)
    mtm, mmt, nnt, ntn = mt @ m, m @ mt, n @ nt, nt @ n
    dbb, daa = db @ np.swapaxes(db, -1, -2), da @ np.swapaxes(da, -1, -2)
    mt_db, nt_da = mt @ db, nt @ da
    eye = np.eye(d)
    # (whitened g, whitened G) per data set; each side's variance is ‖g‖² + ½‖G‖²_F.
    sides = (((mt_db, mtm - eye), (db, mmt + dbb - eye)),
             ((da, nnt + daa - eye), (nt_da, ntn - eye)),
             ((mt_db + da, mtm - nnt - daa), (db + nt_da, ntn - mmt - dbb)))
    h, k = 1 / na + 1 / nb, d + d * (d + 1) / 2
    out = []
    for ((g_a, big_a), (g_b, big_b)), c in zip(sides, (1.0, 1.0, 2.0), strict=True):
        var = _squares(g_a, big_a) / na + _squares(g_b, big_b) / nb + c * c * h * h * k / 2
        out.append(np.sqrt(var))
    return np.stack(out)


def _squares(g: np.ndarray, big_g: np.ndarray) -> np.ndarray:
    """‖g‖² + ½‖G‖²_F for whitened gradients g (*batch, d, 1) and G (*batch, d, d)."""
    return (g * g).sum(axis=(-2, -1)) + 0.5 * (big_g * big_g).sum(axis=(-2, -1))


def _corrected(m_db: np.ndarray, n_da: np.ndarray, fa: np.ndarray | None, fb: np.ndarray | None,
               d: int) -> tuple[np.ndarray, np.ndarray]:
    """[M | δ_b] and [N | δ_a] of the factors R_s = L̂_s(I + F_s/2) of Σ_s = L̂_s(I + F_s)L̂_sᵀ
    + O(F_s²), F_s the computed factor's backward error (None: negligible, κ < 4):

        R_b⁻¹[R_a | Δ] = (I − F_b/2)[M | δ_b] + [M F_a/2 | 0] + O(F²),  likewise a ↔ b.

    Any factor of Σ_s gives the same norms, so this lifts the accuracy from ≈ κu to ≈ (κu)²."""
    if fa is None and fb is None:
        return m_db, n_da
    m, n = m_db[..., :d], n_da[..., :d]
    out_m, out_n = m_db.copy(), n_da.copy()
    if fb is not None:
        out_m -= 0.5 * (fb @ m_db)
        out_n[..., :d] += 0.5 * (n @ fb)
    if fa is not None:
        out_n -= 0.5 * (fa @ n_da)
        out_m[..., :d] += 0.5 * (m @ fa)
    return out_m, out_n

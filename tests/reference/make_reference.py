"""Generate the arbitrary-precision reference for gaussdiv's accuracy tests.

Run by hand from the repository root (the test suite only *reads* the result):

    python tests/reference/make_reference.py            # writes tests/reference/kl_reference.npz
    python tests/reference/make_reference.py --quick    # smaller d, for trying out changes

It needs numpy and mpmath only (not gaussdiv) and takes a few minutes on two cores.

What it does
------------
Cases are drawn with fixed seeds (``SEED`` below, one independent stream per category, so adding
a category does not change the others). Each case is a pair P = N(m1, S1), Q = N(m2, S2) given in
one of the four parameterisations gaussdiv accepts, plus two points at which ln p(x) is taken:

    cov             S itself                     Gaussian(mean, cov)
    scale_tril      L with S = L Lᵀ              Gaussian.from_scale_tril(mean, L)
    precision       Λ with S = Λ⁻¹              Gaussian.from_precision(mean, Λ)
    precision_tril  R with S⁻¹ = R Rᵀ           Gaussian.from_precision_tril(mean, R)

The stored float arrays (float64, or float32 for the ``float32`` category) are THE inputs: the
reference takes every stored float as an exact number (``mp.mpf(float(x))``, no re-rounding) and
computes, at ``mp.dps = 60`` (DPS below),

    ln|S2|/|S1|, tr(S2⁻¹S1), (m1−m2)ᵀS2⁻¹(m1−m2), KL(P‖Q) = ½(those three − d),
    H(P) = ½(d(1 + ln 2π) + ln|S1|), H_P(Q) = H(P) + KL, ln p(x) at the two points.

Every parameterisation is reduced exactly (in mpmath, never in floats) to a lower factor:
``cov`` gives L = cholesky(S) and ``precision`` gives R = cholesky(Λ) (computed in mpmath), while
``scale_tril`` / ``precision_tril`` *are* those factors (S = L Lᵀ is the matrix whose Cholesky
factor is L, so forming L Lᵀ and factoring it again would only add rounding). The terms then use
exact identities and no explicit inverse: with S⁻¹ = R Rᵀ,

    tr(S2⁻¹S1) = ‖L2⁻¹L1‖²_F  (L, L)      ‖R2ᵀL1‖²_F  (L, R)
               = ‖R1⁻¹R2‖²_F  (R, R)      ‖L2⁻¹R1⁻ᵀ‖²_F (R, L)
    vᵀS⁻¹v    = ‖L⁻¹v‖²  or  ‖Rᵀv‖²,      ln|S| = 2 Σ ln Lᵢᵢ  or  −2 Σ ln Rᵢᵢ.

The textbook sum for KL cancels when P ≈ Q: for KL ≈ 1e-25 against terms ≈ d it loses about 27
of the 60 digits. To *measure* (not assume) how many digits survive, every case (d ≤
CHECK_MAX_DIM, which is all of them) is computed a second time at ``CHECK_DPS`` = 100 digits, and
the number of significant digits on which the two agree is stored per case (``digits``; the
fewest over all quantities); the script refuses to write a file where any stored value has fewer
than MIN_DIGITS = 30. Before the sweep it also checks
its own linear algebra against a straightforward ``mp.cholesky`` / ``mp.lu_solve`` / ``mp.det``
evaluation of the textbook formula on small cases.

Categories (the ``category`` field; ``variant`` says how the pair was built)
----------------------------------------------------------------------------
random     well-conditioned (κ ≤ 1e4) random pairs, d ∈ {1,2,3,5,8,16,32,64}, all
           parameterisations, random means.
near       S1 = S2 + δE, m1 = m2 + δv (E = L2 G L2ᵀ with ‖G‖₂ = 1, so S1 stays SPD), δ ∈
           {1e-1, 1e-2, 1e-4, 1e-6, 1e-8, 1e-10, 1e-12}, d ∈ {2, 8, 32}; variants: both differ,
           only the covariance, only the mean, as scale_tril (L1 = L2 + δF, F lower), as precision
           (Λ1 = Λ2 + δE) and as precision_tril. κ(S2) cycles through 1e1 … 1e4, shrunk by
           ((1+δ)/(1−δ))² so that κ(S1) ≤ 1e4 too. The sums are rounded to floats; the
           reference takes the rounded floats.
identical  P and Q given by the very same arrays: the reference is exactly 0.
illcond    κ ∈ {1e6, 1e8, 1e10, 1e12} (orthogonal matrix times log-spaced eigenvalues), d ∈ {4,16}.
scale      covariances times exact powers of two 2^±500 (≈1e±150; means times 2^±250), d up to
           64, and one d = 400 pair of scale_tril factors with short mantissas (so that the file
           stays small) at 2^±500; also mismatched scales and float32 at 2^±60.
far        Mahalanobis 1e6 … 1e12, and covariances differing by factors 1e±8.
highd      d = 128 and 160.
float32    float32 inputs: random with κ ≤ 1e3 and near-identical with δ ∈ {1e-2, 1e-3}.

Output format (``kl_reference.npz``, read with ``allow_pickle=False``)
----------------------------------------------------------------------
Per case i (zero-padded to three digits): ``c{i}_m1``, ``c{i}_a1``, ``c{i}_m2``, ``c{i}_a2``
(means and the matrix in the parameterisation named by ``kind1`` / ``kind2``) and ``c{i}_x``
(shape (2, d), the log_prob points). Per-case metadata arrays of length n_cases: ``category``,
``variant``, ``dtype``, ``kind1``, ``kind2``, ``same_arrays`` (Q uses P's arrays), ``dim``,
``delta`` (0 where not applicable), ``kappa1``, ``kappa2`` (condition numbers of S1, S2 from
numpy, for information), ``digits``. Reference values are decimal strings with REF_DIGITS = 40
significant digits, one array per quantity: ``ref_kl``, ``ref_entropy``, ``ref_cross_entropy``,
``ref_logdet_ratio``, ``ref_trace``, ``ref_mahalanobis``, ``ref_log_prob`` (n_cases, 2), and
``ref_kl_magnitude`` = ½(|ln-ratio| + trace + Mahalanobis + d), the size of the textbook terms.
Provenance: ``seed``, ``dps``, ``check_dps``, ``ref_digits``, ``generator``.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from mpmath import mp

SEED = 20_260_521
DPS = 60
CHECK_DPS = 100
CHECK_MAX_DIM = 1000
MIN_DIGITS = 30
REF_DIGITS = 40
OUT = Path(__file__).with_name("kl_reference.npz")

KINDS = ("cov", "scale_tril", "precision", "precision_tril")
QUANTITIES = ("kl", "entropy", "cross_entropy", "logdet_ratio", "trace", "mahalanobis",
              "kl_magnitude", "log_prob0", "log_prob1")


# ---------------------------------------------------------------------------- cases
@dataclass
class Case:
    category: str
    variant: str
    dtype: str
    kind1: str
    m1: np.ndarray
    a1: np.ndarray
    kind2: str
    m2: np.ndarray
    a2: np.ndarray
    x: np.ndarray
    delta: float = 0.0
    same_arrays: bool = False
    extra: dict = field(default_factory=dict)

    @property
    def dim(self) -> int:
        return int(self.m1.shape[-1])


def orthogonal(d: int, rng: np.random.Generator) -> np.ndarray:
    q, r = np.linalg.qr(rng.standard_normal((d, d)))
    return q * np.sign(np.diag(r))


def spd(d: int, kappa: float, rng: np.random.Generator, scale: float = 1.0) -> np.ndarray:
    """Q diag(λ) Qᵀ with λ log-spaced on [scale, scale·κ] (shuffled), exactly symmetric."""
    if d == 1:
        return np.array([[scale * float(np.exp(rng.uniform(-1.0, 1.0)))]])
    lam = scale * np.logspace(0.0, np.log10(kappa), d)
    rng.shuffle(lam)
    q = orthogonal(d, rng)
    s = (q * lam) @ q.T
    return 0.5 * (s + s.T)


def loguniform_kappa(rng: np.random.Generator, high: float) -> float:
    return float(10.0 ** rng.uniform(0.0, np.log10(high)))


def sym_unit(d: int, rng: np.random.Generator) -> np.ndarray:
    """A random symmetric G with spectral norm 1."""
    g = rng.standard_normal((d, d))
    g = g + g.T
    return g / np.max(np.abs(np.linalg.eigvalsh(g)))


def whitened_to(factor: np.ndarray, g: np.ndarray) -> np.ndarray:
    """F G Fᵀ, made exactly symmetric."""
    e = factor @ g @ factor.T
    return 0.5 * (e + e.T)


def to_kind(s: np.ndarray, kind: str) -> np.ndarray:
    """The float64 input in ``kind`` for a covariance S (each conversion is itself rounded;
    that does not matter, the rounded result *is* the input)."""
    if kind == "cov":
        return s
    if kind == "scale_tril":
        return np.linalg.cholesky(s)
    lam = np.linalg.inv(s)
    lam = 0.5 * (lam + lam.T)
    if kind == "precision":
        return lam
    return np.linalg.cholesky(lam)


def cov_of(a: np.ndarray, kind: str) -> np.ndarray:
    """Approximate S from an input (float64; only used for points and κ metadata)."""
    a = np.asarray(a, dtype=np.float64)
    if kind == "cov":
        return a
    if kind == "scale_tril":
        return a @ a.T
    lam = a if kind == "precision" else a @ a.T
    return np.linalg.inv(lam)


def points(m: np.ndarray, a: np.ndarray, kind: str, rng: np.random.Generator) -> np.ndarray:
    """Two points: one typical (≈1σ from the mean), one far out (≈10σ)."""
    s = cov_of(a, kind)
    s = 0.5 * (s + s.T)
    w, v = np.linalg.eigh(s)
    root = v * np.sqrt(np.maximum(w, 0.0))
    z = rng.standard_normal((2, m.shape[-1]))
    z[1] *= 10.0
    return np.asarray(m, dtype=np.float64) + z @ root.T


def make_case(category: str, variant: str, kind1: str, m1, s1_or_a1, kind2: str, m2, s2_or_a2,
              rng: np.random.Generator, *, dtype: str = "float64", delta: float = 0.0,
              given: bool = False, same_arrays: bool = False) -> Case:
    """Build a case from covariances (converted to kind) or, with given=True, from inputs."""
    a1 = s1_or_a1 if given else to_kind(s1_or_a1, kind1)
    a2 = s2_or_a2 if given or same_arrays else to_kind(s2_or_a2, kind2)
    np_dtype = np.dtype(dtype)
    m1 = np.asarray(m1, dtype=np_dtype)
    a1 = np.asarray(a1, dtype=np_dtype)
    if same_arrays:
        m2, a2 = m1, a1
    else:
        m2 = np.asarray(m2, dtype=np_dtype)
        a2 = np.asarray(a2, dtype=np_dtype)
    for a, kind in ((a1, kind1), (a2, kind2)):
        if kind.endswith("tril"):
            assert np.all(np.triu(a, 1) == 0) and np.all(np.diag(a) > 0)
        else:
            assert np.array_equal(a, a.T)
    x = points(m1, a1, kind1, rng).astype(np_dtype)
    return Case(category, variant, dtype, kind1, m1, a1, kind2, m2, a2, x, delta, same_arrays)


def cases_random(rng: np.random.Generator, dims) -> list[Case]:
    out = []
    pairs = [("cov", "cov", 10.0), ("cov", "cov", 1e4), ("scale_tril", "scale_tril", 1e4),
             ("precision", "precision", 1e4), ("cov", "precision_tril", 1e3),
             ("precision", "scale_tril", 1e3)]
    for d in dims:
        for k1, k2, kmax in pairs:
            s1 = spd(d, loguniform_kappa(rng, kmax), rng, scale=float(np.exp(rng.uniform(-2, 2))))
            s2 = spd(d, loguniform_kappa(rng, kmax), rng, scale=float(np.exp(rng.uniform(-2, 2))))
            m1, m2 = rng.standard_normal(d), rng.standard_normal(d)
            out.append(make_case("random", f"{k1}/{k2}", k1, m1, s1, k2, m2, s2, rng))
    return out


def near_pair(d: int, kappa: float, delta: float, variant: str, rng: np.random.Generator,
              dtype: str = "float64", category: str = "near", scale: float = 1.0) -> Case:
    """P = Q perturbed by δ in the whitened metric of Q (see the module docstring)."""
    np_dtype = np.dtype(dtype)
    s2 = spd(d, kappa, rng, scale=scale).astype(np_dtype)
    m2 = rng.standard_normal(d).astype(np_dtype) * np_dtype.type(math.sqrt(scale))
    l2 = np.linalg.cholesky(s2.astype(np.float64))
    u = rng.standard_normal(d)
    u /= np.linalg.norm(u)
    dm = (delta * (l2 @ u)).astype(np_dtype)
    m1 = m2 + dm if variant != "cov_only" else m2.copy()
    if variant in ("both", "cov_only", "mean_only"):
        e = whitened_to(l2, sym_unit(d, rng))
        s1 = (s2 + (delta * e).astype(np_dtype)) if variant != "mean_only" else s2.copy()
        s1 = np.asarray(s1, dtype=np_dtype)
        return make_case(category, variant, "cov", m1, s1, "cov", m2, s2, rng, dtype=dtype,
                         delta=delta, given=True)
    if variant == "scale_tril":
        t = np.tril(rng.standard_normal((d, d)))
        t /= np.linalg.norm(t, 2)
        l2c = l2.astype(np_dtype)
        l1 = l2c + (delta * (l2 @ t)).astype(np_dtype)
        l1 = np.tril(l1)
        return make_case(category, variant, "scale_tril", m1, l1, "scale_tril", m2, l2c, rng,
                         dtype=dtype, delta=delta, given=True)
    # precision-side perturbation: Λ1 = Λ2 + δ R2 G R2ᵀ
    lam2 = to_kind(s2.astype(np.float64), "precision")
    r2 = np.linalg.cholesky(lam2)
    g = sym_unit(d, rng)
    lam2c = lam2.astype(np_dtype)
    lam1 = lam2c + (delta * whitened_to(r2, g)).astype(np_dtype)
    if variant == "precision":
        return make_case(category, variant, "precision", m1, lam1, "precision", m2, lam2c, rng,
                         dtype=dtype, delta=delta, given=True)
    assert variant == "precision_tril"
    t = np.tril(rng.standard_normal((d, d)))
    t /= np.linalg.norm(t, 2)
    r2c = r2.astype(np_dtype)
    r1 = np.tril(r2c + (delta * (r2 @ t)).astype(np_dtype))
    return make_case(category, variant, "precision_tril", m1, r1, "precision_tril", m2, r2c,
                     rng, dtype=dtype, delta=delta, given=True)


NEAR_DELTAS = (1e-1, 1e-2, 1e-4, 1e-6, 1e-8, 1e-10, 1e-12)
NEAR_VARIANTS = ("both", "cov_only", "mean_only", "scale_tril", "precision", "precision_tril")


def cases_near(rng: np.random.Generator, dims) -> list[Case]:
    out = []
    kappas = (1e1, 1e2, 1e3, 1e4)
    for d in dims:
        for iv, variant in enumerate(NEAR_VARIANTS):
            for idelta, delta in enumerate(NEAR_DELTAS):
                # κ(S1) ≤ κ(S2)·((1+δ)/(1−δ))²: keep both covariances within κ ≤ 1e4
                shrink = ((1 + delta) / (1 - delta)) ** 2 * (1 + 1e-6)
                kappa = kappas[(iv + idelta) % len(kappas)] / shrink
                out.append(near_pair(d, kappa, delta, variant, rng))
    return out


def cases_identical(rng: np.random.Generator) -> list[Case]:
    out = []
    for d, kappa in ((1, 1.0), (3, 1e2), (8, 1e4), (32, 1e3), (16, 1e10)):
        for kind in KINDS:
            s = spd(d, kappa, rng)
            m = rng.standard_normal(d)
            out.append(make_case("identical", kind, kind, m, s, kind, None, None, rng,
                                 same_arrays=True))
    for d in (2, 8):
        for kind in ("cov", "scale_tril"):
            s = spd(d, 1e2, rng)
            m = rng.standard_normal(d)
            out.append(make_case("identical", kind, kind, m, s, kind, None, None, rng,
                                 dtype="float32", same_arrays=True))
    return out


ILL_KAPPAS = (1e6, 1e8, 1e10, 1e12)


def cases_illcond(rng: np.random.Generator) -> list[Case]:
    out = []
    for d in (4, 16):
        for kappa in ILL_KAPPAS:
            m1, m2 = rng.standard_normal(d), rng.standard_normal(d)
            s_ill, s_ill2, s_well = spd(d, kappa, rng), spd(d, kappa, rng), spd(d, 10.0, rng)
            out.append(make_case("illcond", "both", "cov", m1, s_ill, "cov", m2, s_ill2, rng))
            out.append(make_case("illcond", "q_only", "cov", m1, s_well, "cov", m2, s_ill, rng))
            out.append(make_case("illcond", "p_only", "cov", m1, s_ill, "cov", m2, s_well, rng))
            out.append(make_case("illcond", "scale_tril", "scale_tril", m1, s_ill2, "scale_tril",
                                 m2, s_ill, rng))
            out.append(make_case("illcond", "precision", "precision", m1, s_ill, "precision",
                                 m2, s_ill2, rng))
            c = near_pair(d, kappa, 1e-3, "both", rng, category="illcond")
            c.variant = "near"
            out.append(c)
    return out


def short_mantissa_tril(d: int, rng: np.random.Generator, bits: int = 8) -> np.ndarray:
    """A well-conditioned lower factor whose entries have ≤ `bits` significant bits (these
    compress to a few bytes each, so a d = 400 pair fits in the reference file)."""
    t = np.tril(np.round(rng.standard_normal((d, d)) * 2.0 ** (bits - 3)) / 2.0 ** (bits - 3))
    t = t / 2.0 ** math.ceil(math.log2(math.sqrt(d)))  # exact: power of two
    np.fill_diagonal(t, 1.0 + np.round(rng.uniform(0, 1, d) * 2.0 ** bits) / 2.0 ** bits)
    return t


def cases_scale(rng: np.random.Generator, dims, big_dim: int) -> list[Case]:
    out = []
    for d in dims:
        for k in (500, -500):
            c2, cm = 2.0 ** k, 2.0 ** (k // 2)
            for k1, k2 in (("cov", "cov"), ("scale_tril", "precision")):
                s1, s2 = spd(d, 1e3, rng), spd(d, 1e3, rng)
                m1, m2 = rng.standard_normal(d) * cm, rng.standard_normal(d) * cm
                out.append(make_case("scale", f"2^{k}/{k1}/{k2}", k1, m1, s1 * c2, k2, m2,
                                     s2 * c2, rng))
            c = near_pair(d, 1e2, 1e-8, "both", rng, category="scale", scale=c2)
            c.variant = f"2^{k}/near"
            out.append(c)
        # mismatched scales: S1 ≈ 2^300, S2 ≈ 2^-300 (KL ≈ 2^600, trace far beyond 1e150)
        s1, s2 = spd(d, 1e2, rng) * 2.0 ** 300, spd(d, 1e2, rng) * 2.0 ** -300
        out.append(make_case("scale", "2^300|2^-300/cov", "cov", rng.standard_normal(d), s1,
                             "cov", rng.standard_normal(d), s2, rng))
        out.append(make_case("scale", "2^-300|2^300/cov", "cov", rng.standard_normal(d), s2,
                             "cov", rng.standard_normal(d), s1, rng))
    for k in (60, -60):  # float32: |S| = 2^(±60 d) is far outside float32's range
        s1, s2 = spd(16, 1e2, rng) * 2.0 ** k, spd(16, 1e2, rng) * 2.0 ** k
        cm = 2.0 ** (k // 2)
        m1, m2 = rng.standard_normal(16) * cm, rng.standard_normal(16) * cm
        out.append(make_case("scale", f"2^{k}/cov/cov", "cov", m1, s1, "cov", m2, s2, rng,
                             dtype="float32"))
    if big_dim:
        for k in (500, -500):
            l1 = short_mantissa_tril(big_dim, rng) * 2.0 ** (k // 2)
            l2 = short_mantissa_tril(big_dim, rng) * 2.0 ** (k // 2)
            m1 = np.round(rng.standard_normal(big_dim) * 8) / 8 * 2.0 ** (k // 2)
            m2 = np.round(rng.standard_normal(big_dim) * 8) / 8 * 2.0 ** (k // 2)
            out.append(make_case("scale", f"2^{k}/scale_tril/short", "scale_tril", m1, l1,
                                 "scale_tril", m2, l2, rng, given=True))
    return out


def cases_far(rng: np.random.Generator) -> list[Case]:
    out = []
    for d in (3, 16):
        for maha in (1e6, 1e8, 1e10, 1e12):
            s1, s2 = spd(d, 1e2, rng), spd(d, 1e3, rng)
            m2 = rng.standard_normal(d)
            u = rng.standard_normal(d)
            u *= math.sqrt(maha) / np.linalg.norm(u)
            m1 = m2 + np.linalg.cholesky(s2) @ u
            out.append(make_case("far", f"maha{maha:.0e}", "cov", m1, s1, "cov", m2, s2, rng))
        for factor in (1e-8, 1e8):
            s1, s2 = spd(d, 1e2, rng) * factor, spd(d, 1e2, rng)
            m1, m2 = rng.standard_normal(d), rng.standard_normal(d)
            out.append(make_case("far", f"cov_x{factor:.0e}", "cov", m1, s1, "cov", m2, s2, rng))
            out.append(make_case("far", f"cov_x{factor:.0e}", "scale_tril", m1, s1, "precision",
                                 m2, s2, rng))
        s1, s2 = spd(d, 1e3, rng) * 1e6, spd(d, 1e3, rng) * 1e-6
        m1, m2 = rng.standard_normal(d) * 1e5, rng.standard_normal(d)
        out.append(make_case("far", "all_far", "cov", m1, s1, "cov", m2, s2, rng))
    return out


def cases_highd(rng: np.random.Generator, dims) -> list[Case]:
    out = []
    for d in dims:
        s1, s2 = spd(d, 1e3, rng), spd(d, 1e3, rng)
        m1, m2 = rng.standard_normal(d), rng.standard_normal(d)
        out.append(make_case("highd", "cov/cov", "cov", m1, s1, "cov", m2, s2, rng))
        if d <= 128:  # the same pair in other parameterisations (file size: one d only)
            out.append(make_case("highd", "scale_tril/precision", "scale_tril", m1, s1,
                                 "precision", m2, s2, rng))
        c = near_pair(d, 1e3, 1e-8, "both", rng, category="highd")
        c.variant = "near"
        out.append(c)
    return out


def cases_float32(rng: np.random.Generator, dims) -> list[Case]:
    out = []
    for d in dims:
        for k1, k2 in (("cov", "cov"), ("scale_tril", "scale_tril"), ("precision", "cov")):
            s1 = spd(d, loguniform_kappa(rng, 1e3), rng)
            s2 = spd(d, loguniform_kappa(rng, 1e3), rng)
            m1, m2 = rng.standard_normal(d), rng.standard_normal(d)
            out.append(make_case("float32", f"random/{k1}/{k2}", k1, m1,
                                 s1.astype(np.float32), k2, m2, s2.astype(np.float32), rng,
                                 dtype="float32"))
        for delta in (1e-2, 1e-3):
            for variant in ("both", "cov_only", "mean_only", "scale_tril"):
                c = near_pair(d, 1e2, delta, variant, rng, dtype="float32", category="float32")
                c.variant = f"near/{variant}"
                out.append(c)
    return out


def all_cases(quick: bool) -> list[Case]:
    seeds = np.random.SeedSequence(SEED).spawn(8)
    rngs = [np.random.default_rng(s) for s in seeds]
    if quick:
        return (cases_random(rngs[0], (1, 2, 3, 8)) + cases_near(rngs[1], (2, 8))
                + cases_identical(rngs[2]) + cases_illcond(rngs[3])
                + cases_scale(rngs[4], (2, 8), 0) + cases_far(rngs[5])
                + cases_highd(rngs[6], (24,)) + cases_float32(rngs[7], (2, 8)))
    return (cases_random(rngs[0], (1, 2, 3, 5, 8, 16, 32, 64)) + cases_near(rngs[1], (2, 8, 32))
            + cases_identical(rngs[2]) + cases_illcond(rngs[3])
            + cases_scale(rngs[4], (2, 8, 32, 64), 400) + cases_far(rngs[5])
            + cases_highd(rngs[6], (128, 160)) + cases_float32(rngs[7], (2, 8, 32)))


# ---------------------------------------------------------------------------- mpmath
def mp_vector(a: np.ndarray) -> list:
    return [mp.mpf(float(v)) for v in np.asarray(a).ravel()]


def mp_matrix(a: np.ndarray) -> list[list]:
    """Exact conversion: every float (float32 too, via float()) is representable as an mpf."""
    return [[mp.mpf(float(v)) for v in row] for row in np.asarray(a)]


def mp_cholesky(a: list[list]) -> list[list]:
    """Lower Cholesky factor (inner products by mp.fdot, one rounding each)."""
    d = len(a)
    f = [[mp.zero] * d for _ in range(d)]
    for j in range(d):
        fj = f[j]
        pivot = a[j][j] - mp.fdot(fj[:j], fj[:j])
        if pivot <= 0:
            raise ValueError("matrix is not positive definite in mpmath")
        fjj = mp.sqrt(pivot)
        fj[j] = fjj
        for i in range(j + 1, d):
            fi = f[i]
            fi[j] = (a[i][j] - mp.fdot(fi[:j], fj[:j])) / fjj
    return f


def mp_lower_solve(t: list[list], b: list[list]) -> list[list]:
    """X with T X = B, T lower triangular; B and X given as lists of columns."""
    d = len(t)
    out = []
    for col in b:
        x = [mp.zero] * d
        start = next((i for i, v in enumerate(col) if v != 0), d)  # leading zeros stay zero
        for i in range(start, d):
            x[i] = (col[i] - mp.fdot(t[i][start:i], x[start:i])) / t[i][i]
        out.append(x)
    return out


def mp_upper_inverse_columns(r: list[list]) -> list[list]:
    """Columns of R⁻ᵀ (upper triangular) for lower R: column j solves Rᵀ y = e_j."""
    d = len(r)
    cols = []
    for j in range(d):
        y = [mp.zero] * d
        for i in range(j, -1, -1):
            rhs = (mp.one if i == j else mp.zero) - mp.fdot(
                [r[k][i] for k in range(i + 1, j + 1)], y[i + 1:j + 1])
            y[i] = rhs / r[i][i]
        cols.append(y)
    return cols


def columns(m: list[list]) -> list[list]:
    d = len(m)
    return [[m[i][j] for i in range(d)] for j in range(d)]


def frob2(cols: list[list]) -> mp.mpf:
    return mp.fsum(mp.fdot(c, c) for c in cols)


@dataclass
class MpGaussian:
    """S = L Lᵀ (side 'L') or S⁻¹ = R Rᵀ (side 'R'), exact factor in mpmath."""

    mean: list
    side: str
    factor: list[list]

    @classmethod
    def build(cls, mean: np.ndarray, a: np.ndarray, kind: str) -> MpGaussian:
        m = mp_matrix(a)
        side = "L" if kind in ("cov", "scale_tril") else "R"
        factor = mp_cholesky(m) if kind in ("cov", "precision") else m
        return cls(mp_vector(mean), side, factor)

    @property
    def dim(self) -> int:
        return len(self.mean)

    def logdet(self) -> mp.mpf:
        half = mp.fsum(mp.log(self.factor[i][i]) for i in range(self.dim))
        return 2 * half if self.side == "L" else -2 * half

    def mahalanobis(self, v: list) -> mp.mpf:
        if self.side == "L":
            w = mp_lower_solve(self.factor, [v])[0]
        else:  # Rᵀ v
            d = self.dim
            w = [mp.fdot([self.factor[k][i] for k in range(i, d)], v[i:]) for i in range(d)]
        return mp.fdot(w, w)


def mp_trace(p: MpGaussian, q: MpGaussian) -> mp.mpf:
    """tr(S_q⁻¹ S_p) by the identities in the module docstring."""
    d = p.dim
    if p.side == "L" and q.side == "L":
        return frob2(mp_lower_solve(q.factor, columns(p.factor)))
    if p.side == "R" and q.side == "R":
        return frob2(mp_lower_solve(p.factor, columns(q.factor)))
    if p.side == "L" and q.side == "R":  # ‖R_qᵀ L_p‖²: (R_qᵀ L_p)_{ij} = Σ_k R_q[k][i] L_p[k][j]
        lp, rq = p.factor, q.factor
        total = []
        for i in range(d):
            rcol = [rq[k][i] for k in range(d)]
            for j in range(d):
                total.append(mp.fdot(rcol[max(i, j):], [lp[k][j] for k in range(max(i, j), d)]))
        return mp.fdot(total, total)
    # p R, q L: ‖L_q⁻¹ R_p⁻ᵀ‖²
    return frob2(mp_lower_solve(q.factor, mp_upper_inverse_columns(p.factor)))


def reference(case: Case, dps: int) -> dict[str, mp.mpf]:
    with mp.workdps(dps):
        p = MpGaussian.build(case.m1, case.a1, case.kind1)
        q = p if case.same_arrays else MpGaussian.build(case.m2, case.a2, case.kind2)
        d = p.dim
        logdet_p = p.logdet()
        logdet_ratio = q.logdet() - logdet_p
        trace = mp_trace(p, q)
        diff = [a - b for a, b in zip(p.mean, q.mean, strict=True)]
        maha = q.mahalanobis(diff)
        kl = (logdet_ratio + trace + maha - d) / 2
        log2pi = mp.log(2 * mp.pi)
        ent = (d * (1 + log2pi) + logdet_p) / 2
        out = {
            "kl": kl, "entropy": ent, "cross_entropy": ent + kl, "logdet_ratio": logdet_ratio,
            "trace": trace, "mahalanobis": maha,
            "kl_magnitude": (abs(logdet_ratio) + trace + maha + d) / 2,
        }
        for k in range(2):
            v = [a - b for a, b in zip(mp_vector(case.x[k]), p.mean, strict=True)]
            out[f"log_prob{k}"] = -(d * log2pi + logdet_p + p.mahalanobis(v)) / 2
        return {k: +v for k, v in out.items()}


def agreement_digits(a: mp.mpf, b: mp.mpf) -> float:
    """Significant digits on which a (lower precision) agrees with b."""
    if a == b:
        return float(CHECK_DPS)
    if b == 0:
        return -math.inf
    return float(-mp.log10(abs(a - b) / abs(b)))


def textbook_reference(case: Case) -> mp.mpf:
    """KL from dense S1, S2 with mp.cholesky / mp.lu_solve / mp.det (self-check only)."""
    def dense(a: np.ndarray, kind: str):
        m = mp.matrix(mp_matrix(a))
        if kind == "scale_tril":
            return m * m.T
        if kind == "precision":
            return m ** -1
        if kind == "precision_tril":
            return (m * m.T) ** -1
        return m

    s1, s2 = dense(case.a1, case.kind1), dense(case.a2, case.kind2)
    d = s1.rows
    trace = mp.fsum(mp.lu_solve(s2, s1.column(j))[j] for j in range(d))
    dm = mp.matrix(mp_vector(case.m1)) - mp.matrix(mp_vector(case.m2))
    maha = (dm.T * mp.lu_solve(s2, dm))[0]
    chol1 = mp.cholesky(s1)
    ld1 = 2 * mp.fsum(mp.log(chol1[i, i]) for i in range(d))  # ln|S1| from mp.cholesky
    ld2 = mp.log(mp.det(s2))  # ln|S2| from mp.det (LU), an independent route
    return (ld2 - ld1 + trace + maha - d) / 2


def self_check(rng: np.random.Generator) -> None:
    """Our factor identities against the textbook formula in mpmath, all kind pairs."""
    worst = 0.0
    for d in (1, 3, 6):
        for k1 in KINDS:
            for k2 in KINDS:
                s1, s2 = spd(d, 1e3, rng), spd(d, 1e3, rng)
                c = make_case("check", "", k1, rng.standard_normal(d), s1, k2,
                              rng.standard_normal(d), s2, rng)
                with mp.workdps(80):
                    ref = reference(c, 80)["kl"]
                    alt = textbook_reference(c)
                    err = float(abs(ref - alt) / abs(alt))
                worst = max(worst, err)
                if err > 1e-60:
                    raise AssertionError(f"self-check failed for {k1}/{k2} d={d}: {err:.3g}")
    print(f"self-check: factor identities agree with mp.lu_solve/mp.det to {worst:.1e}")


# ---------------------------------------------------------------------------- main
def kappa_of(a: np.ndarray, kind: str) -> float:
    """κ(S) = κ(S⁻¹), from the given matrix's eigenvalues or the factor's singular values
    (no inverse, so it is right to a few digits even at κ = 1e12)."""
    a = np.asarray(a, dtype=np.float64)
    if kind.endswith("tril"):
        sv = np.linalg.svd(a, compute_uv=False)
        return float((sv[0] / sv[-1]) ** 2)
    w = np.linalg.eigvalsh(a)
    return float(w[-1] / w[0])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="small dimensions only")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args(argv)
    mp.dps = DPS
    start = time.perf_counter()
    self_check(np.random.default_rng(SEED + 1))
    cases = all_cases(args.quick)
    print(f"{len(cases)} cases")
    arrays: dict[str, np.ndarray] = {}
    refs = {q: [] for q in QUANTITIES}
    meta = {k: [] for k in ("category", "variant", "dtype", "kind1", "kind2", "same_arrays",
                            "dim", "delta", "kappa1", "kappa2", "digits")}
    for i, c in enumerate(cases):
        t0 = time.perf_counter()
        ref = reference(c, DPS)
        if c.dim <= CHECK_MAX_DIM:
            check = reference(c, CHECK_DPS)
            digits = min(agreement_digits(ref[q], check[q]) for q in QUANTITIES)
        else:
            digits = math.nan
        if c.same_arrays and ref["kl"] != 0:
            raise AssertionError(f"case {i}: identical arrays but reference KL = {ref['kl']}")
        if digits < MIN_DIGITS:
            raise AssertionError(f"case {i} ({c.category}/{c.variant}): only {digits:.1f} digits")
        key = f"c{i:03d}"
        arrays[f"{key}_m1"], arrays[f"{key}_a1"] = c.m1, c.a1
        arrays[f"{key}_m2"], arrays[f"{key}_a2"] = c.m2, c.a2
        arrays[f"{key}_x"] = c.x
        for q in QUANTITIES:
            refs[q].append(mp.nstr(ref[q], REF_DIGITS, strip_zeros=False))
        for k, v in (("category", c.category), ("variant", c.variant), ("dtype", c.dtype),
                     ("kind1", c.kind1), ("kind2", c.kind2), ("same_arrays", c.same_arrays),
                     ("dim", c.dim), ("delta", c.delta), ("kappa1", kappa_of(c.a1, c.kind1)),
                     ("kappa2", kappa_of(c.a2, c.kind2)), ("digits", digits)):
            meta[k].append(v)
        print(f"[{i:3d}] {c.category:9s} {c.variant:24s} d={c.dim:3d} {c.dtype} "
              f"KL={mp.nstr(ref['kl'], 8):>16s} digits={digits:5.1f} "
              f"{time.perf_counter() - t0:6.2f}s", flush=True)
    out = dict(arrays)
    for k, v in meta.items():
        out[k] = np.array(v)
    for q in QUANTITIES:
        if q.startswith("log_prob"):
            continue
        out[f"ref_{q}"] = np.array(refs[q])
    out["ref_log_prob"] = np.stack([np.array(refs["log_prob0"]), np.array(refs["log_prob1"])], 1)
    out["seed"] = np.array(SEED)
    out["dps"] = np.array(DPS)
    out["check_dps"] = np.array(CHECK_DPS)
    out["ref_digits"] = np.array(REF_DIGITS)
    out["generator"] = np.array("tests/reference/make_reference.py")
    np.savez_compressed(args.out, **out)
    elapsed = time.perf_counter() - start
    size = args.out.stat().st_size
    finite_digits = [x for x in meta["digits"] if not math.isnan(x)]
    print(f"wrote {args.out} ({size / 1e6:.2f} MB, {len(cases)} cases) in {elapsed:.0f} s; "
          f"fewest verified digits {min(finite_digits):.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Generate the mpmath reference for KL(P‖Q) over every ordered pair of structure kinds.

Run by hand from the repository root (tests/test_pair_matrix.py only *reads* the result):

    python tests/reference/make_pair_matrix.py             # writes tests/reference/pair_matrix.npz
    python tests/reference/make_pair_matrix.py --quick     # d = 3 only, for trying out changes
    python tests/reference/make_pair_matrix.py --jobs 1    # no worker processes

It needs numpy and mpmath only (not gaussdiv) and imports helpers from make_reference.py (next
to this file) and tests/mpref.py. A few minutes on two cores.

Structure kinds (KINDS below) and the public constructor each one stands for
------------------------------------------------------------------------------
    cov             Gaussian(mean, cov)                    Σ = cov
    precision       Gaussian.from_precision(mean, Λ)       Σ = Λ⁻¹
    scale_tril      Gaussian.from_scale_tril(mean, L)      Σ = L Lᵀ
    precision_tril  Gaussian.from_precision_tril(mean, R)  Σ = (R Rᵀ)⁻¹
    var             Gaussian.diag(mean, var=v)             Σ = diag(v)
    std             Gaussian.diag(mean, std=s)             Σ = diag(s²)
    logvar          Gaussian.diag(mean, logvar=l)          Σ = diag(exp l)
    isotropic       Gaussian.isotropic(mean, c)            Σ = c I (c a scalar)
    standard        Gaussian.standard(d)                   N(0, I)
    lowrank         Gaussian.lowrank(mean, W, v)           Σ = W Wᵀ + diag(v), W (d, RANK)
    kronecker       Gaussian.kronecker(mean, A, B)         Σ = A ⊗ B (np.kron), d = p q

Cases (``category``), for every ordered pair (A, B) of kinds and d ∈ DIMS = {3, 20, 64}
(kronecker: p × q = 1×3, 4×5, 8×8)
------------------------------------------------------------------------------------------
separated  P a random Gaussian of kind A, Q an independent one of kind B (κ ≤ 100, random
           means; none for standard/standard, which are the same distribution).
near       δ ∈ DELTAS = {1e-1, 1e-4, 1e-8, 1e-12}. A base N(μ₀, Σ₀) that both kinds can represent
           (``base_family``: the intersection of the two kinds' families — dense, lowrank
           W Wᵀ + diag(v), kronecker A₀ ⊗ B₀, diagonal, diag(a) ⊗ diag(b), c I, I); P is the base
           in kind A, Q the base perturbed by a relative amount ≈ δ *inside kind B's family*
           (``realize``: cov Σ₀ + δ L₀GL₀ᵀ; precision Λ₀ + δ R₀GR₀ᵀ; scale_tril L₀ + δ L₀T;
           precision_tril R₀ + δ R₀T; var v₀(1 + δu); std s₀(1 + δu); logvar ln v₀ + δu;
           isotropic c₀(1 + δu); kronecker (A₀ + δE_A) ⊗ (B₀ + δE_B); lowrank W₀ + δ F and
           v₀(1 + δu) — G symmetric with ‖G‖₂ = 1, T lower with ‖T‖₂ = 1, |u| ≤ 1), and the mean
           of Q is μ₀ + δ L₀ w with ‖w‖ = 1. When B is standard (which cannot be perturbed) P is
           perturbed instead, and so is the mean of P. A lowrank side whose base is diagonal (the
           other kind is diagonal, isotropic, standard or kronecker) would have W = 0: it is
           always perturbed, even when it is P: W = √δ·diag(√v₀)·F/‖F‖₂ (so that
           ‖Σ₀^(-½) W Wᵀ Σ₀^(-½)‖₂ = δ) and v = v₀(1 + δu). standard/standard has no near case.
           Base covariances have κ ≤ 100/1.6, so both sides stay within κ ≤ 100 at δ = 0.1.
           The perturbed floats are rounded; the reference takes the rounded floats.
identical  one random Gaussian per kind and d (and float32 at d = 20); tests use it as both P
           and Q, and also build a second Gaussian from the same arrays. Reference exactly 0.
float32    the near case with δ = F32_DELTA = 1e-4 at d = F32_DIM = 20 of every pair, every
           input cast to float32; the reference takes the float32 values as exact.

Reference
---------
Every stored float is an exact number (``mp.mpf(float(x))``). The covariance is reduced in
mpmath, from the raw inputs, to a lower factor: L with Σ = L Lᵀ (cov: Cholesky of the matrix;
scale_tril: L itself; var: diag(√v); std: diag(|s|); logvar: diag(exp(l/2)); isotropic √c I;
standard I; lowrank: Cholesky of W Wᵀ + diag(v) formed in mpmath; kronecker: Cholesky of A ⊗ B
formed in mpmath) or R with Σ⁻¹ = R Rᵀ (precision: Cholesky of Λ; precision_tril: R itself).
The terms use the same exact identities as make_reference.py (no explicit inverse):
tr(Σ_Q⁻¹Σ_P) = ‖L_Q⁻¹L_P‖²_F, ‖R_QᵀL_P‖²_F, ‖R_P⁻¹R_Q‖²_F or ‖L_Q⁻¹R_P⁻ᵀ‖²_F; vᵀΣ⁻¹v = ‖L⁻¹v‖²
or ‖Rᵀv‖²; ln|Σ| = 2 Σ ln Lᵢᵢ or −2 Σ ln Rᵢᵢ. KL = ½(ln|Σ_Q|/|Σ_P| + trace + Mahalanobis − d).
Every case is computed at DPS = 60 and again at CHECK_DPS = 90 digits; the number of significant
digits on which the two agree is stored (``digits``), and the script refuses to write a file
where it is below MIN_DIGITS = 30. Before the sweep, ``self_check`` compares the factor route
with tests/mpref.py's textbook formula (dense Σ built directly in mpmath — Λ⁻¹ by mp.inverse,
W Wᵀ + diag(v), the Kronecker product — then mp.cholesky and mp.inverse) for every ordered pair.

Output format (``pair_matrix.npz``, read with ``allow_pickle=False``)
--------------------------------------------------------------------
Input arrays are stored once each (deduplicated by content) as ``x00000``, ``x00001``, …; a
symmetric matrix (cov, precision, kronecker's A and B) is stored as its lower triangle
(``np.tril``; rebuild with ``unpack_symmetric``, exact). Per case (arrays of length n_cases):
``category``, ``kind1``, ``kind2``, ``dim``, ``dtype``, ``delta`` (0 where not applicable),
``m1``, ``a1``, ``b1``, ``m2``, ``a2``, ``b2`` (indices of the mean and of the first/second
parameter array of P and Q, −1 where a kind has none: standard has no mean, only lowrank and
kronecker have a second parameter; isotropic's c is a 0-d array), ``kappa1``, ``kappa2``
(numpy condition numbers of Σ_P, Σ_Q, for information), ``digits``, ``ref_kl`` (decimal strings,
REF_DIGITS = 40 significant digits), ``ref_kl_f64`` (the same rounded to float64) and
``ref_kl_magnitude`` = ½(|ln-ratio| + trace + Mahalanobis + d). Provenance: ``seed``, ``dps``,
``check_dps``, ``ref_digits``, ``generator``.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time
from bisect import bisect_left
from dataclasses import dataclass
from multiprocessing import Pool
from pathlib import Path

import numpy as np
from mpmath import mp

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))
import make_reference as mr  # noqa: E402  (helpers: spd, sym_unit, orthogonal, mp_cholesky, …)
import mpref  # noqa: E402  (textbook mpmath KL, self-check only)

SEED = 20_260_602
DPS = 60
CHECK_DPS = 90
MIN_DIGITS = 30
REF_DIGITS = 40
KL_FLOOR = 1e-25  # every float64 near case must have KL above this (the 1e-14 target's range)
OUT = HERE / "pair_matrix.npz"

KINDS = ("cov", "precision", "scale_tril", "precision_tril", "var", "std", "logvar",
         "isotropic", "standard", "lowrank", "kronecker")
DENSE = ("cov", "precision", "scale_tril", "precision_tril")
DIAG = ("var", "std", "logvar")
SYMMETRIC = {"cov": ("a",), "precision": ("a",), "kronecker": ("a", "b")}
DIMS = (3, 20, 64)
DELTAS = (1e-1, 1e-4, 1e-8, 1e-12)
F32_DIM, F32_DELTA = 20, 1e-4
RANK = 2
KRON_SHAPE = {3: (1, 3), 20: (4, 5), 64: (8, 8), 8: (2, 4), 6: (2, 3)}
KAPPA_MAX = 100.0


# ---------------------------------------------------------------------------- inputs
@dataclass
class Spec:
    """One Gaussian as the public constructor of ``kind`` takes it (float arrays)."""

    kind: str
    dim: int
    mean: np.ndarray | None  # None for standard
    a: np.ndarray | None = None  # the matrix / vector / scalar parameter
    b: np.ndarray | None = None  # lowrank's v, kronecker's B

    def astype(self, dtype) -> Spec:
        cast = lambda x: None if x is None else np.asarray(x).astype(dtype)  # noqa: E731
        return Spec(self.kind, self.dim, cast(self.mean), cast(self.a), cast(self.b))


def unpack_symmetric(t: np.ndarray) -> np.ndarray:
    """The symmetric matrix whose lower triangle is ``t`` (exact: adds zeros)."""
    t = np.tril(t)
    return t + np.tril(t, -1).T


def exactly_symmetric(s: np.ndarray) -> np.ndarray:
    return unpack_symmetric(np.asarray(s, dtype=np.float64))


def dense_cov(spec: Spec) -> np.ndarray:
    """Σ in float64 numpy (approximate; for κ metadata and perturbation scales only)."""
    k, d = spec.kind, spec.dim
    a = None if spec.a is None else np.asarray(spec.a, dtype=np.float64)
    b = None if spec.b is None else np.asarray(spec.b, dtype=np.float64)
    if k == "cov":
        return a
    if k == "precision":
        return np.linalg.inv(a)
    if k == "scale_tril":
        return a @ a.T
    if k == "precision_tril":
        return np.linalg.inv(a @ a.T)
    if k == "var":
        return np.diag(a)
    if k == "std":
        return np.diag(a**2)
    if k == "logvar":
        return np.diag(np.exp(a))
    if k == "isotropic":
        return float(a) * np.eye(d)
    if k == "standard":
        return np.eye(d)
    if k == "lowrank":
        return a @ a.T + np.diag(b)
    assert k == "kronecker"
    return np.kron(a, b)


def kappa(s: np.ndarray) -> float:
    w = np.linalg.eigvalsh(0.5 * (s + s.T))
    return float(w[-1] / w[0])


@dataclass
class Base:
    """N(μ₀, Σ₀) in one family: dense (s), lowrank (w, v), kron (fa, fb matrices), diag (v),
    diagkron (va, vb vectors: Σ₀ = diag(kron(va, vb))), iso (c), identity."""

    family: str
    dim: int
    mean: np.ndarray
    s: np.ndarray | None = None
    w: np.ndarray | None = None
    v: np.ndarray | None = None
    fa: np.ndarray | None = None
    fb: np.ndarray | None = None
    c: float = 1.0

    def dense(self) -> np.ndarray:
        f = self.family
        if f == "dense":
            return self.s
        if f == "lowrank":
            return self.w @ self.w.T + np.diag(self.v)
        if f == "kron":
            return np.kron(self.fa, self.fb)
        return np.diag(self.diagonal())

    def diagonal(self) -> np.ndarray:
        f, d = self.family, self.dim
        if f == "diag":
            return self.v
        if f == "diagkron":
            return np.kron(self.fa, self.fb)
        if f == "iso":
            return np.full(d, self.c)
        assert f == "identity", f
        return np.ones(d)

    def kron_factors(self) -> tuple[np.ndarray, np.ndarray]:
        p, q = KRON_SHAPE[self.dim]
        f = self.family
        if f == "kron":
            return self.fa, self.fb
        if f == "diagkron":
            return np.diag(self.fa), np.diag(self.fb)
        if f == "iso":
            return self.c * np.eye(p), np.eye(q)
        assert f == "identity", f
        return np.eye(p), np.eye(q)


def family_of(kind: str) -> str:
    if kind in DENSE:
        return "dense"
    if kind in DIAG:
        return "diag"
    return {"isotropic": "iso", "standard": "identity", "lowrank": "lowrank",
            "kronecker": "kron"}[kind]


def base_family(k1: str, k2: str) -> str:
    """The family of covariances both kinds represent (see the module docstring)."""
    pair = {k1, k2}
    if "standard" in pair:
        return "identity"
    if "isotropic" in pair:
        return "iso"
    if pair & set(DIAG):
        return "diagkron" if "kronecker" in pair else "diag"
    if pair == {"lowrank", "kronecker"}:
        return "diagkron"
    if "lowrank" in pair:
        return "lowrank"
    if "kronecker" in pair:
        return "kron"
    return "dense"


def loguniform(rng: np.random.Generator, lo: float, hi: float, size=None):
    return np.exp(rng.uniform(np.log(lo), np.log(hi), size))


def random_base(family: str, d: int, rng: np.random.Generator, zero_mean: bool,
                kappa_max: float = KAPPA_MAX) -> Base:
    """A random well-conditioned base (κ(Σ₀) ≤ kappa_max) with scale e^U(−1, 1)."""
    scale = float(np.exp(rng.uniform(-1.0, 1.0)))
    mean = np.zeros(d) if zero_mean else rng.standard_normal(d) * math.sqrt(scale)
    p, q = KRON_SHAPE[d]
    if family == "dense":
        s = mr.spd(d, float(loguniform(rng, 1.0, kappa_max)), rng, scale=scale)
        return Base(family, d, mean, s=exactly_symmetric(s))
    if family == "diag":
        r = math.sqrt(kappa_max)
        return Base(family, d, mean, v=scale * loguniform(rng, 1 / r, r, d))
    if family == "iso":
        return Base(family, d, mean, c=scale)
    if family == "identity":
        return Base(family, d, np.zeros(d))
    if family == "diagkron":
        return Base(family, d, mean, fa=scale * loguniform(rng, 0.3, 3.0, p),
                    fb=loguniform(rng, 0.3, 3.0, q))
    if family == "kron":
        ka = float(loguniform(rng, 1.0, math.sqrt(kappa_max)))
        kb = float(loguniform(rng, 1.0, math.sqrt(kappa_max)))
        fa = exactly_symmetric(mr.spd(p, ka, rng, scale=scale))
        fb = exactly_symmetric(mr.spd(q, kb, rng, scale=float(np.exp(rng.uniform(-0.5, 0.5)))))
        return Base(family, d, mean, fa=fa, fb=fb)
    assert family == "lowrank", family
    while True:
        v = scale * loguniform(rng, 0.3, 3.0, d)
        w = rng.standard_normal((d, RANK)) * math.sqrt(scale) * float(rng.uniform(0.2, 1.0))
        b = Base(family, d, mean, w=w, v=v)
        if kappa(b.dense()) <= kappa_max:
            return b


def unit_vector(d: int, rng: np.random.Generator) -> np.ndarray:
    u = rng.standard_normal(d)
    return u / np.linalg.norm(u)


def unit_tril(d: int, rng: np.random.Generator) -> np.ndarray:
    t = np.tril(rng.standard_normal((d, d)))
    return t / np.linalg.norm(t, 2)


def sym_unit(d: int, rng: np.random.Generator) -> np.ndarray:
    if d == 1:
        return np.array([[rng.choice([-1.0, 1.0])]])
    return mr.sym_unit(d, rng)


def perturb_sym(m0: np.ndarray, delta: float, rng: np.random.Generator) -> np.ndarray:
    """m0 + δ F G Fᵀ (F = chol(m0), ‖G‖₂ = 1), exactly symmetric: relative change ≤ δ."""
    f = np.linalg.cholesky(m0)
    return exactly_symmetric(m0 + delta * mr.whitened_to(f, sym_unit(len(m0), rng)))


def realize(kind: str, base: Base, delta: float, rng: np.random.Generator,
            perturb_mean: bool) -> Spec:
    """The base in ``kind``, perturbed by ≈ δ (relative) inside kind's family when δ > 0."""
    d = base.dim
    mean = base.mean
    if perturb_mean and delta:
        mean = mean + delta * (np.linalg.cholesky(base.dense()) @ unit_vector(d, rng))
    if kind == "standard":
        assert base.family == "identity" and delta == 0
        return Spec(kind, d, None)
    u = lambda size: rng.uniform(-1.0, 1.0, size)  # noqa: E731
    if kind in DENSE:
        s0 = exactly_symmetric(base.dense())
        if kind in ("precision", "precision_tril"):
            m0 = exactly_symmetric(np.linalg.inv(s0))
        else:
            m0 = s0
        if kind in ("cov", "precision"):
            a = perturb_sym(m0, delta, rng) if delta else m0
        else:
            f0 = np.linalg.cholesky(m0)
            a = np.tril(f0 + delta * (f0 @ unit_tril(d, rng))) if delta else f0
        return Spec(kind, d, mean, a)
    if kind in DIAG:
        v0 = base.diagonal()
        if kind == "var":
            a = v0 * (1.0 + delta * u(d)) if delta else v0
        elif kind == "std":
            a = np.sqrt(v0) * (1.0 + delta * u(d)) if delta else np.sqrt(v0)
        else:
            a = np.log(v0) + delta * u(d) if delta else np.log(v0)
        return Spec(kind, d, mean, a)
    if kind == "isotropic":
        assert base.family in ("iso", "identity")
        c0 = base.c if base.family == "iso" else 1.0
        sign = rng.choice([-1.0, 1.0])
        c = c0 * (1.0 + delta * sign * rng.uniform(0.5, 1.0)) if delta else c0
        return Spec(kind, d, mean, np.array(c))
    if kind == "kronecker":
        fa, fb = base.kron_factors()
        if delta:
            fa, fb = perturb_sym(fa, delta, rng), perturb_sym(fb, delta, rng)
        return Spec(kind, d, mean, exactly_symmetric(fa), exactly_symmetric(fb))
    assert kind == "lowrank"
    if base.family == "lowrank":
        w0, v0 = base.w, base.v
        if not delta:
            return Spec(kind, d, mean, w0, v0)
        rms = float(np.sqrt(np.mean(w0**2)))
        w = w0 + delta * rms * rng.standard_normal(w0.shape)  # ‖ΔW‖₂ ≈ δ‖W₀‖₂
        return Spec(kind, d, mean, w, v0 * (1.0 + delta * u(d)))
    # a diagonal base: W = 0 would be the exact representation; always perturb (see docstring)
    assert delta, "a lowrank side with a diagonal base is always perturbed"
    v0 = base.diagonal()
    f = rng.standard_normal((d, RANK))
    w = math.sqrt(delta) * np.sqrt(v0)[:, None] * (f / np.linalg.norm(f, 2))
    return Spec(kind, d, mean, w, v0 * (1.0 + delta * u(d)))


# ---------------------------------------------------------------------------- cases
@dataclass
class Case:
    category: str
    p: Spec
    q: Spec
    dtype: str = "float64"
    delta: float = 0.0

    @property
    def dim(self) -> int:
        return self.p.dim

    @property
    def id(self) -> str:
        tail = {"separated": "separated", "identical": "identical",
                "near": f"near{self.delta:.0e}",
                "float32": f"near{self.delta:.0e}-float32"}[self.category]
        return f"{self.p.kind}-{self.q.kind}-d{self.dim}-{tail}"


def rng_for(*key: int) -> np.random.Generator:
    """An independent stream per (category, kinds, d, …): adding cases changes no others."""
    return np.random.default_rng([SEED, *key])


def separated_case(ia: int, ib: int, d: int) -> Case | None:
    k1, k2 = KINDS[ia], KINDS[ib]
    if k1 == k2 == "standard":
        return None
    rng = rng_for(0, ia, ib, d)
    specs = []
    for k in (k1, k2):
        base = random_base(family_of(k), d, rng, zero_mean=k == "standard")
        specs.append(realize(k, base, 0.0, rng, False))
    return Case("separated", *specs)


def near_cases(ia: int, ib: int, d: int) -> list[Case]:
    k1, k2 = KINDS[ia], KINDS[ib]
    if k1 == k2 == "standard":
        return []
    family = base_family(k1, k2)
    # κ(Σ₀)·((1 + δ)/(1 − δ))² ≤ KAPPA_MAX for the largest δ
    base = random_base(family, d, rng_for(1, ia, ib, d), zero_mean=family == "identity",
                       kappa_max=KAPPA_MAX / 1.6)
    out = []
    for idelta, delta in enumerate(DELTAS):
        rng = rng_for(2, ia, ib, d, idelta)
        q_perturbed = k2 != "standard"
        p_delta = delta if (not q_perturbed or (k1 == "lowrank" and family != "lowrank")) else 0
        p = realize(k1, base, p_delta, rng, perturb_mean=not q_perturbed)
        q = realize(k2, base, delta if q_perturbed else 0.0, rng, perturb_mean=q_perturbed)
        out.append(Case("near", p, q, delta=delta))
    return out


def identical_case(ik: int, d: int, dtype: str) -> Case:
    kind = KINDS[ik]
    rng = rng_for(3, ik, d, 0 if dtype == "float64" else 1)
    base = random_base(family_of(kind), d, rng, zero_mean=kind == "standard")
    spec = realize(kind, base, 0.0, rng, False).astype(np.dtype(dtype))
    return Case("identical", spec, spec, dtype=dtype)


def all_cases(dims) -> list[Case]:
    out = []
    n = len(KINDS)
    for d in dims:
        for ia in range(n):
            for ib in range(n):
                c = separated_case(ia, ib, d)
                if c is not None:
                    out.append(c)
                near = near_cases(ia, ib, d)
                out.extend(near)
                if d == F32_DIM:
                    for c in near:
                        if c.delta == F32_DELTA:
                            out.append(Case("float32", c.p.astype(np.float32),
                                            c.q.astype(np.float32), dtype="float32",
                                            delta=c.delta))
        for ik in range(n):
            out.append(identical_case(ik, d, "float64"))
            if d == F32_DIM:
                out.append(identical_case(ik, d, "float32"))
    return out


# ---------------------------------------------------------------------------- mpmath
def mpv(a) -> list:
    return [mp.mpf(float(v)) for v in np.asarray(a).ravel()]


def mpm(a) -> list[list]:
    return [[mp.mpf(float(v)) for v in row] for row in np.asarray(a)]


def stored_matrix(spec: Spec, name: str) -> np.ndarray:
    """The parameter exactly as the test passes it (symmetric ones through the packed form)."""
    value = getattr(spec, name)
    if name in SYMMETRIC.get(spec.kind, ()):
        value = unpack_symmetric(np.tril(value)).astype(np.asarray(value).dtype)
    return value


def diagonal_factor(values: list) -> list[list]:
    d = len(values)
    return [[values[i] if i == j else mp.zero for j in range(d)] for i in range(d)]


@dataclass
class MpGaussian:
    """Σ = L Lᵀ (side 'L') or Σ⁻¹ = R Rᵀ (side 'R'); ``nz[i]``: columns j < i with
    factor[i][j] ≠ 0 (sorted), so that diagonal and Kronecker factors solve fast."""

    mean: list
    side: str
    factor: list[list]
    nz: list[list[int]]

    @classmethod
    def build(cls, spec: Spec) -> MpGaussian:
        k, d = spec.kind, spec.dim
        mean = [mp.zero] * d if spec.mean is None else mpv(spec.mean)
        side = "R" if k in ("precision", "precision_tril") else "L"
        a = None if spec.a is None else stored_matrix(spec, "a")
        b = None if spec.b is None else stored_matrix(spec, "b")
        if k in ("cov", "precision"):
            f = mr.mp_cholesky(mpm(a))
        elif k in ("scale_tril", "precision_tril"):
            f = mpm(a)
        elif k == "var":
            f = diagonal_factor([mp.sqrt(x) for x in mpv(a)])
        elif k == "std":
            f = diagonal_factor([abs(x) for x in mpv(a)])
        elif k == "logvar":
            f = diagonal_factor([mp.exp(x / 2) for x in mpv(a)])
        elif k == "isotropic":
            f = diagonal_factor([mp.sqrt(mpv(a)[0])] * d)
        elif k == "standard":
            f = diagonal_factor([mp.one] * d)
        elif k == "lowrank":
            w, v = mpm(a), mpv(b)
            s = [[mp.fdot(w[i], w[j]) + (v[i] if i == j else 0) for j in range(d)]
                 for i in range(d)]
            f = mr.mp_cholesky(s)
        else:
            assert k == "kronecker"
            fa, fb = mpm(a), mpm(b)
            q = len(fb)
            s = [[fa[i // q][j // q] * fb[i % q][j % q] for j in range(d)] for i in range(d)]
            f = mr.mp_cholesky(s)
        nz = [[j for j in range(i) if f[i][j] != 0] for i in range(d)]
        return cls(mean, side, f, nz)

    @property
    def dim(self) -> int:
        return len(self.mean)

    def logdet(self) -> mp.mpf:
        half = mp.fsum(mp.log(self.factor[i][i]) for i in range(self.dim))
        return 2 * half if self.side == "L" else -2 * half

    def lower_solve(self, col: list) -> list:
        """x with factor · x = col (forward substitution over the nonzeros)."""
        d, t = self.dim, self.factor
        x = [mp.zero] * d
        start = next((i for i, v in enumerate(col) if v != 0), d)
        for i in range(start, d):
            js = self.nz[i][bisect_left(self.nz[i], start):]
            acc = mp.fdot([t[i][j] for j in js], [x[j] for j in js]) if js else mp.zero
            x[i] = (col[i] - acc) / t[i][i]
        return x

    def transpose_times(self, v: list) -> list:
        """factorᵀ v."""
        d, t = self.dim, self.factor
        return [mp.fdot([t[k][i] for k in range(i, d)], v[i:]) for i in range(d)]

    def mahalanobis(self, v: list) -> mp.mpf:
        w = self.lower_solve(v) if self.side == "L" else self.transpose_times(v)
        return mp.fdot(w, w)


def mp_trace(p: MpGaussian, q: MpGaussian) -> mp.mpf:
    """tr(Σ_q⁻¹ Σ_p) by the factor identities of the module docstring."""
    d = p.dim
    if p.side == "L" and q.side == "L":
        return mr.frob2([q.lower_solve(c) for c in mr.columns(p.factor)])
    if p.side == "R" and q.side == "R":
        return mr.frob2([p.lower_solve(c) for c in mr.columns(q.factor)])
    if p.side == "L" and q.side == "R":  # ‖R_qᵀ L_p‖²_F
        return mr.frob2([q.transpose_times(c) for c in mr.columns(p.factor)])
    # p R, q L: ‖L_q⁻¹ R_p⁻ᵀ‖²_F
    assert d == q.dim
    return mr.frob2([q.lower_solve(c) for c in mr.mp_upper_inverse_columns(p.factor)])


def reference(case: Case, dps: int) -> dict[str, mp.mpf]:
    with mp.workdps(dps):
        p, q = MpGaussian.build(case.p), MpGaussian.build(case.q)
        d = p.dim
        logdet_ratio = q.logdet() - p.logdet()
        trace = mp_trace(p, q)
        maha = q.mahalanobis([a - b for a, b in zip(p.mean, q.mean, strict=True)])
        kl = (logdet_ratio + trace + maha - d) / 2
        magnitude = (abs(logdet_ratio) + trace + maha + d) / 2
        return {"kl": +kl, "kl_magnitude": +magnitude}


def dense_mp(spec: Spec) -> mp.matrix:
    """Σ built directly in mpmath from the raw inputs (self-check route)."""
    k, d = spec.kind, spec.dim
    a = None if spec.a is None else stored_matrix(spec, "a")
    b = None if spec.b is None else stored_matrix(spec, "b")
    diag = lambda vals: mp.diag(vals)  # noqa: E731
    if k == "cov":
        return mp.matrix(mpm(a))
    if k == "precision":
        return mp.inverse(mp.matrix(mpm(a)))
    if k == "scale_tril":
        m = mp.matrix(mpm(a))
        return m * m.T
    if k == "precision_tril":
        m = mp.matrix(mpm(a))
        return mp.inverse(m * m.T)
    if k == "var":
        return diag(mpv(a))
    if k == "std":
        return diag([x * x for x in mpv(a)])
    if k == "logvar":
        return diag([mp.exp(x) for x in mpv(a)])
    if k == "isotropic":
        return mpv(a)[0] * mp.eye(d)
    if k == "standard":
        return mp.eye(d)
    if k == "lowrank":
        w = mp.matrix(mpm(a))
        return w * w.T + diag(mpv(b))
    fa, fb = mp.matrix(mpm(a)), mp.matrix(mpm(b))
    q = fb.rows
    out = mp.matrix(d, d)
    for i in range(d):
        for j in range(d):
            out[i, j] = fa[i // q, j // q] * fb[i % q, j % q]
    return out


def self_check() -> None:
    """The factor route against mpref.kl (dense Σ, mp.cholesky, mp.inverse), every ordered
    pair, separated and near (δ = 1e-1) at d = 3, and separated at d = 8."""
    worst = 0.0
    checks = [c for c in all_cases((3,)) if c.category in ("separated", "near")
              and c.delta in (0.0, 1e-1)]
    checks += [c for c in all_cases((8,)) if c.category == "separated"]
    with mp.workdps(80):
        for c in checks:
            ref = reference(c, 80)["kl"]
            m1 = mp.matrix(mpv(np.zeros(c.dim) if c.p.mean is None else c.p.mean))
            m2 = mp.matrix(mpv(np.zeros(c.dim) if c.q.mean is None else c.q.mean))
            alt = mpref.kl(m1, dense_mp(c.p), m2, dense_mp(c.q))
            err = float(abs(ref - alt) / abs(alt))
            worst = max(worst, err)
            if err > 1e-60:
                raise AssertionError(f"self-check failed for {c.id}: {err:.3g}")
    print(f"self-check: {len(checks)} pairs agree with mpref.kl (textbook) to {worst:.1e}")


def agreement_digits(a: mp.mpf, b: mp.mpf) -> float:
    if a == b:
        return float(CHECK_DPS)
    if b == 0:
        return -math.inf
    return float(-mp.log10(abs(a - b) / abs(b)))


def compute(case: Case) -> tuple[str, str, float, float]:
    """(KL string, magnitude string, float64 KL, verified digits) of one case."""
    if case.category == "identical":
        return "0", "0", 0.0, float(CHECK_DPS)
    ref = reference(case, DPS)
    check = reference(case, CHECK_DPS)
    digits = min(agreement_digits(ref[k], check[k]) for k in ref)
    with mp.workdps(DPS):
        return (mp.nstr(ref["kl"], REF_DIGITS, strip_zeros=False),
                mp.nstr(ref["kl_magnitude"], REF_DIGITS, strip_zeros=False),
                float(ref["kl"]), digits)


# ---------------------------------------------------------------------------- main
class ArrayPool:
    """Each distinct input array stored once (dtype, shape and bytes decide)."""

    def __init__(self) -> None:
        self.arrays: list[np.ndarray] = []
        self.index: dict[tuple, int] = {}

    def add(self, value: np.ndarray | None, symmetric: bool = False) -> int:
        if value is None:
            return -1
        value = np.array(value, order="C")  # (np.ascontiguousarray would make 0-d arrays 1-d)
        if symmetric:
            assert np.array_equal(unpack_symmetric(np.tril(value)), value), "not symmetric"
            value = np.tril(value)
        key = (value.dtype.str, value.shape, value.tobytes())
        if key not in self.index:
            self.index[key] = len(self.arrays)
            self.arrays.append(value)
        return self.index[key]


def validate(case: Case) -> None:
    for spec in (case.p, case.q):
        k = spec.kind
        arrays = [x for x in (spec.mean, spec.a, spec.b) if x is not None]
        assert all(np.asarray(x).dtype == np.dtype(case.dtype) for x in arrays), case.id
        assert all(np.all(np.isfinite(x)) for x in arrays), case.id
        if k.endswith("tril"):
            assert np.all(np.triu(spec.a, 1) == 0) and np.all(np.diag(spec.a) > 0), case.id
        if k in ("var", "std", "isotropic") or k == "lowrank":
            assert np.all((spec.a if k != "lowrank" else spec.b) > 0), case.id
        if k == "kronecker":
            assert spec.a.shape[0] * spec.b.shape[0] == spec.dim
        if k == "isotropic":
            assert np.shape(spec.a) == (), "isotropic takes a scalar variance"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="d = 3 only")
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    args = parser.parse_args(argv)
    mp.dps = DPS
    start = time.perf_counter()
    self_check()
    cases = all_cases((3,) if args.quick else DIMS)
    for c in cases:
        validate(c)
    print(f"{len(cases)} cases; {args.jobs} worker(s)", flush=True)
    if args.jobs > 1:
        with Pool(args.jobs) as pool:
            results = pool.map(compute, cases, chunksize=4)
    else:
        results = [compute(c) for c in cases]
    pool_arrays = ArrayPool()
    meta = {k: [] for k in ("category", "kind1", "kind2", "dim", "dtype", "delta", "m1", "a1",
                            "b1", "m2", "a2", "b2", "kappa1", "kappa2", "digits", "ref_kl",
                            "ref_kl_f64", "ref_kl_magnitude")}
    for c, (kl_str, mag_str, kl64, digits) in zip(cases, results, strict=True):
        if digits < MIN_DIGITS:
            raise AssertionError(f"{c.id}: only {digits:.1f} verified digits")
        if c.category in ("near", "separated") and not kl64 >= KL_FLOOR:
            raise AssertionError(f"{c.id}: KL = {kl64:.3g} below {KL_FLOOR:g}")
        for tag, spec in (("1", c.p), ("2", c.q)):
            sym = SYMMETRIC.get(spec.kind, ())
            meta["m" + tag].append(pool_arrays.add(spec.mean))
            meta["a" + tag].append(pool_arrays.add(spec.a, "a" in sym))
            meta["b" + tag].append(pool_arrays.add(spec.b, "b" in sym))
        for k, v in (("category", c.category), ("kind1", c.p.kind), ("kind2", c.q.kind),
                     ("dim", c.dim), ("dtype", c.dtype), ("delta", c.delta),
                     ("kappa1", kappa(dense_cov(c.p))), ("kappa2", kappa(dense_cov(c.q))),
                     ("digits", digits), ("ref_kl", kl_str), ("ref_kl_f64", kl64),
                     ("ref_kl_magnitude", mag_str)):
            meta[k].append(v)
    out = {f"x{i:05d}": a for i, a in enumerate(pool_arrays.arrays)}
    for k, v in meta.items():
        out[k] = np.array(v)
    out["seed"] = np.array(SEED)
    out["dps"] = np.array(DPS)
    out["check_dps"] = np.array(CHECK_DPS)
    out["ref_digits"] = np.array(REF_DIGITS)
    out["generator"] = np.array("tests/reference/make_pair_matrix.py")
    np.savez_compressed(args.out, **out)
    elapsed = time.perf_counter() - start
    kappas = np.maximum(meta["kappa1"], meta["kappa2"])
    print(f"wrote {args.out} ({args.out.stat().st_size / 1e6:.2f} MB, {len(cases)} cases, "
          f"{len(pool_arrays.arrays)} arrays) in {elapsed:.0f} s; fewest verified digits "
          f"{min(meta['digits']):.1f}; largest κ {kappas.max():.3g}; smallest KL "
          f"{min(x for x in meta['ref_kl_f64'] if x > 0):.3g}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Accuracy of gaussdiv against the 60-digit mpmath reference in tests/reference/.

The reference file is made by ``tests/reference/make_reference.py`` (run by hand; see its
docstring). It stores the float inputs of each case and, as decimal strings, the exact value of
KL, its three terms, entropy, cross-entropy and two log-densities for those inputs taken as
exact numbers. Errors are measured in mpmath against the strings, so the reference's own
rounding to float64 does not enter.

Targets (from the specification):
  * float64, both covariances with κ ≤ 1e4: relative error ≤ 1e-14 for every KL ≥ 1e-25,
    near-identical pairs (δ down to 1e-12) included;
  * ill-conditioned, κ up to 1e12: relative error < 5e-6;
  * float32 inputs, computed in float32: relative error ≤ 1e-5 (well-conditioned and
    near-identical);
  * identical arrays: exactly 0.0; never negative; extreme scales finite and accurate.

Every KL target is enforced as stated. They are reachable because gaussdiv corrects, to first
order, for the backward error of its Cholesky factors (residuals formed in extended precision)
and refines the whitening solves of near-identical pairs: a plain float64 Cholesky evaluation is
limited to ≈ κ(S2)·u (u = 2⁻⁵³), ≈ 1e-12 at κ = 1e4 and ≈ 1e-4 at κ = 1e12.

Every divergence test body runs over NumPy, PyTorch and JAX (the ``fw`` fixture of
tests/conftest.py; a framework is skipped only when it is not installed): the Gaussians are
built from that framework's arrays holding the same float64/float32 numbers, results must come
back as that framework's arrays in the input's dtype, and the targets are the same for all
three. NumPy and torch run every case; JAX runs the representative subset ``jax_runs`` and
``_jax_batches`` say (every category and constructor pair, fewer dimensions and batch groups).
Eager JAX compiles each operation anew for every new shape (≈ 25 ms each, ≈ 1 s for the first
KL at a new d), so its cost grows with the number of distinct (dimension, constructors, dtype,
batch) combinations, not with the number of cases: on every case it took ≈ 125 s of the
module's ≈ 130 s (every third case of the large categories saved only 4 % of that); on the
subset, ≈ 85 s. JAX's batches stay small (see ``test_batched_matches_reference``).

``python tests/test_reference.py [numpy] [torch] [jax]`` prints the worst relative error per
category (and per δ for ``near``) as a Markdown table, one column per framework.
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from mpmath import mp

import gaussdiv
from gaussdiv import Gaussian

REF_PATH = Path(__file__).parent / "reference" / "kl_reference.npz"
ERR_DPS = 50  # digits used to compare a float result with the 40-digit reference string

# --- tolerances, each justified by its target --------------------------------------------------
# float64, κ ≤ 1e4 (random, near, scale, far, highd): the specification's bound, applied as is.
KL_RTOL_F64 = 1e-14
# κ from 1e6 to 1e12: the specification's bound for ill-conditioned pairs.
KL_RTOL_ILL = 5e-6
# float32 inputs computed in float32 (u = 6e-8): the specification's bound, ≈ 170 u.
KL_RTOL_F32 = 1e-5
# The float64 target is stated for KL ≥ 1e-25; the reference file keeps every such case above.
KL_FLOOR = 1e-25
# The 1e-14 target applies only where both covariances have κ ≤ 1e4 (condition numbers in the
# file are measured with numpy, hence the small slack).
KAPPA_WELL = 1e4 * (1 + 1e-6)

# The individual terms are bounded by what a Cholesky-based evaluation guarantees. LAPACK's
# factor of S2 is the exact factor of S2 + ΔS2 with ‖ΔS2‖ ≈ u‖S2‖ (u = 2⁻⁵³), and that alone moves
# KL, tr(S2⁻¹S1) and the Mahalanobis term by up to ≈ κ(S2)·u relative, even with the difference
# S1 − S2 taken exactly. (Measured on the worst cases of this file: gaussdiv's error equals the
# change of the exact KL under that backward error to within 30 %.) At κ = 1e4 that is ≈ 1e-12,
# above the 1e-14 target, so a case may miss the target by at most this bound; the margin
# STABILITY_FACTOR = 8 is over the largest measured error/((κ + d)·u) ≈ 2.2 (d·u for the sums).
UNIT_ROUNDOFF = {"float64": 2.0**-53, "float32": 2.0**-24}
STABILITY_FACTOR = 8.0
# Individual terms and densities (the specification bounds only KL): the κ·u bound above, for
# tr(S2⁻¹S1), Mahalanobis (sums of squares of a triangular solve) and the log-determinant-based
# quantities. ln|S2|/|S1|, entropy, cross-entropy and ln p(x) are sums of d logarithms of
# Cholesky pivots, so their error is measured relative to the size of the summed terms (see
# ``_term_scale``), not to their value, which may be ≈ 0.
SUM_QUANTITIES = ("entropy", "cross_entropy", "logdet_ratio", "log_prob0", "log_prob1")


@dataclass(frozen=True)
class Case:
    index: int
    category: str
    variant: str
    dtype: str
    kind1: str
    kind2: str
    same_arrays: bool
    dim: int
    delta: float
    kappa: float  # the larger of the two condition numbers

    @property
    def id(self) -> str:
        parts = [self.category, self.variant.replace("/", "-"), f"d{self.dim}"]
        if self.delta:
            parts.append(f"delta{self.delta:.0e}")
        parts += [self.dtype, f"c{self.index:03d}"]
        return "-".join(parts)


@cache
def _data() -> dict[str, np.ndarray]:
    with np.load(REF_PATH, allow_pickle=False) as f:
        return {k: f[k] for k in f.files}


def _cases() -> list[Case]:
    data = _data()
    return [
        Case(i, str(data["category"][i]), str(data["variant"][i]), str(data["dtype"][i]),
             str(data["kind1"][i]), str(data["kind2"][i]), bool(data["same_arrays"][i]),
             int(data["dim"][i]), float(data["delta"][i]),
             max(float(data["kappa1"][i]), float(data["kappa2"][i])))
        for i in range(len(data["category"]))
    ]


CASES = _cases()
CONSTRUCTORS = {
    "cov": Gaussian,
    "scale_tril": Gaussian.from_scale_tril,
    "precision": Gaussian.from_precision,
    "precision_tril": Gaussian.from_precision_tril,
}


def arrays(case: Case, fw: Any = None) -> tuple[Any, ...]:
    """m1, a1, m2, a2, x of ``case``: NumPy arrays, or ``fw``'s arrays of the same numbers."""
    data = _data()
    key = f"c{case.index:03d}"
    out = tuple(data[f"{key}_{name}"] for name in ("m1", "a1", "m2", "a2", "x"))
    return out if fw is None else tuple(fw.array(a, a.dtype.type) for a in out)


def gaussians(case: Case, fw: Any = None) -> tuple[Gaussian, Gaussian]:
    m1, a1, m2, a2, _ = arrays(case, fw)
    p = CONSTRUCTORS[case.kind1](m1, a1)
    if case.same_arrays:  # a separate Gaussian built from the very same array objects
        return p, CONSTRUCTORS[case.kind1](m1, a1)
    return p, CONSTRUCTORS[case.kind2](m2, a2)


def ref(case: Case, quantity: str) -> mp.mpf:
    with mp.workdps(ERR_DPS):
        return mp.mpf(str(_data()[f"ref_{quantity}"][case.index]))


def ref_log_prob(case: Case, k: int) -> mp.mpf:
    with mp.workdps(ERR_DPS):
        return mp.mpf(str(_data()["ref_log_prob"][case.index, k]))


def rel_err(value: float, exact: mp.mpf) -> float:
    """|value − exact| / |exact| in mpmath (inf for a non-finite value; 0 when both are 0)."""
    value = float(value)
    if not math.isfinite(value):
        return math.inf
    with mp.workdps(ERR_DPS):
        diff = abs(mp.mpf(value) - exact)
        if exact == 0:
            return 0.0 if diff == 0 else math.inf
        return float(diff / abs(exact))


def stability_bound(case: Case) -> float:
    """STABILITY_FACTOR·(κ + d)·u: the error a Cholesky-based evaluation can guarantee."""
    return STABILITY_FACTOR * (case.kappa + case.dim) * UNIT_ROUNDOFF[case.dtype]


def kl_verdict(case: Case, err: float, what: str = "") -> str:
    """'' when the KL error meets the specification target, else the failure message."""
    target = kl_rtol(case)
    if err <= target:
        return ""
    return (f"{what}KL relative error {err:.3g} misses the specification target {target:.0e} "
            f"(κ = {case.kappa:.3g})")


def report(messages: list[str]) -> None:
    failures = [m for m in messages if m]
    if failures:
        pytest.fail("\n".join(failures))


def kl_rtol(case: Case) -> float:
    if case.dtype == "float32":
        return KL_RTOL_F32
    if case.category == "illcond":
        return KL_RTOL_ILL
    assert case.kappa <= KAPPA_WELL, f"{case.id}: κ = {case.kappa:.3g} outside the 1e-14 target"
    return KL_RTOL_F64


def _term_scale(case: Case) -> dict[str, mp.mpf]:
    """Size of the summands behind each log-determinant-based quantity (see SUM_QUANTITIES)."""
    d = case.dim
    with mp.workdps(ERR_DPS):
        log2pi = mp.log(2 * mp.pi)
        logdet1 = 2 * ref(case, "entropy") - d * (1 + log2pi)
        logdet2 = ref(case, "logdet_ratio") + logdet1
        scale = {
            "entropy": (d * (1 + log2pi) + abs(logdet1)) / 2,
            "logdet_ratio": abs(logdet1) + abs(logdet2) + d,
        }
        scale["cross_entropy"] = scale["entropy"] + abs(ref(case, "kl"))
        for k in range(2):
            lp = ref_log_prob(case, k)
            maha = -2 * lp - d * log2pi - logdet1
            scale[f"log_prob{k}"] = (d * log2pi + abs(logdet1) + maha) / 2
        return scale


def measure(case: Case, fw: Any) -> dict[str, float]:
    """Relative errors of every quantity of ``case`` (sum-type ones relative to their scale),
    computed on ``fw``'s arrays; each result must be ``fw``'s array in the case's dtype."""
    p, q = gaussians(case, fw)
    *_, x = arrays(case, fw)
    terms = gaussdiv.kl_terms(p, q)
    result = lambda v: fw.result(v, case.dtype)  # noqa: E731
    out = {"kl": rel_err(result(gaussdiv.kl(p, q)), ref(case, "kl")),
           "terms.kl": rel_err(result(terms.kl), ref(case, "kl")),
           "trace": rel_err(result(terms.trace), ref(case, "trace")),
           "mahalanobis": rel_err(result(terms.mahalanobis), ref(case, "mahalanobis"))}
    values = {"entropy": result(gaussdiv.entropy(p)),
              "cross_entropy": result(gaussdiv.cross_entropy(p, q)),
              "logdet_ratio": result(terms.logdet_ratio)}
    log_prob = result(gaussdiv.log_prob(p, x))
    assert log_prob.shape == (2,)
    scale = _term_scale(case)
    for name, value in values.items():
        out[name] = _scaled_err(value, ref(case, name), scale[name])
    for k in range(2):
        out[f"log_prob{k}"] = _scaled_err(log_prob[k], ref_log_prob(case, k),
                                          scale[f"log_prob{k}"])
    return out


def _scaled_err(value: float, exact: mp.mpf, scale: mp.mpf) -> float:
    value = float(value)
    if not math.isfinite(value):
        return math.inf
    with mp.workdps(ERR_DPS):
        return float(abs(mp.mpf(value) - exact) / scale)


FRAMEWORKS = ("numpy", "torch", "jax")  # the names tests/conftest.py's ``fw`` fixture takes
# JAX's subset: random pairs at these d (every constructor pair at each), highd at d = 128.
JAX_RANDOM_DIMS = (1, 3, 8, 32)
JAX_HIGHD_DIMS = (128,)


def jax_runs(case: Case) -> bool:
    """Whether JAX runs ``case``: every case of every category but ``random`` (only at
    JAX_RANDOM_DIMS) and ``highd`` (only at JAX_HIGHD_DIMS). Fixed, so deterministic."""
    if case.category == "random":
        return case.dim in JAX_RANDOM_DIMS
    if case.category == "highd":
        return case.dim in JAX_HIGHD_DIMS
    return True


def jax_in_ci(key: tuple[Any, ...], seen: set[tuple[Any, ...]]) -> bool:
    """Whether a JAX case (or batch group) with this (category, kinds, dtype) key runs in CI:
    the first of each key does; the others (JAX compiles every shape anew, ~0.6 s a case) are
    marked ``exhaustive`` and run with ``-m exhaustive``. Deterministic (CASES' order)."""
    if key in seen:
        return False
    seen.add(key)
    return True


def by_category(*categories: str) -> list:
    """(framework, case) parameters for the cases of ``categories``; JAX on ``jax_runs``, in
    CI on the first case of each category × structure pair × dtype (``jax_in_ci``)."""
    seen: set[tuple[Any, ...]] = set()
    out = []
    for name in FRAMEWORKS:
        for c in CASES:
            if c.category not in categories or (name == "jax" and not jax_runs(c)):
                continue
            key = (c.category, c.kind1, c.kind2, c.dtype)
            marks = () if name != "jax" or jax_in_ci(key, seen) else pytest.mark.exhaustive
            out.append(pytest.param(name, c, id=f"{name}-{c.id}", marks=marks))
    return out


# ---------------------------------------------------------------------------- the file itself
def test_reference_file_provenance():
    data = _data()
    assert int(data["dps"]) >= 50 and int(data["ref_digits"]) >= 30
    assert len(CASES) > 300
    assert REF_PATH.stat().st_size < 5_000_000
    verified = data["digits"][np.isfinite(data["digits"])]
    assert verified.size > 0.9 * len(CASES) and verified.min() >= 30
    counts = defaultdict(int)
    for c in CASES:
        counts[c.category] += 1
    assert set(counts) == {"random", "near", "identical", "illcond", "scale", "far", "highd",
                           "float32"}


# ---------------------------------------------------------------------------- KL
@pytest.mark.parametrize("fw,case", by_category("random", "near", "illcond", "scale", "far",
                                                "highd", "float32"), indirect=["fw"])
def test_kl_matches_reference(fw, case: Case):
    p, q = gaussians(case, fw)
    # The framework's array, computed in the input's precision.
    value = fw.result(gaussdiv.kl(p, q), case.dtype)
    exact = ref(case, "kl")
    assert value.shape == ()
    assert np.isfinite(value)
    assert value >= 0
    if case.dtype == "float64":
        assert exact >= KL_FLOOR  # the target's range; keeps the file honest
    err = rel_err(value, exact)
    # kl_terms.kl is the same number
    assert rel_err(fw.result(gaussdiv.kl_terms(p, q).kl, case.dtype), exact) == err
    report([kl_verdict(case, err)])


@pytest.mark.parametrize("fw,case", by_category("identical"), indirect=["fw"])
def test_identical_arrays_give_exactly_zero(fw, case: Case):
    p, q = gaussians(case, fw)
    result = lambda v: fw.result(v, case.dtype)  # noqa: E731
    assert result(gaussdiv.kl(p, q)) == 0.0
    assert result(gaussdiv.kl(p, p)) == 0.0
    assert result(gaussdiv.kl(q, p)) == 0.0
    assert result(gaussdiv.kl_terms(p, q).kl) == 0.0
    assert result(gaussdiv.cross_entropy(p, q)) == result(gaussdiv.entropy(p))
    assert ref(case, "kl") == 0


@pytest.mark.parametrize("fw,case", by_category("random", "highd", "far", "scale"),
                         indirect=["fw"])
def test_terms_entropy_log_prob(fw, case: Case):
    """kl_terms fields, entropy, cross-entropy and log_prob against the reference."""
    errs = measure(case, fw)
    bound = stability_bound(case)
    bad = {k: f"{v:.3g}" for k, v in errs.items() if v > bound and not k.endswith("kl")}
    assert not bad, f"errors above (κ + d)·u·{STABILITY_FACTOR:g} = {bound:.3g}: {bad}"


def _jax_batches(key: tuple, group: list[Case]) -> bool:
    """Whether JAX runs a batch group: its cases are in ``jax_runs`` and, for float32, it is
    one of the six near-identical groups (the nine one-pair ``random`` groups are left out)."""
    return all(map(jax_runs, group)) and (key[0] != "float32" or key[1] == "near")


def _batch_groups() -> list:
    """Cases with one (category, variant, d, dtype, kinds) stacked into one batch, for each
    framework (JAX: see ``_jax_batches``)."""
    groups = defaultdict(list)
    for c in CASES:
        if not c.same_arrays and c.category in ("near", "random", "illcond", "float32"):
            groups[(c.category, c.variant.split("/")[0] if c.category == "float32" else
                    c.variant, c.dim, c.dtype, c.kind1, c.kind2)].append(c)
    seen: set[tuple[Any, ...]] = set()
    return [pytest.param(name, g, id=name + "-" + "-".join(map(str, key)).replace("/", "-"),
                         marks=() if name != "jax" or jax_in_ci(
                             (key[0], key[4], key[5], key[3]), seen) else pytest.mark.exhaustive)
            for name in FRAMEWORKS
            for key, g in sorted(groups.items(), key=lambda kv: str(kv[0]))
            if name != "jax" or _jax_batches(key, g)]


@pytest.mark.parametrize("fw,group", _batch_groups(), indirect=["fw"])
def test_batched_matches_reference(fw, group: list[Case]):
    """The same cases evaluated as one batch. NumPy and torch repeat the group to ≥ 9 elements
    (so NumPy's batched solver is used); JAX evaluates the group as it is (≤ 7 elements: large
    batched Cholesky + triangular solves have hung jaxlib 0.10.2 on CPU)."""
    reps = 1 if fw.name == "jax" else -(-9 // len(group))
    cases = group * reps
    m1, a1, m2, a2 = (fw.array(np.stack([arrays(c)[j] for c in cases]),
                               np.dtype(group[0].dtype).type) for j in range(4))
    first = cases[0]
    p = CONSTRUCTORS[first.kind1](m1, a1)
    q = CONSTRUCTORS[first.kind2](m2, a2)
    values = fw.result(gaussdiv.kl(p, q), first.dtype)
    assert values.shape == (len(cases),)
    assert np.all(values >= 0)
    report([kl_verdict(c, rel_err(v, ref(c, "kl")), what=f"{c.id} in a batch: ")
            for c, v in zip(group, values, strict=False)])  # the repeats are the same cases
    np.testing.assert_array_equal(values, np.tile(values[:len(group)], reps))


@pytest.mark.parametrize("category", sorted({c.category for c in CASES}))
def test_never_negative_anywhere(fw, category: str):
    """Every pair of the file in both directions (KL(Q‖P) has no reference, but is ≥ 0); JAX
    on ``jax_runs``.

    One test per category: run alone, JAX compiles for every shape it meets (≈ 50 s for the
    whole file), which would come too close to its timeout in one test."""
    for c in CASES:
        if c.category != category or (fw.name == "jax" and not jax_runs(c)):
            continue
        p, q = gaussians(c, fw)
        for a, b in ((p, q), (q, p)) if c.dim <= 64 else ((p, q),):
            value = fw.result(gaussdiv.kl(a, b), c.dtype)
            assert np.isfinite(value) and value >= 0, c.id


# ---------------------------------------------------------------------------- extreme scale
@cache
def _d400_pair() -> tuple[np.ndarray, ...]:
    rng = np.random.default_rng(400)
    d = 400
    return _spd(d, 1e2, rng), _spd(d, 1e2, rng), rng.standard_normal(d), rng.standard_normal(d)


def _kl64(fw: Any, m1: np.ndarray, s1: np.ndarray, m2: np.ndarray, s2: np.ndarray) -> float:
    """KL of float64 NumPy inputs computed on ``fw``'s arrays (checked to come back as such)."""
    value = gaussdiv.kl(Gaussian(fw.array(m1), fw.array(s1)), Gaussian(fw.array(m2), fw.array(s2)))
    return float(fw.result(value, np.float64))


def test_d400_unscaled_matches_textbook(fw):
    """The unscaled d = 400 pair of the test below, against a textbook float64 evaluation: no
    cancellation here (KL ≈ 1e2, κ ≤ 1e2), so the textbook formula is good to ≈ 1e-12."""
    s1, s2, m1, m2 = _d400_pair()
    d = len(m1)
    base = _kl64(fw, m1, s1, m2, s2)
    ld1, ld2 = np.linalg.slogdet(s1)[1], np.linalg.slogdet(s2)[1]
    dm = m1 - m2
    textbook = 0.5 * (ld2 - ld1 + np.trace(np.linalg.solve(s2, s1)) + dm @ np.linalg.solve(s2, dm)
                      - d)
    assert abs(base - textbook) <= 1e-11 * base


@pytest.mark.parametrize("k", [500, -500])
def test_extreme_scale_d400_is_scale_invariant(fw, k: int):
    """d = 400 at 2^±500: |S| = 2^(±200 000)·|S₀| is far outside float64, yet KL is unchanged.

    Scaling (S1, S2, means) by (2^k, 2^k, 2^(k/2)) leaves KL invariant and, for powers of two,
    the scaled inputs are exact; so the scaled result must be finite and equal to the unscaled
    one up to rounding inside the library: we allow the float64 target, 1e-14. (The file's
    ``scale`` category has mpmath references for d ≤ 64 and a d = 400 pair of factors.)
    """
    s1, s2, m1, m2 = _d400_pair()
    base = _kl64(fw, m1, s1, m2, s2)
    c, cm = 2.0**k, 2.0 ** (k // 2)
    with np.errstate(over="ignore", under="ignore"):
        assert np.linalg.det(c * s1) in (0.0, np.inf)  # what a determinant-based formula faces
    scaled = _kl64(fw, cm * m1, c * s1, cm * m2, c * s2)
    assert np.isfinite(scaled) and scaled > 0
    assert abs(scaled - base) <= KL_RTOL_F64 * base
    entropy = gaussdiv.entropy(Gaussian(fw.array(cm * m1), fw.array(c * s1)))
    assert np.isfinite(fw.result(entropy, np.float64))


def _spd(d: int, kappa: float, rng: np.random.Generator) -> np.ndarray:
    q, r = np.linalg.qr(rng.standard_normal((d, d)))
    q = q * np.sign(np.diag(r))
    lam = np.logspace(0, np.log10(kappa), d)
    s = (q * lam) @ q.T
    return 0.5 * (s + s.T)


# ---------------------------------------------------------------------------- report
def error_table(frameworks: list[Any]) -> str:
    """Markdown table of the worst relative KL error per category (per δ for near), one column
    per framework (every case, JAX included); the worst case named is the first framework's."""
    worst: dict[tuple, list] = defaultdict(list)
    for c in CASES:
        errs = []
        for fw in frameworks:
            p, q = gaussians(c, fw)
            errs.append(rel_err(fw.to_numpy(gaussdiv.kl(p, q)), ref(c, "kl")))
        key = (c.category, f"δ={c.delta:.0e}" if c.category == "near" else "", c.dtype)
        worst[key].append((errs, c))
    names = " | ".join(f"{fw.name}: max rel. error of KL" for fw in frameworks)
    lines = [f"| category | δ | dtype | cases | {names} | target | worst case |",
             "|---" * (6 + len(frameworks)) + "|"]
    for key in sorted(worst, key=lambda k: (k[0], -float(k[1][2:] or 0), k[2])):
        rows = worst[key]
        maxima = " | ".join(f"{max(r[0][i] for r in rows):.2e}" for i in range(len(frameworks)))
        c = max(rows, key=lambda r: r[0][0])[1]
        target = "exactly 0" if c.category == "identical" else f"{kl_rtol(c):.0e}"
        lines.append(f"| {key[0]} | {key[1]} | {key[2]} | {len(rows)} | {maxima} | {target} "
                     f"| {c.id} |")
    return "\n".join(lines)


if __name__ == "__main__":
    import sys

    from conftest import framework  # as a script only: under pytest, use the ``fw`` fixture

    print(error_table([framework(name) for name in sys.argv[1:] or ["numpy"]]))

"""Error-free transformations and double-double (dd) building blocks, for NumPy, PyTorch and JAX.

Every function is written once against an array namespace ``xp`` (``numpy``, ``torch`` or
``jax.numpy``; inferred from the first argument when None). Inputs are float32 or float64 arrays
of one framework; results have the inputs' dtype. No FMA is assumed: products are split with
Veltkamp's method (Dekker). Elementwise functions broadcast; matrix functions batch over
leading axes. u = 2⁻⁵³ (float64) or 2⁻²⁴ (float32) is the unit roundoff.

JAX quirks: XLA on CPU flushes subnormals to zero, so an error term that would be subnormal
(|e| < 2⁻¹⁰²² in float64) is 0 there. Under jax.jit, XLA rewrites some float expressions
((1 + u) − 1 → u, FMA contraction); the code avoids constant-operand error-free steps, and is
tested under jit on CPU (torch.compile is not tested).
"""

from __future__ import annotations

from fractions import Fraction
from math import factorial
from typing import Any

import numpy as np

# Per precision: Veltkamp factor 2^s + 1; above `split_max` the factor·a overflows, so such
# operands (and factors of products above `prod_max`) are scaled by `down` = 2^-d first;
# ln 2 = L1 + L2 + L3 with L1, L2 short enough that k·L1, k·L2 are exact for every k that
# exp_dd uses; exp_dd clamps x to [x_min, x_max], where e^x rounds to 0 / overflows.
_F64 = {"split": 2.0**27 + 1, "split_max": 2.0**995, "prod_max": 2.0**1020, "d": 60,
        "ln2": (float.fromhex("0x1.62e42fefa3800p-1"), float.fromhex("0x1.ef35793c76800p-45"),
                float.fromhex("-0x1.9ff0342542fc3p-90")),
        "x_min": -746.0, "x_max": 710.0, "halvings": 8, "terms": 9, "dd_terms": 5,
        "int": "int64", "bias": 1023, "mant": 52, "np": np.float64}
_F32 = {"split": 2.0**12 + 1, "split_max": 2.0**114, "prod_max": 2.0**124, "d": 20,
        "ln2": (float.fromhex("0x1.62e4p-1"), float.fromhex("0x1.7f7ep-20"),
                float.fromhex("-0x1.c610cap-37")),
        "x_min": -104.0, "x_max": 89.0, "halvings": 8, "terms": 5, "dd_terms": 3,
        "int": "int32", "bias": 127, "mant": 23, "np": np.float32}
for _c in (_F64, _F32):  # d_j = 1/(j+1)! as dd pairs (hi, lo), rounded from the rationals
    _c["coef"] = []
    for _j in range(_c["terms"]):
        _exact = Fraction(1, factorial(_j + 1))
        _hi = float(_c["np"](_exact))
        _c["coef"].append((_hi, float(_c["np"](_exact - Fraction(_hi)))))


def _ns(x: Any) -> Any:
    module = type(x).__module__.split(".")[0]
    if module == "torch":
        import torch
        return torch
    if module in ("jax", "jaxlib"):
        import jax.numpy as jnp
        return jnp
    return np


def _consts(x: Any) -> dict[str, Any]:
    return _F32 if str(getattr(x, "dtype", "float64")).endswith("float32") else _F64


def _astype(x: Any, dtype: Any) -> Any:
    return x.astype(dtype) if hasattr(x, "astype") else x.to(dtype)


def _ldexp(x: Any, k: Any, xp: Any) -> Any:
    """x·2^k for integer-valued, NaN-free k (|k| ≤ 3000), rounded once where the result is
    subnormal.

    torch.ldexp and jnp.ldexp form 2^k in floating point (inf for k ≥ 1024; pow need not be
    exact), so 2^h is assembled from its bits for three thirds h of k (each in the normal range;
    the partial products lie between x and the result)."""
    c = _consts(x)
    if xp is np:
        with np.errstate(over="ignore"):  # overflow to ±inf is the documented result
            return np.ldexp(x, k.astype(np.int32))
    k = _astype(k, getattr(xp, c["int"]))
    for part in (3, 2, 1):
        h = k // part
        x, k = x * ((h + c["bias"]) << c["mant"]).view(x.dtype), k - h
    return x


def _two_sum(a: Any, b: Any) -> tuple[Any, Any]:
    s = a + b
    bb = s - a
    return s, (a - (s - bb)) + (b - bb)


def _two_diff(a: Any, b: Any) -> tuple[Any, Any]:  # two_sum(a, −b)
    s = a - b
    bb = s - a
    return s, (a - (s - bb)) - (b + bb)


def _fast_two_sum(a: Any, b: Any) -> tuple[Any, Any]:  # needs |a| ≥ |b| (or a = 0)
    s = a + b
    return s, b - (s - a)


def _split(a: Any, factor: float) -> tuple[Any, Any]:
    t = factor * a
    hi = t - (t - a)
    return hi, a - hi


def _two_product(a: Any, b: Any, factor: float) -> tuple[Any, Any]:
    p = a * b
    ah, al = _split(a, factor)
    bh, bl = _split(b, factor)
    return p, ((ah * bh - p) + ah * bl + al * bh) + al * bl


def two_sum(a: Any, b: Any, xp: Any = None) -> tuple[Any, Any]:
    """(s, e) with s = fl(a + b) and a + b = s + e exactly (Knuth), for all finite a, b with s
    finite (subnormals included, except under JAX's flush-to-zero). e = 0 where s is ±inf/NaN."""
    xp = xp or _ns(a)
    with np.errstate(over="ignore", invalid="ignore"):  # where s overflows (NumPy would warn)
        s, e = _two_sum(a, b)
    return s, xp.where(xp.isfinite(s), e, xp.zeros_like(e))


def two_product(a: Any, b: Any, xp: Any = None) -> tuple[Any, Any]:
    """(p, e) with p = fl(a·b) and a·b = p + e exactly, whenever p is finite and
    |a·b| ≥ 2⁻⁹⁶⁸ ≈ 4e-292 (float64; 2⁻¹⁰¹ ≈ 4e-31 in float32).

    Dekker's product of Veltkamp halves. The split overflows for |a| ≳ 2⁹⁹⁶ (and the partial
    product of the high halves for |a·b| ≳ 2¹⁰²³·⁹⁹⁹⁹⁹), so such operands are first scaled by
    2⁻⁶⁰ (2⁻²⁰ in float32), which is exact; e is scaled back. Below 2⁻⁹⁶⁸ the partial products
    underflow: then |a·b − (p + e)| ≤ 2⁻¹⁰⁷² (a few subnormal ulps). e = 0 where p is ±inf/NaN.
    """
    xp = xp or _ns(a)
    c = _consts(a)
    down, up = 2.0 ** -c["d"], 2.0 ** c["d"]
    with np.errstate(over="ignore", invalid="ignore"):  # where p overflows (NumPy would warn)
        p = a * b
        big_a = (xp.abs(a) > c["split_max"]) | (xp.abs(p) > c["prod_max"])
        big_b = xp.abs(b) > c["split_max"]
        _, e = _two_product(xp.where(big_a, a * down, a), xp.where(big_b, b * down, b),
                            c["split"])
        e = xp.where(big_a, e * up, e)
        e = xp.where(big_b, e * up, e)
    return p, xp.where(xp.isfinite(p), e, xp.zeros_like(e))


def square_dd(s: Any, xp: Any = None) -> tuple[Any, Any]:
    """s² = hi + lo exactly (hi = fl(s²)) for 2⁻⁴⁸⁴ ≤ |s| (float64; 2⁻⁵¹ in float32) with hi
    finite: the variances Σ = diag(s²) of standard deviations s, as double-doubles."""
    return two_product(s, s, xp)


def _dd_mul(xh: Any, xl: Any, yh: Any, yl: Any, factor: float) -> tuple[Any, Any]:
    p, e = _two_product(xh, yh, factor)
    return _fast_two_sum(p, e + (xh * yl + xl * yh))


def _dd_add(xh: Any, xl: Any, yh: Any, yl: Any) -> tuple[Any, Any]:
    s, e = _two_sum(xh, yh)
    return _fast_two_sum(s, e + (xl + yl))


def exp_dd(x: Any, xp: Any = None) -> tuple[Any, Any]:
    """e^x = hi + lo with relative error ≤ 2⁻¹⁰² ≈ 2e-31 (float64; 2⁻⁴⁵ ≈ 3e-14 in float32).

    Cody–Waite: k = round(x / ln 2), r = x − k·ln 2 (|r| ≤ 0.35) as a dd from ln 2 = L1 + L2 + L3
    (k·L1 and k·L2 exact, x − k·L1 exact by Sterbenz); t = r/2⁸; expm1(t) by its Taylor series
    (higher terms in plain floats, the first ones in dd), then u ← u(2 + u) eight times gives
    expm1(r) = u to a relative error ~ 9 dd roundings; e^x = 2^k (1 + u).

    Range: that accuracy holds for x ≥ −671.6 (e^x ≥ 2⁻⁹⁶⁹: lo is normal; −70.7 in float32);
    below, lo (then hi) lose bits to the subnormal grid: |hi + lo − e^x| ≤ 2⁻¹⁰⁷⁴, and x < −745.1
    gives (0, 0). Where e^x overflows, x > 709.78 (88.72 in float32): (inf, 0). NaN: (NaN, 0).
    """
    xp = xp or _ns(x)
    c = _consts(x)
    l1, l2, l3 = c["ln2"]
    x = xp.clip(x, c["x_min"], c["x_max"])
    k = xp.round(x * (1 / l1))
    k = xp.where(xp.isnan(k), xp.zeros_like(k), k)  # NaN stays in r (and hi); k must be an int
    rh, rl = _two_sum(x - k * l1, -(k * l2))
    rh, rl = _fast_two_sum(rh, rl - k * l3)
    scale = 2.0 ** -c["halvings"]
    th, tl = rh * scale, rl * scale
    coef, n, n_dd = c["coef"], c["terms"], c["dd_terms"]
    q = xp.zeros_like(th) + coef[n - 1][0]  # q = Σ_j d_j t^j, Horner, top terms in floats
    for j in range(n - 2, n_dd - 1, -1):
        q = coef[j][0] + th * q
    qh, ql = q, xp.zeros_like(q)
    for j in range(n_dd - 1, -1, -1):
        qh, ql = _dd_mul(th, tl, qh, ql, c["split"])
        qh, ql = _dd_add(qh, ql, coef[j][0], coef[j][1])
    uh, ul = _dd_mul(th, tl, qh, ql, c["split"])  # expm1(t) = t·q
    for _ in range(c["halvings"]):  # expm1(2y) = u(2 + u)
        vh, vl = _dd_add(uh, ul, 2.0, 0.0)
        uh, ul = _dd_mul(uh, ul, vh, vl, c["split"])
    s, e = _two_sum(uh, 1.0)  # not fast_two_sum(1, u): XLA folds (1 + u) − 1 to u under jit
    s, e = _fast_two_sum(s, e + ul)
    hi = _ldexp(s, k, xp)
    return hi, xp.where(xp.isfinite(hi), _ldexp(e, k, xp), xp.zeros_like(e))


def _amax(x: Any, axis: int, xp: Any) -> Any:
    if xp.__name__ == "torch":
        return xp.amax(xp.abs(x), dim=axis, keepdim=True)
    return xp.max(xp.abs(x), axis=axis, keepdims=True)


def _has_float64(xp: Any) -> bool:
    if xp.__name__.startswith("jax"):
        import jax
        return bool(jax.config.jax_enable_x64)
    return True


def product_residual(c: Any, a: Any, b: Any, xp: Any = None, matmul: Any = None) -> Any:
    """C − A B for C (…, n, k), A (…, n, m), B (…, m, k) in float64, by 4 matrix products (of
    inner dimensions m, 2m, 3m, 4m: the flops of 10 plain products) and O(nk) elementwise work.
    None for other dtypes and for JAX without x64; float32 is computed in float64 and returned
    as float32 (the contract of gaussdiv.numerics.residual.rough_product_residual).

    Ozaki scheme: each row of A (column of B), scaled by the power of two 2^-e that brings its
    largest entry into [1/2, 1), is cut into slices on the grids 2^-b, 2^-2b, 2^-3b and a
    remainder (exact roundings; b = ⌊(52 − ⌈log₂ m⌉)/2⌋: 21 for m = 512, 23 for m = 64), scaled
    back: A = A0 + A1 + A2 + A3, cell Ai·Bj of size ≲ 2^-(i+j)b·rowmax·colmax. Each level
    Lℓ = Σ_{i+j=ℓ} Ai·Bj, ℓ ≤ 2, is one product ([A0 A1]·[B1; B0] for ℓ = 1), a sum of ≤ 3m
    integers below 1.25·2^2b on its grid: exact in any summation order. The cells i + j ≥ 3 form
    one rounded product, A0·B≥3 + A1·B≥2 + A2·B≥1 + A3·B; C − L0 − L1 − L2 − tail is then
    summed with error-free two_sums.

    Error, elementwise: ≲ u·|C − AB| + 2u²·|C − L0| + 4m·u·2^-3b·rowmax|A|·colmax|B| (the last
    2⁻¹⁰⁵ for m = 512 as a bound, and 0 when each row of A and column of B spans < 2^(3b−53));
    plus ≈ 2⁻¹⁰⁷⁴·m where rowmax·colmax < 2⁻⁹⁷⁰ (grids below the subnormal range). Needs a
    matmul that is exact whenever the exact result is a float64 (BLAS, cuBLAS in float64; not a
    Strassen-like or reduced-precision one). Non-finite inputs give non-finite results.
    """
    xp = xp or _ns(c)
    matmul = matmul or xp.matmul  # a caller's matmul: another BLAS, or one that counts
    name = str(getattr(c, "dtype", ""))
    if name.endswith("float32"):
        if not _has_float64(xp):
            return None
        f64 = xp.float64
        r = product_residual(_astype(c, f64), _astype(a, f64), _astype(b, f64), xp, matmul)
        return _astype(r, c.dtype)
    if not name.endswith("float64"):
        return None
    m = a.shape[-1]
    if m == 0:
        return c - matmul(a, b)
    bits = (52 - (m - 1).bit_length()) // 2
    ea = xp.frexp(_amax(a, -1, xp))[1]
    eb = xp.frexp(_amax(b, -2, xp))[1]
    a_all = _ldexp(xp.concatenate(_slices(_ldexp(a, -ea, xp), bits, xp)[0], axis=-1), ea, xp)
    (b0, b1, b2, _), b_rem = _slices(_ldexp(b, -eb, xp), bits, xp)
    b_lev = _ldexp(xp.concatenate([b2, b1, b0], axis=-2), eb, xp)  # level ℓ: rows (2 − ℓ)m on
    levels = [matmul(a_all[..., : (n + 1) * m], b_lev[..., (2 - n) * m :, :]) for n in (0, 1, 2)]
    # a_all = [A0 A1 A2 A3] against [B≥3; B≥2; B≥1; B]: the cells i + j ≥ 3
    tail = matmul(a_all, _ldexp(xp.concatenate(b_rem[::-1], axis=-2), eb, xp))
    s, e1 = _two_diff(c, levels[0])
    s, e2 = _two_diff(s, levels[1])
    s, e3 = _two_diff(s, levels[2])
    return s + (((e1 + e2) + e3) - tail)


def _slices(x: Any, bits: int, xp: Any) -> tuple[list[Any], list[Any]]:
    """x = s0 + s1 + s2 + r exactly, sᵢ = rᵢ = x − s0 − … − sᵢ₋₁ rounded to the grid
    2^-(i+1)·bits; returns [s0, s1, s2, r] and the remainders [x, r1, r2, r]."""
    slices, rems = [], [x]
    for i in (1, 2, 3):
        g = 2.0 ** (i * bits)
        slices.append(xp.round(rems[-1] * g) * (1 / g))
        rems.append(rems[-1] - slices[-1])
    return [*slices, rems[-1]], rems

"""Cases for tests/test_fuzz.py: Gaussians as constructor calls, drawn by hypothesis, built in
NumPy, PyTorch or JAX, and their exact moments and divergences in mpmath.

A :class:`Spec` is one public constructor call with its NumPy arguments (already in the dtype the
Gaussian is built in); a :class:`PairCase` is two of them, the framework and the memory layout
of the arrays. Hypothesis draws the discrete choices — constructor, d, batch shapes, dtype,
value class, how Q relates to P, framework, layout — and one seed from which NumPy draws the
numbers, so a case is cheap to make and reads as a few short arrays (``PairCase.code`` prints it
as the Python that builds it).

Value classes (``CLASSES``): ``normal`` (κ ≤ ~100, unit scale); ``ill`` (κ from 1e4 to 1e12 in
float64, 1e2 to 1e3 in float32, for the matrix constructors); ``scale`` (every coordinate scaled
by its own power of two, 2^±450 with spreads up to 2^±200 between coordinates in float64,
so variances from ≈1e-270 to 1e270 and scaled condition numbers unchanged); ``logvar``
(log-variances from −1500 to 1400); ``subnormal`` (variances or standard deviations whose
variances are subnormal). Relations of Q to P (``RELATIONS``): ``independent``; ``far`` (mean
offset 1e6 σ, Mahalanobis ≈ 1e12); ``near`` (the same constructor, every argument perturbed by
a relative δ in scaled coordinates); ``near_cross`` (another constructor built from P's
covariance, perturbed by δ); ``identical`` (the same constructor on copies of the same arrays);
``same`` (Q is P).

The reference takes the built arrays as exact (mpmath, 50 digits: Σ = Λ⁻¹, L Lᵀ, W Wᵀ + diag v,
A ⊗ B, e^ℓ formed exactly), so float32 and float16 cases are judged on the numbers the library
was given.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from hypothesis import strategies as st
from mpmath.ctx_mp import MPContext

import gaussdiv as gd

#: A private mpmath context (tests/mpref.py sets the global one). 100 digits: the worst
#: cancellation drawn here (δ = 1e-12: KL ≈ δ², W₂² ≈ δ² against terms ≈ 1) costs 24 of them,
#: and eigenvalues (for W₂) are accurate only relative to the largest, which spreads of
#: coordinate scales up to 2^±400 put 240 digits above the smallest's square root.
MP = MPContext()
MP.dps = 100
LOG_2PI = MP.log(2 * MP.pi)

KINDS = ("cov", "precision", "scale_tril", "precision_tril", "var", "std", "logvar",
         "isotropic", "standard", "lowrank", "kronecker")
#: Argument names after ``mean``, as the constructors (and their error messages) name them.
ARGS = {"cov": ("cov",), "precision": ("precision",), "scale_tril": ("scale_tril",),
        "precision_tril": ("precision_tril",), "var": ("var",), "std": ("std",),
        "logvar": ("logvar",), "isotropic": ("var",), "standard": (),
        "lowrank": ("factor", "var"), "kronecker": ("a", "b")}
#: Core (non-batch) number of axes of each argument.
CORE = {"cov": (2,), "precision": (2,), "scale_tril": (2,), "precision_tril": (2,),
        "var": (1,), "std": (1,), "logvar": (1,), "isotropic": (0,), "standard": (),
        "lowrank": (2, 1), "kronecker": (2, 2)}
MATRIX_KINDS = ("cov", "precision", "scale_tril", "precision_tril")
DIAGONAL_KINDS = ("var", "std", "logvar", "isotropic", "standard")
PRECISION_KINDS = ("precision", "precision_tril")
CLASSES = ("normal", "ill", "scale", "logvar", "subnormal")
RELATIONS = ("independent", "far", "near", "near_cross", "identical", "same")
#: The public constructor of each kind (the diagonal kinds: Gaussian.diag with that keyword).
CONSTRUCTORS = {"cov": gd.Gaussian, "precision": gd.Gaussian.from_precision,
                "scale_tril": gd.Gaussian.from_scale_tril,
                "precision_tril": gd.Gaussian.from_precision_tril, "var": gd.Gaussian.diag,
                "std": gd.Gaussian.diag, "logvar": gd.Gaussian.diag,
                "isotropic": gd.Gaussian.isotropic, "standard": gd.Gaussian.standard,
                "lowrank": gd.Gaussian.lowrank, "kronecker": gd.Gaussian.kronecker}
CALLS = {kind: "gd." + build.__qualname__ for kind, build in CONSTRUCTORS.items()}
DTYPES = {"float64": np.float64, "float32": np.float32, "float16": np.float16,
          "int64": np.int64}


def installed(name: str) -> bool:
    return importlib.util.find_spec(name) is not None


FRAMEWORKS = tuple(f for f in ("numpy", "torch") if f == "numpy" or installed(f))


# --------------------------------------------------------------------------- specs and building
@dataclass(frozen=True, eq=False)
class Spec:
    """One constructor call: ``kind`` (a key of ARGS), the mean and the other arguments, as
    NumPy arrays in the dtype the Gaussian is built in. For ``standard`` the mean is zeros(d)
    (it carries d and the dtype). ``klass`` names the value class, for messages."""

    kind: str
    mean: np.ndarray
    args: tuple[np.ndarray, ...] = ()
    klass: str = "normal"
    #: Rough standard deviation per coordinate (float64, (d,)), for drawing points.
    sigma: np.ndarray | None = None

    def __repr__(self) -> str:
        shapes = ", ".join(f"{n} {tuple(a.shape)}" for n, a in self.arrays()) or \
            f"d={self.dim}"
        return f"Spec({self.kind}, {self.klass}, {self.dtype}: {shapes})"

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:  # hypothesis's printer
        printer.text(repr(self))

    @property
    def dim(self) -> int:
        return int(self.mean.shape[-1])

    @property
    def dtype(self) -> np.dtype:
        return self.mean.dtype

    def arrays(self) -> list[tuple[str, np.ndarray]]:
        """(name, array) of every argument, mean first (none but d for ``standard``)."""
        if self.kind == "standard":
            return []
        return [("mean", self.mean), *zip(ARGS[self.kind], self.args, strict=True)]

    def batch_shapes(self) -> list[tuple[int, ...]]:
        cores = (1, *CORE[self.kind])
        return [tuple(a.shape[:a.ndim - c]) for (_, a), c in zip(self.arrays(), cores,
                                                                   strict=True)]

    @property
    def batch_shape(self) -> tuple[int, ...]:
        return tuple(np.broadcast_shapes(*self.batch_shapes())) if self.arrays() else ()

    def with_arg(self, name: str, value: np.ndarray) -> Spec:
        """The same call with argument ``name`` replaced."""
        if name == "mean":
            return Spec(self.kind, value, self.args, self.klass, self.sigma)
        args = tuple(value if n == name else a for n, a in zip(ARGS[self.kind], self.args,
                                                                strict=True))
        return Spec(self.kind, self.mean, args, self.klass, self.sigma)

    def build(self, fw: str, layout: str = "c") -> tuple[gd.Gaussian, list[Input]]:
        """The Gaussian, and the framework arrays passed to the constructor (with snapshots)."""
        if self.kind == "standard":
            if fw == "numpy":
                return gd.Gaussian.standard(self.dim, self.dtype.type), []
            return gd.Gaussian.standard(self.dim, like=convert(self.mean, fw, "c")), []
        inputs = [Input(name, convert(a, fw, layout)) for name, a in self.arrays()]
        return construct(self.kind, *(i.value for i in inputs)), inputs

    def code(self, var: str, fw: str, layout: str = "c") -> str:
        """Python that builds this Gaussian (``import numpy as np, gaussdiv as gd``)."""
        call = CALLS[self.kind]
        if self.kind == "standard":
            dtype = f"np.{self.dtype.name}" if fw == "numpy" else \
                f"like={literal(self.mean, fw, 'c')}"
            return f"{var} = {call}({self.dim}, {dtype})"
        parts = [literal(a, fw, layout) for _, a in self.arrays()]
        if self.kind in ("var", "std", "logvar"):
            parts[1] = f"{self.kind}={parts[1]}"
        note = {"f": "  # Fortran-ordered arrays", "ro": "  # read-only arrays",
                "strided": "  # non-contiguous views"}.get(layout, "")
        return f"{var} = {call}({', '.join(parts)}){note}"


def construct(kind: str, mean: Any, *args: Any) -> gd.Gaussian:
    """The public constructor call of ``kind`` (not ``standard``)."""
    if kind in ("var", "std", "logvar"):
        return gd.Gaussian.diag(mean, **{kind: args[0]})
    return CONSTRUCTORS[kind](mean, *args)


@dataclass(eq=False)
class Input:
    """An array handed to the library and a snapshot of it, to show it was left unchanged."""

    name: str
    value: Any
    saved: tuple[Any, ...] = field(init=False)

    def __post_init__(self) -> None:
        self.saved = snapshot(self.value)

    def changes(self) -> str | None:
        """What changed in the caller's array since the snapshot (None: nothing)."""
        now = snapshot(self.value)
        if now == self.saved:
            return None
        fields = ("values", "shape", "dtype", "strides", "writeable/requires_grad", "grad")
        what = [f for f, a, b in zip(fields, now, self.saved, strict=True) if a != b]
        return f"{self.name}: {', '.join(what)} changed"


def snapshot(x: Any) -> tuple[Any, ...]:
    """Bytes, shape, dtype, strides and flags of ``x`` (NumPy, torch or JAX)."""
    if isinstance(x, np.ndarray):
        return (np.ascontiguousarray(x).tobytes(), x.shape, x.dtype.str, x.strides,
                x.flags.writeable, None)
    if type(x).__module__.startswith("torch"):
        data = x.detach().cpu().numpy()
        return (np.ascontiguousarray(data).tobytes(), tuple(x.shape), str(x.dtype),
                tuple(x.stride()), bool(x.requires_grad), x.grad is None)
    data = np.asarray(x)
    return (np.ascontiguousarray(data).tobytes(), data.shape, data.dtype.str, None, None, None)


def convert(a: np.ndarray, fw: str, layout: str) -> Any:
    """``a`` as an array of ``fw`` with the same dtype and values, laid out as ``layout``:
    NumPy "c" (a fresh C-ordered copy), "f" (Fortran order), "ro" (read-only), "strided" (a
    view every other element of a larger array); torch "c" or "grad" (requires_grad); JAX
    "c"."""
    if fw == "numpy":
        if layout == "f" and a.ndim:  # (np.asfortranarray makes a 0-d array 1-d)
            return np.asfortranarray(a.copy())
        if layout == "ro":
            out = a.copy()
            out.flags.writeable = False
            return out
        if layout == "strided" and a.ndim:
            return np.repeat(a, 2, axis=-1)[..., ::2]
        return a.copy()
    if fw == "torch":
        import torch

        out = torch.from_numpy(a.copy())
        if layout == "grad" and out.is_floating_point():
            out.requires_grad_(True)
        return out
    import jax.numpy as jnp

    return jnp.asarray(a)


def literal(a: np.ndarray, fw: str, layout: str) -> str:
    """Python source for ``convert(a, fw, layout)`` (the values round-trip exactly)."""
    values = repr(a.tolist()) if a.size else f"np.zeros({a.shape})"  # keep empty shapes
    if fw == "numpy":
        text = f"np.array({values}, dtype=np.{a.dtype.name})"
        return f"np.asfortranarray({text})" if layout == "f" and a.ndim else text
    if fw == "torch":
        grad = ", requires_grad=True" if layout == "grad" and a.dtype.kind == "f" else ""
        return f"torch.tensor({values}, dtype=torch.{a.dtype.name}{grad})"
    return f"jnp.asarray(np.array({values}, dtype=np.{a.dtype.name}))"


@dataclass(frozen=True, eq=False)
class PairCase:
    """Two Gaussians P, Q (``same``: Q is P), their framework and layouts, and how they were
    drawn (``relation``, ``delta``)."""

    fw: str
    p: Spec
    q: Spec
    layout_p: str = "c"
    layout_q: str = "c"
    relation: str = "independent"
    delta: float = 0.0

    def __repr__(self) -> str:
        return (f"PairCase({self.fw}, P={self.p!r} [{self.layout_p}], Q={self.q!r} "
                f"[{self.layout_q}], {self.relation}, δ={self.delta:g}; the note has the code)")

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:  # hypothesis's printer
        printer.text(repr(self))

    @property
    def exact_zero(self) -> bool:
        """Whether P and Q are the same arrays, so every divergence must be exactly 0."""
        return self.relation in ("same", "identical")

    @property
    def result_shape(self) -> tuple[int, ...]:
        return tuple(np.broadcast_shapes(self.p.batch_shape, self.q.batch_shape))

    def build(self) -> tuple[gd.Gaussian, gd.Gaussian, list[Input]]:
        p, inputs = self.p.build(self.fw, self.layout_p)
        if self.relation == "same":
            return p, p, inputs
        q, more = self.q.build(self.fw, self.layout_q)
        return p, q, inputs + more

    def code(self) -> str:
        head = {"numpy": "import numpy as np, gaussdiv as gd",
                "torch": "import numpy as np, torch, gaussdiv as gd",
                "jax": "import numpy as np, jax, jax.numpy as jnp, gaussdiv as gd\n"
                       "jax.config.update('jax_enable_x64', True)"}[self.fw]
        q = "q = p" if self.relation == "same" else self.q.code("q", self.fw, self.layout_q)
        info = f"# P: {self.p.klass} {self.p.kind}, Q: {self.q.kind}, relation {self.relation}"
        if self.delta:
            info += f", δ = {self.delta:g}"
        return "\n".join((head, info, self.p.code("p", self.fw, self.layout_p), q))


# --------------------------------------------------------------------------- drawing numbers
@dataclass(frozen=True)
class Profile:
    """The value class of a pair: κ for ``ill``; for ``scale`` a common binary exponent g and
    the spread of the per-coordinate exponents around it."""

    klass: str
    kappa: float = 1.0
    g: int = 0
    spread: int = 0
    wide: bool = True  # float64 ranges (else float32's)


def _sym(m: np.ndarray) -> np.ndarray:
    return 0.5 * (m + np.swapaxes(m, -1, -2))


def spd(rng: np.random.Generator, batch: tuple[int, ...], n: int, profile: Profile,
        integer: bool = False) -> np.ndarray:
    """Symmetric positive definite (*batch, n, n), unscaled: A Aᵀ + c I (κ ≲ 100), or
    Q diag(λ) Qᵀ with λ from 1 down to 1/κ for ``ill``; small integers when ``integer``."""
    eye = np.eye(n)
    if integer:
        a = rng.integers(-2, 3, (*batch, n, n))
        return a @ np.swapaxes(a, -1, -2) + int(rng.integers(1, 4)) * np.eye(n, dtype=np.int64)
    if profile.klass == "ill" and n > 1:
        t = rng.uniform(size=(*batch, n))
        t[..., 0], t[..., -1] = 0.0, 1.0
        lam = profile.kappa ** -t
        q, _ = np.linalg.qr(rng.standard_normal((*batch, n, n)))
        return _sym((q * lam[..., None, :]) @ np.swapaxes(q, -1, -2))
    a = rng.uniform(-1, 1, (*batch, n, n))
    c = rng.uniform(0.2, 2.0, (*batch, 1, 1))
    return _sym(a @ np.swapaxes(a, -1, -2) + c * eye)


def positive(rng: np.random.Generator, shape: tuple[int, ...], profile: Profile,
             integer: bool = False) -> np.ndarray:
    """Positive variances (unscaled); subnormal ones for the ``subnormal`` class."""
    if integer:
        return rng.integers(1, 5, shape)
    if profile.klass == "subnormal":
        # subnormal, with ≥ 29 significant bits (≥ 2^-1045 ≈ 3e-315)
        tiny = np.ldexp(rng.uniform(1.0, 2.0, shape), rng.integers(-1045, -1023, shape))
        return np.where(rng.uniform(size=shape) < 0.7, tiny, rng.uniform(0.5, 2.0, shape))
    if profile.klass == "ill":  # κ up to ≈ 1e7 (float64), 1e2 (float32)
        return np.exp(rng.uniform(-8, 8, shape) if profile.wide else rng.uniform(-2, 2, shape))
    return np.exp(rng.uniform(-1.5, 1.5, shape))


@dataclass
class Base:
    """A Gaussian's arguments before scaling and the cast to its dtype: ``args`` as in ARGS
    (unscaled), ``mean`` in units of the coordinate scales, the binary exponents of those
    scales (``exps`` for d coordinates; for Kronecker ``exps_ab`` of the two factors)."""

    kind: str
    d: int
    mean: np.ndarray
    args: list[np.ndarray]
    exps: np.ndarray
    exps_ab: tuple[np.ndarray, np.ndarray] | None = None


def draw_base(rng: np.random.Generator, kind: str, d: int, shapes: list[tuple[int, ...]],
              profile: Profile, integer: bool, split: tuple[int, int], rank: int) -> Base:
    """Arguments of ``kind`` with batch shapes ``shapes`` (mean first)."""
    mean_shape, arg_shapes = shapes[0], shapes[1:]
    if integer:
        mean = rng.integers(-3, 4, (*mean_shape, d))
    else:
        mean = rng.uniform(-3, 3, (*mean_shape, d)) * (rng.uniform() < 0.85)
    args: list[np.ndarray] = []
    if kind in MATRIX_KINDS:
        s = spd(rng, arg_shapes[0], d, profile, integer)
        if kind in ("scale_tril", "precision_tril"):
            if integer:
                low = np.tril(rng.integers(-2, 3, s.shape), -1)
                s = low + np.eye(d, dtype=np.int64) * rng.integers(1, 4, (*s.shape[:-1], 1))
            else:
                s = np.linalg.cholesky(s)
        args = [s]
    elif kind in ("var", "std"):
        v = positive(rng, (*arg_shapes[0], d), profile, integer)
        args = [v if kind == "var" or integer else np.sqrt(v)]  # std: squares subnormal
    elif kind == "logvar":
        if integer:
            args = [rng.integers(-3, 4, (*arg_shapes[0], d))]
        elif profile.klass == "logvar":
            low, high = (-1500, 1400) if profile.wide else (-85, 85)
            args = [rng.uniform(low, high, (*arg_shapes[0], d))]
        else:
            args = [rng.uniform(-3, 3, (*arg_shapes[0], d))]
    elif kind == "isotropic":
        args = [positive(rng, arg_shapes[0], profile, integer)]
    elif kind == "lowrank":
        if integer:
            w = rng.integers(-2, 3, (*arg_shapes[0], d, rank))
        else:
            big = (1e3 if profile.wide else 3.0) if profile.klass == "ill" else 1.0
            w = rng.uniform(-1, 1, (*arg_shapes[0], d, rank)) * big
        args = [w, positive(rng, (*arg_shapes[1], d), profile, integer)]
    elif kind == "kronecker":
        args = [spd(rng, arg_shapes[0], split[0], profile, integer),
                spd(rng, arg_shapes[1], split[1], profile, integer)]
    exps, exps_ab = _exponents(rng, kind, d, split, profile)
    return Base(kind, d, mean, args, exps, exps_ab)


def _exponents(rng: np.random.Generator, kind: str, d: int, split: tuple[int, int],
               profile: Profile) -> tuple[np.ndarray, tuple[np.ndarray, np.ndarray] | None]:
    """Per-coordinate binary exponents of the scales (0 outside the ``scale`` class)."""
    if profile.klass != "scale" or kind == "standard":
        return np.zeros(d, dtype=int), None
    if kind == "isotropic":  # one variance for all coordinates
        e = np.full(d, profile.g + int(rng.integers(-profile.spread, profile.spread + 1)))
        return e, None
    if kind == "kronecker":
        ga = profile.g // 2
        ea = ga + rng.integers(-profile.spread // 2, profile.spread // 2 + 1, split[0])
        eb = (profile.g - ga) + rng.integers(-profile.spread // 2, profile.spread // 2 + 1,
                                             split[1])
        return (ea[:, None] + eb[None, :]).reshape(-1), (ea, eb)
    return profile.g + rng.integers(-profile.spread, profile.spread + 1, d), None


def perturb(rng: np.random.Generator, base: Base, delta: float, keep_mean: bool) -> Base:
    """Every argument changed by a relative δ in unscaled coordinates (stays valid)."""
    def matrix(s: np.ndarray) -> np.ndarray:
        n = s.shape[-1]
        t = np.eye(n) + delta * rng.uniform(-1, 1, s.shape)
        return _sym(t @ s @ np.swapaxes(t, -1, -2))

    args = []
    for a in base.args:
        if base.kind in ("cov", "precision", "kronecker"):
            args.append(matrix(a))
        elif base.kind == "logvar":
            args.append(a + delta * rng.uniform(-1, 1, a.shape))
        else:  # factors, variances, standard deviations: relative changes
            args.append(a * (1 + delta * rng.uniform(-1, 1, a.shape)))
    mean = base.mean if keep_mean else base.mean + delta * rng.uniform(-1, 1, base.mean.shape)
    return Base(base.kind, base.d, mean, args, base.exps, base.exps_ab)


def dense_base(base: Base) -> np.ndarray:
    """The unscaled covariance of ``base`` as a float64 matrix (*batch, d, d)."""
    a = [np.asarray(x, dtype=np.float64) for x in base.args]
    d = base.d
    if base.kind == "cov":
        return a[0]
    if base.kind == "precision":
        return _sym(np.linalg.inv(a[0]))
    if base.kind == "scale_tril":
        return _sym(a[0] @ np.swapaxes(a[0], -1, -2))
    if base.kind == "precision_tril":
        return _sym(np.linalg.inv(a[0] @ np.swapaxes(a[0], -1, -2)))
    if base.kind in ("var", "std", "logvar"):
        v = {"var": a[0], "std": a[0] ** 2, "logvar": np.exp(a[0])}[base.kind]
        return v[..., None] * np.eye(d)
    if base.kind == "isotropic":
        return a[0][..., None, None] * np.eye(d)
    if base.kind == "standard":
        return np.eye(d)
    if base.kind == "lowrank":
        return _sym(a[0] @ np.swapaxes(a[0], -1, -2) + a[1][..., None] * np.eye(d))
    k = np.einsum("...ij,...kl->...ikjl", a[0], a[1])
    return k.reshape(*k.shape[:-4], d, d)


def finish(base: Base, dtype: Any, klass: str) -> Spec:
    """Scale ``base`` by its exponents (powers of two: exact) and cast it to ``dtype``."""
    e = base.exps
    scale = np.ldexp(1.0, e)
    kind = base.kind
    mean = base.mean * scale
    args = []
    for name, a in zip(ARGS[kind], base.args, strict=True):
        if kind in ("cov",):
            a = a * np.ldexp(1.0, e[:, None] + e[None, :])
        elif kind == "precision":
            a = a * np.ldexp(1.0, -(e[:, None] + e[None, :]))
        elif kind == "scale_tril":
            a = a * scale[:, None]
        elif kind == "precision_tril":
            a = a / scale[:, None]
        elif kind in ("var", "isotropic") or name == "var":
            a = a * (scale * scale if kind != "isotropic" else scale[0] * scale[0])
        elif kind == "std":
            a = a * scale
        elif kind == "logvar":
            a = a + 2 * np.log(2.0) * e
        elif name == "factor":
            a = a * scale[:, None]
        elif kind == "kronecker" and base.exps_ab is not None:
            ex = base.exps_ab[0 if name == "a" else 1]
            a = a * np.ldexp(1.0, ex[:, None] + ex[None, :])
        args.append(a)
    if kind == "logvar":
        with np.errstate(all="ignore"):
            first = np.reshape(args[0], (-1, base.d))
            sigma = np.clip(np.exp(0.5 * first[0]), 1e-300, 1e300) if len(first) else scale
    else:
        sigma = scale
    if kind == "standard":
        return Spec(kind, np.zeros(base.d, dtype=dtype), (), klass, np.ones(base.d))
    return Spec(kind, np.asarray(mean).astype(dtype), tuple(np.asarray(a).astype(dtype)
                                                           for a in args), klass, sigma)


# --------------------------------------------------------------------------- hypothesis
def reduced(draw: st.DrawFn, shape: tuple[int, ...]) -> tuple[int, ...]:
    """A batch shape that broadcasts to ``shape``: leading axes dropped, some sizes set to 1."""
    drop = draw(st.integers(0, len(shape)))
    kept = shape[drop:]
    ones = draw(st.lists(st.booleans(), min_size=len(kept), max_size=len(kept)))
    return tuple(1 if one else n for n, one in zip(kept, ones, strict=True))


BASE_SHAPES = ((), (), (2,), (3,), (1,), (2, 2), (3, 1), (1, 2))
KRON_SPLITS = {1: [(1, 1)], 2: [(1, 2), (2, 1)], 3: [(1, 3), (3, 1)], 4: [(2, 2), (1, 4)],
               5: [(1, 5), (5, 1)], 6: [(2, 3), (3, 2)]}


def kinds_for(klass: str) -> tuple[str, ...]:
    return {"ill": (*MATRIX_KINDS, "lowrank", "kronecker"), "logvar": ("logvar",),
            "subnormal": ("var", "std", "isotropic")}.get(klass, KINDS)


@st.composite
def profiles(draw: st.DrawFn, dtype: Any, klasses: tuple[str, ...] = CLASSES) -> Profile:
    f64 = np.dtype(dtype) == np.float64
    allowed = CLASSES if f64 else ("normal", "normal", "ill", "scale", "logvar")
    allowed = tuple(k for k in allowed if k in klasses) or ("normal",)
    klass = draw(st.sampled_from(allowed))
    if klass == "ill":
        return Profile("ill", kappa=10.0 ** draw(st.floats(4, 12) if f64 else st.floats(2, 3)),
                       wide=f64)
    if klass == "scale":
        spread = draw(st.sampled_from((0, 3, 40, 200) if f64 else (0, 3, 10)))
        top = (480 if f64 else 45) - spread
        return Profile("scale", g=draw(st.integers(-top, top)), spread=spread)
    return Profile(klass, wide=f64)


@st.composite
def pair_cases(draw: st.DrawFn, frameworks: tuple[str, ...] = FRAMEWORKS,
               dims: tuple[int, ...] = (1, 2, 2, 3, 3, 4, 5, 6),
               base_shapes: tuple[tuple[int, ...], ...] = BASE_SHAPES,
               relations: tuple[str, ...] = RELATIONS, big_batch: bool = True,
               dtypes: tuple[str, ...] = ("float64",) * 6 + ("float32",) * 3 + (
                   "float16", "int64"),
               classes: bool = True, reduce_shapes: bool = True,
               klasses: tuple[str, ...] = CLASSES) -> PairCase:
    """A valid pair P, Q: see the module docstring for what is drawn. ``reduce_shapes=False``
    gives every argument the whole drawn batch shape (to keep an empty batch empty);
    ``klasses`` restricts the value classes drawn."""
    fw = draw(st.sampled_from(frameworks))
    d = draw(st.sampled_from(dims))
    dtype_name = draw(st.sampled_from(dtypes))
    if dtype_name == "int64" and fw != "numpy":
        dtype_name = "float64"
    integer, half = dtype_name == "int64", dtype_name == "float16"
    dtype = DTYPES[dtype_name]
    profile = draw(profiles(np.float32 if half else dtype, klasses)) if classes and not (
        integer or half) else Profile("normal")
    relation = draw(st.sampled_from(relations))
    if integer or half:
        relation = "independent" if relation in ("near", "near_cross", "far") else relation
    kind_p = draw(st.sampled_from(kinds_for(profile.klass)))
    if half and kind_p in ("precision", "precision_tril", "lowrank", "kronecker"):
        kind_p = "cov"
    if integer and kind_p == "standard" and fw != "numpy":
        kind_p = "var"
    base_shape = draw(st.sampled_from(base_shapes))
    if big_batch and fw == "numpy" and draw(st.integers(0, 24)) == 0:
        base_shape = (17,)  # the compiled kernels take batches of 16 and more
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)

    def shapes(kind: str) -> list[tuple[int, ...]]:
        keep = base_shape == (17,) or not reduce_shapes
        return [base_shape if keep else reduced(draw, base_shape)
                for _ in range(1 + len(ARGS[kind]))]

    split = draw(st.sampled_from(KRON_SPLITS[d]))
    rank = draw(st.integers(1, 3))
    base_p = draw_base(rng, kind_p, d, shapes(kind_p), profile, integer, split, rank)
    p = finish(base_p, dtype, profile.klass)
    layouts = ("c", "f", "ro", "strided") if fw == "numpy" else ("c", "grad") if \
        fw == "torch" else ("c",)
    layout_p = draw(st.sampled_from(layouts))
    layout_q = draw(st.sampled_from(layouts))
    delta = 0.0
    if relation in ("same", "identical"):
        return PairCase(fw, p, p, layout_p, layout_p if relation == "same" else layout_q,
                        relation)
    if relation == "near":
        delta = draw(st.sampled_from((1e-1, 1e-3, 1e-6, 1e-9, 1e-12) if dtype == np.float64
                                     else (1e-1, 1e-2, 1e-3, 1e-4)))
        base_q = perturb(rng, base_p, delta, keep_mean=draw(st.booleans()))
        q = finish(base_q, dtype, profile.klass)
    elif relation == "near_cross":
        delta = draw(st.sampled_from((0.0, 1e-1, 1e-4, 1e-8, 1e-12) if dtype == np.float64
                                     else (0.0, 1e-1, 1e-2, 1e-4)))
        q = _near_cross(draw, rng, base_p, delta, dtype, profile)
    else:
        dtype_q = dtype
        if draw(st.integers(0, 9)) == 0 and dtype_name in ("float64", "float32") and \
                profile.klass in ("normal", "ill"):
            dtype_q = np.float32 if dtype == np.float64 else np.float64
            if profile.klass == "ill" and dtype_q == np.float32:
                dtype_q = np.float64
        kind_q = draw(st.sampled_from(kinds_for(profile.klass)))
        if half and kind_q in ("precision", "precision_tril", "lowrank", "kronecker"):
            kind_q = "var"
        if integer and kind_q == "standard" and fw != "numpy":
            kind_q = "cov"
        split_q = draw(st.sampled_from(KRON_SPLITS[d]))
        base_q = draw_base(rng, kind_q, d, shapes(kind_q), profile, integer, split_q, rank)
        if relation == "far":
            base_q.mean = base_q.mean + 1e6 * rng.choice([-1.0, 1.0], base_q.mean.shape)
        q = finish(base_q, dtype_q, profile.klass)
    return PairCase(fw, p, q, layout_p, layout_q, relation, delta)


def _near_cross(draw: st.DrawFn, rng: np.random.Generator, base: Base, delta: float,
                dtype: Any, profile: Profile) -> Spec:
    """Q of another constructor holding P's covariance (rounded), perturbed by δ."""
    d = base.d
    with np.errstate(all="ignore"):  # e^ℓ of extreme log-variances (not used then)
        dense = dense_base(base)
    diagonal = base.kind in DIAGONAL_KINDS
    kind = draw(st.sampled_from(("var", "std", "logvar", "cov") if diagonal else
                                ("cov", "precision", "scale_tril", "precision_tril")))
    if kind == base.kind:
        kind = "cov" if kind != "cov" else "precision"
    shape = tuple(np.broadcast_shapes(base.mean.shape[:-1], dense.shape[:-2]))
    mean = np.broadcast_to(base.mean, (*shape, d)) + delta * rng.uniform(-1, 1, (*shape, d))
    dense = np.broadcast_to(dense, (*shape, d, d))
    if base.kind == "logvar" and profile.klass == "logvar":  # e^ℓ beyond the float range
        kind = "logvar"
        arg = np.broadcast_to(base.args[0], (*shape, d)) + delta * rng.uniform(-1, 1,
                                                                                 (*shape, d))
    elif kind in ("var", "std", "logvar"):
        v = np.diagonal(dense, axis1=-2, axis2=-1) * (1 + delta * rng.uniform(-1, 1, (*shape,
                                                                                      d)))
        arg = v if kind == "var" else np.sqrt(v) if kind == "std" else np.log(v)
    else:  # perturbed as a correlation matrix, so coordinates of any scales stay apart
        t = np.eye(d) + delta * rng.uniform(-1, 1, (*shape, d, d))
        root = np.sqrt(np.diagonal(dense, axis1=-2, axis2=-1))
        corr = dense / root[..., :, None] / root[..., None, :]
        s = _sym(t @ corr @ np.swapaxes(t, -1, -2)) * root[..., :, None] * root[..., None, :]
        if kind in PRECISION_KINDS:
            s = _sym(np.linalg.inv(s))
        arg = np.linalg.cholesky(s) if kind.endswith("_tril") else s
    return finish(Base(kind, d, mean, [np.array(arg)], base.exps), dtype, profile.klass)


# --------------------------------------------------------------------------- mpmath reference
class NotDefinite(ValueError):
    """The reference's Cholesky met a pivot ≤ 0."""


def cholesky(a: Any) -> Any:
    """Lower Cholesky factor in mpmath, with no absolute tolerance (mpmath's own refuses
    matrices scaled below its eps), so any scale works; NotDefinite at a pivot ≤ 0."""
    n = a.rows
    ell = MP.matrix(n, n)
    for j in range(n):
        s = a[j, j] - MP.fsum(ell[j, k] ** 2 for k in range(j))
        if s <= 0:
            raise NotDefinite(f"pivot {j} is {MP.nstr(s, 5)}")
        ell[j, j] = MP.sqrt(s)
        for i in range(j + 1, n):
            ell[i, j] = (a[i, j] - MP.fsum(ell[i, k] * ell[j, k] for k in range(j))) / ell[j, j]
    return ell


def lower_inverse(ell: Any) -> Any:
    """L⁻¹ of a lower-triangular L, by forward substitution."""
    n = ell.rows
    inv = MP.matrix(n, n)
    for c in range(n):
        for i in range(c, n):
            rhs = (1 if i == c else 0) - MP.fsum(ell[i, k] * inv[k, c] for k in range(c, i))
            inv[i, c] = rhs / ell[i, i]
    return inv


def spd_inverse(a: Any) -> Any:
    """A⁻¹ = L⁻ᵀL⁻¹ of a positive definite A (any scale)."""
    inv = lower_inverse(cholesky(a))
    return inv.T * inv


class Ref:
    """One Gaussian in mpmath: mean (d×1), Σ, and (lazily) its factor, log-determinant and
    inverse."""

    def __init__(self, mean: Any, cov: Any, logdet: Any = None) -> None:
        self.mean, self.cov, self.d = mean, cov, cov.rows
        self._chol, self._inv, self._logdet = None, None, logdet

    @property
    def chol(self) -> Any:
        if self._chol is None:
            self._chol = cholesky(self.cov)
        return self._chol

    @property
    def logdet(self) -> Any:
        if self._logdet is None:
            self._logdet = 2 * MP.fsum(MP.log(self.chol[i, i]) for i in range(self.d))
        return self._logdet

    @property
    def inv(self) -> Any:
        if self._inv is None:
            inv = lower_inverse(self.chol)
            self._inv = inv.T * inv
        return self._inv

    def trace(self) -> Any:
        return MP.fsum(self.cov[i, i] for i in range(self.d))

    def condition(self) -> tuple[float, float]:
        """(κ of D^-½ Σ D^-½ with D = diag Σ, in float64; a bound on κ(Σ): that times the
        spread of D), both capped at 1e300."""
        d = self.d
        diag = [self.cov[i, i] for i in range(d)]
        s = [MP.sqrt(x) for x in diag]
        m = np.array([[float(self.cov[i, j] / (s[i] * s[j])) for j in range(d)]
                      for i in range(d)])
        eig = np.linalg.eigvalsh(m)
        scaled = min(float(eig[-1] / eig[0]), 1e300) if eig[0] > 0 else 1e300
        return scaled, min(scaled * float(min(max(diag) / min(diag), MP.mpf(1e300))), 1e300)


def mp_matrix(a: np.ndarray) -> Any:
    return MP.matrix(np.asarray(a).astype(np.float64).tolist() if a.dtype.kind == "f"
                     else np.asarray(a).tolist())


def mp_vector(a: np.ndarray) -> Any:
    return MP.matrix([MP.mpf(x) for x in (a.astype(np.float64).tolist() if a.dtype.kind == "f"
                                           else a.tolist())])


def reference(spec: Spec, shape: tuple[int, ...]) -> Iterator[tuple[tuple[int, ...], Ref]]:
    """(index, Ref) of every element of ``spec`` broadcast to batch shape ``shape``."""
    d = spec.dim
    if spec.kind == "standard":
        ref = Ref(MP.zeros(d, 1), MP.eye(d), MP.mpf(0))
        for index in np.ndindex(*shape):
            yield index, ref
        return
    cores = (1, *CORE[spec.kind])
    full = [np.broadcast_to(a, (*shape, *a.shape[a.ndim - c:]))
            for (_, a), c in zip(spec.arrays(), cores, strict=True)]
    for index in np.ndindex(*shape):
        mean, *args = (a[index] for a in full)
        yield index, Ref(mp_vector(mean), *_cov(spec.kind, args, d))


def _cov(kind: str, args: list[np.ndarray], d: int) -> tuple[Any, Any]:
    """(Σ, its exact log-determinant or None) of one element."""
    if kind == "cov":
        return mp_matrix(args[0]), None
    if kind == "precision":
        return spd_inverse(mp_matrix(args[0])), None
    if kind == "scale_tril":
        ell = mp_matrix(args[0])
        return ell * ell.T, None
    if kind == "precision_tril":
        r = mp_matrix(args[0])
        return spd_inverse(r * r.T), None
    if kind in ("var", "std", "logvar"):
        v = mp_vector(args[0])
        if kind == "logvar":
            return MP.diag([MP.exp(x) for x in v]), MP.fsum(v)
        return MP.diag([x * x if kind == "std" else x for x in v]), None
    if kind == "isotropic":
        return MP.eye(d) * mp_vector(np.atleast_1d(args[0]))[0], None
    if kind == "lowrank":
        w, v = mp_matrix(args[0]), mp_vector(args[1])
        return w * w.T + MP.diag(list(v)), None
    a, b = mp_matrix(args[0]), mp_matrix(args[1])
    m = b.rows
    return MP.matrix([[a[i // m, j // m] * b[i % m, j % m] for j in range(d)]
                      for i in range(d)]), None


def kl_parts(p: Ref, q: Ref) -> tuple[Any, Any, Any, Any]:
    """(KL(P‖Q), ln|Σ₂|/|Σ₁|, tr Σ₂⁻¹Σ₁, Mahalanobis)."""
    diff = p.mean - q.mean
    trace = MP.fsum((q.inv * p.cov)[i, i] for i in range(p.d))
    maha = (diff.T * q.inv * diff)[0]
    ratio = q.logdet - p.logdet
    return (ratio + trace + maha - p.d) / 2, ratio, trace, maha


def renyi(p: Ref, q: Ref, alpha: float) -> Any:
    """D_α(P‖Q); +inf where αΣ₂ + (1−α)Σ₁ is not positive definite."""
    a = MP.mpf(alpha)
    mixed = a * q.cov + (1 - a) * p.cov
    try:
        m = Ref(p.mean, mixed)
        logdet = m.logdet
    except NotDefinite:
        return MP.inf
    diff = p.mean - q.mean
    maha = (diff.T * m.inv * diff)[0]
    return a / 2 * maha - (logdet - (1 - a) * p.logdet - a * q.logdet) / (2 * (a - 1))


def w2_squared(p: Ref, q: Ref) -> Any:
    """‖μ₁ − μ₂‖² + tr Σ₁ + tr Σ₂ − 2 Σ √eig(L₁ᵀ Σ₂ L₁)."""
    diff = p.mean - q.mean
    ell = p.chol
    eig = MP.eigsy(ell.T * q.cov * ell, eigvals_only=True)
    roots = MP.fsum(MP.sqrt(max(e, 0)) for e in eig)
    return MP.fsum(x * x for x in diff) + p.trace() + q.trace() - 2 * roots


def entropy(p: Ref) -> Any:
    return (p.d * (1 + LOG_2PI) + p.logdet) / 2


def log_prob(p: Ref, x: Any) -> tuple[Any, Any]:
    """(ln p(x), the magnitude of its terms)."""
    diff = x - p.mean
    maha = (diff.T * p.inv * diff)[0]
    return -(p.d * LOG_2PI + p.logdet + maha) / 2, p.d * LOG_2PI + abs(p.logdet) + maha


def tv_exact_1d(p: Ref, q: Ref) -> Any:
    """TV of two 1-D Gaussians: |ΔF(x₁) − ΔF(x₂)| at the roots of ln p = ln q."""
    v1, v2 = p.cov[0, 0], q.cov[0, 0]
    # centred on the narrower mean (TV is shift-invariant): the roots lie within a few of its
    # standard deviations, which no precision resolves next to a mean of 1 when σ ≈ 1e-260
    shift = p.mean[0] if v1 <= v2 else q.mean[0]
    m1, m2 = p.mean[0] - shift, q.mean[0] - shift

    def delta_cdf(x: Any) -> Any:
        return (MP.erf((x - m1) / MP.sqrt(2 * v1)) - MP.erf((x - m2) / MP.sqrt(2 * v2))) / 2

    if v1 == v2:
        return MP.mpf(0) if m1 == m2 else abs(delta_cdf((m1 + m2) / 2))
    a = (v1 - v2) / (2 * v1 * v2)
    b = m1 / v1 - m2 / v2
    c = m2 * m2 / (2 * v2) - m1 * m1 / (2 * v1) + MP.log(v2 / v1) / 2
    # b² − 4ac without its cancellation (it is ≥ 0: the densities always cross)
    root = MP.sqrt(((m1 - m2) ** 2 + (v1 - v2) * MP.log(v1 / v2)) / (v1 * v2))
    big = -(b + (root if b >= 0 else -root)) / 2
    return abs(delta_cdf(big / a) - delta_cdf(c / big))


@dataclass
class PairRef:
    """Every reference value of one element of a pair."""

    kl: Any
    kl_back: Any
    ratio: Any
    trace: Any
    maha: Any
    renyi: dict[float, Any]
    w2sq: Any
    entropy_p: Any
    entropy_q: Any
    kappa: float  # the larger scaled condition number of the two
    kappa_raw: float

    @property
    def bhattacharyya(self) -> Any:
        return self.renyi[0.5] / 2

    @property
    def hellinger(self) -> Any:
        return MP.sqrt(-MP.expm1(-self.bhattacharyya))

    def tv(self, p: Ref, q: Ref) -> tuple[Any, Any]:
        if p.d == 1:
            exact = tv_exact_1d(p, q)
            return exact, exact
        h2 = max(-MP.expm1(-self.bhattacharyya), 0)  # ≥ 0 but for the reference's rounding
        upper = min(MP.mpf(1), MP.sqrt(h2 * (2 - h2)), MP.sqrt(max(self.kl, 0) / 2),
                    MP.sqrt(max(self.kl_back, 0) / 2))
        return h2, upper


def pair_reference(p: Ref, q: Ref, zero: bool) -> PairRef:
    """Every reference value; exactly 0 for identical inputs (``zero``)."""
    kl, ratio, trace, maha = kl_parts(p, q)
    kl_back = kl_parts(q, p)[0]
    renyis = {a: renyi(p, q, a) for a in (0.5, 2.0)}
    w2sq = w2_squared(p, q)
    if zero:
        kl = kl_back = w2sq = MP.mpf(0)
        renyis = {a: MP.mpf(0) for a in renyis}
    (p_scaled, p_raw), (q_scaled, q_raw) = p.condition(), q.condition()
    return PairRef(kl, kl_back, ratio, trace, maha, renyis, w2sq, entropy(p), entropy(q),
                   max(p_scaled, q_scaled), max(p_raw, q_raw))


def zipped(case: PairCase, shape: tuple[int, ...]) -> Iterator[tuple[tuple[int, ...], Ref, Ref]]:
    """(index, P's Ref, Q's Ref) over the broadcast batch ``shape``."""
    for (index, p), (_, q) in zip(reference(case.p, shape), reference(case.q, shape),
                                  strict=True):
        yield index, p, q


def subset(shape: tuple[int, ...], limit: int = 6) -> Callable[[tuple[int, ...]], bool]:
    """Which batch indices to check against mpmath: all, or for big batches the first, the
    last and a middle one."""
    size = int(np.prod(shape, dtype=int))
    if size <= limit:
        return lambda index: True
    flat = {0, size // 2, size - 1}
    return lambda index: int(np.ravel_multi_index(index, shape)) in flat


# --------------------------------------------------------------------------- invalid input
#: How each argument can be broken, and the error that must follow.
BREAKS = {
    "mean": ("nan", "inf", "-inf"),
    "matrix": ("nan", "inf", "indefinite", "singular", "zero", "nonsym"),
    "tril": ("nan", "inf", "zero_diag", "negative_diag", "upper"),
    "positive": ("nan", "inf", "-inf", "zero", "negative"),
    "logvar": ("nan", "inf", "-inf"),
    "factor": ("nan", "inf"),
}
EXPECTED_ERROR = {"nan": gd.NonFiniteError, "inf": gd.NonFiniteError,
                  "-inf": gd.NonFiniteError, "indefinite": gd.NotPositiveDefiniteError,
                  "singular": gd.NotPositiveDefiniteError, "zero": gd.NotPositiveDefiniteError,
                  "nonsym": gd.NotSymmetricError, "zero_diag": gd.NotPositiveDefiniteError,
                  "negative_diag": gd.NotPositiveDefiniteError, "upper": gd.ShapeError,
                  "negative": gd.NotPositiveDefiniteError}


def role(kind: str, name: str) -> str:
    """Which BREAKS entry applies to argument ``name`` of constructor ``kind``."""
    if name == "mean":
        return "mean"
    if name in ("cov", "precision", "a", "b"):
        return "matrix"
    if name in ("scale_tril", "precision_tril"):
        return "tril"
    if name in ("factor", "logvar"):
        return name
    return "positive"  # var (diagonal, isotropic, low-rank), std


@dataclass(frozen=True)
class Break:
    """Argument ``name`` of a Gaussian broken as ``how`` in one element."""

    name: str
    how: str
    seed: int

    def apply(self, spec: Spec) -> tuple[Spec, tuple[int, ...]]:
        """The broken Spec and the broken element's batch index within that argument."""
        rng = np.random.default_rng(self.seed)
        arrays = dict(spec.arrays())
        a = np.array(arrays[self.name], copy=True)
        cores = dict(zip(["mean", *ARGS[spec.kind]], (1, *CORE[spec.kind]), strict=True))
        core = cores[self.name]
        batch = a.shape[:a.ndim - core]
        index = tuple(int(rng.integers(0, n)) for n in batch)
        element = a[index] if core else None
        how = self.how
        if core == 0:
            a[index] = {"nan": np.nan, "inf": np.inf, "-inf": -np.inf, "zero": 0.0}.get(
                how, -abs(a[index]))
        elif core == 1:
            j = int(rng.integers(0, a.shape[-1]))
            a[(*index, j)] = {"nan": np.nan, "inf": np.inf, "-inf": -np.inf, "zero": 0.0}.get(
                how, -abs(a[(*index, j)]))
        elif self.name == "factor":
            i, j = (int(rng.integers(0, n)) for n in a.shape[-2:])
            a[(*index, i, j)] = np.nan if how == "nan" else np.inf
        else:
            a[index] = _broken_matrix(rng, element, how, role(spec.kind, self.name))
        return spec.with_arg(self.name, a), index


def _broken_matrix(rng: np.random.Generator, m: np.ndarray, how: str, kind: str) -> np.ndarray:
    n = m.shape[-1]
    out = np.array(m, dtype=np.float64)
    i, j = sorted(int(k) for k in rng.integers(0, n, 2))
    if how in ("nan", "inf"):
        out[j, i] = out[i, j] = np.nan if how == "nan" else np.inf
    elif how == "zero":
        out[...] = 0.0
    elif how == "indefinite":
        w, v = np.linalg.eigh(out)
        w[0] = -0.5 * abs(w[-1])
        out = _sym((v * w) @ v.T)
    elif how == "singular":  # a duplicated coordinate: exactly rank-deficient
        if n == 1:
            out[...] = 0.0
        else:
            a, b = rng.choice(n, 2, replace=False)
            out[:, b] = out[:, a]
            out[b, :] = out[a, :]
    elif how == "nonsym":
        out[0, n - 1] += 1e-2 * np.max(np.abs(out))
    elif how == "zero_diag":
        out[i, i] = 0.0
    elif how == "negative_diag":
        out[i, i] = -abs(out[i, i])
    elif how == "upper":
        out[0, n - 1] = 0.5 * np.max(np.abs(out)) + 1.0
    return out.astype(m.dtype)


def applicable(spec: Spec, how: str, name: str) -> bool:
    """Whether ``how`` can break argument ``name`` (some breaks need d ≥ 2)."""
    arrays = dict(spec.arrays())
    n = arrays[name].shape[-1] if arrays[name].ndim else 1
    return not (how in ("nonsym", "upper") and n < 2)


@st.composite
def breaks(draw: st.DrawFn, spec: Spec) -> Break:
    names = [n for n, _ in spec.arrays()]
    name = draw(st.sampled_from(names))
    options = [h for h in BREAKS[role(spec.kind, name)] if applicable(spec, h, name)]
    return Break(name, draw(st.sampled_from(options)), draw(st.integers(0, 2**32 - 1)))

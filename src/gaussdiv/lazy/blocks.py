"""The library's functions over Dask Gaussians: one task per chunk (per pair of chunks for
matrices), each building its chunk's Gaussians with the user's constructor and calling the
in-memory function on them; the result is a Dask array, computed on whatever scheduler is
active (threads, processes, a ``dask.distributed`` cluster) when asked.

Input errors surface when the result is computed, with the batch index counted in the whole
array (a chunk's own index plus its offset). Random draws (``sample``) take a stream per chunk
from (seed, the chunk's offsets): reproducible on any scheduler and chunk order, though not the
stream an in-memory call with that seed draws.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import numpy as np

from gaussdiv.divergences.kl import KLTerms
from gaussdiv.errors import BackendMismatchError, GaussianError
from gaussdiv.gaussian import Gaussian
from gaussdiv.lazy.dask_gaussian import DaskGaussian, batch_chunks

#: Functions whose positional argument at this place is a point array (..., d).
POINTS_AT = {"log_prob": 1, "log_ratio": 2}
_BATCH = "abcdefghijklmnopqrstuvwxyz"
_CORE = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"


def lazy_call(function: Callable[..., Any], args: tuple[Any, ...],
              kwargs: dict[str, Any]) -> Any:
    """``function(*args, **kwargs)`` with some arguments Dask Gaussians, as Dask arrays."""
    name = function.__name__
    if name in ("kl_mc", "js_mc"):
        raise GaussianError(f"{name} of Dask Gaussians is not supported (every chunk would "
                            "draw the same stream); use the exact divergence, or compute on "
                            "in-memory chunks")
    if name == "pairwise":
        return lazy_pairwise(function, *args, **kwargs)
    if name == "pairwise_topk":
        return lazy_topk(function, *args, **kwargs)
    if name == "sample":
        return lazy_sample(function, *args, **kwargs)
    return lazy_elementwise(function, args, kwargs)


# ---------------------------------------------------------------- elementwise


#: Functions whose result is several arrays of the batch shape: (how many, one chunk's result
#: as that many arrays, the result rebuilt from (the stacked Dask array, the arguments)).
_SEVERAL: dict[str, tuple[int, Callable[[Any], tuple[Any, ...]],
                          Callable[[Any, tuple[Any, ...]], Any]]] = {
    "tv_bounds": (2, tuple, lambda v, args: (v[..., 0], v[..., 1])),
    "kl_terms": (4, lambda t: (t.logdet_ratio, t.trace, t.mahalanobis, t.kl),
                 lambda v, args: KLTerms(v[..., 0], v[..., 1], v[..., 2], args[0].dim,
                                         v[..., 3])),
}


def lazy_elementwise(function: Callable[..., Any], args: tuple[Any, ...],
                     kwargs: dict[str, Any]) -> Any:
    """A function of Gaussians (and points) whose result has the broadcast batch shape (or
    is several such arrays: ``_SEVERAL``)."""
    import dask.array as da

    several = _SEVERAL.get(function.__name__)

    points_at = POINTS_AT.get(function.__name__)
    roles = ["gaussian" if isinstance(a, Gaussian | DaskGaussian) else
             "points" if i == points_at else "constant" for i, a in enumerate(args)]
    shapes = [a.batch_shape if r == "gaussian" else tuple(np.shape(a))[:-1]
              for a, r in zip(args, roles, strict=True) if r != "constant"]
    batch = np.broadcast_shapes(*shapes)
    _check_numpy(args)
    chunks = _target_chunks(args, roles, batch)
    spec: list[Any] = []
    layout: list[tuple[str, Any]] = []
    for arg, role in zip(args, roles, strict=True):
        if role == "gaussian" and isinstance(arg, DaskGaussian):
            lazy = arg.broadcast_to(batch, chunks)
            names = list(lazy.arrays)
            layout.append(("lazy", (lazy, names)))
            for n in names:
                spec += [lazy.arrays[n], _indices(len(batch), lazy.cores[n], len(spec))]
        elif role == "points":
            points = _as_dask(arg)
            d = points.shape[-1]
            points = da.broadcast_to(points, (*batch, d)).rechunk((*chunks, (d,)))
            layout.append(("points", None))
            spec += [points, _indices(len(batch), 1, len(spec))]
        else:
            layout.append(("eager" if role == "gaussian" else "constant", arg))
    for axis, size in enumerate(batch):
        spec += [da.arange(size, chunks=(chunks[axis],)), _BATCH[axis]]
    out = _BATCH[:len(batch)] + ("Z" if several else "")

    def block(*blocks: Any) -> np.ndarray:
        starts, stops = _bounds(blocks[len(blocks) - len(batch):])
        inputs, at = [], 0
        for kind, value in layout:
            if kind == "lazy":
                lazy, names = value
                inputs.append(_built(lazy, dict(zip(names, blocks[at:at + len(names)],
                                                    strict=True)), starts))
                at += len(names)
            elif kind == "points":
                inputs.append(blocks[at])
                at += 1
            elif kind == "eager":
                inputs.append(value.broadcast_to(batch)[tuple(map(slice, starts, stops))]
                              if batch else value)
            else:
                inputs.append(value)
        with _global_index(starts):
            result = function(*inputs, **kwargs)
        if several:
            return np.stack([np.asarray(r) for r in several[1](result)], -1)
        return np.asarray(result)

    dtype = _result_dtype(args)
    value = da.blockwise(block, out, *spec, dtype=dtype, concatenate=True,
                         new_axes={"Z": several[0]} if several else None)
    return several[2](value, args) if several else value


def lazy_sample(function: Callable[..., Any], p: Any, n: int, seed: Any = None) -> Any:
    """n draws per Gaussian, (n, *batch, d), a stream per chunk from (seed, chunk offsets)."""
    import dask.array as da

    entropy = _entropy(seed)
    batch = p.batch_shape
    spec: list[Any] = []
    names = list(p.arrays)
    for name in names:
        spec += [p.arrays[name], _indices(len(batch), p.cores[name], len(spec))]
    for axis, size in enumerate(batch):
        spec += [da.arange(size, chunks=(p.chunks[axis],)), _BATCH[axis]]

    def block(*blocks: Any) -> np.ndarray:
        starts, _ = _bounds(blocks[len(names):])
        g = _built(p, dict(zip(names, blocks[:len(names)], strict=True)), starts)
        rng = np.random.default_rng([entropy, *starts])
        return np.asarray(function(g, n, seed=rng))

    out = "Y" + _BATCH[:len(batch)] + "X"
    return da.blockwise(block, out, *spec, dtype=p.dtype, concatenate=True,
                        new_axes={"Y": int(n), "X": p.dim})


# ---------------------------------------------------------------- matrices


def lazy_pairwise(function: Callable[..., Any], divergence: Any, P: Any, Q: Any = None,
                  **options: Any) -> Any:
    """The N × M matrix as a Dask array: one task per (chunk of P, chunk of Q)."""
    import dask.array as da

    Q = P if Q is None else Q
    _check_numpy((P, Q))
    spec, p_layout, q_layout = _matrix_spec(P, Q)

    def block(*blocks: Any) -> np.ndarray:
        p, q = _matrix_inputs(blocks, p_layout, q_layout)
        return np.asarray(function(divergence, p, q, **options))

    value = da.blockwise(block, "ij", *spec, dtype=_result_dtype((P, Q)), concatenate=True)
    return value.reshape(*P.batch_shape, *Q.batch_shape)


def lazy_topk(function: Callable[..., Any], divergence: Any, P: Any, Q: Any, k: int, *,
              largest: bool = False, **options: Any) -> tuple[Any, Any]:
    """(indices, values) of the k best Q_j per P_i as Dask arrays: per (chunk of P, chunk of
    Q) the chunk's own top-k, then one merge per chunk of P (ties by index, as in memory)."""
    import dask.array as da

    Q = P if Q is None else Q
    _check_numpy((P, Q))
    m = int(np.prod(Q.batch_shape, dtype=np.int64))
    if isinstance(k, bool) or not isinstance(k, int | np.integer) or not 1 <= k <= m:
        raise GaussianError(f"k must be an integer from 1 to the number of Q's ({m}), got {k!r}")
    k = int(k)
    spec, p_layout, q_layout = _matrix_spec(P, Q)
    sign = -1.0 if largest else 1.0

    def block(*blocks: Any) -> np.ndarray:
        p, q = _matrix_inputs(blocks, p_layout, q_layout)
        start = int(blocks[-1][0]) if len(blocks[-1]) else 0
        kk = min(k, len(q))
        index, value = function(divergence, p, q, kk, largest=largest, **options)
        out = np.full((len(p), 2 * k), np.nan)
        out[:, :kk] = np.asarray(value)
        out[:, k:k + kk] = np.asarray(index) + start
        out[:, kk:k] = sign * np.inf  # short chunks: padding that never wins
        out[:, k + kk:] = -1
        return out

    partial = da.blockwise(block, "ij", *spec, dtype=np.float64, concatenate=True,
                           adjust_chunks={"j": 2 * k})
    merged = partial.rechunk({1: -1}).map_blocks(_merge_chunks, k, sign,
                                                 chunks=(partial.chunks[0], (2 * k,)),
                                                 dtype=np.float64)
    shape = (*P.batch_shape, k)
    values = merged[:, :k].astype(_result_dtype((P, Q))).reshape(shape)
    indices = merged[:, k:].astype(np.int64).reshape(shape)
    return indices, values


def _merge_chunks(block: np.ndarray, k: int, sign: float) -> np.ndarray:
    """Per row, the k best of every Q chunk's candidates ([values k | indices k] per chunk)."""
    rows = block.shape[0]
    groups = block.reshape(rows, -1, 2, k)
    values = groups[:, :, 0, :].reshape(rows, -1)
    index = groups[:, :, 1, :].reshape(rows, -1)
    order = np.lexsort((index, sign * values), axis=1)[:, :k]
    return np.concatenate([np.take_along_axis(values, order, 1),
                           np.take_along_axis(index, order, 1)], 1)


def _matrix_spec(P: Any, Q: Any) -> tuple[list[Any], Any, Any]:
    """blockwise arguments for P (index i) and Q (index j), flattened, and how to rebuild
    each side's chunk; the last two arguments are the offsets along i and along j."""
    import dask.array as da

    spec: list[Any] = []
    layouts = []
    offsets = []
    for side, letter in ((P, "i"), (Q, "j")):
        n = int(np.prod(side.batch_shape, dtype=np.int64))
        if isinstance(side, DaskGaussian):
            flat = side.reshape(-1)
            names = list(flat.arrays)
            layouts.append(("lazy", flat, names, len(spec) // 2))  # blocks: one per array
            for name in names:
                core = flat.cores[name]
                spec += [flat.arrays[name], letter + _CORE[len(spec):len(spec) + core]]
            chunks = flat.chunks[0]
        else:
            layouts.append(("eager", side.reshape(-1), None, None))
            chunks = (n,)
        offsets += [da.arange(n, chunks=(chunks,)), letter]
    return spec + offsets, layouts[0], layouts[1]


def _matrix_inputs(blocks: tuple[Any, ...], p_layout: Any, q_layout: Any) -> list[Gaussian]:
    out = []
    for layout, offsets in ((p_layout, blocks[-2]), (q_layout, blocks[-1])):
        kind, value, names, at = layout
        start = int(offsets[0]) if len(offsets) else 0
        if kind == "lazy":
            out.append(_built(value, dict(zip(names, blocks[at:at + len(names)], strict=True)),
                              (start,)))
        else:
            out.append(value[start:start + len(offsets)])
    return out


# ---------------------------------------------------------------- helpers


def _built(lazy: DaskGaussian, blocks: dict[str, np.ndarray], starts: tuple[int, ...]
           ) -> Gaussian:
    with _global_index(starts):
        return lazy.build(blocks)


class _global_index:
    """Re-raise a GaussianError with its batch index counted in the whole array."""

    def __init__(self, starts: tuple[int, ...]) -> None:
        self.starts = starts

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: Any, error: Any, trace: Any) -> bool:
        if error is None or not isinstance(error, GaussianError) or not any(self.starts):
            return False
        raise type(error)(shift_index(str(error), self.starts)) from None


_INDEX = re.compile(r"at (batch )?index (\(\d+(?:, \d+)*\)|\d+)")


def shift_index(message: str, starts: tuple[int, ...]) -> str:
    """``message`` with every 'at batch index …' moved by the chunk's offsets (aligned on the
    right, as batch axes broadcast), and every 'at index …' of an input array (its batch axes
    first, all of them present in a chunk's blocks) moved on its leading axes."""
    def moved(match: re.Match[str]) -> str:
        local = [int(v) for v in re.findall(r"\d+", match.group(2))]
        if match.group(1):  # a batch index: aligned on the right
            offsets = [0] * max(len(local) - len(starts), 0) + \
                list(starts[max(len(starts) - len(local), 0):])
        else:  # an array index: the batch axes lead
            offsets = list(starts[:len(local)]) + [0] * max(len(local) - len(starts), 0)
        shifted = [a + b for a, b in zip(local, offsets, strict=True)]
        text = str(shifted[0]) if len(shifted) == 1 else str(tuple(shifted))
        return f"at {match.group(1) or ''}index {text}"

    return _INDEX.sub(moved, message)


def _bounds(offsets: tuple[Any, ...]) -> tuple[tuple[int, ...], tuple[int, ...]]:
    starts = tuple(int(o[0]) if len(o) else 0 for o in offsets)
    stops = tuple(s + len(o) for s, o in zip(starts, offsets, strict=True))
    return starts, stops


def _indices(batch_ndim: int, core: int, used: int) -> str:
    """A blockwise index: the shared batch letters, then core letters of this argument's own."""
    return _BATCH[:batch_ndim] + _CORE[used:used + core]


def _target_chunks(args: tuple[Any, ...], roles: list[str], batch: tuple[int, ...]
                   ) -> tuple[tuple[int, ...], ...]:
    """The batch chunks every operand is brought to: the first Dask operand's that spans each
    axis."""
    arrays: dict[str, Any] = {}
    cores: dict[str, int] = {}
    for i, (arg, role) in enumerate(zip(args, roles, strict=True)):
        if isinstance(arg, DaskGaussian):
            for name, value in arg.arrays.items():
                arrays[f"{i}.{name}"], cores[f"{i}.{name}"] = value, arg.cores[name]
        elif role == "points" and type(arg).__module__.split(".")[0] == "dask":
            arrays[f"{i}"], cores[f"{i}"] = arg, 1
    return batch_chunks(arrays, cores, batch)


def _as_dask(x: Any) -> Any:
    import dask.array as da

    return x if type(x).__module__.split(".")[0] == "dask" else da.asarray(np.asarray(x))


def _check_numpy(args: tuple[Any, ...]) -> None:
    for arg in args:
        if isinstance(arg, Gaussian) and arg.ops.name != "numpy":
            raise BackendMismatchError(
                f"a Dask Gaussian meets a {arg.ops.name} Gaussian; chunks are NumPy: build "
                "the other one from NumPy (or Dask) arrays")


def _result_dtype(args: tuple[Any, ...]) -> np.dtype:
    dtypes = [np.dtype(a.dtype) for a in args if isinstance(a, Gaussian | DaskGaussian)]
    return np.dtype(np.float32) if dtypes and all(d == np.float32 for d in dtypes) else \
        np.dtype(np.float64)


def _entropy(seed: Any) -> int:
    """An integer seed for the per-chunk streams, fixed when the graph is built."""
    if seed is None:
        return int(np.random.SeedSequence().entropy)
    if isinstance(seed, np.random.Generator):
        return int(seed.integers(2**63))
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0:
        raise GaussianError(f"seed for a Dask Gaussian must be None, a non-negative int or a "
                            f"numpy Generator, got {seed!r}")
    return int(seed)

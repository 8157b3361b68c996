"""PyTorch: tensors keep their device and autograd graph; works under torch.func transforms."""

from __future__ import annotations

import contextlib
import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from gaussdiv.backends.base import Backend, Draw
from gaussdiv.errors import DtypeError


class TorchBackend(Backend):
    name = "torch"

    def __init__(self) -> None:
        import torch

        self.torch = torch
        self.xp = torch
        self.LinAlgError = torch.linalg.LinAlgError
        self._dtypes = {
            torch.float64: np.dtype(np.float64), torch.float32: np.dtype(np.float32),
            torch.float16: np.dtype(np.float16), torch.bfloat16: np.dtype(np.float16),
            torch.bool: np.dtype(np.bool_), torch.complex32: np.dtype(np.complex64),
            torch.complex64: np.dtype(np.complex64), torch.complex128: np.dtype(np.complex128),
            torch.int8: np.dtype(np.int8), torch.int16: np.dtype(np.int16),
            torch.int32: np.dtype(np.int32), torch.int64: np.dtype(np.int64),
            torch.uint8: np.dtype(np.uint8),
        }
        self._framework_dtypes = {np.dtype(np.float64): torch.float64,
                                  np.dtype(np.float32): torch.float32,
                                  np.dtype(np.float16): torch.float16}

    def numpy_dtype(self, x: Any) -> np.dtype:
        if isinstance(x, self.torch.Tensor):
            if x.dtype not in self._dtypes:  # float8, quantised, bit-packed and wide uints
                raise DtypeError(f"has dtype {x.dtype}, which gaussdiv does not compute with; "
                                 "pass float64, float32, float16/bfloat16 or integers")
            return self._dtypes[x.dtype]
        return np.asarray(x).dtype

    def unsupported(self, x: Any) -> str | None:
        if not isinstance(x, self.torch.Tensor):
            return None
        if x.is_meta:
            return "is on the meta device, which holds no values; pass a tensor with data"
        if x.is_nested:
            return "is a nested (ragged) tensor; pass a regular tensor"
        if x.is_quantized:
            return "is quantized; pass x.dequantize()"
        if x.layout != self.torch.strided:
            return f"is a sparse tensor ({x.layout}); pass x.to_dense()"
        return None

    def framework_dtype(self, dtype: np.dtype) -> Any:
        return self._framework_dtypes[np.dtype(dtype)]

    def asarray(self, x: Any, dtype: np.dtype, like: Any = None) -> Any:
        device = like.device if isinstance(like, self.torch.Tensor) else None
        if isinstance(x, self.torch.Tensor):
            target = self.framework_dtype(dtype)
            if x.dtype == target and (device is None or x.device == device):
                return x
            return x.to(dtype=target, device=device or x.device)
        return self.torch.as_tensor(np.asarray(x), dtype=self.framework_dtype(dtype),
                                    device=device)

    def freeze(self, x: Any, dtype: np.dtype, like: Any = None) -> Any:
        # Tensors are used as given (a cast keeps the autograd graph); nothing writes to them.
        return self.asarray(x, dtype, like)

    def to_numpy(self, x: Any) -> np.ndarray:
        if isinstance(x, self.torch.Tensor):
            if x.dtype == self.torch.bfloat16:
                x = x.float()
            x = x.detach()
            return (x if x.device.type == "cpu" else x.cpu()).numpy()
        return np.asarray(x)

    def is_traced(self, x: Any) -> bool:
        """Under torch.compile, or inside a torch.func transform (grad, vmap, jacrev): there
        even a plain tensor's detached view is a wrapper with no storage of its own to read."""
        if not isinstance(x, self.torch.Tensor):
            return False
        if self.torch.compiler.is_compiling():
            return True
        try:
            x.detach().data_ptr()
        except RuntimeError:
            return True
        return False

    def all_finite(self, x: Any) -> bool:
        if not isinstance(x, self.torch.Tensor):
            x = np.asarray(x)
            return bool(np.isfinite(x).all())
        x = x.detach()
        return math.isfinite(x.sum()) or bool(self.torch.isfinite(x).all())

    def min_value(self, x: Any) -> float:
        x = x.detach()
        return float(x.amin()) if x.numel() else float("inf")

    def result(self, x: Any, dtype: Any) -> Any:
        if isinstance(dtype, self.torch.dtype) and x.dtype != dtype:
            return x.to(dtype)
        return x

    def sum(self, x: Any, axis: int | Sequence[int]) -> Any:
        return self.torch.sum(x, dim=axis if isinstance(axis, int) else tuple(axis))

    def amin(self, x: Any, axes: tuple[int, ...], keepdims: bool) -> Any:
        return self.torch.amin(x, dim=axes, keepdim=keepdims)

    def max_abs(self, x: Any, axis: int) -> Any:
        return self.torch.amax(self.torch.abs(x), dim=axis, keepdim=True)

    def diagonal(self, a: Any) -> Any:
        return self.torch.diagonal(a, dim1=-2, dim2=-1)

    def matrix_transpose(self, a: Any) -> Any:
        return a.mT

    def eye(self, d: int, dtype: np.dtype, like: Any = None) -> Any:
        device = like.device if isinstance(like, self.torch.Tensor) else None
        return self.torch.eye(d, dtype=self.framework_dtype(dtype), device=device)

    def cholesky(self, a: Any) -> Any:
        return self.torch.linalg.cholesky(a)

    def eigvalsh(self, a: Any) -> Any:
        return self.torch.linalg.eigvalsh(a)

    def svdvals(self, a: Any) -> Any:
        return self.torch.linalg.svdvals(a)

    def solve_triangular(self, t: Any, b: Any, lower: bool) -> Any:
        return self.torch.linalg.solve_triangular(t, b, upper=not lower)

    def erf(self, x: Any) -> Any:
        return self.torch.special.erf(x)

    def widen(self, x: Any) -> Any:
        return x.double()

    def cast_like(self, x: Any, like: Any) -> Any:
        return x.to(like.dtype)

    def index_array(self, index: np.ndarray, like: Any) -> Any:
        return self.torch.as_tensor(index, device=like.device)

    def scatter(self, base: Any, index: Any, values: Any) -> Any:
        return base.index_copy(0, index, values)

    generator_name = "a torch.Generator"

    def is_generator(self, seed: Any) -> bool:
        return isinstance(seed, self.torch.Generator)

    def _random(self, seed: Any) -> Draw:
        torch = self.torch
        if isinstance(seed, torch.Generator):
            gen = seed
        else:
            gen = torch.Generator()
            gen.manual_seed(int(np.random.default_rng(seed).integers(2**62)))

        def draw(shape: tuple[int, ...], dtype: np.dtype, like: Any) -> Any:
            z = torch.randn(shape, generator=gen, dtype=self.framework_dtype(dtype))
            return z.to(like.device) if isinstance(like, torch.Tensor) else z

        return draw

    def no_grad(self) -> contextlib.AbstractContextManager[None]:
        return self.torch.no_grad()

    def stop_gradient(self, x: Any) -> Any:
        return x.detach()

    def with_gradient_of(self, value: Any, surrogate: Any) -> Any:
        # value + (surrogate − stop(surrogate)): forward is value, derivatives are surrogate's,
        # written with plain operations so torch.func transforms see through it.
        return value.detach() + (surrogate - surrogate.detach())

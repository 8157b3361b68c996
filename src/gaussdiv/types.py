"""The array types of gaussdiv's signatures.

Every function takes the arrays of one framework — NumPy, PyTorch or JAX — and returns that
framework's arrays, in the dtype it computed in (float32 or float64; half precision computed in
float32 and returned as given). One NumPy pair gives a NumPy scalar (``np.float64``), so that
``float(kl(p, q))`` and ``kl(p, q) < 0.1`` read as they should.

>>> import numpy as np, gaussdiv
>>> from gaussdiv.types import Array
>>> value: Array = gaussdiv.kl(gaussdiv.Gaussian.standard(2), gaussdiv.Gaussian.standard(2))
>>> type(value).__name__, float(value)
('float64', 0.0)
"""

from __future__ import annotations

from typing import TYPE_CHECKING, TypeAlias, Union

import numpy as np

if TYPE_CHECKING:
    import jax
    import numpy.typing as npt
    import torch

#: What a gaussdiv function returns: an array of the inputs' framework (a NumPy array or
#: scalar, a ``torch.Tensor`` or a ``jax.Array``), of the broadcast batch shape.
Array: TypeAlias = Union[np.ndarray, np.floating, "torch.Tensor", "jax.Array"]

#: What a gaussdiv function takes as an array: any of :data:`Array`, or anything
#: ``numpy.asarray`` reads (nested lists, Python numbers, a pandas column).
ArrayLike: TypeAlias = Union[Array, "npt.ArrayLike"]

__all__ = ["Array", "ArrayLike"]

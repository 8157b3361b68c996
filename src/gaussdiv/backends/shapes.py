"""Shape arithmetic shared by every backend."""

from __future__ import annotations

from functools import lru_cache

import numpy as np


@lru_cache(maxsize=1024)
def broadcast_shapes(*shapes: tuple[int, ...]) -> tuple[int, ...]:
    """``np.broadcast_shapes`` as a tuple, memoised: a training loop repeats the same shapes
    every step. Raises ValueError when the shapes do not broadcast."""
    return tuple(np.broadcast_shapes(*shapes))

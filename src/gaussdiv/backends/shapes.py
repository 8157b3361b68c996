"""Shape arithmetic shared by every backend."""

from __future__ import annotations

import numpy as np

_MEMO: dict[tuple[tuple[int, ...], ...], tuple[int, ...]] = {}
_MEMO_SIZE = 1024


def broadcast_shapes(*shapes: tuple[int, ...]) -> tuple[int, ...]:
    """``np.broadcast_shapes`` as a tuple, memoised (a training loop repeats the same shapes
    every step; a plain dict, which torch.compile traces without warnings). Raises ValueError
    when the shapes do not broadcast."""
    found = _MEMO.get(shapes)
    if found is None:
        found = tuple(np.broadcast_shapes(*shapes))
        if len(_MEMO) >= _MEMO_SIZE:
            _MEMO.clear()
        _MEMO[shapes] = found
    return found

"""The array frameworks a divergence test body runs over: NumPy, PyTorch and JAX.

A test asks for the ``fw`` fixture and is run once per framework in FRAMEWORKS; it builds its
Gaussians with ``fw.array`` (the same float64/float32 numbers in that framework's arrays) and
reads results back with ``fw.to_numpy`` (or ``fw.result``, which also checks that the result is
that framework's array of the expected dtype). A test that runs JAX on a subset of its cases
picks the (framework, case) pairs itself, naming frameworks as in FRAMEWORKS::

    @pytest.mark.parametrize("fw,case", [...], indirect=["fw"])

A framework is skipped only when it is not installed (``pytest.importorskip``). JAX runs with
x64 enabled (float64 cases). jaxlib 0.10.2 on CPU has been seen to hang on large batched
Cholesky + triangular solves, so JAX tests keep batches small and every test item run on JAX
gets a JAX_TIMEOUT_S timeout at collection (see ``pytest_collection_modifyitems``: pytest-timeout
reads the marker before fixtures run, so a marker applied inside the fixture would come too
late).

Under pytest, test modules must not ``import conftest`` at run time (only under
``TYPE_CHECKING``, or when run as a script): tests/cli/conftest.py shares the module name, and
whichever was collected last is the one ``sys.modules["conftest"]`` holds.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest

FRAMEWORKS = ("numpy", "torch", "jax")
JAX_TIMEOUT_S = 120


@dataclass(frozen=True)
class Framework:
    """How a test body makes arrays of one framework and reads them back."""

    name: str
    array: Callable[..., Any]  # (numpy array, numpy dtype = float64) -> framework array
    to_numpy: Callable[[Any], np.ndarray]
    array_type: type | tuple[type, ...]

    def result(self, value: Any, dtype: Any) -> np.ndarray:
        """``value`` as NumPy, after checking it is this framework's array of ``dtype``.

        For float32/float64 results (``to_numpy`` widens half precision to float32).
        """
        assert isinstance(value, self.array_type), (
            f"{self.name}: result is a {type(value).__module__}.{type(value).__name__}")
        out = self.to_numpy(value)
        assert out.dtype == np.dtype(dtype), f"{self.name}: result dtype {out.dtype}, not {dtype}"
        return out


def framework(name: str) -> Framework:
    """The Framework called ``name``; skips the calling test when it is not installed."""
    if name == "numpy":
        return Framework("numpy", lambda a, dt=np.float64: np.asarray(a, dt), np.asarray,
                         (np.ndarray, np.generic))
    if name == "torch":
        torch = pytest.importorskip("torch")
        dtypes = {np.float64: torch.float64, np.float32: torch.float32,
                  np.float16: torch.float16}

        def torch_to_numpy(t: Any) -> np.ndarray:
            t = t.detach().cpu()
            return (t.float() if t.dtype == torch.float16 else t).numpy()

        return Framework("torch", lambda a, dt=np.float64: torch.tensor(np.asarray(a),
                                                                        dtype=dtypes[dt]),
                         torch_to_numpy, torch.Tensor)
    if name != "jax":
        raise ValueError(f"unknown framework {name!r}")
    jax = pytest.importorskip("jax")
    jax.config.update("jax_enable_x64", True)
    import jax.numpy as jnp

    def jax_to_numpy(a: Any) -> np.ndarray:
        out = np.asarray(a)
        return out.astype(np.float32) if out.dtype.name == "bfloat16" else out

    return Framework("jax", lambda a, dt=np.float64: jnp.asarray(np.asarray(a, dt)),
                     jax_to_numpy, jax.Array)



@pytest.fixture(params=FRAMEWORKS)
def fw(request: pytest.FixtureRequest) -> Framework:
    """Each framework in turn (or the one an indirect parametrization names)."""
    return framework(request.param)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Every item that runs on JAX gets the JAX timeout (unless it sets its own)."""
    for item in items:
        callspec = getattr(item, "callspec", None)
        if (callspec is not None and callspec.params.get("fw") == "jax"
                and item.get_closest_marker("timeout") is None):
            item.add_marker(pytest.mark.timeout(JAX_TIMEOUT_S))

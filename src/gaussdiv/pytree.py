"""Gaussians and covariance structures as JAX pytrees (arrays are leaves, the rest static), so
they can be arguments and results of ``jax.jit``, ``vmap`` and ``grad``.

Registered when the JAX backend is first needed (``import gaussdiv`` never imports jax), and
for structure classes defined later, when they are defined.
"""

from __future__ import annotations

from typing import Any

_registered: dict[str, Any] = {}


def register_pytrees(jax: Any) -> None:
    """Register Gaussian and every Covariance subclass known now with ``jax.tree_util``."""
    from gaussdiv.gaussian import Gaussian
    from gaussdiv.structures import Covariance

    _registered["jax"] = jax
    _register(Gaussian)
    pending = list(Covariance.__subclasses__())
    while pending:
        cls = pending.pop()
        _register(cls)
        pending.extend(cls.__subclasses__())


def register_structure(cls: type) -> None:
    """A structure class just defined: registered at once if JAX is already in use."""
    if "jax" in _registered:
        _register(cls)


def _register(cls: type) -> None:
    jax = _registered["jax"]
    try:
        jax.tree_util.register_pytree_node(
            cls, lambda g: g.tree_flatten(), cls.tree_unflatten)
    except ValueError:  # registered already (a second backend instance, or a reload)
        pass

"""The ``--divergence NAME`` option of ``kl``, ``compare`` and ``pairwise``: which divergence of
the library to report, parsed once into a :class:`Divergence` that the commands call and label.

=====================  ==================================  =========  ==========
NAME                   library call                        symmetric  label
=====================  ==================================  =========  ==========
``kl``                 ``gaussdiv.kl(p, q)``               no         KL(P‖Q)
``jeffreys``           ``gaussdiv.jeffreys(p, q)``         yes        J(P, Q)
``renyi:ALPHA``        ``gaussdiv.renyi(p, q, ALPHA)``     no         D_ALPHA(P‖Q)
``bhattacharyya``      ``gaussdiv.bhattacharyya(p, q)``    yes        D_B(P, Q)
``hellinger``          ``gaussdiv.hellinger(p, q)``        yes        H(P, Q)
``wasserstein``        ``gaussdiv.wasserstein(p, q)``      yes        W₂(P, Q)
=====================  ==================================  =========  ==========

ALPHA is a finite real number > 0 (``renyi:1`` is KL). The library function is looked up when
the option is parsed, not when the command line is imported, so a divergence this version of
the library lacks is a user error of the command that asks for it.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import click
import numpy as np

import gaussdiv
from gaussdiv.cli.common import UserError, argument_names

#: What ``--divergence`` accepts, for help texts and error messages.
ALLOWED = "kl, jeffreys, renyi:ALPHA (ALPHA > 0, e.g. renyi:0.5), bhattacharyya, hellinger, " \
          "wasserstein"


@dataclass(frozen=True)
class Divergence:
    """A divergence chosen with ``--divergence``.

    Attributes:
        spec: the canonical NAME (``"kl"``, ``"renyi:0.5"``), as reported in JSON.
        kind: the family without its order (``"renyi"``); JSON keys start with it.
        symbol: how a value is written: ``symbol(A‖B)``, or ``symbol(A, B)`` when symmetric.
        title: its name in words, for captions.
        symmetric: D(P, Q) = D(Q, P), so one value is reported per pair.
        unit: of its values, for axis labels ("nats", or "" for a pure number).
        function: the library function, called as function(p, q, **options).
        options: its keyword arguments (the Rényi order), as (name, value) pairs.
    """

    spec: str
    kind: str
    symbol: str
    title: str
    symmetric: bool
    unit: str
    function: Callable[..., Any]
    options: tuple[tuple[str, Any], ...] = ()

    def __call__(self, p: gaussdiv.Gaussian, q: gaussdiv.Gaussian) -> float:
        """The divergence of one pair, by the library, as a Python float."""
        return float(self.function(p, q, **dict(self.options)))

    def matrix(self, p: gaussdiv.Gaussian, q: gaussdiv.Gaussian | None = None) -> np.ndarray:
        """The matrix D(P_i, Q_j) by :func:`gaussdiv.pairwise` (Q = P when omitted)."""
        return np.asarray(gaussdiv.pairwise(self.function, p, q, **dict(self.options)))

    def nearest(self, p: gaussdiv.Gaussian, k: int) -> tuple[np.ndarray, np.ndarray]:
        """For each P_i its k nearest other P_j by :func:`gaussdiv.pairwise_topk`, P_i
        itself left out: (indices, values), each (n, k)."""
        index, value = gaussdiv.pairwise_topk(self.function, p, None, k + 1,
                                              **dict(self.options))
        index, value = np.asarray(index), np.asarray(value)
        own = index == np.arange(len(index))[:, None]
        own[~own.any(1), -1] = True  # P_i not among its k + 1 nearest: drop the farthest
        keep = ~own
        n = len(index)
        return index[keep].reshape(n, k), value[keep].reshape(n, k)

    def label(self, first: str = "P", second: str = "Q") -> str:
        """``KL(P‖Q)``, or ``H(P, Q)`` for a symmetric one."""
        return f"{self.symbol}({first}, {second})" if self.symmetric else \
            f"{self.symbol}({first}‖{second})"

    def describe(self, first: str = "P", second: str = "Q") -> str:
        """A caption: the title and the label (just the label for KL)."""
        if self.kind == "kl":
            return self.label(first, second)
        definition = f" = KL({first}‖{second}) + KL({second}‖{first})" \
            if self.kind == "jeffreys" else ""
        return f"{self.title} {self.label(first, second)}{definition}"

    def value_label(self) -> str:
        """An axis or colour-bar label: the title with its unit."""
        return f"{self.title} ({self.unit})" if self.unit else self.title

    def both_ways(self, p: gaussdiv.Gaussian, q: gaussdiv.Gaussian, first: str, second: str,
                  sources: tuple[str, str] = ("p", "q")) -> list[tuple[str, str, float]]:
        """(JSON key, label, value) for D(P‖Q) and D(Q‖P), or once for a symmetric one.

        Keys are ``<kind>_<first><second>`` (lower case; e.g. ``renyi_pq``) and the reverse,
        or ``<kind>`` alone when symmetric. A library error names P and Q by ``sources``
        (their files), whichever way round the call was.
        """
        def value(a: gaussdiv.Gaussian, b: gaussdiv.Gaussian, names: tuple[str, str]) -> float:
            with argument_names(p=names[0], q=names[1]):
                return self(a, b)

        forward = value(p, q, sources)
        if self.symmetric:
            return [(self.kind, self.label(first, second), forward)]
        a, b = first.lower(), second.lower()
        return [(f"{self.kind}_{a}{b}", self.label(first, second), forward),
                (f"{self.kind}_{b}{a}", self.label(second, first), value(q, p, sources[::-1]))]


def _library(name: str) -> Callable[..., Any]:
    return getattr(gaussdiv, name)  # type: ignore[no-any-return]


def _order(spec: str, text: str) -> float:
    try:
        alpha = float(text)
    except ValueError:
        alpha = math.nan
    if not math.isfinite(alpha) or alpha <= 0:
        raise UserError(f"--divergence {spec}: the Rényi order must be a finite number > 0, "
                        f"got {text!r}; allowed: {ALLOWED}")
    return alpha


#: kind → (symbol, title, symmetric, unit) of the divergences without an argument.
_FIXED = {
    "kl": ("KL", "KL divergence", False, "nats"),
    "jeffreys": ("J", "Jeffreys divergence", True, "nats"),
    "bhattacharyya": ("D_B", "Bhattacharyya distance", True, "nats"),
    "hellinger": ("H", "Hellinger distance", True, ""),
    "wasserstein": ("W₂", "2-Wasserstein distance", True, "units of the data"),
}


def parse_divergence(text: str) -> Divergence:
    """``--divergence`` NAME → :class:`Divergence`; a one-line user error naming the allowed
    values when NAME is not one of them."""
    spec = text.strip().lower()
    kind, colon, argument = spec.partition(":")
    kind = kind.strip()
    if kind == "renyi":
        if not colon:
            raise UserError(f"--divergence {text}: give the Rényi order, as renyi:ALPHA; "
                            f"allowed: {ALLOWED}")
        alpha = _order(text, argument.strip())
        renyi = _library("renyi")
        order = f"{alpha:.15g}"
        return Divergence(f"renyi:{order}", "renyi", f"D_{order}",
                          f"Rényi divergence of order {order}", False, "nats", renyi,
                          (("alpha", alpha),))
    if kind in _FIXED and not colon:
        symbol, title, symmetric, unit = _FIXED[kind]
        return Divergence(kind, kind, symbol, title, symmetric, unit, _library(kind))
    raise UserError(f"--divergence {text}: unknown divergence; allowed: {ALLOWED}")


class DivergenceType(click.ParamType):
    """The click type of ``--divergence``: converts NAME with :func:`parse_divergence`."""

    name = "divergence"

    def convert(self, value: Any, param: click.Parameter | None,
                ctx: click.Context | None) -> Divergence:
        if isinstance(value, Divergence):
            return value
        return parse_divergence(str(value))


def divergence_option(help_text: str) -> Callable[[Any], Any]:
    """The ``--divergence NAME`` option (default ``kl``) with a command's own help text."""
    return click.option("--divergence", type=DivergenceType(), default="kl", show_default=True,
                        metavar="NAME", help=f"{help_text} NAME: {ALLOWED}.")

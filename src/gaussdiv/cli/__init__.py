"""The ``gaussdiv`` command line (needs the ``cli`` extra: ``pip install "gaussdiv[cli]"``).

Subcommands: ``kl`` (two Gaussian files), ``compare`` (two sample files, with bootstrap
intervals and a drift gate), ``pairwise`` (one Gaussian per group, matrix and heatmap) — each
with ``--divergence`` (see :mod:`gaussdiv.cli.divergences`) —, ``frechet`` (FID of two feature
files), ``derive`` (the derivation checked numerically) and ``demo``. The click group itself is
:data:`gaussdiv.cli.app.cli`; :func:`main` is the console-script entry point, which says what
to install when the extra is missing instead of failing with a traceback.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

#: Packages of the ``cli`` extra that the command line imports when it starts.
_EXTRA = {"click", "tqdm", "threadpoolctl"}


def main(argv: Sequence[str] | None = None) -> None:
    """Run the ``gaussdiv`` command line (``argv`` defaults to ``sys.argv[1:]``)."""
    try:
        from gaussdiv.cli.app import cli
    except ModuleNotFoundError as exc:
        if exc.name not in _EXTRA:
            raise
        print(f"gaussdiv: the command line needs the 'cli' extra ({exc.name} is missing): "
              'pip install "gaussdiv[cli]"', file=sys.stderr)
        sys.exit(2)  # a usage error, like every other problem of the user's set-up
    cli.main(args=list(argv) if argv is not None else None, prog_name="gaussdiv")

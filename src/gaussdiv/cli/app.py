"""The ``gaussdiv`` click group: subcommands, version, and the translation of library errors.

A :class:`gaussdiv.GaussianError` escaping a subcommand can only come from the user's data,
so it is shown like any user error (one line on stderr, exit status 2), never as a traceback.
Ctrl-C ends a command with "Interrupted" and exit status 130.
"""

from __future__ import annotations

from typing import Any

import click
from threadpoolctl import threadpool_limits

import gaussdiv
from gaussdiv.cli.cmd_compare import compare_command
from gaussdiv.cli.cmd_demo import demo_command
from gaussdiv.cli.cmd_derive import derive_command
from gaussdiv.cli.cmd_frechet import frechet_command
from gaussdiv.cli.cmd_kl import kl_command
from gaussdiv.cli.cmd_pairwise import pairwise_command
from gaussdiv.cli.common import EXIT_INTERRUPTED, UserError


class GaussdivGroup(click.Group):
    """A click group that reports library input errors as user errors and runs BLAS on one
    thread: the work here is many small (d×d) problems, where BLAS threads cost more than they
    give — ten times more on a busy machine (measured: a 1000-resample bootstrap at d = 3 took
    24 s with two OpenBLAS threads competing for two loaded cores, 2.5 s with one)."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            with threadpool_limits(limits=1, user_api="blas"):
                return super().invoke(ctx)
        except gaussdiv.GaussianError as exc:
            raise UserError(str(exc)) from None
        except KeyboardInterrupt:
            click.echo("Interrupted", err=True)
            raise click.exceptions.Exit(EXIT_INTERRUPTED) from None


@click.group(cls=GaussdivGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(gaussdiv.__version__, prog_name="gaussdiv")
def cli() -> None:
    """KL and other divergences between multivariate Gaussians: from files, fitted to data
    sets, pairwise between groups, the Fréchet distance (FID) of two feature files, and the
    derivation of KL checked numerically.

    \b
    Start with:  gaussdiv demo
    Every command takes --json: one schema for all (gaussdiv/cli/output.schema.json).
    Exit status: 0 ok, 1 a check failed (a compare gate, derive), 2 bad usage or input,
    130 interrupted.
    """


for command in (kl_command, compare_command, pairwise_command, frechet_command, derive_command,
                demo_command):
    cli.add_command(command)

"""The command-line skin: parse options, call `commands`, render, choose the exit code.

Exit codes: validate 0 valid / 1 invalid; plan 0 nothing to do / 2 changes pending / 1 error;
apply 0 all succeeded / 1 any failed or not started / 3 a transfer was locked by another runner /
130 or 143 stopped by SIGINT or SIGTERM (`stopping`). A usage error
or any other error exits 1 with a one-line message; an internal bug shows its traceback.

`options` holds the command group and what its commands share; `run` (validate, plan,
apply), `new`, `state` (status, report, abort, unlock) and `sandbox` add their commands to it.
"""

from __future__ import annotations

import gc
import sys

import click

from transfer_runner.cli import config_cmd, editor, new, run, sandbox, state  # noqa: F401  (they add their commands)
from transfer_runner.cli.options import EXIT_FAILED, GC_THRESHOLDS, cli
from transfer_runner.errors import ManifestError, TransferRunnerError
from transfer_runner.kill_points import install_from_env
from transfer_runner.shown import lines_safe

__all__ = ["GC_THRESHOLDS", "cli", "main"]


def tune_garbage_collector() -> None:
    """Make the cyclic garbage collector rare, and blind to what start-up loaded.

    A transfer holds large structures that form no cycles: an export index of one entry per
    message, listings of as many messages. With CPython's default thresholds (700, 10, 10)
    the collector walks them again and again: 0.38 s of a 3.2 s cut-over of a 50,000-message
    store, 900 collections (against 0.05 s and 6 with these). What the imports built is
    frozen: it lives as long as the process.
    """
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)


def main(argv: list[str] | None = None) -> None:
    """Entry point: run the CLI, turn expected errors into a message and an exit code.

    Run as a program (no `argv`), it first tunes the garbage collector for this process
    (`tune_garbage_collector`); a caller that passes `argv` keeps its own settings.
    """
    if argv is None:
        tune_garbage_collector()
    install_from_env()  # the tests' kill and pause points; nothing unless they ask
    try:
        code = cli.main(args=argv, prog_name="transfer-runner", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        code = EXIT_FAILED
    except click.exceptions.Exit as exc:
        code = exc.exit_code
    except click.NoSuchOption as exc:
        _hinted(exc).show()
        code = EXIT_FAILED
    except click.ClickException as exc:
        exc.show()
        code = EXIT_FAILED
    except ManifestError as exc:
        click.echo(lines_safe(str(exc)), err=True)
        code = EXIT_FAILED
    except TransferRunnerError as exc:  # may quote the platform or S3: no CI command lines
        click.echo(lines_safe(f"error: {exc}"), err=True)
        code = EXIT_FAILED
    sys.exit(code or 0)


def _hinted(exc: click.NoSuchOption) -> click.UsageError:
    """A global option given after the command (`plan DIR --platform X`) is told where it
    goes, where click would only say "No such option" (and guess another)."""
    name = exc.option_name.partition("=")[0]
    if exc.ctx is None or exc.ctx.parent is None:
        return exc
    if not any(name in param.opts for param in cli.params):
        return exc
    command = exc.ctx.command_path.removeprefix("transfer-runner ")
    return click.UsageError(
        f"No such option for {command}: {name} is a global option, and global options go "
        f"before the command: transfer-runner {name} ... {command} ...",
        ctx=exc.ctx,
    )

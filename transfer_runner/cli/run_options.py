"""Options that `plan` and `apply` share or that need parsing once: the selection (`--limit`,
`--tags`, `--shard`, the git guards), `--serial` and `--procs`."""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

import click

from transfer_runner.cli.lazy import LazyModule
from transfer_runner.cli.options import F
from transfer_runner.engine.waves import WaveSize
from transfer_runner.errors import ConfigError

if TYPE_CHECKING:
    from transfer_runner import commands
else:
    commands = LazyModule("transfer_runner.commands")  # imported when a command runs

__all__ = ["procs", "selection", "selection_options", "serial"]


def selection_options(func: F) -> F:
    """`--limit`, `--tags`, `--shard` and the git guards, shared by plan and apply."""
    func = click.option(
        "--require-clean", is_flag=True,
        help="Refuse manifests with uncommitted changes (git).",
    )(func)  # fmt: skip
    func = click.option(
        "--changed-since", metavar="REF",
        help="Only manifests changed since this git ref (e.g. origin/main).",
    )(func)  # fmt: skip
    func = click.option(
        "--shard", metavar="I/N|auto[/N]",
        help="Take a stable 1/N of the transfers (1-based I). auto reads CI_NODE_INDEX/"
        "CI_NODE_TOTAL, JOB_COMPLETION_INDEX or AWS_BATCH_JOB_ARRAY_INDEX (give N: auto/N), "
        "or TRANSFER_RUNNER_SHARD.",
    )(func)  # fmt: skip
    func = click.option("--tags", default="", metavar="T1,T2", help="Only tasks with these tags.")(
        func
    )
    return click.option(
        "--limit", "limits", multiple=True, metavar="EXPR",
        help="NAME, key=value (label) or @RETRY-FILE; repeatable.",
    )(func)  # fmt: skip


def selection(
    paths: tuple[str, ...],
    limits: tuple[str, ...],
    tags: str,
    shard: str | None,
    changed_since: str | None,
    require_clean: bool,
) -> commands.Selection:
    """The options of `_selection_options`, parsed once into the commands' request."""
    from transfer_runner.sharding import parse_shard

    return commands.Selection(
        paths,
        limits=limits,
        tags=(t.strip() for t in tags.split(",") if t.strip()),
        shard=parse_shard(shard) if shard else None,
        git=commands.GitGuards(changed_since, require_clean),
    )


def serial(ctx: click.Context, param: click.Parameter, value: str | None) -> WaveSize | None:
    """`--serial` parsed once, here, into the engine's `WaveSize`."""
    if value is None:
        return None
    try:
        return WaveSize.parse(value)
    except ConfigError as exc:
        raise click.BadParameter(str(exc)) from None


def procs(ctx: click.Context, param: click.Parameter, value: str) -> int | Literal["auto"]:
    """`--procs`: a positive number, or auto."""
    text = str(value).strip().lower()
    if text == "auto":
        return "auto"
    if not text.isdigit() or not 1 <= int(text) <= 256:
        raise click.BadParameter(f"{value!r} is not a number of processes (1-256) or auto")
    return int(text)

"""The `transfer-runner` command group: its global options (platform, state, export, -v/-q),
resolved once into `GroupOptions` for every command, the exit codes, and the options that
several commands share."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import click

from transfer_runner import __version__
from transfer_runner.config import (
    COMPRESSIONS,
    DEFAULT_PLATFORM_URL,
    DEFAULT_STATE_URL,
    LOG_FORMATS,
    LOG_LEVELS,
    Resolved,
    Settings,
    resolve,
)
from transfer_runner.errors import ConfigError

EXIT_OK, EXIT_FAILED, EXIT_PENDING, EXIT_LOCKED = 0, 1, 2, 3


GC_THRESHOLDS = (50_000, 20, 100)  # CPython's default: (700, 10, 10)


F = TypeVar("F", bound=Callable[..., Any])


@dataclass(frozen=True)
class GroupOptions:
    """The group's options, resolved once for every command (`ctx.obj`)."""

    settings: Settings
    verbosity: int
    resolved: Resolved | None = None  # where each setting came from (`config show`)
    config_file: str | None = None


def group_options(ctx: click.Context) -> GroupOptions:
    found = ctx.find_object(GroupOptions)
    if found is None:  # `cli` sets it before any of its commands runs
        raise ConfigError("a command ran outside the transfer-runner command group")
    return found


def settings_of(ctx: click.Context) -> Settings:
    return group_options(ctx).settings


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="transfer-runner")
@click.option(
    "--platform",
    metavar="URL",
    help=f"Platform: sandbox:PATH (default "
    f"{DEFAULT_PLATFORM_URL}) or a registered adapter. Env TRANSFER_RUNNER_PLATFORM.",
)
@click.option(
    "--state",
    metavar="URL",
    help=f"State store: sqlite:PATH (default {DEFAULT_STATE_URL}) or s3://BUCKET/PREFIX, "
    "shared by CI runners (needs conditional writes). Env TRANSFER_RUNNER_STATE.",
)
@click.option(
    "--export-to",
    metavar="s3://BUCKET/PREFIX",
    help="Where quarantine and archive "
    "exports go. Env TRANSFER_RUNNER_EXPORT_TO. S3 endpoint and credentials come from "
    "the standard AWS chain (AWS_ENDPOINT_URL, AWS_PROFILE, environment, roles).",
)
@click.option(
    "--playbook",
    metavar="PATH",
    help="Playbook to run (default: the bundled "
    "direct-to-resold.yml). Env TRANSFER_RUNNER_PLAYBOOK.",
)
@click.option(
    "--sse",
    type=click.Choice(["AES256", "aws:kms"]),
    help="Server-side encryption of exported objects. Env TRANSFER_RUNNER_SSE.",
)
@click.option("--sse-kms-key-id", metavar="KEY", help="KMS key for --sse aws:kms.")
@click.option(
    "--part-size",
    "part_size_mib",
    type=click.IntRange(1, 5000),
    metavar="MIB",
    help="Target size of an export part in MiB (default 32).",
)
@click.option(
    "--compression",
    type=click.Choice(COMPRESSIONS),
    help="Export parts as .tar.zst, or .tar where the data do not compress (auto, the "
    "default); always .tar.zst (zstd), .tar.gz (gzip: opens with any tar) or .tar (none).",
)
@click.option(
    "--upload-workers",
    type=click.IntRange(1, 64),
    metavar="N",
    help="Parts compressed and uploaded at once per export (default 4).",
)
@click.option(
    "--log-level",
    type=click.Choice(LOG_LEVELS),
    help="Log level (default from -v: warning, -v info, -vv debug, -vvv trace). trace adds "
    "botocore's and urllib3's own debug logs. Env TRANSFER_RUNNER_LOG_LEVEL.",
)
@click.option(
    "--log-format",
    type=click.Choice(LOG_FORMATS),
    help="text (default) or json: one JSON object a line. Env TRANSFER_RUNNER_LOG_FORMAT.",
)
@click.option(
    "--log-file",
    metavar="PATH",
    help="Append logs to PATH (created 0600) instead of stderr. Env TRANSFER_RUNNER_LOG_FILE.",
)
@click.option(
    "--config",
    "config_path",
    metavar="PATH",
    help="Config file (default: ./transfer-runner.toml, else [tool.transfer-runner] in "
    './pyproject.toml). Keys are these options\' names: state = "s3://...". Flags win over '
    "the environment, which wins over the file. See `config show`.",
)
@click.option("-v", "--verbose", count=True, help="More output; -vv debug logs, -vvv trace.")
@click.option("-q", "--quiet", is_flag=True, help="Only the recap and errors.")
@click.pass_context
def cli(
    ctx: click.Context, /, verbose: int, quiet: bool, config_path: str | None, **flags: Any
) -> None:
    """Move direct customers under a reseller, declaratively, safely and in bulk.

    One YAML manifest per transfer; `validate` checks them, `plan` shows what would change,
    `apply` runs the playbook (tickets, new account, export and verify, import, cut-over,
    billing, ticket comments), recording every step so that a re-run resumes and a completed
    transfer is left alone.

    Global options (these) go before the command. Each can also come from an environment
    variable or from transfer-runner.toml; `config show` says which gave each value.

    \b
    Examples:
      transfer-runner validate transfers
      transfer-runner --state s3://bucket/state plan transfers --out plan.json
      transfer-runner --log-level debug --log-file run.log apply plan.json
    """
    from transfer_runner.config_file import find_config  # here: --help never needs them
    from transfer_runner.logs import configure_logging

    verbosity = -1 if quiet else verbose
    config_file = find_config(config_path)
    resolved = resolve({**flags, "verbosity": verbosity}, file=config_file)
    settings = resolved.settings
    configure_logging(settings.log_level, verbose, settings.log_format, settings.log_file)
    ctx.obj = GroupOptions(settings, verbosity, resolved, config_file.path if config_file else None)


recheck_option = click.option(
    "--recheck",
    is_flag=True,
    help="Check completed transfers against the platform again, step by step, instead of "
    "trusting the state store (slower; redoes what changed on the platform since).",
)

"""`config show`: the effective settings and where each came from, secrets masked."""

from __future__ import annotations

import os

import click

from transfer_runner.cli.options import cli, group_options
from transfer_runner.config import OPTIONS

__all__ = ["config", "config_show", "masked_url"]

# Variables that say where credentials come from without being secret themselves.
_CREDENTIAL_SOURCES = ("AWS_PROFILE", "AWS_REGION", "AWS_ENDPOINT_URL", "AWS_ROLE_ARN")


def masked_url(value: str) -> str:
    """`value` with a URL's password replaced by `****` (other text unchanged)."""
    from urllib.parse import urlsplit, urlunsplit

    from transfer_runner.redaction import MASK

    parts = urlsplit(value)
    if not parts.password:
        return value
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit(parts._replace(netloc=f"{parts.username}:{MASK}@{host}"))


@cli.group()
def config() -> None:
    """Inspect the settings: global options from flags, environment variables and the config
    file (`transfer-runner.toml`, or `[tool.transfer-runner]` in `pyproject.toml`).

    \b
    Examples:
      transfer-runner config show
      transfer-runner --config ci.toml config show --format json
    """


@config.command("show")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["text", "json"]),
    default="text",
    show_default=True,
    help="json: one object with settings, sources, config_file and secrets.",
)
@click.pass_context
def config_show(ctx: click.Context, fmt: str) -> None:
    """Print each global option's effective value and where it came from (flag, environment
    variable, config file or default), which config file was read, and which secrets are set
    in the environment (their values masked, never printed).

    \b
    Examples:
      transfer-runner config show
      transfer-runner --state s3://bucket/prefix config show --format json
    """
    from transfer_runner.redaction import MASK, SECRET_ENV_VARS

    options = group_options(ctx)
    settings, sources = options.settings, options.resolved.sources if options.resolved else {}
    rows = []
    for option in OPTIONS:
        value = getattr(settings, option.field)
        shown = masked_url(value) if isinstance(value, str) else value
        rows.append((option.key, shown, sources.get(option.field, "default")))
    secrets = {name: MASK if os.environ.get(name) else None for name in SECRET_ENV_VARS}
    others = {n: masked_url(os.environ[n]) for n in _CREDENTIAL_SOURCES if os.environ.get(n)}
    if fmt == "json":
        import json

        document = {
            "config_file": options.config_file,
            "settings": {key: value for key, value, _ in rows},
            "sources": {key: source for key, _, source in rows},
            "secrets": secrets,
            "environment": others,
        }
        click.echo(json.dumps(document, indent=2))
        return
    click.echo(f"config file: {options.config_file or 'none'}")
    width = max(len(key) for key, _, _ in rows)
    for key, value, source in rows:
        text = "-" if value is None else str(value)
        click.echo(f"  {key:<{width}}  {text}  ({source})")
    click.echo("secrets in the environment (values never shown):")
    for name, value in secrets.items():
        click.echo(f"  {name}: {'set' if value else 'not set'}")
    for name, value in others.items():
        click.echo(f"  {name}: {value}")

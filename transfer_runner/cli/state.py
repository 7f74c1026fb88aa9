"""The commands that read or mend the state: `status`, `report`, `abort`, `unlock`,
`migrate-state`."""

from __future__ import annotations

import json

import click

from transfer_runner import commands
from transfer_runner.cli.options import EXIT_FAILED, EXIT_OK, cli, settings_of


@cli.command()
@click.argument("names", nargs=-1)
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
@click.pass_context
def status(ctx: click.Context, names: tuple[str, ...], as_json: bool) -> None:
    """Show the state of transfers (all, or those named) from the state store."""
    views = commands.status(settings_of(ctx), names)
    if as_json:
        click.echo(json.dumps([v.to_dict() for v in views], indent=2, default=str))
        return
    if not views:
        click.echo("no transfers in the state store yet")
    for v in views:
        lock = f"  locked by {v.lock.owner} until {v.lock.expires_at:%H:%M:%SZ}" if v.lock else ""
        if v.lock_holder_gone:
            lock += " (its process is gone: the next apply on this machine takes it over)"
        done = sum(1 for s in v.steps if s.status in ("ok", "changed", "skipped"))
        click.echo(
            f"{v.record.name:<30} {v.record.status:<10} {done}/{len(v.steps)} steps done  "
            f"updated {v.record.updated_at:%Y-%m-%d %H:%M:%SZ}{lock}"
        )
        failed = [s for s in v.steps if s.status == "failed"]
        for s in failed:
            click.echo(f"    failed: {s.name}: {s.message}")


@cli.command()
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["json", "junit", "markdown"]),
    default="json",
    show_default=True,
)
@click.option("--run", "run_id", metavar="ID", help="A run id (default: the last run).")
@click.pass_context
def report(ctx: click.Context, fmt: str, run_id: str | None) -> None:
    """Print the results of the last apply run (or --run ID)."""
    result = commands.report(settings_of(ctx), run_id)
    if fmt == "json":
        from transfer_runner.reporting.json_report import render_json

        click.echo(render_json(result))
    elif fmt == "junit":
        from transfer_runner.reporting.junit import render_junit

        click.echo(render_junit(result))
    else:
        from transfer_runner.reporting.markdown import render_markdown

        click.echo(render_markdown(result))


@cli.command()
@click.argument("name")
@click.argument("paths", nargs=-1)
@click.option(
    "--reason",
    required=True,
    metavar="TEXT",
    help="Why (goes on both tickets and into the state store).",
)
@click.option("--dry-run", is_flag=True, help="Show what abort would do; change nothing.")
@click.pass_context
def abort(
    ctx: click.Context, name: str, paths: tuple[str, ...], reason: str, dry_run: bool
) -> None:
    """Undo the unfinished transfer NAME before its point of no return.

    Cancels the new account it made (with the data imported into it) and detaches its
    temporary domain, releases both ticket claims with a comment giving the reason, and
    records the transfer as aborted: apply skips it until its manifest changes. Refused once
    a customer domain has moved or the direct account is cancelled. Exports stay in S3.
    Run it again to resume an interrupted abort. PATHS (default: .) are searched for the
    manifest named NAME.

    Example: transfer-runner abort acme-com transfers/ --reason "reseller withdrew (T-5002)"

    Exit 0 aborted (or would be, with --dry-run), 1 refused or error.
    """
    result = commands.abort(settings_of(ctx), name, reason, paths or (".",), dry_run=dry_run)
    if result.status == "refused":
        click.echo(f"abort refused: {result.message}", err=True)
        ctx.exit(EXIT_FAILED)
    verb = "would" if dry_run else "done"
    for action in result.actions:
        click.echo(f"{verb}: {action}")
    click.echo(f"{name}: {result.status}")
    ctx.exit(EXIT_OK)


@cli.command()
@click.argument("name")
@click.pass_context
def unlock(ctx: click.Context, name: str) -> None:
    """Release a stale lock on transfer NAME (after making sure its runner is gone)."""
    removed = commands.unlock(settings_of(ctx), name)
    click.echo(f"unlocked {name} (was held by {removed.owner}, run {removed.run_id})")


@cli.command("migrate-state")
@click.pass_context
def migrate_state(ctx: click.Context) -> None:
    """Move an S3 state written before 2026-12 (an object per step, event and lease) to the
    current layout (an object per transfer), nothing lost.

    Refused while a lease of the old layout is live. The old objects stay; running it again
    does nothing. Example: transfer-runner --state s3://bucket/team/state migrate-state
    """
    from transfer_runner.errors import ConfigError
    from transfer_runner.state.s3_migrate import migrate_state as migrate

    url = settings_of(ctx).state
    if not url.startswith("s3://"):
        raise ConfigError(f"migrate-state moves an S3 state (--state s3://...), not {url}")
    done = migrate(url)
    if not done.marked:
        click.echo(f"{url} is in the current layout already: nothing to do")
        return
    click.echo(
        f"{url}: moved {done.transfers} transfers ({done.steps} step records, {done.events} "
        f"events){f', {done.already} moved before' if done.already else ''}; the old objects "
        "under transfers/NAME/ and locks/ are no longer read"
    )

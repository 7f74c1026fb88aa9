"""The commands that read or mend the state: `status`, `report`, `abort`, `unlock`,
`migrate-state`."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import click

from transfer_runner.cli.lazy import LazyModule
from transfer_runner.cli.options import EXIT_FAILED, EXIT_OK, cli, settings_of
from transfer_runner.shown import log_safe

if TYPE_CHECKING:
    from transfer_runner import commands
else:
    commands = LazyModule("transfer_runner.commands")  # imported when a command runs


@cli.command()
@click.argument("names", nargs=-1)
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
@click.option("--failed", is_flag=True, help="Only transfers whose last run failed.")
@click.option(
    "--label",
    "labels",
    multiple=True,
    metavar="K=V",
    callback=lambda _ctx, _param, values: tuple(_label(v) for v in values),
    help="Only transfers whose manifest has this label (repeatable: all must match).",
)
@click.pass_context
def status(
    ctx: click.Context,
    names: tuple[str, ...],
    as_json: bool,
    failed: bool,
    labels: tuple[tuple[str, str], ...],
) -> None:
    """Show the state of transfers (all, or those named) from the state store.

    \b
    Examples:
      transfer-runner status --failed --label wave=2026-12
      transfer-runner status acme-com globex-io --json
    """
    views = commands.status(settings_of(ctx), names, failed=failed, labels=labels)
    if as_json:
        click.echo(json.dumps([v.to_dict() for v in views], indent=2, default=str))
        return
    if not views:
        filtered = failed or labels
        click.echo("no transfer matches" if filtered else "no transfers in the state store yet")
    for v in views:
        lock = f"  locked by {v.lock.owner} until {v.lock.expires_at:%H:%M:%SZ}" if v.lock else ""
        if v.lock_holder_gone:
            lock += " (its process is gone: the next apply on this machine takes it over)"
        done = sum(1 for s in v.steps if s.status in ("ok", "changed", "skipped"))
        click.echo(
            log_safe(
                f"{v.record.name:<30} {v.record.status:<10} {done}/{len(v.steps)} steps done  "
                f"updated {v.record.updated_at:%Y-%m-%d %H:%M:%SZ}{lock}"
            )
        )
        failed_steps = [s for s in v.steps if s.status == "failed"]
        for s in failed_steps:
            click.echo(log_safe(f"    failed: {s.name}: {s.message}"))


def _label(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise click.BadParameter(f"{text!r} is not K=V")
    return key.strip(), value.strip()


@cli.command()
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["json", "junit", "markdown", "csv", "html"]),
    default=None,
    help="json (the default), junit, markdown; csv: a row per transfer; html: a "
    "self-contained page (totals, failures first, a filterable table, a timeline). csv and "
    "html merge several --run.",
)
@click.option(
    "--run",
    "run_ids",
    multiple=True,
    metavar="ID",
    help="A run id (default: the last run). Repeat it with --format csv or html to merge "
    "runs, such as the shards of one wave: each transfer once, as its latest run left it.",
)
@click.option(
    "--commit",
    metavar="SHA",
    help="Every apply run at this git commit (or its prefix), merged: the shards of one CI "
    "pipeline, found in the shared state. With --list, only those runs.",
)
@click.option(
    "--out",
    "out_path",
    type=click.Path(dir_okay=False, writable=True),
    help="Write the report to this file (readable by its owner only) instead of stdout.",
)
@click.option("--title", help="The html page's title (default: the run's id).")
@click.option("--list", "list_runs", is_flag=True, help="List the recent apply runs instead.")
@click.option(
    "--limit",
    type=click.IntRange(1),
    default=20,
    show_default=True,
    help="How many runs --list shows, newest first.",
)
@click.pass_context
def report(
    ctx: click.Context,
    fmt: str | None,
    run_ids: tuple[str, ...],
    commit: str | None,
    out_path: str | None,
    title: str | None,
    list_runs: bool,
    limit: int,
) -> None:
    """Print the results of the last apply run (or --run ID).

    --list shows the recent runs (their ids for --run).

    \b
    Examples:
      transfer-runner report --format markdown
      transfer-runner report --format csv --run RUN-A --run RUN-B > wave.csv
      transfer-runner report --format html --commit 1a2b3c4 --out wave.html
    """
    settings = settings_of(ctx)
    at_commit = commands.runs_at_commit(settings, commit) if commit else None
    if list_runs:
        runs = commands.recent_runs(settings, limit) if at_commit is None else at_commit
        _print_runs(runs[:limit], fmt or "text")
        return
    if at_commit is not None:
        run_ids = (*run_ids, *(run.id for run in at_commit))
    _emit(_rendered(settings, fmt or "json", run_ids, title), out_path)


def _rendered(settings: Any, fmt: str, run_ids: tuple[str, ...], title: str | None) -> str:
    if fmt == "csv":
        from transfer_runner.reporting.csv_report import render_csv

        return render_csv(commands.report_rows(settings, run_ids))
    if fmt == "html":
        from transfer_runner.clock import clock_from_env
        from transfer_runner.reporting.html_report import render_html

        wave = commands.wave_report(settings, run_ids)
        return render_html(wave, title=title or "", generated_at=clock_from_env().now())
    if len(run_ids) > 1:
        raise click.UsageError("several --run are merged by --format csv or html only")
    result = commands.report(settings, run_ids[0] if run_ids else None)
    if fmt == "json":
        from transfer_runner.reporting.json_report import render_json

        return render_json(result) + "\n"
    if fmt == "junit":
        from transfer_runner.reporting.junit import render_junit

        return render_junit(result) + "\n"
    from transfer_runner.reporting.markdown import render_markdown

    return render_markdown(result) + "\n"


def _emit(text: str, out_path: str | None) -> None:
    if out_path is None:
        click.echo(text, nl=False)
        return
    from transfer_runner.private_files import write_private

    write_private(out_path, text)
    click.echo(f"wrote {out_path}", err=True)


def _print_runs(runs: list[Any], fmt: str) -> None:
    from transfer_runner.reporting.run_list import render_run_list

    if fmt not in ("text", "json"):
        raise click.UsageError("--list prints text, or JSON with --format json")
    click.echo(render_run_list(runs, as_json=fmt == "json"))


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
    manifest named NAME. Exit 0 aborted (or would be, with --dry-run), 1 refused or error.

    \b
    Examples:
      transfer-runner abort acme-com transfers/ --reason "reseller withdrew (T-5002)" --dry-run
      transfer-runner abort acme-com transfers/ --reason "reseller withdrew (T-5002)"
    """
    result = commands.abort(settings_of(ctx), name, reason, paths or (".",), dry_run=dry_run)
    if result.status == "refused":
        click.echo(log_safe(f"abort refused: {result.message}"), err=True)
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
    """Release a stale lock on transfer NAME (after making sure its runner is gone).

    `status` shows who holds each lock and whether its process is gone.

    \b
    Examples:
      transfer-runner unlock acme-com
      transfer-runner --state s3://bucket/team/state unlock acme-com
    """
    removed = commands.unlock(settings_of(ctx), name)
    click.echo(f"unlocked {name} (was held by {removed.owner}, run {removed.run_id})")


@cli.command("migrate-state")
@click.pass_context
def migrate_state(ctx: click.Context) -> None:
    """Move an S3 state written before 2026-12 (an object per step, event and lease) to the
    current layout (an object per transfer), nothing lost.

    Refused while a lease of the old layout is live. The old objects stay; running it again
    does nothing.

    \b
    Examples:
      transfer-runner --state s3://bucket/team/state migrate-state
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

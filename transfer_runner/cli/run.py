"""The commands that read manifests and act on them: `validate`, `plan`, `apply` (with its
confirmation, graceful stop and reports)."""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, Literal, NoReturn

import click

from transfer_runner.cli import run_options
from transfer_runner.cli.lazy import LazyModule
from transfer_runner.cli.options import (
    EXIT_FAILED,
    EXIT_LOCKED,
    EXIT_OK,
    EXIT_PENDING,
    cli,
    group_options,
    recheck_option,
    settings_of,
)
from transfer_runner.config import Settings
from transfer_runner.engine.stop import StopNow
from transfer_runner.engine.waves import WaveSize
from transfer_runner.errors import ConfigError
from transfer_runner.selection import RETRY_FILE, write_retry_file
from transfer_runner.stopping import DEFAULT_GRACE_S, GracefulStop, graceful_stop

if TYPE_CHECKING:
    from transfer_runner import commands
    from transfer_runner.reporting import console
else:
    commands = LazyModule("transfer_runner.commands")  # imported when a command runs
    console = LazyModule("transfer_runner.reporting.console")


@cli.command()
@click.argument("paths", nargs=-1, required=True)
@click.option("--online", is_flag=True, help="Also check against the platform and the state.")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["text", "json", "github"]),
    default="text",
    show_default=True,
    help="github prints workflow annotations.",
)
@click.pass_context
def validate(ctx: click.Context, paths: tuple[str, ...], online: bool, fmt: str) -> None:
    """Check manifests (files or directories): schema, then rules across all of them.

    Every error is printed as FILE:LINE:COL: PATH: MESSAGE. Exit 0 valid, 1 invalid.

    \b
    Examples:
      transfer-runner validate transfers/
      transfer-runner validate transfers/ --online --format github
    """
    from transfer_runner.reporting.diagnostics import format_diagnostics

    result = commands.validate(settings_of(ctx), commands.Selection(paths), online=online)
    text = format_diagnostics(list(result.diagnostics), fmt)
    if text:
        click.echo(text)
    if fmt == "text" and result.valid:
        click.echo(f"{len(result.transfers)} manifest(s) valid")
    ctx.exit(EXIT_OK if result.valid else EXIT_FAILED)


@cli.command()
@click.argument("paths", nargs=-1, required=True)
@run_options.selection_options
@click.option("--json", "as_json", is_flag=True, help="Print the plan as JSON (= --format json).")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["text", "json", "markdown"]),
    default="text",
    show_default=True,
    help="markdown: per transfer, the accounts, domains, data to export, credit and fee, for a "
    "pull-request comment.",
)
@recheck_option
@click.option(
    "--out",
    type=click.Path(dir_okay=False),
    metavar="FILE",
    help="Save the plan (JSON); `apply FILE` applies exactly it, or refuses if stale.",
)
@click.option(
    "--refresh/--no-refresh",
    default=True,
    show_default=True,
    help="Read the platform for completed transfers and report drift there (exit "
    "1); --no-refresh answers them from the state store alone.",
)
@click.option(
    "--forks",
    type=click.IntRange(1, 256),
    default=8,
    show_default=True,
    help="Transfers checked at once (plan only reads).",
)
@click.pass_context
def plan(
    ctx: click.Context,
    paths: tuple[str, ...],
    limits: tuple[str, ...],
    tags: str,
    shard: str | None,
    changed_since: str | None,
    require_clean: bool,
    as_json: bool,
    fmt: str,
    recheck: bool,
    out: str | None,
    refresh: bool,
    forks: int,
) -> None:
    """Show, per transfer, which steps would change and how. Writes nothing.

    A completed transfer is confirmed on the platform (--refresh, the default): its accounts,
    domains, fee and credit as it left them. Exit 0 nothing to do, 2 changes pending, 1 error
    or drift (of the manifest, or on the platform).

    \b
    Examples:
      transfer-runner plan transfers/ --changed-since origin/main --format markdown
      transfer-runner plan transfers/ --limit wave=2026-12 --out plan.json
    """
    selection = run_options.selection(paths, limits, tags, shard, changed_since, require_clean)
    report = commands.plan(
        settings_of(ctx), selection, out=out, recheck=recheck, refresh=refresh, forks=forks
    )
    if out:
        click.echo(
            f"plan saved to {out}: apply exactly it with `transfer-runner apply {out}`", err=True
        )
    if as_json or fmt == "json":
        from transfer_runner.reporting.json_report import render_json

        click.echo(render_json(report))
    elif fmt == "markdown":
        from transfer_runner.reporting.plan_markdown import render_plan_markdown

        click.echo(render_plan_markdown(report), nl=False)
    else:
        click.echo(console.render_plan(report))
        click.echo(console.render_recap(report))
    statuses = {t.status for t in report.transfers}
    ctx.exit(
        EXIT_FAILED if "failed" in statuses else EXIT_PENDING if "pending" in statuses else EXIT_OK
    )


@cli.command()
@click.argument("paths", nargs=-1, required=True)
@click.option(
    "--forks",
    type=click.IntRange(1, 256),
    default=1,
    show_default=True,
    help="Transfers run at once (steps within a transfer stay in order).",
)
@click.option(
    "--procs",
    default="1",
    show_default=True,
    envvar="TRANSFER_RUNNER_PROCS",
    callback=run_options.procs,
    metavar="N|auto",
    help="Worker processes, each running --forks transfers at once (one process uses about "
    "one core). auto: one per core, no more than keeps --forks transfers in each.",
)
@run_options.selection_options
@click.option(
    "--serial",
    metavar="N|P%",
    callback=run_options.serial,
    help="Run in waves of N transfers (or P% of them), one wave after another.",
)
@click.option(
    "--max-fail-percentage",
    type=click.FloatRange(0, 100),
    metavar="P",
    help="Start no new wave once more than P% of transfers failed.",
)
@click.option(
    "--max-platform-calls-per-second",
    type=click.FloatRange(min=0.1),
    metavar="R",
    help="Platform calls per second, shared by all forks.",
)
@click.option(
    "--max-platform-concurrency",
    type=click.IntRange(min=1),
    metavar="C",
    help="Platform calls at once, shared by all forks.",
)
@click.option(
    "--lock-ttl",
    type=click.FloatRange(min=1),
    default=900,
    show_default=True,
    metavar="SECONDS",
    envvar="TRANSFER_RUNNER_LOCK_TTL",
    help="Lease on each transfer's lock, renewed every third of it while the transfer "
    "runs; another runner takes over a crashed runner's lock only after it expired.",
)
@recheck_option
@click.option(
    "--grace",
    type=click.FloatRange(min=0),
    default=DEFAULT_GRACE_S,
    show_default=True,
    metavar="SECONDS",
    help="After SIGINT/SIGTERM, how long running steps may take to finish before "
    "the run stops at once (a second signal stops it at once too).",
)
@click.option("--yes", is_flag=True, help="Do not ask for confirmation (CI).")
@click.option("--report-json", type=click.Path(dir_okay=False), help="Write the JSON report here.")
@click.option("--junit", type=click.Path(dir_okay=False), help="Write a JUnit XML report here.")
@click.option(
    "--retry-file",
    default=RETRY_FILE,
    show_default=True,
    help="Where the names of failed transfers are written.",
)
@click.pass_context
def apply(
    ctx: click.Context,
    paths: tuple[str, ...],
    forks: int,
    procs: int | Literal["auto"],
    limits: tuple[str, ...],
    tags: str,
    shard: str | None,
    changed_since: str | None,
    require_clean: bool,
    serial: WaveSize | None,
    max_fail_percentage: float | None,
    max_platform_calls_per_second: float | None,
    max_platform_concurrency: int | None,
    lock_ttl: float,
    recheck: bool,
    grace: float,
    yes: bool,
    report_json: str | None,
    junit: str | None,
    retry_file: str,
) -> None:
    """Run the playbook for each transfer and print the recap.

    PATHS are manifests or directories, or one plan file saved by `plan --out`: then exactly
    that plan is applied, and refused if any of its manifests or states changed since.
    Exit 0 all succeeded (or were already done), 1 any failed, 3 one was locked by another runner.

    The first SIGINT (Ctrl-C) or SIGTERM stops gracefully: no new step starts, running steps
    finish (within --grace) and are recorded, every lock is released, the recap and the retry
    file are written; exit 130 (SIGINT) or 143 (SIGTERM). A second signal stops at once.

    With TRANSFER_RUNNER_NOTIFY_URL set (from the environment only: a webhook URL holds a
    secret), a JSON summary is POSTed there at the end; a failed notification only warns.

    \b
    Examples:
      transfer-runner apply plan.json --yes --report-json report.json
      transfer-runner apply transfers/ --yes --forks 16 --procs auto --serial 25%
    """
    settings = settings_of(ctx)
    selection = run_options.selection(paths, limits, tags, shard, changed_since, require_clean)
    if not yes:
        _confirm(settings, selection, recheck)
    verbosity = group_options(ctx).verbosity
    bulk = commands.BulkOptions(
        serial=serial,
        max_fail_percentage=max_fail_percentage,
        max_platform_calls_per_second=max_platform_calls_per_second,
        max_platform_concurrency=max_platform_concurrency,
        lock_ttl_s=lock_ttl,
        grace_s=grace,
    )
    with graceful_stop() as stopper, _view(verbosity) as (reporter, progress):
        try:
            report = commands.apply(
                settings,
                selection,
                forks=forks,
                procs=procs,
                reporter=reporter,
                progress=progress,
                stop=stopper.event,
                bulk=bulk,
                recheck=recheck,
            )
        except StopNow as exc:
            _stop_now(stopper, str(exc))
    click.echo(console.render_recap(report))
    if stopper.requested:
        totals = report.totals
        click.echo(
            f"stopped by {stopper.signal_name}: {totals['transfers_interrupted']} interrupted, "
            f"{totals['transfers_not_started']} not started; their finished steps are recorded "
            "and their locks released; apply again to resume"
        )
    _write_reports(report, report_json, junit)
    _notify(report)
    retry = report.to_retry()
    write_retry_file(retry_file, retry)
    if retry:
        click.echo(f"transfers to retry listed in {retry_file} (retry with --limit @{retry_file})")
    statuses = {t.status for t in report.transfers}
    if stopper.requested:
        ctx.exit(stopper.exit_code)
    ctx.exit(
        EXIT_FAILED
        if statuses & {"failed", "interrupted", "not_started"}
        else EXIT_LOCKED
        if "locked" in statuses
        else EXIT_OK
    )


@contextlib.contextmanager
def _view(verbosity: int) -> Iterator[tuple[Any, Any]]:
    """The live view on a terminal (not TERM=dumb, not -q or -v); plain lines otherwise."""
    live = verbosity == 0 and sys.stdout.isatty() and os.environ.get("TERM", "") != "dumb"
    if not live:
        reporter = console.ConsoleReporter(verbosity=verbosity)
        yield reporter, console.ConsoleProgress(quiet=verbosity < 0)
        return
    from transfer_runner.reporting.live import LiveView

    with LiveView() as view:
        yield view, view


def _notify(report: Any) -> None:
    """The end-of-wave webhook, when TRANSFER_RUNNER_NOTIFY_URL is set; a failure warns."""
    from transfer_runner.notify import ENV_VAR, send_notification

    url = os.environ.get(ENV_VAR, "").strip()
    if url:
        problem = send_notification(url, report)
        if problem:
            click.echo(f"warning: {problem}", err=True)


def _stop_now(stopper: GracefulStop, why: str) -> NoReturn:
    """End the process at once, without waiting for the running steps' threads."""
    click.echo(
        f"stopped at once ({why}): the steps that were running are not recorded and their "
        "transfers stay locked until their lease expires, or until a run on this host sees "
        "this process gone; apply again to resume",
        err=True,
    )
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(stopper.exit_code)


def _confirm(settings: Settings, selection: commands.Selection, recheck: bool) -> None:
    """Show what will run, exactly as apply selects it, and ask. A saved plan is shown as
    saved (apply refuses it afterwards if it went stale)."""
    if not sys.stdin.isatty():
        raise ConfigError("apply needs --yes when not run from a terminal")
    from transfer_runner import saved_plans

    paths = selection.paths
    if len(paths) == 1 and saved_plans.is_plan_file(paths[0]):
        saved = saved_plans.read_plan(paths[0])
        click.echo(console.render_saved_plan(saved, paths[0]))
        count = len(saved["transfers"])
        click.confirm(f"Apply this saved plan ({count} transfer{'s' * (count != 1)})?", abort=True)
        return
    report = commands.plan(settings, selection, recheck=recheck)
    click.echo(console.render_plan(report))
    pending = sum(1 for t in report.transfers if t.status == "pending")
    if not pending:
        click.echo("nothing to change")
    click.confirm(
        f"Apply these changes ({pending} of {len(report.transfers)} selected transfers)?",
        abort=True,
    )


def _write_reports(report: Any, report_json: str | None, junit: str | None) -> None:
    from transfer_runner.private_files import write_private  # 0600: reports name customers
    from transfer_runner.reporting.json_report import render_json
    from transfer_runner.reporting.junit import render_junit

    if report_json:
        write_private(report_json, render_json(report) + "\n")
    if junit:
        write_private(junit, render_junit(report))

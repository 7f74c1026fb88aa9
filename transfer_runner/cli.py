"""The command-line skin: parse options, call `commands`, render, choose the exit code.

Exit codes: validate 0 valid / 1 invalid; plan 0 nothing to do / 2 changes pending / 1 error;
apply 0 all succeeded / 1 any failed or not started / 3 a transfer was locked by another runner /
130 or 143 stopped by SIGINT or SIGTERM (`stopping`). A usage error
or any other error exits 1 with a one-line message; an internal bug shows its traceback.
"""

from __future__ import annotations

import gc
import json
import logging
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, NoReturn, TypeVar

import click

from transfer_runner import __version__, commands, saved_plans
from transfer_runner.config import (
    DEFAULT_PLATFORM_URL,
    DEFAULT_STATE_URL,
    Settings,
    resolve_settings,
)
from transfer_runner.engine.runner import StopNow
from transfer_runner.errors import ConfigError, ManifestError, TransferRunnerError
from transfer_runner.kill_points import install_from_env
from transfer_runner.redaction import install_redaction
from transfer_runner.reporting.console import (
    ConsoleProgress,
    ConsoleReporter,
    render_plan,
    render_recap,
    render_saved_plan,
)
from transfer_runner.selection import RETRY_FILE, write_retry_file
from transfer_runner.stopping import DEFAULT_GRACE_S, GracefulStop, graceful_stop

if TYPE_CHECKING:  # imported when a sandbox command runs, not for every command
    from transfer_runner.platforms.sandbox.mailflow import FlowSpec, MailFlow
    from transfer_runner.platforms.sandbox.messages import BodyKind

__all__ = ["main", "cli"]

EXIT_OK, EXIT_FAILED, EXIT_PENDING, EXIT_LOCKED = 0, 1, 2, 3
GC_THRESHOLDS = (50_000, 20, 100)  # CPython's default: (700, 10, 10)

_F = TypeVar("_F", bound=Callable[..., Any])


@dataclass(frozen=True)
class _GroupOptions:
    """The group's options, resolved once for every command (`ctx.obj`)."""

    settings: Settings
    verbosity: int


def _group_options(ctx: click.Context) -> _GroupOptions:
    found = ctx.find_object(_GroupOptions)
    if found is None:  # `cli` sets it before any of its commands runs
        raise ConfigError("a command ran outside the transfer-runner command group")
    return found


def _settings(ctx: click.Context) -> Settings:
    return _group_options(ctx).settings


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
    type=click.Choice(["gzip", "zstd", "none"]),
    help="Export parts as .tar.gz (default: opens anywhere), .tar.zst (faster) or .tar.",
)
@click.option(
    "--upload-workers",
    type=click.IntRange(1, 64),
    metavar="N",
    help="Parts compressed and uploaded at once per export (default 4).",
)
@click.option("-v", "--verbose", count=True, help="More output (-vv for debug logs).")
@click.option("-q", "--quiet", is_flag=True, help="Only the recap and errors.")
@click.pass_context
def cli(ctx: click.Context, /, verbose: int, quiet: bool, **flags: Any) -> None:
    """Move direct customers under a reseller, declaratively, safely and in bulk.

    One YAML manifest per transfer; `validate` checks them, `plan` shows what would change,
    `apply` runs the playbook (tickets, new account, export and verify, import, cut-over,
    billing, ticket comments), recording every step so that a re-run resumes and a completed
    transfer is left alone.
    """
    verbosity = -1 if quiet else verbose
    logging.basicConfig(
        level=logging.DEBUG if verbose > 1 else logging.INFO if verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    install_redaction()
    if verbose < 2:
        for noisy in ("botocore", "boto3", "urllib3", "s3transfer"):
            logging.getLogger(noisy).setLevel(logging.WARNING)
    ctx.obj = _GroupOptions(resolve_settings({**flags, "verbosity": verbosity}), verbosity)


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
    """
    from transfer_runner.reporting.diagnostics import format_diagnostics

    result = commands.validate(paths, _settings(ctx), online=online)
    text = format_diagnostics(list(result.diagnostics), fmt)
    if text:
        click.echo(text)
    if fmt == "text" and result.valid:
        click.echo(f"{len(result.transfers)} manifest(s) valid")
    ctx.exit(EXIT_OK if result.valid else EXIT_FAILED)


def _selection_options(func: _F) -> _F:
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


def _shard(spec: str | None) -> tuple[int, int] | None:
    from transfer_runner.sharding import parse_shard

    return parse_shard(spec) if spec else None


def _serial(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    text = (value or "").strip()
    digits = text[:-1] if text.endswith("%") else text
    if value is not None and (not digits.isdigit() or int(digits) < 1):
        raise click.BadParameter("a number of transfers (10) or a percentage (10%)")
    return value


_recheck_option = click.option(
    "--recheck",
    is_flag=True,
    help="Check completed transfers against the platform again, step by step, instead of "
    "trusting the state store (slower; redoes what changed on the platform since).",
)


@cli.command()
@click.argument("paths", nargs=-1, required=True)
@_selection_options
@click.option("--json", "as_json", is_flag=True, help="Print the plan as JSON.")
@_recheck_option
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
    recheck: bool,
    out: str | None,
    refresh: bool,
    forks: int,
) -> None:
    """Show, per transfer, which steps would change and how. Writes nothing.

    A completed transfer is confirmed on the platform (--refresh, the default): the new
    account active with the customer's domains, the temporary domain gone, the direct account
    cancelled, the fee and the credit there. Exit 0 nothing to do, 2 changes pending, 1 error
    (including drift, in the manifest or on the platform).
    """
    report = commands.plan(
        paths, _settings(ctx), limits, _tags(tags), shard=_shard(shard),
        git=commands.GitGuards(changed_since, require_clean), out=out, recheck=recheck,
        refresh=refresh, forks=forks,
    )  # fmt: skip
    if out:
        click.echo(f"plan saved to {out}: apply exactly it with `transfer-runner apply {out}`")
    if as_json:
        from transfer_runner.reporting.json_report import render_json

        click.echo(render_json(report))
    else:
        click.echo(render_plan(report))
        click.echo(render_recap(report))
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
@_selection_options
@click.option(
    "--serial",
    metavar="N|P%",
    callback=_serial,
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
@_recheck_option
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
    limits: tuple[str, ...],
    tags: str,
    shard: str | None,
    changed_since: str | None,
    require_clean: bool,
    serial: str | None,
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
    file are written, and the exit code is 130 (SIGINT) or 143 (SIGTERM). A second signal stops
    at once. Apply again to resume.
    """
    settings = _settings(ctx)
    if not yes:
        _confirm(
            paths, settings, limits, tags, _shard(shard),
            commands.GitGuards(changed_since, require_clean), recheck,
        )  # fmt: skip
    verbosity = _group_options(ctx).verbosity
    bulk = commands.BulkOptions(
        serial=serial,
        max_fail_percentage=max_fail_percentage,
        max_platform_calls_per_second=max_platform_calls_per_second,
        max_platform_concurrency=max_platform_concurrency,
        lock_ttl_s=lock_ttl,
        grace_s=grace,
    )
    with graceful_stop() as stopper:
        try:
            report = commands.apply(
                paths,
                settings,
                limits=limits,
                tags=_tags(tags),
                forks=forks,
                reporter=ConsoleReporter(verbosity=verbosity),
                progress=ConsoleProgress(quiet=verbosity < 0),
                stop=stopper.event,
                shard=_shard(shard),
                bulk=bulk,
                git=commands.GitGuards(changed_since, require_clean),
                recheck=recheck,
            )
        except StopNow as exc:
            _stop_now(stopper, str(exc))
    click.echo(render_recap(report))
    if stopper.requested:
        totals = report.totals
        click.echo(
            f"stopped by {stopper.signal_name}: {totals['transfers_interrupted']} interrupted, "
            f"{totals['transfers_not_started']} not started; their finished steps are recorded "
            "and their locks released; apply again to resume"
        )
    _write_reports(report, report_json, junit)
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


def _confirm(
    paths: tuple[str, ...],
    settings: Settings,
    limits: tuple[str, ...],
    tags: str,
    shard: tuple[int, int] | None,
    git: commands.GitGuards,
    recheck: bool,
) -> None:
    """Show what will run, exactly as apply selects it, and ask. A saved plan is shown as
    saved (apply refuses it afterwards if it went stale)."""
    if not sys.stdin.isatty():
        raise ConfigError("apply needs --yes when not run from a terminal")
    if len(paths) == 1 and saved_plans.is_plan_file(paths[0]):
        saved = saved_plans.read_plan(paths[0])
        click.echo(render_saved_plan(saved, paths[0]))
        count = len(saved["transfers"])
        click.confirm(f"Apply this saved plan ({count} transfer{'s' * (count != 1)})?", abort=True)
        return
    report = commands.plan(paths, settings, limits, _tags(tags), shard=shard, git=git,
                           recheck=recheck)  # fmt: skip
    click.echo(render_plan(report))
    pending = sum(1 for t in report.transfers if t.status == "pending")
    if not pending:
        click.echo("nothing to change")
    click.confirm(
        f"Apply these changes ({pending} of {len(report.transfers)} selected transfers)?",
        abort=True,
    )


def _write_reports(report: Any, report_json: str | None, junit: str | None) -> None:
    if report_json:
        from transfer_runner.reporting.json_report import render_json

        Path(report_json).write_text(render_json(report) + "\n", encoding="utf-8")
    if junit:
        from transfer_runner.reporting.junit import render_junit

        Path(junit).write_text(render_junit(report), encoding="utf-8")


def _tags(tags: str) -> tuple[str, ...]:
    return tuple(t.strip() for t in tags.split(",") if t.strip())


@cli.command()
@click.argument("names", nargs=-1)
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
@click.pass_context
def status(ctx: click.Context, names: tuple[str, ...], as_json: bool) -> None:
    """Show the state of transfers (all, or those named) from the state store."""
    views = commands.status(_settings(ctx), names)
    if as_json:
        click.echo(json.dumps([_status_dict(v) for v in views], indent=2, default=str))
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


def _status_dict(v: commands.TransferStatusView) -> dict[str, Any]:
    return {
        "name": v.record.name,
        "status": v.record.status,
        "manifest_sha256": v.record.manifest_sha256,
        "updated_at": v.record.updated_at.isoformat(),
        "last_run_id": v.record.last_run_id,
        "lock": None
        if v.lock is None
        else {
            "owner": v.lock.owner,
            "run_id": v.lock.run_id,
            "expires_at": v.lock.expires_at.isoformat(),
            "pid": v.lock.pid,
            "holder_gone": v.lock_holder_gone,
        },
        "steps": [
            {
                "name": s.name,
                "module": s.module,
                "status": s.status,
                "message": s.message,
                "ended_at": s.ended_at.isoformat(),
                "outputs": s.outputs,
            }
            for s in v.steps
        ],
    }


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
    result = commands.report(_settings(ctx), run_id)
    if fmt == "json":
        from transfer_runner.reporting.json_report import render_json

        click.echo(render_json(result))
    elif fmt == "junit":
        from transfer_runner.reporting.junit import render_junit

        click.echo(render_junit(result))
    else:
        from transfer_runner.reporting.markdown import render_markdown

        click.echo(render_markdown(result))


@cli.command("new")
@click.option(
    "--from-csv", "csv_path", required=True, metavar="FILE",
    help="Spreadsheet saved as CSV UTF-8, one transfer per row (columns: see README, Bulk waves).",
)  # fmt: skip
@click.option(
    "--out", "out_dir", required=True, metavar="DIR",
    help="Directory for the manifests (<name>.yml); created if missing.",
)  # fmt: skip
@click.option("--overwrite", is_flag=True, help="Replace existing manifests whose content differs.")
@click.pass_context
def new(ctx: click.Context, csv_path: str, out_dir: str, overwrite: bool) -> None:
    """Write one manifest per CSV row (bulk waves), checked with the manifests already in DIR.

    All or nothing: any problem (printed as FILE:row N: COLUMN: MESSAGE) writes no file.
    An existing file with other content is refused unless --overwrite. Exit 0 written, 1 errors.
    """
    from transfer_runner.csv_manifests import write_manifests_from_csv

    result = write_manifests_from_csv(csv_path, out_dir, overwrite=overwrite)
    for problem in result.diagnostics:
        click.echo(str(problem))
    click.echo(result.summary())
    ctx.exit(EXIT_OK if result.ok else EXIT_FAILED)


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
    result = commands.abort(_settings(ctx), name, reason, paths or (".",), dry_run=dry_run)
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
    removed = commands.unlock(_settings(ctx), name)
    click.echo(f"unlocked {name} (was held by {removed.owner}, run {removed.run_id})")


def _rate_options(func: _F) -> _F:
    """--deliver and --expire: the mail flow's rates (sandbox mail, sandbox serve)."""
    rate = click.FloatRange(0, 1_000_000)
    func = click.option(
        "--expire",
        "expire_rate",
        type=rate,
        default=0.0,
        metavar="RATE",
        help="Expire the RATE oldest messages per second from each store of the accounts "
        "that hold or held the domains (retention).",
    )(func)
    return click.option(
        "--deliver",
        "deliver_rate",
        type=rate,
        default=0.0,
        metavar="RATE",
        help="Deliver RATE new messages per second, round-robin over the domains and stores, "
        "to the active account holding each domain (held back while none does).",
    )(func)


def _flow_options(prefix: str) -> Callable[[_F], _F]:
    """What the mail flow sends; `prefix` ("mail-" for serve) names the options."""

    def decorate(func: _F) -> _F:
        options = [
            click.option(
                f"--{prefix}domain",
                "domains",
                multiple=True,
                metavar="D",
                help="A domain to deliver to (repeatable; default: every domain of every "
                "active direct account when the flow starts).",
            ),
            click.option(
                f"--{prefix}store",
                "store",
                type=click.Choice(["quarantine", "archive", "both"]),
                default="both",
                show_default=True,
                help="The store(s) to deliver to and expire from.",
            ),
            click.option(
                f"--{prefix}size",
                "size",
                default="4KiB",
                show_default=True,
                metavar="SIZE",
                callback=_size_option,
                help="Size of each new message: bytes, or a number with B, KiB or MiB.",
            ),
            click.option(
                f"--{prefix}body",
                "body",
                type=click.Choice(["text", "mail-like"]),
                default="text",
                show_default=True,
                help="Message bodies: text (~7:1 under gzip) or mail-like (a text part and a "
                "base64 attachment of random bytes, ~1.3:1 like real mail).",
            ),
        ]
        for option in reversed(options):
            func = option(func)
        return func

    return decorate


def _size_option(ctx: click.Context, param: click.Parameter, value: str) -> int:
    from transfer_runner.platforms.sandbox.fixture import MAX_SIZE, parse_size

    try:
        size = parse_size(int(value) if value.isdigit() else value)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from exc
    if not 1 <= size <= MAX_SIZE:
        raise click.BadParameter(f"must be between 1 byte and 64 MiB, not {value!r}")
    return size


def _flow_spec(
    domains: tuple[str, ...],
    store: Literal["quarantine", "archive", "both"],  # click.Choice gives only these
    size: int,
    body: BodyKind,  # click.Choice too
) -> FlowSpec:
    from transfer_runner.platforms.base import STORES
    from transfer_runner.platforms.sandbox.mailflow import FlowSpec

    stores = STORES if store == "both" else (store,)
    return FlowSpec(domains=domains, stores=stores, size=size, body=body)


def _flow_banner(flow: MailFlow, deliver_rate: float, expire_rate: float) -> str:
    shown = ", ".join(flow.domains[:5]) + (", ..." if len(flow.domains) > 5 else "")
    return (
        f"mail flow: {len(flow.domains)} domain(s) ({shown}), deliver {deliver_rate:g}/s, "
        f"expire {expire_rate:g}/s per store, {flow.spec.size} B {flow.spec.body} messages"
    )


@contextmanager
def _sigterm_interrupts() -> Iterator[None]:
    """SIGTERM raises KeyboardInterrupt in the main thread, so it stops like Ctrl-C."""
    import signal

    def _terminate(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, _terminate)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@cli.group()
def sandbox() -> None:
    """The embedded SQLite sandbox platform (the default platform)."""


@sandbox.command("init")
@click.argument("path", type=click.Path(dir_okay=False))
@click.option(
    "--fixture",
    required=True,
    type=click.Path(exists=True, dir_okay=False),
    help="YAML fixture describing accounts, tickets and mail.",
)
@click.option("--force", is_flag=True, help="Replace an existing sandbox file.")
def sandbox_init(path: str, fixture: str, force: bool) -> None:
    """Create a sandbox platform at PATH from a fixture."""
    from transfer_runner.platforms.sandbox.fixture import init_sandbox

    summary = init_sandbox(path, fixture, force=force)
    parts = ", ".join(f"{v} {k}" for k, v in summary.items())
    click.echo(f"sandbox created at {path}: {parts}")


@sandbox.command("dump")
@click.argument("path", type=click.Path(dir_okay=False))
def sandbox_dump(path: str) -> None:
    """Print the sandbox's whole state as JSON."""
    from transfer_runner.platforms.sandbox.dump import dump_sandbox

    if not Path(path).is_file():
        raise ConfigError(f"no sandbox at {path}")
    click.echo(json.dumps(dump_sandbox(path), indent=2, sort_keys=False))


@sandbox.command("serve")
@click.argument("path", type=click.Path(dir_okay=False))
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    default=8080,
    show_default=True,
    help="Port to listen on (0 = a free port, printed).",
)
@click.option(
    "--latency",
    "latency_ms",
    type=click.FloatRange(0, 3_600_000),
    default=0.0,
    metavar="MS",
    help="Sleep this long before handling every request (but /v1/health).",
)
@click.option(
    "--fail-rate",
    type=click.FloatRange(0, 1),
    default=0.0,
    metavar="R",
    help="Fraction of requests (0..1) that fail with one of --faults.",
)
@click.option(
    "--faults",
    default="429,503,reset,lost-ack",
    show_default=True,
    metavar="KINDS",
    help="Failure kinds for --fail-rate: 429, 503, reset (no reply), lost-ack (write done, "
    "no reply).",
)
@click.option(
    "--retry-after",
    type=click.IntRange(0),
    default=1,
    show_default=True,
    metavar="S",
    help="Retry-After seconds of injected 429 replies.",
)
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the fault draws.")
@click.option(
    "--token",
    envvar="TRANSFER_RUNNER_SANDBOX_TOKEN",
    metavar="T",
    help="Bearer token every request must carry. Env TRANSFER_RUNNER_SANDBOX_TOKEN.",
)
@_rate_options
@_flow_options("mail-")
def sandbox_serve(
    path: str,
    host: str,
    port: int,
    latency_ms: float,
    fail_rate: float,
    faults: str,
    retry_after: int,
    seed: int,
    token: str | None,
    deliver_rate: float,
    expire_rate: float,
    **flow: Any,
) -> None:
    """Serve the sandbox at PATH over the platform REST API until Ctrl-C or SIGTERM.

    The API is schemas/platform-api.yaml; point the http adapter at the printed URL. Serving
    on an address other than loopback needs a token. --deliver/--expire run the mail flow of
    `sandbox mail` in the background while serving.
    """
    from transfer_runner.platforms.http.faults import FaultPlan, parse_fault_kinds
    from transfer_runner.platforms.http.server import SandboxServer
    from transfer_runner.platforms.sandbox.mailflow import FlowThread, MailFlow
    from transfer_runner.platforms.sandbox.platform import SandboxPlatform

    if not Path(path).is_file():
        raise ConfigError(f"no sandbox at {path}")
    plan = FaultPlan(
        latency_ms=latency_ms,
        fail_rate=fail_rate,
        kinds=parse_fault_kinds(faults),
        retry_after=retry_after,
        seed=seed,
    )
    with SandboxPlatform(path) as platform, _sigterm_interrupts():
        mail = None
        if deliver_rate or expire_rate:
            mail = FlowThread(MailFlow(platform, _flow_spec(**flow)), deliver_rate, expire_rate)
        server = SandboxServer(platform, host=host, port=port, token=token or None, faults=plan)
        auth = "token required" if token else "no token"
        try:
            click.echo(f"serving sandbox {path} on {server.url} ({auth})")
            if mail is not None:
                click.echo(_flow_banner(mail.flow, deliver_rate, expire_rate))
                mail.start()
            server.serve_forever()
        except KeyboardInterrupt:
            pass
        finally:
            server.stop()
            if mail is not None:
                click.echo(f"mail flow: {mail.stop().summary()}")


@sandbox.command("mail")
@click.argument("path", type=click.Path(dir_okay=False))
@_rate_options
@_flow_options("")
@click.option(
    "--duration",
    type=click.FloatRange(min=0),
    metavar="S",
    help="Stop after S seconds (default: run until Ctrl-C or SIGTERM).",
)
@click.option(
    "--count",
    type=click.IntRange(min=0),
    metavar="N",
    help="Deliver N messages at once and exit, unpaced (for scripts); no --deliver or --expire.",
)
def sandbox_mail(
    path: str,
    deliver_rate: float,
    expire_rate: float,
    duration: float | None,
    count: int | None,
    **flow: Any,
) -> None:
    """Make the sandbox at PATH a live mailbox: deliver and expire mail while a transfer runs.

    Mail goes to whichever active account holds each domain at that moment and is held back
    while none does; expiry removes the oldest mail of the accounts that hold or held the
    domains. Prints a summary line at the end; Ctrl-C or SIGTERM stops it cleanly.
    """
    from transfer_runner.platforms.sandbox.mailflow import FlowThread, MailFlow
    from transfer_runner.platforms.sandbox.platform import SandboxPlatform

    if count is not None and (deliver_rate or expire_rate or duration is not None):
        raise click.UsageError("--count delivers at once: drop --deliver, --expire and --duration")
    if count is None and not (deliver_rate or expire_rate):
        raise click.UsageError("nothing to do: give --deliver RATE, --expire RATE or --count N")
    if not Path(path).is_file():
        raise ConfigError(f"no sandbox at {path}")
    with SandboxPlatform(path) as platform:
        mail = MailFlow(platform, _flow_spec(**flow))
        if count is not None:
            totals = mail.deliver(count)
        else:
            paced = FlowThread(mail, deliver_rate, expire_rate, duration)
            with _sigterm_interrupts():
                try:
                    click.echo(_flow_banner(mail, deliver_rate, expire_rate))
                    paced.start()
                    while paced.is_alive():
                        paced.join(0.2)
                except KeyboardInterrupt:
                    pass
            totals = paced.stop()
    click.echo(f"mail flow: {totals.summary()}")


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
    except click.ClickException as exc:
        exc.show()
        code = EXIT_FAILED
    except ManifestError as exc:
        click.echo(str(exc), err=True)
        code = EXIT_FAILED
    except TransferRunnerError as exc:
        click.echo(f"error: {exc}", err=True)
        code = EXIT_FAILED
    sys.exit(code or 0)

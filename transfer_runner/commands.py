"""The commands as plain functions returning result objects; `cli.py` is only their skin."""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from transfer_runner import git_filters, run_identity
from transfer_runner.command_types import (
    BulkOptions,
    GitGuards,
    Selection,
    TransferStatusView,
    ValidationResult,
)
from transfer_runner.config import Settings
from transfer_runner.errors import ConfigError
from transfer_runner.manifest.api import load_transfers
from transfer_runner.selection import select
from transfer_runner.sessions import session
from transfer_runner.sharding import in_shard
from transfer_runner.state_commands import (
    recent_runs,
    report,
    report_rows,
    runs_at_commit,
    status,
    unlock,
    wave_report,
)

# What only plan, apply, status, abort and unlock use is imported where it is used: `validate`,
# `--help` and completion do not pay for boto3, Jinja2 or the engine (about 0.5 s).
if TYPE_CHECKING:
    from transfer_runner.abort import AbortResult, ReceiptNote
    from transfer_runner.csv_manifests.writer import WaveResult
    from transfer_runner.engine.options import RunOptions
    from transfer_runner.engine.results import RunReport, TransferResult
    from transfer_runner.engine.runner import Reporter
    from transfer_runner.manifest.model import Transfer
    from transfer_runner.modules.context import ProgressSink, RunContext
    from transfer_runner.platforms.base import Platform
    from transfer_runner.playbook.loader import Playbook
    from transfer_runner.s3_client import S3Settings
    from transfer_runner.state.base import StateStore

__all__ = [  # the request and result types are command_types', re-exported
    "BulkOptions",
    "GitGuards",
    "Selection",
    "ValidationResult",
    "TransferStatusView",
    "validate",
    "plan",
    "apply",
    "status",
    "report",
    "report_rows",
    "recent_runs",
    "wave_report",
    "runs_at_commit",
    "unlock",
    "abort",
    "new_from_csv",
    "session",
]


def validate(settings: Settings, selection: Selection, online: bool = False) -> ValidationResult:
    """Schema and semantic checks of every manifest under the selection's paths (all of them:
    a limit or shard does not hide an invalid one); with `online`, also against the platform
    and state."""
    transfers, diagnostics = load_transfers(selection.paths)
    if online and transfers:
        from transfer_runner.manifest.online import online_diagnostics
        from transfer_runner.modules.registry import load_modules
        from transfer_runner.playbook.loader import load_playbook

        with session(settings, read_only=True) as (platform, state):
            playbook = load_playbook(settings.playbook, load_modules())
            _preflight(settings, platform, state, playbook, transfers, frozenset(),
                       write_probe=False)  # fmt: skip
            diagnostics = [*diagnostics, *online_diagnostics(transfers, platform, state)]
    return ValidationResult(tuple(diagnostics), tuple(transfers))


def _load_valid(selection: Selection) -> list[Transfer]:
    """Every manifest valid (else nothing runs), then the git guards, `--limit`, `--shard`."""
    from transfer_runner.errors import ManifestError

    paths, git = selection.paths, selection.git
    if not paths:
        return []
    if git.require_clean:
        dirty = git_filters.uncommitted(paths)
        if dirty:
            raise ConfigError("--require-clean: uncommitted manifests: " + ", ".join(dirty[:10]))
    transfers, diagnostics = load_transfers(paths)
    if diagnostics:
        raise ManifestError(diagnostics)
    if git.changed_since:
        changed = git_filters.changed_since(git.changed_since, paths)
        transfers = [t for t in transfers if str(Path(t.path).resolve()) in changed]
    chosen = select(transfers, selection.limits)
    if selection.shard is None:
        return chosen
    return in_shard(chosen, [t.name for t in chosen], *selection.shard)


def _export_settings(settings: Settings) -> S3Settings | None:
    from transfer_runner.s3_client import S3Settings

    if not settings.export_to:
        return None
    return S3Settings(
        export_to=settings.export_to,
        sse=settings.sse,
        sse_kms_key_id=settings.sse_kms_key_id,
        part_size_bytes=settings.part_size_mib * 1024 * 1024,
        compression=settings.compression,
        upload_workers=settings.upload_workers,
        parts_in_flight=settings.upload_workers,
    )


def _preflight(
    settings: Settings,
    platform: Platform,
    state: StateStore,
    playbook: Playbook,
    transfers: Sequence[Transfer],
    tags: frozenset[str],
    *,
    write_probe: bool,
) -> None:
    from transfer_runner.preflight import preflight

    preflight(
        platform=platform,
        platform_url=settings.platform,
        state=state,
        playbook=playbook,
        transfers=transfers,
        tags=tags,
        export=_export_settings(settings),
        write_probe=write_probe,
    )


def plan(
    settings: Settings,
    selection: Selection,
    *,
    reporter: Reporter | None = None,
    out: str | None = None,
    recheck: bool = False,
    refresh: bool = True,
    forks: int = 8,
) -> RunReport:
    """Check mode: what each transfer's steps would change. Writes nothing anywhere, except
    the plan file `out` when asked (for `apply FILE`).

    A completed transfer is answered from the state store and, with `refresh`, confirmed on
    the platform (drift there fails it). `forks` transfers are checked at once (reads only).
    """
    from transfer_runner import saved_plans
    from transfer_runner.clock import clock_from_env
    from transfer_runner.engine.results import RunReport
    from transfer_runner.engine.runner import NullReporter, RunOptions, run_transfers
    from transfer_runner.modules.context import RunContext
    from transfer_runner.modules.registry import load_modules
    from transfer_runner.playbook.loader import load_playbook

    transfers = _load_valid(selection)
    tags = selection.tags
    modules = load_modules()
    playbook = load_playbook(settings.playbook, modules)
    clock = clock_from_env()
    started = datetime.now(UTC)
    with session(settings, read_only=True) as (platform, state):
        _preflight(settings, platform, state, playbook, transfers, tags, write_probe=False)
        run = RunContext(
            run_id=run_identity.new_run_id(started),
            platform=platform,
            state=state,
            check_mode=True,
            today=clock.now().date(),
            clock=clock,
            export=_export_settings(settings),
        )
        results = run_transfers(
            run,
            playbook,
            modules,
            transfers,
            RunOptions(tags=tags, recheck=recheck, refresh=refresh, forks=forks),
            reporter or NullReporter(),
        )
        report = RunReport(run.run_id, "plan", started, datetime.now(UTC), tuple(results))
        if out:
            saved_plans.write_plan(out, report, transfers, state, playbook.sha256)
    return report


def apply(
    settings: Settings,
    selection: Selection,
    *,
    forks: int = 1,
    reporter: Reporter | None = None,
    progress: ProgressSink | None = None,
    stop: threading.Event | None = None,
    bulk: BulkOptions | None = None,
    recheck: bool = False,
    procs: int | Literal["auto"] = 1,
) -> RunReport:
    """Execute the playbook for every selected transfer; every step recorded as it ends.

    With `procs` above 1 (or "auto": `apply_processes.auto_procs`) the transfers run in that
    many worker processes, each with `forks` threads (`apply_processes`).

    A completed transfer with the same manifest and playbook is answered from the state store
    (`unchanged`, no platform call); `recheck` runs its checks against the platform instead.

    Given one saved plan file (`plan --out`), apply exactly its transfers, and refuse the whole
    plan if any of their manifests or states changed since it was made; each step then fails,
    before it writes, if its actions are not the ones the plan showed (`engine.planned`).
    """
    from transfer_runner import saved_plans
    from transfer_runner.clock import clock_from_env
    from transfer_runner.engine.results import RunReport
    from transfer_runner.engine.runner import NullReporter, RunOptions, run_transfers
    from transfer_runner.modules.context import RunContext, no_progress
    from transfer_runner.modules.registry import load_modules
    from transfer_runner.playbook.loader import load_playbook
    from transfer_runner.state.base import RunInfo

    bulk = bulk or BulkOptions()
    paths = selection.paths
    saved = len(paths) == 1 and saved_plans.is_plan_file(paths[0])
    plan_doc = saved_plans.read_plan(paths[0]) if saved else None
    if plan_doc is not None:
        plan_doc, selection = saved_plans.plan_selection(plan_doc, selection)
    transfers = _load_valid(selection)
    tags = selection.tags
    modules = load_modules()
    playbook = load_playbook(settings.playbook, modules)
    clock = clock_from_env()
    started = datetime.now(UTC)
    info = RunInfo(
        id=run_identity.new_run_id(started),
        started_at=started,
        user=run_identity.user(),
        ci_job=run_identity.ci_job(),
        git_commit=run_identity.git_commit(),
    )
    with session(settings, read_only=False, bulk=bulk) as (platform, state):
        if plan_doc is not None:
            stale = saved_plans.stale_reasons(plan_doc, transfers, state, playbook.sha256)
            if stale:
                raise ConfigError("stale plan, make a new one:\n  " + "\n  ".join(stale))
        _preflight(settings, platform, state, playbook, transfers, tags, write_probe=True)
        state.start_run(info)  # the state's first write: before any platform write
        run = RunContext(
            run_id=info.id,
            platform=platform,
            state=state,
            check_mode=False,
            today=clock.now().date(),
            clock=clock,
            export=_export_settings(settings),
            progress=progress or no_progress,
            lock_ttl_s=bulk.lock_ttl_s,
            git_commit=info.git_commit,
        )
        options = RunOptions(
            forks=forks,
            tags=tags,
            owner=f"{info.user}@{run_identity.host()}",
            serial=bulk.serial,
            max_fail_percentage=bulk.max_fail_percentage,
            recheck=recheck,
            grace_s=bulk.grace_s,
            planned=None if plan_doc is None else saved_plans.planned_actions(plan_doc),
        )
        workers = _procs(procs, len(transfers), forks)
        if workers > 1:
            results = _in_processes(settings, bulk, run, transfers, options, workers,
                                    reporter, stop)  # fmt: skip
        else:
            results = run_transfers(
                run, playbook, modules, transfers, options, reporter or NullReporter(), stop
            )
        report = RunReport(
            info.id, "apply", started, datetime.now(UTC), tuple(results), info.git_commit, info.user
        )
        state.finish_run(info.id, report.finished_at, report.totals)
    return report


def _procs(procs: int | Literal["auto"], transfers: int, forks: int) -> int:
    from transfer_runner.apply_processes import auto_procs

    wanted = auto_procs(transfers, forks) if procs == "auto" else procs
    return max(1, min(wanted, transfers))


def _in_processes(
    settings: Settings,
    bulk: BulkOptions,
    run: RunContext,
    transfers: Sequence[Transfer],
    options: RunOptions,
    procs: int,
    reporter: Reporter | None,
    stop: threading.Event | None,
) -> list[TransferResult]:
    from transfer_runner import testpoints
    from transfer_runner.apply_processes import WorkerSetup, run_in_processes, worker_bulk
    from transfer_runner.engine.runner import NullReporter, not_started
    from transfer_runner.kill_points import install_from_env

    hook = install_from_env if testpoints.installed() else None  # the tests' points, if asked
    setup = WorkerSetup(settings, worker_bulk(bulk, procs), run.run_id, run.today, run.export,
                        run.git_commit, hook)  # fmt: skip
    return run_in_processes(
        setup, transfers, options, procs, reporter or NullReporter(), run.progress,
        stop or threading.Event(), lambda t, why: not_started(run, t, why),
    )  # fmt: skip


def abort(
    settings: Settings,
    name: str,
    reason: str,
    paths: Sequence[str] = (".",),
    dry_run: bool = False,
) -> AbortResult:
    """Undo an unfinished transfer before its point of no return (`transfer_runner.abort`).
    The manifest named `name` is looked for under `paths`."""
    from transfer_runner.abort import abort_transfer, require_reason

    reason = require_reason(reason)
    transfers, diagnostics = load_transfers(paths)
    found = [t for t in transfers if t.name == name]
    if not found:
        problems = f" ({len(diagnostics)} invalid manifests there)" if diagnostics else ""
        raise ConfigError(f"no manifest named {name!r} under {', '.join(paths)}{problems}")
    with session(settings, read_only=dry_run) as (platform, state):
        return abort_transfer(
            platform, state, found[0], reason=reason, by=run_identity.user(),
            run_id=run_identity.new_run_id().replace("r-", "abort-", 1), dry_run=dry_run,
            receipt=_receipt_note(settings, name),
        )  # fmt: skip


def _receipt_note(settings: Settings, name: str) -> ReceiptNote | None:
    """How `abort` notes itself in the export's receipt, when an export destination is set."""
    export = _export_settings(settings)
    if export is None:
        return None
    from transfer_runner.export.receipt import note_abort
    from transfer_runner.s3_client import make_s3_client

    s3 = make_s3_client(export)

    def note(entry: Mapping[str, str], write: bool) -> str | None:
        return note_abort(s3, export, name, entry, write=write)

    return note


def new_from_csv(
    csv_path: str,
    out_dir: str,
    *,
    overwrite: bool = False,
    schema: str | None = None,
    modeline: bool = True,
) -> WaveResult:
    """One manifest per CSV row into `out_dir`, checked with the manifests already there; all
    or nothing (`csv_manifests.writer`). `modeline`: a first line naming the manifest schema
    for editors (`schema`, else `.schemas/transfer-manifest.json` beside `out_dir`)."""
    from transfer_runner.csv_manifests import write_manifests_from_csv

    return write_manifests_from_csv(
        csv_path, out_dir, overwrite=overwrite, schema=schema, modeline=modeline
    )

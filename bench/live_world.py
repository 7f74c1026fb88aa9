"""The live-mailbox benchmark's world: one direct customer with a large mail-like archive, its
reseller and tickets, one manifest; and the processes and checks run against it.

`make_template` builds the sandbox once; each measurement gets a fresh copy (`LiveRun`), its
own sqlite state and its own S3 prefix, and runs the real CLI in subprocesses:
`python -m transfer_runner apply DIR --yes --report-json F` (with TRANSFER_RUNNER_PLATFORM,
_STATE and _EXPORT_TO in its environment) and `python -m transfer_runner sandbox mail ...`.
The checks read the sandbox's SQLite file and the export's `index.jsonl` on S3 directly, not
through the runner.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from transfer_runner.platforms.sandbox import init_sandbox

SEED = 20261130
ACCOUNT = "C-1001"
DOMAIN = "acme.com"
TRANSFER = "acme-com"
RESELLER = "R-301"
STORE = "archive"
ROOT = Path(__file__).resolve().parent.parent
FLOW_START_TIMEOUT_S = 60.0
_FLOW_SUMMARY = re.compile(r"mail flow: delivered \d+, held back \d+, released \d+, expired \d+")


class WorldError(Exception):
    """A process of the benchmark failed, or the world is not as it must be."""


# --- the fixture, the manifest, the template ------------------------------------------------


def fixture_text(messages: int, size_kib: int, quarantine: int) -> str:
    """One direct customer (one domain, `messages` mail-like archive messages), a reseller,
    and the two authorization tickets; a billing period around today."""
    quarantine_line = (
        f"    quarantine: {{messages: {quarantine}, size: 8KiB, body: mail-like}}\n"
        if quarantine
        else ""
    )
    return (
        f"seed: {SEED}\n"
        "accounts:\n"
        f"  - id: {ACCOUNT}\n"
        "    type: direct\n"
        "    name: Acme Inc\n"
        f"    domains: [{DOMAIN}]\n"
        "    users: 40\n"
        "    services: [spamstopshere, restoremail]\n"
        '    billing: {price: "120.00", period_start: today-10d, period_end: today+20d}\n'
        f"{quarantine_line}"
        f"    archive: {{messages: {messages}, size: {size_kib}KiB, body: mail-like}}\n"
        f"  - id: {RESELLER}\n"
        "    type: reseller\n"
        "    name: Northwind IT\n"
        "tickets:\n"
        "  - id: T-5001\n"
        f"    account: {ACCOUNT}\n"
        "    subject: Authorize transfer of account\n"
        f"    body: We, {DOMAIN}, authorize the transfer of our direct account to resold "
        "under Northwind IT.\n"
        "  - id: T-5002\n"
        f"    account: {RESELLER}\n"
        "    subject: Authorize Customer Transfer\n"
        f"    body: We, Northwind IT, Authorize {DOMAIN} to be transferred to our account.\n"
    )


def manifest_text(archive: str, quarantine: str) -> str:
    """The manifest moving the customer under the reseller, with these data modes."""
    return (
        "apiVersion: transfer-runner/v1\n"
        "kind: Transfer\n"
        "metadata:\n"
        f"  name: {TRANSFER}\n"
        '  labels: {wave: "bench-live"}\n'
        "spec:\n"
        f"  customer: {{account: {ACCOUNT}, domains: [{DOMAIN}]}}\n"
        f"  reseller: {{account: {RESELLER}, name: Northwind IT}}\n"
        "  subscription: {users: 40, domains: 1}\n"
        "  services: [spamstopshere, restoremail]\n"
        f"  temporary_domain: gdi.{DOMAIN}\n"
        "  authorization: {customer_ticket: T-5001, reseller_ticket: T-5002}\n"
        f"  data: {{quarantine: {quarantine}, archive: {archive}}}\n"
        "  billing: {prorate: true}\n"
    )


@dataclass(frozen=True)
class Template:
    """The sandbox every measurement copies, and what its archive holds."""

    sandbox: Path
    messages: int
    bytes: int
    size_kib: int
    quarantine: int


def make_template(directory: Path, messages: int, size_kib: int, quarantine: int) -> Template:
    """Write the fixture, build the sandbox and fold its WAL into the one file."""
    directory.mkdir(parents=True, exist_ok=True)
    fixture = directory / "fixture.yml"
    fixture.write_text(fixture_text(messages, size_kib, quarantine), encoding="utf-8")
    sandbox = directory / "template.db"
    init_sandbox(sandbox, fixture)
    conn = sqlite3.connect(sandbox)
    try:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        conn.close()
    count, nbytes = store_totals(sandbox, ACCOUNT)
    return Template(sandbox, count, nbytes, size_kib, quarantine)


# --- reading the sandbox directly -----------------------------------------------------------


def _connect(sandbox: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(f"file:{sandbox}?mode=ro", uri=True, timeout=30)
    conn.execute("PRAGMA query_only = 1")
    return conn


def store_totals(sandbox: Path, account: str, store: str = STORE) -> tuple[int, int]:
    """(messages, bytes) of `account`'s store."""
    conn = _connect(sandbox)
    try:
        row = conn.execute(
            "SELECT count(*), coalesce(sum(size), 0) FROM messages WHERE account = ? AND store = ?",
            (account, store),
        ).fetchone()
    finally:
        conn.close()
    return int(row[0]), int(row[1])


def store_digests(sandbox: Path, account: str, store: str = STORE) -> dict[str, str]:
    """id -> SHA-256 of every message of `account`'s store."""
    conn = _connect(sandbox)
    try:
        rows = conn.execute(
            "SELECT id, sha256 FROM messages WHERE account = ? AND store = ?", (account, store)
        ).fetchall()
    finally:
        conn.close()
    return {str(i): str(d).lower() for i, d in rows}


def accounts(sandbox: Path) -> dict[str, dict[str, Any]]:
    """id -> {type, status, parent, domains} of every account."""
    conn = _connect(sandbox)
    try:
        found = {
            row[0]: {"type": row[1], "status": row[2], "parent": row[3], "domains": []}
            for row in conn.execute("SELECT id, type, status, parent FROM accounts")
        }
        for domain, account in conn.execute("SELECT domain, account FROM domains"):
            found[account]["domains"].append(domain)
    finally:
        conn.close()
    return found


def queued(sandbox: Path) -> int:
    """Messages the mail flow holds back (no active account held their domain)."""
    conn = _connect(sandbox)
    try:
        return int(conn.execute("SELECT count(*) FROM mail_queue").fetchone()[0])
    finally:
        conn.close()


# --- S3 ---------------------------------------------------------------------------------------


def snapshot(s3: Any, bucket: str, prefix: str) -> dict[str, tuple[str, int]]:
    """key -> (ETag, size) of every object under `prefix`."""
    found: dict[str, tuple[str, int]] = {}
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for item in page.get("Contents", ()):
            found[item["Key"]] = (str(item.get("ETag", "")), int(item["Size"]))
    return found


def written_since(
    before: dict[str, tuple[str, int]], after: dict[str, tuple[str, int]]
) -> dict[str, int]:
    """key -> size of every object created or rewritten between two snapshots."""
    return {k: v[1] for k, v in after.items() if before.get(k) != v}


def object_kind(key: str) -> str:
    """part, journal, index, receipt or other: what an export object is, by its key."""
    name = key.rsplit("/", 1)[-1]
    if "/_journal/" in key:
        return "journal"
    if name.startswith("part-"):
        return "part"
    if name == "index.jsonl":
        return "index"
    if name == "receipt.json":
        return "receipt"
    return "other"


def read_index(s3: Any, bucket: str, key: str) -> list[dict[str, Any]]:
    """The lines of an export's `index.jsonl`, parsed."""
    body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    return [json.loads(line) for line in body.splitlines() if line.strip()]


# --- one measured world -----------------------------------------------------------------------


def _export_store(step: dict[str, Any]) -> str:
    """The store a data.export step exports: from its outputs, else (a failed step has none)
    from its task name."""
    store = (step.get("outputs") or {}).get("store")
    if store:
        return str(store)
    named = [s for s in ("quarantine", "archive") if s in str(step.get("name", "")).lower()]
    return named[0] if len(named) == 1 else "?"


@dataclass(frozen=True)
class Applied:
    """One finished `apply` subprocess."""

    label: str
    seconds: float  # wall time of the process, start to exit
    cpu_s: float  # its user + system CPU time (all threads), from wait4
    peak_rss_kib: int
    returncode: int
    report: dict[str, Any]
    log: Path

    def steps(self) -> list[dict[str, Any]]:
        """The transfer's steps in the JSON report, in playbook order."""
        for transfer in self.report.get("transfers", ()):
            if transfer["name"] == TRANSFER:
                return list(transfer["steps"])
        return []

    def status(self) -> str | None:
        """The transfer's status in the report (None without one)."""
        for transfer in self.report.get("transfers", ()):
            if transfer["name"] == TRANSFER:
                return str(transfer["status"])
        return None

    def message(self) -> str:
        """Why the transfer failed, from the report (or the end of the output)."""
        for transfer in self.report.get("transfers", ()):
            if transfer["name"] == TRANSFER and transfer.get("message"):
                return str(transfer["message"])
        lines = self.log.read_text(errors="replace").splitlines() if self.log.exists() else []
        return lines[-1] if lines else ""

    def step(self, module: str, store: str | None = None) -> dict[str, Any] | None:
        """The step running `module` (for data.export, the one of `store`)."""
        for step in self.steps():
            if step["module"] != module:
                continue
            if store is None or _export_store(step) == store:
                return step
        return None

    def durations(self) -> dict[str, float]:
        """module (data.export: `data.export archive`) -> duration of its step, s."""
        found: dict[str, float] = {}
        for step in self.steps():
            name = step["module"]
            if name == "data.export":
                name = f"{name} {_export_store(step)}"
            found[name] = found.get(name, 0.0) + float(step.get("duration_s") or 0.0)
        return found


@dataclass
class LiveRun:
    """A fresh copy of the template in `directory`, with its own state and S3 prefix."""

    directory: Path
    template: Template
    bucket: str
    base_env: dict[str, str]
    archive_mode: str = "migrate"
    quarantine_mode: str = "skip"
    sandbox: Path = field(init=False)
    prefix: str = field(init=False)
    env: dict[str, str] = field(init=False)
    _applies: int = field(default=0, init=False)

    def __post_init__(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        self.sandbox = self.directory / "sandbox.db"
        shutil.copyfile(self.template.sandbox, self.sandbox)
        manifests = self.directory / "transfers"
        manifests.mkdir(exist_ok=True)
        (manifests / f"{TRANSFER}.yml").write_text(
            manifest_text(self.archive_mode, self.quarantine_mode), encoding="utf-8"
        )
        self.prefix = f"live/{self.directory.name}-{time.time_ns()}"
        self.env = {
            **self.base_env,
            "TRANSFER_RUNNER_PLATFORM": f"sandbox:{self.sandbox}",
            "TRANSFER_RUNNER_STATE": f"sqlite:{self.directory / 'state.db'}",
            "TRANSFER_RUNNER_EXPORT_TO": f"s3://{self.bucket}/{self.prefix}",
        }

    @property
    def manifests(self) -> Path:
        return self.directory / "transfers"

    @property
    def export_prefix(self) -> str:
        """The prefix of this transfer's export objects (with a trailing slash)."""
        return f"{self.prefix}/{TRANSFER}/"

    def index_key(self, store: str = STORE) -> str:
        return f"{self.prefix}/{TRANSFER}/{store}/index.jsonl"

    def apply(
        self, label: str, *extra: str, check: bool = True, profile: Path | None = None
    ) -> Applied:
        """`python -m transfer_runner apply transfers --yes --report-json F [extra]`, timed.

        With `check`, WorldError unless it exits 0 with a report. With `profile`, it runs under
        `py-spy record` (which slows it down: such a run's times are not figures).
        """
        self._applies += 1
        report = self.directory / f"report-{self._applies}.json"
        log = self.directory / f"apply-{self._applies}.log"
        argv = [sys.executable, "-m", "transfer_runner", "apply", str(self.manifests), "--yes",
                "--report-json", str(report), *extra]  # fmt: skip
        if profile is not None:
            argv = py_spy_argv(profile) + argv
        seconds, cpu_s, rss, code = run_timed(argv, self.env, self.directory, log)
        doc = json.loads(report.read_text(encoding="utf-8")) if report.is_file() else {}
        applied = Applied(label, seconds, cpu_s, rss, code, doc, log)
        if check and (code != 0 or not doc):
            tail = "\n".join(log.read_text(errors="replace").splitlines()[-30:])
            raise WorldError(f"{label}: apply exited {code}\n{tail}")
        return applied

    def mail(self, *args: str) -> MailFlowProcess:
        """`sandbox mail SANDBOX --domain D --store archive ARGS` (not started)."""
        return MailFlowProcess(self, args)

    def deliver(self, count: int, size_kib: int) -> FlowSummary:
        """Deliver `count` mail-like archive messages at once (`sandbox mail --count N`)."""
        flow = self.mail("--count", str(count), "--size", f"{size_kib}KiB", "--body", "mail-like")
        flow.start(wait_banner=False)
        return flow.wait()


def py_spy_argv(output: Path, *, gil: bool = False) -> list[str]:
    """`py-spy record` of the command that follows, as speedscope: every thread, idle time
    included (so a thread's samples add up to its wall time, waits on S3 and SQLite too); with
    `gil`, only the thread holding the GIL (where a process's Python CPU goes)."""
    spy = Path(sys.executable).parent / "py-spy"
    exe = str(spy) if os.access(spy, os.X_OK) else (shutil.which("py-spy") or "py-spy")
    what = ["--gil", "--rate", "200"] if gil else ["--idle", "--rate", "50"]
    return [exe, "record", "--format", "speedscope", *what, "--subprocesses",
            "-o", str(output), "--"]  # fmt: skip


def run_timed(
    argv: list[str], env: dict[str, str], cwd: Path, log: Path
) -> tuple[float, float, int, int]:
    """Run `argv` with its output in `log`: (wall s, CPU s, peak RSS KiB, exit code)."""
    started = time.monotonic()
    with open(log, "wb") as out:
        process = subprocess.Popen(
            argv, env=env, cwd=cwd, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT
        )
        try:
            while True:
                pid, status, usage = os.wait4(process.pid, os.WNOHANG)
                if pid:
                    break
                time.sleep(0.01)
        except BaseException:
            process.kill()
            process.wait()
            raise
    seconds = time.monotonic() - started
    process.returncode = os.waitstatus_to_exitcode(status)
    cpu_s = usage.ru_utime + usage.ru_stime
    return seconds, cpu_s, int(usage.ru_maxrss), process.returncode


# --- the mail flow in its own process ---------------------------------------------------------


def flow_counters(sandbox: Path) -> dict[str, int]:
    """The mail flow's own counters in the sandbox: `mail_seq` (new messages), `mail_delivered`
    (stored in an account, released ones included), `mail_expired`; and the queue's length."""
    conn = _connect(sandbox)
    try:
        rows = dict(conn.execute(
            "SELECT key, value FROM meta WHERE key IN ('mail_seq', 'mail_delivered', "
            "'mail_expired')"
        ).fetchall())  # fmt: skip
        waiting = int(conn.execute("SELECT count(*) FROM mail_queue").fetchone()[0])
    finally:
        conn.close()
    found = {k: int(rows.get(k, 0)) for k in ("mail_seq", "mail_delivered", "mail_expired")}
    return {**found, "queued": waiting}


@dataclass(frozen=True)
class FlowSummary:
    """What a `sandbox mail` process did, from the sandbox's counters (before and after), the
    line it printed at its end, and its own times."""

    new: int  # messages the flow generated
    delivered: int  # stored in an account (released held-back ones included)
    expired: int
    queued: int  # held back, still waiting when the flow stopped
    seconds: float
    cpu_s: float
    printed: str  # the process's own summary line

    def as_dict(self) -> dict[str, Any]:
        return {
            "new": self.new,
            "delivered": self.delivered,
            "expired": self.expired,
            "queued": self.queued,
            "seconds": round(self.seconds, 3),
            "cpu_s": round(self.cpu_s, 3),
            "printed": self.printed,
        }


class MailFlowProcess:
    """`transfer-runner sandbox mail` as a subprocess: `start()` waits for its banner (the flow
    runs from then on), `stop()` sends SIGTERM and returns its summary."""

    def __init__(self, run: LiveRun, args: tuple[str, ...]) -> None:
        self.run = run
        self.log = run.directory / f"mail-{time.time_ns()}.log"
        self.argv = [sys.executable, "-m", "transfer_runner", "sandbox", "mail",
                     str(run.sandbox), "--domain", DOMAIN, "--store", STORE, *args]  # fmt: skip
        self._process: subprocess.Popen[bytes] | None = None
        self._out: Any = None
        self._started = 0.0
        self._before: dict[str, int] = {}

    def start(self, *, wait_banner: bool = True) -> None:
        self._before = flow_counters(self.run.sandbox)
        self._out = open(self.log, "wb")  # noqa: SIM115  (closed in wait())
        self._started = time.monotonic()
        self._process = subprocess.Popen(
            self.argv, env=self.run.env, cwd=self.run.directory, stdin=subprocess.DEVNULL,
            stdout=self._out, stderr=subprocess.STDOUT,
        )  # fmt: skip
        if not wait_banner:
            return
        deadline = time.monotonic() + FLOW_START_TIMEOUT_S
        while "mail flow:" not in self.log.read_text(errors="replace"):
            if self._process.poll() is not None:
                self.wait()
            if time.monotonic() > deadline:
                self.stop()
                raise WorldError(f"sandbox mail did not start in {FLOW_START_TIMEOUT_S:g} s")
            time.sleep(0.02)

    def stop(self) -> FlowSummary:
        """SIGTERM (the CLI stops cleanly and prints its totals), then its summary."""
        if self._process is not None and self._process.poll() is None:
            self._process.send_signal(signal.SIGTERM)
        return self.wait()

    def wait(self, timeout: float = 120.0) -> FlowSummary:
        process = self._process
        if process is None:
            raise WorldError("sandbox mail was never started")
        deadline = time.monotonic() + timeout
        usage = None
        while usage is None:
            pid, status, got = os.wait4(process.pid, os.WNOHANG)
            if pid:
                usage = got
                process.returncode = os.waitstatus_to_exitcode(status)
            elif time.monotonic() > deadline:
                process.kill()
                process.wait()
                raise WorldError(f"sandbox mail did not stop in {timeout:g} s")
            else:
                time.sleep(0.02)
        seconds = time.monotonic() - self._started
        if self._out is not None:
            self._out.close()
        text = self.log.read_text(errors="replace")
        if process.returncode != 0:
            raise WorldError(f"sandbox mail exited {process.returncode}:\n{text[-2000:]}")
        found = _FLOW_SUMMARY.search(text)
        after = flow_counters(self.run.sandbox)
        return FlowSummary(
            after["mail_seq"] - self._before["mail_seq"],
            after["mail_delivered"] - self._before["mail_delivered"],
            after["mail_expired"] - self._before["mail_expired"],
            after["queued"],
            seconds,
            usage.ru_utime + usage.ru_stime,
            found.group(0) if found else "",
        )


# --- the checks -------------------------------------------------------------------------------


@dataclass(frozen=True)
class LossCheck:
    """Zero loss after the apply: every message the (cancelled) direct account still holds is in
    the export's index with the same SHA-256, and, when migrated, in the new account too."""

    direct_status: str
    new_account: str | None
    direct_messages: int
    indexed: int
    lost: int  # direct-account messages missing from the index, or with another SHA-256
    not_imported: int  # with migrate: direct-account messages missing from the new account
    still_queued: int  # held-back mail that reached no account (the flow had stopped)
    passes: dict[int, int]  # export pass -> messages the index holds from it
    first_missing: tuple[str, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        return {
            "direct_status": self.direct_status,
            "new_account": self.new_account,
            "direct_messages": self.direct_messages,
            "indexed": self.indexed,
            "lost": self.lost,
            "not_imported": self.not_imported,
            "still_queued": self.still_queued,
            "index_messages_by_pass": {str(k): v for k, v in sorted(self.passes.items())},
            "first_missing": list(self.first_missing),
        }


def check_loss(run: LiveRun, s3: Any) -> LossCheck:
    """Compare the sandbox's direct account with the export's index (and the new account)."""
    found = accounts(run.sandbox)
    direct = found.get(ACCOUNT, {})
    new = [a for a, v in found.items() if v["parent"] == RESELLER and v["type"] == "resold"]
    held = store_digests(run.sandbox, ACCOUNT)
    index = read_index(s3, run.bucket, run.index_key())
    exported = {line["id"]: str(line["sha256"]).lower() for line in index}
    missing = sorted(i for i, d in held.items() if exported.get(i) != d)
    not_imported = 0
    if run.archive_mode == "migrate" and new:
        imported = store_digests(run.sandbox, new[0])
        not_imported = sum(1 for i, d in held.items() if imported.get(i) != d)
    passes = Counter(int(line.get("pass", 1)) for line in index)
    return LossCheck(
        str(direct.get("status")),
        new[0] if new else None,
        len(held),
        len(index),
        len(missing),
        not_imported,
        queued(run.sandbox),
        dict(passes),
        tuple(missing[:5]),
    )

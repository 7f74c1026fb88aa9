"""The sandbox's mail flow: delivery to the active holder, held-back mail, expiry of the oldest,
mail-like bodies, pacing, and `sandbox mail` / `sandbox serve --deliver` on the command line."""

from __future__ import annotations

import email
import gzip
import hashlib
import json
import os
import re
import signal
import sqlite3
import subprocess
import textwrap
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import closing
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from tests.served import Served, cli
from tests.unit.test_sandbox_fixture import FIXTURE, make_sandbox
from transfer_runner.cli import main
from transfer_runner.errors import ConfigError
from transfer_runner.platforms.base import NewAccount, Store
from transfer_runner.platforms.sandbox.dump import dump_sandbox
from transfer_runner.platforms.sandbox.mailflow import FlowSpec, FlowTotals, MailFlow
from transfer_runner.platforms.sandbox.messages import MESSAGE_ID, generate_message
from transfer_runner.platforms.sandbox.platform import SandboxPlatform

ROOT = Path(__file__).resolve().parents[2]
DELIVERED_ID = re.compile(r"[qa]-d[0-9]{8}-[0-9a-f]{6}")
START = datetime(2031, 7, 15, 12, 0, 0, 250_000, tzinfo=UTC)  # the date does not matter


class TickingClock:
    """A clock the test moves by hand."""

    def __init__(self, at: datetime = START) -> None:
        self.at = at

    def now(self) -> datetime:
        return self.at

    def tick(self, seconds: float = 1) -> None:
        self.at += timedelta(seconds=seconds)


@pytest.fixture
def clock() -> TickingClock:
    return TickingClock()


@pytest.fixture
def live(sandbox: Path, clock: TickingClock) -> Iterator[SandboxPlatform]:
    """The unit fixture's sandbox on a clock the test moves."""
    with SandboxPlatform(sandbox, clock=clock) as platform:
        yield platform


def _ids(platform: SandboxPlatform, account: str, store: Store) -> list[str]:
    return [m.id for m in platform.list_messages(account, store, limit=10_000).messages]


def _new_ids(platform: SandboxPlatform, account: str, store: Store) -> list[str]:
    return [i for i in _ids(platform, account, store) if DELIVERED_ID.fullmatch(i)]


def _rows(path: Path, where: str = "1") -> list[tuple[str, str, str, str]]:
    with sqlite3.connect(path) as conn:
        return conn.execute(
            f"SELECT account, store, received_at, id FROM messages WHERE {where} "
            "ORDER BY account, store, received_at, id"
        ).fetchall()


# -- where mail lands -------------------------------------------------------------------------
def _new_account(platform: SandboxPlatform, domain: str) -> str:
    spec = NewAccount("R-301", "Acme (resold)", domain, 40, 2, ("spamstopshere",))
    return platform.create_account(spec, f"create:{domain}").id


def _moved(platform: SandboxPlatform) -> None:
    _new_account(platform, "acme-new.example")
    platform.move_domain("acme.com", "C-1001", "A-2", "move")


def _detached(platform: SandboxPlatform) -> None:
    platform.detach_domain("C-1001", "acme.com", "detach")


def _cancelled(platform: SandboxPlatform) -> None:
    platform.cancel_account("C-1001", "cancel")


def _unchanged(platform: SandboxPlatform) -> None:
    pass


ROUTES = [
    pytest.param(_unchanged, "acme.com", "C-1001", id="active-holder"),
    pytest.param(_moved, "acme.com", "A-2", id="moved-to-new-account"),
    pytest.param(_detached, "acme.com", None, id="detached-held-back"),
    pytest.param(_cancelled, "acme.com", None, id="holder-cancelled-held-back"),
    pytest.param(_unchanged, "globex.io", None, id="cancelled-account-domain-held-back"),
    pytest.param(_unchanged, "initech.example", "A-1", id="resold-holder"),
]


@pytest.mark.parametrize(("change", "domain", "lands_in"), ROUTES)
def test_mail_lands_in_the_active_holder_or_is_held_back(
    live: SandboxPlatform,
    change: Callable[[SandboxPlatform], None],
    domain: str,
    lands_in: str | None,
) -> None:
    flow = MailFlow(live, FlowSpec(domains=(domain,), stores=("archive",)))
    change(live)
    writes = live.write_calls()
    totals = flow.deliver(3)
    assert live.write_calls() == writes  # deliveries are not platform writes of the runner
    if lands_in is None:
        assert totals == FlowTotals(delivered=0, held_back=3)
        assert flow.waiting() == 3
    else:
        assert totals == FlowTotals(delivered=3)
        assert len(_new_ids(live, lands_in, "archive")) == 3
        assert flow.waiting() == 0


def test_after_the_domain_moves_new_mail_lands_in_the_new_account(
    live: SandboxPlatform, clock: TickingClock
) -> None:
    flow = MailFlow(live)  # default: every domain of every active direct account
    assert flow.domains == ("acme.com", "acme.net")
    assert flow.deliver(4) == FlowTotals(delivered=4)  # round robin: 2 domains x 2 stores
    assert [len(_new_ids(live, "C-1001", s)) for s in ("quarantine", "archive")] == [2, 2]
    _moved(live)
    clock.tick()
    assert flow.deliver(4) == FlowTotals(delivered=4)
    assert [len(_new_ids(live, "A-2", s)) for s in ("quarantine", "archive")] == [1, 1]
    assert [len(_new_ids(live, "C-1001", s)) for s in ("quarantine", "archive")] == [3, 3]
    assert flow.accounts == {"C-1001", "A-2"}
    [info] = [m for m in live.list_messages("A-2", "archive").messages]
    assert info.received_at == clock.now().replace(microsecond=0)


def test_held_back_mail_is_delivered_first_once_an_active_account_holds_the_domain(
    live: SandboxPlatform, clock: TickingClock, sandbox: Path
) -> None:
    flow = MailFlow(live, FlowSpec(domains=("acme.com",), stores=("quarantine",)))
    _cancelled(live)
    assert flow.deliver(3) == FlowTotals(held_back=3)
    dump = dump_sandbox(sandbox)
    assert dump["mail"]["held_back_by_domain"] == {"acme.com": 3}
    assert dump["accounts"][0]["held_back_messages"] == 3  # C-1001 holds it, cancelled
    assert flow.deliver(0) == FlowTotals()  # still no active holder: still waiting
    _new_account(live, "acme-new.example")
    live.move_domain("acme.com", "C-1001", "A-2", "move")
    clock.tick(60)
    assert flow.deliver(1) == FlowTotals(delivered=1, released=3)
    assert flow.waiting() == 0
    ids = _new_ids(live, "A-2", "quarantine")
    assert [int(i[3:11]) for i in ids] == [1, 2, 3, 4]  # held back ones first, numbers kept
    assert dump_sandbox(sandbox)["mail"] == {
        "delivered": 4,
        "expired": 0,
        "held_back": 0,
        "held_back_by_domain": {},
    }


def test_held_back_mail_of_other_domains_stays_queued(live: SandboxPlatform) -> None:
    _detached(live)
    MailFlow(live, FlowSpec(domains=("acme.com",))).deliver(2)
    live.attach_domain("A-1", "acme.com", "attach")
    other = MailFlow(live, FlowSpec(domains=("initech.example",)))
    assert other.deliver(1) == FlowTotals(delivered=1)  # not released by a flow without it
    assert MailFlow(live, FlowSpec(domains=("acme.com",))).deliver(0).released == 2


# -- expiry ----------------------------------------------------------------------------------
def test_expire_removes_the_oldest_first_and_only_from_the_flows_accounts(
    live: SandboxPlatform, clock: TickingClock, sandbox: Path
) -> None:
    flow = MailFlow(live, FlowSpec(domains=("acme.com",)))
    flow.deliver(4)
    _moved(live)
    for _ in range(4):
        clock.tick()
        flow.deliver(1)
    ours = "account IN ('C-1001', 'A-2')"
    outside = _rows(sandbox, f"NOT {ours}")
    before = _rows(sandbox, ours)
    assert flow.expire(5) == 10  # per store
    after = _rows(sandbox, ours)
    for store in ("quarantine", "archive"):
        kept = sorted((r[2], r[3]) for r in before if r[1] == store)
        assert sorted((r[2], r[3]) for r in after if r[1] == store) == kept[5:]
    assert _rows(sandbox, f"NOT {ours}") == outside
    assert dump_sandbox(sandbox)["mail"]["expired"] == 10


def test_expire_reaches_new_mail_once_the_old_is_gone(live: SandboxPlatform) -> None:
    flow = MailFlow(live, FlowSpec(domains=("acme.com",), stores=("quarantine",)))
    flow.deliver(3)
    messages = live.list_messages("C-1001", "quarantine").messages
    assert len(messages) == 12 + 3
    assert flow.expire(14) == 14
    assert _ids(live, "C-1001", "quarantine") == [max((m.received_at, m.id) for m in messages)[1]]
    assert flow.expire(10) == 1
    assert flow.expire(10) == 0
    assert live.count_messages("C-1001", "archive")[0] == 25  # not the flow's store


def test_the_oldest_is_chosen_by_received_at_then_id(live: SandboxPlatform) -> None:
    flow = MailFlow(live, FlowSpec(domains=("acme.com",), stores=("archive",)))
    before = sorted((m.received_at, m.id) for m in live.list_messages("C-1001", "archive").messages)
    flow.expire(3)
    after = sorted((m.received_at, m.id) for m in live.list_messages("C-1001", "archive").messages)
    assert after == before[3:]


# -- ids and content -------------------------------------------------------------------------
def test_ids_are_unique_and_filename_safe_across_thousands_of_deliveries(
    live: SandboxPlatform, sandbox: Path
) -> None:
    flow = MailFlow(live, FlowSpec(domains=("acme.com", "acme.net", "initech.example"), size=64))
    fixture_ids = {r[3] for r in _rows(sandbox)}
    assert flow.deliver(2500) == FlowTotals(delivered=2500)
    MailFlow(live, FlowSpec(domains=("acme.com",), size=64)).deliver(500)  # a second flow
    delivered = [r[3] for r in _rows(sandbox) if r[3] not in fixture_ids]
    assert len(delivered) == len(set(delivered)) == 3000
    assert all(DELIVERED_ID.fullmatch(i) and MESSAGE_ID.fullmatch(i) for i in delivered)


@pytest.mark.parametrize(
    ("body", "size"), [("text", 4096), ("mail-like", 20 * 1024), ("mail-like", 700)]
)
def test_fetched_bytes_match_the_stored_digest(live: SandboxPlatform, body: str, size: int) -> None:
    flow = MailFlow(live, FlowSpec(domains=("initech.example",), size=size, body=body))  # type: ignore[arg-type]
    flow.deliver(4)
    for store in ("quarantine", "archive"):
        for info in live.list_messages("A-1", store).messages:
            raw = live.fetch_message("A-1", store, info.id)
            assert hashlib.sha256(raw).hexdigest() == info.sha256
            assert len(raw) == info.size == size
            message = email.message_from_bytes(raw)
            assert message["Message-ID"] == f"<{info.id}@a-1.sandbox.example>"
            assert email.utils.parsedate_to_datetime(message["Date"]) == info.received_at
            assert info.received_at == START.replace(microsecond=0)
            assert not message.defects
            kinds = [part.get_content_type() for part in message.walk()]
            if body == "text":
                assert kinds == ["text/plain"]
            else:
                assert kinds == ["multipart/mixed", "text/plain", "application/octet-stream"]


def test_a_fixture_may_ask_for_mail_like_bodies(tmp_path: Path) -> None:
    mail_like = "archive: {messages: 5, size: 20KiB, body: mail-like}"
    text = FIXTURE.replace("archive: {messages: 25, size: 1500}", mail_like)
    with SandboxPlatform(make_sandbox(tmp_path, text)) as platform:
        for info in platform.list_messages("C-1001", "archive").messages:
            raw = platform.fetch_message("C-1001", "archive", info.id)
            assert hashlib.sha256(raw).hexdigest() == info.sha256 and len(raw) == 20 * 1024
            assert email.message_from_bytes(raw).get_content_type() == "multipart/mixed"
        quarantine = platform.list_messages("C-1001", "quarantine").messages[0]
        raw = platform.fetch_message("C-1001", "quarantine", quarantine.id)
        assert email.message_from_bytes(raw).get_content_type() == "text/plain"  # the default


@pytest.mark.parametrize("index", [1, 2, 3])
def test_mail_like_compresses_like_real_mail(index: int) -> None:
    raw = generate_message(7, "C-1001", "archive", index, 20 * 1024, "mail-like").raw
    ratio = len(raw) / len(gzip.compress(raw, 6))
    assert 1.2 <= ratio <= 1.45, ratio  # measured: 1.32
    text = generate_message(7, "C-1001", "archive", index, 20 * 1024, "text").raw
    assert len(text) / len(gzip.compress(text, 6)) > 3  # the text kind is much friendlier


# -- specs and errors ------------------------------------------------------------------------
BAD_SPECS = [
    pytest.param(FlowSpec(stores=()), "stores must be among", id="no-store"),
    pytest.param(FlowSpec(stores=("inbox",)), "stores must be among", id="bad-store"),  # type: ignore[arg-type]
    pytest.param(FlowSpec(size=0), "1 byte to 64 MiB", id="size-0"),
    pytest.param(FlowSpec(size=65 * 1024 * 1024), "1 byte to 64 MiB", id="size-huge"),
    pytest.param(FlowSpec(body="html"), "body must be one of", id="body"),  # type: ignore[arg-type]
    pytest.param(FlowSpec(domains=("not_a_domain",)), "'not_a_domain'", id="domain"),
]


@pytest.mark.parametrize(("spec", "message"), BAD_SPECS)
def test_unusable_specs_are_config_errors(
    platform: SandboxPlatform, spec: FlowSpec, message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        MailFlow(platform, spec)


def test_a_sandbox_without_an_active_direct_account_needs_domains(tmp_path: Path) -> None:
    fixture = "accounts:\n  - {id: R-1, type: reseller, name: R}\n"
    with SandboxPlatform(make_sandbox(tmp_path, fixture)) as platform:
        with pytest.raises(ConfigError, match="no domain for the mail flow"):
            MailFlow(platform)
        assert MailFlow(platform, FlowSpec(domains=("nobody.example",))).deliver(1).held_back == 1


@pytest.mark.parametrize("count", [-1, 1.5, True])
def test_counts_must_be_whole_and_not_negative(platform: SandboxPlatform, count: object) -> None:
    flow = MailFlow(platform)
    with pytest.raises(ValueError, match="count"):
        flow.deliver(count)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="count"):
        flow.expire(count)  # type: ignore[arg-type]


def test_an_old_sandbox_file_names_its_schema_version(sandbox: Path) -> None:
    with sqlite3.connect(sandbox) as conn:
        conn.execute("UPDATE meta SET value = '1' WHERE key = 'schema_version'")
    with pytest.raises(ConfigError, match="schema version 1, this version needs 2: re-create"):
        SandboxPlatform(sandbox)
    with pytest.raises(ConfigError, match="schema version 1"):
        dump_sandbox(sandbox)


# -- pacing ----------------------------------------------------------------------------------
@dataclass
class FakeTime:
    """`time.monotonic` for `run`, moved by the stop event's waits: no real sleeping."""

    now: float = 1000.0

    def __call__(self) -> float:
        return self.now


class FakeStop(threading.Event):
    def __init__(self, time: FakeTime) -> None:
        super().__init__()
        self.time = time
        self.waits: list[float] = []

    def wait(self, timeout: float | None = None) -> bool:
        assert timeout is not None and timeout >= 0
        self.waits.append(timeout)
        self.time.now += timeout
        return self.is_set()


@pytest.mark.parametrize(
    ("deliver", "expire", "duration", "delivered", "expired"),
    [
        (2.5, 1.0, 4.0, 10, 4 * 2),  # expire's rate is per store
        (0.4, 0.0, 10.0, 4, 0),  # fractional rates accumulate
        (0.0, 0.5, 3.0, 0, 1 * 2),
        (350.0, 0.0, 1.0, 350, 0),  # more than one batch per tick
        (0.0, 0.0, 2.0, 0, 0),
    ],
)
def test_run_keeps_the_rates(
    live: SandboxPlatform,
    deliver: float,
    expire: float,
    duration: float,
    delivered: int,
    expired: int,
) -> None:
    time = FakeTime()
    stop = FakeStop(time)
    flow = MailFlow(live, FlowSpec(domains=("initech.example", "acme.com"), size=64))
    totals = flow.run(stop, deliver, expire, duration, monotonic=time)
    assert totals == FlowTotals(delivered=delivered, expired=expired)
    assert time.now == pytest.approx(1000.0 + duration, abs=0.01)
    assert all(w <= 0.5 for w in stop.waits)


def test_run_stops_when_told(platform: SandboxPlatform) -> None:
    stop = threading.Event()
    stop.set()
    assert MailFlow(platform).run(stop, 100.0, 100.0) == FlowTotals()
    with pytest.raises(ValueError, match="rates"):
        MailFlow(platform).run(threading.Event(), -1.0, 0.0)


# -- the command line ------------------------------------------------------------------------
def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if "proxy" not in k.lower()}
    env["PYTHONPATH"] = str(ROOT)
    return env


def _run(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        cli(*args), cwd=cwd, env=_env(), capture_output=True, text=True, timeout=120
    )


def test_sandbox_mail_count_end_to_end(tmp_path: Path) -> None:
    (tmp_path / "fixture.yml").write_text(FIXTURE, encoding="utf-8")
    init = _run("sandbox", "init", "s.db", "--fixture", "fixture.yml", cwd=tmp_path)
    assert init.returncode == 0, init.stderr
    mail = _run(
        "sandbox", "mail", "s.db", "--count", "6", "--domain", "acme.com", "--domain",
        "globex.io", "--store", "archive", "--size", "20KiB", "--body", "mail-like",
        cwd=tmp_path,
    )  # fmt: skip
    assert mail.returncode == 0, mail.stderr
    assert mail.stdout.strip() == "mail flow: delivered 3, held back 3, released 0, expired 0"
    dump = json.loads(_run("sandbox", "dump", "s.db", cwd=tmp_path).stdout)
    assert dump["mail"]["held_back_by_domain"] == {"globex.io": 3}
    assert [a["archive_messages"] for a in dump["accounts"][:2]] == [25 + 3, 0]
    assert dump["writes"] == 0  # no platform write
    with SandboxPlatform(tmp_path / "s.db") as platform:
        for message_id in _new_ids(platform, "C-1001", "archive"):
            raw = platform.fetch_message("C-1001", "archive", message_id)
            assert len(raw) == 20 * 1024 and b"Content-Transfer-Encoding: base64" in raw


def test_deliveries_in_another_process_interleave_with_platform_writes(tmp_path: Path) -> None:
    sandbox = make_sandbox(tmp_path, name="s.db")
    proc = subprocess.Popen(
        cli("sandbox", "mail", "s.db", "--count", "400", "--size", "512"),
        cwd=tmp_path, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        with SandboxPlatform(sandbox) as platform:
            for n in range(40):  # runs while the other process delivers, or before, or after
                platform.charge("R-301", Decimal("1.00"), "fee", f"fee:{n}")
                platform.import_message(
                    "A-1", "archive", f"m-{n}", b"Subject: x\r\n\r\nx\r\n", f"i{n}"
                )
        out, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    assert out == "mail flow: delivered 400, held back 0, released 0, expired 0\n"
    dump = dump_sandbox(sandbox)
    assert (dump["writes"], len(dump["charges"]), dump["mail"]["delivered"]) == (80, 40, 400)
    acme = dump["accounts"][0]
    assert acme["quarantine_messages"] + acme["archive_messages"] == 12 + 25 + 400


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["s.db"], "nothing to do"),
        (["s.db", "--count", "1", "--deliver", "2"], "--count delivers at once"),
        (["s.db", "--count", "1", "--size", "8KB"], "is not a size"),
        (["s.db", "--count", "1", "--size", "0"], "between 1 byte and 64 MiB"),
        (["s.db", "--count", "1", "--size", "65MiB"], "between 1 byte and 64 MiB"),
        (["s.db", "--count", "1", "--body", "html"], "'html' is not one of"),
        (["missing.db", "--count", "1"], "error: no sandbox at missing.db"),
        (["s.db", "--count", "1", "--domain", "x_y"], "mail flow domain 'x_y'"),
    ],
)
def test_sandbox_mail_refusals_are_clean(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    args: list[str],
    message: str,
) -> None:
    make_sandbox(tmp_path, name="s.db")
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as exited:
        main(["sandbox", "mail", *args])
    assert exited.value.code == 1
    captured = capsys.readouterr()
    assert message in captured.err and "Traceback" not in captured.err
    assert captured.out == ""


def _delivered(sandbox: Path) -> int:
    uri = f"{sandbox.resolve().as_uri()}?mode=ro"
    with closing(sqlite3.connect(uri, uri=True)) as conn:
        row = conn.execute("SELECT value FROM meta WHERE key = 'mail_delivered'").fetchone()
    return int(row[0]) if row else 0


def test_sandbox_mail_stops_cleanly_on_sigterm(tmp_path: Path) -> None:
    """The summary after SIGTERM tells what the flow did (it used to say 0: a SIGTERM inside
    Thread.join on Python 3.11 marked the running thread as finished, totals lost)."""
    sandbox = make_sandbox(tmp_path, name="s.db")
    proc = subprocess.Popen(
        cli("sandbox", "mail", "s.db", "--deliver", "500", "--expire", "1"),
        cwd=tmp_path, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        banner = proc.stdout.readline()  # printed once the flow is open
        assert banner.startswith("mail flow: 2 domain(s) (acme.com, acme.net), deliver 500/s")
        deadline = time.monotonic() + 60
        while _delivered(sandbox) == 0 and time.monotonic() < deadline:
            time.sleep(0.05)  # waits for a condition (the first delivery), not for time
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    found = re.fullmatch(r"mail flow: delivered (\d+), held back 0, released 0, expired \d+\n", out)
    assert found, out
    assert int(found.group(1)) == _delivered(sandbox) > 0


def test_sandbox_serve_runs_the_flow_in_the_background(tmp_path: Path) -> None:
    sandbox = make_sandbox(tmp_path, name="s.db")
    args = ("sandbox", "serve", str(sandbox), "--port", "0", "--deliver", "20", "--expire", "1",
            "--mail-size", "2KiB", "--mail-body", "mail-like",
            "--mail-store", "quarantine")  # fmt: skip
    served = Served.start(args, tmp_path, _env(), tmp_path / "serve.log")
    try:
        assert served.url, (served.line, served.log.read_text())
        assert served.proc.stdout is not None
        banner = served.proc.stdout.readline()  # the flow starts right after this line
        code, out, err = served.stop(signal.SIGTERM)
    finally:
        served.kill()
    assert code == 0 and "Traceback" not in err, err
    assert banner.startswith("mail flow: 2 domain(s)") and "2048 B mail-like" in banner
    assert re.fullmatch(r"mail flow: delivered \d+, held back 0, released 0, expired \d+\n", out)
    assert dump_sandbox(sandbox)["accounts"][0]["archive_messages"] == 25  # quarantine only


def test_fixture_body_must_be_a_known_kind(tmp_path: Path) -> None:
    from transfer_runner.errors import ManifestError
    from transfer_runner.platforms.sandbox.fixture import load_fixture

    path = tmp_path / "f.yml"
    path.write_text(
        textwrap.dedent(
            """\
            accounts:
              - id: C-1
                type: direct
                name: One
                archive: {messages: 1, body: html}
            """
        ),
        encoding="utf-8",
    )
    with pytest.raises(ManifestError, match=r"5:\d+: accounts\[0\]\.archive\.body: 'html'"):
        load_fixture(path)


def test_the_sandbox_commands_as_an_api(tmp_path: Path) -> None:
    """What the CLI is the skin of: results, no printing; a wrong combination is refused."""
    from transfer_runner.errors import ConfigError
    from transfer_runner.sandbox_commands import MailRates, sandbox_dump, sandbox_mail

    sandbox = make_sandbox(tmp_path, name="s.db")
    said: list[str] = []
    totals = sandbox_mail(str(sandbox), MailRates(), count=5, say=said.append)
    assert (totals.delivered, totals.held_back, said) == (5, 0, [])
    assert sandbox_dump(str(sandbox))["mail"]["delivered"] == 5
    with pytest.raises(ConfigError, match="--count delivers at once"):
        sandbox_mail(str(sandbox), MailRates(deliver_per_second=1), count=5)
    with pytest.raises(ConfigError, match="no sandbox at"):
        sandbox_dump(str(tmp_path / "missing.db"))

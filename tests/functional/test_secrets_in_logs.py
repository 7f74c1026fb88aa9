"""No credential reaches a log line, a report or the state store, even at `-vvv` with every
library logging at DEBUG (botocore prints headers, the signed canonical request and bodies)."""

from __future__ import annotations

import io
import logging
import re
from collections.abc import Iterator

import pytest
from click.testing import CliRunner

from tests.builders import World
from transfer_runner.cli import main
from transfer_runner.redaction import MASK, RedactingFilter, install_redaction

ACCESS_KEY_ID = "AKIAXRECOGNISABLE7Q"
SECRET_ACCESS_KEY = "Secr3t+Access/Key-recognisable-0123456789ab"
SESSION_TOKEN = "IQoJb3JpZ2luX2VjSESSION+token/recognisable==" + "Zz9" * 40
CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": ACCESS_KEY_ID,
    "AWS_SECRET_ACCESS_KEY": SECRET_ACCESS_KEY,
    "AWS_SESSION_TOKEN": SESSION_TOKEN,
}
LIBRARY_LOGGERS = ("botocore", "boto3", "urllib3", "s3transfer", "moto", "transfer_runner")


@pytest.fixture
def debug_logs() -> Iterator[io.StringIO]:
    """Root and every library logger at DEBUG into one handler, restored afterwards.

    The handler is attached before the CLI starts, as `logging.basicConfig` attaches the
    stderr handler of a real run before `install_redaction` filters it."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    handler.setLevel(logging.DEBUG)
    root = logging.getLogger()
    loggers = [root, *(logging.getLogger(name) for name in LIBRARY_LOGGERS)]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.DEBUG)
    root.addHandler(handler)
    try:
        yield stream
    finally:
        root.removeHandler(handler)
        for logger, level in zip(loggers, levels, strict=True):
            logger.setLevel(level)


def _cli(world: World, *args: str) -> tuple[int, str]:
    """`transfer-runner -vvv ARGS` in this process; exit code and everything it printed."""
    base = [
        "-vvv",
        "--platform",
        f"sandbox:{world.sandbox}",
        "--state",
        f"sqlite:{world.state}",
        "--export-to",
        world.export_to,
        "--part-size",
        "1",
    ]
    with CliRunner().isolation() as (_out, _err, mixed):
        try:
            main([*base, *args])
        except SystemExit as exc:
            code = int(exc.code or 0)
        else:  # pragma: no cover - main always exits
            code = 0
        output = mixed.getvalue().decode("utf-8", "replace")
    return code, output


@pytest.fixture
def recognisable_credentials(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    """Credentials that moto accepts and that no log line would contain by accident.

    Set after `world` started moto, which puts its own fake keys in the environment."""
    for name, value in CREDENTIALS.items():
        monkeypatch.setenv(name, value)
    monkeypatch.chdir(world.root)


def _secrets_in(text: str) -> list[str]:
    return [name for name, value in CREDENTIALS.items() if value in text]


def _secrets_in_bytes(data: bytes) -> list[str]:
    found = _secrets_in(data.decode("utf-8", "replace"))
    for name, value in CREDENTIALS.items():
        # also as SQLite or a report might store it: UTF-16 or JSON-escaped slashes
        if value.encode("utf-16-le") in data or value.replace("/", "\\/").encode() in data:
            found.append(name)
    return found


def test_full_apply_at_debug_leaks_no_credential(
    world: World, recognisable_credentials: None, debug_logs: io.StringIO
) -> None:
    reports = world.root / "reports"
    reports.mkdir()
    code, applied = _cli(
        world,
        "apply",
        str(world.manifests),
        "--yes",
        "--report-json",
        str(reports / "report.json"),
        "--junit",
        str(reports / "junit.xml"),
    )
    assert code == 0, applied
    outputs = {"apply output": applied}
    for fmt in ("json", "junit", "markdown"):
        code, outputs[f"report --format {fmt}"] = _cli(world, "report", "--format", fmt)
        assert code == 0, outputs[f"report --format {fmt}"]
    code, outputs["status --json"] = _cli(world, "status", "--json")
    assert code == 0

    logs = debug_logs.getvalue()
    _assert_debug_logging_saw_the_signed_requests(logs)
    leaks = {"logs": _secrets_in(logs)}
    leaks.update({name: _secrets_in(text) for name, text in outputs.items()})
    files = [p for p in world.root.rglob("*") if p.is_file()]
    assert {p.name for p in files} >= {"report.json", "junit.xml", "state.db", "sandbox.db"}
    leaks.update({str(p.relative_to(world.root)): _secrets_in_bytes(p.read_bytes()) for p in files})
    assert {where: found for where, found in leaks.items() if found} == {}
    assert f"x-amz-security-token:{MASK}" in logs


def _assert_debug_logging_saw_the_signed_requests(logs: str) -> None:
    """The test means something only if botocore really logged what it signs."""
    assert "DEBUG botocore" in logs
    assert "CanonicalRequest:" in logs
    assert "x-amz-security-token:" in logs  # the session token's header line was logged
    assert "Signature:" in logs


def test_credentials_from_a_web_identity_role_are_masked(
    world: World, monkeypatch: pytest.MonkeyPatch, debug_logs: io.StringIO
) -> None:
    """OIDC in CI: boto3 trades a token file for credentials; botocore logs the STS response
    body, whose `SecretAccessKey` and `SessionToken` are in no environment variable."""
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    token_file = world.root / "web-identity-token"
    token_file.write_text("eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJjaSJ9.c2lnbmF0dXJl", encoding="utf-8")
    monkeypatch.setenv("AWS_WEB_IDENTITY_TOKEN_FILE", str(token_file))
    monkeypatch.setenv("AWS_ROLE_ARN", "arn:aws:iam::123456789012:role/transfer-runner-ci")
    monkeypatch.setenv("AWS_ROLE_SESSION_NAME", "ci")
    monkeypatch.chdir(world.root)
    code, output = _cli(world, "apply", str(world.manifests), "--yes")
    assert code == 0, output
    logs = debug_logs.getvalue()
    assert "AssumeRoleWithWebIdentity" in logs  # the credentials really came from STS
    bodies = _sts_bodies(logs)
    assert bodies, "botocore logged no STS response body"
    for body in bodies:
        assert f"<SecretAccessKey>{MASK}</SecretAccessKey>" in body
        assert f"<SessionToken>{MASK}</SessionToken>" in body
    # The token STS returned signs every S3 request after it, in no environment variable.
    tokens = re.findall(r"(?i)x-amz-security-token['\"]?\s*[:=]\s*b?['\"]?([^'\"\s,}]*)", logs)
    assert tokens and set(tokens) == {MASK}


def _sts_bodies(logs: str) -> list[str]:
    return [line for line in logs.splitlines() if "<SessionToken>" in line]


def test_install_redaction_twice_keeps_one_filter(debug_logs: io.StringIO) -> None:
    """Each in-process CLI run installs the filter again; it replaces, never piles up."""
    handler = logging.StreamHandler(io.StringIO())
    install_redaction([handler])
    install_redaction([handler])
    assert sum(isinstance(f, RedactingFilter) for f in handler.filters) == 1


def test_a_logged_traceback_is_masked(
    recognisable_credentials: None, debug_logs: io.StringIO
) -> None:
    handlers = logging.getLogger().handlers
    install_redaction([h for h in handlers if getattr(h, "stream", None) is debug_logs])
    try:
        raise RuntimeError(f"request failed with token {SESSION_TOKEN}")
    except RuntimeError:
        logging.getLogger("botocore.endpoint").debug("retrying", exc_info=True)
    logs = debug_logs.getvalue()
    assert "RuntimeError: request failed with token ****" in logs
    assert _secrets_in(logs) == []

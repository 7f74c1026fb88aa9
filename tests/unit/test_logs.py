"""Logging: the level a run logs at, JSON lines, a private log file, the libraries kept quiet
below `trace`, and secrets masked on the handler whatever logs them."""

from __future__ import annotations

import json
import logging
import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from transfer_runner.logs import LIBRARIES, configure_logging, level_name
from transfer_runner.redaction import MASK, SECRET_ENV_VARS


@pytest.fixture(autouse=True)
def _restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    levels = {name: logging.getLogger(name).level for name in LIBRARIES}
    yield
    for handler in list(root.handlers):
        root.removeHandler(handler)
    for handler in handlers:
        root.addHandler(handler)
    root.setLevel(level)
    for name, old in levels.items():
        logging.getLogger(name).setLevel(old)


@pytest.mark.parametrize(
    ("log_level", "verbosity", "expected"),
    [(None, -1, "warning"), (None, 0, "warning"), (None, 1, "info"), (None, 2, "debug"),
     (None, 3, "trace"), (None, 7, "trace"), ("error", 3, "error"), ("trace", 0, "trace")],
)  # fmt: skip
def test_the_level_comes_from_log_level_else_from_v(
    log_level: str | None, verbosity: int, expected: str
) -> None:
    assert level_name(log_level, verbosity) == expected


def test_debug_logs_the_runner_and_not_botocore_while_trace_logs_both(tmp_path: Path) -> None:
    log_file = tmp_path / "debug.log"
    configure_logging("debug", 0, "text", str(log_file))
    logging.getLogger("transfer_runner.engine.runner").debug("runner decided")
    logging.getLogger("botocore.endpoint").debug("botocore request")
    logging.getLogger("urllib3.connectionpool").debug("urllib3 request")
    configure_logging("trace", 0, "text", str(tmp_path / "trace.log"))
    logging.getLogger("transfer_runner.engine.runner").debug("runner decided")
    logging.getLogger("botocore.endpoint").debug("botocore request")
    debug, trace = log_file.read_text(), (tmp_path / "trace.log").read_text()
    assert "runner decided" in debug and "botocore" not in debug and "urllib3" not in debug
    assert "runner decided" in trace and "botocore request" in trace


def test_json_lines_carry_time_level_logger_message_and_extras(tmp_path: Path) -> None:
    path = tmp_path / "run.jsonl"
    configure_logging("info", 0, "json", str(path))
    logging.getLogger("transfer_runner.x").info("moved %s", "acme.com", extra={"transfer": "t1"})
    try:
        raise ValueError("boom")
    except ValueError:
        logging.getLogger("transfer_runner.x").exception("failed")
    first, second = (json.loads(line) for line in path.read_text().splitlines())
    assert first["level"] == "info" and first["logger"] == "transfer_runner.x"
    assert first["message"] == "moved acme.com" and first["transfer"] == "t1"
    assert first["time"].endswith("+00:00")
    assert second["level"] == "error" and "ValueError: boom" in second["traceback"]


def test_the_log_file_is_private_and_appended_to(tmp_path: Path) -> None:
    path = tmp_path / "run.log"
    configure_logging("info", 0, "text", str(path))
    logging.getLogger("transfer_runner").info("one")
    configure_logging("info", 0, "text", str(path))
    logging.getLogger("transfer_runner").info("two")
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    lines = path.read_text().splitlines()
    assert [line.rsplit(" ", 1)[1] for line in lines] == ["one", "two"]


@pytest.mark.parametrize("variable", SECRET_ENV_VARS)
def test_every_secret_variable_is_masked_in_the_log(
    variable: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    value = f"s3cr3t-value-of-{variable.lower()}"
    monkeypatch.setenv(variable, value)
    path = tmp_path / "run.log"
    configure_logging("trace", 0, "json", str(path))
    logging.getLogger("botocore.hooks").debug("environment had %s in it", value)
    text = path.read_text()
    assert value not in text and MASK in text


def test_the_list_names_the_platform_token_and_the_aws_keys() -> None:
    assert {
        "TRANSFER_RUNNER_PLATFORM_TOKEN", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN", "AWS_CONTAINER_AUTHORIZATION_TOKEN",
    } <= set(SECRET_ENV_VARS)  # fmt: skip


def test_a_secret_from_a_file_is_masked_too(tmp_path: Path) -> None:
    from transfer_runner.sandbox_commands import serve_token

    token_file = tmp_path / "token"
    token_file.write_text("file-token-0f3c9a71d2\n")
    token_file.chmod(0o600)
    path = tmp_path / "run.log"
    configure_logging("debug", 0, "text", str(path))
    token = serve_token(None, str(token_file))
    logging.getLogger("transfer_runner.http.server").debug("the token is %s", token.value)
    assert "file-token-0f3c9a71d2" not in path.read_text() and MASK in path.read_text()

"""Logging set up once per run: level, text or JSON lines, stderr or a private file, and the
redaction of secrets on every handler.

The runner's own loggers are `transfer_runner.*`. The libraries under it (botocore, boto3,
s3transfer, urllib3) log at WARNING and above unless the level is `trace`, the most verbose,
since at DEBUG they print some 1,700 lines a transfer and every request's headers.
"""

from __future__ import annotations

import json
import logging
import os
import time
from datetime import UTC, datetime

from transfer_runner.errors import ConfigError
from transfer_runner.redaction import install_redaction

__all__ = ["JsonFormatter", "configure_logging", "level_name", "LIBRARIES"]

LIBRARIES = ("botocore", "boto3", "s3transfer", "urllib3")
_TEXT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
_LEVELS = {"error": logging.ERROR, "warning": logging.WARNING, "info": logging.INFO}
_OURS = "_transfer_runner_handler"  # marks the handler `configure_logging` added
_RECORD_FIELDS = set(vars(logging.makeLogRecord({}))) | {"message", "asctime"}


def level_name(log_level: str | None, verbosity: int) -> str:
    """The level a run logs at: `--log-level` when given, else from -v (-q counts as 0)."""
    if log_level:
        return log_level
    return ("warning", "info", "debug", "trace")[min(max(verbosity, 0), 3)]


class JsonFormatter(logging.Formatter):
    """One JSON object a line: time (UTC, ISO 8601), level, logger, message, the record's
    `extra` fields, and the traceback when there is one."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in _RECORD_FIELDS and not key.startswith("_"):
                entry[key] = value if isinstance(value, int | float | bool | None) else str(value)
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            entry["traceback"] = record.exc_text
        return json.dumps(entry, ensure_ascii=False)


def configure_logging(
    log_level: str | None, verbosity: int, log_format: str = "text", log_file: str | None = None
) -> logging.Handler:
    """Give the root logger our handler (stderr, or `log_file` created 0600 and appended to),
    in place of the one an earlier call gave it, and mask secrets on every root handler (a
    host that embeds the CLI keeps its own handlers); return ours."""
    name = level_name(log_level, verbosity)
    handler = _file_handler(log_file) if log_file else logging.StreamHandler()
    handler.setFormatter(JsonFormatter() if log_format == "json" else _text_formatter())
    setattr(handler, _OURS, True)
    root = logging.getLogger()
    for old in [h for h in root.handlers if getattr(h, _OURS, False)]:
        root.removeHandler(old)
        old.close()
    root.addHandler(handler)
    root.setLevel(_LEVELS.get(name, logging.DEBUG))
    for library in LIBRARIES:
        logging.getLogger(library).setLevel(logging.DEBUG if name == "trace" else logging.WARNING)
    install_redaction()
    return handler


def _text_formatter() -> logging.Formatter:
    """`2026-12-04T10:00:00Z INFO logger: message`, in UTC like everything the runner records."""
    formatter = logging.Formatter(_TEXT, datefmt="%Y-%m-%dT%H:%M:%SZ")
    formatter.converter = time.gmtime
    return formatter


def _file_handler(path: str) -> logging.FileHandler:
    """A handler appending to `path`, which is created readable by its owner only: logs name
    customers, accounts and domains."""
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600))
        return logging.FileHandler(path, mode="a", encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"--log-file {path}: {exc.strerror}") from None

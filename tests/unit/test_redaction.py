"""Credentials never reach a log line, whatever a library logs."""

from __future__ import annotations

import logging

import pytest

from transfer_runner.redaction import MASK, RedactingFilter

SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
TOKEN = "IQoJb3JpZ2luX2VjEJr//////////session-token"


@pytest.mark.parametrize(
    "line",
    [
        "{'Authorization': b'AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20261129/us-east-1/s3/"
        "aws4_request, SignedHeaders=host;x-amz-date, Signature=f3149e30787014', "
        "'X-Amz-Date': b'x'}",
        f"{{'X-Amz-Security-Token': b'{TOKEN}', 'User-Agent': b'Boto3'}}",
        f"GET /b/k?X-Amz-Credential=AKIDEXAMPLE%2F2026&X-Amz-Security-Token={TOKEN}"
        "&X-Amz-Signature=ab12",
        f"Authorization: Bearer {TOKEN}",
        f"aws_secret_access_key={SECRET}",
        f"the secret {SECRET} appeared in an exception",
    ],
)
def test_secrets_are_masked(line: str) -> None:
    flt = RedactingFilter([SECRET, TOKEN])
    record = logging.LogRecord("botocore", logging.DEBUG, __file__, 1, "%s", (line,), None)
    assert flt.filter(record) is True
    message = record.getMessage()
    assert SECRET not in message and TOKEN not in message
    assert "AKIDEXAMPLE" not in message or "Credential" not in line
    assert "f3149e30787014" not in message
    assert MASK in message


def test_harmless_lines_are_untouched() -> None:
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "exported %d messages", (5,), None)
    RedactingFilter([SECRET]).filter(record)
    assert record.getMessage() == "exported 5 messages"

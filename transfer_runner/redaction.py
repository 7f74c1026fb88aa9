"""Keep credentials out of logs: a logging filter that masks them in every record.

botocore's debug logs print request headers, including `Authorization` (with the access key
id) and `X-Amz-Security-Token`; our own messages never carry secrets, but a library's might.
The filter masks header values and the values of the AWS/transfer-runner secret variables.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Iterable

__all__ = ["RedactingFilter", "install_redaction", "SECRET_ENV_VARS", "MASK"]

MASK = "****"
SECRET_ENV_VARS = (
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_SECURITY_TOKEN",
    "AWS_ACCESS_KEY_ID",
    "TRANSFER_RUNNER_PLATFORM_TOKEN",
)
_PATTERNS = (
    # a header in a dict or a line: 'Authorization': b'...', X-Amz-Security-Token: ...
    re.compile(
        r"(?i)((?:authorization|x-amz-security-token|x-amz-signature|x-amz-credential)"
        r"['\"]?\s*[:=]\s*b?['\"])([^'\"]*)"
    ),
    re.compile(r"(?i)(\bbearer\s+)([A-Za-z0-9._~+/=-]+)"),
    # query-string and header fragments: Signature=..., Credential=..., X-Amz-Security-Token=...
    re.compile(
        r"(?i)(\b(?:signature|credential|x-amz-signature|x-amz-credential|"
        r"x-amz-security-token|aws_secret_access_key|aws_session_token)=)([^&,\s'\"]+)"
    ),
)


class RedactingFilter(logging.Filter):
    """Replaces secret values in a record's final message with `****`."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        super().__init__()
        self._secrets = sorted({s for s in secrets if s and len(s) >= 4}, key=len, reverse=True)

    def redact(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, MASK)
        for pattern in _PATTERNS:
            text = pattern.sub(lambda m: m.group(1) + MASK, text)
        return text

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        redacted = self.redact(message)
        if redacted != message:
            record.msg, record.args = redacted, None
        return True


def install_redaction(handlers: Iterable[logging.Handler] | None = None) -> RedactingFilter:
    """Attach the filter to the given handlers (default: the root logger's)."""
    flt = RedactingFilter(os.environ.get(name, "") for name in SECRET_ENV_VARS)
    for handler in handlers if handlers is not None else logging.getLogger().handlers:
        handler.addFilter(flt)
    return flt

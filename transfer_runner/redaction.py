"""Keep credentials out of logs: a logging filter that masks them in every record.

botocore's debug logs print request headers, including `Authorization` (with the access key
id) and `X-Amz-Security-Token`, the canonical request that is signed (with an
`x-amz-security-token:` line), and response bodies, which for STS and the container and
instance credential endpoints hold a `SecretAccessKey` and a `SessionToken`. Our own messages
never carry secrets, but a library's might. The filter masks the values of the AWS and
transfer-runner secret variables wherever they appear, and the values of those headers and
fields whatever their origin, in the message, a logged traceback and a stack.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Iterable

__all__ = ["RedactingFilter", "install_redaction", "redact_also", "SECRET_ENV_VARS", "MASK"]

MASK = "****"
SECRET_ENV_VARS = (
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_SECURITY_TOKEN",
    "AWS_ACCESS_KEY_ID",
    "AWS_CONTAINER_AUTHORIZATION_TOKEN",  # ECS/EKS pod identity credential endpoint
    "TRANSFER_RUNNER_PLATFORM_TOKEN",
    "TRANSFER_RUNNER_SANDBOX_TOKEN",
    "TRANSFER_RUNNER_NOTIFY_URL",  # a chat webhook's URL is its credential
)
_HEADERS = r"authorization|x-amz-security-token|x-amz-signature|x-amz-credential"
_FIELDS = r"secretaccesskey|secret_access_key|sessiontoken|session_token|token"
_PATTERNS = (
    # a header in a dict or a line: 'Authorization': b'...', X-Amz-Security-Token: ...
    re.compile(rf"(?i)((?:{_HEADERS})['\"]?\s*[:=]\s*b?['\"])([^'\"]*)"),
    # a header line without quotes, as in the canonical request botocore signs and logs
    re.compile(rf"(?im)^(\s*(?:{_HEADERS})\s*:[ \t]*)(\S[^\r\n]*)"),
    re.compile(r"(?i)(\bbearer\s+)([A-Za-z0-9._~+/=-]+)"),
    # query-string and header fragments: Signature=..., Credential=..., X-Amz-Security-Token=...
    re.compile(
        r"(?i)(\b(?:signature|credential|x-amz-signature|x-amz-credential|"
        r"x-amz-security-token|aws_secret_access_key|aws_session_token)\s*=\s*)([^&,\s'\"]+)"
    ),
    # credentials in a response body: STS XML, container/instance-metadata JSON
    re.compile(r"(?i)(<(SecretAccessKey|SessionToken)>)([^<]*)(?=</\2>)"),
    re.compile(rf"(?i)([\"'](?:{_FIELDS})[\"']\s*:\s*[\"'])([^\"']*)"),
)


class RedactingFilter(logging.Filter):
    """Replaces secret values in a record's final message, traceback and stack with `****`."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        super().__init__()
        self._secrets = sorted({s for s in secrets if s and len(s) >= 4}, key=len, reverse=True)

    def redact(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, MASK)
        for pattern in _PATTERNS:
            text = pattern.sub(_masked, text)
        return text

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        redacted = self.redact(message)
        if redacted != message:
            record.msg, record.args = redacted, None
        if record.exc_info and not record.exc_text:
            # Formatters reuse `exc_text` when it is set: render the traceback once, masked.
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = self.redact(record.exc_text)
        if record.stack_info:
            record.stack_info = self.redact(record.stack_info)
        return True


def _masked(match: re.Match[str]) -> str:
    return match.group(1) + MASK


_ALSO: set[str] = set()  # secrets that came from elsewhere than the environment


def redact_also(secret: str) -> None:
    """Mask `secret` as well (one read from a file, or generated), on the root logger's
    handlers now and on any handler `install_redaction` equips later."""
    _ALSO.add(secret)
    install_redaction()


def install_redaction(handlers: Iterable[logging.Handler] | None = None) -> RedactingFilter:
    """Attach a filter knowing the secrets now in the environment (and those given to
    `redact_also`) to the given handlers (default: the root logger's), replacing any filter
    an earlier call attached."""
    flt = RedactingFilter([*(os.environ.get(name, "") for name in SECRET_ENV_VARS), *_ALSO])
    for handler in handlers if handlers is not None else logging.getLogger().handlers:
        for old in [f for f in handler.filters if isinstance(f, RedactingFilter)]:
            handler.removeFilter(old)
        handler.addFilter(flt)
    return flt

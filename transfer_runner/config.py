"""Settings from flags and environment variables, resolved once into a frozen dataclass."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from transfer_runner.errors import ConfigError

__all__ = [
    "COMPRESSIONS",
    "Settings",
    "resolve_settings",
    "ENV",
    "DEFAULT_PLATFORM_URL",
    "DEFAULT_STATE_URL",
]

ENV = {
    "platform": "TRANSFER_RUNNER_PLATFORM",
    "state": "TRANSFER_RUNNER_STATE",
    "export_to": "TRANSFER_RUNNER_EXPORT_TO",
    "playbook": "TRANSFER_RUNNER_PLAYBOOK",
    "sse": "TRANSFER_RUNNER_SSE",
    "sse_kms_key_id": "TRANSFER_RUNNER_SSE_KMS_KEY_ID",
}
DEFAULT_PLATFORM_URL = "sandbox:.transfer-runner/sandbox.db"
DEFAULT_STATE_URL = "sqlite:.transfer-runner/state.db"

# Server-side encryption and part compression of exports (`s3_client` uses these; config
# imports nothing of the packages it configures).
SSE = Literal["AES256", "aws:kms"]
Compression = Literal["auto", "zstd", "gzip", "none"]
COMPRESSIONS: tuple[Compression, ...] = ("auto", "zstd", "gzip", "none")


@dataclass(frozen=True)
class Settings:
    """Where the platform, state and exports are; how to export. Never holds a secret."""

    platform: str = DEFAULT_PLATFORM_URL
    state: str = DEFAULT_STATE_URL
    export_to: str | None = None
    playbook: str | None = None
    sse: SSE | None = None
    sse_kms_key_id: str | None = None
    part_size_mib: int = 32
    compression: Compression = "auto"
    upload_workers: int = 4
    verbosity: int = 0


def resolve_settings(flags: Mapping[str, object], env: Mapping[str, str] | None = None) -> Settings:
    """Flags win over environment variables, which win over defaults."""
    env = os.environ if env is None else env
    values: dict[str, object] = {}
    for field_name, var in ENV.items():
        flag = flags.get(field_name)
        values[field_name] = flag if flag not in (None, "") else (env.get(var) or None)
    for key in ("part_size_mib", "compression", "upload_workers", "verbosity"):
        if flags.get(key) is not None:
            values[key] = flags[key]
    settings = Settings(
        platform=str(values.pop("platform") or DEFAULT_PLATFORM_URL),
        state=str(values.pop("state") or DEFAULT_STATE_URL),
        **values,  # type: ignore[arg-type]
    )
    _check(settings)
    return settings


def _check(settings: Settings) -> None:
    if settings.sse not in (None, "AES256", "aws:kms"):
        raise ConfigError(f"--sse must be AES256 or aws:kms, not {settings.sse!r}")
    if settings.sse_kms_key_id and settings.sse != "aws:kms":
        raise ConfigError("--sse-kms-key-id needs --sse aws:kms")
    if settings.compression not in COMPRESSIONS:
        raise ConfigError(
            f"--compression must be {', '.join(COMPRESSIONS)}, not {settings.compression!r}"
        )
    if settings.upload_workers < 1:
        raise ConfigError("--upload-workers must be at least 1")
    if settings.part_size_mib < 1:
        raise ConfigError("--part-size must be at least 1 MiB")
    if settings.export_to is not None and not settings.export_to.startswith("s3://"):
        raise ConfigError(f"--export-to must be s3://BUCKET/PREFIX, not {settings.export_to!r}")

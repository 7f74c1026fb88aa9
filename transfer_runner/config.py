"""Settings from flags, environment variables and a config file, resolved once into a frozen
dataclass; flag > environment > file > default, and `resolve` says which gave each value."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from transfer_runner.errors import ConfigError

__all__ = [
    "COMPRESSIONS",
    "ConfigFile",
    "LOG_FORMATS",
    "LOG_LEVELS",
    "OPTIONS",
    "Option",
    "Resolved",
    "resolve",
    "Settings",
    "resolve_settings",
    "ENV",
    "DEFAULT_PLATFORM_URL",
    "DEFAULT_STATE_URL",
]


@dataclass(frozen=True)
class Option:
    """One global setting: its `Settings` field, its flag (also its key in a config file), its
    environment variable and what type a config file must give."""

    field: str
    flag: str
    env: str | None
    kind: type = str
    choices: tuple[str, ...] = ()

    @property
    def key(self) -> str:
        """The key in `transfer-runner.toml`: the flag without its dashes."""
        return self.flag.removeprefix("--")


# Server-side encryption and part compression of exports (`s3_client` uses these; config
# imports nothing of the packages it configures).
SSE = Literal["AES256", "aws:kms"]
Compression = Literal["auto", "zstd", "gzip", "none"]
COMPRESSIONS: tuple[Compression, ...] = ("auto", "zstd", "gzip", "none")
# `trace` is `debug` with the libraries' own debug logs (botocore, urllib3) as well.
LOG_LEVELS = ("error", "warning", "info", "debug", "trace")
LOG_FORMATS = ("text", "json")

OPTIONS: tuple[Option, ...] = (
    Option("platform", "--platform", "TRANSFER_RUNNER_PLATFORM"),
    Option("state", "--state", "TRANSFER_RUNNER_STATE"),
    Option("export_to", "--export-to", "TRANSFER_RUNNER_EXPORT_TO"),
    Option("playbook", "--playbook", "TRANSFER_RUNNER_PLAYBOOK"),
    Option("sse", "--sse", "TRANSFER_RUNNER_SSE", choices=("AES256", "aws:kms")),
    Option("sse_kms_key_id", "--sse-kms-key-id", "TRANSFER_RUNNER_SSE_KMS_KEY_ID"),
    Option("part_size_mib", "--part-size", "TRANSFER_RUNNER_PART_SIZE", int),
    Option("compression", "--compression", "TRANSFER_RUNNER_COMPRESSION", choices=COMPRESSIONS),
    Option("upload_workers", "--upload-workers", "TRANSFER_RUNNER_UPLOAD_WORKERS", int),
    Option("log_level", "--log-level", "TRANSFER_RUNNER_LOG_LEVEL", choices=LOG_LEVELS),
    Option("log_format", "--log-format", "TRANSFER_RUNNER_LOG_FORMAT", choices=LOG_FORMATS),
    Option("log_file", "--log-file", "TRANSFER_RUNNER_LOG_FILE"),
)
ENV = {option.field: option.env for option in OPTIONS if option.env}
DEFAULT_PLATFORM_URL = "sandbox:.transfer-runner/sandbox.db"
DEFAULT_STATE_URL = "sqlite:.transfer-runner/state.db"


@dataclass(frozen=True)
class Settings:
    """Where the platform, state and exports are; how to export and log. Never holds a secret."""

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
    log_level: str | None = None  # None: from -v/-q (warning, -v info, -vv debug, -vvv trace)
    log_format: str = "text"
    log_file: str | None = None


@dataclass(frozen=True)
class ConfigFile:
    """A config file's path and its checked values, by key (`export-to`, `part-size`, ...);
    `config_file` finds and reads one."""

    path: str
    values: Mapping[str, object]


@dataclass(frozen=True)
class Resolved:
    """The settings, and where each global option's value came from."""

    settings: Settings
    sources: dict[str, str]  # field -> "flag --x", "env VAR", "file PATH" or "default"


def resolve_settings(
    flags: Mapping[str, object],
    env: Mapping[str, str] | None = None,
    file: ConfigFile | None = None,
) -> Settings:
    """Flags win over environment variables, which win over a config file, over defaults."""
    return resolve(flags, env, file).settings


def resolve(
    flags: Mapping[str, object],
    env: Mapping[str, str] | None = None,
    file: ConfigFile | None = None,
) -> Resolved:
    """`resolve_settings`, keeping the source of each value (for `config show`)."""
    env = os.environ if env is None else env
    values: dict[str, object] = {}
    sources: dict[str, str] = {}
    for option in OPTIONS:
        found = _lookup(option, flags, env, file)
        if found is not None:
            values[option.field], sources[option.field] = found
        else:
            sources[option.field] = "default"
    if flags.get("verbosity") is not None:
        values["verbosity"] = flags["verbosity"]
    settings = Settings(**values)  # type: ignore[arg-type]
    _check(settings)
    return Resolved(settings, sources)


def _lookup(
    option: Option, flags: Mapping[str, object], env: Mapping[str, str], file: ConfigFile | None
) -> tuple[object, str] | None:
    flag = flags.get(option.field)
    if flag not in (None, ""):
        return flag, f"flag {option.flag}"
    if option.env and env.get(option.env):
        where = f"environment variable {option.env}"
        return _typed(option, env[option.env], where), f"env {option.env}"
    if file is not None and option.key in file.values:
        value = file.values[option.key]
        return _typed(option, value, f"{file.path}: {option.key}"), f"file {file.path}"
    return None


def _typed(option: Option, value: object, where: str) -> object:
    """`value` as the option's type (env values are text), checked against its choices."""
    if option.kind is int and isinstance(value, str):
        try:
            value = int(value)
        except ValueError:
            raise ConfigError(f"{where} must be a whole number, not {value!r}") from None
    if option.choices and value not in option.choices:
        raise ConfigError(f"{where} must be one of {', '.join(option.choices)}, not {value!r}")
    return value


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
    _check_apart(settings.state, settings.export_to)
    if settings.log_level is not None and settings.log_level not in LOG_LEVELS:
        raise ConfigError(
            f"--log-level must be {', '.join(LOG_LEVELS)}, not {settings.log_level!r}"
        )
    if settings.log_format not in LOG_FORMATS:
        raise ConfigError(
            f"--log-format must be {', '.join(LOG_FORMATS)}, not {settings.log_format!r}"
        )


def _check_apart(state: str, export_to: str | None) -> None:
    """ConfigError when the export prefix and the S3 state's overlap: exports go under
    `PREFIX/<transfer name>/`, so a transfer named after a state folder (or the state under
    the exports) could overwrite or read state objects."""
    if export_to is None or not state.startswith("s3://"):
        return
    places = [_s3_place(state), _s3_place(export_to)]
    (state_bucket, state_prefix), (export_bucket, export_prefix) = places
    if state_bucket != export_bucket:
        return
    if state_prefix.startswith(export_prefix) or export_prefix.startswith(state_prefix):
        raise ConfigError(
            f"--state {state} and --export-to {export_to} overlap: one prefix holds the "
            "other, so a transfer's export could land among the state's objects; give them "
            f"prefixes apart, e.g. s3://{state_bucket}/state and s3://{state_bucket}/exports"
        )


def _s3_place(url: str) -> tuple[str, str]:
    """`s3://bucket/a/b/` -> ("bucket", "a/b/"); the bucket's root is ""."""
    bucket, _, prefix = url.removeprefix("s3://").partition("/")
    prefix = prefix.strip("/")
    return bucket, f"{prefix}/" if prefix else ""

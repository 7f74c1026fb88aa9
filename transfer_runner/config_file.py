"""The optional config file: `transfer-runner.toml`, or `[tool.transfer-runner]` in
`pyproject.toml`, in the working directory, or the file given with `--config`.

Its keys are the global options' flags without the dashes (`state = "s3://bucket/prefix"`,
`part-size = 64`). It holds no secret: a key that looks like one (a token, a password, a
secret) is refused, as is a URL with a password in it; tokens come from the environment only.
"""

from __future__ import annotations

import difflib
import tomllib
from collections.abc import Mapping
from pathlib import Path
from urllib.parse import urlsplit

from transfer_runner.config import OPTIONS, ConfigFile
from transfer_runner.errors import ConfigError

__all__ = ["ConfigFile", "FILE_NAME", "find_config", "load_config"]

FILE_NAME = "transfer-runner.toml"
PYPROJECT_TABLE = "tool.transfer-runner"
_SECRET_WORDS = ("token", "password", "secret", "credential")


def find_config(explicit: str | None, cwd: Path | None = None) -> ConfigFile | None:
    """The file given (it must exist), else `transfer-runner.toml`, else a `pyproject.toml`
    with a `[tool.transfer-runner]` table, in `cwd`; None when there is none."""
    if explicit:
        path = Path(explicit)
        if not path.is_file():
            raise ConfigError(f"--config {explicit}: no such file")
        return load_config(path)
    here = cwd or Path.cwd()
    own = here / FILE_NAME
    if own.is_file():
        return load_config(own)
    pyproject = here / "pyproject.toml"
    if pyproject.is_file() and _table(_read(pyproject), pyproject) is not None:
        return load_config(pyproject)
    return None


def load_config(path: Path) -> ConfigFile:
    """Read and check one config file (its `[tool.transfer-runner]` table for pyproject.toml)."""
    document = _read(path)
    table = _table(document, path) if path.name == "pyproject.toml" else document
    return ConfigFile(str(path), _checked(table or {}, path))


def _read(path: Path) -> dict[str, object]:
    try:
        with path.open("rb") as stream:
            return tomllib.load(stream)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read it: {exc.strerror}") from None


def _table(document: Mapping[str, object], path: Path) -> dict[str, object] | None:
    tool = document.get("tool")
    table = tool.get("transfer-runner") if isinstance(tool, dict) else None
    if table is not None and not isinstance(table, dict):
        raise ConfigError(f"{path}: [{PYPROJECT_TABLE}] must be a table")
    return table


def _checked(table: Mapping[str, object], path: Path) -> dict[str, object]:
    by_key = {option.key: option for option in OPTIONS}
    checked: dict[str, object] = {}
    for key, value in table.items():
        if any(word in key.lower() for word in _SECRET_WORDS):
            raise ConfigError(
                f"{path}: {key}: a config file holds no secret; set it in the environment "
                "(TRANSFER_RUNNER_PLATFORM_TOKEN, the AWS credential chain)"
            )
        option = by_key.get(key)
        if option is None:
            close = difflib.get_close_matches(key, by_key, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise ConfigError(
                f"{path}: unknown key {key!r}{hint}; the keys are: {', '.join(by_key)}"
            )
        if type(value) is not option.kind:  # bool is not int here
            kind = "a whole number" if option.kind is int else "a string"
            raise ConfigError(f"{path}: {key} must be {kind}, not {value!r}")
        if isinstance(value, str) and urlsplit(value).password:
            raise ConfigError(f"{path}: {key}: a URL with a password in it is a secret")
        checked[key] = value
    return checked

"""Which transfers a run takes: `--limit NAME | key=value | @retry-file`."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from transfer_runner.errors import ConfigError
from transfer_runner.private_files import write_private

if TYPE_CHECKING:  # the CLI imports this module for `--help`: keep it light
    from transfer_runner.manifest.model import Transfer

__all__ = ["select", "write_retry_file", "RETRY_FILE"]

RETRY_FILE = "transfer-runner.retry"


def select(transfers: Sequence[Transfer], limits: Sequence[str]) -> list[Transfer]:
    """Transfers matching any of the limits (all when there are none), in the order given."""
    if not limits:
        return list(transfers)
    names: set[str] = set()
    labels: list[tuple[str, str]] = []
    for expr in limits:
        for part in (p.strip() for p in expr.split(",")):
            if not part:
                continue
            if part.startswith("@"):
                names.update(_read_retry_file(part[1:]))
            elif "=" in part:
                key, _, value = part.partition("=")
                labels.append((key.strip(), value.strip()))
            else:
                names.add(part)
    return [t for t in transfers if t.name in names or any(t.labels.get(k) == v for k, v in labels)]


def _read_retry_file(path: str) -> list[str]:
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise ConfigError(f"--limit @{path}: cannot read retry file: {exc.strerror}") from exc
    return [line.strip() for line in lines if line.strip() and not line.startswith("#")]


def write_retry_file(path: str | Path, failed: Sequence[str]) -> None:
    """List the failed transfers, one name a line (removed when nothing failed)."""
    file = Path(path)
    if failed:
        write_private(file, "".join(f"{name}\n" for name in failed))
    elif file.exists():
        file.unlink()

"""How much an export reader takes at most, whatever S3 holds, and the bounded line reader.

Parts, indexes and journal records are read back from a bucket that others may write to: a
small compressed part can claim a member of many GiB, an index a line of hundreds of MiB. So
every reader checks what it is about to read against these limits first (a tar member's size
from its header, before its data), and refuses with the limit and the variable that raises it.
Each default is far above anything the runner writes:

- `max_message_bytes`: one message (a tar member), 256 MiB. The platform contract takes
  messages of at most 64 MiB; no mail system sends larger ones (Exchange Online's ceiling is
  150 MB). Import holds one message in memory at a time, so this bounds its memory.
- `max_part_members`: members of one part, 1,000,000 (a 1 GiB part of one-byte messages).
- `max_extract_bytes`: bytes `extract_part` writes from one part, 2 GiB (a 1 GiB part and
  its last message).
- `max_index_line_bytes`: one line of `index.jsonl` or of a journal record, 64 KiB (a line
  holds one message's id, part, size, SHA-256 and time: about 200 bytes).
- `max_index_bytes`: `index.jsonl` as a whole (or a journal record), 1 GiB (about five
  million messages).

`export_limits()` reads them from the environment, where each can be set (a whole number in
the unit its name says): `TRANSFER_RUNNER_MAX_MESSAGE_MIB`, `TRANSFER_RUNNER_MAX_PART_MEMBERS`,
`TRANSFER_RUNNER_MAX_EXTRACT_MIB`, `TRANSFER_RUNNER_MAX_INDEX_LINE_KIB`,
`TRANSFER_RUNNER_MAX_INDEX_MIB`.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, fields
from typing import Any, NoReturn

from transfer_runner.errors import ConfigError, ExportError

__all__ = ["ENV_VARS", "ExportLimits", "export_limits", "iter_lines", "size_text"]

KiB = 1024
MiB = 1024 * KiB
GiB = 1024 * MiB
_CHUNK = 256 * KiB  # bytes `iter_lines` reads at a time

# field -> (environment variable, the unit its value is given in)
ENV_VARS: dict[str, tuple[str, int]] = {
    "max_message_bytes": ("TRANSFER_RUNNER_MAX_MESSAGE_MIB", MiB),
    "max_part_members": ("TRANSFER_RUNNER_MAX_PART_MEMBERS", 1),
    "max_extract_bytes": ("TRANSFER_RUNNER_MAX_EXTRACT_MIB", MiB),
    "max_index_line_bytes": ("TRANSFER_RUNNER_MAX_INDEX_LINE_KIB", KiB),
    "max_index_bytes": ("TRANSFER_RUNNER_MAX_INDEX_MIB", MiB),
}


@dataclass(frozen=True)
class ExportLimits:
    """The most an export reader takes (see the module's docstring); every value positive."""

    max_message_bytes: int = 256 * MiB
    max_part_members: int = 1_000_000
    max_extract_bytes: int = 2 * GiB
    max_index_line_bytes: int = 64 * KiB
    max_index_bytes: int = 1 * GiB

    def __post_init__(self) -> None:
        for item in fields(self):
            value = getattr(self, item.name)
            if type(value) is not int or value < 1:
                raise ConfigError(f"export limit {item.name} must be a positive integer")

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> ExportLimits:
        """The defaults, each replaced by its environment variable where that is set."""
        env = os.environ if env is None else env
        values: dict[str, int] = {}
        for name, (variable, unit) in ENV_VARS.items():
            text = env.get(variable, "").strip()
            if not text:
                continue
            if not (text.isascii() and text.isdigit()) or int(text) < 1:
                raise ConfigError(f"{variable}={text[:40]!r}: expected a whole number >= 1")
            values[name] = int(text) * unit
        return cls(**values)

    def hint(self, name: str) -> str:
        """How a refusal by limit `name` says what the limit is and how to raise it."""
        variable, _ = ENV_VARS[name]
        return f"the limit is {size_text(getattr(self, name), name)}; {variable} raises it"


def export_limits() -> ExportLimits:
    """The limits in force: the defaults and the environment (read on every call)."""
    return ExportLimits.from_env()


def size_text(value: int, name: str = "") -> str:
    """`256 MiB`, `64 KiB`, `1,000,000` (a count when `name` is not a size in bytes)."""
    if name and not name.endswith("_bytes"):
        return f"{value:,}"
    for unit, size in (("GiB", GiB), ("MiB", MiB), ("KiB", KiB)):
        if value >= size and value % size == 0:
            return f"{value // size} {unit}"
    return f"{value:,} bytes"


def iter_lines(
    body: Any,
    digest: Any | None = None,
    *,
    limits: ExportLimits | None = None,
    where: str = "an index or journal record",
) -> Iterator[bytes]:
    """The lines of a stream, without their newlines; feeds every byte read to `digest`.

    Linear in the stream's size, and bounded (`limits`, default `export_limits()`): a line
    longer than `max_index_line_bytes` is refused (`ExportError` naming `where` and the line's
    number) as soon as that many of its bytes are read, a stream over `max_index_bytes` as soon
    as it grows past it. A line holds at most the limit and one chunk more in memory.
    """
    limits = limits or export_limits()
    longest, total, number = limits.max_index_line_bytes, 0, 0
    pending: list[bytes] = []  # the start of a line that no chunk has ended yet
    held = 0
    for chunk in iter(lambda: body.read(_CHUNK), b""):
        total += len(chunk)
        if total > limits.max_index_bytes:
            raise ExportError(
                f"{where}: larger than an index may be ({limits.hint('max_index_bytes')})"
            )
        if digest is not None:
            digest.update(chunk)
        lines = chunk.split(b"\n")
        if len(lines) == 1:  # no newline in this chunk: the line goes on
            pending.append(chunk)
            held += len(chunk)
            if held > longest:
                _too_long(where, number + 1, limits)
            continue
        if pending:  # each byte is joined once: linear however long the line
            if held + len(lines[0]) > longest:
                _too_long(where, number + 1, limits)
            lines[0] = b"".join((*pending, lines[0]))
        complete, last = lines[:-1], lines[-1]
        if max(map(len, complete)) > longest:
            over = next(i for i, line in enumerate(complete) if len(line) > longest)
            _too_long(where, number + over + 1, limits)
        number += len(complete)
        yield from complete
        pending, held = ([last], len(last)) if last else ([], 0)
        if held > longest:
            _too_long(where, number + 1, limits)
    if pending:
        yield b"".join(pending)


def _too_long(where: str, number: int, limits: ExportLimits) -> NoReturn:
    raise ExportError(
        f"{where} line {number}: longer than an index line may be "
        f"({limits.hint('max_index_line_bytes')})"
    )

"""Test data of the export benchmark: a sandbox of N messages and the same bytes as files."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from transfer_runner.platforms.sandbox import SandboxPlatform, init_sandbox

ACCOUNT = "C-BENCH"
STORE = "archive"
SEED = 20261129
MiB = 1024 * 1024


@dataclass(frozen=True)
class Dataset:
    """A sandbox file holding `messages` archive messages of one direct account."""

    db: Path
    account: str
    messages: int
    bytes: int
    body: str = "text"


BODIES = ("mail-like", "text")  # the sandbox's body kinds: ~1.35:1 and ~7:1 under gzip


def make_sandbox(directory: Path, messages: int, size_kib: int, body: str = "text") -> Dataset:
    """Create `directory/sandbox.db`: one direct account, `messages` archive messages.

    `body` "mail-like" gives messages like real mail (a text part and a base64 attachment of
    random bytes, ~1.35:1 under gzip); "text" the older corpus of text lines (~7:1)."""
    directory.mkdir(parents=True, exist_ok=True)
    fixture = directory / "fixture.yml"
    fixture.write_text(
        f"seed: {SEED}\n"
        "accounts:\n"
        f"  - id: {ACCOUNT}\n"
        "    type: direct\n"
        "    name: Benchmark Customer\n"
        "    domains: [bench.example]\n"
        f"    archive: {{messages: {messages}, size: {size_kib}KiB, body: {body}}}\n",
        encoding="utf-8",
    )
    db = directory / "sandbox.db"
    counts = init_sandbox(db, fixture)
    return Dataset(db, ACCOUNT, counts["messages"], counts["bytes"], body)


def write_files(data: Dataset, eml_dir: Path, concatenated: Path) -> int:
    """Write every message as `<id>.eml` and all of them, in order, into one file.

    Returns the bytes written per copy; the files are flushed to disk (not just the page
    cache) so that no measurement pays for another's writeback.
    """
    eml_dir.mkdir(parents=True, exist_ok=True)
    total = 0
    with SandboxPlatform(data.db) as platform, open(concatenated, "wb") as whole:
        cursor: str | None = None
        while True:
            page = platform.list_messages(data.account, STORE, cursor, 1000)
            for info in page.messages:
                raw = platform.fetch_message(data.account, STORE, info.id)
                (eml_dir / f"{info.id}.eml").write_bytes(raw)
                whole.write(raw)
                total += len(raw)
            cursor = page.next_cursor
            if cursor is None:
                break
    os.sync()
    return total

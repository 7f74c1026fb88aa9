"""Test data of the export benchmark: a sandbox of N messages and the same bytes as files."""

from __future__ import annotations

import os
import sqlite3
from contextlib import closing
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


def make_sandbox(
    directory: Path, messages: int, size_kib: int, body: str = "text", stored: bool = True
) -> Dataset:
    """Create `directory/sandbox.db`: one direct account, `messages` archive messages.

    `body` "mail-like" gives messages like real mail (a text part and a base64 attachment of
    random bytes, ~1.35:1 under gzip); "text" the older corpus of text lines (~7:1).
    `stored`: the sandbox holds the messages' bytes (see `hold_bytes`)."""
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
    if stored:
        hold_bytes(db)
    return Dataset(db, ACCOUNT, counts["messages"], counts["bytes"], body)


def hold_bytes(db: Path) -> None:
    """Store every message's bytes in the sandbox, as a real platform holds mail.

    The sandbox regenerates a generated message at each read (pseudo-random base64 for a
    mail-like one), which in the export benchmark cost ~40% of the exporting thread (py-spy):
    the source's CPU, not the export's. Held bytes are read as one SQLite blob each."""
    with SandboxPlatform(db) as platform:
        held: list[tuple[bytes, str]] = []
        cursor: str | None = None
        while True:
            page = platform.list_messages(ACCOUNT, STORE, cursor, 1000)
            ids = [info.id for info in page.messages]
            for start in range(0, len(ids), 100):
                fetched = platform.fetch_messages(ACCOUNT, STORE, ids[start : start + 100])
                held.extend((fetched[i], i) for i in ids[start : start + 100])
            _write_held(db, held)
            held.clear()
            cursor = page.next_cursor
            if cursor is None:
                break


def _write_held(db: Path, held: list[tuple[bytes, str]]) -> None:
    with closing(sqlite3.connect(db)) as conn, conn:
        conn.executemany(
            "UPDATE messages SET raw = ?, seed = NULL, idx = NULL, body = NULL "
            f"WHERE account = '{ACCOUNT}' AND store = '{STORE}' AND id = ?",
            held,
        )


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

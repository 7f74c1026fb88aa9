"""The message ids of an export, in memory while they are few and in SQLite beyond that, so
that an export's memory does not grow with the store it exports."""

from __future__ import annotations

import sqlite3
import tempfile
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from transfer_runner.export.index import MAX_HELD_ENTRIES

__all__ = ["MAX_IDS_IN_MEMORY", "IdSet"]

_BATCH = 500  # ids per SQL statement (SQLite allows 999 parameters at the least)
MAX_IDS_IN_MEMORY = MAX_HELD_ENTRIES  # an IdSet beyond this many ids moves to SQLite


class IdSet:
    """Message ids of an export: in memory while they are few, on disk (SQLite) beyond
    `max_in_memory`, so memory does not grow with the store.

    Each id remembers whether it came from the journal (exported by an earlier pass or
    attempt: RESUMED) or from this pass's packing (PACKED), its SHA-256, and whether this
    pass's listing of the source has shown it (`mark_listed`).
    """

    RESUMED, PACKED = 0, 1

    def __init__(self, max_in_memory: int | None = None) -> None:
        self.max_in_memory = MAX_IDS_IN_MEMORY if max_in_memory is None else max_in_memory
        # id -> [origin, SHA-256, listed] until it spills; then None and the database holds all
        self._held: dict[str, list[Any]] | None = {}
        self._dir: tempfile.TemporaryDirectory[str] | None = None
        self._db: sqlite3.Connection | None = None

    @property
    def on_disk(self) -> bool:
        """Whether the ids have spilled to the database."""
        return self._held is None

    def unlisted(self, origin: int) -> int:
        """How many ids of `origin` the source's listing did not show (expired since)."""
        if self._held is not None:
            return sum(1 for o, _, listed in self._held.values() if o == origin and not listed)
        query = "SELECT COUNT(*) FROM ids WHERE origin = ? AND listed = 0"
        return int(self._database().execute(query, (origin,)).fetchone()[0])

    def add_all(self, entries: Sequence[tuple[str, str | None]], origin: int) -> bool:
        """Record every `(id, SHA-256)` of `entries` with `origin`, all or none: False (and
        nothing recorded) if an id repeats or is recorded already. (The database keeps no
        rollback journal, so this checks first rather than undoing.)"""
        message_ids = [message_id for message_id, _ in entries]
        if len(set(message_ids)) != len(message_ids) or self.lookup(message_ids):
            return False
        if self._held is not None and len(self._held) + len(entries) > self.max_in_memory:
            self._spill()
        if self._held is not None:
            for message_id, sha256 in entries:
                self._held[message_id] = [origin, sha256, False]
            return True
        self._database().executemany(
            "INSERT INTO ids (id, origin, sha256) VALUES (?, ?, ?)",
            ((message_id, origin, sha256) for message_id, sha256 in entries),
        )
        return True

    def lookup(self, message_ids: Sequence[str]) -> dict[str, tuple[int, str | None, bool]]:
        """id -> (origin, SHA-256, listed) of those of `message_ids` that are recorded."""
        found: dict[str, tuple[int, str | None, bool]] = {}
        if self._held is not None:
            for message_id in message_ids:
                row = self._held.get(message_id)
                if row is not None:
                    found[message_id] = (row[0], row[1], row[2])
            return found
        for start in range(0, len(message_ids), _BATCH):
            batch = message_ids[start : start + _BATCH]
            marks = ",".join("?" * len(batch))
            query = f"SELECT id, origin, sha256, listed FROM ids WHERE id IN ({marks})"  # noqa: S608
            for row in self._database().execute(query, batch):
                found[row[0]] = (int(row[1]), row[2], bool(row[3]))
        return found

    def mark_listed(self, message_ids: Iterable[str]) -> None:
        """Note that the source's listing showed these (recorded) ids."""
        if self._held is not None:
            for message_id in message_ids:
                row = self._held.get(message_id)
                if row is not None:
                    row[2] = True
            return
        self._database().executemany(
            "UPDATE ids SET listed = 1 WHERE id = ?", ((i,) for i in message_ids)
        )

    def close(self) -> None:
        """Drop what is held, and the database if there is one."""
        self._held = {}
        if self._db is not None:
            self._db.close()
            self._db = None
        if self._dir is not None:
            self._dir.cleanup()
            self._dir = None

    def _spill(self) -> None:
        """Move the ids held in memory into the database; every later call uses it."""
        held, self._held = self._held or {}, None
        self._database().executemany(
            "INSERT INTO ids (id, origin, sha256, listed) VALUES (?, ?, ?, ?)",
            ((i, o, sha, int(listed)) for i, (o, sha, listed) in held.items()),
        )

    def _database(self) -> sqlite3.Connection:
        if self._db is None:
            self._dir = tempfile.TemporaryDirectory(prefix="transfer-runner-ids-")
            self._db = sqlite3.connect(Path(self._dir.name) / "ids.db", isolation_level=None)
            for pragma in ("journal_mode=OFF", "synchronous=OFF", "cache_size=-2048"):
                self._db.execute(f"PRAGMA {pragma}")
            self._db.execute(
                "CREATE TABLE ids (id TEXT PRIMARY KEY, origin INTEGER, sha256 TEXT, "
                "listed INTEGER NOT NULL DEFAULT 0) WITHOUT ROWID"
            )
            self._db.execute("BEGIN")
        return self._db

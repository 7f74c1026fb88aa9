"""Overlapped export: finished parts are compressed, uploaded and journalled on worker threads.

The caller packs parts (fetching and hashing messages) on its own thread and hands each
finished one to `PartUploader.submit`, which blocks while `parts_in_flight` parts are queued
or uploading: memory stays bounded (each part is a spooled file, on disk past a few MiB)
however fast packing runs. zlib, zstd, hashing and sockets release the GIL, so the workers
really run in parallel with packing and with each other.
"""

from __future__ import annotations

import io
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from transfer_runner.errors import ExportError
from transfer_runner.export.index import IndexEntry
from transfer_runner.export.layout import StoreLayout
from transfer_runner.export.objects import upload
from transfer_runner.export.packing import PartWriter, content_type
from transfer_runner.export.part_records import PartRecord, write_record
from transfer_runner.s3_client import S3Settings
from transfer_runner.testpoints import reached as testpoint

__all__ = ["FinishedPart", "PartUploader"]


@dataclass
class FinishedPart:
    """A packed part and its index entries, ready to ship. The uploader closes it.

    `entries` name the part as `writer.name`; when the part is stored otherwise (see
    `PartWriter.codec`), the uploader renames them in place, so that whoever shares the list
    (the exporter, for the index) sees the name the part is stored under.
    """

    number: int
    writer: PartWriter
    entries: list[IndexEntry]
    messages: int
    bytes: int
    pass_number: int = 1

    def close(self) -> None:
        self.writer.close()


class PartUploader:
    """Ships finished parts on `settings.upload_workers` threads; see the module docstring."""

    def __init__(self, s3: Any, settings: S3Settings, layout: StoreLayout) -> None:
        self.s3 = s3
        self.settings = settings
        self.layout = layout
        self._pool = ThreadPoolExecutor(
            max_workers=settings.upload_workers, thread_name_prefix="export-upload"
        )
        self._slots = threading.BoundedSemaphore(settings.parts_in_flight)
        self._futures: list[Future[PartRecord]] = []
        self._failed = threading.Event()
        self._stopping = threading.Event()

    def submit(self, part: FinishedPart) -> None:
        """Queue `part`; blocks while too many parts are in flight; raises a worker's error."""
        self._raise_if_failed()
        self._slots.acquire()
        try:
            self._raise_if_failed()
            self._futures.append(self._pool.submit(self._ship, part))
        except BaseException:
            self._slots.release()
            part.close()
            raise

    def wait(self) -> list[PartRecord]:
        """Wait for every queued part; their records, or the first error raised."""
        try:
            return [future.result() for future in self._futures]
        finally:
            self.close()

    def close(self) -> None:
        """Stop: parts not yet started are dropped (they were never journalled), then join."""
        self._stopping.set()
        self._pool.shutdown(wait=True)

    def _raise_if_failed(self) -> None:
        if not self._failed.is_set():
            return
        for future in self._futures:
            if future.done() and future.exception() is not None:
                future.result()  # raises the worker's exception

    def _ship(self, part: FinishedPart) -> PartRecord:
        try:
            if self._stopping.is_set() or self._failed.is_set():
                raise ExportError(f"export stopped before {part.writer.name} was uploaded")
            return self._upload(part)
        except BaseException:
            self._failed.set()
            raise
        finally:
            part.close()
            self._slots.release()

    def _upload(self, part: FinishedPart) -> PartRecord:
        name = part.writer.name
        try:
            size = part.writer.finish()
        except OSError as exc:
            raise ExportError(f"packing {name} failed: {exc}") from exc
        testpoint(f"export-upload-part-{part.number}")
        codec = part.writer.codec
        name = self.layout.part_name(part.number, codec)
        if name != part.writer.name:
            part.entries[:] = [entry._replace(part=name) for entry in part.entries]
        key = self.layout.part_key(name)
        upload(self.s3, self.settings, key, part.writer.file, size, content_type(codec))
        lines = b"".join(entry.to_line() for entry in part.entries)
        record = PartRecord(
            part.number, name, size, part.messages, part.bytes, part.pass_number, len(lines)
        )
        write_record(self.s3, self.settings, self.layout, record, io.BytesIO(lines))
        testpoint(f"export-after-part-{part.number}")
        return record

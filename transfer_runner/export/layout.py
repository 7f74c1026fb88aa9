"""Object keys and member names of an export, validated before any key is built.

```
PREFIX/<transfer name>/<store>/part-00001.tar.zst  (.tar.gz with gzip, .tar with "none";
                                                    "auto": .tar.zst, or .tar for a part
                                                    whose data do not compress)
PREFIX/<transfer name>/<store>/_journal/part-00001.json   (one per completed part)
PREFIX/<transfer name>/<store>/_journal/checkpoint.json   (the records the index was made of)
PREFIX/<transfer name>/<store>/index.jsonl
PREFIX/<transfer name>/receipt.json
```
Each part is a tar of `<message id>.eml` members. Names are checked here so that nothing from
a platform or an index can steer a key or a tar member outside its place.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

from transfer_runner.errors import ExportError
from transfer_runner.platforms.base import STORES, Store
from transfer_runner.s3_client import S3Settings

__all__ = [
    "INDEX_NAME",
    "JOURNAL_DIR",
    "RECEIPT_NAME",
    "receipt_key",
    "MEMBER_SUFFIX",
    "StoreLayout",
    "store_layout",
    "check_transfer_name",
    "check_store",
    "check_message_id",
    "is_message_id",
]

INDEX_NAME = "index.jsonl"
JOURNAL_DIR = "_journal/"
CHECKPOINT_NAME = "checkpoint.json"
RECEIPT_NAME = "receipt.json"
MEMBER_SUFFIX = ".eml"
_NAME_RE = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")
_MESSAGE_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
_EXTENSIONS = {"gzip": ".tar.gz", "zstd": ".tar.zst", "none": ".tar"}
_CODECS = {"auto": ("zstd", "none"), "zstd": ("zstd",), "gzip": ("gzip",), "none": ("none",)}
_JOURNAL_RE = re.compile(r"^part-(\d{5,})\.json$")


def check_transfer_name(name: object) -> str:
    """The name if it is a lowercase DNS label (<= 63 characters), else `ExportError`."""
    if not isinstance(name, str) or not _NAME_RE.match(name):
        raise ExportError(f"transfer name {name!r} is not a lowercase DNS label")
    return name


def check_store(store: object) -> Store:
    """The store if it is quarantine or archive, else `ExportError`."""
    if store not in STORES:
        raise ExportError(f"store must be one of {', '.join(STORES)}, not {store!r}")
    return store


@lru_cache(maxsize=4096)
def _part_number(part_name: str) -> int | None:
    """`StoreLayout.part_number` of a string (asked once per index line: memoized)."""
    if not part_name.startswith("part-"):
        return None
    stem = part_name[len("part-") :]
    for extension in _EXTENSIONS.values():
        if stem.endswith(extension):
            digits = stem[: -len(extension)]
            if len(digits) >= 5 and digits.isascii() and digits.isdigit():
                number = int(digits)
                return number if number >= 1 and f"{number:05d}" == digits else None
    return None


def is_message_id(message_id: object) -> bool:
    """True when `message_id` is safe as a file name: `[A-Za-z0-9][A-Za-z0-9._-]{0,127}`."""
    return isinstance(message_id, str) and _MESSAGE_ID_RE.fullmatch(message_id) is not None


def check_message_id(message_id: object) -> str:
    """The id if it is safe as a tar member name, else `ExportError`."""
    if not is_message_id(message_id):
        raise ExportError(
            f"message id {message_id!r} is not safe as a file name "
            "(1-128 of A-Z a-z 0-9 . _ -, starting with a letter or digit)"
        )
    return message_id  # type: ignore[return-value]


@dataclass(frozen=True)
class StoreLayout:
    """The keys of one store's export. Build it with `store_layout`, which validates."""

    bucket: str
    base: str  # "PREFIX/<name>/<store>/" (no leading "/")
    codecs: tuple[str, ...] = ("zstd",)  # how this export's parts may be stored, first = usual

    @property
    def index_key(self) -> str:
        """Key of `index.jsonl`."""
        return self.base + INDEX_NAME

    def part_name(self, number: int, codec: str | None = None) -> str:
        """`part-00001.tar.zst` for number 1 stored with zstd (`codec`, by default the usual
        one of this export: see `part_names`)."""
        if number < 1:
            raise ValueError(f"part numbers start at 1, not {number}")
        return f"part-{number:05d}{_EXTENSIONS[codec or self.codecs[0]]}"

    def part_names(self, number: int) -> tuple[str, ...]:
        """Every name part `number` may have under this configuration: with "auto", a part
        is `.tar.zst`, or `.tar` when its data did not compress."""
        return tuple(self.part_name(number, codec) for codec in self.codecs)

    def part_key(self, part_name: str) -> str:
        """The key of a part given its name (as it appears in the index)."""
        if self.part_number(part_name) is None:
            raise ExportError(f"{part_name!r} is not a part name of this export")
        return self.base + part_name

    def part_number(self, part_name: str) -> int | None:
        """1 for `part-00001.tar.gz`; None if `part_name` is not a part name.

        Parts of either compression are recognised: an existing export is read by its index,
        whatever compression is configured today.
        """
        return _part_number(part_name) if isinstance(part_name, str) else None

    @property
    def journal_base(self) -> str:
        """The prefix under which the journal of completed parts lives."""
        return self.base + JOURNAL_DIR

    def journal_key(self, number: int) -> str:
        """Key of the journal record of part `number` (written once that part is uploaded)."""
        if number < 1:
            raise ValueError(f"part numbers start at 1, not {number}")
        return f"{self.journal_base}part-{number:05d}.json"

    @property
    def checkpoint_key(self) -> str:
        """Key of the journal's checkpoint: which records the current index was made of."""
        return f"{self.journal_base}{CHECKPOINT_NAME}"

    def journal_number(self, key: str) -> int | None:
        """The part number of a journal record key, or None for any other key."""
        if not key.startswith(self.journal_base):
            return None
        match = _JOURNAL_RE.match(key[len(self.journal_base) :])
        if match is None or f"{int(match.group(1)):05d}" != match.group(1):
            return None
        number = int(match.group(1))
        return number if number >= 1 else None

    def is_part_key(self, key: str) -> bool:
        """True when `key` names a part (of any compression) directly under this store."""
        return key.startswith(self.base) and self.part_number(key[len(self.base) :]) is not None

    @staticmethod
    def member_name(message_id: str) -> str:
        """`<id>.eml`, after checking the id."""
        return check_message_id(message_id) + MEMBER_SUFFIX

    @staticmethod
    def message_id(member_name: str) -> str | None:
        """The id of a member named `<id>.eml`, or None for any other name."""
        if not member_name.endswith(MEMBER_SUFFIX):
            return None
        candidate = member_name[: -len(MEMBER_SUFFIX)]
        return candidate if is_message_id(candidate) else None


def receipt_key(settings: S3Settings, transfer_name: str) -> str:
    """Key of `receipt.json` of a transfer, after checking its name."""
    check_transfer_name(transfer_name)
    prefix = settings.prefix
    base = f"{prefix}/{transfer_name}/" if prefix else f"{transfer_name}/"
    return base + RECEIPT_NAME


def store_layout(settings: S3Settings, transfer_name: str, store: str) -> StoreLayout:
    """The validated layout of `store` of transfer `transfer_name` under the export URL."""
    check_transfer_name(transfer_name)
    check_store(store)
    prefix = settings.prefix
    base = f"{prefix}/{transfer_name}/{store}/" if prefix else f"{transfer_name}/{store}/"
    return StoreLayout(settings.bucket, base, _CODECS[settings.compression])

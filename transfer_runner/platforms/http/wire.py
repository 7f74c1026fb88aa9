"""The JSON ("wire") form of the `platforms.base` dataclasses, shared by server and adapter.

Field names are those of base.py; Decimal travels as a string ("25.00", never a float),
datetime as ISO 8601 UTC with `Z`, date as "YYYY-MM-DD", tuples as arrays, None as null.
`from_wire` checks every field against the dataclass's type hints, so bad data is a clean
`PlatformError("decode", ...)` naming the field, never a TypeError deep inside a step.
"""

from __future__ import annotations

import dataclasses
import re
import types
from collections.abc import Mapping
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from functools import cache
from typing import Any, Literal, TypeVar, Union, get_args, get_origin, get_type_hints

from transfer_runner.errors import PlatformError

__all__ = ["API_PREFIX", "DOMAIN_PATTERN", "MAX_DOMAIN", "PROBLEM_TYPES", "to_wire", "from_wire"]

T = TypeVar("T")

API_PREFIX = "/v1"

PROBLEM_TYPES: dict[str, str] = {
    slug: f"/problems/{slug}"
    for slug in (
        "not-found",
        "conflict",
        "account-cancelled",
        "idempotency-key-reused",
        "unauthorized",
        "bad-request",
        "method-not-allowed",
        "payload-too-large",
        "unprocessable",
        "rate-limited",
        "unavailable",
        "internal",
    )
}

# A domain on the wire (the contract's `DomainName`: this pattern, at most MAX_DOMAIN characters
# as sent): ASCII, so an IDN as its A-labels. A label is LDH, 1-63 long, no hyphen at either
# end, no `--` in places 3-4 unless it starts `xn--`; the last label starts with a letter; any
# case, and a trailing dot, name the same domain. Whether an `xn--` label is valid IDNA 2008 is
# not a pattern's to say (a 422). A label is one of its lengths (1, 2, 3, 4, more) or an A-label,
# side by side, so that a generator choosing among them makes few A-labels.
_A, _H = "[A-Za-z0-9]", "[A-Za-z0-9-]"
_LONGER = f"{_H}(?:{_A}{_H}|-{_A}){_H}{{0,58}}{_A}"  # 5-63: places 3-4 are not `--`
_TAILS = ("", _A, f"{_H}{_A}", f"{_H}{_H}{_A}", _LONGER)
_A_LABEL = f"[Xx][Nn]--{_H}{{0,58}}{_A}"
_LABEL = "|".join([*(f"{_A}{tail}" for tail in _TAILS), _A_LABEL])
_TLD = "|".join([*(f"[A-Za-z]{tail}" for tail in _TAILS), _A_LABEL])
DOMAIN_PATTERN = f"^(?:(?:{_LABEL})\\.)+(?:{_TLD})\\.?$"
MAX_DOMAIN = 253

_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_DATETIME = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,6})?(Z|[+-]\d{2}:\d{2})")


# -- encoding -----------------------------------------------------------------------------------
def to_wire(obj: Any) -> dict[str, Any]:
    """A dataclass instance as a JSON-able dict (recursive); PlatformError("encode") otherwise."""
    if not dataclasses.is_dataclass(obj) or isinstance(obj, type):
        raise PlatformError("encode", f"not a dataclass instance: {type(obj).__name__}")
    return {f.name: _encode(getattr(obj, f.name), f.name) for f in dataclasses.fields(obj)}


def _encode(value: Any, where: str) -> Any:
    if value is None or isinstance(value, (str, bool, int)):
        return value
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise PlatformError("encode", f"{where}: not a finite amount: {value}")
        return format(value, "f")
    if isinstance(value, datetime):
        return _encode_datetime(value, where)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, (tuple, list)):
        return [_encode(item, f"{where}[{i}]") for i, item in enumerate(value)]
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return to_wire(value)
    raise PlatformError("encode", f"{where}: cannot encode {type(value).__name__}")


def _encode_datetime(value: datetime, where: str) -> str:
    if value.tzinfo is None or value.utcoffset() is None:
        raise PlatformError("encode", f"{where}: naive datetime {value.isoformat()}")
    utc = value.astimezone(UTC)
    text = utc.strftime("%Y-%m-%dT%H:%M:%S")
    if utc.microsecond:
        text += f".{utc.microsecond:06d}"
    return text + "Z"


# -- decoding -----------------------------------------------------------------------------------
def from_wire(cls: type[T], data: Mapping[str, Any], *, strict: bool = True) -> T:
    """The `cls` dataclass decoded from its wire form; PlatformError("decode") on bad data.

    `strict` refuses fields the dataclass does not have (the server, reading requests); a
    client reading replies passes False, so a provider may add fields without breaking it.
    """
    return _decode_dataclass(cls, data, cls.__name__, strict)


@cache
def _hints(cls: type) -> tuple[tuple[str, Any, bool], ...]:
    """(name, type, required) for every field of a dataclass, resolved once."""
    if not dataclasses.is_dataclass(cls):
        raise PlatformError("decode", f"not a dataclass type: {cls!r}")
    hints = get_type_hints(cls)
    return tuple(
        (
            f.name,
            hints[f.name],
            f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING,
        )
        for f in dataclasses.fields(cls)
    )


def _decode_dataclass(cls: type[T], data: Any, where: str, strict: bool = True) -> T:
    if not isinstance(data, Mapping):
        raise _bad(where, f"expected an object, got {_kind(data)}")
    klass: type = cls  # mypy finds no `Hashable` in a `type[T]`, as `_hints`'s cache wants
    fields = _hints(klass)
    names = {name for name, _, _ in fields}
    unknown = sorted(str(k) for k in data if k not in names)
    if unknown and strict:
        raise _bad(where, f"unknown field(s): {', '.join(unknown)}")
    kwargs: dict[str, Any] = {}
    for name, hint, required in fields:
        if name in data:
            kwargs[name] = _decode(hint, data[name], f"{where}.{name}", strict)
        elif required:
            raise _bad(f"{where}.{name}", "missing required field")
    return cls(**kwargs)


def _decode(hint: Any, value: Any, where: str, strict: bool) -> Any:
    origin = get_origin(hint)
    if origin in (Union, types.UnionType):
        return _decode_union(get_args(hint), value, where, strict)
    if origin is Literal:
        if not isinstance(value, str) or value not in get_args(hint):
            allowed = ", ".join(repr(a) for a in get_args(hint))
            raise _bad(where, f"expected one of {allowed}, got {value!r}")
        return value
    if origin is tuple:
        return _decode_tuple(get_args(hint), value, where, strict)
    if isinstance(hint, type) and dataclasses.is_dataclass(hint):
        return _decode_dataclass(hint, value, where, strict)
    decoder = _SCALARS.get(hint)
    if decoder is None:
        raise _bad(where, f"unsupported type {hint!r}")
    return decoder(value, where)


def _decode_union(options: tuple[Any, ...], value: Any, where: str, strict: bool) -> Any:
    if value is None and type(None) in options:
        return None
    real = [o for o in options if o is not type(None)]
    if len(real) != 1:
        raise _bad(where, f"unsupported union {options!r}")
    return _decode(real[0], value, where, strict)


def _decode_tuple(args: tuple[Any, ...], value: Any, where: str, strict: bool) -> tuple[Any, ...]:
    if not isinstance(value, (list, tuple)):
        raise _bad(where, f"expected an array, got {_kind(value)}")
    if len(args) != 2 or args[1] is not Ellipsis:
        raise _bad(where, f"unsupported tuple type {args!r}")
    return tuple(_decode(args[0], item, f"{where}[{i}]", strict) for i, item in enumerate(value))


def _str(value: Any, where: str) -> str:
    if not isinstance(value, str):
        raise _bad(where, f"expected a string, got {_kind(value)}")
    return value


def _int(value: Any, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise _bad(where, f"expected an integer, got {_kind(value)}")
    return value


def _decimal(value: Any, where: str) -> Decimal:
    if not isinstance(value, str):
        raise _bad(where, f'expected a decimal string such as "25.00", got {_kind(value)}')
    try:
        amount = Decimal(value.strip())
    except InvalidOperation:
        raise _bad(where, f"not a decimal number: {value!r}") from None
    if not amount.is_finite():
        raise _bad(where, f"not a finite decimal: {value!r}")
    return amount


def _datetime(value: Any, where: str) -> datetime:
    if not isinstance(value, str) or not _DATETIME.fullmatch(value):
        example = "2026-11-29T06:00:00Z"
        raise _bad(where, f"expected an ISO 8601 UTC time such as {example}, got {value!r}")
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError as exc:
        raise _bad(where, f"invalid time {value!r}: {exc}") from None
    return parsed.astimezone(UTC)


def _date(value: Any, where: str) -> date:
    if not isinstance(value, str) or not _DATE.fullmatch(value):
        raise _bad(where, f"expected a date such as 2026-11-01, got {value!r}")
    try:
        return date.fromisoformat(value)
    except ValueError as exc:
        raise _bad(where, f"invalid date {value!r}: {exc}") from None


_SCALARS: dict[Any, Any] = {
    str: _str,
    int: _int,
    Decimal: _decimal,
    datetime: _datetime,
    date: _date,
}


def _kind(value: Any) -> str:
    return "null" if value is None else type(value).__name__


def _bad(where: str, detail: str) -> PlatformError:
    return PlatformError("decode", f"{where}: {detail}")

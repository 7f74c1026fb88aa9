"""Domain names as the platform stores them: lowercase A-labels (IDNA 2008), no trailing dot.

`normalize_domain` accepts what people type (`Bücher.de`, `XN--BCHER-KVA.DE`, `acme.com.`) and
rejects, with a message a person can act on, what cannot be a customer's mail domain: IP
addresses, underscores, empty or over-long labels, single-label names, numeric TLDs, invalid
punycode and labels that mix scripts (homographs such as a Cyrillic "а" in "аpple.com").
"""

from __future__ import annotations

import ipaddress
import re
import unicodedata

import idna

__all__ = ["normalize_domain", "label_scripts", "MAX_LABEL", "MAX_NAME"]

MAX_LABEL = 63
MAX_NAME = 253

_LDH = re.compile(r"[a-z0-9-]+")
_NEUTRAL_NAME_PREFIXES = ("MODIFIER", "COMBINING", "KATAKANA-HIRAGANA")
_SCRIPT_ALIASES = {"CJK": "Han", "IDEOGRAPHIC": "Han"}
# UTS #39 "highly restrictive": one script, or Latin with one of the CJK writing systems.
_ALLOWED_MIXES = (
    frozenset({"Latin", "Han", "Hiragana", "Katakana"}),
    frozenset({"Latin", "Han", "Bopomofo"}),
    frozenset({"Latin", "Han", "Hangul"}),
)


def normalize_domain(text: str) -> str:
    """The lowercase A-label form of `text`, or `ValueError` saying what is wrong with it."""
    if not isinstance(text, str):
        raise ValueError(f"must be a string, not {type(text).__name__}")
    if not text:
        raise ValueError("is empty")
    if any(ch.isspace() for ch in text):
        raise ValueError("contains whitespace")
    if _is_ip_address(text):
        raise ValueError("is an IP address, not a domain name")
    name = _remap(text)
    name = name[:-1] if name.endswith(".") else name
    labels = [_normalize_label(label) for label in name.split(".")]
    if len(labels) < 2:
        raise ValueError("needs at least two labels (e.g. example.com)")
    if labels[-1].isdigit():
        raise ValueError(f"top-level domain {labels[-1]!r} is all digits")
    result = ".".join(labels)
    if len(result) > MAX_NAME:
        raise ValueError(f"is {len(result)} characters long as an A-label; at most {MAX_NAME}")
    return result


def label_scripts(label: str) -> set[str]:
    """The scripts of a label's letters (from Unicode character names; digits, hyphens and
    combining marks are neutral). Python's stdlib has no Script property, and names are a
    faithful proxy for the scripts that matter for homographs."""
    scripts: set[str] = set()
    for ch in label:
        if not unicodedata.category(ch).startswith("L"):
            continue
        name = unicodedata.name(ch, "")
        if not name or name.startswith(_NEUTRAL_NAME_PREFIXES):
            continue
        first = name.split(" ", 1)[0]
        scripts.add(_SCRIPT_ALIASES.get(first, first.capitalize()))
    return scripts


def _is_ip_address(text: str) -> bool:
    candidate = text[1:-1] if text.startswith("[") and text.endswith("]") else text
    try:
        ipaddress.ip_address(candidate)
    except ValueError:
        return False
    return True


def _remap(text: str) -> str:
    """UTS #46 mapping (case folding, full-width forms, ideographic dots), non-transitional."""
    try:
        return idna.uts46_remap(text, std3_rules=False, transitional=False)
    except idna.IDNAError as exc:
        raise ValueError(f"contains a character not allowed in domain names ({exc})") from exc


def _normalize_label(label: str) -> str:
    if not label:
        raise ValueError("has an empty label (a leading dot or two dots in a row)")
    if label.isascii():
        alabel = _check_ascii_label(label)
        ulabel = _decode_alabel(label) if label.startswith("xn--") else label
    else:
        alabel = _encode_ulabel(label)
        ulabel = label
    _check_scripts(ulabel)
    if len(alabel) > MAX_LABEL:
        raise ValueError(
            f"label {label!r} is {len(alabel)} characters long as an A-label; at most {MAX_LABEL}"
        )
    return alabel


def _check_ascii_label(label: str) -> str:
    if not _LDH.fullmatch(label):
        bad = next(ch for ch in label if not _LDH.fullmatch(ch))
        raise ValueError(
            f"label {label!r} contains {bad!r}: only letters, digits and hyphens are allowed"
        )
    if label.startswith("-") or label.endswith("-"):
        raise ValueError(f"label {label!r} starts or ends with a hyphen")
    if label[2:4] == "--" and not label.startswith("xn--"):
        raise ValueError(
            f"label {label!r} has '--' in positions 3-4, which is reserved for IDNA (xn--) labels"
        )
    return label


def _decode_alabel(label: str) -> str:
    try:
        ulabel = idna.ulabel(label)
        canonical = idna.alabel(ulabel).decode("ascii")
    except (idna.IDNAError, UnicodeError) as exc:
        raise ValueError(f"label {label!r} is not a valid punycode (xn--) label: {exc}") from exc
    if canonical != label:
        raise ValueError(
            f"label {label!r} is not a canonical punycode label (expected {canonical})"
        )
    return ulabel


def _encode_ulabel(label: str) -> str:
    try:
        return idna.alabel(label).decode("ascii")
    except (idna.IDNAError, UnicodeError) as exc:
        raise ValueError(
            f"label {label!r} is not a valid internationalized label (IDNA 2008): {exc}"
        ) from exc


def _check_scripts(ulabel: str) -> None:
    scripts = label_scripts(ulabel)
    if len(scripts) <= 1 or any(scripts <= mix for mix in _ALLOWED_MIXES):
        return
    names = ", ".join(sorted(scripts))
    raise ValueError(
        f"label {ulabel!r} mixes scripts ({names}): a look-alike (homograph) of another name"
    )

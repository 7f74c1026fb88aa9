"""Domain names as the platform stores them: lowercase A-labels (IDNA 2008), no trailing dot.

`normalize_domain` accepts what people type (`Bücher.de`, `XN--BCHER-KVA.DE`, `acme.com.`) and
rejects, with a message a person can act on, what cannot be a customer's mail domain: IP
addresses, underscores, empty or over-long labels, single-label names, numeric TLDs, invalid
punycode and labels that mix scripts (homographs such as a Cyrillic "а" in "аpple.com").
"""

from __future__ import annotations

import functools
import ipaddress
import re
import unicodedata

import idna

from transfer_runner.shown import shown

__all__ = ["normalize_domain", "label_scripts", "MAX_LABEL", "MAX_NAME"]

MAX_LABEL = 63
MAX_NAME = 253
# Longer input cannot be a domain name even after UTS #46 drops ignorable characters; checking
# first keeps mapping and punycode (quadratic in a label's length) away from megabyte strings.
MAX_INPUT = 1024

_LDH = re.compile(r"[a-z0-9-]+")
_IPV4_CHARS = re.compile(r"[0-9.]+")
_SPACE = re.compile(r"\s")
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
    if type(text) is str:  # the same few names are normalised many times per manifest
        return _normalize_cached(text)
    return _normalize(text)


@functools.lru_cache(maxsize=1 << 16)  # plan, semantics and cross checks each pass over all
def _normalize_cached(text: str) -> str:
    return _normalize(text)  # an error is not cached: it is raised again each time


def _normalize(text: str) -> str:
    if not isinstance(text, str):
        raise ValueError(f"must be a string, not {type(text).__name__}")
    if not text:
        raise ValueError("is empty")
    if len(text) > MAX_INPUT:
        raise ValueError(f"is {len(text)} characters long; a domain name has at most {MAX_NAME}")
    if _SPACE.search(text):
        raise ValueError("contains whitespace")
    if _is_ip_address(text):
        raise ValueError("is an IP address, not a domain name")
    name = _remap(text)
    name = name[:-1] if name.endswith(".") else name
    labels = [_normalize_label(label) for label in name.split(".")]
    if len(labels) < 2:
        raise ValueError("needs at least two labels (e.g. example.com)")
    if labels[-1].isdigit():
        raise ValueError(f"top-level domain {shown(labels[-1])} is all digits")
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
    if ":" not in text and not _IPV4_CHARS.fullmatch(text):
        return False  # the common case, without the cost of ipaddress's exceptions
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
        if len(label) > MAX_LABEL:  # its A-label is longer still; punycode is quadratic
            raise ValueError(
                f"label {shown(label)} is {len(label)} characters long; at most {MAX_LABEL}"
            )
        alabel = _encode_ulabel(label)
        ulabel = label
    _check_scripts(ulabel)
    if len(alabel) > MAX_LABEL:
        raise ValueError(
            f"label {shown(label)} is {len(alabel)} characters long as an A-label; "
            f"at most {MAX_LABEL}"
        )
    return alabel


def _check_ascii_label(label: str) -> str:
    if not _LDH.fullmatch(label):
        bad = next(ch for ch in label if not _LDH.fullmatch(ch))
        raise ValueError(
            f"label {shown(label)} contains {bad!r}: only letters, digits and hyphens are allowed"
        )
    if label.startswith("-") or label.endswith("-"):
        raise ValueError(f"label {shown(label)} starts or ends with a hyphen")
    if label[2:4] == "--" and not label.startswith("xn--"):
        raise ValueError(
            f"label {shown(label)} has '--' in positions 3-4, which is reserved for IDNA "
            "(xn--) labels"
        )
    return label


def _decode_alabel(label: str) -> str:
    try:
        ulabel = idna.ulabel(label)
        canonical = idna.alabel(ulabel).decode("ascii")
    except (idna.IDNAError, UnicodeError) as exc:
        raise ValueError(
            f"label {shown(label)} is not a valid punycode (xn--) label: {exc}"
        ) from exc
    if canonical != label:
        raise ValueError(
            f"label {shown(label)} is not a canonical punycode label (expected {canonical})"
        )
    return ulabel


def _encode_ulabel(label: str) -> str:
    try:
        return idna.alabel(label).decode("ascii")
    except (idna.IDNAError, UnicodeError) as exc:
        raise ValueError(
            f"label {shown(label)} is not a valid internationalized label (IDNA 2008): {exc}"
        ) from exc


def _check_scripts(ulabel: str) -> None:
    if ulabel.isascii():
        return  # letters, digits and hyphens: Latin alone
    scripts = label_scripts(ulabel)
    if len(scripts) <= 1 or any(scripts <= mix for mix in _ALLOWED_MIXES):
        return
    names = ", ".join(sorted(scripts))
    raise ValueError(
        f"label {shown(ulabel)} mixes scripts ({names}): a look-alike (homograph) of another name"
    )

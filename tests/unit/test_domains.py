"""normalize_domain: IDNA 2008 A-labels out, clear reasons for everything rejected."""

from __future__ import annotations

import pytest

from transfer_runner.domains import label_scripts, normalize_domain

GOOD = [
    ("acme.com", "acme.com"),
    ("ACME.Com", "acme.com"),
    ("acme.com.", "acme.com"),
    ("mail.acme.co.uk", "mail.acme.co.uk"),
    ("a.io", "a.io"),
    ("x1-y2.example", "x1-y2.example"),
    ("bücher.de", "xn--bcher-kva.de"),
    ("Bücher.DE", "xn--bcher-kva.de"),
    ("xn--bcher-kva.de", "xn--bcher-kva.de"),
    ("XN--BCHER-KVA.DE", "xn--bcher-kva.de"),
    ("faß.de", "xn--fa-hia.de"),  # IDNA 2008 keeps ß (IDNA 2003 mapped it to "ss")
    ("Ａｃｍｅ。ｃｏｍ", "acme.com"),  # full-width letters and ideographic dot (UTS 46)
    ("пример.рф", "xn--e1afmkfd.xn--p1ai"),
    ("例え.テスト", "xn--r8jz45g.xn--zckzah"),  # Han + Hiragana, Katakana: allowed mix
    ("한국.kr", "xn--3e0b707e.kr"),
    ("gdi.bücher.de", "gdi.xn--bcher-kva.de"),
    ("a" * 63 + ".com", "a" * 63 + ".com"),
    (".".join(["a" * 61] * 4) + ".ab", ".".join(["a" * 61] * 4) + ".ab"),  # 250 chars
]

BAD = [
    ("", "is empty"),
    ("acme .com", "whitespace"),
    (" acme.com", "whitespace"),
    ("com", "at least two labels"),
    ("acme..com", "empty label"),
    (".acme.com", "empty label"),
    ("acme.com..", "empty label"),
    ("_dmarc.acme.com", "contains '_'"),
    ("acme_corp.com", "contains '_'"),
    ("acme!.com", "contains '!'"),
    ("-acme.com", "starts or ends with a hyphen"),
    ("acme-.com", "starts or ends with a hyphen"),
    ("ab--cd.com", "positions 3-4"),
    ("xn--zz.com", "not a valid punycode"),
    ("xn--acme.com", "not a valid punycode"),
    ("a" * 64 + ".com", "64 characters"),
    (".".join(["a" * 63] * 4) + ".com", "at most 253"),
    ("192.168.1.10", "IP address"),
    ("::1", "IP address"),
    ("[2001:db8::1]", "IP address"),
    ("acme.123", "all digits"),
    ("аpple.com", "mixes scripts (Cyrillic, Latin)"),  # Cyrillic а
    ("xn--pple-43d.com", "mixes scripts (Cyrillic, Latin)"),  # the same, as punycode
    ("pаypal.com", "homograph"),
    ("gοogle.com", "mixes scripts (Greek, Latin)"),  # Greek omicron
    ("☃.com", "not a valid internationalized label"),
    ("a\u200db.com", "IDNA 2008"),  # zero-width joiner outside its context
]


@pytest.mark.parametrize(("text", "expected"), GOOD)
def test_normalize_accepts(text: str, expected: str) -> None:
    assert normalize_domain(text) == expected


@pytest.mark.parametrize(("text", "fragment"), BAD)
def test_normalize_rejects(text: str, fragment: str) -> None:
    with pytest.raises(ValueError) as caught:
        normalize_domain(text)
    assert fragment in str(caught.value)


def test_uppercase_punycode_is_lowered_before_checking() -> None:
    assert normalize_domain("xn--BCHER-kva.de") == "xn--bcher-kva.de"


def test_non_string_is_rejected_with_a_message() -> None:
    with pytest.raises(ValueError, match="must be a string"):
        normalize_domain(42)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("label", "scripts"),
    [
        ("acme", {"Latin"}),
        ("bücher", {"Latin"}),
        ("a1-2", {"Latin"}),
        ("123", set()),
        ("аpple", {"Cyrillic", "Latin"}),
        ("日本語ドメイン", {"Han", "Katakana"}),
    ],
)
def test_label_scripts(label: str, scripts: set[str]) -> None:
    assert label_scripts(label) == scripts

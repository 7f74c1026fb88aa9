"""Shared by the hostile-manifest tests: a base manifest, loading with timing, the located-
diagnostics property, the `validate` CLI in process, and hypothesis strategies that generate
manifests from the schema's shape and then mutate them."""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import yaml
from click.testing import CliRunner
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

from transfer_runner.cli import main
from transfer_runner.domains import normalize_domain
from transfer_runner.errors import Diagnostic
from transfer_runner.manifest.api import load_transfers
from transfer_runner.manifest.loader import resolve_plain_scalar
from transfer_runner.manifest.model import Transfer
from transfer_runner.manifest.semantic import looks_like_secret

T = TypeVar("T")
SLOWEST: dict[str, tuple[float, str]] = {}  # group -> (seconds, case)
TIMES: list[float] = []
BUDGET_S = 0.100
WHOLE_FILE = ("the file is empty", "file is ", "not a regular file", "cannot read")
PARSERS = [yaml.SafeLoader] + ([yaml.CSafeLoader] if yaml.__with_libyaml__ else [])


def timed(group: str, case: str, call: Callable[[], T]) -> T:
    """`call()`, its time recorded in TIMES and, if the slowest of `group`, in SLOWEST."""
    started = time.perf_counter()
    try:
        return call()
    finally:
        seconds = time.perf_counter() - started
        TIMES.append(seconds)
        if seconds > SLOWEST.get(group, (-1.0, ""))[0]:
            SLOWEST[group] = (seconds, case)


BASE = """\
apiVersion: transfer-runner/v1
kind: Transfer
metadata:
  name: acme-com
  labels: {wave: "2026-12"}
spec:
  customer:
    account: C-1001
    domains: [acme.com, acme.net]
  reseller:
    account: R-301
    name: Northwind IT
  subscription:
    users: 40
    domains: 2
  services: [spamstopshere, restoremail]
  temporary_domain: gdi.acme.com
  authorization:
    customer_ticket: T-5001
    reseller_ticket: T-5002
  data: {quarantine: export, archive: migrate}
  billing: {transfer_fee: "25.00", prorate: true}
"""


BASE_LINES = set(BASE.splitlines())


def edit(old: str, new: str, text: str = BASE) -> str:
    """`text` with its one occurrence of `old` replaced by `new`."""
    assert text.count(old) == 1, old
    return text.replace(old, new)


# -- loading and the located-diagnostics property ---------------------------------------------
def case_of(data: bytes) -> str:
    """What tells a case apart: its first line that is not in BASE."""
    lines = data.decode("utf-8", "replace").splitlines()
    return next((line for line in lines if line not in BASE_LINES), "(BASE)")[:100]


def load(path: Path, data: bytes, group: str) -> tuple[list[Transfer], list[Diagnostic]]:
    """Write `data` to `path` and load it through the public API, timed."""
    path.write_bytes(data)
    return timed(group, case_of(data), lambda: load_transfers([str(path)]))


def _line_breaks(data: bytes) -> int:
    text = data.decode("utf-8", "replace")
    return len(re.findall("\r\n|[\r\n\x85\u2028\u2029]", text))


def assert_located(
    path: Path, data: bytes, transfers: list[Transfer], found: list[Diagnostic]
) -> None:
    """Every diagnostic names the file, a real line and column, and fits on one short line;
    a file yields a transfer exactly when it has no diagnostic."""
    assert len(transfers) == (0 if found else 1), (transfers, found)
    for d in found:
        text = str(d)
        assert d.path == str(path)
        assert text.startswith(f"{path}:{d.line}:{d.col}: "), text
        assert len(text.splitlines()) == 1, text
        assert len(text) < 1500, text[:300]
        if d.line == 0:
            assert d.col == 0 and d.message.startswith(WHOLE_FILE), text
        else:
            assert 1 <= d.line <= _line_breaks(data) + 2, text
            assert 1 <= d.col <= len(data) + 1, text


def validate_cli(path: Path, fmt: str = "text") -> tuple[int, str]:
    """`transfer-runner validate PATH --format FMT` in this process: exit code and output."""
    with CliRunner().isolation() as (_out, _err, mixed):
        try:
            main(["validate", str(path), "--format", fmt])
        except SystemExit as exc:
            code = int(exc.code or 0)
        else:  # pragma: no cover - main always exits
            code = 0
        return code, mixed.getvalue().decode("utf-8", "replace")


def diagnose(workdir: Path, text: str | bytes, group: str = "explicit") -> list[Diagnostic]:
    """The diagnostics of one manifest, after checking that they are all located."""
    path = workdir / "m.yml"
    data = text if isinstance(text, bytes) else text.encode("utf-8")
    transfers, found = load(path, data, group)
    assert_located(path, data, transfers, found)
    return found


def lines_of(found: list[Diagnostic]) -> list[str]:
    """`line:col: where: message` of each diagnostic (the file name left out)."""
    return [str(d).split(":", 1)[1] for d in found]


# -- generated manifests: the schema's shape as hypothesis strategies ------------------------
SERVICES = ["spamstopshere", "hosted-email", "restoremail", "encryption"]
MODES = ["migrate", "export", "skip"]
TLDS = ["com", "net", "org", "io", "de", "co.uk", "xn--p1ai"]
IDN_LABELS = ["bücher", "пример", "münchen", "例え", "xn--bcher-kva", "ελλάδα"]
_PLAIN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._/-]*")

names = st.from_regex(r"[a-z0-9](?:[-a-z0-9]{0,20}[a-z0-9])?", fullmatch=True)
identifiers = st.from_regex(r"[A-Za-z0-9][A-Za-z0-9._-]{0,15}", fullmatch=True)
ascii_labels = st.from_regex(r"[a-z0-9](?:[-a-z0-9]{0,12}[a-z0-9])?", fullmatch=True).filter(
    lambda s: s[2:4] != "--"
)
domain_names = st.builds(
    lambda labels, tld: ".".join([*labels, tld]),
    st.lists(st.one_of(ascii_labels, st.sampled_from(IDN_LABELS)), min_size=1, max_size=2),
    st.sampled_from(TLDS),
)
label_keys = st.from_regex(r"(?:example\.com/)?[a-z](?:[-a-z0-9]{0,8}[a-z0-9])?", fullmatch=True)
label_values = st.from_regex(
    r"(?:[A-Za-z0-9](?:[-A-Za-z0-9_.]{0,10}[A-Za-z0-9])?)?", fullmatch=True
)
reseller_names = (
    st.text(st.characters(categories=("L", "N", "P", "S", "Zs")), min_size=1, max_size=30)
    .map(str.strip)
    .filter(bool)
)
fees = st.from_regex(r"[0-9]{1,6}(?:\.[0-9]{1,2})?", fullmatch=True).filter(
    lambda fee: fee.strip("0.") != ""  # a fee of 0 is refused (issue 12)
)


@st.composite
def manifest_docs(draw: st.DrawFn) -> dict[str, Any]:
    """A manifest that both validation layers accept, as a plain mapping."""
    domains = draw(st.lists(domain_names, min_size=1, max_size=4, unique_by=normalize_domain))
    customer, reseller = draw(st.lists(identifiers, min_size=2, max_size=2, unique=True))
    tickets = draw(st.lists(identifiers, min_size=2, max_size=2, unique=True))
    metadata: dict[str, Any] = {"name": draw(names)}
    labels = draw(
        st.dictionaries(
            label_keys.filter(lambda k: not looks_like_secret(k)), label_values, max_size=3
        )
    )
    if labels or draw(st.booleans()):
        metadata["labels"] = labels
    spec: dict[str, Any] = {
        "customer": {"account": customer, "domains": domains},
        "reseller": {"account": reseller, "name": draw(reseller_names)},
        "subscription": {
            "users": draw(st.integers(1, 10**6)),
            "domains": draw(st.integers(len(domains), len(domains) + 5)),
        },
        "services": draw(st.lists(st.sampled_from(SERVICES), min_size=1, unique=True)),
        "authorization": {"customer_ticket": tickets[0], "reseller_ticket": tickets[1]},
    }
    customers = {normalize_domain(d) for d in domains}
    temporary = draw(st.sampled_from(["gdi", "tmp-1", "x"])) + "." + draw(st.sampled_from(domains))
    if normalize_domain(temporary) not in customers and draw(st.booleans()):
        spec["temporary_domain"] = temporary
    elif normalize_domain("gdi." + domains[0]) in customers:
        spec["temporary_domain"] = "zz9." + domains[0]
    modes = st.sampled_from(MODES)
    for key, values in (("data", {"quarantine": modes, "archive": modes}),
                        ("billing", {"transfer_fee": fees, "prorate": st.booleans()})):  # fmt: skip
        if draw(st.booleans()):
            spec[key] = draw(st.fixed_dictionaries({}, optional=values))
    return {
        "apiVersion": "transfer-runner/v1",
        "kind": "Transfer",
        "metadata": metadata,
        "spec": spec,
    }


class Raw(str):
    """A string emitted between double quotes as it is, control characters and all."""


def _scalar(draw: st.DrawFn, value: Any) -> str:
    if isinstance(value, bool) or value is None:
        return {True: "true", False: "false", None: "null"}[value]
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, Raw):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    styles = ["double", "single"]
    if _PLAIN.fullmatch(value) and _reads_back(value):
        styles.append("plain")
    style = draw(st.sampled_from(styles))
    if style == "plain":
        return value
    if style == "single":
        return "'" + value.replace("'", "''") + "'"
    escape = draw(st.booleans())
    if value.isprintable() and (value.isascii() or not escape):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return '"' + "".join(_escaped(ch, escape) for ch in value) + '"'


def _reads_back(value: str) -> bool:
    """True if `value` written plain is read back as the same string."""
    try:
        return resolve_plain_scalar(value) == value
    except ValueError:  # a number too long to convert: not a string either
        return False


def _escaped(ch: str, escape_all: bool) -> str:
    """One character in a double-quoted YAML scalar: itself, or a YAML escape."""
    if ch in '"\\':
        return "\\" + ch
    if ch.isprintable() and not (escape_all and not ch.isascii()):
        return ch
    code = ord(ch)
    if code < 0x100:
        return f"\\x{code:02x}"
    return f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"


def _flow(draw: st.DrawFn, value: Any) -> str:
    if isinstance(value, dict):
        items = (f"{_scalar(draw, k)}: {_flow(draw, v)}" for k, v in value.items())
        return "{" + ", ".join(items) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(_flow(draw, v) for v in value) + "]"
    return _scalar(draw, value)


def emit(draw: st.DrawFn, mapping: dict[str, Any], indent: int = 0) -> list[str]:
    """YAML lines for `mapping`, each collection in block or flow style, scalars in any
    style that keeps their value (plain only where it reads back as the same string)."""
    pad, lines = " " * indent, []
    for key, value in mapping.items():
        head = f"{pad}{_scalar(draw, key)}:"
        if isinstance(value, dict) and value and draw(st.booleans()):
            lines += [head, *emit(draw, value, indent + 2)]
        elif isinstance(value, list) and value and draw(st.booleans()):
            lines += [head, *(f"{pad}  - {_flow(draw, item)}" for item in value)]
        else:
            lines.append(f"{head} {_flow(draw, value)}")
    return lines


@st.composite
def manifests(draw: st.DrawFn) -> tuple[dict[str, Any], bytes]:
    """A valid manifest and its YAML text."""
    doc = draw(manifest_docs())
    return doc, ("\n".join(emit(draw, doc)) + "\n").encode("utf-8")


# -- mutations -------------------------------------------------------------------------------
FRAGMENTS = [
    "&a ", "*a", "&a [x, *a]", "!!python/object/apply:os.system ['id']", "!!binary aGk=",
    "!!int ", "!custom ", "<<: *base\n", "---\n", "...\n", "? ", "- ", ": ", "{", "}", "[",
    "]", ",", "|\n", ">-\n", "%YAML 1.1\n", "%TAG ! tag:x,2026:\n", "\t", "# c\n", "'", '"',
    "@", "`", "yes", "no", "on", "~", ".inf", ".nan", "0755", "0x1F", "1e3", "2026-11-29",
    "12:30:00", "\\", "\u202e", "\u2028", "\x85", "\ufeff", "\x00", "\x1b[31m", "a: b: c",
    "password: hunter2\n", " " * 40, "[" * 40, "{" * 40, "- " * 40, "&x" + "y" * 300,
]  # fmt: skip
# Empty containers are built anew each time: `st.just([])` would hand out one shared list,
# which an "add" mutation changes for every later example (hypothesis: FlakyStrategyDefinition).
WRONG_VALUES = st.one_of(
    st.integers(), st.floats(), st.booleans(), st.none(), st.text(max_size=20),
    st.builds(list), st.builds(dict), st.lists(st.integers(), max_size=3),
    st.dictionaries(st.text(max_size=5), st.text(max_size=5), max_size=2),
)  # fmt: skip
NEW_KEYS = st.one_of(
    st.text(max_size=20), st.sampled_from(["password", "api_key", "token", "Secret", "extra"])
)


def _paths(node: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    """The path of `node` and of every node under it."""
    yield path
    if isinstance(node, dict):
        for key, child in node.items():
            yield from _paths(child, (*path, key))
    elif isinstance(node, list):
        for index, child in enumerate(node):
            yield from _paths(child, (*path, index))


def _mutate_tree(draw: st.DrawFn, doc: dict[str, Any]) -> str:
    """Change one node of `doc` in place; says what it did."""
    path = draw(st.sampled_from([p for p in _paths(doc) if p]))
    parent = doc
    for part in path[:-1]:
        parent = parent[part]
    last = path[-1]
    op = draw(st.sampled_from(["drop", "rename", "retype", "huge", "unicode", "add"]))
    if op == "drop":
        del parent[last]
    elif op == "rename" and isinstance(parent, dict):
        parent[draw(NEW_KEYS)] = parent.pop(last)
    elif op == "huge":
        parent[last] = draw(st.characters()) * draw(st.integers(300, 300_000))
    elif op == "unicode":
        text = draw(st.text(min_size=1, max_size=30))
        parent[last] = Raw(text) if draw(st.booleans()) else text
    elif op == "add" and isinstance(parent[last], (dict, list)):
        child = parent[last]
        value = draw(WRONG_VALUES)
        child.update({draw(NEW_KEYS): value}) if isinstance(child, dict) else child.append(value)
    else:
        parent[last] = draw(WRONG_VALUES)
    return f"{op} {path}"


def _mutate_text(draw: st.DrawFn, data: bytes) -> tuple[bytes, str]:
    """`data` with a fragment, lines, a character, bytes or line breaks changed."""
    op = draw(st.sampled_from(["fragment", "lines", "truncate", "char", "bytes", "breaks"]))
    # Anywhere, but mostly where YAML structure is: line starts, after `: `, before `]`.
    anchors = [m.end() for m in re.finditer(rb"^ *|: |- |, |\[|(?=[\]}\n])", data, re.M)]
    at = draw(st.one_of(st.sampled_from(anchors or [0]), st.integers(0, len(data))))
    if op == "fragment":
        return data[:at] + draw(st.sampled_from(FRAGMENTS)).encode() + data[at:], f"{op}@{at}"
    if op == "truncate":
        return data[:at], f"{op}@{at}"
    if op == "char":
        char = draw(st.characters()).encode("utf-8", "surrogatepass")
        return data[:at] + char + data[at + 1 :], op
    if op == "bytes":
        return data[:at] + draw(st.binary(min_size=1, max_size=4)) + data[at:], op
    if op == "breaks":
        return data.replace(b"\n", draw(st.sampled_from([b"\r\n", b"\r", b"\n\n"]))), op
    lines = data.split(b"\n")
    i, j = draw(st.integers(0, len(lines) - 1)), draw(st.integers(0, len(lines) - 1))
    how = draw(st.sampled_from(["delete", "duplicate", "swap", "indent", "dedent"]))
    if how == "delete":
        del lines[i]
    elif how == "duplicate":
        lines.insert(j, lines[i])
    elif how == "swap":
        lines[i], lines[j] = lines[j], lines[i]
    else:
        lines[i] = b"   " + lines[i] if how == "indent" else lines[i].lstrip()
    return b"\n".join(lines), f"{how} line {i}"


@st.composite
def hostile_manifests(draw: st.DrawFn) -> tuple[bytes, list[str]]:
    """A valid manifest changed by one to four mutations: its bytes and what was done."""
    doc = draw(manifest_docs())
    done = [_mutate_tree(draw, doc) for _ in range(draw(st.integers(0, 2)))]
    data = ("\n".join(emit(draw, doc)) + "\n").encode("utf-8", "surrogatepass")
    for _ in range(draw(st.integers(0 if done else 1, 2))):
        data, what = _mutate_text(draw, data)
        done.append(what)
    return data, done


def hypothesis_settings(examples: int) -> settings:
    """No deadline (time is measured, not asserted); huge examples are on purpose."""
    return settings(
        max_examples=examples,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )


def at(text: str, needle: str) -> tuple[int, int]:
    """1-based line and column of the first `needle` in `text`."""
    index = text.index(needle)
    return text.count("\n", 0, index) + 1, index - text.rfind("\n", 0, index)


def assert_refused_at(
    found: list[Diagnostic], where: str, position: tuple[int, int], *words: str
) -> None:
    """Some diagnostic about `where` (or under it) is at `position` and has all `words`."""
    hits = [d for d in found if d.where.startswith(where) and (d.line, d.col) == position]
    assert hits, (where, position, [str(d) for d in found])
    assert any(all(w in d.message for w in words) for d in hits), [str(d) for d in hits]

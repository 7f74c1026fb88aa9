"""End to end: `apply` on a pseudo-terminal draws the live view, read back through a terminal
emulator (pyte): never two transfers on one line, failures kept, `NO_COLOR` without colours,
`TERM=dumb` and a pipe as plain lines."""

from __future__ import annotations

import html
import os
import re
import subprocess
import sys
from pathlib import Path

import pexpect
import pyte
import pytest

from transfer_runner.platforms.sandbox import init_sandbox

pytestmark = [pytest.mark.integration, pytest.mark.e2e]

REPO = Path(__file__).resolve().parents[2]
COUNT, FORKS, ROWS, COLS = 16, 8, 30, 110
NAME = re.compile(r"cust\d{3}-example")
COLOUR = re.compile(r"\x1b\[([0-9;]*)m")
BROKEN = 5  # its manifest names a reseller its tickets do not: it fails at the first check


def _world(root: Path) -> dict[str, str]:
    """COUNT direct customers with their tickets, their manifests (data waived), a sandbox
    with a little latency so that FORKS transfers run at once; the CLI's environment."""
    accounts = ["accounts:", "  - {id: R-301, type: reseller, name: Northwind IT}"]
    tickets = ["tickets:"]
    transfers = root / "transfers"
    transfers.mkdir()
    for i in range(COUNT):
        account, domain, name = f"C-{1000 + i}", f"cust{i:03d}.example", f"cust{i:03d}-example"
        accounts += [f"  - {{id: {account}, type: direct, name: Customer {i}, "
                     f"domains: [{domain}], users: 5, services: [spamstopshere]}}"]  # fmt: skip
        tickets += [
            f"  - {{id: T-{2 * i}, account: {account}, subject: Authorize transfer of account,"
            f" body: 'We, {domain}, authorize the transfer to resold under Northwind IT.'}}",
            f"  - {{id: T-{2 * i + 1}, account: R-301, subject: Authorize Customer Transfer,"
            f" body: 'We, Northwind IT, Authorize {domain} to be transferred to our account.'}}",
        ]
        reseller = "Someone Else Ltd" if i == BROKEN else "Northwind IT"
        (transfers / f"{name}.yml").write_text(
            "apiVersion: transfer-runner/v1\nkind: Transfer\n"
            f"metadata: {{name: {name}}}\n"
            "spec:\n"
            f"  customer: {{account: {account}, domains: [{domain}]}}\n"
            f"  reseller: {{account: R-301, name: {reseller}}}\n"
            "  subscription: {users: 5, domains: 1}\n"
            "  services: [spamstopshere]\n"
            f"  temporary_domain: gdi.{domain}\n"
            f"  authorization: {{customer_ticket: T-{2 * i}, reseller_ticket: T-{2 * i + 1}}}\n"
            "  data: {quarantine: skip, archive: skip}\n",
            encoding="utf-8",
        )
    fixture = root / "fixture.yml"
    fixture.write_text("\n".join(["seed: 3", *accounts, *tickets]) + "\n", encoding="utf-8")
    init_sandbox(root / "sandbox.db", fixture)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TRANSFER_RUNNER_", "AWS_"))}
    env.update(
        TRANSFER_RUNNER_PLATFORM=f"sandbox:{root / 'sandbox.db'}?latency_ms=15",
        TRANSFER_RUNNER_STATE=f"sqlite:{root / 'state.db'}",
        PYTHONPATH=str(REPO),
        COLUMNS=str(COLS),
        LINES=str(ROWS),
    )
    return env


def _on_a_terminal(root: Path, env: dict[str, str], *extra: str) -> tuple[bytes, list[list[str]]]:
    """Run apply on a pseudo-terminal; all it wrote, and every screen it showed (pyte)."""
    screen = pyte.Screen(COLS, ROWS)
    stream = pyte.ByteStream(screen)
    child = pexpect.spawn(
        sys.executable, ["-m", "transfer_runner", "apply", "transfers", "--yes",
                         "--forks", str(FORKS), *extra],
        cwd=str(root), env=env, dimensions=(ROWS, COLS), timeout=180,
    )  # fmt: skip
    raw, screens = b"", []
    while True:
        try:
            chunk = child.read_nonblocking(65536, timeout=180)
        except pexpect.EOF:
            break
        raw += chunk
        stream.feed(chunk)
        screens.append(list(screen.display))
    child.close()
    assert child.exitstatus == 1, raw[-2000:]  # the broken transfer failed
    return raw, screens


def test_the_live_view_keeps_one_transfer_per_line(tmp_path: Path) -> None:
    env = _world(tmp_path)
    env["TERM"] = "xterm-256color"
    raw, screens = _on_a_terminal(tmp_path, env, "--serial", str(COUNT // 2))
    shown = set()
    for lines in screens:
        for line in lines:
            names = set(NAME.findall(line))
            assert len(names) <= 1, f"two transfers on one line: {line!r}"
            shown |= names
    assert shown == {f"cust{i:03d}-example" for i in range(COUNT)}
    overall = [line for lines in screens for line in lines if " done " in line]
    assert any("running" in line and "not started" in line for line in overall)
    _keep_screen(next(lines for lines in screens[::-1] if any(" running " in x for x in lines)))
    final = "\n".join(screens[-1])
    assert f"failed: [cust{BROKEN:03d}-example]" in final  # kept above the bars
    assert f"WAVE 1/2: {COUNT // 2} of {COUNT} transfers" in raw.decode(errors="replace")
    assert "WAVE 2/2" in final
    assert "RECAP" in final and f"{COUNT} transfers" in final
    assert COLOUR.search(raw.decode(errors="replace"))  # colours on a colour terminal


def _keep_screen(lines: list[str]) -> None:
    """With TRANSFER_RUNNER_TEST_ARTIFACTS=DIR, a picture of a screen of the live view (the
    emulator's text in headless Chromium), as the README shows it."""
    where = os.environ.get("TRANSFER_RUNNER_TEST_ARTIFACTS")
    if not where:
        return
    from tests.browser import open_page

    text = html.escape("\n".join(line.rstrip() for line in lines))
    page = Path(where) / "live-view.html"
    page.parent.mkdir(parents=True, exist_ok=True)
    page.write_text(
        '<!doctype html><meta charset="utf-8"><body data-ready="1" style="margin:0">'
        '<pre style="margin:0;padding:12px;background:#1e1e1e;color:#ddd;'
        f'font:13px/1.3 monospace">{text}</pre>',
        encoding="utf-8",
    )
    with open_page(page, width=COLS * 8 + 24, height=ROWS * 17 + 24) as opened:
        opened.page.screenshot(path=str(Path(where) / "live-view.png"))
    page.unlink()


def test_no_color_means_no_colours(tmp_path: Path) -> None:
    env = _world(tmp_path)
    env.update(TERM="xterm-256color", NO_COLOR="1")
    raw, screens = _on_a_terminal(tmp_path, env)
    for params in COLOUR.findall(raw.decode(errors="replace")):
        codes = [int(p) for p in params.split(";") if p]
        colours = [c for c in codes if 30 <= c <= 49 or 90 <= c <= 107]
        assert not colours, f"a colour escape under NO_COLOR: {params!r}"
    assert "RECAP" in "\n".join(screens[-1])


@pytest.mark.parametrize("how", ["dumb terminal", "pipe"])
def test_plain_lines_without_a_capable_terminal(tmp_path: Path, how: str) -> None:
    env = _world(tmp_path)
    args = [sys.executable, "-m", "transfer_runner", "apply", "transfers", "--yes", "--forks", "4"]
    if how == "pipe":
        done = subprocess.run(args, cwd=tmp_path, env=env, capture_output=True, timeout=180)
        raw = done.stdout
    else:
        env["TERM"] = "dumb"
        child = pexpect.spawn(args[0], args[1:], cwd=str(tmp_path), env=env, timeout=180)
        raw = child.read()
        child.close()
    text = raw.decode()
    assert "\x1b[" not in text
    assert "TRANSFER [cust000-example]" in text and "RECAP" in text

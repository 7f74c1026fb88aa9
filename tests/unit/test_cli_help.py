"""Every command explains itself with --help, and bad usage is a message, not a traceback."""

from __future__ import annotations

import gc
import subprocess
import sys

import click
import pytest
from click.testing import CliRunner

from transfer_runner.cli import GC_THRESHOLDS, cli, main


def _commands(group: click.Group, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    out = []
    for name, command in group.commands.items():
        out.append((*prefix, name))
        if isinstance(command, click.Group):
            out.extend(_commands(command, (*prefix, name)))
    return out


@pytest.mark.parametrize("path", _commands(cli), ids=" ".join)
def test_every_command_has_help(path: tuple[str, ...]) -> None:
    result = CliRunner().invoke(cli, [*path, "--help"])
    assert result.exit_code == 0, result.output
    assert "Usage:" in result.output
    command = cli
    for name in path:
        command = command.commands[name]  # type: ignore[attr-defined]
    assert command.help and len(command.help) > 20


def test_usage_error_exits_1_without_traceback(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["plan"])
    assert exit_.value.code == 1
    err = capsys.readouterr().err
    assert "Missing argument" in err and "Traceback" not in err


def test_unknown_platform_is_a_clean_error(tmp_path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["--platform", "nope:x", "status"])
    assert exit_.value.code == 0  # status reads only the state store
    with pytest.raises(SystemExit) as exit_:
        main(
            [
                "--platform",
                f"sandbox:{tmp_path}/missing.db",
                "--state",
                f"sqlite:{tmp_path}/s.db",
                "sandbox",
                "dump",
                f"{tmp_path}/missing.db",
            ]
        )
    assert exit_.value.code == 1
    assert "no sandbox" in capsys.readouterr().err


def test_sandbox_url_latency_option(tmp_path) -> None:
    from transfer_runner.errors import ConfigError
    from transfer_runner.platforms import open_platform
    from transfer_runner.platforms.sandbox.fixture import init_sandbox

    fixture = tmp_path / "f.yml"
    fixture.write_text("accounts:\n  - {id: R-1, type: reseller, name: R}\n")
    init_sandbox(tmp_path / "s.db", fixture)
    platform = open_platform(f"sandbox:{tmp_path}/s.db?latency_ms=5")
    assert platform.get_account("R-1") is not None
    platform.close()
    with pytest.raises(ConfigError, match="latency_ms"):
        open_platform(f"sandbox:{tmp_path}/s.db?speed=fast")


def test_the_program_tunes_the_garbage_collector_and_a_caller_keeps_its_own(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """`python -m transfer_runner` makes collections rare and freezes what start-up built;
    `main(argv)` called from Python (these tests) leaves the caller's settings alone."""
    probe = (
        "import gc, runpy, sys\n"
        "sys.argv = ['transfer-runner', '--version']\n"
        "try:\n"
        "    runpy.run_module('transfer_runner', run_name='__main__')\n"
        "except SystemExit:\n"
        "    pass\n"
        "print(gc.get_threshold(), gc.get_freeze_count() > 10_000)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    ).stdout
    assert out.splitlines()[-1] == f"{GC_THRESHOLDS} True"
    before = gc.get_threshold(), gc.get_freeze_count()
    with pytest.raises(SystemExit):
        main(["--version"])
    assert (gc.get_threshold(), gc.get_freeze_count()) == before
    capsys.readouterr()

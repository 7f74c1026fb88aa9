"""Every command explains itself with --help, and bad usage is a message, not a traceback."""

from __future__ import annotations

import click
import pytest
from click.testing import CliRunner

from transfer_runner.cli import cli, main


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
        main(["--platform", f"sandbox:{tmp_path}/missing.db", "--state",
              f"sqlite:{tmp_path}/s.db", "sandbox", "dump", f"{tmp_path}/missing.db"])
    assert exit_.value.code == 1
    assert "no sandbox" in capsys.readouterr().err

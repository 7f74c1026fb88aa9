"""Every command explains itself with --help, and bad usage is a message, not a traceback."""

from __future__ import annotations

import gc
import shlex
import subprocess
import sys
from pathlib import Path

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


# -- examples ------------------------------------------------------------------------------
# Every command's help ends with a block of 1-3 examples (a `\b`-protected "Examples:" block at
# the end of the docstring, or click's epilog=), and every example is a real command line.
REPO = Path(__file__).resolve().parents[2]
EXAMPLE_HEADINGS = ("Examples:", "Example:")
SHELL_OPERATORS = {">", ">>", "<", "|", "||", "&&", ";", "&", "2>"}


def _help(path: tuple[str, ...]) -> str:
    result = CliRunner().invoke(cli, [*path, "--help"], terminal_width=100)
    assert result.exit_code == 0, result.output
    return result.output


def _examples(help_text: str) -> list[str]:
    """The lines of the help's one example block; it must end the description (Options:
    follows) or the whole help (an epilog)."""
    lines = help_text.splitlines()
    headings = [i for i, line in enumerate(lines) if line.strip() in EXAMPLE_HEADINGS]
    assert len(headings) == 1, f"want one Examples: block, found {len(headings)}:\n{help_text}"
    block: list[str] = []
    rest = lines[headings[0] + 1 :]
    while rest and rest[0].strip():
        block.append(rest.pop(0).strip())
    following = [line for line in rest if line.strip()]
    assert not following or following[0] == "Options:", (
        f"examples do not end the help:\n{help_text}"
    )
    return block


def _argv(example: str) -> list[str]:
    """The example's arguments after `transfer-runner`, up to a shell redirection or pipe."""
    lexer = shlex.shlex(example, posix=True, punctuation_chars=True)
    lexer.whitespace_split = True
    words: list[str] = []
    for word in lexer:
        if word in SHELL_OPERATORS or word.startswith((">", "|", "&", ";", "<")):
            break
        words.append(word)
    assert words[0] == "transfer-runner", example
    return words[1:]


def _parsed_path(argv: list[str]) -> tuple[str, ...]:
    """Parse `argv` as the real CLI would, down to the command it names, without running it;
    the command's path (a usage error raises)."""
    ctx = cli.make_context("transfer-runner", list(argv))
    command: click.Command = cli
    path: list[str] = []
    while isinstance(command, click.Group):
        rest = [*ctx._protected_args, *ctx.args]
        assert rest, f"{argv}: no command"
        name, sub, rest = command.resolve_command(ctx, rest)
        assert name is not None and sub is not None
        path.append(name)
        ctx = sub.make_context(name, rest, parent=ctx)
        command = sub
    return tuple(path)


@pytest.mark.parametrize("path", [(), *_commands(cli)], ids=lambda p: " ".join(p) or "(group)")
def test_every_command_ends_its_help_with_examples_that_parse(
    path: tuple[str, ...], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(REPO)  # the examples name the repository's files (examples/fixture.yml)
    examples = _examples(_help(path))
    assert 1 <= len(examples) <= 3, examples
    for example in examples:
        assert example.startswith("transfer-runner "), f"not a command line: {example!r}"
        try:
            parsed = _parsed_path(_argv(example))
        except click.ClickException as exc:
            pytest.fail(f"{example!r} does not parse: {exc.format_message()}")
        assert parsed[: len(path)] == path, f"{example!r} does not run {' '.join(path)}"


def test_examples_are_read_as_the_shell_would() -> None:
    line = 'transfer-runner report --run "RUN A" --format csv > wave.csv'
    assert _argv(line) == ["report", "--run", "RUN A", "--format", "csv"]
    assert _parsed_path(_argv(line)) == ("report",)
    with pytest.raises(click.UsageError):
        _parsed_path(["report", "--format", "pdf"])
    with pytest.raises(click.UsageError):
        _parsed_path(["sandbox", "init", "x.db"])  # --fixture is required
    help_text = "Usage: x\n\n  Does x.\n\n  Examples:\n    transfer-runner x\n\nOptions:\n  -h\n"
    assert _examples(help_text) == ["transfer-runner x"]
    with pytest.raises(AssertionError, match="do not end"):
        _examples(help_text.replace("Options:", "More text."))


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

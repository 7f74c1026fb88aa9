"""What editors, git hooks and shells need: `schema` (the JSON Schemas, for the YAML language
server's `# yaml-language-server: $schema=...` line) and `completion` (the shell's script)."""

from __future__ import annotations

from pathlib import Path

import click

from transfer_runner.cli.options import cli

# What `schema KIND` prints: the bundled files, byte for byte.
SCHEMAS = {
    "manifest": "manifest.schema.json",
    "playbook": "playbook.schema.json",
    "report": "report.schema.json",
    "fixture": "fixture.schema.json",
}

SHELLS = ("bash", "zsh", "fish")

# What the console script reads to answer a completion request (click: _<PROG>_COMPLETE).
COMPLETE_VAR = "_TRANSFER_RUNNER_COMPLETE"


@cli.command()
@click.argument("kind", type=click.Choice(list(SCHEMAS)), default="manifest")
@click.option(
    "--out",
    type=click.Path(dir_okay=False),
    metavar="PATH",
    help="Write it to PATH (directories created, an older copy replaced) instead of stdout.",
)
def schema(kind: str, out: str | None) -> None:
    """Print a JSON Schema, for editors and other checkers.

    KIND: manifest (the default), playbook, report (the JSON of `apply --report-json` and
    `report --format json`) or fixture (a sandbox's).

    Commit the manifest schema as .schemas/transfer-manifest.json beside the manifests'
    directory: with the first line `new` writes in each manifest,

    \b
      # yaml-language-server: $schema=../.schemas/transfer-manifest.json

    an editor with the YAML language server (VS Code's YAML extension, Neovim, Helix, Zed)
    completes keys and flags mistakes as you type. Write it again after an upgrade.

    \b
    Examples:
      transfer-runner schema manifest --out .schemas/transfer-manifest.json
      transfer-runner schema report --out report.schema.json
    """
    from transfer_runner.resources import resource_path

    text = resource_path("schemas", SCHEMAS[kind]).read_bytes()
    if out is None:
        click.echo(text, nl=False)
        return
    target = Path(out)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(text)
    click.echo(f"wrote {out}", err=True)


@cli.command()
@click.argument("shell", type=click.Choice(SHELLS))
def completion(shell: str) -> None:
    """Print the shell's tab-completion script.

    SHELL: bash (4.4 or later), zsh or fish. It completes commands, options and their choices
    by asking `transfer-runner` itself (with _TRANSFER_RUNNER_COMPLETE set), which then loads
    none of the commands' libraries. Save it where the shell looks (below), or load it from
    ~/.bashrc:

    \b
      eval "$(transfer-runner completion bash)"

    \b
    Examples:
      transfer-runner completion bash > ~/.local/share/bash-completion/completions/transfer-runner
      transfer-runner completion zsh > ~/.zfunc/_transfer-runner
      transfer-runner completion fish > ~/.config/fish/completions/transfer-runner.fish
    """
    from click.shell_completion import get_completion_class

    completer = get_completion_class(shell)
    if completer is None:  # click knows every shell of SHELLS
        raise click.UsageError(f"no completion for {shell}")
    script = completer(cli, {}, "transfer-runner", COMPLETE_VAR).source()
    click.echo(script)

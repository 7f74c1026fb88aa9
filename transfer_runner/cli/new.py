"""`new --from-csv FILE --out DIR`: manifests for a bulk wave, one per spreadsheet row."""

from __future__ import annotations

from pathlib import Path

import click

from transfer_runner.cli.options import EXIT_FAILED, EXIT_OK, cli


@cli.command("new")
@click.option(
    "--from-csv", "csv_path", required=True, metavar="FILE",
    help="Spreadsheet saved as CSV UTF-8, one transfer per row (columns: see README, Bulk waves).",
)  # fmt: skip
@click.option(
    "--out", "out_dir", required=True, metavar="DIR",
    help="Directory for the manifests (<name>.yml); created if missing.",
)  # fmt: skip
@click.option("--overwrite", is_flag=True, help="Replace existing manifests whose content differs.")
@click.option(
    "--schema", "schema_path", metavar="PATH",
    help="The manifest schema file the first line of each manifest names for editors, as "
    "`schema manifest --out PATH` writes it (default: .schemas/transfer-manifest.json beside DIR).",
)  # fmt: skip
@click.option("--no-schema", is_flag=True, help="Write no schema line.")
@click.pass_context
def new(
    ctx: click.Context,
    csv_path: str,
    out_dir: str,
    overwrite: bool,
    schema_path: str | None,
    no_schema: bool,
) -> None:
    """Write one manifest per CSV row (bulk waves), checked with the manifests already in DIR.

    All or nothing: any problem (printed as FILE:row N: COLUMN: MESSAGE) writes no file.
    An existing file with other content is refused unless --overwrite (one that differs only
    in its schema line is left as it is). Each manifest starts with
    `# yaml-language-server: $schema=PATH`, PATH relative to the manifest, for editors.
    Exit 0 written, 1 errors.

    \b
    Examples:
      transfer-runner new --from-csv examples/waves/wave-2026-12.csv --out transfers/
      transfer-runner new --from-csv wave.csv --out transfers/ --schema schemas/manifest.json
    """
    from transfer_runner.commands import new_from_csv

    if no_schema and schema_path:
        raise click.UsageError("--schema and --no-schema exclude each other")
    result = new_from_csv(
        csv_path, out_dir, overwrite=overwrite, schema=schema_path, modeline=not no_schema
    )
    for problem in result.diagnostics:
        click.echo(str(problem))
    click.echo(result.summary())
    if result.ok and not no_schema:
        _schema_hint(out_dir, schema_path)
    ctx.exit(EXIT_OK if result.ok else EXIT_FAILED)


def _schema_hint(out_dir: str, schema_path: str | None) -> None:
    """Say how to write the schema file the manifests name, if it is missing or not this
    version's."""
    import os
    import shlex

    from transfer_runner.csv_manifests.render import schema_location
    from transfer_runner.resources import resource_path

    location = schema_location(out_dir, schema_path)
    shown = os.path.relpath(location) if location.is_absolute() else str(location)
    bundled = resource_path("schemas", "manifest.schema.json").read_bytes()
    if not location.is_file():
        state = "does not exist"
    elif Path(location).read_bytes() != bundled:
        state = "is not this version's schema"
    else:
        return
    click.echo(
        f"note: {shown}, which the manifests name for editors, {state}: "
        f"`transfer-runner schema manifest --out {shlex.quote(shown)}` writes it",
        err=True,
    )

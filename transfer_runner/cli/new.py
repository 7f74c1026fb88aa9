"""`new --from-csv FILE --out DIR`: manifests for a bulk wave, one per spreadsheet row."""

from __future__ import annotations

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
@click.pass_context
def new(ctx: click.Context, csv_path: str, out_dir: str, overwrite: bool) -> None:
    """Write one manifest per CSV row (bulk waves), checked with the manifests already in DIR.

    All or nothing: any problem (printed as FILE:row N: COLUMN: MESSAGE) writes no file.
    An existing file with other content is refused unless --overwrite. Exit 0 written, 1 errors.
    """
    from transfer_runner import commands

    result = commands.new_from_csv(csv_path, out_dir, overwrite=overwrite)
    for problem in result.diagnostics:
        click.echo(str(problem))
    click.echo(result.summary())
    ctx.exit(EXIT_OK if result.ok else EXIT_FAILED)

"""What `transfer-runner schema` prints holds for real documents: the report of a real apply
(`--report-json`) validates against `schema report`, and a manifest carrying the YAML language
server's schema line applies like any other."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from jsonschema import Draft202012Validator

from tests.builders import World
from transfer_runner.cli import cli, main
from transfer_runner.csv_manifests.render import MODELINE_PREFIX, SCHEMA_BESIDE


def _cli(world: World, *args: str) -> int:
    base = ["--platform", f"sandbox:{world.sandbox}", "--state", f"sqlite:{world.state}",
            "--export-to", world.export_to, "--part-size", "1"]  # fmt: skip
    with CliRunner().isolation():
        try:
            main([*base, *args])
        except SystemExit as exc:
            return int(exc.code or 0)
    return 0  # pragma: no cover - main always exits


def _validator(kind: str) -> Draft202012Validator:
    printed = CliRunner().invoke(cli, ["schema", kind])
    assert printed.exit_code == 0, printed.output
    schema = json.loads(printed.stdout)
    return Draft202012Validator(schema, format_checker=Draft202012Validator.FORMAT_CHECKER)


def _errors(validator: Draft202012Validator, data: Any) -> list[str]:
    return [
        f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(data)
    ]


def test_a_real_apply_report_validates_against_schema_report(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(world.root)
    acme = world.manifests / "acme-com.yml"
    acme.write_text(f"{MODELINE_PREFIX}{SCHEMA_BESIDE}\n" + acme.read_text(), encoding="utf-8")
    report_path = world.root / "report.json"
    assert (
        _cli(world, "apply", str(world.manifests), "--yes", "--report-json", str(report_path)) == 0
    )
    report = json.loads(report_path.read_text(encoding="utf-8"))
    assert [t["status"] for t in report["transfers"]] == ["succeeded"]
    validator = _validator("report")
    assert _errors(validator, report) == []

    assert (
        _cli(world, "apply", str(world.manifests), "--yes", "--report-json", str(report_path)) == 0
    )
    again = json.loads(report_path.read_text(encoding="utf-8"))
    assert [t["status"] for t in again["transfers"]] == ["unchanged"]
    assert _errors(validator, again) == []

    report["transfers"][0]["status"] = "done-ish"  # the schema does check something
    assert _errors(validator, report)


def test_the_example_manifests_validate_against_schema_manifest() -> None:
    """The editor's view (the JSON Schema alone, on the YAML as data) accepts the examples."""
    import yaml

    validator = _validator("manifest")
    examples = sorted(
        (Path(__file__).resolve().parents[2] / "examples" / "transfers").glob("*.yml")
    )
    assert examples
    for example in examples:
        assert _errors(validator, yaml.safe_load(example.read_text(encoding="utf-8"))) == []

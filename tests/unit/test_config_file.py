"""The config file: where it is found, what it may hold, and its place in the precedence
flag > environment > file > default."""

from __future__ import annotations

from pathlib import Path

import pytest

from transfer_runner.config import DEFAULT_PLATFORM_URL, OPTIONS, resolve
from transfer_runner.config_file import find_config, load_config
from transfer_runner.errors import ConfigError


def _write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def test_flag_beats_environment_beats_file_beats_default(tmp_path: Path) -> None:
    file = load_config(
        _write(
            tmp_path / "transfer-runner.toml",
            'state = "sqlite:file.db"\nexport-to = "s3://file/x"\npart-size = 8\n'
            'compression = "gzip"\n',
        )
    )
    env = {"TRANSFER_RUNNER_STATE": "sqlite:env.db", "TRANSFER_RUNNER_EXPORT_TO": "s3://env/x"}
    got = resolve({"state": "sqlite:flag.db"}, env, file)
    assert got.settings.state == "sqlite:flag.db"
    assert got.settings.export_to == "s3://env/x"
    assert got.settings.part_size_mib == 8 and got.settings.compression == "gzip"
    assert got.settings.platform == DEFAULT_PLATFORM_URL
    assert got.sources["state"] == "flag --state"
    assert got.sources["export_to"] == "env TRANSFER_RUNNER_EXPORT_TO"
    assert got.sources["part_size_mib"] == f"file {tmp_path / 'transfer-runner.toml'}"
    assert got.sources["platform"] == "default"


def test_every_global_option_can_be_set_in_the_file(tmp_path: Path) -> None:
    values = {
        "platform": '"sandbox:p.db"', "state": '"sqlite:s.db"', "export-to": '"s3://b/p"',
        "playbook": '"pb.yml"', "sse": '"aws:kms"', "sse-kms-key-id": '"alias/k"',
        "part-size": "16", "compression": '"zstd"', "upload-workers": "2",
        "log-level": '"debug"', "log-format": '"json"', "log-file": '"run.log"',
    }  # fmt: skip
    assert set(values) == {option.key for option in OPTIONS}
    text = "".join(f"{key} = {value}\n" for key, value in values.items())
    got = resolve({}, {}, load_config(_write(tmp_path / "t.toml", text)))
    assert all(source.startswith("file ") for source in got.sources.values())
    assert (got.settings.sse, got.settings.upload_workers, got.settings.log_file) == (
        "aws:kms", 2, "run.log"
    )  # fmt: skip


def test_the_own_file_is_preferred_to_pyproject_and_pyproject_needs_the_table(
    tmp_path: Path,
) -> None:
    _write(tmp_path / "pyproject.toml", '[project]\nname = "x"\n')
    assert find_config(None, tmp_path) is None
    _write(tmp_path / "pyproject.toml", '[tool.transfer-runner]\nstate = "sqlite:py.db"\n')
    found = find_config(None, tmp_path)
    assert found is not None and found.values == {"state": "sqlite:py.db"}
    _write(tmp_path / "transfer-runner.toml", 'state = "sqlite:own.db"\n')
    found = find_config(None, tmp_path)
    assert found is not None and found.values == {"state": "sqlite:own.db"}
    given = find_config(str(tmp_path / "pyproject.toml"), tmp_path)
    assert given is not None and given.values == {"state": "sqlite:py.db"}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('stat = "sqlite:x.db"\n', "unknown key 'stat' (did you mean 'state'?)"),
        ('part-size = "64"\n', "part-size must be a whole number"),
        ("upload-workers = true\n", "upload-workers must be a whole number"),
        ("state = 3\n", "state must be a string"),
        ('platform-token = "abc"\n', "holds no secret"),
        ('platform = "https://user:hunter2@panel.example/api"\n', "password in it"),
        ('state = "unclosed\n', "not valid TOML"),
        ('compression = "lz4"\n', "compression must be one of auto, zstd, gzip, none"),
        ('log-level = "loud"\n', "log-level must be one of"),
    ],
)
def test_a_bad_file_is_a_clear_error(tmp_path: Path, text: str, message: str) -> None:
    path = _write(tmp_path / "transfer-runner.toml", text)
    with pytest.raises(ConfigError) as caught:
        resolve({}, {}, find_config(None, tmp_path))
    assert message in str(caught.value)
    assert "hunter2" not in str(caught.value)
    assert str(path) in str(caught.value)


def test_a_named_file_must_exist(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no such file"):
        find_config(str(tmp_path / "missing.toml"), tmp_path)


def test_an_environment_number_is_checked() -> None:
    with pytest.raises(ConfigError, match="TRANSFER_RUNNER_PART_SIZE must be a whole number"):
        resolve({}, {"TRANSFER_RUNNER_PART_SIZE": "big"})
    assert resolve({}, {"TRANSFER_RUNNER_PART_SIZE": "12"}).settings.part_size_mib == 12


@pytest.mark.parametrize(
    ("state", "export_to"),
    [
        ("s3://b/runs/state", "s3://b/runs"),  # a transfer named "state" exports into it
        ("s3://b/runs", "s3://b/runs/exports"),
        ("s3://b/same", "s3://b/same/"),
        ("s3://b/state", "s3://b"),  # exports at the bucket's root hold every prefix
    ],
)
def test_state_and_exports_that_overlap_are_refused(state: str, export_to: str) -> None:
    with pytest.raises(ConfigError, match="overlap"):
        resolve({"state": state, "export_to": export_to}, {})


@pytest.mark.parametrize(
    ("state", "export_to"),
    [
        ("s3://b/state", "s3://b/exports"),
        ("s3://b/runs-state", "s3://b/runs"),  # a name that starts alike is not a folder
        ("s3://a/runs", "s3://b/runs"),
        ("sqlite:state.db", "s3://b"),
    ],
)
def test_state_and_exports_apart_are_accepted(state: str, export_to: str) -> None:
    assert resolve({"state": state, "export_to": export_to}, {}).settings.state == state

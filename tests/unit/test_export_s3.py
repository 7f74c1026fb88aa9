"""s3_client.py: destination URLs, settings validation and the S3 client's configuration."""

from __future__ import annotations

from pathlib import Path

import pytest

from transfer_runner.errors import ConfigError
from transfer_runner.s3_client import DEFAULT_PART_SIZE, S3Settings, make_s3_client, parse_s3_url

GOOD_URLS = [
    ("s3://exports", ("exports", "")),
    ("s3://exports/", ("exports", "")),
    ("s3://exports/runs", ("exports", "runs")),
    ("s3://exports/runs/", ("exports", "runs")),
    ("s3://exports//runs//", ("exports", "runs")),
    ("s3://my.bucket-1/a/b/c/", ("my.bucket-1", "a/b/c")),
    ("s3://abc/2026-12/wave_1", ("abc", "2026-12/wave_1")),
]

BAD_URLS = [
    ("", "s3://BUCKET/PREFIX"),
    ("exports/runs", "s3://BUCKET/PREFIX"),
    ("http://exports/runs", "s3://BUCKET/PREFIX"),
    ("S3://exports", "s3://BUCKET/PREFIX"),
    ("s3://", "no bucket"),
    ("s3:///runs", "no bucket"),
    ("s3://Exports/runs", "not a valid bucket name"),
    ("s3://ex_ports", "not a valid bucket name"),
    ("s3://ab", "not a valid bucket name"),
    ("s3://-exports", "not a valid bucket name"),
    ("s3://exports-", "not a valid bucket name"),
    ("s3://ex..ports", "not a valid bucket name"),
    ("s3://" + "a" * 64, "not a valid bucket name"),
    ("s3://192.168.1.10/runs", "IP address"),
    ("s3://exports/a//b", "empty, '.' or '..' segment"),
    ("s3://exports/a/../b", "empty, '.' or '..' segment"),
    ("s3://exports/./b", "empty, '.' or '..' segment"),
    ("s3://exports/a?b", "control character"),
    ("s3://exports/a#b", "control character"),
    ("s3://exports/a\\b", "control character"),
    ("s3://exports/a\nb", "control character"),
    ("s3://exports/" + "p" * 513, "longer than 512"),
]


@pytest.mark.parametrize(("url", "expected"), GOOD_URLS)
def test_parse_s3_url_accepts(url: str, expected: tuple[str, str]) -> None:
    assert parse_s3_url(url) == expected


@pytest.mark.parametrize(("url", "message"), BAD_URLS)
def test_parse_s3_url_rejects_with_a_clear_config_error(url: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace(".", r"\.").replace("?", r"\?")):
        parse_s3_url(url)


def test_parse_s3_url_rejects_non_strings() -> None:
    with pytest.raises(ConfigError):
        parse_s3_url(None)  # type: ignore[arg-type]


def test_settings_defaults_and_derived_fields() -> None:
    settings = S3Settings("s3://exports/runs/")
    assert settings.bucket == "exports" and settings.prefix == "runs"
    assert settings.part_size_bytes == DEFAULT_PART_SIZE == 32 * 1024 * 1024
    assert settings.compression == "auto" and settings.max_attempts == 8
    assert settings.sse_args() == {}


def test_settings_sse_arguments() -> None:
    assert S3Settings("s3://exports", sse="AES256").sse_args() == {"ServerSideEncryption": "AES256"}
    kms = S3Settings("s3://exports", sse="aws:kms", sse_kms_key_id="alias/exports")
    assert kms.sse_args() == {"ServerSideEncryption": "aws:kms", "SSEKMSKeyId": "alias/exports"}
    assert S3Settings("s3://exports", sse="aws:kms").sse_args() == {
        "ServerSideEncryption": "aws:kms"
    }


BAD_SETTINGS = [
    ({"export_to": "exports/runs"}, "s3://BUCKET/PREFIX"),
    ({"sse": "aes256"}, "sse must be"),
    ({"sse_kms_key_id": "k"}, "needs sse aws:kms"),
    ({"sse": "AES256", "sse_kms_key_id": "k"}, "needs sse aws:kms"),
    ({"compression": "zip"}, "compression must be"),
    ({"part_size_bytes": 0}, "part size must be positive"),
    ({"part_size_bytes": 1.5}, "must be an integer"),
    ({"part_size_bytes": True}, "must be an integer"),
    ({"max_attempts": 0}, "at least 1"),
    ({"max_attempts": "3"}, "must be an integer"),
]


@pytest.mark.parametrize(("changes", "message"), BAD_SETTINGS)
def test_settings_reject(changes: dict[str, object], message: str) -> None:
    args: dict[str, object] = {"export_to": "s3://exports/runs", **changes}
    with pytest.raises(ConfigError, match=message):
        S3Settings(**args)  # type: ignore[arg-type]


@pytest.fixture
def clean_aws(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> pytest.MonkeyPatch:
    """No AWS configuration at all except dummy keys and an empty config file."""
    for name in (
        "AWS_PROFILE",
        "AWS_DEFAULT_PROFILE",
        "AWS_REGION",
        "AWS_DEFAULT_REGION",
        "AWS_ENDPOINT_URL",
        "AWS_ENDPOINT_URL_S3",
        "AWS_SESSION_TOKEN",
    ):
        monkeypatch.delenv(name, raising=False)
    empty = tmp_path / "aws-config"
    empty.write_text("")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(empty))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(empty))
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    return monkeypatch


def test_client_defaults_to_us_east_1_with_standard_retries(clean_aws: pytest.MonkeyPatch) -> None:
    client = make_s3_client(S3Settings("s3://exports", max_attempts=5))
    assert client.meta.region_name == "us-east-1"
    retries = client.meta.config.retries
    assert retries["mode"] == "standard" and retries["total_max_attempts"] == 5
    assert client.meta.config.connect_timeout > 0 and client.meta.config.read_timeout > 0


def test_client_takes_region_and_endpoint_from_the_environment(
    clean_aws: pytest.MonkeyPatch,
) -> None:
    clean_aws.setenv("AWS_DEFAULT_REGION", "eu-west-3")
    clean_aws.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
    client = make_s3_client(S3Settings("s3://exports"))
    assert client.meta.region_name == "eu-west-3"
    assert client.meta.endpoint_url == "http://127.0.0.1:9"

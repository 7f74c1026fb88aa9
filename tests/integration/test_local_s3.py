"""tools/local_s3.py: a real S3 server on loopback, as a library and as a script."""

from __future__ import annotations

import base64
import hashlib
import io
import os
import shlex
import socket
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import boto3
import local_s3
import pytest
from boto3.s3.transfer import TransferConfig
from botocore.exceptions import ClientError

SCRIPT = Path(local_s3.__file__)
MiB = 1024 * 1024
integration = pytest.mark.integration


def _process_alive(pid: int) -> bool:
    """True while ``pid`` exists and is not a zombie."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


def _listening_addresses(pid: int) -> set[str]:
    """The local IPv4/IPv6 addresses of the TCP sockets ``pid`` is listening on."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except FileNotFoundError:  # closed since the directory was read: the server is live
            continue
        if target.startswith("socket:["):
            inodes.add(target[len("socket:[") : -1])
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for row in Path(table).read_text().splitlines()[1:]:
            cols = row.split()
            if cols[3] == "0A" and cols[9] in inodes:  # 0A: LISTEN
                found.add(cols[1].rsplit(":", 1)[0])
    return found


def _sha256_b64(data: bytes) -> str:
    return base64.b64encode(hashlib.sha256(data).digest()).decode()


def _s3() -> Any:
    """A client built from the environment only, as the product builds its own."""
    return boto3.client("s3")


# --- against the session server ----------------------------------------------------------


@integration
def test_env_points_boto3_at_the_server_and_put_get_round_trips(
    s3_server: local_s3.LocalS3, s3_env: str
) -> None:
    s3 = _s3()
    key = f"{s3_env}/hello.txt"
    s3.put_object(Bucket=s3_server.bucket, Key=key, Body=b"hello, loopback")
    assert s3.get_object(Bucket=s3_server.bucket, Key=key)["Body"].read() == b"hello, loopback"
    listed = s3.list_objects_v2(Bucket=s3_server.bucket, Prefix=f"{s3_env}/")
    assert [obj["Key"] for obj in listed["Contents"]] == [key]


@integration
def test_sha256_checksum_is_stored_and_returned(s3_server: local_s3.LocalS3, s3_env: str) -> None:
    s3 = _s3()
    body = os.urandom(100_000)
    key = f"{s3_env}/checked.bin"
    put = s3.put_object(Bucket=s3_server.bucket, Key=key, Body=body, ChecksumAlgorithm="SHA256")
    assert put["ChecksumSHA256"] == _sha256_b64(body)
    head = s3.head_object(Bucket=s3_server.bucket, Key=key, ChecksumMode="ENABLED")
    assert head["ChecksumSHA256"] == _sha256_b64(body)


@integration
def test_multipart_upload_of_20_mib(s3_server: local_s3.LocalS3, s3_env: str) -> None:
    s3 = _s3()
    body = os.urandom(20 * MiB)
    key = f"{s3_env}/big.bin"
    config = TransferConfig(multipart_threshold=8 * MiB, multipart_chunksize=8 * MiB)
    s3.upload_fileobj(io.BytesIO(body), s3_server.bucket, key, Config=config)
    head = s3.head_object(Bucket=s3_server.bucket, Key=key)
    assert head["ContentLength"] == len(body)
    assert head["ETag"].strip('"').endswith("-3")  # three parts: 8 + 8 + 4 MiB
    got = s3.get_object(Bucket=s3_server.bucket, Key=key)["Body"].read()
    assert hashlib.sha256(got).digest() == hashlib.sha256(body).digest()


@integration
def test_conditional_put_is_refused_with_412_the_second_time(
    s3_server: local_s3.LocalS3, s3_env: str
) -> None:
    s3 = _s3()
    key = f"{s3_env}/lock.json"
    s3.put_object(Bucket=s3_server.bucket, Key=key, Body=b"first", IfNoneMatch="*")
    with pytest.raises(ClientError) as caught:
        s3.put_object(Bucket=s3_server.bucket, Key=key, Body=b"second", IfNoneMatch="*")
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 412
    assert caught.value.response["Error"]["Code"] == "PreconditionFailed"
    assert s3.get_object(Bucket=s3_server.bucket, Key=key)["Body"].read() == b"first"
    assert s3_server.supports_conditional_writes() is True


@integration
def test_s3_env_gives_each_test_its_own_prefix(s3_env: str) -> None:
    assert s3_env.startswith("t-") and len(s3_env) == 10
    assert os.environ["AWS_EC2_METADATA_DISABLED"] == "true"
    assert os.environ["AWS_DEFAULT_REGION"] == "us-east-1"


# --- each engine on its own ----------------------------------------------------------------


@integration
@pytest.mark.parametrize("engine", ["seaweedfs", "moto"])
def test_engine_starts_on_loopback_honours_conditions_and_stops_cleanly(
    tmp_path: Path, engine: str
) -> None:
    tmp_sockets_before = set(Path("/tmp").glob("seaweedfs-*.sock"))
    server = local_s3.start_server(tmp_path, engine=engine, bucket="own-bucket", timeout_s=60)
    try:
        assert server.engine == engine
        assert server.endpoint_url.startswith("http://127.0.0.1:")
        assert (tmp_path / local_s3.LOG_NAME).is_file()
        addresses = _listening_addresses(server.pid)
        assert addresses == {"0100007F"}, addresses  # 127.0.0.1, and nothing else
        assert server.supports_conditional_writes() is True
        server.client().head_bucket(Bucket="own-bucket")
        if engine == "seaweedfs":
            identities = tmp_path / local_s3.IDENTITIES_NAME
            assert stat.S_IMODE(identities.stat().st_mode) == 0o600
            assert server.secret_key in identities.read_text()
    finally:
        server.stop()
    assert not _process_alive(server.pid)
    assert not local_s3.group_alive(server.pid)
    # Other servers (a parallel session, a benchmark) may come and go meanwhile: look only at
    # sockets named after this server's S3 port.
    port = server.endpoint_url.rsplit(":", 1)[1]
    new = set(Path("/tmp").glob("seaweedfs-*.sock")) - tmp_sockets_before
    assert not [p for p in new if p.stem.endswith(f"-{port}")], new
    server.stop()  # already gone: tolerated


@integration
def test_each_start_has_fresh_keys_and_ports(tmp_path: Path) -> None:
    first = local_s3.start_server(tmp_path / "a", engine="moto")
    try:
        second = local_s3.start_server(tmp_path / "b", engine="moto")
        second.stop()
    finally:
        first.stop()
    assert first.access_key != second.access_key
    assert first.secret_key != second.secret_key
    assert first.endpoint_url != second.endpoint_url


@integration
def test_a_port_taken_between_choosing_and_binding_is_retried_on_new_ports(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_free_ports = local_s3.free_ports
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        taken = squatter.getsockname()[1]
        answers = iter([[taken]])
        monkeypatch.setattr(
            local_s3,
            "free_ports",
            lambda count, **kw: next(answers, None) or real_free_ports(count),
        )
        server = local_s3.start_server(tmp_path, engine="moto")
        server.stop()
    assert server.endpoint_url != f"http://127.0.0.1:{taken}"
    assert (tmp_path / local_s3.LOG_NAME).read_text().count("=== local_s3") == 2


@integration
def test_timeout_stops_the_server_and_reports_the_log(tmp_path: Path) -> None:
    with pytest.raises(local_s3.LocalS3Error, match="not ready within") as caught:
        local_s3.start_server(tmp_path, engine="seaweedfs", timeout_s=0.05)
    assert "=== local_s3" in str(caught.value)  # the tail of server.log
    leftovers = [
        pid
        for pid in os.listdir("/proc")
        if pid.isdigit()
        and _process_alive(int(pid))
        and str(tmp_path).encode() in _cmdline(int(pid))
    ]
    assert leftovers == []


def _cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""


@integration
def test_script_starts_detached_writes_env_file_and_stops(tmp_path: Path) -> None:
    env_file = tmp_path / "s3.env"
    run = [sys.executable, str(SCRIPT)]
    started = subprocess.run(
        [
            *run,
            "start",
            "--data",
            str(tmp_path / "data"),
            "--env-file",
            str(env_file),
            "--engine",
            "moto",
            "--bucket",
            "demo-bucket",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert started.returncode == 0, started.stderr
    values = local_s3.read_env_file(env_file)
    pid = int(values["LOCAL_S3_PID"])
    try:
        assert stat.S_IMODE(env_file.stat().st_mode) == 0o600
        assert values["LOCAL_S3_BUCKET"] == "demo-bucket"
        sourced = subprocess.run(
            [
                "bash",
                "-c",
                f". {shlex.quote(str(env_file))} && "
                "echo $AWS_ENDPOINT_URL $AWS_EC2_METADATA_DISABLED",
            ],
            capture_output=True,
            text=True,
            check=True,
        )
        assert sourced.stdout.split() == [values["AWS_ENDPOINT_URL"], "true"]
        assert _process_alive(pid)
        again = subprocess.run(
            [
                *run,
                "start",
                "--data",
                str(tmp_path / "other"),
                "--env-file",
                str(env_file),
                "--engine",
                "moto",
            ],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert again.returncode == 1 and "already running" in again.stderr
    finally:
        stopped = subprocess.run(
            [*run, "stop", "--env-file", str(env_file)],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    assert stopped.returncode == 0, stopped.stderr
    assert not _process_alive(pid)
    stopped_twice = subprocess.run(
        [*run, "stop", "--env-file", str(env_file)], capture_output=True, text=True, check=False
    )
    assert stopped_twice.returncode == 0 and "already stopped" in stopped_twice.stdout


# --- no server needed ----------------------------------------------------------------------


def test_free_ports_are_distinct_and_their_grpc_twins_are_free() -> None:
    ports = local_s3.free_ports(5, grpc_offset=10000)
    assert len(set(ports)) == 5
    assert all(port + 10000 <= 65535 for port in ports)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"engine": "minio"}, "unknown engine"),
        ({"bucket": "UPPER_case"}, "invalid bucket name"),
        ({"bucket": "ab"}, "invalid bucket name"),
        ({"timeout_s": 0}, "timeout_s must be positive"),
    ],
)
def test_bad_arguments_are_refused_before_anything_starts(
    tmp_path: Path, kwargs: dict[str, Any], message: str
) -> None:
    with pytest.raises(local_s3.LocalS3Error, match=message):
        local_s3.start_server(tmp_path / "data", **kwargs)
    assert not (tmp_path / "data").exists()


def test_script_errors_are_one_clean_line(tmp_path: Path) -> None:
    missing = tmp_path / "nope.env"
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), "stop", "--env-file", str(missing)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 1
    assert proc.stderr.startswith("local_s3: error: cannot read env file")
    assert "Traceback" not in proc.stderr


def test_env_file_round_trips_values_that_need_quoting(tmp_path: Path) -> None:
    server = local_s3.LocalS3(
        endpoint_url="http://127.0.0.1:1",
        access_key="AK",
        secret_key="s e'c\"r$et",
        bucket="b-1",
        pid=4242,
        engine="moto",
    )
    env_file = tmp_path / "deep" / "s3.env"
    local_s3.write_env_file(env_file, server)
    values = local_s3.read_env_file(env_file)
    assert values["AWS_SECRET_ACCESS_KEY"] == "s e'c\"r$et"
    assert values["LOCAL_S3_PID"] == "4242"
    sourced = subprocess.run(
        ["bash", "-c", f'. {shlex.quote(str(env_file))} && printf %s "$AWS_SECRET_ACCESS_KEY"'],
        capture_output=True,
        text=True,
        check=True,
    )
    assert sourced.stdout == "s e'c\"r$et"

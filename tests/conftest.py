"""Fixtures for every test layer: one real S3 server on loopback for the whole session."""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

from transfer_runner.clock import ENV_VAR as CLOCK_ENV
from transfer_runner.clock import parse_instant

TOOLS_DIR = Path(__file__).resolve().parent.parent / "tools"
if str(TOOLS_DIR) not in sys.path:
    sys.path.insert(0, str(TOOLS_DIR))

import local_s3  # noqa: E402  (lives in tools/, found through the path set just above)

# Property tests measure no time: a loaded machine must not turn a slow example into a failure
# (Hypothesis's default 200 ms deadline and its too-slow health check did, under load).
settings.register_profile(
    "transfer-runner", deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.load_profile("transfer-runner")

S3_ENGINE_ENV = "TRANSFER_RUNNER_TEST_S3_ENGINE"
# Variables that would steer boto3 away from the session server's credentials.
_AWS_OVERRIDES = (
    "AWS_PROFILE",
    "AWS_DEFAULT_PROFILE",
    "AWS_SESSION_TOKEN",
    "AWS_SECURITY_TOKEN",
    "AWS_REGION",
    "AWS_ENDPOINT_URL_S3",
)


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--clock",
        metavar="ISO",
        help=f"the instant the runner's clock ({CLOCK_ENV}) starts at, for every process of "
        f"the session: e.g. 2041-02-28T12:00:00Z (default: ${CLOCK_ENV}, else today at noon UTC)",
    )


def pytest_configure(config: pytest.Config) -> None:
    """Pin the business clock for the whole session, subprocesses included: no test depends
    on today's date, and `--clock` runs the suite on any date (a noon start never crosses
    midnight within a session)."""
    chosen = config.getoption("--clock") or os.environ.get(CLOCK_ENV)
    if not chosen:
        chosen = f"{datetime.now(UTC).date().isoformat()}T12:00:00Z"
    parse_instant(chosen)  # a bad value fails the session at once
    os.environ[CLOCK_ENV] = chosen
    _interruptible_children()


def _interruptible_children() -> None:
    """A shell without job control starts background commands with SIGINT ignored, and an
    ignored signal stays ignored across exec: `sandbox serve` started by a test would then
    never see the Ctrl-C the test sends it. The suite's processes get the default instead,
    however the suite was launched."""
    if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)


def pytest_report_header(config: pytest.Config) -> str:
    return f"clock: {CLOCK_ENV}={os.environ.get(CLOCK_ENV)}"


def _announcer(config: pytest.Config) -> Callable[[str], None]:
    """Write a line to the terminal even while output is captured."""
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    capture = config.pluginmanager.get_plugin("capturemanager")

    def say(line: str) -> None:
        with capture.global_and_fixture_disabled() if capture else contextlib.nullcontext():
            if reporter is None:
                print(line, file=sys.stderr)
            else:
                reporter.write_line(line)

    return say


def _start_session_server(data_dir: Path, say: Callable[[str], None]) -> local_s3.LocalS3:
    """The engine named by the environment, else SeaweedFS, falling back to moto if it fails."""
    requested = os.environ.get(S3_ENGINE_ENV, "").strip()
    if requested:
        return local_s3.start_server(data_dir / requested, engine=requested)
    try:
        return local_s3.start_server(data_dir / "seaweedfs", engine="seaweedfs")
    except local_s3.LocalS3Error as exc:
        lines = str(exc).splitlines()
        reason = lines[0] if len(lines) == 1 else f"{lines[0]} ... {lines[-1]}"
        say(f"[s3_server] seaweedfs could not start ({reason}); falling back to moto")
        return local_s3.start_server(data_dir / "moto", engine="moto")


@pytest.fixture(scope="session")
def s3_server(
    tmp_path_factory: pytest.TempPathFactory, pytestconfig: pytest.Config
) -> Iterator[local_s3.LocalS3]:
    """One S3 server on 127.0.0.1 for the session (engine from TRANSFER_RUNNER_TEST_S3_ENGINE)."""
    say = _announcer(pytestconfig)
    server = _start_session_server(tmp_path_factory.mktemp("s3"), say)
    try:
        say(f"[s3_server] {server.engine} at {server.endpoint_url} (pid {server.pid})")
        yield server
    finally:
        server.stop()


@pytest.fixture
def s3_env(s3_server: local_s3.LocalS3, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """Point boto3 at the session server for one test; yields a fresh key prefix, 't-<hex8>'."""
    for name in _AWS_OVERRIDES:
        monkeypatch.delenv(name, raising=False)
    for name, value in s3_server.env().items():
        monkeypatch.setenv(name, value)
    yield f"t-{uuid.uuid4().hex[:8]}"

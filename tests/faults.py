"""Fault schedules for property tests: which platform and S3 calls of a run fail, and how.

A `Schedule` names calls by operation and number over the whole example, every `apply`
counted: the 2nd `charge`, the 3rd PutObject. `schedules()` is the hypothesis strategy; it
shrinks towards fewer faults, on earlier operations (playbook order), of simpler kinds.

`FaultyPlatform` wraps the Platform that `commands.apply` opens and fails the scheduled calls:
429 and 503 (`PlatformError` with that status), a timeout (the call was not performed) or a
lost acknowledgement (a write is performed, then the reply is lost). `S3Faults` is a botocore
`before-send` handler on the client the run creates, answering with the error replies of
`tests.unit.test_export_faults`. `fault_world` builds a fresh world per example (sandbox, moto
S3, manifest, the seams patched), all undone on exit: hypothesis examples and pytest fixtures
don't mix.
"""

from __future__ import annotations

import tempfile
import threading
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.awsrequest import AWSPreparedRequest
from botocore.exceptions import ConnectionClosedError
from botocore.retries import standard
from hypothesis import strategies as st
from moto import mock_aws

from tests.crash_world import NAME, crash_manifest, small_fixture
from tests.invariants import check_world, load_manifests
from tests.unit.test_export_faults import error_response, moto_perform
from transfer_runner import commands, platforms
from transfer_runner import s3_client as export_s3
from transfer_runner.config import Settings
from transfer_runner.engine.results import RunReport
from transfer_runner.errors import PlatformError
from transfer_runner.export import objects
from transfer_runner.manifest.model import Transfer
from transfer_runner.platforms.base import Platform
from transfer_runner.platforms.http.client import HttpPlatform
from transfer_runner.platforms.http.faults import FaultPlan
from transfer_runner.platforms.http.server import SandboxServer
from transfer_runner.platforms.sandbox.dump import dump_sandbox
from transfer_runner.platforms.sandbox.fixture import init_sandbox
from transfer_runner.platforms.sandbox.platform import SandboxPlatform
from transfer_runner.retries import RetryPolicy

__all__ = [
    "PLATFORM_KINDS",
    "PLATFORM_WRITES",
    "S3_KINDS",
    "PLATFORM_WINDOW",
    "S3_WINDOW",
    "MAX_PLATFORM_FAULTS",
    "MAX_S3_FAULTS",
    "LostAck",
    "PlatformFault",
    "S3Fault",
    "Schedule",
    "schedules",
    "PlatformFaults",
    "FaultyPlatform",
    "S3Faults",
    "BoundedFaultPlan",
    "FaultWorld",
    "fault_world",
]

# Platform operations the default playbook calls, in playbook order (a shrunk schedule names
# the earliest), with the faults each may meet: a read has no acknowledgement to lose.
READ_KINDS: tuple[str, ...] = ("429", "503", "timeout")
WRITE_KINDS: tuple[str, ...] = (*READ_KINDS, "lost-ack")
PLATFORM_KINDS: dict[str, tuple[str, ...]] = {
    "get_ticket": READ_KINDS,
    "find_account_by_domain": READ_KINDS,
    "get_account": READ_KINDS,
    "create_account": WRITE_KINDS,
    "count_messages": READ_KINDS,
    "list_messages": READ_KINDS,
    "fetch_message": READ_KINDS,
    "import_message": WRITE_KINDS,
    "cancel_account": WRITE_KINDS,
    "move_domain": WRITE_KINDS,
    "detach_domain": WRITE_KINDS,
    "find_credit": READ_KINDS,
    "get_subscription": READ_KINDS,
    "credit": WRITE_KINDS,
    "find_charge": READ_KINDS,
    "charge": WRITE_KINDS,
    "add_ticket_comment": WRITE_KINDS,
}
PLATFORM_WRITES = frozenset(
    {op for op, kinds in PLATFORM_KINDS.items() if "lost-ack" in kinds} | {"attach_domain"}
)
# Per S3 operation, the faults that make sense: a 409 ConditionalRequestConflict and a lost
# acknowledgement only on the object writes.
S3_KINDS: dict[str, tuple[str, ...]] = {
    "PutObject": ("slowdown", "500", "reset", "conflict", "lost-ack"),
    "GetObject": ("slowdown", "500", "reset"),
    "ListObjectsV2": ("slowdown", "500", "reset"),
    "HeadObject": ("slowdown", "500", "reset"),
    "ListMultipartUploads": ("slowdown", "500", "reset"),
}
# Calls are numbered per operation over the whole example (every apply), so that removing
# one fault does not move the others: hypothesis can shrink a schedule one fault at a time.
# One clean apply of the small world calls one platform operation at most 8 times and one S3
# operation at most 12 times.
PLATFORM_WINDOW = 4
S3_WINDOW = 12
# Each fault fails at most one apply: with five faults at most, six applies always suffice.
MAX_PLATFORM_FAULTS = 3
MAX_S3_FAULTS = 2
TOKEN = "fault-schedules-token-0123456789"


class LostAck(PlatformError):
    """The write was performed, then its reply was lost (an injected fault)."""

    def __init__(self, operation: str) -> None:
        super().__init__(operation, "connection dropped before the reply (injected)")


@dataclass(frozen=True, order=True)
class PlatformFault:
    """The `call`-th call of platform `operation` (1-based, every apply counted) fails."""

    operation: str
    call: int
    kind: str

    def __str__(self) -> str:
        return f"{self.operation}#{self.call}:{self.kind}"


@dataclass(frozen=True, order=True)
class S3Fault:
    """The `call`-th S3 `operation` (1-based, every apply counted) fails as `kind`."""

    operation: str
    call: int
    kind: str

    def __str__(self) -> str:
        return f"{self.operation}#{self.call}:{self.kind}"


@dataclass(frozen=True)
class Schedule:
    """The faults of one example: platform calls and S3 calls that fail, and how."""

    platform: tuple[PlatformFault, ...] = ()
    s3: tuple[S3Fault, ...] = ()

    def __len__(self) -> int:
        return len(self.platform) + len(self.s3)

    def __str__(self) -> str:
        return "Schedule(" + ", ".join(str(f) for f in (*self.platform, *self.s3)) + ")"


@st.composite
def _fault(draw: st.DrawFn, kinds: dict[str, tuple[str, ...]], window: int) -> tuple[str, int, str]:
    operation = draw(st.sampled_from(list(kinds)))
    call = draw(st.integers(1, window))
    return operation, call, draw(st.sampled_from(kinds[operation]))


def _schedule(platform: list[tuple[str, int, str]], s3: list[tuple[str, int, str]]) -> Schedule:
    """Drawn faults as a Schedule; a call drawn twice keeps its first kind.

    Duplicates are merged here rather than filtered out while drawing (`unique_by`): a filter
    makes deleting one fault change the others, which stalls the shrinker.
    """

    def first(faults: list[tuple[str, int, str]]) -> list[tuple[str, int, str]]:
        kept: dict[tuple[str, int], str] = {}
        for operation, call, kind in faults:
            kept.setdefault((operation, call), kind)
        return sorted((op, call, kind) for (op, call), kind in kept.items())

    return Schedule(
        tuple(PlatformFault(*f) for f in first(platform)),
        tuple(S3Fault(*f) for f in first(s3)),
    )


def schedules(
    *,
    platform_ops: Sequence[str] | None = None,
    max_platform: int = MAX_PLATFORM_FAULTS,
    max_s3: int = MAX_S3_FAULTS,
    platform_window: int = PLATFORM_WINDOW,
    s3_window: int = S3_WINDOW,
) -> st.SearchStrategy[Schedule]:
    """Up to `max_platform` faults on `platform_ops` (default: every operation the playbook
    calls) and up to `max_s3` on S3."""
    ops = list(PLATFORM_KINDS) if platform_ops is None else list(platform_ops)
    platform = st.lists(
        _fault({op: PLATFORM_KINDS[op] for op in ops}, platform_window),
        max_size=max_platform if ops else 0,
    )
    return st.builds(_schedule, platform, st.lists(_fault(S3_KINDS, s3_window), max_size=max_s3))


@dataclass
class PlatformFaults:
    """Counts platform calls per operation under a lock and says which one fails."""

    faults: Sequence[PlatformFault] = ()
    calls: Counter[str] = field(default_factory=Counter)
    writes: int = 0  # write calls that reached the platform (performed or refused there)
    injected: list[str] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def __post_init__(self) -> None:
        self._by_call = {(f.operation, f.call): f.kind for f in self.faults}

    def next_call(self, operation: str) -> str | None:
        """Count one call of `operation`; its fault kind, or None."""
        with self._lock:
            self.calls[operation] += 1
            kind = self._by_call.get((operation, self.calls[operation]))
            if kind is not None:
                self.injected.append(f"{operation}#{self.calls[operation]}: {kind}")
            if operation in PLATFORM_WRITES and kind in (None, "lost-ack"):
                self.writes += 1
            return kind


class FaultyPlatform:
    """A Platform that fails the calls `faults` schedules, delegating everything to `inner`."""

    def __init__(self, inner: Platform, faults: PlatformFaults) -> None:
        self._inner = inner
        self._faults = faults

    def __repr__(self) -> str:
        return f"FaultyPlatform({self._inner!r})"

    def close(self) -> None:
        self._inner.close()

    def __getattr__(self, operation: str) -> Any:
        method = getattr(self._inner, operation)
        if operation not in PLATFORM_KINDS and operation not in PLATFORM_WRITES:
            return method

        def call(*args: Any, **kwargs: Any) -> Any:
            kind = self._faults.next_call(operation)
            if kind == "429":
                raise PlatformError(operation, "too many requests (injected); retry after 1 s", 429)
            if kind == "503":
                raise PlatformError(operation, "the platform is unavailable (injected)", 503)
            if kind == "timeout":
                raise PlatformError(operation, "read timed out (injected; not performed)")
            result = method(*args, **kwargs)
            if kind == "lost-ack":
                raise LostAck(operation)
            return result

        return call


class S3Faults:
    """A botocore `before-send` handler that fails the scheduled S3 calls.

    Registered first, before moto's own `before-send` answer. Kinds as in
    `tests.unit.test_export_faults.FaultInjector`: "slowdown", "500", "conflict" (error
    replies), "reset" (the connection drops before a reply), "lost-ack" (the request is
    performed, then the reply becomes a 500).
    """

    def __init__(self, faults: Sequence[S3Fault]) -> None:
        self._by_call = {(f.operation, f.call): f.kind for f in faults}
        self.calls: Counter[str] = Counter()
        self.injected: list[str] = []
        self._lock = threading.Lock()

    def install(self, s3: Any) -> Any:
        """Register on one client's events; returns the client."""
        s3.meta.events.register_first("before-send.s3", self)
        return s3

    def __call__(self, request: AWSPreparedRequest, event_name: str, **_: Any) -> Any:
        operation = event_name.rsplit(".", 1)[-1]
        with self._lock:
            self.calls[operation] += 1
            kind = self._by_call.get((operation, self.calls[operation]))
            if kind is not None:
                self.injected.append(f"{operation}#{self.calls[operation]}: {kind}")
        if kind is None:
            return None
        if kind == "reset":
            raise ConnectionClosedError(endpoint_url=request.url)
        if kind == "lost-ack":
            moto_perform(event_name, request)
            return error_response(request.url, "500")
        return error_response(request.url, kind)


class BoundedFaultPlan(FaultPlan):
    """A seeded `FaultPlan` that stops after `max_faults` faults, so that applies converge;
    with `writes_only`, reads are never failed (so that lost acknowledgements hit writes)."""

    def __init__(self, *, max_faults: int, writes_only: bool = False, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.max_faults = max_faults
        self.writes_only = writes_only

    def __repr__(self) -> str:
        extra = f", max_faults={self.max_faults}, writes_only={self.writes_only})"
        return super().__repr__()[:-1] + extra

    def draw(self, *, write: bool) -> str | None:
        """The parent's draw, until `max_faults` faults have been injected."""
        if sum(self.injected.values()) >= self.max_faults or (self.writes_only and not write):
            return None
        return super().draw(write=write)


@dataclass
class FaultWorld:
    """One example's world: sandbox, state, manifest, moto S3 and the injected faults."""

    root: Path
    sandbox: Path
    manifests: Path
    s3: Any  # a client without faults, for the checker
    export_to: str
    baseline: dict[str, Any]
    platform_faults: PlatformFaults
    s3_faults: S3Faults
    platform_url: str = ""
    transfers: list[Transfer] = field(default_factory=list)

    def settings(self) -> Settings:
        """One upload worker and small parts: a deterministic order of S3 calls."""
        return Settings(
            platform=self.platform_url or f"sandbox:{self.sandbox}",
            state=f"sqlite:{self.root / 'state.db'}",
            export_to=self.export_to,
            part_size_mib=1,
            upload_workers=1,
        )

    def apply(self) -> RunReport:
        """`apply` of the manifests, one fork."""
        return commands.apply(self.settings(), commands.Selection([str(self.manifests)]), forks=1)

    def violations(self, *, complete: bool) -> list[str]:
        """What `tests.invariants.check_world` finds wrong now."""
        return check_world(
            self.transfers,
            self.sandbox,
            self.s3,
            self.export_to,
            complete=complete,
            baseline=self.baseline,
        )

    def recorded_status(self) -> str:
        """The transfer's status in the state store (`status`)."""
        [view] = commands.status(self.settings(), [NAME])
        return str(view.record.status)

    def sandbox_writes(self) -> int:
        """Write calls the sandbox has received (its audit rows)."""
        with SandboxPlatform(self.sandbox) as platform:
            return platform.write_calls()


_AWS_UNSET = (
    "AWS_ENDPOINT_URL",
    "AWS_ENDPOINT_URL_S3",
    "AWS_PROFILE",
    "AWS_DEFAULT_PROFILE",
    "AWS_REGION",
    "AWS_SESSION_TOKEN",
    "AWS_SECURITY_TOKEN",
)


def _quiet_aws(mp: pytest.MonkeyPatch) -> None:
    """moto credentials, and S3 retries without sleeping (botocore's and the runner's)."""
    for name in _AWS_UNSET:
        mp.delenv(name, raising=False)
    mp.setenv("AWS_ACCESS_KEY_ID", "testing")
    mp.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    mp.setenv("AWS_DEFAULT_REGION", "us-east-1")
    mp.setattr(standard.ExponentialBackoff, "delay_amount", lambda self, ctx: 0)
    mp.setattr(objects, "CONFLICT_POLICY", RetryPolicy(base_delay_s=0))


@contextmanager
def fault_world(
    schedule: Schedule,
    *,
    server_faults: FaultPlan | None = None,
    http_attempts: int = 3,
    wrap: Callable[[Platform], Platform] | None = None,
) -> Iterator[FaultWorld]:
    """A fresh world whose applies meet `schedule`'s faults.

    With `server_faults`, the platform is reached over HTTP through a `SandboxServer` that
    injects them (the client retries each call up to `http_attempts` times, without sleeping).
    `wrap` puts a layer of the test's own between the runner and the faulty platform.
    """
    with ExitStack() as stack:
        root = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="faults-")))
        mp = stack.enter_context(pytest.MonkeyPatch.context())
        _quiet_aws(mp)
        stack.enter_context(mock_aws())
        clean = boto3.client("s3", region_name="us-east-1")
        clean.create_bucket(Bucket="exports")
        world = _create(root, clean, schedule)
        real_make = export_s3.make_s3_client
        clients: dict[export_s3.S3Settings, Any] = {}

        def make_s3_client(settings: export_s3.S3Settings) -> Any:
            # The product's own client with the faults installed, made once per example and
            # settings: making one takes ~0.1 s, and every apply of an example asks for one.
            if settings not in clients:
                clients[settings] = real_make(settings)
                world.s3_faults.install(clients[settings])
            return clients[settings]

        mp.setattr(export_s3, "make_s3_client", make_s3_client)
        open_inner = platforms.open_platform
        if server_faults is not None:
            platform = stack.enter_context(SandboxPlatform(world.sandbox))
            server = stack.enter_context(SandboxServer(platform, token=TOKEN, faults=server_faults))
            world.platform_url = server.url

            def open_inner(url: str) -> Platform:
                return HttpPlatform(
                    url, token=TOKEN, max_attempts=http_attempts, sleep=lambda _: None
                )

        def open_platform(url: str) -> Platform:
            faulty: Platform = FaultyPlatform(open_inner(url), world.platform_faults)
            return wrap(faulty) if wrap is not None else faulty

        mp.setattr(platforms, "open_platform", open_platform)  # what commands.session opens
        yield world


def _create(root: Path, s3: Any, schedule: Schedule) -> FaultWorld:
    fixture = root / "fixture.yml"
    fixture.write_text(small_fixture(), encoding="utf-8")
    sandbox = root / "sandbox.db"
    init_sandbox(sandbox, fixture)
    manifests = root / "transfers"
    manifests.mkdir()
    (manifests / f"{NAME}.yml").write_text(crash_manifest(), encoding="utf-8")
    return FaultWorld(
        root=root,
        sandbox=sandbox,
        manifests=manifests,
        s3=s3,
        export_to="s3://exports/runs",
        baseline=dump_sandbox(sandbox),
        platform_faults=PlatformFaults(schedule.platform),
        s3_faults=S3Faults(schedule.s3),
        transfers=load_manifests([manifests]),
    )

"""The sandbox's commands as plain functions (`cli/sandbox.py` is their skin): create a sandbox
from a fixture, read its whole state, serve it over the platform REST API, and make it a live
mailbox. They print nothing: `serve` and `mail` hand their banner lines to `say` (and `serve`
its secret one to `tell`) and run until their duration ends or a KeyboardInterrupt (the CLI
turns SIGTERM into one)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from transfer_runner.errors import ConfigError

if TYPE_CHECKING:  # imported when a sandbox command runs
    from transfer_runner.platforms.http.faults import FaultPlan
    from transfer_runner.platforms.http.server import SandboxServer
    from transfer_runner.platforms.sandbox.mailflow import FlowSpec, MailFlow
    from transfer_runner.platforms.sandbox.mailflow_pace import FlowTotals

__all__ = [
    "SANDBOX_TOKEN_ENV",
    "MailRates",
    "ServeToken",
    "serve_token",
    "mail_problem",
    "sandbox_dump",
    "sandbox_init",
    "sandbox_mail",
    "sandbox_serve",
]


SANDBOX_TOKEN_ENV = "TRANSFER_RUNNER_SANDBOX_TOKEN"
_CLIENT_TOKEN_ENV = "TRANSFER_RUNNER_PLATFORM_TOKEN"  # what the HTTP adapter reads


def _quiet(line: str) -> None:
    return None


@dataclass(frozen=True)
class MailRates:
    """A live mailbox: messages delivered and expired per second, and what is sent."""

    deliver_per_second: float = 0.0
    expire_per_second: float = 0.0
    spec: FlowSpec | None = field(default=None)  # None: the flow's defaults

    @property
    def flowing(self) -> bool:
        return bool(self.deliver_per_second or self.expire_per_second)


def sandbox_init(path: str, fixture: str, *, force: bool = False) -> dict[str, int]:
    """Create the sandbox at `path` from `fixture`; counts of what it holds (accounts,
    tickets, messages...). ConfigError for a bad fixture, or an existing file without
    `force`."""
    from transfer_runner.platforms.sandbox.fixture import init_sandbox

    return init_sandbox(path, fixture, force=force)


def sandbox_dump(path: str) -> dict[str, Any]:
    """The sandbox's whole state (accounts, tickets, charges, credits, writes, mail)."""
    from transfer_runner.platforms.sandbox.dump import dump_sandbox

    _require(path)
    return dump_sandbox(path)


def sandbox_mail(
    path: str,
    rates: MailRates,
    *,
    duration_s: float | None = None,
    count: int | None = None,
    say: Callable[[str], None] = _quiet,
) -> FlowTotals:
    """Deliver `count` messages at once, or run the paced flow for `duration_s` (None: until
    a KeyboardInterrupt); what the flow did."""
    from transfer_runner.platforms.sandbox.mailflow_pace import FlowThread
    from transfer_runner.platforms.sandbox.platform import SandboxPlatform

    problem = mail_problem(rates, duration_s, count)
    if problem:
        raise ConfigError(problem)
    _require(path)
    with SandboxPlatform(path) as platform:
        mail = _flow(platform, rates)
        if count is not None:
            return mail.deliver(count)
        paced = FlowThread(mail, rates.deliver_per_second, rates.expire_per_second, duration_s)
        try:
            say(flow_banner(mail, rates))
            paced.start()
            while paced.is_alive():
                paced.join(0.2)
        except KeyboardInterrupt:
            pass
        return paced.stop()


def mail_problem(rates: MailRates, duration_s: float | None, count: int | None) -> str:
    """What is wrong with this combination of `sandbox mail` options ("" when nothing)."""
    if count is not None and (rates.flowing or duration_s is not None):
        return "--count delivers at once: drop --deliver, --expire and --duration"
    if count is None and not rates.flowing:
        return "nothing to do: give --deliver RATE, --expire RATE or --count N"
    return ""


@dataclass(frozen=True)
class ServeToken:
    """The bearer token `sandbox serve` requires, and where it came from."""

    value: str = field(repr=False)
    source: Literal["environment", "file", "generated"]

    @property
    def described(self) -> str:
        """Where the token came from, for the banner (never the token itself)."""
        return {
            "environment": f"token from {SANDBOX_TOKEN_ENV}",
            "file": "token from --token-file",
            "generated": "generated token, shown on stderr",
        }[self.source]


def serve_token(
    from_env: str | None, token_file: str | None, *, say: Callable[[str], None] = _quiet
) -> ServeToken:
    """The token from the environment (`from_env`) or the file `token_file` (its text,
    stripped), or else a new random one (256 bits). ConfigError for both, or a file that
    cannot be read or is empty; `say` warns of a file other users can read. Logs mask it
    from now on, wherever it came from."""
    from transfer_runner.redaction import redact_also

    token = _token(from_env, token_file, say)
    redact_also(token.value)
    return token


def _token(from_env: str | None, token_file: str | None, say: Callable[[str], None]) -> ServeToken:
    import secrets

    if from_env is not None and token_file is not None:
        raise ConfigError(f"give the sandbox token one way: {SANDBOX_TOKEN_ENV} or --token-file")
    if from_env is not None:
        return ServeToken(from_env.strip(), "environment")
    if token_file is None:
        return ServeToken(secrets.token_urlsafe(32), "generated")
    path = Path(token_file)
    try:
        text = path.read_text(encoding="utf-8").strip()
        mode = path.stat().st_mode
    except OSError as exc:
        raise ConfigError(f"--token-file {token_file}: cannot read it: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"--token-file {token_file}: not UTF-8 text") from None
    if not text:
        raise ConfigError(f"--token-file {token_file} is empty")
    if mode & 0o077:
        say(f"warning: --token-file {token_file} is readable by other users (chmod 600 it)")
    return ServeToken(text, "file")


def _server_class() -> type[SandboxServer]:
    """The HTTP server, which needs the `[sandbox]` extra (Werkzeug, waitress)."""
    try:
        from transfer_runner.platforms.http.server import SandboxServer
    except ModuleNotFoundError as exc:
        raise ConfigError(
            f"sandbox serve needs the [sandbox] extra ({exc.name} is not installed): "
            "pip install 'transfer-runner[sandbox]'"
        ) from None
    return SandboxServer


def sandbox_serve(
    path: str,
    *,
    host: str,
    port: int,
    faults: FaultPlan,
    token: ServeToken,
    allowed_hosts: tuple[str, ...] = (),
    rates: MailRates | None = None,
    threads: int = 64,
    say: Callable[[str], None] = _quiet,
    tell: Callable[[str], None] = _quiet,
) -> FlowTotals | None:
    """Serve the sandbox until a KeyboardInterrupt (with the mail flow in the background when
    `rates` flow) to requests carrying `token`, whose Host names loopback, `host` or one of
    `allowed_hosts`; what the flow did, if it ran. A generated token goes to `tell` (stderr),
    once, before the banner."""
    server_class = _server_class()
    from transfer_runner.platforms.http.server import is_loopback
    from transfer_runner.platforms.sandbox.mailflow_pace import FlowThread
    from transfer_runner.platforms.sandbox.platform import SandboxPlatform

    _require(path)
    with SandboxPlatform(path) as platform:
        paced, banner = None, ""
        if rates is not None and rates.flowing:
            live = _flow(platform, rates)
            paced = FlowThread(live, rates.deliver_per_second, rates.expire_per_second)
            banner = flow_banner(live, rates)
        server = server_class(
            platform,
            host=host,
            port=port,
            token=token.value,
            allowed_hosts=allowed_hosts,
            faults=faults,
            threads=threads,
        )
        try:
            if token.source == "generated":
                tell(
                    "sandbox token, generated and shown only this once: "
                    f"{_CLIENT_TOKEN_ENV}={token.value} transfer-runner --platform {server.url} "
                    "... (other clients: 'Authorization: Bearer' and the token; set "
                    f"{SANDBOX_TOKEN_ENV} or --token-file to choose it)"
                )
            if allowed_hosts or not is_loopback(host):
                names = ", ".join(sorted(server.app.allowed_hosts))
                tell(f"answering requests whose Host is one of: {names} (--allowed-host adds)")
            say(f"serving sandbox {path} on {server.url} ({token.described})")
            if paced is not None:
                say(banner)
                paced.start()
            server.serve_forever()
        except KeyboardInterrupt:
            pass
        finally:
            server.stop()
        return paced.stop() if paced is not None else None


def flow_banner(flow: MailFlow, rates: MailRates) -> str:
    """The line a flow starts with: its domains, rates and messages."""
    shown = ", ".join(flow.domains[:5]) + (", ..." if len(flow.domains) > 5 else "")
    return (
        f"mail flow: {len(flow.domains)} domain(s) ({shown}), deliver "
        f"{rates.deliver_per_second:g}/s, expire {rates.expire_per_second:g}/s per store, "
        f"{flow.spec.size} B {flow.spec.body} messages"
    )


def _flow(platform: Any, rates: MailRates) -> MailFlow:
    from transfer_runner.platforms.sandbox.mailflow import FlowSpec, MailFlow

    return MailFlow(platform, rates.spec or FlowSpec())


def _require(path: str) -> None:
    if not Path(path).is_file():
        raise ConfigError(f"no sandbox at {path}")

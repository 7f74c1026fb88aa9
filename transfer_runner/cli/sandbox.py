"""`sandbox init | dump | serve | mail`: the embedded sandbox platform, served over HTTP, with
live mail flowing."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, Literal

import click

from transfer_runner.cli.options import F, cli

if TYPE_CHECKING:  # imported when a sandbox command runs, not for every command
    from transfer_runner.platforms.sandbox.mailflow import FlowSpec
    from transfer_runner.platforms.sandbox.messages import BodyKind


def _rate_options(func: F) -> F:
    """--deliver and --expire: the mail flow's rates (sandbox mail, sandbox serve)."""
    rate = click.FloatRange(0, 1_000_000)
    func = click.option(
        "--expire",
        "expire_rate",
        type=rate,
        default=0.0,
        metavar="RATE",
        help="Expire the RATE oldest messages per second from each store of the accounts "
        "that hold or held the domains (retention).",
    )(func)
    return click.option(
        "--deliver",
        "deliver_rate",
        type=rate,
        default=0.0,
        metavar="RATE",
        help="Deliver RATE new messages per second, round-robin over the domains and stores, "
        "to the active account holding each domain (held back while none does).",
    )(func)


def _flow_options(prefix: str) -> Callable[[F], F]:
    """What the mail flow sends; `prefix` ("mail-" for serve) names the options."""

    def decorate(func: F) -> F:
        options = [
            click.option(
                f"--{prefix}domain",
                "domains",
                multiple=True,
                metavar="D",
                help="A domain to deliver to (repeatable; default: every domain of every "
                "active direct account when the flow starts).",
            ),
            click.option(
                f"--{prefix}store",
                "store",
                type=click.Choice(["quarantine", "archive", "both"]),
                default="both",
                show_default=True,
                help="The store(s) to deliver to and expire from.",
            ),
            click.option(
                f"--{prefix}size",
                "size",
                default="4KiB",
                show_default=True,
                metavar="SIZE",
                callback=_size_option,
                help="Size of each new message: bytes, or a number with B, KiB or MiB.",
            ),
            click.option(
                f"--{prefix}body",
                "body",
                type=click.Choice(["text", "mail-like"]),
                default="text",
                show_default=True,
                help="Message bodies: text (~7:1 under gzip) or mail-like (a text part and a "
                "base64 attachment of random bytes, ~1.3:1 like real mail).",
            ),
        ]
        for option in reversed(options):
            func = option(func)
        return func

    return decorate


def _size_option(ctx: click.Context, param: click.Parameter, value: str) -> int:
    from transfer_runner.platforms.sandbox.fixture import MAX_SIZE, parse_size

    try:
        size = parse_size(int(value) if value.isdigit() else value)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from exc
    if not 1 <= size <= MAX_SIZE:
        raise click.BadParameter(f"must be between 1 byte and 64 MiB, not {value!r}")
    return size


def _flow_spec(
    domains: tuple[str, ...],
    store: Literal["quarantine", "archive", "both"],  # click.Choice gives only these
    size: int,
    body: BodyKind,  # click.Choice too
) -> FlowSpec:
    from transfer_runner.platforms.base import STORES
    from transfer_runner.platforms.sandbox.mailflow import FlowSpec

    stores = STORES if store == "both" else (store,)
    return FlowSpec(domains=domains, stores=stores, size=size, body=body)


def _token_from_environment(
    ctx: click.Context, param: click.Parameter, value: str | None
) -> str | None:
    """The hidden --token: its environment variable only; on the command line, an error."""
    from click.core import ParameterSource

    if value is not None and ctx.get_parameter_source("token") is ParameterSource.COMMANDLINE:
        raise click.UsageError(
            "--token is no longer accepted: a token in the command line shows in `ps`; set "
            "TRANSFER_RUNNER_SANDBOX_TOKEN or use --token-file PATH"
        )
    return value


def _to_stderr(line: str) -> None:
    click.echo(line, err=True)


@contextmanager
def _sigterm_interrupts() -> Iterator[None]:
    """SIGTERM raises KeyboardInterrupt in the main thread, so it stops like Ctrl-C."""
    import signal

    def _terminate(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, _terminate)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@cli.group()
def sandbox() -> None:
    """The embedded SQLite sandbox platform (the default platform).

    A whole provider in one file, made from a YAML fixture: for the demo, tests and rehearsals.
    Point the other commands at it with --platform sandbox:PATH.

    \b
    Examples:
      transfer-runner sandbox init sandbox.db --fixture examples/fixture.yml
      transfer-runner sandbox mail sandbox.db --deliver 20 --duration 600
      transfer-runner sandbox dump sandbox.db > sandbox.json
    """


@sandbox.command("init")
@click.argument("path", type=click.Path(dir_okay=False))
@click.option(
    "--fixture",
    required=True,
    type=click.Path(exists=True, dir_okay=False),
    help="YAML fixture describing accounts, tickets and mail.",
)
@click.option("--force", is_flag=True, help="Replace an existing sandbox file.")
def sandbox_init(path: str, fixture: str, force: bool) -> None:
    """Create a sandbox platform at PATH from a fixture.

    The fixture's JSON Schema: `transfer-runner schema fixture`.

    \b
    Examples:
      transfer-runner sandbox init sandbox.db --fixture examples/fixture.yml
      transfer-runner sandbox init /tmp/rehearsal.db --fixture examples/fixture.yml --force
    """
    from transfer_runner.sandbox_commands import sandbox_init as init

    summary = init(path, fixture, force=force)
    parts = ", ".join(f"{v} {k}" for k, v in summary.items())
    click.echo(f"sandbox created at {path}: {parts}")


@sandbox.command("dump")
@click.argument("path", type=click.Path(dir_okay=False))
def sandbox_dump(path: str) -> None:
    """Print the sandbox's whole state as JSON.

    \b
    Examples:
      transfer-runner sandbox dump sandbox.db > sandbox.json
    """
    from transfer_runner.sandbox_commands import sandbox_dump as dump

    click.echo(json.dumps(dump(path), indent=2, sort_keys=False))


@sandbox.command("serve")
@click.argument("path", type=click.Path(dir_okay=False))
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    default=8080,
    show_default=True,
    help="Port to listen on (0 = a free port, printed).",
)
@click.option(
    "--latency",
    "latency_ms",
    type=click.FloatRange(0, 3_600_000),
    default=0.0,
    metavar="MS",
    help="Sleep this long before handling every request (but /v1/health).",
)
@click.option(
    "--fail-rate",
    type=click.FloatRange(0, 1),
    default=0.0,
    metavar="R",
    help="Fraction of requests (0..1) that fail with one of --faults.",
)
@click.option(
    "--faults",
    default="429,503,reset,lost-ack",
    show_default=True,
    metavar="KINDS",
    help="Failure kinds for --fail-rate: 429, 503, reset (no reply), lost-ack (write done, "
    "no reply).",
)
@click.option(
    "--retry-after",
    type=click.IntRange(0),
    default=1,
    show_default=True,
    metavar="S",
    help="Retry-After seconds of injected 429 replies.",
)
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the fault draws.")
@click.option(
    "--threads",
    type=click.IntRange(1, 1024),
    default=64,
    show_default=True,
    metavar="N",
    help="Requests handled at once (each waits out --latency); connections are kept alive.",
)
@click.option(
    "--token-file",
    type=click.Path(dir_okay=False),  # read by the command: a missing file is a clean error
    metavar="PATH",
    help="Read the bearer token from PATH (stripped). Default: TRANSFER_RUNNER_SANDBOX_TOKEN, "
    "else a new token printed once on stderr.",
)
@click.option(
    "--allowed-host",
    "allowed_hosts",
    multiple=True,
    metavar="NAME",
    help="Also answer requests whose Host header names NAME, on any port (repeatable); "
    "127.0.0.1, localhost, [::1] and the --host address always are, others get 421.",
)
@click.option(
    "--token",
    envvar="TRANSFER_RUNNER_SANDBOX_TOKEN",
    hidden=True,  # only its environment variable: a token in argv shows in `ps`
    callback=_token_from_environment,
)
@_rate_options
@_flow_options("mail-")
def sandbox_serve(
    path: str,
    host: str,
    port: int,
    latency_ms: float,
    fail_rate: float,
    faults: str,
    retry_after: int,
    seed: int,
    threads: int,
    token_file: str | None,
    allowed_hosts: tuple[str, ...],
    token: str | None,
    deliver_rate: float,
    expire_rate: float,
    **flow: Any,
) -> None:
    """Serve the sandbox at PATH over the platform REST API until Ctrl-C or SIGTERM.

    The API is schemas/platform-api.yaml; point the http adapter at the printed URL, with the
    token in TRANSFER_RUNNER_PLATFORM_TOKEN. Every request but GET /v1/health needs the bearer
    token (401 otherwise, whatever the path): TRANSFER_RUNNER_SANDBOX_TOKEN, --token-file, or
    else a new one printed once on stderr. A request whose Host header names neither loopback,
    the --host address nor an --allowed-host gets 421. --deliver/--expire run the mail flow of
    `sandbox mail` in the background while serving.

    \b
    Examples:
      transfer-runner sandbox serve sandbox.db --port 8080
      transfer-runner sandbox serve sandbox.db --fail-rate 0.05 --latency 20 --deliver 50
      transfer-runner sandbox serve my.db --host 0.0.0.0 --allowed-host box.lan --token-file tok.txt
    """
    from transfer_runner.platforms.http.faults import FaultPlan, parse_fault_kinds
    from transfer_runner.sandbox_commands import MailRates, serve_token
    from transfer_runner.sandbox_commands import sandbox_serve as serve

    plan = FaultPlan(
        latency_ms=latency_ms,
        fail_rate=fail_rate,
        kinds=parse_fault_kinds(faults),
        retry_after=retry_after,
        seed=seed,
    )
    rates = MailRates(deliver_rate, expire_rate, _flow_spec(**flow))
    secret = serve_token(token, token_file, say=_to_stderr)
    with _sigterm_interrupts():
        totals = serve(
            path,
            host=host,
            port=port,
            faults=plan,
            token=secret,
            allowed_hosts=allowed_hosts,
            rates=rates,
            threads=threads,
            say=click.echo,
            tell=_to_stderr,
        )
    if totals is not None:
        click.echo(f"mail flow: {totals.summary()}")


@sandbox.command("mail")
@click.argument("path", type=click.Path(dir_okay=False))
@_rate_options
@_flow_options("")
@click.option(
    "--duration",
    type=click.FloatRange(min=0),
    metavar="S",
    help="Stop after S seconds (default: run until Ctrl-C or SIGTERM).",
)
@click.option(
    "--count",
    type=click.IntRange(min=0),
    metavar="N",
    help="Deliver N messages at once and exit, unpaced (for scripts); no --deliver or --expire.",
)
def sandbox_mail(
    path: str,
    deliver_rate: float,
    expire_rate: float,
    duration: float | None,
    count: int | None,
    **flow: Any,
) -> None:
    """Make the sandbox at PATH a live mailbox: deliver and expire mail while a transfer runs.

    Mail goes to whichever active account holds each domain at that moment and is held back
    while none does; expiry removes the oldest mail of the accounts that hold or held the
    domains. Prints a summary line at the end; Ctrl-C or SIGTERM stops it cleanly.

    \b
    Examples:
      transfer-runner sandbox mail sandbox.db --deliver 20 --expire 5 --duration 600
      transfer-runner sandbox mail sandbox.db --count 500 --store archive --size 64KiB
    """
    from transfer_runner.sandbox_commands import MailRates, mail_problem
    from transfer_runner.sandbox_commands import sandbox_mail as mail

    rates = MailRates(deliver_rate, expire_rate, _flow_spec(**flow))
    problem = mail_problem(rates, duration, count)
    if problem:
        raise click.UsageError(problem)
    with _sigterm_interrupts():
        totals = mail(path, rates, duration_s=duration, count=count, say=click.echo)
    click.echo(f"mail flow: {totals.summary()}")

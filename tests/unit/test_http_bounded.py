"""The HTTP adapter reads bounded replies only (issue 18, "a hostile HTTP peer").

Reproduced: the transport let urllib3 decode a `Content-Encoding: gzip` it never asked for, and
read any body whole: a 1 MiB gzip reply became 1 GiB in memory (the child's peak RSS grew by
2 GiB). Now it asks for `Accept-Encoding: identity`, refuses any encoding, and reads at most
`max_reply_bytes` (96 MiB by default): a declared `Content-Length` over that before the body,
a body without one as soon as it passes it. A refusal is a PlatformError, never retried.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.unit.bombs import MiB, Served, gzip_bomb, http_server, measured
from transfer_runner.errors import ConfigError, PlatformError
from transfer_runner.platforms.http.client import HttpPlatform, open_http_platform
from transfer_runner.platforms.http.transport import MAX_REPLY_BYTES, Endpoint, Transport

BOUND_MIB = 64  # what a refused reply may add to the child's peak RSS
HEALTH = Endpoint("health", "GET", "/v1/health")
FETCH = Endpoint("fetch_messages", "POST", "/v1/fetch", read=True)


def transport(url: str, **kw: Any) -> Transport:
    return Transport(url, token="t0k3n", timeout=10.0, sleep=lambda _: None, **kw)


# One request from a child process to a server in it answering with SERVED.
CHILD = """
from tests.unit.bombs import MiB, Served, gzip_bomb, start_server, url
from transfer_runner.platforms.http.transport import Endpoint, Transport

server = start_server(SERVED)
client = Transport(url(server), token="t0k3n", timeout=30.0, sleep=lambda _: None)
"""
REQUEST = 'client.request(Endpoint("health", "GET", "/v1/health"))'


def in_child(served: str) -> dict[str, Any]:
    return measured(CHILD.replace("SERVED", served), REQUEST)


def test_a_gzip_bomb_is_refused_unread() -> None:
    result = in_child('Served(gzip_bomb(1024 * MiB), headers={"Content-Encoding": "gzip"})')
    assert "Content-Encoding 'gzip', not asked for (Accept-Encoding: identity)" in str(
        result["outcome"]
    )
    assert result["grew_mib"] < BOUND_MIB, result


def test_a_declared_length_over_the_limit_is_refused_before_the_body() -> None:
    result = in_child("Served(b'', zeros=1024 * MiB)")
    outcome = str(result["outcome"])
    assert outcome.startswith("PlatformError: platform health (GET /v1/health) [200]: "), outcome
    assert "the reply is 1,073,741,824 bytes, more than the limit of 100,663,296 bytes" in outcome
    assert "TRANSFER_RUNNER_PLATFORM_MAX_REPLY_MIB raises it" in outcome
    assert result["grew_mib"] < BOUND_MIB, result


def test_a_chunked_body_is_cut_off_past_the_limit() -> None:
    result = in_child("Served(b'', zeros=1024 * MiB, chunked=True)")
    assert "the reply is longer than the limit of 100,663,296 bytes" in str(result["outcome"])
    assert result["grew_mib"] < MAX_REPLY_BYTES / MiB + BOUND_MIB, result  # the limit, read


def test_the_request_asks_for_no_encoding_and_a_refusal_is_not_retried() -> None:
    served = Served(gzip_bomb(4 * MiB), headers={"Content-Encoding": "gzip"})
    with http_server(served) as url:
        client = transport(url)
        with pytest.raises(PlatformError, match="not asked for") as caught:
            client.request(FETCH, json_body={"ids": ["m1"]})
    assert caught.value.status == 200
    assert len(served.seen) == 1  # a read, yet not retried
    assert served.seen[0]["Accept-Encoding"] == "identity"


@pytest.mark.parametrize("chunked", [False, True])
def test_a_reply_up_to_the_limit_is_read_and_one_byte_more_is_not(chunked: bool) -> None:
    served = Served(b"", zeros=MiB, chunked=chunked)
    with http_server(served) as url:
        assert transport(url, max_reply_bytes=MiB).request(HEALTH).body == bytes(MiB)
        small = transport(url, max_reply_bytes=MiB - 1)
        with pytest.raises(PlatformError, match="than the limit of 1,048,575 bytes"):
            small.request(HEALTH)
        served.zeros = 10
        assert small.request(HEALTH).body == bytes(10)  # the pool recovers from the cut
    assert len(served.seen) == 3  # the refused one not retried


def test_identity_is_no_encoding() -> None:
    served = Served(b'{"status":"ok"}', headers={"Content-Encoding": "identity"})
    with http_server(served) as url:
        assert transport(url).request(HEALTH).json("health") == {"status": "ok"}


def test_the_adapter_takes_its_limit_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    served = Served(b"", zeros=2 * MiB)
    with http_server(served) as url:
        monkeypatch.setenv("TRANSFER_RUNNER_PLATFORM_MAX_REPLY_MIB", "1")
        with (
            open_http_platform(url) as platform,
            pytest.raises(PlatformError, match="2,097,152 bytes, more than the limit"),
        ):
            platform.fetch_message("C-1", "archive", "m1")
        monkeypatch.setenv("TRANSFER_RUNNER_PLATFORM_MAX_REPLY_MIB", "2")
        with open_http_platform(url) as platform:
            assert platform.fetch_message("C-1", "archive", "m1") == bytes(2 * MiB)


@pytest.mark.parametrize("value", ["0", "-3", "lots"])
def test_a_bad_limit_in_the_environment_is_a_config_error(
    monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    monkeypatch.setenv("TRANSFER_RUNNER_PLATFORM_MAX_REPLY_MIB", value)
    with pytest.raises(ConfigError, match="TRANSFER_RUNNER_PLATFORM_MAX_REPLY_MIB"):
        open_http_platform("http://127.0.0.1:9")


def test_a_non_positive_limit_is_refused() -> None:
    with pytest.raises(ConfigError, match="reply limit must be positive"):
        HttpPlatform("http://127.0.0.1:9", max_reply_bytes=0)

"""The end-of-wave webhook (`notify.py`) against a real HTTP server on loopback."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.webhook import SECRET, Hook
from transfer_runner.engine.results import RunReport, TransferResult
from transfer_runner.notify import MAX_LISTED, notification, send_notification

T0 = datetime(2026, 11, 18, 9, 30, tzinfo=UTC)


@pytest.fixture
def hook() -> Iterator[Any]:
    made: list[Hook] = []

    def make(statuses: list[int] | None = None) -> Hook:
        made.append(Hook(list(statuses or [])))
        return made[-1]

    yield make
    for h in made:
        h.close()


def _report(*statuses: str) -> RunReport:
    transfers = tuple(
        TransferResult(f"t{i:03d}", status, message=f"why {i}")  # type: ignore[arg-type]
        for i, status in enumerate(statuses)
    )
    return RunReport("r-1", "apply", T0, T0 + timedelta(minutes=3), transfers, "abc123", "ci")


def test_the_body_says_what_happened_and_names_what_needs_attention() -> None:
    body = notification(_report("succeeded", "failed", "locked", "unchanged"))
    assert body["text"] == (
        "transfer-runner apply r-1: 4 transfers, 1 succeeded, 1 unchanged, 1 failed, 1 locked"
        " - needs attention: t001, t002"
    )
    assert body["event"] == "transfer-runner.apply.finished"
    assert body["totals"]["transfers_failed"] == 1 and body["attention_count"] == 2
    assert body["attention"][0] == {"name": "t001", "status": "failed", "message": "why 1"}
    assert (body["started_at"], body["git_commit"]) == ("2026-11-18T09:30:00Z", "abc123")


def test_a_big_failure_lists_a_bounded_number() -> None:
    body = notification(_report(*["failed"] * (MAX_LISTED + 7)))
    assert len(body["attention"]) == MAX_LISTED and body["attention_count"] == MAX_LISTED + 7
    assert body["text"].endswith("and 7 more")


def test_delivered_once_with_the_summary(hook: Any) -> None:
    h = hook()
    assert send_notification(h.url, _report("succeeded")) == ""
    assert len(h.bodies) == 1 and h.bodies[0]["run_id"] == "r-1"
    assert h.paths == [f"/hooks/{SECRET}"]


def test_a_server_error_is_tried_again_and_a_refusal_is_not(hook: Any) -> None:
    flaky = hook([503, 500])
    pauses: list[float] = []
    assert send_notification(flaky.url, _report("failed"), pause=pauses.append) == ""
    assert len(flaky.bodies) == 3 and pauses == [1.0, 2.0]
    refusing = hook([404, 404, 404])
    problem = send_notification(refusing.url, _report("failed"), pause=pauses.append)
    assert "answered 404" in problem and len(refusing.bodies) == 1
    assert SECRET not in problem and "127.0.0.1" in problem


def test_unreachable_or_not_http_is_a_message_without_the_secret(hook: Any) -> None:
    h = hook()
    url = h.url
    h.close()
    problem = send_notification(url, _report("succeeded"), pause=lambda _s: None)
    assert problem.startswith("notification not sent: the webhook could not be reached")
    assert SECRET not in problem
    assert "not an http(s) URL" in send_notification(f"file:///etc/{SECRET}", _report())

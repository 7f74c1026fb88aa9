"""End-of-wave notification: a JSON summary POSTed to a webhook (off unless configured).

The URL comes from the environment only (`TRANSFER_RUNNER_NOTIFY_URL`): chat webhooks carry
their secret in the URL, so it never goes on a command line, into a log or into a report. The
body has a `text` line (what Slack, Mattermost and Teams-style incoming webhooks show) and the
run's figures for anything else. A notification that fails is a warning: the wave's outcome and
exit code stay what they were.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from transfer_runner.engine.results import ATTENTION_STATUSES, TRANSFER_STATUSES, RunReport
from transfer_runner.utc import iso_z

__all__ = ["ENV_VAR", "MAX_LISTED", "notification", "send_notification"]

ENV_VAR = "TRANSFER_RUNNER_NOTIFY_URL"
MAX_LISTED = 50  # transfers needing attention named in one notification
TIMEOUT_S = 10.0
ATTEMPTS = 3


def notification(report: RunReport) -> dict[str, Any]:
    """The JSON body for `report`."""
    totals = report.totals
    shown = ", ".join(
        f"{totals[f'transfers_{s}']} {s.replace('_', ' ')}"
        for s in TRANSFER_STATUSES
        if totals[f"transfers_{s}"]
    )
    attention = [t for t in report.transfers if t.status in ATTENTION_STATUSES]
    text = f"transfer-runner {report.command} {report.run_id}: {totals['transfers']} transfers"
    text += f", {shown}" if shown else ""
    if attention:
        text += " - needs attention: " + ", ".join(t.name for t in attention[:MAX_LISTED])
        text += f" and {len(attention) - MAX_LISTED} more" if len(attention) > MAX_LISTED else ""
    return {
        "event": f"transfer-runner.{report.command}.finished",
        "text": text,
        "run_id": report.run_id,
        "started_at": iso_z(report.started_at),
        "finished_at": iso_z(report.finished_at),
        "user": report.user,
        "git_commit": report.git_commit,
        "totals": {k: v for k, v in totals.items() if k.startswith("transfers")},
        "attention": [
            {"name": t.name, "status": t.status, "message": t.message}
            for t in attention[:MAX_LISTED]
        ],
        "attention_count": len(attention),
    }


def send_notification(
    url: str, report: RunReport, *, pause: Callable[[float], None] = time.sleep
) -> str:
    """POST the notification to `url` (up to 3 tries, 1 s then 2 s apart); "" when delivered,
    else why not (the URL is never in the answer: it may hold a secret)."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return f"{ENV_VAR} is not an http(s) URL; no notification sent"
    body = json.dumps(notification(report)).encode()
    headers = {"Content-Type": "application/json", "User-Agent": "transfer-runner"}
    problem = ""
    for attempt in range(ATTEMPTS):
        if attempt:
            pause(float(attempt))
        request = urllib.request.Request(url, data=body, headers=headers, method="POST")
        try:
            with urllib.request.urlopen(request, timeout=TIMEOUT_S) as reply:  # noqa: S310
                if 200 <= reply.status < 300:
                    return ""
                problem = f"the webhook answered {reply.status}"
        except urllib.error.HTTPError as exc:
            problem = f"the webhook answered {exc.code}"
            if 400 <= exc.code < 500 and exc.code != 429:
                break  # a refusal, not a hiccup: asking again changes nothing
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            problem = f"the webhook could not be reached ({type(reason).__name__})"
    return f"notification not sent: {problem} (host {parts.hostname})"

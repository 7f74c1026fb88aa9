"""JUnit XML (`apply --junit FILE`, `report --format junit`), for CI test-result views.

A <testsuite> per transfer and a <testcase> per step. A locked transfer is one skipped case; a
transfer that failed outside any step (drift, interruption, lost lock) gets one failed case so
that CI never shows it green.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

from transfer_runner.engine.results import RunReport, StepResult, TransferResult

__all__ = ["render_junit"]

# Characters XML 1.0 forbids even escaped; ElementTree would write them and break parsers.
_NOT_XML = re.compile("[^\u0009\u000a\u000d\u0020-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
_TRANSFER_CASE = "(transfer)"


def _text(value: str) -> str:
    return _NOT_XML.sub("\ufffd", value)


def _secs(value: float) -> str:
    return f"{max(value, 0.0):.3f}"


def _case(parent: ET.Element, classname: str, name: str, time_s: float) -> ET.Element:
    return ET.SubElement(
        parent, "testcase", classname=_text(classname), name=_text(name), time=_secs(time_s)
    )


def _step_case(suite: ET.Element, transfer: str, step: StepResult) -> None:
    case = _case(suite, transfer, step.name, step.duration_s)
    if step.status == "failed":
        failure = ET.SubElement(
            case, "failure", message=_text(step.message), type=_text(step.module)
        )
        failure.text = _text(step.message)
    elif step.status == "skipped":
        ET.SubElement(case, "skipped", message=_text(step.message))
    elif step.message:
        ET.SubElement(case, "system-out").text = _text(step.message)


def _suite(parent: ET.Element, transfer: TransferResult) -> tuple[int, int, int]:
    suite = ET.SubElement(parent, "testsuite", name=_text(transfer.name))
    if transfer.path:
        suite.set("file", _text(transfer.path))
    for step in transfer.steps:
        _step_case(suite, transfer.name, step)
    tests, failures, skipped = (
        len(transfer.steps),
        transfer.count("failed"),
        transfer.count("skipped"),
    )
    if transfer.status in ("locked", "interrupted", "not_started"):
        default = {"locked": "locked by another runner", "interrupted": "interrupted"}
        reason = _text(transfer.message or default.get(transfer.status, "not started"))
        ET.SubElement(_case(suite, transfer.name, _TRANSFER_CASE, 0.0), "skipped", message=reason)
        tests, skipped = tests + 1, skipped + 1
    elif transfer.status == "failed" and failures == 0:
        message = _text(transfer.message or "failed")
        case = _case(suite, transfer.name, _TRANSFER_CASE, 0.0)
        ET.SubElement(case, "failure", message=message).text = message
        tests, failures = tests + 1, failures + 1
    suite.set("tests", str(tests))
    suite.set("failures", str(failures))
    suite.set("errors", "0")
    suite.set("skipped", str(skipped))
    suite.set("time", _secs(sum(s.duration_s for s in transfer.steps)))
    return tests, failures, skipped


def render_junit(report: RunReport) -> str:
    """The report as a JUnit XML document (UTF-8, with an XML declaration)."""
    root = ET.Element("testsuites", name=_text(f"transfer-runner {report.command} {report.run_id}"))
    tests = failures = skipped = 0
    for transfer in report.transfers:
        t, f, s = _suite(root, transfer)
        tests, failures, skipped = tests + t, failures + f, skipped + s
    root.set("tests", str(tests))
    root.set("failures", str(failures))
    root.set("errors", "0")
    root.set("skipped", str(skipped))
    root.set("time", _secs((report.finished_at - report.started_at).total_seconds()))
    ET.indent(root)
    body = ET.tostring(root, encoding="unicode")
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + body + "\n"

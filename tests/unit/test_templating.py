"""Templating: native types for single expressions, strict undefined, sandboxed access."""

from __future__ import annotations

import pytest

from transfer_runner.errors import TemplateError
from transfer_runner.playbook.templating import evaluate, render

VARS = {
    "spec": {
        "customer": {"domains": ["acme.com", "acme.net"]},
        "subscription": {"users": 40},
        "billing": {},
        "data": {"archive": "skip"},
    },
    "metadata": {"name": "acme-com"},
    "defaults": {"transfer_fee": "25.00"},
}


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        ("{{ spec.customer.domains }}", ["acme.com", "acme.net"]),
        ("{{ spec.customer.domains[0] }}", "acme.com"),
        ("{{ spec.subscription.users }}", 40),
        ("gdi.{{ spec.customer.domains[0] }}", "gdi.acme.com"),
        ("transfer-fee:{{ metadata.name }}", "transfer-fee:acme-com"),
        ("{{ spec.billing.transfer_fee | default(defaults.transfer_fee) }}", "25.00"),
        ("no template here", "no template here"),
        ({"a": ["{{ metadata.name }}", 3]}, {"a": ["acme-com", 3]}),
    ],
)
def test_render_values(template, expected):
    assert render(template, VARS, "t") == expected


@pytest.mark.parametrize(
    "template",
    [
        "{{ undefined_name }}",
        "{{ spec.nope }}",
        "prefix {{ spec.nope }}",
        "{{ spec.customer.domains[5] }}",
        "{{ spec.__class__ }}",
        "{{ ().__class__.__mro__ }}",
        "{{ metadata.name.__class__.__init__.__globals__ }}",
    ],
)
def test_render_rejects_undefined_and_unsafe(template):
    with pytest.raises(TemplateError) as err:
        render(template, VARS, "my task")
    assert "my task" in str(err.value)


@pytest.mark.parametrize(
    ("expression", "expected"),
    [("spec.data.archive != 'skip'", False), ("spec.subscription.users > 10", True)],
)
def test_evaluate_when(expression, expected):
    assert evaluate(expression, VARS, "t") is expected


def test_evaluate_undefined_is_an_error():
    with pytest.raises(TemplateError):
        evaluate("spec.data.quarantine != 'skip'", VARS, "t")


@pytest.mark.parametrize("text", ["{{ 10.0 ** 400 }}", "{{ 1 // 0 }}", "{{ 'a' + 1 }}"])
def test_an_expression_that_fails_to_compute_is_a_template_error(text: str) -> None:
    with pytest.raises(TemplateError, match="task"):
        render({"amount": text}, {}, "task")
    with pytest.raises(TemplateError):
        evaluate(text.strip("{} "), {}, "task")

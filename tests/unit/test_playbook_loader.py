"""Playbook loading: the default playbook, and each kind of mistake as a clear error."""

from __future__ import annotations

from pathlib import Path

import pytest

from transfer_runner.errors import PlaybookError
from transfer_runner.modules.registry import load_modules
from transfer_runner.playbook.loader import load_playbook

MODULES = load_modules()


def test_default_playbook_loads_with_thirteen_tasks() -> None:
    playbook = load_playbook(None, MODULES)
    assert len(playbook.tasks) == 15
    assert playbook.defaults["transfer_fee"] == "25.00"
    assert [t.module for t in playbook.tasks][:3] == [
        "ticket.verify",
        "ticket.verify",
        "account.ensure",
    ]
    assert playbook.tasks[2].register == "new_account"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("tasks: []", "should be non-empty"),
        ("tasks:\n  - name: x\n    nope.module: {}\n", "unknown module 'nope.module'"),
        ("tasks:\n  - name: x\n", "does not have enough properties"),
        (
            "tasks:\n  - name: x\n    ticket.verify: {}\n    account.cancel: {}\n",
            "exactly one module",
        ),
        (
            "tasks:\n  - name: x\n    ticket.verify: {}\n  - name: x\n    account.cancel: {}\n",
            "used twice",
        ),
        ("tasks:\n  - name: x\n    ticket.verify: {}\n    loop: [1]\n", "loop"),
        ("tasks:\n  - name: x\n    ticket.verify: {}\n    register: 1bad\n", "register"),
        ("tasks: [\n", "not valid YAML"),
        ("other: 1\n", "tasks"),
    ],
)
def test_playbook_errors(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "p.yml"
    path.write_text(text)
    with pytest.raises(PlaybookError) as err:
        load_playbook(path, MODULES)
    assert message in str(err.value)
    assert str(path) in str(err.value)


def test_missing_playbook_file(tmp_path: Path) -> None:
    with pytest.raises(PlaybookError, match="cannot read playbook"):
        load_playbook(tmp_path / "missing.yml", MODULES)


@pytest.mark.parametrize(
    ("task", "message"),
    [
        (
            "account.cancel: {account: C-1, acount: C-2}",
            "4:36: task 'x' (account.cancel): unknown argument 'acount' (it takes: account)",
        ),
        ("account.cancel: {}", "task 'x' (account.cancel): missing argument 'account'"),
        (
            "domain.move: {domains: acme.com, from_account: C-1}",
            "argument 'domains' must be list, not str",
        ),
        (
            "data.verify: {account: C-1, stores: {archive: migrate}, complete: 'no'}",
            "argument 'complete' must be bool, not str",
        ),
        (
            "account.ensure: {parent: R, name: n, domain: d, users: true, max_domains: 1, "
            "services: [x]}",
            "argument 'users' must be int, not bool",
        ),
    ],
)
def test_task_arguments_are_checked_against_the_module_when_the_playbook_loads(
    tmp_path: Path, task: str, message: str
) -> None:
    path = tmp_path / "p.yml"
    path.write_text(f"# a playbook\ntasks:\n  - name: x\n    {task}\n")
    with pytest.raises(PlaybookError) as err:
        load_playbook(path, MODULES)
    assert message in str(err.value)


def test_templated_values_are_checked_when_the_task_runs(tmp_path: Path) -> None:
    path = tmp_path / "p.yml"
    path.write_text(
        "tasks:\n  - name: x\n    domain.move:\n      domains: '{{ spec.customer.domains }}'\n"
        "      from_account: '{{ spec.customer.account }}'\n"
    )
    [task] = load_playbook(path, MODULES).tasks
    assert task.args["domains"] == "{{ spec.customer.domains }}"


def test_every_built_in_module_declares_its_arguments() -> None:
    assert all(isinstance(getattr(module, "args", None), dict) for module in MODULES.values())


def test_a_plug_in_that_declares_no_arguments_is_not_checked(tmp_path: Path) -> None:
    class Legacy:
        name = "legacy.step"

    path = tmp_path / "p.yml"
    path.write_text("tasks:\n  - name: x\n    legacy.step: {anything: 1}\n")
    [task] = load_playbook(path, {**MODULES, "legacy.step": Legacy()}).tasks
    assert task.args == {"anything": 1}

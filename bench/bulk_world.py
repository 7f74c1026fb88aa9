"""Test data of the bulk benchmark: a sandbox of N direct customers, their tickets, a few
resellers and one manifest per customer; and the equivalent ansible-core inventory and playbook.

The sandbox is built once (`make_world`) and copied for each measurement (`fresh_copy`), so
every first apply starts from the same untouched world; `write_manifests` writes the manifests
of the first N customers in one data mode.
"""

from __future__ import annotations

import shutil
import sqlite3
from dataclasses import dataclass
from pathlib import Path

from transfer_runner.platforms.sandbox import init_sandbox

SEED = 20261129
RESELLERS = (
    ("R-301", "Northwind IT"),
    ("R-302", "Contoso Partners"),
    ("R-303", "Fabrikam Services"),
    ("R-304", "Tailspin Networks"),
)
DATA_MODES = ("migrate", "export", "skip")
PLAYBOOK_TASKS = 13  # the default playbook's tasks, matched by the ansible-core playbook


@dataclass(frozen=True)
class World:
    """A template sandbox of `transfers` direct customers, each with its two tickets."""

    sandbox: Path  # the template: never applied to, only copied
    transfers: int
    quarantine: int  # messages per customer
    archive: int
    size_kib: int


def customer(i: int) -> tuple[str, str, str]:
    """(account id, domain, transfer name) of customer `i` (0-based)."""
    return f"C-{10000 + i}", f"cust{i:05d}.example", f"cust{i:05d}-example"


def fixture_text(transfers: int, quarantine: int, archive: int, size_kib: int) -> str:
    """The sandbox fixture: `transfers` direct customers, each with its two tickets."""
    start, end = "today-10d", "today+20d"  # a current period: the pro-ration credits 2/3
    lines = [f"seed: {SEED}", "accounts:"]
    for rid, rname in RESELLERS:
        lines += [f"  - id: {rid}", "    type: reseller", f"    name: {rname}"]
    tickets: list[str] = ["tickets:"]
    for i in range(transfers):
        account, domain, _ = customer(i)
        reseller, reseller_name = RESELLERS[i % len(RESELLERS)]
        lines += [
            f"  - id: {account}",
            "    type: direct",
            f"    name: Customer {i}",
            f"    domains: [{domain}]",
            "    users: 5",
            "    services: [spamstopshere]",
            f'    billing: {{price: "60.00", period_start: {start}, period_end: {end}}}',
            f"    quarantine: {{messages: {quarantine}, size: {size_kib}KiB}}",
            f"    archive: {{messages: {archive}, size: {size_kib}KiB}}",
        ]
        tickets += [
            f"  - id: T-{20000 + 2 * i}",
            f"    account: {account}",
            "    subject: Authorize transfer of account",
            f"    body: We, {domain}, authorize the transfer of our direct account to resold "
            f"under {reseller_name}.",
            f"  - id: T-{20001 + 2 * i}",
            f"    account: {reseller}",
            "    subject: Authorize Customer Transfer",
            f"    body: We, {reseller_name}, Authorize {domain} to be transferred to our account.",
        ]
    return "\n".join(lines + tickets) + "\n"


def manifest_text(i: int, data: str) -> str:
    """The manifest moving customer `i` under its reseller."""
    account, domain, name = customer(i)
    reseller, reseller_name = RESELLERS[i % len(RESELLERS)]
    return (
        "apiVersion: transfer-runner/v1\n"
        "kind: Transfer\n"
        "metadata:\n"
        f"  name: {name}\n"
        f'  labels: {{wave: "bench", reseller: "{reseller.lower()}"}}\n'
        "spec:\n"
        f"  customer: {{account: {account}, domains: [{domain}]}}\n"
        f"  reseller: {{account: {reseller}, name: {reseller_name}}}\n"
        "  subscription: {users: 5, domains: 1}\n"
        "  services: [spamstopshere]\n"
        f"  temporary_domain: gdi.{domain}\n"
        "  authorization:\n"
        f"    customer_ticket: T-{20000 + 2 * i}\n"
        f"    reseller_ticket: T-{20001 + 2 * i}\n"
        f"  data: {{quarantine: {data}, archive: {data}}}\n"
        '  billing: {transfer_fee: "25.00", prorate: true}\n'
    )


def make_world(
    directory: Path, transfers: int, quarantine: int, archive: int, size_kib: int
) -> World:
    """Write the fixture and build the template sandbox."""
    directory.mkdir(parents=True, exist_ok=True)
    fixture = directory / "fixture.yml"
    fixture.write_text(fixture_text(transfers, quarantine, archive, size_kib), encoding="utf-8")
    sandbox = directory / "template.db"
    init_sandbox(sandbox, fixture)
    _checkpoint(sandbox)
    return World(sandbox, transfers, quarantine, archive, size_kib)


def write_manifests(directory: Path, count: int, data: str) -> Path:
    """`directory` holding the manifests of the first `count` customers, in data mode `data`."""
    directory.mkdir(parents=True, exist_ok=True)
    for i in range(count):
        path = directory / f"{customer(i)[2]}.yml"
        path.write_text(manifest_text(i, data), encoding="utf-8")
    return directory


def _checkpoint(db: Path) -> None:
    """Fold the WAL into the main file so that copying the one file copies everything."""
    conn = sqlite3.connect(db)
    try:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        conn.close()


def fresh_copy(world: World, target: Path) -> Path:
    """A new sandbox file with the template's contents, for one measurement."""
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(world.sandbox, target)
    return target


# --- ansible-core: the same number of local hosts, 13 set_fact tasks ------------------------


def ansible_files(directory: Path, hosts: int) -> tuple[Path, Path]:
    """(inventory, playbook): `hosts` hosts on the local connection, 13 `set_fact` tasks."""
    directory.mkdir(parents=True, exist_ok=True)
    inventory = directory / "inventory.ini"
    names = "\n".join(customer(i)[2] for i in range(hosts))
    inventory.write_text(
        f"[transfers]\n{names}\n\n[transfers:vars]\nansible_connection=local\n"
        "ansible_python_interpreter=auto_silent\n",
        encoding="utf-8",
    )
    tasks = "\n".join(
        f"    - name: step {n}\n      ansible.builtin.set_fact:\n"
        f'        step_{n}: "{{{{ inventory_hostname }}}}-{n}"'
        for n in range(1, PLAYBOOK_TASKS + 1)
    )
    playbook = directory / "playbook.yml"
    playbook.write_text(
        f"- hosts: transfers\n  gather_facts: false\n  tasks:\n{tasks}\n", encoding="utf-8"
    )
    return inventory, playbook

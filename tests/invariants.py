"""The safety invariants I1-I6 (README: "Safety invariants"), read from the external systems only.

Everything here looks at what a customer, a reseller or an auditor could see: the sandbox
platform (its dump, its message API and its audit table of write calls) and the S3 export
(listings and objects, parts opened with `tarfile`, not with the runner's own reader). The
runner's state store and journal are never consulted, so a runner that believes it did the
right thing cannot convince this checker.

`check_world` returns violations as strings instead of asserting, so that a test can also
expect violations (a negative control). With `complete=False` it checks only what must hold
at every instant (at most one account, fee, credit and comment; no cut-over before a
verified export); with `complete=True` (the default) it also checks the finished transfer.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any

from tests.invariants_io import (
    Export,
    Snapshot,
    attributable,
    read_export,
    read_receipt,
    read_snapshot,
    store_messages,
)
from transfer_runner.clock import clock_from_env
from transfer_runner.manifest.api import load_transfers
from transfer_runner.manifest.model import DEFAULT_TRANSFER_FEE, Transfer
from transfer_runner.platforms.base import STORES
from transfer_runner.platforms.sandbox.platform import SandboxPlatform

__all__ = ["check_world", "load_manifests", "CUT_OVER_OPS"]

# Platform writes that take data or domains away from the direct account (gated by I2).
CUT_OVER_OPS = ("cancel_account", "move_domain", "detach_domain")
CLAIM_OPENING = "Claimed by transfer-runner for transfer"  # a ticket's claim comment opens so
_CENT = Decimal("0.01")
# S3 LastModified has a resolution of one second: allow for it when comparing with the audit.
_S3_CLOCK_SLACK = timedelta(seconds=1)


def load_manifests(paths: Sequence[str | Path]) -> list[Transfer]:
    """The transfers of the manifests under `paths`; ValueError if any manifest is invalid."""
    transfers, diagnostics = load_transfers([str(p) for p in paths])
    if diagnostics:
        raise ValueError("invalid manifests:\n" + "\n".join(str(d) for d in diagnostics))
    return transfers


def check_world(
    transfers: Sequence[Transfer],
    sandbox: str | Path,
    s3: Any,
    export_to: str,
    *,
    complete: bool = True,
    baseline: Mapping[str, Any] | None = None,
) -> list[str]:
    """Every invariant violation of `transfers` in the world, one readable line each.

    `baseline` is a `dump_sandbox` of the starting world: accounts, charges, credits and
    comments already in it belong to no transfer. Without it the world is taken to have
    started from a fixture holding none of them.
    """
    snapshot = read_snapshot(Path(sandbox), baseline)
    problems: list[str] = []
    with SandboxPlatform(sandbox) as platform:
        for transfer in transfers:
            checker = _TransferCheck(transfer, snapshot, platform, s3, export_to, complete)
            problems.extend(f"{transfer.name}: {p}" for p in checker.run())
    return problems


@dataclass
class _TransferCheck:
    """The checks of one transfer; `run` returns its violations."""

    t: Transfer
    snap: Snapshot
    platform: SandboxPlatform
    s3: Any
    export_to: str
    complete: bool

    def run(self) -> list[str]:
        problems: list[str] = []
        account = self._new_account(problems)
        cut_over = self._cut_over_started()
        if self.complete or cut_over:
            # Until the direct account is cancelled it may still receive mail (the domains
            # move one by one) and a pass may be half written: what the export holds is
            # judged once it is cancelled; the order of the cut-over writes, always.
            settled = self.complete or self._direct_cancelled()
            exports = self._exports(problems if settled else [], account)
            self._order(problems, exports, settled)
        if self.complete:
            self._direct_account(problems)
            self._domains(problems, account)
        for domain in (*self.t.customer_domains, self.t.temporary_domain):
            holders = self.snap.domain_holders().get(domain, [])
            if len(holders) > 1:
                problems.append(f"I4: {domain} is on {len(holders)} accounts at once: {holders}")
        self._billing(problems)
        self._subscription(problems)
        self._comments(problems)
        return problems

    # -- I3: one account -------------------------------------------------------------------
    def _new_account(self, problems: list[str]) -> dict[str, Any] | None:
        t = self.t
        mine = {*t.customer_domains, t.temporary_domain}
        found = [
            a
            for a in self.snap.new_accounts()
            if a["type"] == "resold"
            and a["parent"] == t.reseller_account
            and (a["name"] == t.customer_domains[0] or mine.intersection(a["domains"]))
        ]
        if len(found) > 1 or (self.complete and not found):
            ids = ", ".join(a["id"] for a in found) or "none"
            problems.append(
                f"I3: {len(found)} new resold accounts under {t.reseller_account} ({ids}), "
                f"want {'exactly' if self.complete else 'at most'} 1"
            )
        if len(found) != 1:
            return None
        account = found[0]
        if self.complete:
            problems.extend(f"account {account['id']}: {p}" for p in _account_shape(t, account))
        return account

    # -- I4: domains -----------------------------------------------------------------------
    def _domains(self, problems: list[str], account: dict[str, Any] | None) -> None:
        t = self.t
        holders = self.snap.domain_holders()
        for domain in t.customer_domains:
            on = holders.get(domain, [])
            if account is not None and on != [account["id"]]:
                problems.append(f"I4: {domain} is on {on or 'no account'}, want [{account['id']}]")
        if holders.get(t.temporary_domain):
            problems.append(
                f"I4: temporary domain {t.temporary_domain} is still on "
                f"{holders[t.temporary_domain]}"
            )

    def _direct_account(self, problems: list[str]) -> None:
        direct = self.snap.account(self.t.customer_account)
        if direct is None:
            problems.append(f"direct account {self.t.customer_account} is gone")
        elif direct["status"] != "cancelled":
            problems.append(f"direct account {direct['id']} is {direct['status']}, not cancelled")

    def _direct_cancelled(self) -> bool:
        direct = self.snap.account(self.t.customer_account)
        return direct is not None and direct["status"] == "cancelled"

    def _cut_over_started(self) -> bool:
        direct = self.snap.account(self.t.customer_account)
        moved = any(
            self.t.customer_account not in self.snap.domain_holders().get(d, [])
            for d in self.t.customer_domains
        )
        return moved or (direct is not None and direct["status"] == "cancelled")

    # -- I2: exports and their order -------------------------------------------------------
    def _stores(self) -> list[str]:
        return [s for s in STORES if self.t.data_mode(s) != "skip"]

    def _exports(self, problems: list[str], account: dict[str, Any] | None) -> dict[str, Export]:
        exports = {}
        for store in self._stores():
            source = store_messages(self.platform, self.t.customer_account, store)
            export = exports[store] = read_export(self.s3, self.export_to, self.t.name, store)
            problems.extend(f"I2: {store}: {p}" for p in _export_problems(export, source))
            if self.complete and self.t.data_mode(store) == "migrate" and account is not None:
                imported = store_messages(self.platform, account["id"], store)
                problems.extend(f"import {store}: {p}" for p in _import_problems(imported, source))
        return exports

    def _order(
        self, problems: list[str], exports: Mapping[str, Export], settled: bool = True
    ) -> None:
        """No cut-over write before a verified export pass of every store, and no
        cancellation before a complete verification of the index S3 holds (I2, live mail).

        The sandbox audits writes, not reads, so the moments of verification are read from
        the receipt's `verifications` (written to S3 by the runner after it read the parts
        back) and bounded by the S3 server's own LastModified of each index.
        """
        writes = self.snap.committed_writes(CUT_OVER_OPS, self._cut_over_accounts())
        if not writes or not exports:
            return
        first_op, first_at = min(writes, key=lambda w: w[1])
        receipt = read_receipt(self.s3, self.export_to, self.t.name)
        if receipt is None:
            problems.append(f"I2: {first_op} at {first_at} with no export receipt on S3")
            return
        stores = receipt.get("stores") or {}
        cancels = sorted(at for op, at in writes if op == "cancel_account")
        for store, export in exports.items():
            info = stores.get(store) or {}
            history = [v for v in info.get("verifications") or [] if isinstance(v, dict)]
            times = [t for t in (_parse_time(v.get("verified_at")) for v in history) if t]
            if info.get("verified") is not True or not times:
                problems.append(f"I2: the receipt does not vouch for the {store} export")
                continue
            if min(times) >= first_at:
                problems.append(
                    f"I2: {first_op} at {first_at} before {store} was verified at {min(times)}"
                )
            if settled and info.get("index_sha256") != export.index_sha256:
                problems.append(f"I2: the receipt vouches for another {store} index than S3's")
            if cancels:
                self._cancel_order(problems, store, export, history, cancels[0])

    def _cancel_order(
        self,
        problems: list[str],
        store: str,
        export: Export,
        history: list[dict[str, Any]],
        cancelled_at: datetime,
    ) -> None:
        complete = [
            _parse_time(v.get("verified_at"))
            for v in history
            if v.get("complete") is True and v.get("index_sha256") == export.index_sha256
        ]
        if not any(t is not None and t < cancelled_at for t in complete):
            problems.append(
                f"I2: cancel_account at {cancelled_at} before a complete verification of the "
                f"{store} index S3 holds"
            )
        if export.index_modified and export.index_modified > cancelled_at + _S3_CLOCK_SLACK:
            problems.append(
                f"I2: cancel_account at {cancelled_at} before the {store} index.jsonl was "
                f"written ({export.index_modified})"
            )

    def _cut_over_accounts(self) -> set[str]:
        ids = {self.t.customer_account}
        for a in self.snap.new_accounts():
            if a["parent"] == self.t.reseller_account and a["name"] == self.t.customer_domains[0]:
                ids.add(a["id"])
        return ids

    # -- I3: fee, credit, comments ---------------------------------------------------------
    def _billing(self, problems: list[str]) -> None:
        t = self.t
        fee_key = f"transfer-fee:{t.name}"
        charges = [c for c in self.snap.new_payments("charges") if attributable(c, fee_key, t.name)]
        fee = t.transfer_fee if t.transfer_fee is not None else DEFAULT_TRANSFER_FEE
        _exactly(problems, "transfer-fee charges", charges, 1 if self.complete else None)
        for c in charges:
            if c["idempotency_key"] != fee_key or c["account"] != t.reseller_account:
                problems.append(
                    f"I3: charge {c['id']} on {c['account']} has key {c['idempotency_key']!r}, "
                    f"want {fee_key!r} on {t.reseller_account}"
                )
            if Decimal(c["amount"]) != fee:
                problems.append(f"I3: charge {c['id']} is {c['amount']}, want {fee:.2f}")
        credits = [
            c
            for c in self.snap.new_payments("credits")
            if c["account"] == t.customer_account or attributable(c, f"prorate:{t.name}", t.name)
        ]
        wanted = self._wanted_credits() if self.complete else None
        count = None if wanted is None else (1 if wanted else 0)
        _exactly(problems, "pro-ration credits", credits, count)
        if wanted and len(credits) == 1 and Decimal(credits[0]["amount"]) not in wanted:
            shown = " or ".join(str(w) for w in sorted(wanted))
            credit = credits[0]
            problems.append(f"I3: credit {credit['id']} is {credit['amount']}, want {shown}")

    def _subscription(self, problems: list[str]) -> None:
        """The new account is billed to the reseller once it holds the customer: one
        subscription (the billing table holds one row per account), set by the runner."""
        if not self.complete:
            return
        for account in self.snap.new_accounts():
            if account["parent"] != self.t.reseller_account or account["status"] != "active":
                continue
            billing = account.get("billing")
            if billing is None:
                problems.append(f"I3: the new account {account['id']} has no subscription")
            elif Decimal(billing["price"]) <= 0 or billing["period_start"] >= billing["period_end"]:
                problems.append(f"I3: the new account {account['id']} has subscription {billing}")

    def _wanted_credits(self) -> set[Decimal]:
        """The acceptable credit amounts (empty: no credit is due).

        The runner pro-rates as of the day its run started, on its clock (TRANSFER_RUNNER_NOW,
        the session's); the check runs later, possibly a day later.
        """
        direct = self.snap.account(self.t.customer_account) or {}
        billing = direct.get("billing")
        if not self.t.prorate or not billing:
            return set()
        day = clock_from_env().now().date()
        amounts = {_prorate(billing, d) for d in (day, day - timedelta(days=1))}
        return {a for a in amounts if a > 0}

    def _comments(self, problems: list[str]) -> None:
        """Each ticket gets one claim (naming this transfer) and one outcome comment."""
        ours = f"{CLAIM_OPENING} {self.t.name}."
        for ticket_id in (self.t.customer_ticket, self.t.reseller_ticket):
            comments = self.snap.new_comments(ticket_id)
            claims = [c for c in comments if c.startswith(CLAIM_OPENING)]
            outcomes = [c for c in comments if not c.startswith(CLAIM_OPENING)]
            for what, found in (("claim", claims), ("outcome", outcomes)):
                if len(found) > 1 or (self.complete and len(found) != 1):
                    bound = "" if self.complete else "at most "
                    problems.append(
                        f"I3: ticket {ticket_id} has {len(found)} new {what} comments, "
                        f"want {bound}1"
                    )
            if claims and not claims[0].startswith(ours):
                problems.append(f"I1: ticket {ticket_id} is claimed by another transfer")
            if outcomes and not claims:
                problems.append(f"I1: ticket {ticket_id} has an outcome but no claim")


def _exactly(problems: list[str], what: str, found: list[dict[str, Any]], want: int | None) -> None:
    """`want` None: at most one (a transfer still under way)."""
    if (want is None and len(found) > 1) or (want is not None and len(found) != want):
        listed = ", ".join(f"{c['id']} {c['idempotency_key']}" for c in found) or "none"
        bound = "at most 1" if want is None else f"exactly {want}"
        problems.append(f"I3: {len(found)} {what} ({listed}), want {bound}")


def _account_shape(t: Transfer, account: dict[str, Any]) -> list[str]:
    problems = []
    if account["status"] != "active":
        problems.append(f"is {account['status']}")
    if account["users"] != t.users:
        problems.append(f"has {account['users']} users, want {t.users}")
    if account["max_domains"] != t.max_domains:
        problems.append(f"allows {account['max_domains']} domains, want {t.max_domains}")
    if sorted(account["services"]) != sorted(t.services):
        problems.append(f"has services {account['services']}, want {list(t.services)}")
    return problems


def _export_problems(export: Export, source: Mapping[str, str]) -> list[str]:
    """Every source message exactly once in the export, with its SHA-256, index and parts
    (the export may also hold messages that expired from the source since)."""
    if export.index is None:
        return ["no index.jsonl on S3: the export is not complete"]
    problems = list(export.problems)
    index_ids = [e["id"] for e in export.index]
    if len(set(index_ids)) != len(index_ids):
        problems.append("the index lists a message twice")
    missing = sorted(set(source) - set(index_ids))
    if missing:  # exported messages the source no longer holds have expired: they may stay
        problems.append(f"{len(missing)} source messages not in the index, first {missing[0]}")
    for entry in export.index:
        want = source.get(entry["id"])
        copies = export.members.get(entry["id"], [])
        if want is not None and entry.get("sha256") != want:
            problems.append(f"index SHA-256 of {entry['id']} differs from the source")
        if [part for part, _ in copies] != [entry.get("part")]:
            problems.append(f"{entry['id']} is in parts {[p for p, _ in copies]}, index says "
                            f"{entry.get('part')}")  # fmt: skip
        elif want is not None and copies[0][1] != want:
            problems.append(f"{entry['id']} in {copies[0][0]} has a SHA-256 unlike the source")
    stray = sorted(set(export.members) - set(index_ids))
    if stray:
        problems.append(f"{len(stray)} messages in parts but not in the index, first {stray[0]}")
    return problems


def _import_problems(imported: Mapping[str, str], source: Mapping[str, str]) -> list[str]:
    problems = []
    missing = sorted(set(source) - set(imported))
    if missing:
        problems.append(f"{len(missing)} messages not imported, first {missing[0]}")
    changed = sorted(i for i in set(source) & set(imported) if source[i] != imported[i])
    if changed:
        problems.append(
            f"{len(changed)} imported messages differ from the source, first {changed[0]}"
        )
    return problems


def _prorate(billing: Mapping[str, Any], as_of: date) -> Decimal:
    """The unused part of the billing period from `as_of` on (README: "What it does", billing)."""
    start = date.fromisoformat(billing["period_start"])
    end = date.fromisoformat(billing["period_end"])
    total = (end - start).days
    unused = total if as_of < start else min(max((end - as_of).days, 0), total)
    price = Decimal(billing["price"])
    return (price * unused / total).quantize(_CENT, rounding=ROUND_HALF_UP)


def _parse_time(text: Any) -> datetime | None:
    if not isinstance(text, str):
        return None
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None

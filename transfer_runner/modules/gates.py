"""Safety gates read from the state store, never from templated arguments.

Invariant I2: the direct account is not cancelled and its domains are not detached until every
store the manifest does not `skip` has been exported and verified, as recorded in state by a
`data.verify` step. A playbook edit cannot bypass this: the stores come from the manifest.
"""

from __future__ import annotations

from transfer_runner.engine.context import TaskContext
from transfer_runner.platforms.base import STORES

__all__ = ["exports_verified"]


def exports_verified(ctx: TaskContext) -> tuple[bool, str]:
    """(True, "") when every non-skipped store has a recorded successful verify."""
    needed = [s for s in STORES if ctx.transfer.data_mode(s) != "skip"]
    if not needed:
        return True, ""
    verified: dict[str, int] = {}
    for record in ctx.fresh_records().values():
        if record.module != "data.verify" or record.status not in ("ok", "changed"):
            continue
        for store, info in (record.outputs.get("stores") or {}).items():
            if isinstance(info, dict) and info.get("verified") is True:
                verified[store] = int(info.get("messages", -1))
    missing = [s for s in needed if s not in verified]
    if missing:
        return False, f"exports of {', '.join(missing)} are not verified yet"
    for store in needed:  # mail that arrived after the verified export would be lost
        now, _ = ctx.platform.count_messages(ctx.transfer.customer_account, store)
        if now != verified[store]:
            return False, (
                f"{store} holds {now} messages but the verified export has "
                f"{verified[store]}: run apply again to export them"
            )
    return True, ""

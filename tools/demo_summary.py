"""Summarise `transfer-runner sandbox dump` JSON (stdin) for the demo."""

from __future__ import annotations

import json
import sys


def main() -> None:
    world = json.load(sys.stdin)
    for a in world["accounts"]:
        parent = f" under {a['parent']}" if a.get("parent") else ""
        print(
            f"  account {a['id']:<7} {a['type']:<8} {a['status']:<9}{parent:<14} "
            f"domains={','.join(a['domains']) or '-'} quarantine={a['quarantine_messages']} "
            f"archive={a['archive_messages']}"
        )
    for c in world["credits"]:
        print(f"  credit  {c['account']} {c['amount']:>9}  ({c.get('idempotency_key', '')})")
    for c in world["charges"]:
        print(f"  charge  {c['account']} {c['amount']:>9}  ({c.get('idempotency_key', '')})")
    for t in world["tickets"]:
        print(f"  ticket  {t['id']} {t['status']:<6} {len(t['comments'])} comment(s)")


if __name__ == "__main__":
    main()

"""When a step's record must be durable, and when the lease must be proved by a write.

A state store may buffer what a runner records under a transfer's lease (the S3 store does:
one conditional write of the transfer's object costs one request, whatever it carries) and
makes it durable when the lease is renewed or released. A crash loses what was buffered, and
that is safe: every module's `check` finds its own effect on the platform again (the crash
matrix kills between every effect and its record), so the next run re-checks those steps
and records them `ok`. Two kinds of step are not left to that:

- DURABLE: steps whose record is worth more than a re-check: the data steps (an export,
  its verification and import are long; the verification is the evidence that the domains
  may move and the direct account may be cancelled, I2) and the cut-over steps (after them
  `abort` and the refresh of `plan` reason from the record). The engine renews the lease right
  after recording one of these.
- IRREVERSIBLE: steps after whose write the transfer cannot be undone (`abort.py`'s point of
  no return). Before their write the lease is proved by a conditional write (a renewal),
  unless the last step already made one: between two such writes no other runner can have
  taken the lease without the second one failing (I6).
"""

from __future__ import annotations

__all__ = ["DURABLE", "IRREVERSIBLE", "renewed_after"]

DURABLE = frozenset(
    {
        "data.export",
        "data.verify",
        "data.import",
        "data.final_sync",
        "domain.move",
        "account.cancel",
    }
)
IRREVERSIBLE = frozenset({"domain.move", "account.cancel"})


def renewed_after(module: str, status: str) -> bool:
    """Whether a step of `module` that ended `status` is made durable at once (a renewal of
    the lease right after its record), which also proves the lease for the next step."""
    return module in DURABLE and status == "changed"

"""Figures of the live-mailbox benchmark: one `ApplyFigures` per measured `apply`, the three
scenarios (frozen, live, pre-staged cut-over), the tables and the targets of the issue."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from live_world import STORE, Applied, FlowSummary, LossCheck

TARGET_LIVE_RATIO = 1.3  # live apply within 1.3 x of a frozen mailbox of the same size
TARGET_CUTOVER_BYTES = 0.02  # the cut-over sends at most 2% of the store's bytes ...
TARGET_CUTOVER_TIME = 0.10  # ... in at most 10% of the full export's time
STEP_COLUMNS = (
    ("export", f"data.export {STORE}"),
    ("verify", "data.verify"),
    ("import", "data.import"),
    ("move", "domain.move"),
    ("final sync", "data.final_sync"),
    ("cancel", "account.cancel"),
)


@dataclass(frozen=True)
class ApplyFigures:
    """One `apply` process: its times, its result, and what its data steps reported."""

    label: str
    seconds: float
    cpu_s: float
    peak_rss_kib: int
    status: str
    message: str
    durations: dict[str, float]
    export: dict[str, Any]  # the archive's data.export outputs (pass, passes_run, new_*)
    final: dict[str, Any]  # data.final_sync: the archive's verification and import

    @classmethod
    def of(cls, applied: Applied) -> ApplyFigures:
        export = applied.step("data.export", STORE)
        final = applied.step("data.final_sync")
        out = (export or {}).get("outputs") or {}
        keep = ("messages", "bytes", "pass", "passes_run", "new_messages", "new_bytes", "expired")
        final_out = (final or {}).get("outputs") or {}
        verified = (final_out.get("stores") or {}).get(STORE) or {}
        final_keep = ("messages", "bytes", "expired", "source_messages", "passes")
        return cls(
            applied.label,
            applied.seconds,
            applied.cpu_s,
            applied.peak_rss_kib,
            applied.status() or f"exit {applied.returncode}",
            applied.message() if applied.status() != "succeeded" else "",
            applied.durations(),
            {k: out[k] for k in keep if k in out},
            {
                **{k: verified[k] for k in final_keep if k in verified},
                "imported": (final_out.get("imported") or {}).get(STORE),
                "exported": (final_out.get("exported") or {}).get(STORE),
                "status": (final or {}).get("status"),
            },
        )

    def step_s(self, module: str) -> float:
        return self.durations.get(module, 0.0)

    @property
    def export_s(self) -> float:
        """The archive's data.export step: the export passes of this apply."""
        return self.step_s(f"data.export {STORE}")


@dataclass(frozen=True)
class Cutover:
    """What the cut-over wrote to S3 (objects created or rewritten since the pre-staging)."""

    delivered: int  # messages delivered between the pre-staging and the cut-over
    store_messages: int  # the archive when the cut-over starts
    store_bytes: int
    written: dict[str, tuple[int, int]] = field(default_factory=dict)  # kind -> (objects, B)

    @property
    def bytes_sent(self) -> int:
        return sum(b for _, b in self.written.values())

    @property
    def share(self) -> float:
        return self.bytes_sent / self.store_bytes if self.store_bytes else float("inf")


@dataclass(frozen=True)
class LiveScenario:
    """Applies of one world while a mail flow runs (one apply, unless it failed and was run
    again), the flow's figures, and the loss check once the transfer completed."""

    label: str
    deliver_rate: float
    expire_rate: float
    applies: list[ApplyFigures]
    flow: FlowSummary
    loss: LossCheck | None  # None: the transfer did not complete

    @property
    def seconds(self) -> float:
        """Every apply's wall time."""
        return sum(a.seconds for a in self.applies)

    @property
    def completed(self) -> bool:
        return bool(self.applies) and self.applies[-1].status == "succeeded"

    @property
    def one_apply(self) -> bool:
        return len(self.applies) == 1 and self.completed

    @property
    def passes(self) -> int:
        """Export passes of the transfer (incremental and final), from the index."""
        return max((int(k) for k in self.loss.passes), default=0) if self.loss else 0

    def as_dict(self) -> dict[str, Any]:
        return {
            "label": self.label,
            "deliver_per_s": self.deliver_rate,
            "expire_per_s": self.expire_rate,
            "applies": [asdict(a) for a in self.applies],
            "seconds": self.seconds,
            "completed": self.completed,
            "one_apply": self.one_apply,
            "passes": self.passes,
            "flow": self.flow.as_dict(),
            "loss": self.loss.as_dict() if self.loss else None,
        }


@dataclass(frozen=True)
class Figures:
    """Everything one benchmark run measured."""

    messages: int
    bytes: int
    size_kib: int
    archive_mode: str
    frozen: ApplyFigures
    frozen_loss: LossCheck
    live: LiveScenario
    diagnostic: LiveScenario | None  # deliver only, run when the live one did not complete
    stage: ApplyFigures
    cutover: ApplyFigures
    cut: Cutover
    cutover_loss: LossCheck

    def ratio(self, live: LiveScenario) -> float:
        """Live wall time over the frozen one."""
        return live.seconds / self.frozen.seconds

    @property
    def full_export_s(self) -> float:
        """The full export's time: the pre-staging apply's data.export step (archive)."""
        return self.stage.export_s

    @property
    def time_share(self) -> float:
        return self.cutover.seconds / self.full_export_s if self.full_export_s else float("inf")

    @property
    def lost(self) -> int:
        """Messages lost in any scenario whose transfer completed."""
        checks = [self.frozen_loss, self.cutover_loss, self.live.loss]
        if self.diagnostic is not None:
            checks.append(self.diagnostic.loss)
        return sum(c.lost for c in checks if c is not None)

    def as_dict(self) -> dict[str, Any]:
        return {
            "messages": self.messages,
            "bytes": self.bytes,
            "size_kib": self.size_kib,
            "archive_mode": self.archive_mode,
            "frozen": asdict(self.frozen),
            "frozen_loss": self.frozen_loss.as_dict(),
            "live": self.live.as_dict(),
            "live_ratio": self.ratio(self.live) if self.live.completed else None,
            "diagnostic": self.diagnostic.as_dict() if self.diagnostic else None,
            "diagnostic_ratio": self.ratio(self.diagnostic) if self.diagnostic else None,
            "stage": asdict(self.stage),
            "cutover": asdict(self.cutover),
            "cutover_written": {
                k: {"objects": n, "bytes": b} for k, (n, b) in self.cut.written.items()
            },
            "cutover_delivered": self.cut.delivered,
            "cutover_store_messages": self.cut.store_messages,
            "cutover_store_bytes": self.cut.store_bytes,
            "cutover_bytes_sent": self.cut.bytes_sent,
            "cutover_bytes_share": self.cut.share,
            "full_export_s": self.full_export_s,
            "cutover_time_share": self.time_share,
            "cutover_loss": self.cutover_loss.as_dict(),
            "targets": [
                dict(zip(("target", "measured", "wanted", "met"), t, strict=True))
                for t in targets(self)
            ],
        }


# --- tables ---------------------------------------------------------------------------------


def runs_table(runs: Sequence[ApplyFigures]) -> list[str]:
    """One row per apply: result, times, the data steps' durations, what the export added."""
    steps = " | ".join(f"{name} s" for name, _ in STEP_COLUMNS)
    lines = [
        f"| run | result | apply s | CPU s | {steps} | passes before the move "
        "| exported before the move | exported by the final pass |",
        "|---|---|---:|---:|" + "---:|" * len(STEP_COLUMNS) + "---:|---:|---:|",
    ]
    for run in runs:
        cells = " | ".join(f"{run.step_s(module):,.1f}" for _, module in STEP_COLUMNS)
        passes = run.export.get("passes_run", 0)  # absent: the step took no pass
        added = run.export.get("new_messages", 0) if passes else 0
        final = run.final.get("exported")
        final_text = f"{final:,}" if isinstance(final, int) else "-"
        lines.append(
            f"| {run.label} | {run.status} | {run.seconds:,.1f} | {run.cpu_s:,.1f} | {cells} "
            f"| {passes} | {added:,} | {final_text} |"
        )
    return lines


def live_lines(live: LiveScenario) -> list[str]:
    """One live scenario: the flow, the applies, the passes, the loss check."""
    flow = live.flow
    lines = [
        f"- mail flow (`sandbox mail --deliver {live.deliver_rate:g} --expire "
        f"{live.expire_rate:g} --store archive`), {flow.seconds:,.1f} s, from the sandbox's "
        f"counters: {flow.new:,} new messages, {flow.delivered:,} delivered, {flow.expired:,} "
        f"expired, {flow.queued:,} still held back; its own CPU {flow.cpu_s:,.1f} s; it "
        f"printed `{flow.printed}`",
        f"- applies: {len(live.applies)} ("
        + "; ".join(
            f"{a.status}, {a.seconds:,.1f} s" + (f": {a.message}" if a.message else "")
            for a in live.applies
        )
        + ")",
    ]
    if not live.completed or live.loss is None:
        return [*lines, "- the transfer did not complete: no loss check"]
    last, loss = live.applies[-1], live.loss
    by_pass = ", ".join(f"pass {k}: {v:,}" for k, v in sorted(loss.passes.items()))
    lines += [
        f"- data.export (last apply): {last.export.get('passes_run', 0)} pass(es) in the "
        f"step, the export at pass {last.export.get('pass', '-')}, "
        f"{last.export.get('new_messages', 0) if last.export.get('passes_run') else 0:,} "
        "messages added by the step",
        f"- data.final_sync (last apply): {last.final.get('status')}, exported "
        f"{last.final.get('exported', '-')}, verified {last.final.get('messages', 0):,} "
        f"messages (complete), imported {last.final.get('imported')}",
        f"- the export's index by pass: {by_pass} ({loss.indexed:,} messages, {live.passes} "
        "passes in all)",
    ]
    return lines + loss_lines(loss, live=True)


def loss_lines(loss: LossCheck, live: bool = False) -> list[str]:
    lines = [
        f"- direct account {loss.direct_status}, still holds {loss.direct_messages:,} archive "
        f"messages; lost: {loss.lost} (not in index.jsonl with the same SHA-256)"
        + (f", first: {', '.join(loss.first_missing)}" if loss.first_missing else ""),
    ]
    imported = f"- not in the new account {loss.new_account}: {loss.not_imported:,}"
    if live:
        imported += " (info: expiry removes the oldest mail of both accounts after the move)"
    return [*lines, imported, f"- held-back mail still queued: {loss.still_queued}"]


def cutover_lines(fig: Figures) -> list[str]:
    cut = fig.cut
    lines = [
        f"- delivered before the cut-over: {cut.delivered:,} messages; the archive then held "
        f"{cut.store_messages:,} messages, {cut.store_bytes / 1e6:,.1f} MB",
        "",
        "| written by the cut-over | objects | bytes | share of the store's bytes |",
        "|---|---:|---:|---:|",
    ]
    for kind, (objects, nbytes) in sorted(cut.written.items()):
        lines.append(f"| {kind} | {objects:,} | {nbytes:,} | {nbytes / cut.store_bytes:.4f} |")
    total = sum(n for n, _ in cut.written.values())
    lines.append(f"| total | {total:,} | {cut.bytes_sent:,} | {cut.share:.4f} |")
    return lines


def targets(fig: Figures) -> list[tuple[str, str, str, bool | None]]:
    """(target, measured, wanted, met); met None for information only."""
    live = fig.live
    applies = f"{len(live.applies)} apply(ies), last {live.applies[-1].status}"
    rows: list[tuple[str, str, str, bool | None]] = [
        (f"{live.label}: one apply completes the transfer", applies, "1, succeeded",
         live.one_apply),
    ]  # fmt: skip
    if live.loss is not None:
        ratio = fig.ratio(live)
        rows += [
            (f"{live.label}: messages lost", str(live.loss.lost), "0", live.loss.lost == 0),
            (f"{live.label}: apply s / frozen apply s", f"{ratio:.2f}",
             f"<= {TARGET_LIVE_RATIO}", ratio <= TARGET_LIVE_RATIO),
            (f"{live.label}: export passes (incremental + final)", str(live.passes), "(info)",
             None),
        ]  # fmt: skip
    else:
        rows += [
            (f"{live.label}: messages lost", "not checked", "0", False),
            (f"{live.label}: apply s / frozen apply s", "not completed",
             f"<= {TARGET_LIVE_RATIO}", False),
        ]  # fmt: skip
    diag = fig.diagnostic
    if diag is not None:
        rows.append((f"{diag.label}: one apply, lost, apply s / frozen, passes",
                     f"{len(diag.applies)}, {diag.loss.lost if diag.loss else '-'}, "
                     f"{fig.ratio(diag):.2f}, {diag.passes}", "(info)", None))  # fmt: skip
    rows += [
        ("cut-over: bytes written to S3 / store bytes", f"{fig.cut.share:.4f}",
         f"<= {TARGET_CUTOVER_BYTES}", fig.cut.share <= TARGET_CUTOVER_BYTES),
        ("cut-over apply s / full export s (pre-staging data.export step)",
         f"{fig.time_share:.3f}", f"<= {TARGET_CUTOVER_TIME}",
         fig.time_share <= TARGET_CUTOVER_TIME),
        ("cut-over apply s / whole pre-staging apply s",
         f"{fig.cutover.seconds / fig.stage.seconds:.3f}", "(info)", None),
        ("cut-over: messages lost", str(fig.cutover_loss.lost), "0",
         fig.cutover_loss.lost == 0),
    ]  # fmt: skip
    return rows


def target_lines(fig: Figures) -> list[str]:
    lines = ["| target | measured | wanted | |", "|---|---:|---:|---|"]
    for name, measured, wanted, met in targets(fig):
        verdict = "" if met is None else ("met" if met else "NOT met")
        lines.append(f"| {name} | {measured} | {wanted} | {verdict} |")
    return lines

"""Pane 7: the audit log, newest first, with unfinished actions (intents with no outcome) on top."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any, ClassVar

from rich.json import JSON
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.widgets import Static

from tui.panes.base import HEADER_AGE_STEP, Row, TablePane, ago, update_static
from tui.screens.detail import DetailModal
from tui.screens.modal import FramedModal

TAIL = 500  # records shown; `hlcon audit` reads the whole log

PHASE_STYLE = {
    "intent": "bold",
    "outcome": "green",
    "refused": "yellow",
    "cancelled": "dim",
    "rollback": "bold magenta",
    "planned": "dim",
}


NOTHING_UNDONE = "none — nothing was changed"


def result_text(record: Any) -> Text:
    result: Mapping[str, Any] | None = getattr(record, "result", None)
    reason: str | None = getattr(record, "reason", None)
    if result and result.get("status") == "none":
        # A rollback that found nothing to undo did not fail: it changed nothing.
        return Text(NOTHING_UNDONE, "dim")
    if result:
        ok = result.get("ok")
        message = str(result.get("message", ""))
        style = "green" if ok is True else "bold red" if ok is False else ""
        return Text(("ok " if ok is True else "FAILED " if ok is False else "") + message, style)
    return Text(reason or "", "dim")


def record_time(record: Any) -> datetime | None:
    try:
        return datetime.fromisoformat(record.time)
    except (TypeError, ValueError):
        return None


def pending_text(pending: list[Any]) -> Text:
    text = Text(
        f"⚠ {len(pending)} action(s) started and never finished "
        "(the process died mid-action): check their targets\n",
        "bold",
    )
    for rec in pending[:3]:
        text.append(f"  #{rec.seq} {rec.time[:19]} {rec.action} {rec.target}\n")
    if len(pending) > 3:
        text.append(f"  … and {len(pending) - 3} more (hlcon audit)\n")
    text.append("  each blocks its target: once checked, select it and press a to acknowledge\n")
    return text


class AckModal(FramedModal[bool]):
    """`a` on a pending intent: what died, what to check first, then Enter closes it (the same
    as `hlcon audit ack SEQ`) or Esc leaves it open."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("enter,y", "answer(True)", "Acknowledge"),
        Binding("escape,n,q", "answer(False)", "Keep it open"),
    ]

    DEFAULT_CSS = """
    AckModal > #ack { width: 90%; max-width: 100; height: auto; padding: 1 2; }
    """

    def __init__(self, explanation: str) -> None:
        super().__init__()
        self.explanation = explanation

    def compose(self) -> ComposeResult:
        yield Static(
            Text(self.explanation + "\n\n")
            + Text("Enter: acknowledge (it is checked) · Esc: keep it open", "bold"),
            id="ack",
            classes="frame -warning",
        )

    def action_answer(self, yes: bool) -> None:
        self.dismiss(yes)


class RecordDetail(DetailModal):
    """Enter on an audit row: the whole record, as the log holds it."""

    def __init__(self, record: Any) -> None:
        super().__init__()
        self.record = record

    def compose(self) -> ComposeResult:
        data = self.record.to_json() if hasattr(self.record, "to_json") else vars(self.record)
        with VerticalScroll(classes="frame"):
            yield Static(JSON.from_data(data, indent=2))


class AuditPane(TablePane):
    NUMBER = 7
    PANE_ID = "audit"
    TITLE = "Audit"
    # Result early: at 80 columns it is what must show; Who and Seq are in the detail too.
    COLUMNS: ClassVar = (
        ("When", 11),
        ("Phase", 9),
        ("Action", 17),
        ("Target", 18),
        "Result",
        "Who",
        "Seq",
    )

    BINDINGS: ClassVar[list[BindingType]] = [Binding("a", "acknowledge", "Ack pending")]

    DEFAULT_CSS = """
    AuditPane > #pending { display: none; padding: 0 1; background: $error 40%; }
    AuditPane > #pending.-shown { display: block; }
    """

    def __init__(self) -> None:
        super().__init__()
        self._stamp: tuple[float, int] | None = None
        self._newest: datetime | None = None  # the newest record's time, read with the rows

    def compose_body(self) -> ComposeResult:
        yield Static(id="pending")
        yield from super().compose_body()

    def pending(self) -> list[Any]:
        runner = self.ctx.runner
        if runner is None:
            return []
        return list(runner.pending())

    def header_status(self) -> tuple[str, list[str]]:
        log = self.ctx.audit_log()
        if log is None:
            return "no audit log (actions are unavailable)", []
        if self._newest is None:
            return f"no records yet · {log.path}", []
        # the age of its newest record, in the steps every other pane's header uses
        age = ago(self.now(), self._newest, step=HEADER_AGE_STEP)
        return f"last record {age} ago · {log.path}", []

    def refresh_from_store(self) -> None:
        super().refresh_from_store()
        self.update_header()  # the rows just read the newest record's time
        try:
            box = self.query_one("#pending", Static)
        except Exception:
            return
        pending = self.pending()
        box.set_class(bool(pending), "-shown")
        update_static(box, pending_text(pending) if pending else "")

    def tick(self) -> None:
        super().tick()
        # The log is not in the store: re-read it when the file changed.
        log = self.ctx.audit_log()
        if log is None:
            return
        try:
            st = log.path.stat()
            stamp = (st.st_mtime, st.st_size)
        except OSError:
            stamp = None
        if stamp != self._stamp:
            self._stamp = stamp
            self.refresh_from_store()

    def rows(self) -> Iterable[Row]:
        log = self.ctx.audit_log()
        if log is None:
            return
        records = log.tail(TAIL)
        self._newest = record_time(records[-1]) if records else None
        for rec in reversed(records):
            who = rec.who.get("user", "") if isinstance(rec.who, Mapping) else ""
            yield Row(
                id=str(rec.seq),
                cells=(
                    rec.time[5:16].replace("T", " "),
                    Text(rec.phase, PHASE_STYLE.get(rec.phase, "")),
                    rec.action or "",
                    rec.target or "",
                    result_text(rec),
                    str(who),
                    str(rec.seq),
                ),
                data=rec,
            )

    def open_detail(self, row: Row) -> None:
        self.app.push_screen(RecordDetail(row.data))

    def action_acknowledge(self) -> None:
        """Close the selected pending intent, as `hlcon audit ack SEQ` does, after saying what
        died and what to check first."""
        runner = self.ctx.runner
        row = self.selected_row()
        pending = {rec.seq: rec for rec in self.pending()}
        rec = pending.get(getattr(row.data, "seq", None)) if row is not None else None
        if runner is None or rec is None:
            which = ", ".join(f"#{seq}" for seq in pending) or "none now"
            self.notify(
                f"select a pending intent (⚠ above: {which}) to acknowledge it",
                severity="warning",
                markup=False,
            )
            return
        from actions.runner import interrupted_reason  # the same words as the refusal

        explanation = interrupted_reason(rec)

        def answered(yes: bool | None) -> None:
            if not yes:
                return
            try:
                runner.acknowledge(rec.seq, "acknowledged in the console's audit pane")
            except (ValueError, OSError) as exc:
                self.notify(str(exc), severity="error", markup=False)
                return
            self.notify(f"#{rec.seq} acknowledged: {rec.target} takes actions again", markup=False)
            self.refresh_from_store()

        self.app.push_screen(AckModal(explanation), answered)

    def empty_message(self) -> str:
        if self.ctx.audit_log() is None:
            return "No audit log: actions are unavailable in this session."
        return "No actions yet. Every action you confirm (or cancel) is recorded here."

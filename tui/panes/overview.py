"""Pane 1: everything that needs attention, worst first; Enter jumps to where it is."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from typing import ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.widgets import Static

from lab import health
from lab.model import Finding, Severity
from lab.store import Entry
from tui.panes.base import Row, TablePane, update_static

SEVERITY_STYLE = {
    Severity.CRITICAL: "bold red",
    Severity.UNKNOWN: "bold magenta",
    Severity.WARNING: "yellow",
    Severity.INFO: "cyan",
    Severity.OK: "green",
}


def severity_text(severity: Severity) -> Text:
    return Text(severity.label, style=SEVERITY_STYLE[severity])


class OverviewPane(TablePane):
    NUMBER = 1
    PANE_ID = "overview"
    TITLE = "Overview"
    COLUMNS: ClassVar = (("Severity", 8), ("Source", 14), "Message")
    WRAP_COLUMN = "Message"

    DEFAULT_CSS = """
    OverviewPane > #summary { height: 1; padding: 0 1; }
    """

    def __init__(self) -> None:
        super().__init__()
        self.findings: list[Finding] = []

    def compose_body(self) -> ComposeResult:
        yield Static(id="summary")
        yield from super().compose_body()

    def entries(self) -> list[Entry]:
        return list(self.ctx.store)

    def refresh_from_store(self) -> None:
        self.findings = health.evaluate(self.ctx.store, self.ctx.config, self.now())
        super().refresh_from_store()
        self._update_summary()

    def _update_summary(self) -> None:
        try:
            summary = self.query_one("#summary", Static)
        except Exception:
            return
        counts = Counter(f.severity for f in self.findings)
        entries = list(self.ctx.store)
        faulted = sum(1 for e in entries if e.fault is not None)
        text = Text()
        worst = health.worst(self.findings)
        text.append(f"{worst.label.upper()} ", SEVERITY_STYLE[worst])
        parts = [
            (f"{counts[s]} {s.label}", SEVERITY_STYLE[s] if counts[s] else "dim")
            for s in (Severity.CRITICAL, Severity.UNKNOWN, Severity.WARNING, Severity.INFO)
        ]
        for i, (label, style) in enumerate(parts):
            text.append(" · " if i else "", "dim")
            text.append(label, style)
        sources = f"{len(entries)} source" + ("" if len(entries) == 1 else "s")
        text.append(f"  — {sources}, {faulted} faulted", "dim")
        update_static(summary, text)

    def rows(self) -> Iterable[Row]:
        for index, f in enumerate(self.findings):
            yield Row(
                id=f"{index}:{f.key[0]}:{f.key[1]}:{f.rule}:{f.subject}",
                cells=(severity_text(f.severity), f"{f.key[0]}:{f.key[1]}", f.message),
                data=f,
            )

    def empty_message(self) -> str:
        if not len(self.ctx.store):
            return "No sources configured: add [[hosts]], [[vpn]], [[backups]] or [[certs]]."
        return "Nothing needs attention."

    def open_detail(self, row: Row) -> None:
        finding: Finding = row.data
        self.app.jump_to(finding)  # type: ignore[attr-defined]

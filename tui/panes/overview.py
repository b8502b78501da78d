"""Pane 1: everything that needs attention, worst first; Enter jumps to where it is."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from datetime import datetime
from typing import ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.widgets import Static

from lab import health
from lab.config import Config
from lab.model import (
    Finding,
    Severity,
)
from lab.store import Entry, Store
from tui.messages import JumpToFinding
from tui.panes import domain_panes
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


# ---------------------------------------------------------------- at a glance


def _unread(entries: list[Entry]) -> str:
    """What a domain's line adds for entries it could not judge: faulted, waiting."""
    faulted = sum(1 for e in entries if e.fault is not None)
    waiting = sum(1 for e in entries if e.reading is None and e.fault is None)
    parts = [f"{faulted} faulted"] if faulted else []
    parts += [f"{waiting} waiting"] if waiting else []
    return " · ".join(parts)


def glance(store: Store, config: Config, now: datetime) -> list[tuple[int, str, str]]:
    """(pane key, label, one line) per watched domain: what a healthy lab looks like, read
    from the store. Domains with no source are left out."""
    out: list[tuple[int, str, str]] = []
    for domain, key in domain_panes():
        line = domain.summarise()
        entries = store.domain(domain.key)
        if not entries or line is None:
            continue
        read = any(e.reading is not None and e.fault is None for e in entries)
        parts = line(entries, config, now) if read else []
        unread = _unread(entries)
        if parts and unread:
            parts[0] += f", {unread}"  # beside the count it qualifies: 2/3 up, 1 faulted
        elif unread:
            parts = [unread]
        out.append((key, domain.label, " · ".join(parts) or "waiting"))
    return out


def glance_text(lines: list[tuple[int, str, str]]) -> Text:
    text = Text()
    for i, (key, label, line) in enumerate(lines):
        text.append("\n" if i else "")
        text.append(f"{key} {label:<11}", "bold")
        text.append(line)
    return text


class OverviewPane(TablePane):
    NUMBER = 1
    PANE_ID = "overview"
    TITLE = "Overview"
    COLUMNS: ClassVar = (("Severity", 8), ("Source", 14), "Message")
    WRAP_COLUMN = "Message"

    DEFAULT_CSS = """
    OverviewPane > #summary { height: 1; padding: 0 1; }
    OverviewPane > #glance {
        height: auto; padding: 0 1; text-wrap: nowrap; text-overflow: ellipsis;
    }
    """

    def __init__(self) -> None:
        super().__init__()
        self.findings: list[Finding] = []

    def compose_body(self) -> ComposeResult:
        yield Static(id="summary")
        yield Static(id="glance")
        yield from super().compose_body()

    def entries(self) -> list[Entry]:
        return list(self.ctx.store)

    def refresh_from_store(self) -> None:
        now = self.now()
        self.findings = health.evaluate(self.ctx.store, self.ctx.config, now)
        super().refresh_from_store()
        self._update_summary()
        try:
            box = self.query_one("#glance", Static)
        except Exception:
            return
        update_static(box, glance_text(glance(self.ctx.store, self.ctx.config, now)))

    def ages_move(self) -> bool:
        # Findings and the glance carry ages (a fault's last good reading, a backup's newest
        # snapshot): judged again in the header's age steps, so they agree with it between
        # polls (a host backing off is not polled for minutes).
        return True

    def waiting(self) -> list[Entry]:
        """Sources configured and not read yet: neither a reading nor a fault."""
        return [e for e in self.ctx.store if e.reading is None and e.fault is None]

    def _update_summary(self) -> None:
        try:
            summary = self.query_one("#summary", Static)
        except Exception:
            return
        counts = Counter(f.severity for f in self.findings)
        entries = list(self.ctx.store)
        faulted = sum(1 for e in entries if e.fault is not None)
        waiting = len(self.waiting())
        text = Text()
        worst = health.worst(self.findings)
        if waiting and worst <= Severity.INFO:
            # Not everything is read: what was read being fine says nothing about the rest.
            text.append(f"WAITING for {waiting} of {len(entries)} sources · ", "bold")
        else:
            text.append(f"{worst.label.upper()} ", SEVERITY_STYLE[worst])
        parts = [
            (f"{counts[s]} {s.label}", SEVERITY_STYLE[s] if counts[s] else "dim")
            for s in (Severity.CRITICAL, Severity.UNKNOWN, Severity.WARNING, Severity.INFO)
        ]
        for i, (label, style) in enumerate(parts):
            text.append(" · " if i else "", "dim")
            text.append(label, style)
        sources = f"{len(entries)} source" + ("" if len(entries) == 1 else "s")
        if waiting and worst <= Severity.INFO:
            tail = f"  — {faulted} faulted" if faulted else ""  # the head names the sources
        else:
            tail = f"  — {sources}, {faulted} faulted" + (f", {waiting} waiting" if waiting else "")
        text.append(tail, "dim")
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
        waiting = self.waiting()
        if waiting:
            names = ", ".join(f"{e.key[0]}:{e.key[1]}" for e in waiting[:3])
            more = f" and {len(waiting) - 3} more" if len(waiting) > 3 else ""
            return (
                f"Nothing found in what was read so far; waiting for {len(waiting)} of "
                f"{len(self.ctx.store)} sources ({names}{more})."
            )
        return "Nothing needs attention."

    def open_detail(self, row: Row) -> None:
        finding: Finding = row.data
        self.post_message(JumpToFinding(finding))

"""Pane 1: everything that needs attention, worst first; Enter jumps to where it is."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Any, ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.widgets import Static

from lab import health
from lab.config import Config
from lab.model import (
    Cert,
    ContainerEndpointState,
    Finding,
    HostState,
    RepoState,
    Severity,
    WgInterface,
)
from lab.store import Entry, Store
from tui.messages import JumpToFinding
from tui.panes.base import Row, TablePane, ago, update_static

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

GLANCE_DOMAINS: tuple[tuple[str, int, str], ...] = (
    # store domain, the key of its pane, label
    ("host", 2, "Hosts"),
    ("containers", 3, "Containers"),
    ("vpn", 4, "VPN"),
    ("backup", 5, "Backups"),
    ("cert", 6, "Certs"),
)


def _unread(entries: list[Entry]) -> str:
    """What a domain's line adds for entries it could not judge: faulted, waiting."""
    faulted = sum(1 for e in entries if e.fault is not None)
    waiting = sum(1 for e in entries if e.reading is None and e.fault is None)
    parts = [f"{faulted} faulted"] if faulted else []
    parts += [f"{waiting} waiting"] if waiting else []
    return " · ".join(parts)


def _fresh(entries: list[Entry], kind: type) -> list[Any]:
    """The readings of entries read fine in their latest poll (a faulted one's is old)."""
    return [e.reading for e in entries if e.fault is None and isinstance(e.reading, kind)]


def _hosts_line(entries: list[Entry], config: Config, now: datetime) -> list[str]:
    states: list[HostState] = _fresh(entries, HostState)
    parts = [f"{len(states)}/{len(entries)} up"]
    busy = [s for s in states if s.cpu_percent is not None]
    if busy:
        top = max(busy, key=lambda s: s.cpu_percent or 0.0)
        parts.append(f"top CPU {top.host} {top.cpu_percent:.0f}%")
    disks = [
        (fs.percent, s.host, fs.mount)
        for s in states
        for fs in s.filesystems
        if not any(fs.mount.startswith(p) for p in config.health.ignore_mounts)
    ]
    if disks:
        pct, host, mount = max(disks)
        parts.append(f"fullest {host}:{mount} {pct:.0f}%")
    return parts


def _containers_line(entries: list[Entry], config: Config, now: datetime) -> list[str]:
    states: list[ContainerEndpointState] = _fresh(entries, ContainerEndpointState)
    every = [c for s in states for c in s.containers]
    running = sum(1 for c in every if c.state == "running")
    unhealthy = sum(1 for c in every if c.health == "unhealthy")
    restarting = sum(1 for c in every if c.state == "restarting")
    return [f"{running}/{len(every)} running", f"{unhealthy} unhealthy", f"{restarting} restarting"]


def _vpn_line(entries: list[Entry], config: Config, now: datetime) -> list[str]:
    states: list[WgInterface] = _fresh(entries, WgInterface)
    peers = [p for s in states for p in s.peers if not p.disabled]
    online = sum(1 for p in peers if p.online)
    down = sum(1 for s in states if not s.up)
    parts = [f"{online}/{len(peers)} peers online", f"{len(peers) - online} stale"]
    return parts + ([f"{down} interface{'' if down == 1 else 's'} down"] if down else [])


def _backups_line(entries: list[Entry], config: Config, now: datetime) -> list[str]:
    parts = []
    for state in sorted(_fresh(entries, RepoState), key=lambda r: r.name):
        newest = state.newest
        parts.append(f"{state.name} {ago(now, newest.time) if newest else 'no snapshots'}")
    return [f"newest {parts[0]}", *parts[1:]] if parts else []


def _certs_line(entries: list[Entry], config: Config, now: datetime) -> list[str]:
    certs: list[Cert] = _fresh(entries, Cert)
    if not certs:
        return []
    soonest = min(certs, key=lambda c: c.not_after)
    if soonest.not_after <= now:
        when = f"expired {ago(now, soonest.not_after)} ago"
    else:
        when = f"expires in {soonest.days_left_at(now)} days"
    return [f"{len(certs)} read", f"soonest {soonest.name} {when} ({soonest.not_after:%Y-%m-%d})"]


GLANCE_LINES: dict[str, Callable[[list[Entry], Config, datetime], list[str]]] = {
    "host": _hosts_line,
    "containers": _containers_line,
    "vpn": _vpn_line,
    "backup": _backups_line,
    "cert": _certs_line,
}


def glance(store: Store, config: Config, now: datetime) -> list[tuple[int, str, str]]:
    """(pane key, label, one line) per watched domain: what a healthy lab looks like, read
    from the store. Domains with no source are left out."""
    out: list[tuple[int, str, str]] = []
    for domain, key, label in GLANCE_DOMAINS:
        entries = store.domain(domain)
        if not entries:
            continue
        read = any(e.reading is not None and e.fault is None for e in entries)
        parts = GLANCE_LINES[domain](entries, config, now) if read else []
        unread = _unread(entries)
        if parts and unread:
            parts[0] += f", {unread}"  # beside the count it qualifies: 2/3 up, 1 faulted
        elif unread:
            parts = [unread]
        out.append((key, label, " · ".join(parts) or "waiting"))
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

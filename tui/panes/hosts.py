"""Pane 2: one row per host — CPU and memory with sparklines, load, swap, uptime, worst disk."""

from __future__ import annotations

from collections.abc import Iterable
from typing import ClassVar

from rich.text import Text

from lab.config import Config
from lab.model import HostState
from tui.format import duration_h
from tui.panes.base import Row, TablePane, ago
from tui.screens.host_detail import HostDetailScreen  # units, journal, fail2ban
from tui.widgets.spark import spark

SPARK = 8


def _pct(value: float | None) -> str:
    return "  -" if value is None else f"{value:3.0f}%"


def _with_spark(value: float | None, history: Iterable[float]) -> Text:
    text = Text(_pct(value) + " ")
    text.append_text(spark(history, SPARK))
    return text


def worst_disk(state: HostState) -> str:
    if not state.filesystems:
        return "-"
    fs = max(state.filesystems, key=lambda f: f.percent)
    return f"{fs.percent:.0f}% {fs.mount}"


class HostsPane(TablePane):
    NUMBER = 2
    PANE_ID = "hosts"
    TITLE = "Hosts"
    DOMAINS = ("host",)
    CONFIG_SECTION = "[[hosts]]"
    COLUMNS: ClassVar = (
        ("Host", 10),
        ("CPU", 13),
        ("Memory", 13),
        ("Load", 5),
        ("Swap", 4),
        ("Up", 5),
        "Worst disk",
    )

    @classmethod
    def configured(cls, config: Config) -> bool:
        return bool(config.hosts) or config.local.enabled

    def rows(self) -> Iterable[Row]:
        now = self.now()
        for entry in sorted(self.entries(), key=lambda e: e.key[1]):
            name = entry.key[1]
            state = entry.reading
            if not isinstance(state, HostState):
                status = (
                    Text(f"{entry.fault.what}", "bold red")
                    if entry.fault
                    else Text("waiting for first reading", "dim")
                )
                yield Row(id=name, cells=(name, status, "", "", "", "", ""), data=entry)
                continue
            host = Text(name, "bold red" if entry.fault else "")
            if entry.fault:
                host.append(f" ({ago(now, state.at)})", "dim")
            yield Row(
                id=name,
                cells=(
                    host,
                    _with_spark(state.cpu_percent, entry.history.get("cpu", ())),
                    _with_spark(state.mem_percent, entry.history.get("mem", ())),
                    f"{state.load[0]:.2f}",
                    f"{state.swap_percent:.0f}%" if state.swap_total else "-",
                    duration_h(state.uptime),
                    worst_disk(state),
                ),
                data=entry,
            )

    def empty_message(self) -> str:
        return "No hosts: enable [local] or add a [[hosts]] section to the config."

    def open_detail(self, row: Row) -> None:
        self.app.push_screen(HostDetailScreen(row.data))
